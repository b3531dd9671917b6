//! GRIP protocol cores, sans-IO: instruction parsing (`instruct`), the header-parameter grammar it uses
//! (`params`), the Grip-Sig JWT (`sig`), and a worker's channel index (`subscriptions`).

mod filters;
mod instruct;
mod jsonpatch;
mod params;
mod rate;
mod sequencer;
mod sig;
mod subscriptions;

pub use filters::{passes_filters, CONTENT_FILTERS};
/// Standard base64 with optional padding, as GRIP's backend-facing formats take it (WebSocket control messages too).
pub(crate) use instruct::decode_base64;
pub use instruct::{
    is_grip_response, parse_instruct, reason_phrase, Channel, Hold, HoldMode, Instruct,
    InstructError, InstructLimits, KeepAlive, KeepAliveMode, NextLink, DEFAULT_HOLD_TIMEOUT_SECS,
    DEFAULT_KEEP_ALIVE_TIMEOUT_SECS, DEFAULT_NEXT_LINK_TIMEOUT_SECS, INSTRUCT_BODY_MAX,
    META_ENTRIES_MAX, MIN_HOLD_TIMEOUT_SECS, MIN_KEEP_ALIVE_TIMEOUT_SECS, TIMEOUT_SECS_MAX,
};
pub use jsonpatch::{apply_patch, patch_body, PATCH_OPS_MAX};
pub use params::{parse_item, parse_param, split_list, unquote};
pub use rate::RateLimiter;
pub use sequencer::{Sequencer, SequencerStats, DEDUP_ENTRIES_MAX, PARKED_PER_CHANNEL_MAX};
pub use sig::{
    cached_grip_sig, make_grip_sig, parse_key, unix_now, verify_grip_sig, SigKey, GRIP_FEATURES,
    GRIP_SIG_TOKEN_MAX, KEY_FILE_SIZE_MAX,
};
pub use subscriptions::{ConnRef, Subscriptions, Transition};
