//! Pieces shared by the bench tools: HTTP/1.1 message framing, a response reader that keeps bodies,
//! what the GRIP benchmark publishes and expects, a latency histogram, CPU time from `/proc`, a
//! small command-line parser, and the client that holds streams and long-polls (`hub`). Everything
//! that decides where a message ends is sans-IO so it can be tested byte by byte.
#![forbid(unsafe_code)]

pub mod args;
pub mod framing;
pub mod grip;
pub mod histogram;
pub mod hub;
pub mod listen;
pub mod procfs;
pub mod stream;
pub mod ws;

pub use args::{ArgError, Options};
pub use framing::{FrameError, RequestDone, RequestFramer, ResponseDone, ResponseFramer};
pub use grip::{HoldMode, Line};
pub use histogram::Histogram;
pub use stream::{split_lines, Fed, LineTooLong, ResponseReader};
