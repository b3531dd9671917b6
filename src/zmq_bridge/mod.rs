//! The ZeroMQ bridge (spec 1.2–1.4): one thread owns every ZeroMQ socket — the PULL and SUB publish inputs,
//! the command socket (ZRPC) and the stats PUB socket — and nothing else touches them.
//!
//! The protocol logic is sans-IO and always compiled (`command`, `forward`; the stats model is in
//! `crate::stats`), so it is tested and fuzzed without libzmq; the thread and its sockets exist only with the
//! `zmq` cargo feature.

pub mod command;
pub mod forward;
#[cfg(feature = "zmq")]
mod thread;

#[cfg(feature = "zmq")]
pub use thread::{start, BridgeHandle};
