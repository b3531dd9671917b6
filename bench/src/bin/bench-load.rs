//! bench-load: a closed-loop HTTP/1.1 load client.
//!
//! Holds `--connections` keep-alive connections, each with exactly one GET in flight, sends the next
//! request as soon as a response ends, and times each request from its write to the last byte of its
//! response. After `--warmup` seconds the counters start; after `--duration` more it prints one JSON
//! line. Failed connections count as errors and are opened again after a short pause.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast_bench::{FrameError, Histogram, Options, ResponseFramer};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const CONNECTIONS_MAX: usize = 50_000;
const THREADS_MAX: usize = 256;
const READ_CHUNK: usize = 64 * 1024;
const EVENTS_MAX: usize = 1024;
/// Bytes of an unfinished response head kept per connection; framing refuses larger heads anyway.
const PENDING_MAX: usize = 128 * 1024;
/// Pause before reopening a connection that failed, so a dead target does not spin the client.
const RECONNECT_DELAY: Duration = Duration::from_millis(20);
/// Longest sleep in `poll`, so phase changes, timeouts and reconnects are seen promptly.
const TICK: Duration = Duration::from_millis(5);
/// Distinct error reasons printed to stderr at the end.
const ERROR_KINDS_MAX: usize = 8;

const USAGE: &str = "usage: bench-load --target HOST:PORT [--path /x] [--connections 50] \
[--duration 10] [--warmup 2] [--threads 1] [--timeout 5] [--host NAME]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Connect,
    Reset,
    ClosedEarly,
    BadResponse(FrameError),
    HeadTooLarge,
    Timeout,
    ExtraBytes,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect => f.write_str("connect failed"),
            Failure::Reset => f.write_str("connection reset or write failed"),
            Failure::ClosedEarly => f.write_str("connection closed before the response ended"),
            Failure::BadResponse(e) => write!(f, "bad response: {e}"),
            Failure::HeadTooLarge => f.write_str("response head too large"),
            Failure::Timeout => f.write_str("request timed out"),
            Failure::ExtraBytes => {
                f.write_str("bytes after the response with no request in flight")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting to reopen after a failure.
    Down {
        at: Instant,
    },
    Connecting,
    /// Request partly written.
    Writing {
        pos: usize,
    },
    Reading,
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    framer: ResponseFramer,
    pending: Vec<u8>,
    sent_at: Instant,
}

struct Settings {
    target: SocketAddr,
    request: Vec<u8>,
    timeout: Duration,
    measure_from: Instant,
    end: Instant,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    non_2xx: u64,
    hist: Histogram,
    error_kinds: Vec<(String, u64)>,
    window: Duration,
}

impl Tally {
    fn clear(&mut self) {
        self.requests = 0;
        self.errors = 0;
        self.non_2xx = 0;
        self.hist.clear();
        self.error_kinds.clear();
    }

    fn note_error(&mut self, why: Failure) {
        self.errors += 1;
        let text = why.to_string();
        if let Some(kind) = self.error_kinds.iter_mut().find(|(k, _)| *k == text) {
            kind.1 += 1;
        } else if self.error_kinds.len() < ERROR_KINDS_MAX {
            self.error_kinds.push((text, 1));
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.non_2xx += other.non_2xx;
        self.hist.merge(&other.hist);
        for (text, n) in &other.error_kinds {
            if let Some(kind) = self.error_kinds.iter_mut().find(|(k, _)| k == text) {
                kind.1 += n;
            } else if self.error_kinds.len() < ERROR_KINDS_MAX {
                self.error_kinds.push((text.clone(), *n));
            }
        }
        self.window = self.window.max(other.window);
    }
}

struct Client {
    poll: Poll,
    conns: Vec<Conn>,
    settings: Arc<Settings>,
    tally: Tally,
    measuring: bool,
    scratch: Vec<u8>,
}

impl Client {
    fn new(count: usize, settings: Arc<Settings>) -> io::Result<Client> {
        let now = Instant::now();
        let conns = (0..count)
            .map(|_| Conn {
                stream: None,
                state: State::Down { at: now },
                framer: ResponseFramer::new(),
                pending: Vec::new(),
                sent_at: now,
            })
            .collect();
        Ok(Client {
            poll: Poll::new()?,
            conns,
            settings,
            tally: Tally::default(),
            measuring: false,
            scratch: vec![0; READ_CHUNK],
        })
    }

    fn run(mut self) -> io::Result<Tally> {
        let mut events = Events::with_capacity(EVENTS_MAX);
        let mut window_start = self.settings.measure_from;
        let mut next_sweep = Instant::now();
        loop {
            let now = Instant::now();
            if now >= self.settings.end {
                break;
            }
            if !self.measuring && now >= self.settings.measure_from {
                self.tally.clear();
                self.measuring = true;
                window_start = now;
            }
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + TICK;
            }
            let wait = TICK.min(self.settings.end.saturating_duration_since(now));
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                self.on_event(ev.token().0);
            }
        }
        self.tally.window = Instant::now().saturating_duration_since(window_start);
        Ok(self.tally)
    }

    /// Reopens connections whose pause is over and fails requests that took too long.
    fn sweep(&mut self, now: Instant) {
        for idx in 0..self.conns.len() {
            let Some(conn) = self.conns.get(idx) else {
                continue;
            };
            match conn.state {
                State::Down { at } if now >= at => self.open(idx),
                State::Down { .. } => {}
                _ if now.saturating_duration_since(conn.sent_at) > self.settings.timeout => {
                    self.fail(idx, Failure::Timeout)
                }
                _ => {}
            }
        }
    }

    fn open(&mut self, idx: usize) {
        let now = Instant::now();
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        conn.framer = ResponseFramer::new();
        conn.pending.clear();
        conn.sent_at = now;
        match TcpStream::connect(self.settings.target) {
            Ok(mut stream) => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                if self
                    .poll
                    .registry()
                    .register(&mut stream, Token(idx), interest)
                    .is_err()
                {
                    self.fail(idx, Failure::Connect);
                    return;
                }
                conn.stream = Some(stream);
                conn.state = State::Connecting;
            }
            Err(_) => self.fail(idx, Failure::Connect),
        }
    }

    fn fail(&mut self, idx: usize, why: Failure) {
        if let Some(conn) = self.conns.get_mut(idx) {
            conn.stream = None;
            conn.state = State::Down {
                at: Instant::now() + RECONNECT_DELAY,
            };
        }
        if self.measuring {
            self.tally.note_error(why);
        }
    }

    fn on_event(&mut self, idx: usize) {
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        let result = match conn.state {
            State::Down { .. } => return,
            State::Connecting => finish_connect(conn),
            State::Writing { .. } => Ok(Progress::Continue),
            State::Reading => Ok(Progress::Continue),
        };
        let result = result.and_then(|p| match p {
            Progress::Continue => self.pump(idx),
            other => Ok(other),
        });
        match result {
            Ok(Progress::Reopen) => self.open(idx),
            Ok(_) => {}
            Err(why) => self.fail(idx, why),
        }
    }

    /// Finishes writing the request, or reads its response and sends the next one.
    fn pump(&mut self, idx: usize) -> Result<Progress, Failure> {
        let request = &self.settings.request;
        let Some(conn) = self.conns.get_mut(idx) else {
            return Ok(Progress::Wait);
        };
        if let State::Writing { pos } = conn.state {
            return send(conn, request, pos);
        }
        let Some((status, keep_alive, at)) = read_response(conn, &mut self.scratch)? else {
            return Ok(Progress::Wait);
        };
        if self.measuring {
            let latency = at.saturating_duration_since(conn.sent_at);
            self.tally.requests += 1;
            if !(200..300).contains(&status) {
                self.tally.non_2xx += 1;
            }
            let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
            self.tally.hist.record(ns);
        }
        if !keep_alive {
            conn.stream = None;
            return Ok(Progress::Reopen);
        }
        if !conn.pending.is_empty() {
            return Err(Failure::ExtraBytes);
        }
        if at >= self.settings.end {
            return Ok(Progress::Wait);
        }
        conn.sent_at = Instant::now();
        send(conn, request, 0)
    }
}

/// Writes the request from `pos`. Once it is all out the response is awaited on the next readable
/// edge rather than read at once: in a closed loop nothing can have arrived yet.
fn send(conn: &mut Conn, request: &[u8], pos: usize) -> Result<Progress, Failure> {
    let pos = write_request(conn, request, pos)?;
    conn.state = if pos < request.len() {
        State::Writing { pos }
    } else {
        State::Reading
    };
    Ok(Progress::Wait)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Continue,
    Wait,
    Reopen,
}

fn finish_connect(conn: &mut Conn) -> Result<Progress, Failure> {
    let Some(stream) = conn.stream.as_ref() else {
        return Err(Failure::Connect);
    };
    if let Ok(Some(_)) | Err(_) = stream.take_error() {
        return Err(Failure::Connect);
    }
    match stream.peer_addr() {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(Progress::Wait),
        Err(_) => return Err(Failure::Connect),
    }
    let _ = stream.set_nodelay(true);
    conn.sent_at = Instant::now();
    conn.state = State::Writing { pos: 0 };
    Ok(Progress::Continue)
}

/// Writes what it can of the request from `pos`; returns the new position.
fn write_request(conn: &mut Conn, request: &[u8], mut pos: usize) -> Result<usize, Failure> {
    let stream = conn.stream.as_mut().ok_or(Failure::Reset)?;
    while pos < request.len() {
        match stream.write(request.get(pos..).unwrap_or(&[])) {
            Ok(0) => return Err(Failure::Reset),
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Failure::Reset),
        }
    }
    Ok(pos)
}

/// Reads until a response ends or the socket is empty. `Some((status, keep_alive, when))` when one
/// ended; bytes after it stay in `pending`.
fn read_response(
    conn: &mut Conn,
    scratch: &mut [u8],
) -> Result<Option<(u16, bool, Instant)>, Failure> {
    loop {
        let stream = conn.stream.as_mut().ok_or(Failure::Reset)?;
        let n = match stream.read(scratch) {
            Ok(0) => {
                return match conn.framer.on_eof() {
                    Some(done) => Ok(Some((done.status, false, Instant::now()))),
                    None => Err(Failure::ClosedEarly),
                };
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Failure::Reset),
        };
        let fresh = scratch.get(..n).unwrap_or(&[]);
        let ended = if conn.pending.is_empty() {
            let (used, done) = conn.framer.feed(fresh).map_err(Failure::BadResponse)?;
            conn.pending
                .extend_from_slice(fresh.get(used..).unwrap_or(&[]));
            done
        } else {
            conn.pending.extend_from_slice(fresh);
            let (used, done) = conn
                .framer
                .feed(&conn.pending)
                .map_err(Failure::BadResponse)?;
            conn.pending.drain(..used.min(conn.pending.len()));
            done
        };
        if let Some(done) = ended {
            return Ok(Some((done.status, done.keep_alive, Instant::now())));
        }
        if conn.pending.len() > PENDING_MAX {
            return Err(Failure::HeadTooLarge);
        }
    }
}

fn json(t: &Tally) -> String {
    let secs = t.window.as_secs_f64();
    let rps = if secs > 0.0 {
        t.requests as f64 / secs
    } else {
        0.0
    };
    let us = |ns: u64| ns as f64 / 1000.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"requests\":{},\"errors\":{},\"non_2xx\":{},\"seconds\":{:.3},\"rps\":{:.1},\
\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1}}}",
        t.requests,
        t.errors,
        t.non_2xx,
        secs,
        rps,
        us(t.hist.quantile(0.5)),
        us(t.hist.quantile(0.99)),
        us(t.hist.max()),
    );
    out
}

fn run() -> Result<(), String> {
    let valued = [
        "--target",
        "--path",
        "--connections",
        "--duration",
        "--warmup",
        "--threads",
        "--timeout",
        "--host",
    ];
    let opts = Options::parse(std::env::args().skip(1), &valued, &["--help"])
        .map_err(|e| format!("{e}\n{USAGE}"))?;
    if opts.flag("--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let target_text = opts
        .value("--target")
        .ok_or(format!("--target is required\n{USAGE}"))?;
    let target: SocketAddr = target_text
        .parse()
        .map_err(|_| format!("--target must be IP:PORT, not {target_text:?}"))?;
    let path = opts.value("--path").unwrap_or("/x");
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "--path must start with / and hold no spaces or controls: {path:?}"
        ));
    }
    let host = opts
        .value("--host")
        .map_or_else(|| target.to_string(), str::to_string);
    if host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("--host must hold no spaces or controls".to_string());
    }
    let connections: usize = opts
        .number("--connections", 50)
        .map_err(|e| e.to_string())?;
    let threads: usize = opts.number("--threads", 1).map_err(|e| e.to_string())?;
    if connections == 0 || connections > CONNECTIONS_MAX {
        return Err(format!("--connections must be 1..={CONNECTIONS_MAX}"));
    }
    if threads == 0 || threads > THREADS_MAX || threads > connections {
        return Err(format!(
            "--threads must be 1..={THREADS_MAX} and at most --connections"
        ));
    }
    let duration = opts.seconds("--duration", 10.0)?;
    let warmup = opts.seconds("--warmup", 2.0)?;
    let timeout = opts.seconds("--timeout", 5.0)?;
    if duration.is_zero() {
        return Err("--duration must be above 0".to_string());
    }
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: holdfast-bench\r\n\r\n");
    let start = Instant::now();
    let settings = Arc::new(Settings {
        target,
        request: request.into_bytes(),
        timeout,
        measure_from: start + warmup,
        end: start + warmup + duration,
    });
    let mut handles = Vec::new();
    for i in 0..threads {
        let share = connections / threads + usize::from(i < connections % threads);
        let client = Client::new(share, Arc::clone(&settings)).map_err(|e| e.to_string())?;
        let handle = std::thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || client.run())
            .map_err(|e| e.to_string())?;
        handles.push(handle);
    }
    let mut total = Tally::default();
    for h in handles {
        match h.join() {
            Ok(Ok(t)) => total.merge(&t),
            Ok(Err(e)) => return Err(format!("poll failed: {e}")),
            Err(_) => return Err("a load thread panicked".to_string()),
        }
    }
    for (text, n) in &total.error_kinds {
        eprintln!("bench-load: {n} x {text}");
    }
    println!("{}", json(&total));
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-load: {e}");
            ExitCode::FAILURE
        }
    }
}
