//! The event loop: worker threads, each with one `mio::Poll`, a slab of connections, a timer wheel and an inbox.

pub mod inbox;
mod pool;
mod report;
mod shared;
mod socket;
pub mod timer;
mod token;
mod worker;

pub use inbox::Inbox;
pub use shared::{BridgeMsg, PublishBatch, Shared};
pub use timer::{TimerKey, TimerWheel, TICK_MS};
pub use worker::{ListenerKind, RefreshTarget, Worker, WorkerMsg, WorkerSetup};
