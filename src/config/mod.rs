//! holdfast configuration: Pushpin's pushpin.conf, read with QSettings INI semantics.
//!
//! - `ini`: the raw INI reader (sections, keys, quoted values, lists, file/line of each key).
//! - `values`: template variables, `port_offset`, listen addresses, booleans, log levels.
//! - `settings`: every key holdfast reads, typed, with Pushpin's defaults.
//! - `load`: finding and reading files, `[global] include`.
//!
//! Everything but `load`/`find_config_file` is pure; loading never panics on any file content.

mod error;
mod ini;
mod load;
mod settings;
mod values;

pub use error::{ConfigError, ERROR_VALUE_MAX};
pub use ini::{Ini, CONFIG_TEXT_MAX, GENERAL_SECTION, INI_ENTRIES_MAX};
pub use load::{find_config_file, INCLUDE_DEPTH_MAX};
pub use settings::{Settings, StatsFormat, XffRule, XfpMode, UNSUPPORTED_KEYS, WORKERS_MAX};
pub use values::{
    apply_port_offset, expand_templates, level_filter, parse_listen_addr, TemplateVars,
    LISTEN_ADDR_MAX,
};
