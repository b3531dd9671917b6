//! Pieces shared by `bench-backend` and `bench-load`: HTTP/1.1 message framing, a latency histogram
//! and a small command-line parser. Everything that decides where a message ends is sans-IO so it
//! can be tested byte by byte.
#![forbid(unsafe_code)]

pub mod args;
pub mod framing;
pub mod histogram;

pub use args::{ArgError, Options};
pub use framing::{FrameError, RequestDone, RequestFramer, ResponseDone, ResponseFramer};
pub use histogram::Histogram;
