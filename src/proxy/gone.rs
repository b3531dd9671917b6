//! Gone links (spec 4.11): when a session whose initial GRIP response named `Grip-Link: <url>; rel=gone`
//! ends, the backend gets `POST <url>` with an empty body. Nobody waits for the answer, so the requests
//! are made off the reactor by a small pool of threads with plain blocking sockets and short timeouts.
//!
//! The queue is bounded: when the backend is too slow to take the notices as fast as sessions end, the
//! newest are dropped, counted and logged (with the total so far), never buffered without limit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Notices waiting for a sender thread before new ones are dropped.
const QUEUE_MAX: usize = 4096;
/// Threads making the requests.
const SENDERS: usize = 2;
/// Connect, write and read timeouts of one request.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of the answer read (and ignored) before the connection is closed.
const ANSWER_READ_MAX: usize = 16 * 1024;

/// One `POST` to make: the complete request bytes and where to send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoneRequest {
    pub addr: SocketAddr,
    pub request: Vec<u8>,
}

struct Sender {
    tx: SyncSender<GoneRequest>,
    dropped: AtomicU64,
}

static SENDER: OnceLock<Option<Sender>> = OnceLock::new();

/// Queue a notice; starts the sender threads on first use.
pub fn send(req: GoneRequest) {
    let Some(sender) = SENDER.get_or_init(start).as_ref() else {
        log::warn!("gone link to {} not sent: no sender thread", req.addr);
        return;
    };
    match sender.tx.try_send(req) {
        Ok(()) => {}
        Err(TrySendError::Full(req)) | Err(TrySendError::Disconnected(req)) => {
            let n = sender.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n % 1000 == 0 {
                log::warn!(
                    "gone link to {} dropped: {QUEUE_MAX} notices already waiting ({n} dropped so far)",
                    req.addr
                );
            }
        }
    }
}

fn start() -> Option<Sender> {
    let (tx, rx) = mpsc::sync_channel(QUEUE_MAX);
    let rx = Arc::new(Mutex::new(rx));
    let mut started = 0;
    for i in 0..SENDERS {
        let rx = Arc::clone(&rx);
        let spawned = std::thread::Builder::new()
            .name(format!("gone-links-{i}"))
            .spawn(move || run(&rx));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => log::error!("gone links: cannot start a sender thread: {e}"),
        }
    }
    (started > 0).then(|| Sender {
        tx,
        dropped: AtomicU64::new(0),
    })
}

fn run(rx: &Mutex<Receiver<GoneRequest>>) {
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(req) = next else { return };
        if let Err(e) = post(&req) {
            log::debug!("gone link to {} failed: {e}", req.addr);
        }
    }
}

/// Make the request and read the answer until the peer closes, the head is complete, or time runs out.
fn post(req: &GoneRequest) -> std::io::Result<()> {
    let mut sock = TcpStream::connect_timeout(&req.addr, IO_TIMEOUT)?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_nodelay(true)?;
    sock.write_all(&req.request)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 2048];
    while answer.len() < ANSWER_READ_MAX {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let status = answer
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|s| std::str::from_utf8(s).ok())
        .unwrap_or("?");
    log::debug!("gone link to {}: answered {status}", req.addr);
    Ok(())
}
