//! Typed settings: every pushpin.conf key holdfast reads, plus holdfast's own `[holdfast]` keys.
//!
//! Reading rules, chosen to match Pushpin where it matters and to fail loudly where Pushpin would
//! silently read garbage:
//! - A key that is absent or whose value is empty takes the code default (Pushpin's C++ default
//!   when the key is absent). Exception: `[global] ipc_prefix` may be set to empty on purpose.
//! - Every string value has `{libdir}`, `{rundir}`, `{ipc_prefix}` expanded and `port_offset`
//!   added to each `tcp://host:PORT` in it, as Pushpin's `Settings::value` does.
//! - A value of the wrong type is a `ConfigError` naming the file and line of the key.
//! - Relative paths (`rundir`, `libdir`, `routesfile`, `file:` keys) resolve against the
//!   directory of the main config file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::error::{escape_text, quote_value, ConfigError};
use super::ini::Ini;
use super::values::{
    apply_port_offset, expand_templates, parse_bool, parse_int, parse_listen_addr, parse_log_level,
    TemplateVars,
};

/// Most proxy worker threads `[proxy] workers` may ask for.
pub const WORKERS_MAX: usize = 1024;

/// How a `[proxy] set_x_forwarded_protocol` value reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XfpMode {
    None,
    ProtoOnly,
    Both,
}

/// One rule of `x_forwarded_for` / `x_forwarded_for_trusted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XffRule {
    /// Keep the last N existing entries (0 drops them all).
    Truncate(usize),
    /// Append the client address.
    Append,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsFormat {
    Tnetstring,
    Json,
}

/// Command-line overrides applied while loading, as Pushpin's runner `--id N` does through
/// `--ipc-prefix` and `--port-offset`: they replace the file's `[global]` values before any
/// template or port is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub ipc_prefix: Option<String>,
    pub port_offset: Option<u16>,
}

/// Every key holdfast reads, typed, with Pushpin's code defaults when the key is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// None when running on built-in defaults.
    pub config_file: Option<PathBuf>,
    /// Relative paths resolve against this (cwd when no file).
    pub config_dir: PathBuf,

    // [global]
    pub rundir: PathBuf,
    pub libdir: Option<PathBuf>,
    pub ipc_prefix: String,
    pub port_offset: u16,
    pub stats_connection_ttl: u64,
    pub stats_connection_send: bool,

    // [runner]
    /// Plain listeners. `port_offset` is not applied (Pushpin doesn't).
    pub http_ports: Vec<SocketAddr>,
    /// Kept raw: holdfast warns they are unsupported.
    pub https_ports: Vec<String>,
    pub local_ports: Vec<String>,
    pub log_level: u8,
    pub client_buffer_size: usize,
    pub client_maxconn: usize,
    pub allow_compression: bool,

    // [proxy]
    pub routesfile: Option<PathBuf>,
    pub debug: bool,
    pub auto_cross_origin: bool,
    pub accept_x_forwarded_protocol: bool,
    pub set_x_forwarded_protocol: XfpMode,
    pub x_forwarded_for: Vec<XffRule>,
    pub x_forwarded_for_trusted: Vec<XffRule>,
    pub orig_headers_need_mark: Vec<String>,
    pub accept_pushpin_route: bool,
    pub cdn_loop: Option<String>,
    pub log_from: bool,
    pub log_user_agent: bool,
    pub sig_iss: String,
    /// Raw key text: plain, `base64:...`, or `file:<absolute path>`.
    pub sig_key: Option<String>,
    /// Same forms as `sig_key`.
    pub upstream_key: Option<String>,
    /// None → holdfast uses the CPU count.
    pub workers: Option<usize>,
    pub max_open_requests: Option<usize>,
    /// `[handler]` value wins over `[proxy]`.
    pub prometheus_port: Option<String>,
    pub prometheus_prefix: String,
    /// `[proxy] stats_connections_max_ttl`, seconds (ttl of `conn-max` stats).
    pub stats_connections_max_ttl: u64,

    // [handler]
    /// `[handler] ipc_file_mode`: permissions for the bridge's `ipc://` socket files (octal in the file).
    pub ipc_file_mode: Option<u32>,
    pub push_in_spec: Option<String>,
    pub push_in_sub_specs: Vec<String>,
    pub push_in_sub_connect: bool,
    pub push_in_http_addr: IpAddr,
    /// None when disabled (absent or -1); `port_offset` already added.
    pub push_in_http_port: Option<u16>,
    pub push_in_http_max_headers_size: usize,
    pub push_in_http_max_body_size: usize,
    pub stats_spec: Option<String>,
    pub command_spec: Option<String>,
    /// None = unlimited.
    pub message_rate: Option<u64>,
    pub message_hwm: Option<u64>,
    /// None when unset, -1 or 0.
    pub message_block_size: Option<u64>,
    pub message_wait_ms: u64,
    pub id_cache_ttl: u64,
    pub update_on_first_subscription: bool,
    pub connection_subscription_max: usize,
    pub subscription_linger: u64,
    pub stats_subscription_ttl: u64,
    pub stats_report_interval: u64,
    pub stats_format: StatsFormat,

    // [holdfast]
    /// Idle keep-alive client connection timeout.
    pub client_idle_timeout_ms: u64,
    /// Time to receive a complete request head once started.
    pub client_request_timeout_ms: u64,
    /// Request body cap (→ 413); None = unlimited.
    pub client_max_body_size: Option<u64>,
    pub backend_connect_timeout_ms: u64,
    /// Time to the backend's response head (→ 504).
    pub backend_response_timeout_ms: u64,
    /// No bytes either way while a response streams (→ close).
    pub backend_idle_timeout_ms: u64,
    /// Idle keep-alive backend connections per worker per target.
    pub backend_pool_max_idle: usize,
    /// Largest WebSocket message holdfast collects whole (WebSocket-over-HTTP events, GRIP messages from a
    /// backend); larger ones close the connection with 1009. Relayed frames stream and are not bounded by it.
    pub websocket_max_message: usize,
    /// Largest WebSocket frame payload accepted (close 1009 beyond); relayed frames stream, so this bounds
    /// nonsense lengths rather than memory.
    pub websocket_max_frame: u64,
    pub backend_pool_idle_ms: u64,
    pub shutdown_grace_ms: u64,
    /// How often the routes file's mtime is checked.
    pub routes_check_interval_ms: u64,
}

/// Keys that holdfast knows but does not implement yet, as (section, key). A key listed here
/// gets a warning when its value asks for something (not empty, not a false boolean).
pub const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    ("runner", "https_ports"),
    ("runner", "local_ports"),
    ("runner", "allow_compression"),
    ("runner", "services"),
    ("runner", "logdir"),
    ("runner", "mongrel2_bin"),
    ("runner", "m2sh_bin"),
    ("runner", "zurl_bin"),
    ("runner", "condure_bin"),
    ("proxy", "auto_cross_origin"),
    ("proxy", "orig_headers_need_mark"),
    ("proxy", "sockjs_url"),
    ("proxy", "ipc_file_mode"),
    ("handler", "share_all"),
    ("handler", "state_spec"),
];

/// Keys holdfast reads.
const SUPPORTED_KEYS: &[(&str, &[&str])] = &[
    (
        "global",
        &[
            "include",
            "libdir",
            "rundir",
            "ipc_prefix",
            "port_offset",
            "stats_connection_ttl",
            "stats_connection_send",
        ],
    ),
    (
        "runner",
        &[
            "rundir",
            "http_port",
            "log_level",
            "client_buffer_size",
            "client_maxconn",
        ],
    ),
    (
        "proxy",
        &[
            "routesfile",
            "debug",
            "accept_x_forwarded_protocol",
            "set_x_forwarded_protocol",
            "x_forwarded_for",
            "x_forwarded_for_trusted",
            "accept_pushpin_route",
            "cdn_loop",
            "log_from",
            "log_user_agent",
            "sig_iss",
            "sig_key",
            "upstream_key",
            "workers",
            "max_open_requests",
            "prometheus_port",
            "prometheus_prefix",
            "stats_connections_max_ttl",
        ],
    ),
    (
        "handler",
        &[
            "ipc_file_mode",
            "push_in_spec",
            "push_in_sub_specs",
            "push_in_sub_connect",
            "push_in_http_addr",
            "push_in_http_port",
            "push_in_http_max_headers_size",
            "push_in_http_max_body_size",
            "stats_spec",
            "command_spec",
            "message_rate",
            "message_hwm",
            "message_block_size",
            "message_wait",
            "id_cache_ttl",
            "update_on_first_subscription",
            "connection_subscription_max",
            "subscription_linger",
            "stats_subscription_ttl",
            "stats_report_interval",
            "stats_format",
            "prometheus_port",
            "prometheus_prefix",
        ],
    ),
    (
        "holdfast",
        &[
            "client_idle_timeout_ms",
            "client_request_timeout_ms",
            "client_max_body_size",
            "backend_connect_timeout_ms",
            "backend_response_timeout_ms",
            "backend_idle_timeout_ms",
            "backend_pool_max_idle",
            "backend_pool_idle_ms",
            "websocket_max_message",
            "websocket_max_frame",
            "shutdown_grace_ms",
            "routes_check_interval_ms",
        ],
    ),
];

/// Known keys that mean nothing to a single-process holdfast and are skipped without a word:
/// the proxy's own sockets and the removed usage-report feature.
const IGNORED_KEYS: &[(&str, &str)] = &[
    ("proxy", "stats_spec"),
    ("proxy", "command_spec"),
    ("proxy", "stats_report_interval"),
    ("proxy", "updates_check"),
    ("proxy", "organization_name"),
];

/// Prefixes of Pushpin's internal socket spec keys (internal.conf); any `*_spec`/`*_specs` key
/// of `[proxy]`/`[handler]` starting with one of these is known and ignored.
const INTERNAL_SPEC_PREFIXES: &[&str] = &[
    "connmgr_", "condure_", "m2a_", "zurl_", "handler_", "intreq_", "proxy_",
];

/// What pushpin.conf as shipped says; `Settings::defaults` reads it.
const SHIPPED_CONFIG: &str = "\
[global]
rundir=run
ipc_prefix=pushpin-
port_offset=0
stats_connection_ttl=120
stats_connection_send=true

[runner]
http_port=7999
log_level=2
client_buffer_size=8192
client_maxconn=50000
allow_compression=false

[proxy]
routesfile=routes
debug=false
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
x_forwarded_for=
x_forwarded_for_trusted=
orig_headers_need_mark=
accept_pushpin_route=false
cdn_loop=
log_from=false
log_user_agent=false
sig_iss=pushpin
sig_key=changeme
upstream_key=

[handler]
push_in_spec=tcp://127.0.0.1:5560
push_in_sub_specs=tcp://127.0.0.1:5562
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=5561
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=tcp://127.0.0.1:5563
message_rate=2500
message_hwm=25000
message_wait=5000
id_cache_ttl=60
update_on_first_subscription=true
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
";

impl Settings {
    /// Built-in defaults as if running with Pushpin's shipped config and no file: listen on
    /// 0.0.0.0:7999, control API on 127.0.0.1:5561, publish sockets on 5560/5562/5563, rundir
    /// "run" under the current directory. Note the shipped `sig_key=changeme`.
    pub fn defaults() -> Settings {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let opts = LoadOptions::default();
        match super::load::from_text_inner(SHIPPED_CONFIG, "<built-in defaults>", &cwd, None, &opts)
        {
            Ok((mut settings, _)) => {
                settings.config_file = None;
                settings
            }
            // The built-in text is tested to read cleanly; this arm only keeps startup panic-free.
            Err(_) => Settings::code_defaults(&cwd),
        }
    }

    /// What every key reads as when absent from the file (Pushpin's code defaults).
    pub fn code_defaults(config_dir: &Path) -> Settings {
        Settings {
            config_file: None,
            config_dir: config_dir.to_path_buf(),
            rundir: config_dir.join("run"),
            libdir: None,
            ipc_prefix: "pushpin-".to_string(),
            port_offset: 0,
            stats_connection_ttl: 120,
            stats_connection_send: true,
            http_ports: Vec::new(),
            https_ports: Vec::new(),
            local_ports: Vec::new(),
            log_level: 2,
            client_buffer_size: 8192,
            client_maxconn: 50000,
            allow_compression: false,
            routesfile: None,
            debug: false,
            auto_cross_origin: false,
            accept_x_forwarded_protocol: false,
            set_x_forwarded_protocol: XfpMode::None,
            x_forwarded_for: Vec::new(),
            x_forwarded_for_trusted: Vec::new(),
            orig_headers_need_mark: Vec::new(),
            accept_pushpin_route: false,
            cdn_loop: None,
            log_from: false,
            log_user_agent: false,
            sig_iss: "pushpin".to_string(),
            sig_key: None,
            upstream_key: None,
            workers: None,
            max_open_requests: None,
            prometheus_port: None,
            prometheus_prefix: String::new(),
            stats_connections_max_ttl: 60,
            ipc_file_mode: None,
            push_in_spec: None,
            push_in_sub_specs: Vec::new(),
            push_in_sub_connect: false,
            push_in_http_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            push_in_http_port: None,
            push_in_http_max_headers_size: 10_000,
            push_in_http_max_body_size: 1_000_000,
            stats_spec: None,
            command_spec: None,
            message_rate: None,
            message_hwm: None,
            message_block_size: None,
            message_wait_ms: 5000,
            id_cache_ttl: 0,
            update_on_first_subscription: true,
            connection_subscription_max: 20,
            subscription_linger: 60,
            stats_subscription_ttl: 60,
            stats_report_interval: 10,
            stats_format: StatsFormat::Tnetstring,
            client_idle_timeout_ms: 60_000,
            client_request_timeout_ms: 30_000,
            client_max_body_size: None,
            backend_connect_timeout_ms: 10_000,
            backend_response_timeout_ms: 60_000,
            backend_idle_timeout_ms: 60_000,
            backend_pool_max_idle: 64,
            websocket_max_message: 1024 * 1024,
            websocket_max_frame: 16 * 1024 * 1024,
            backend_pool_idle_ms: 30_000,
            shutdown_grace_ms: 10_000,
            routes_check_interval_ms: 1000,
        }
    }

    /// Load a config file: includes, templates, port_offset, types. See `load.rs`.
    pub fn load(path: &Path) -> Result<(Settings, Vec<String>), ConfigError> {
        super::load::load(path, &LoadOptions::default())
    }

    /// `load` with command-line overrides.
    pub fn load_with(
        path: &Path,
        opts: &LoadOptions,
    ) -> Result<(Settings, Vec<String>), ConfigError> {
        super::load::load(path, opts)
    }

    /// Same as `load` from text already read: `file` names it in errors, `dir` is its folder.
    pub fn from_text(
        text: &str,
        file: &str,
        dir: &Path,
    ) -> Result<(Settings, Vec<String>), ConfigError> {
        super::load::from_text_inner(text, file, dir, None, &LoadOptions::default())
    }

    /// `from_text` with command-line overrides.
    pub fn from_text_with(
        text: &str,
        file: &str,
        dir: &Path,
        opts: &LoadOptions,
    ) -> Result<(Settings, Vec<String>), ConfigError> {
        super::load::from_text_inner(text, file, dir, None, opts)
    }
}

/// The template variables and the directories they came from, read from the main file only (as
/// Pushpin does: they are needed before any include can be found).
pub(super) struct BaseVars {
    pub vars: TemplateVars,
    pub rundir: PathBuf,
    pub libdir: Option<PathBuf>,
}

pub(super) fn base_vars(
    main: &Ini,
    dir: &Path,
    opts: &LoadOptions,
    warnings: &mut Vec<String>,
) -> Result<BaseVars, ConfigError> {
    let non_empty = |section: &str, key: &str| {
        main.get(section, key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let rundir_text = match non_empty("global", "rundir") {
        Some(v) => v,
        None => match non_empty("runner", "rundir") {
            Some(v) => {
                if let Some((file, line)) = main.location("runner", "rundir") {
                    warnings.push(format!(
                        "{file}:{line}: [runner] rundir is deprecated, use [global] rundir"
                    ));
                }
                v
            }
            None => "run",
        },
    };
    let rundir = dir.join(rundir_text);
    let libdir = non_empty("global", "libdir").map(|v| dir.join(v));
    let ipc_prefix = match &opts.ipc_prefix {
        Some(p) => p.clone(),
        None => main
            .get("global", "ipc_prefix")
            .map_or("pushpin-", str::trim)
            .to_string(),
    };
    let reader = Reader {
        ini: main,
        vars: None,
    };
    let port_offset = match opts.port_offset {
        Some(n) => n,
        None => reader.num::<u16>("global", "port_offset")?.unwrap_or(0),
    };
    Ok(BaseVars {
        vars: TemplateVars {
            libdir: libdir.as_ref().map(|p| p.to_string_lossy().into_owned()),
            rundir: rundir.to_string_lossy().into_owned(),
            ipc_prefix,
            port_offset,
        },
        rundir,
        libdir,
    })
}

/// Typed access to the merged INI. Every getter returns `None` for an absent or empty value.
struct Reader<'a> {
    ini: &'a Ini,
    /// None while reading the template variables themselves (no expansion then).
    vars: Option<&'a TemplateVars>,
}

impl Reader<'_> {
    fn err(&self, section: &str, key: &str, reason: impl std::fmt::Display) -> ConfigError {
        let (file, line) = self.ini.location(section, key).unwrap_or(("<config>", 0));
        ConfigError::new(file, line, format!("[{section}] {key}: {reason}"))
    }

    fn type_err(&self, section: &str, key: &str, expected: &str, got: &str) -> ConfigError {
        self.err(
            section,
            key,
            format!("expected {expected}, got {}", quote_value(got)),
        )
    }

    fn expand(&self, section: &str, key: &str, raw: &str) -> Result<String, ConfigError> {
        let Some(vars) = self.vars else {
            return Ok(raw.to_string());
        };
        let expanded = expand_templates(raw, vars);
        apply_port_offset(&expanded, vars.port_offset).map_err(|r| self.err(section, key, r))
    }

    /// Not trimmed: the INI reader already trimmed unquoted values, and quoted blanks are meant.
    fn raw(&self, section: &str, key: &str) -> Option<&str> {
        self.ini.get(section, key).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        match self.raw(section, key) {
            Some(v) => self.expand(section, key, v).map(Some),
            None => Ok(None),
        }
    }

    /// Items expanded, empty items dropped; None when the key is absent.
    fn list(&self, section: &str, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.ini.get_list(section, key) else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let item = item.trim();
            if !item.is_empty() {
                out.push(self.expand(section, key, item)?);
            }
        }
        Ok(Some(out))
    }

    fn bool(&self, section: &str, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.raw(section, key) {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| self.type_err(section, key, "true or false", v)),
        }
    }

    fn int(&self, section: &str, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.raw(section, key) {
            None => Ok(None),
            Some(v) => parse_int(v)
                .map(Some)
                .ok_or_else(|| self.type_err(section, key, "an integer", v)),
        }
    }

    /// A non-negative integer that fits `T`.
    fn num<T: TryFrom<i64>>(&self, section: &str, key: &str) -> Result<Option<T>, ConfigError> {
        match self.int(section, key)? {
            None => Ok(None),
            Some(n) => T::try_from(n).map(Some).map_err(|_| {
                self.type_err(
                    section,
                    key,
                    "a non-negative integer in range",
                    &n.to_string(),
                )
            }),
        }
    }

    /// A limit where -1 means "none". Absent → None.
    fn limit(&self, section: &str, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.int(section, key)? {
            None | Some(-1) => Ok(None),
            Some(n) => u64::try_from(n).map(Some).map_err(|_| {
                self.type_err(section, key, "-1 or a non-negative integer", &n.to_string())
            }),
        }
    }

    fn path(&self, dir: &Path, section: &str, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.string(section, key)?.map(|p| dir.join(p)))
    }

    /// A key value (`sig_key`, `upstream_key`); a `file:` path is made absolute.
    fn key(&self, dir: &Path, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.string(section, key)? else {
            return Ok(None);
        };
        match v.strip_prefix("file:") {
            Some("") => Err(self.err(section, key, "file: without a path")),
            Some(path) => Ok(Some(format!("file:{}", dir.join(path).display()))),
            None => Ok(Some(v)),
        }
    }

    fn xff_rules(&self, section: &str, key: &str) -> Result<Option<Vec<XffRule>>, ConfigError> {
        let Some(items) = self.list(section, key)? else {
            return Ok(None);
        };
        let mut rules = Vec::with_capacity(items.len());
        for item in items {
            let rule = if item == "append" {
                XffRule::Append
            } else if let Some(n) = item.strip_prefix("truncate:") {
                match parse_int(n).and_then(|n| usize::try_from(n).ok()) {
                    Some(n) => XffRule::Truncate(n),
                    None => return Err(self.type_err(section, key, "truncate:N", &item)),
                }
            } else {
                return Err(self.type_err(
                    section,
                    key,
                    "a rule list of truncate:N and append",
                    &item,
                ));
            };
            rules.push(rule);
        }
        Ok(Some(rules))
    }
}

/// Assign `$field` when the reader found a value.
macro_rules! set {
    ($target:expr, $value:expr) => {
        if let Some(v) = $value {
            $target = v;
        }
    };
}

/// Build typed settings from the merged INI. `warnings` gets one line per unknown key and per
/// unsupported key in use.
pub(super) fn build(
    ini: &Ini,
    base: BaseVars,
    config_file: Option<PathBuf>,
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Settings, ConfigError> {
    key_warnings(ini, warnings);
    let r = Reader {
        ini,
        vars: Some(&base.vars),
    };
    let mut s = Settings::code_defaults(dir);
    s.config_file = config_file;
    s.rundir = base.rundir.clone();
    s.libdir = base.libdir.clone();
    s.ipc_prefix = base.vars.ipc_prefix.clone();
    s.port_offset = base.vars.port_offset;

    // [global]
    set!(
        s.stats_connection_ttl,
        r.num("global", "stats_connection_ttl")?
    );
    set!(
        s.stats_connection_send,
        r.bool("global", "stats_connection_send")?
    );

    // [runner]
    if let Some(items) = r.list("runner", "http_port")? {
        let mut ports = Vec::with_capacity(items.len());
        for item in items {
            ports.push(parse_listen_addr(&item).map_err(|e| r.err("runner", "http_port", e))?);
        }
        s.http_ports = ports;
    }
    set!(s.https_ports, r.list("runner", "https_ports")?);
    set!(s.local_ports, r.list("runner", "local_ports")?);
    if let Some(items) = r.list("runner", "log_level")? {
        let level = parse_log_level(&items).map_err(|e| r.err("runner", "log_level", e))?;
        set!(s.log_level, level);
    }
    set!(s.client_buffer_size, r.num("runner", "client_buffer_size")?);
    set!(s.client_maxconn, r.num("runner", "client_maxconn")?);
    set!(s.allow_compression, r.bool("runner", "allow_compression")?);
    for (key, value) in [
        ("client_buffer_size", s.client_buffer_size),
        ("client_maxconn", s.client_maxconn),
    ] {
        if value == 0 {
            return Err(r.err("runner", key, "must be at least 1"));
        }
    }

    // [proxy]
    s.routesfile = r.path(dir, "proxy", "routesfile")?;
    set!(s.debug, r.bool("proxy", "debug")?);
    set!(s.auto_cross_origin, r.bool("proxy", "auto_cross_origin")?);
    set!(
        s.accept_x_forwarded_protocol,
        r.bool("proxy", "accept_x_forwarded_protocol")?
    );
    // Pushpin compares exactly; anything else means "add nothing".
    s.set_x_forwarded_protocol = match r.string("proxy", "set_x_forwarded_protocol")?.as_deref() {
        Some("true") => XfpMode::Both,
        Some("proto-only") => XfpMode::ProtoOnly,
        _ => XfpMode::None,
    };
    set!(s.x_forwarded_for, r.xff_rules("proxy", "x_forwarded_for")?);
    set!(
        s.x_forwarded_for_trusted,
        r.xff_rules("proxy", "x_forwarded_for_trusted")?
    );
    set!(
        s.orig_headers_need_mark,
        r.list("proxy", "orig_headers_need_mark")?
    );
    set!(
        s.accept_pushpin_route,
        r.bool("proxy", "accept_pushpin_route")?
    );
    s.cdn_loop = r.string("proxy", "cdn_loop")?;
    set!(s.log_from, r.bool("proxy", "log_from")?);
    set!(s.log_user_agent, r.bool("proxy", "log_user_agent")?);
    set!(s.sig_iss, r.string("proxy", "sig_iss")?);
    s.sig_key = r.key(dir, "proxy", "sig_key")?;
    s.upstream_key = r.key(dir, "proxy", "upstream_key")?;
    s.workers = r.num("proxy", "workers")?;
    if let Some(n) = s.workers {
        if n == 0 || n > WORKERS_MAX {
            return Err(r.err(
                "proxy",
                "workers",
                format!("must be from 1 to {WORKERS_MAX}"),
            ));
        }
    }
    s.max_open_requests = r.num("proxy", "max_open_requests")?;
    s.prometheus_port = match r.string("handler", "prometheus_port")? {
        Some(v) => Some(v),
        None => r.string("proxy", "prometheus_port")?,
    };
    s.prometheus_prefix = match r.string("handler", "prometheus_prefix")? {
        Some(v) => v,
        None => r.string("proxy", "prometheus_prefix")?.unwrap_or_default(),
    };
    set!(
        s.stats_connections_max_ttl,
        r.num("proxy", "stats_connections_max_ttl")?
    );

    // [handler]
    if let Some(mode) = r.string("handler", "ipc_file_mode")? {
        s.ipc_file_mode = Some(
            u32::from_str_radix(&mode, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| r.type_err("handler", "ipc_file_mode", "an octal mode", &mode))?,
        );
    }
    s.push_in_spec = r.string("handler", "push_in_spec")?;
    set!(s.push_in_sub_specs, r.list("handler", "push_in_sub_specs")?);
    set!(
        s.push_in_sub_connect,
        r.bool("handler", "push_in_sub_connect")?
    );
    if let Some(addr) = r.string("handler", "push_in_http_addr")? {
        let bare = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(&addr);
        s.push_in_http_addr = bare
            .parse()
            .map_err(|_| r.type_err("handler", "push_in_http_addr", "an IP address", &addr))?;
    }
    s.push_in_http_port = match r.limit("handler", "push_in_http_port")? {
        None => None,
        Some(port) => {
            let shifted = port
                .checked_add(u64::from(s.port_offset))
                .and_then(|p| u16::try_from(p).ok());
            match shifted {
                Some(p) => Some(p),
                None => {
                    return Err(r.err(
                        "handler",
                        "push_in_http_port",
                        format!(
                            "port {port} plus port_offset {} is not a valid port",
                            s.port_offset
                        ),
                    ))
                }
            }
        }
    };
    set!(
        s.push_in_http_max_headers_size,
        r.num("handler", "push_in_http_max_headers_size")?
    );
    set!(
        s.push_in_http_max_body_size,
        r.num("handler", "push_in_http_max_body_size")?
    );
    s.stats_spec = r.string("handler", "stats_spec")?;
    s.command_spec = r.string("handler", "command_spec")?;
    s.message_rate = r.limit("handler", "message_rate")?;
    s.message_hwm = r.limit("handler", "message_hwm")?;
    // A block size of 0 would divide by zero downstream; Pushpin only uses it when positive.
    s.message_block_size = r.limit("handler", "message_block_size")?.filter(|n| *n > 0);
    set!(s.message_wait_ms, r.num("handler", "message_wait")?);
    set!(s.id_cache_ttl, r.num("handler", "id_cache_ttl")?);
    set!(
        s.update_on_first_subscription,
        r.bool("handler", "update_on_first_subscription")?
    );
    set!(
        s.connection_subscription_max,
        r.num("handler", "connection_subscription_max")?
    );
    set!(
        s.subscription_linger,
        r.num("handler", "subscription_linger")?
    );
    set!(
        s.stats_subscription_ttl,
        r.num("handler", "stats_subscription_ttl")?
    );
    set!(
        s.stats_report_interval,
        r.num("handler", "stats_report_interval")?
    );
    s.stats_format = match r.string("handler", "stats_format")?.as_deref() {
        None | Some("tnetstring") => StatsFormat::Tnetstring,
        Some("json") => StatsFormat::Json,
        Some(other) => {
            return Err(r.type_err("handler", "stats_format", "tnetstring or json", other))
        }
    };

    // [holdfast]
    let h = "holdfast";
    set!(
        s.client_idle_timeout_ms,
        r.num(h, "client_idle_timeout_ms")?
    );
    set!(
        s.client_request_timeout_ms,
        r.num(h, "client_request_timeout_ms")?
    );
    s.client_max_body_size = r.limit(h, "client_max_body_size")?;
    set!(
        s.backend_connect_timeout_ms,
        r.num(h, "backend_connect_timeout_ms")?
    );
    set!(
        s.backend_response_timeout_ms,
        r.num(h, "backend_response_timeout_ms")?
    );
    set!(
        s.backend_idle_timeout_ms,
        r.num(h, "backend_idle_timeout_ms")?
    );
    set!(s.backend_pool_max_idle, r.num(h, "backend_pool_max_idle")?);
    set!(s.websocket_max_message, r.num(h, "websocket_max_message")?);
    set!(s.websocket_max_frame, r.num(h, "websocket_max_frame")?);
    set!(s.backend_pool_idle_ms, r.num(h, "backend_pool_idle_ms")?);
    set!(s.shutdown_grace_ms, r.num(h, "shutdown_grace_ms")?);
    set!(
        s.routes_check_interval_ms,
        r.num(h, "routes_check_interval_ms")?
    );
    Ok(s)
}

/// How holdfast treats a (section, key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Supported,
    Unsupported,
    Ignored,
    Unknown,
}

fn classify(section: &str, key: &str) -> KeyKind {
    if UNSUPPORTED_KEYS.contains(&(section, key)) {
        return KeyKind::Unsupported;
    }
    let supported = SUPPORTED_KEYS
        .iter()
        .any(|(s, keys)| *s == section && keys.contains(&key));
    if supported {
        return KeyKind::Supported;
    }
    if IGNORED_KEYS.contains(&(section, key)) {
        return KeyKind::Ignored;
    }
    let internal_spec = (section == "proxy" || section == "handler")
        && (key.ends_with("_spec") || key.ends_with("_specs"))
        && INTERNAL_SPEC_PREFIXES.iter().any(|p| key.starts_with(p));
    if internal_spec {
        return KeyKind::Ignored;
    }
    KeyKind::Unknown
}

fn key_warnings(ini: &Ini, warnings: &mut Vec<String>) {
    for (section, key, file, line) in ini.keys() {
        match classify(section, key) {
            KeyKind::Unknown => warnings.push(format!(
                "{file}:{line}: unknown key [{}] {}, ignored",
                escape_text(section),
                escape_text(key)
            )),
            KeyKind::Unsupported => {
                let value = ini.get(section, key).map_or("", str::trim);
                // An empty value or a false switch asks for nothing holdfast lacks.
                if !value.is_empty() && parse_bool(value) != Some(false) {
                    warnings.push(format!(
                        "{file}:{line}: [{}] {} is not supported by holdfast yet, ignored",
                        escape_text(section),
                        escape_text(key)
                    ));
                }
            }
            KeyKind::Supported | KeyKind::Ignored => {}
        }
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
