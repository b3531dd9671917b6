//! Harness for the loopback integration tests: a holdfast process in a temporary directory, a programmable
//! in-test backend, and a raw HTTP/1.1 client with its own small response parser.
//!
//! Every wait is bounded (`IO_TIMEOUT` on sockets, explicit deadlines elsewhere), so a hang fails a test
//! instead of blocking the suite. When a test panics, the holdfast log is printed by `Drop`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod backend;
mod client;
mod pattern;
mod process;
mod wire;
mod ws;

// Not every test file uses every part.
#[allow(unused_imports)]
pub use backend::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use pattern::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use wire::*;
#[allow(unused_imports)]
pub use ws::*;

/// Socket read/write timeout for test clients and the backend.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long holdfast may take to start.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Request-body bytes a backend keeps per request (the rest is only counted and checked against the pattern).
pub const BODY_RECORD_MAX: usize = 4 * 1024 * 1024;
/// Largest head either side of the harness accepts.
pub(crate) const HEAD_MAX: usize = 1024 * 1024;

// ---- small utilities ----------------------------------------------------------------------------------------

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Poll `f` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn unique_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "holdfast-itest-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ))
}

/// Write through a temporary file and a rename, so holdfast never reads a half-written file.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename temp file");
}
