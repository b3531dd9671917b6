//! bench-backend: an HTTP/1.1 origin that answers every request with `200 OK` and "hello world\n".
//!
//! With `--grip stream|response` it is a GRIP origin instead: every request gets `Grip-Hold: <mode>`
//! on the channel named by its `?channel=` query (default "bench"), except `/ready`, which gets the
//! plain answer so a harness can check the route without creating a hold.
//!
//! Each thread runs its own `mio::Poll` over a clone of one shared listening socket, so accepts
//! spread over threads without any hand-off. Requests are framed (bodies skipped, pipelining kept in
//! order) and the answers of one read go out in one write.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use holdfast_bench::grip::{channel_of, hold_response, request_target, target_path, READY_PATH};
use holdfast_bench::{HoldMode, Options, RequestFramer};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// Connections one thread holds at once; accepts beyond it are closed at once.
const CONNS_MAX: usize = 16 * 1024;
/// Unsent answers a connection may queue before the server stops reading from it.
const OUT_MAX: usize = 256 * 1024;
/// Bytes read from a socket in one call.
const READ_CHUNK: usize = 64 * 1024;
const EVENTS_MAX: usize = 1024;
const THREADS_MAX: usize = 256;
const LISTENER: Token = Token(usize::MAX);

const OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n";
const OK_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n";
const BAD: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

const USAGE: &str =
    "usage: bench-backend --port P [--bind ADDR] [--threads N|auto] [--grip stream|response]";

struct Conn {
    stream: TcpStream,
    framer: RequestFramer,
    /// Bytes of an unfinished request head (bodies are skipped, not kept).
    pending: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// No more requests are read: the last answer closes the connection.
    closing: bool,
    peer_done: bool,
    /// Reading stopped because `out` is full; resume once it drains.
    paused: bool,
    /// The framer is at the start of a request (GRIP mode reads its request line there).
    at_start: bool,
    /// GRIP mode: the channel to hold the request being read on; `None` answers it plainly.
    hold: Option<String>,
}

enum Step {
    Keep,
    Drop,
}

struct Worker {
    grip: Option<HoldMode>,
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    scratch: Vec<u8>,
}

impl Worker {
    fn new(listener: std::net::TcpListener, grip: Option<HoldMode>) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Worker {
            grip,
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            scratch: vec![0; READ_CHUNK],
        })
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_MAX);
        loop {
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    self.accept_all();
                    continue;
                }
                let idx = ev.token().0;
                let step = match self.conns.get_mut(idx) {
                    Some(Some(conn)) => {
                        drive(conn, &mut self.scratch, ev.is_read_closed(), self.grip)
                    }
                    _ => continue,
                };
                if let Step::Drop = step {
                    if let Some(slot) = self.conns.get_mut(idx) {
                        *slot = None;
                        self.free.push(idx);
                    }
                }
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or similar: leave the rest in the backlog for later.
                    eprintln!("bench-backend: accept failed: {e}");
                    return;
                }
            };
            let idx = match self.free.pop() {
                Some(i) => i,
                None if self.conns.len() < CONNS_MAX => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
                None => continue, // at capacity: dropping the stream refuses the client
            };
            let _ = stream.set_nodelay(true);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, Token(idx), interest)
                .is_err()
            {
                self.free.push(idx);
                continue;
            }
            if let Some(slot) = self.conns.get_mut(idx) {
                *slot = Some(Conn {
                    stream,
                    framer: RequestFramer::new(),
                    pending: Vec::new(),
                    out: Vec::with_capacity(1024),
                    out_pos: 0,
                    closing: false,
                    peer_done: false,
                    paused: false,
                    at_start: true,
                    hold: None,
                });
            }
        }
    }
}

/// Answers every whole request in `data`; returns the bytes used.
fn answer(conn: &mut Conn, data: &[u8], grip: Option<HoldMode>) -> usize {
    let mut used = 0;
    while !conn.closing {
        let rest = data.get(used..).unwrap_or(&[]);
        if let (Some(_), true) = (grip, conn.at_start) {
            conn.hold = request_target(rest)
                .filter(|t| target_path(t) != READY_PATH.as_bytes())
                .map(|t| channel_of(t).to_string());
        }
        match conn.framer.feed(rest) {
            Ok((n, done)) => {
                used += n;
                match done {
                    Some(d) => {
                        match (grip, conn.hold.take()) {
                            (Some(mode), Some(channel)) => conn
                                .out
                                .extend_from_slice(&hold_response(mode, &channel, !d.keep_alive)),
                            _ if d.keep_alive => conn.out.extend_from_slice(OK),
                            _ => conn.out.extend_from_slice(OK_CLOSE),
                        }
                        conn.closing = !d.keep_alive;
                        conn.at_start = true;
                    }
                    None => {
                        // Past the blank lines the framer only moves once it has the whole head.
                        let blank = rest.iter().take_while(|b| **b == b'\r' || **b == b'\n');
                        if n > blank.count() {
                            conn.at_start = false;
                        }
                        if n == 0 || used >= data.len() {
                            break;
                        }
                    }
                }
            }
            Err(_) => {
                conn.out.extend_from_slice(BAD);
                conn.closing = true;
            }
        }
    }
    if conn.closing {
        data.len()
    } else {
        used
    }
}

fn read_some(
    conn: &mut Conn,
    scratch: &mut [u8],
    read_closed: bool,
    grip: Option<HoldMode>,
) -> Result<(), ()> {
    while !conn.closing && !conn.peer_done {
        if conn.out.len() - conn.out_pos >= OUT_MAX {
            conn.paused = true;
            return Ok(());
        }
        let n = match conn.stream.read(scratch) {
            Ok(0) => {
                conn.peer_done = true;
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        };
        let fresh = scratch.get(..n).unwrap_or(&[]);
        if conn.pending.is_empty() {
            let used = answer(conn, fresh, grip);
            conn.pending
                .extend_from_slice(fresh.get(used..).unwrap_or(&[]));
        } else {
            conn.pending.extend_from_slice(fresh);
            let pending = std::mem::take(&mut conn.pending);
            let used = answer(conn, &pending, grip);
            conn.pending = pending;
            conn.pending.drain(..used.min(conn.pending.len()));
        }
        // A short read drained the socket; the next arrival raises a new edge. A peer's close
        // that came with the data does not, hence the read-closed check.
        if n < scratch.len() && !read_closed {
            break;
        }
    }
    Ok(())
}

fn flush(conn: &mut Conn) -> Result<(), ()> {
    while conn.out_pos < conn.out.len() {
        match conn
            .stream
            .write(conn.out.get(conn.out_pos..).unwrap_or(&[]))
        {
            Ok(0) => return Err(()),
            Ok(n) => conn.out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        }
    }
    conn.out.clear();
    conn.out_pos = 0;
    Ok(())
}

fn drive(conn: &mut Conn, scratch: &mut [u8], read_closed: bool, grip: Option<HoldMode>) -> Step {
    // Bounded: each pass either stops reading (paused or would-block) or drains the output.
    for _ in 0..64 {
        if read_some(conn, scratch, read_closed, grip).is_err() || flush(conn).is_err() {
            return Step::Drop;
        }
        let drained = conn.out.is_empty();
        if drained && (conn.closing || conn.peer_done) {
            return Step::Drop;
        }
        if !(drained && conn.paused) {
            return Step::Keep;
        }
        conn.paused = false;
    }
    Step::Keep
}

fn run() -> Result<(), String> {
    let opts = Options::parse(
        std::env::args().skip(1),
        &["--port", "--bind", "--threads", "--grip"],
        &["--help"],
    )
    .map_err(|e| format!("{e}\n{USAGE}"))?;
    if opts.flag("--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let port: u16 = opts.number("--port", 0).map_err(|e| e.to_string())?;
    if port == 0 {
        return Err(format!("--port is required\n{USAGE}"));
    }
    let bind = opts.value("--bind").unwrap_or("127.0.0.1");
    let threads = match opts.value("--threads") {
        Some("auto") => std::thread::available_parallelism().map_or(1, |n| n.get()),
        _ => opts
            .number("--threads", 1usize)
            .map_err(|e| e.to_string())?,
    };
    if threads == 0 || threads > THREADS_MAX {
        return Err(format!("--threads must be 1..={THREADS_MAX}"));
    }
    let grip = match opts.value("--grip") {
        None => None,
        Some(text) => Some(
            HoldMode::parse(text).ok_or(format!("--grip must be stream or response\n{USAGE}"))?,
        ),
    };
    let addr: SocketAddr = format!("{bind}:{port}")
        .parse()
        .map_err(|_| format!("bad bind address {bind:?}"))?;
    let listener = holdfast_bench::listen::listen(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut handles = Vec::new();
    for i in 0..threads {
        let clone = listener.try_clone().map_err(|e| e.to_string())?;
        let mut worker = Worker::new(clone, grip).map_err(|e| e.to_string())?;
        let handle = std::thread::Builder::new()
            .name(format!("backend-{i}"))
            .spawn(move || worker.run())
            .map_err(|e| e.to_string())?;
        handles.push(handle);
    }
    let kind = grip.map_or("plain", HoldMode::as_str);
    eprintln!("bench-backend: listening on {addr} with {threads} thread(s), {kind} answers");
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("poll failed: {e}")),
            Err(_) => return Err("a worker thread panicked".to_string()),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-backend: {e}");
            ExitCode::FAILURE
        }
    }
}
