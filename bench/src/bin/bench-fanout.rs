//! bench-fanout: measures GRIP delivery through a proxy, in one of three scenarios.
//!
//! - `fanout`: holds `--subscribers` streams on one channel, primes them (publishes until every
//!   stream has received a message, so every subscription is live), then publishes `--publishes`
//!   messages flat out, one POST each (`--publish-parallel` POSTs in flight, 1 = sequential), and
//!   counts what every stream receives: deliveries/s, loss, publish-to-receive latency.
//! - `idle`: holds `--subscribers` streams, reports how fast they opened, writes `--ready-file`,
//!   keeps them until `--release-file` appears (or `--hold-max`), then closes them all.
//! - `longpoll`: `--clients` connections each long-polling its own channel `lp-<i>` and polling
//!   again as soon as a response arrives, while a publisher posts one response per channel per
//!   round (`--batch` items per POST) flat out; counts completed cycles.
//!
//! Streams live on one thread and one `mio::Poll`; at most `--concurrency` opens are in flight.
//! Publishers are blocking threads. Every phase has a deadline. One JSON line goes to stdout.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use holdfast_bench::grip::{message, parse_line, publish_request, response_items, stream_items};
use holdfast_bench::{
    procfs, split_lines, Histogram, Line, Options, ResponseFramer, ResponseReader,
};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const STREAMS_MAX: usize = 60_000;
const PUBLISHES_MAX: u64 = 1_000_000;
/// Bits of the per-stream "which messages arrived" map; subscribers × publishes may not exceed it.
const SEEN_BITS_MAX: u64 = 1 << 30;
const CONCURRENCY_MAX: usize = 20_000;
/// Most attempts at opening one stream (`--open-attempts`).
const OPEN_ATTEMPTS_MAX: u32 = 10;
const PUBLISH_PARALLEL_MAX: usize = 64;
const BATCH_MAX: usize = 10_000;
const READ_CHUNK: usize = 64 * 1024;
const EVENTS_MAX: usize = 1024;
/// Largest control API response read; its status is all that matters.
const REPLY_MAX: usize = 64 * 1024;
/// Distinct error kinds kept per tally; the rest are counted under "other".
const KINDS_MAX: usize = 16;
/// Priming publishes before giving up on streams that have not received one.
const PRIME_ROUNDS_MAX: u32 = 3;
/// Longest sleep in `poll`, so deadlines and phase changes are seen promptly.
const TICK: Duration = Duration::from_millis(20);
/// Pause before a long-poll client reconnects after a failure.
const RECONNECT_DELAY: Duration = Duration::from_millis(20);
/// A partial-line buffer bigger than this is shrunk once it empties, so 10,000 idle streams do
/// not each keep the capacity of their busiest read.
const PARTIAL_KEEP: usize = 4096;
const SECONDS_MAX: f64 = 24.0 * 3600.0;

const USAGE: &str = "usage: bench-fanout --scenario fanout|idle|longpoll --target IP:PORT
        [--control IP:PORT] [--path /stream] [--channel bench] [--subscribers 5000]
        [--publishes 200] [--publish-parallel 1] [--size 100] [--concurrency 1000]
        [--open-attempts 3] [--open-timeout 30] [--open-max 300] [--prime-timeout 30] [--quiet 5] [--drain-max 120]
        [--ready-file F] [--release-file F] [--hold-max 300]
        [--clients 500] [--duration 10] [--warmup 1] [--batch 100] [--round-gap 0] [--timeout 10]
        [--proxy-pid PID] [--clk-tck 100]";

// --- tallies ---------------------------------------------------------------------------------

/// Counts by kind, with a bounded number of kinds.
#[derive(Debug, Default)]
struct Kinds {
    total: u64,
    list: Vec<(String, u64)>,
}

impl Kinds {
    fn note(&mut self, kind: &str) {
        self.add(kind, 1);
    }

    fn add(&mut self, kind: &str, n: u64) {
        self.total += n;
        // The last slot is kept for "other", so a flood of new kinds cannot hide the first ones.
        let kind = if self.list.iter().any(|(k, _)| k == kind) || self.list.len() + 1 < KINDS_MAX {
            kind
        } else {
            "other"
        };
        match self.list.iter_mut().find(|(k, _)| k == kind) {
            Some(k) => k.1 += n,
            None => self.list.push((kind.to_string(), n)),
        }
    }

    fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, n)) in self.list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            holdfast_bench::grip::json_string(k, &mut out);
            let _ = write!(out, ":{n}");
        }
        out.push('}');
        out
    }
}

/// Which published messages each stream has received, to count loss and duplicates exactly.
struct Seen {
    publishes: u64,
    words: usize,
    bits: Vec<u64>,
    unique: u64,
    duplicates: u64,
    unknown: u64,
    hist: Histogram,
    last_at: Option<Instant>,
}

impl Seen {
    fn new(streams: usize, publishes: u64) -> Seen {
        let words = publishes.div_ceil(64) as usize;
        Seen {
            publishes,
            words,
            bits: vec![0; streams.saturating_mul(words)],
            unique: 0,
            duplicates: 0,
            unknown: 0,
            hist: Histogram::new(),
            last_at: None,
        }
    }

    fn record(&mut self, stream: usize, seq: u64, latency_ns: u64, now: Instant) {
        if seq >= self.publishes {
            self.unknown += 1;
            return;
        }
        let word = stream
            .saturating_mul(self.words)
            .saturating_add((seq / 64) as usize);
        let Some(w) = self.bits.get_mut(word) else {
            self.unknown += 1;
            return;
        };
        let bit = 1u64 << (seq % 64);
        if *w & bit != 0 {
            self.duplicates += 1;
            return;
        }
        *w |= bit;
        self.unique += 1;
        self.hist.record(latency_ns);
        self.last_at = Some(now);
    }
}

// --- connections -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not opened yet.
    Idle,
    Connecting,
    /// Request partly written.
    Writing(usize),
    /// Request sent, response head (stream) or whole response (long-poll) awaited.
    Waiting,
    /// A stream whose head said 200: held.
    Open,
    /// Long-poll client waiting to reconnect.
    Down(Instant),
    /// A stream that failed or ended; not reopened.
    Gone,
}

struct Conn {
    stream: Option<TcpStream>,
    phase: Phase,
    reader: ResponseReader,
    /// Stream: the unfinished last line. Long-poll: the body so far.
    partial: Vec<u8>,
    /// When the current open or request started.
    since: Instant,
    primed: bool,
    /// Opens tried for this stream so far.
    attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Streams,
    Polls,
}

/// Everything connections report into.
struct Ctx {
    mode: Mode,
    epoch: Instant,
    in_flight: usize,
    live: usize,
    established: usize,
    open_errors: Kinds,
    /// Streams lost after they opened.
    drops: Kinds,
    first_connect: Option<Instant>,
    last_established: Option<Instant>,
    /// Failed opens that were tried again.
    open_retries: u64,
    open_lines: u64,
    other_lines: u64,
    primed: usize,
    seen: Option<Seen>,
    // long-poll
    measuring: bool,
    cycles: u64,
    poll_errors: Kinds,
    poll_hist: Histogram,
}

enum Outcome {
    Keep,
    /// Long-poll: the proxy ended the connection after a whole response; reconnect, no error.
    Reopen,
    /// Stream mode: count under `open_errors` before it opened, `drops` after.
    Fail(String),
}

struct Hub {
    poll: Poll,
    events: Events,
    target: SocketAddr,
    conns: Vec<Conn>,
    requests: Vec<Vec<u8>>,
    read_buf: Vec<u8>,
    tokens: Vec<usize>,
    next: usize,
    /// Streams whose open failed and that may try again, opened before new ones.
    retry: VecDeque<usize>,
    open_attempts: u32,
    concurrency: usize,
    ctx: Ctx,
}

impl Hub {
    fn new(
        mode: Mode,
        target: SocketAddr,
        requests: Vec<Vec<u8>>,
        count: usize,
        concurrency: usize,
        epoch: Instant,
    ) -> io::Result<Hub> {
        let now = Instant::now();
        let conns = (0..count)
            .map(|_| Conn {
                stream: None,
                phase: Phase::Idle,
                reader: ResponseReader::new(),
                partial: Vec::new(),
                since: now,
                primed: false,
                attempts: 0,
            })
            .collect();
        Ok(Hub {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS_MAX),
            target,
            conns,
            requests,
            read_buf: vec![0; READ_CHUNK],
            tokens: Vec::with_capacity(EVENTS_MAX),
            next: 0,
            retry: VecDeque::new(),
            open_attempts: 1,
            concurrency,
            ctx: Ctx {
                mode,
                epoch,
                in_flight: 0,
                live: 0,
                established: 0,
                open_errors: Kinds::default(),
                drops: Kinds::default(),
                first_connect: None,
                last_established: None,
                open_retries: 0,
                open_lines: 0,
                other_lines: 0,
                primed: 0,
                seen: None,
                measuring: false,
                cycles: 0,
                poll_errors: Kinds::default(),
                poll_hist: Histogram::new(),
            },
        })
    }

    /// Streams: opens more (retries first) while fewer than `concurrency` are in flight.
    /// Long-polls: opens all.
    fn fill(&mut self) {
        while self.ctx.in_flight < self.concurrency {
            let idx = match self.retry.pop_front() {
                Some(i) => i,
                None if self.next < self.conns.len() => {
                    self.next += 1;
                    self.next - 1
                }
                None => break,
            };
            self.open(idx);
        }
    }

    /// Every stream has been opened (or has given up) and none is opening now.
    fn opening_done(&self) -> bool {
        self.next >= self.conns.len() && self.retry.is_empty() && self.ctx.in_flight == 0
    }

    fn open(&mut self, idx: usize) {
        let now = Instant::now();
        self.ctx.first_connect.get_or_insert(now);
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        conn.reader = ResponseReader::new();
        conn.partial = Vec::new();
        conn.since = now;
        conn.attempts = conn.attempts.saturating_add(1);
        let result = connect_spread(self.target, idx).and_then(|mut s| {
            self.poll.registry().register(
                &mut s,
                Token(idx),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(s)
        });
        match result {
            Ok(s) => {
                conn.stream = Some(s);
                conn.phase = Phase::Connecting;
                if self.ctx.mode == Mode::Streams {
                    self.ctx.in_flight += 1;
                }
            }
            Err(e) => {
                let kind = format!("connect: {}", e.kind());
                match self.ctx.mode {
                    Mode::Streams => {
                        conn.phase = Phase::Gone;
                        self.ctx.open_errors.note(&kind);
                        if conn.attempts < self.open_attempts {
                            self.ctx.open_retries += 1;
                            self.retry.push_back(idx);
                        }
                    }
                    Mode::Polls => {
                        conn.phase = Phase::Down(now + RECONNECT_DELAY);
                        self.ctx.poll_errors.note(&kind);
                    }
                }
            }
        }
    }

    /// Polls once (at most `wait`) and serves the events.
    fn turn(&mut self, wait: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.tokens.clear();
        self.tokens.extend(self.events.iter().map(|e| e.token().0));
        for i in 0..self.tokens.len() {
            if let Some(&idx) = self.tokens.get(i) {
                self.serve(idx);
            }
        }
        Ok(())
    }

    fn serve(&mut self, idx: usize) {
        let Hub {
            conns,
            requests,
            read_buf,
            ctx,
            ..
        } = self;
        // Streams share one request; long-poll clients each have their own channel.
        let which = if requests.len() == 1 { 0 } else { idx };
        let request = requests.get(which).map_or(&[][..], |r| r.as_slice());
        let Some(conn) = conns.get_mut(idx) else {
            return;
        };
        match drive(conn, idx, request, read_buf, ctx) {
            Outcome::Keep => {}
            Outcome::Reopen => {
                conn.stream = None;
                self.open(idx);
            }
            Outcome::Fail(kind) => self.fail(idx, &kind),
        }
    }

    /// Closes a connection that failed: a stream is gone for good, a long-poll client reconnects.
    fn fail(&mut self, idx: usize, kind: &str) {
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        let was = conn.phase;
        conn.stream = None;
        conn.partial = Vec::new();
        match self.ctx.mode {
            Mode::Streams => {
                conn.phase = Phase::Gone;
                match was {
                    Phase::Open => {
                        self.ctx.live = self.ctx.live.saturating_sub(1);
                        self.ctx.drops.note(kind);
                    }
                    Phase::Connecting | Phase::Writing(_) | Phase::Waiting => {
                        self.ctx.in_flight = self.ctx.in_flight.saturating_sub(1);
                        self.ctx.open_errors.note(kind);
                        if conn.attempts < self.open_attempts {
                            self.ctx.open_retries += 1;
                            self.retry.push_back(idx);
                        }
                    }
                    _ => {}
                }
            }
            Mode::Polls => {
                conn.phase = Phase::Down(Instant::now() + RECONNECT_DELAY);
                self.ctx.poll_errors.note(kind);
            }
        }
    }

    /// Fails opens (streams) or requests (long-polls) older than `limit`; reconnects long-poll
    /// clients whose pause is over.
    fn sweep(&mut self, limit: Duration) {
        let now = Instant::now();
        for idx in 0..self.conns.len() {
            let Some(conn) = self.conns.get(idx) else {
                continue;
            };
            match conn.phase {
                Phase::Down(at) if now >= at => self.open(idx),
                Phase::Connecting | Phase::Writing(_) | Phase::Waiting
                    if now.saturating_duration_since(conn.since) > limit =>
                {
                    self.fail(idx, "timeout")
                }
                _ => {}
            }
        }
    }

    /// Runs until `done` says so or `deadline` passes; sweeps for timeouts every tick.
    fn run_until(
        &mut self,
        deadline: Instant,
        limit: Duration,
        mut done: impl FnMut(&mut Hub) -> bool,
    ) -> io::Result<bool> {
        let mut next_sweep = Instant::now();
        loop {
            self.fill();
            if done(self) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            if now >= next_sweep {
                self.sweep(limit);
                next_sweep = now + TICK;
            }
            self.turn(TICK.min(deadline.saturating_duration_since(now)))?;
        }
    }

    fn close_all(&mut self) {
        for conn in &mut self.conns {
            conn.stream = None;
            if conn.phase == Phase::Open {
                self.ctx.live = self.ctx.live.saturating_sub(1);
            }
            conn.phase = Phase::Gone;
        }
    }
}

/// Moves one connection along after an event: finish connecting, write, read.
fn drive(conn: &mut Conn, idx: usize, request: &[u8], buf: &mut [u8], ctx: &mut Ctx) -> Outcome {
    if conn.phase == Phase::Connecting {
        let Some(stream) = conn.stream.as_ref() else {
            return Outcome::Fail("connect: no socket".to_string());
        };
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return Outcome::Fail(format!("connect: {}", e.kind())),
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Outcome::Keep,
            Err(e) => return Outcome::Fail(format!("connect: {}", e.kind())),
        }
        let _ = stream.set_nodelay(true);
        conn.phase = Phase::Writing(0);
    }
    if let Phase::Writing(pos) = conn.phase {
        match write_from(conn, request, pos) {
            Ok(p) if p < request.len() => {
                conn.phase = Phase::Writing(p);
                return Outcome::Keep;
            }
            Ok(_) => conn.phase = Phase::Waiting,
            Err(kind) => return Outcome::Fail(kind),
        }
    }
    match conn.phase {
        Phase::Waiting | Phase::Open => read_all(conn, idx, request, buf, ctx),
        _ => Outcome::Keep,
    }
}

fn write_from(conn: &mut Conn, request: &[u8], mut pos: usize) -> Result<usize, String> {
    let stream = conn.stream.as_mut().ok_or("write: no socket")?;
    while pos < request.len() {
        match stream.write(request.get(pos..).unwrap_or(&[])) {
            Ok(0) => return Err("write: closed".to_string()),
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("write: {}", e.kind())),
        }
    }
    Ok(pos)
}

/// Reads until the socket is empty (edge-triggered), handing bytes to the stream or poll logic.
fn read_all(conn: &mut Conn, idx: usize, request: &[u8], buf: &mut [u8], ctx: &mut Ctx) -> Outcome {
    loop {
        let Some(stream) = conn.stream.as_mut() else {
            return Outcome::Fail("read: no socket".to_string());
        };
        let n = match stream.read(buf) {
            Ok(0) => {
                let clean = conn.reader.on_eof();
                return match (ctx.mode, conn.phase, clean) {
                    (Mode::Polls, _, true) => match poll_response(conn, ctx) {
                        Outcome::Keep => Outcome::Reopen,
                        other => other,
                    },
                    (Mode::Streams, Phase::Open, _) => {
                        Outcome::Fail("stream closed by proxy".to_string())
                    }
                    _ => Outcome::Fail("closed before response".to_string()),
                };
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::Fail(format!("read: {}", e.kind())),
        };
        let data = buf.get(..n).unwrap_or(&[]);
        let out = match ctx.mode {
            Mode::Streams => stream_bytes(conn, idx, data, ctx),
            Mode::Polls => poll_bytes(conn, request, data, ctx),
        };
        if !matches!(out, Outcome::Keep) {
            return out;
        }
    }
}

fn stream_bytes(conn: &mut Conn, idx: usize, data: &[u8], ctx: &mut Ctx) -> Outcome {
    let fed = match conn.reader.feed(data, &mut conn.partial) {
        Ok(f) => f,
        Err(e) => return Outcome::Fail(format!("bad response: {e}")),
    };
    if let Some(status) = fed.head {
        if status != 200 {
            return Outcome::Fail(format!("status {status}"));
        }
        if conn.phase == Phase::Waiting {
            conn.phase = Phase::Open;
            ctx.in_flight = ctx.in_flight.saturating_sub(1);
            ctx.live += 1;
            ctx.established += 1;
            ctx.last_established = Some(Instant::now());
        }
    }
    let now = Instant::now();
    let now_ns = nanos_since(ctx.epoch, now);
    let primed = &mut conn.primed;
    let lines = split_lines(&mut conn.partial, |line| match parse_line(line) {
        Line::Open => ctx.open_lines += 1,
        Line::Prime(_) => {
            if !*primed {
                *primed = true;
                ctx.primed += 1;
            }
        }
        Line::Message {
            kind: b'm',
            seq,
            sent_ns,
        } => {
            if let Some(seen) = ctx.seen.as_mut() {
                seen.record(idx, seq, now_ns.saturating_sub(sent_ns), now);
            }
        }
        _ => ctx.other_lines += 1,
    });
    if let Err(e) = lines {
        return Outcome::Fail(e.to_string());
    }
    if conn.partial.is_empty() && conn.partial.capacity() > PARTIAL_KEEP {
        conn.partial = Vec::new();
    }
    if fed.ended {
        return Outcome::Fail("stream ended by proxy".to_string());
    }
    Outcome::Keep
}

fn poll_bytes(conn: &mut Conn, request: &[u8], data: &[u8], ctx: &mut Ctx) -> Outcome {
    if conn.phase != Phase::Waiting {
        return Outcome::Fail("bytes with no request in flight".to_string());
    }
    let fed = match conn.reader.feed(data, &mut conn.partial) {
        Ok(f) => f,
        Err(e) => return Outcome::Fail(format!("bad response: {e}")),
    };
    if !fed.ended {
        return Outcome::Keep;
    }
    if fed.used < data.len() {
        return Outcome::Fail("bytes with no request in flight".to_string());
    }
    if let Outcome::Fail(kind) = poll_response(conn, ctx) {
        return Outcome::Fail(kind);
    }
    if !conn.reader.persistent() {
        // Counted as a cycle already; the proxy chose to close, so open a fresh connection.
        return Outcome::Reopen;
    }
    conn.since = Instant::now();
    match write_from(conn, request, 0) {
        Ok(p) if p < request.len() => conn.phase = Phase::Writing(p),
        Ok(_) => conn.phase = Phase::Waiting,
        Err(kind) => return Outcome::Fail(kind),
    }
    Outcome::Keep
}

/// Judges a whole long-poll response held in `conn.partial`.
fn poll_response(conn: &mut Conn, ctx: &mut Ctx) -> Outcome {
    let status = conn.reader.status();
    let body = std::mem::take(&mut conn.partial);
    if status != 200 {
        return Outcome::Fail(format!("status {status}"));
    }
    let line = body.strip_suffix(b"\n").unwrap_or(&body);
    match parse_line(line) {
        Line::Message {
            kind: b'r',
            sent_ns,
            ..
        } => {
            if ctx.measuring {
                ctx.cycles += 1;
                let now_ns = nanos_since(ctx.epoch, Instant::now());
                ctx.poll_hist.record(now_ns.saturating_sub(sent_ns));
            }
            Outcome::Keep
        }
        _ => Outcome::Fail("200 without a published body (hold timed out?)".to_string()),
    }
}

fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

// --- publishing ------------------------------------------------------------------------------

/// One POST to the control API on a fresh connection; the status of its answer.
fn post(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<u16, String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("publish connect: {}", e.kind()))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("publish socket: {}", e.kind()))?;
    s.write_all(request)
        .map_err(|e| format!("publish write: {}", e.kind()))?;
    let mut framer = ResponseFramer::new();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) => {
                return framer
                    .on_eof()
                    .map(|d| d.status)
                    .ok_or_else(|| "publish: closed before the answer".to_string())
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("publish read: {}", e.kind())),
        };
        got.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        let (used, done) = framer
            .feed(&got)
            .map_err(|e| format!("publish answer: {e}"))?;
        if let Some(d) = done {
            return Ok(d.status);
        }
        got.drain(..used.min(got.len()));
        if got.len() > REPLY_MAX {
            return Err("publish answer too large".to_string());
        }
    }
}

#[derive(Default)]
struct PublishTally {
    posts: u64,
    items: u64,
    failed: Kinds,
    first_sent: Option<Instant>,
    last_done: Option<Instant>,
}

impl PublishTally {
    fn merge(&mut self, other: PublishTally) {
        self.posts += other.posts;
        self.items += other.items;
        for (k, n) in other.failed.list {
            self.failed.add(&k, n);
        }
        self.first_sent = match (self.first_sent, other.first_sent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_done = self.last_done.max(other.last_done);
    }

    fn note(&mut self, result: Result<u16, String>) {
        match result {
            Ok(200) => {}
            Ok(code) => self.failed.note(&format!("publish status {code}")),
            Err(kind) => self.failed.note(&kind),
        }
    }
}

struct Control {
    addr: SocketAddr,
    host: String,
    timeout: Duration,
}

/// Publishes `m` messages `0..publishes` on `channel`, seqs `lane, lane+lanes, ...`, one POST each.
fn publish_lane(
    ctl: Arc<Control>,
    epoch: Instant,
    channel: String,
    publishes: u64,
    size: usize,
    lane: u64,
    lanes: u64,
) -> PublishTally {
    let mut tally = PublishTally::default();
    let mut seq = lane;
    while seq < publishes {
        let now = Instant::now();
        tally.first_sent.get_or_insert(now);
        let content = message('m', seq, nanos_since(epoch, now), size);
        let body = stream_items(&channel, &[content]);
        let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
        tally.posts += 1;
        tally.items += 1;
        tally.note(result);
        tally.last_done = Some(Instant::now());
        seq += lanes;
    }
    tally
}

/// How the long-poll publisher paces itself.
struct Rounds {
    clients: usize,
    batch: usize,
    size: usize,
    /// Pause after each round; zero publishes flat out.
    gap: Duration,
}

/// Posts one response per channel `lp-0..clients`, `batch` items per POST, round after round,
/// until `stop` or `deadline`.
fn publish_rounds(
    ctl: Arc<Control>,
    epoch: Instant,
    rounds: Rounds,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> PublishTally {
    let Rounds {
        clients,
        batch,
        size,
        gap,
    } = rounds;
    let mut tally = PublishTally::default();
    let channels: Vec<String> = (0..clients).map(|i| format!("lp-{i}")).collect();
    let mut seq = 0u64;
    'rounds: loop {
        for group in channels.chunks(batch.max(1)) {
            let now = Instant::now();
            if stop.load(Ordering::Relaxed) || now >= deadline {
                break 'rounds;
            }
            tally.first_sent.get_or_insert(now);
            let sent = nanos_since(epoch, now);
            let items: Vec<(String, String)> = group
                .iter()
                .map(|c| {
                    seq += 1;
                    (c.clone(), message('r', seq, sent, size))
                })
                .collect();
            let body = response_items(&items);
            let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
            let failed = !matches!(result, Ok(200));
            tally.posts += 1;
            tally.items += items.len() as u64;
            tally.note(result);
            tally.last_done = Some(Instant::now());
            if failed {
                // A control API that refuses should not be hammered in a tight loop.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !gap.is_zero() {
            std::thread::sleep(gap.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
    tally
}

// --- CPU ---------------------------------------------------------------------------------------

struct Cpu {
    proxy_pid: Option<u32>,
    clk_tck: u64,
}

#[derive(Clone, Copy)]
struct CpuSample {
    proxy: Option<u64>,
    client: Option<u64>,
}

impl Cpu {
    fn sample(&self) -> CpuSample {
        let proxy = self
            .proxy_pid
            .and_then(|pid| procfs::tree_ticks(&procfs::read_all(), pid));
        CpuSample {
            proxy,
            client: procfs::self_ticks(),
        }
    }

    /// `"proxy_cpu_s":..,"client_cpu_s":..` between two samples (null when unknown).
    fn json(&self, a: CpuSample, b: CpuSample) -> (String, Option<f64>) {
        let secs = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) if self.clk_tck > 0 => {
                Some(y.saturating_sub(x) as f64 / self.clk_tck as f64)
            }
            _ => None,
        };
        let proxy = secs(a.proxy, b.proxy);
        let client = secs(a.client, b.client);
        let fmt = |v: Option<f64>| v.map_or("null".to_string(), |s| format!("{s:.2}"));
        (
            format!(
                "\"proxy_cpu_s\":{},\"client_cpu_s\":{}",
                fmt(proxy),
                fmt(client)
            ),
            proxy,
        )
    }
}

// --- scenarios -------------------------------------------------------------------------------

struct Settings {
    target: SocketAddr,
    control: Option<SocketAddr>,
    path: String,
    channel: String,
    subscribers: usize,
    publishes: u64,
    publish_parallel: usize,
    size: usize,
    concurrency: usize,
    open_attempts: u32,
    open_timeout: Duration,
    open_max: Duration,
    prime_timeout: Duration,
    quiet: Duration,
    drain_max: Duration,
    ready_file: Option<String>,
    release_file: Option<String>,
    hold_max: Duration,
    clients: usize,
    duration: Duration,
    warmup: Duration,
    batch: usize,
    round_gap: Duration,
    timeout: Duration,
    cpu: Cpu,
    epoch: Instant,
}

fn stream_request(s: &Settings, channel: &str) -> Vec<u8> {
    format!(
        "GET {}?channel={} HTTP/1.1\r\nHost: {}\r\nUser-Agent: holdfast-bench\r\n\r\n",
        s.path, channel, s.target
    )
    .into_bytes()
}

fn control(s: &Settings) -> Result<Arc<Control>, String> {
    let addr = s.control.ok_or("--control is required for this scenario")?;
    Ok(Arc::new(Control {
        addr,
        host: addr.to_string(),
        timeout: Duration::from_secs(10),
    }))
}

fn secs_between(a: Option<Instant>, b: Option<Instant>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
        _ => 0.0,
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Opens every stream (bounded concurrency) and returns the opening summary as JSON fields.
fn open_streams(hub: &mut Hub, s: &Settings) -> Result<String, String> {
    let deadline = Instant::now() + s.open_max;
    let all = hub
        .run_until(deadline, s.open_timeout, |h| h.opening_done())
        .map_err(|e| format!("poll failed: {e}"))?;
    if !all {
        // Whatever is still opening at the deadline counts as a timeout.
        hub.sweep(Duration::ZERO);
    }
    let span = secs_between(hub.ctx.first_connect, hub.ctx.last_established);
    let rate = if span > 0.0 {
        hub.ctx.established as f64 / span
    } else {
        0.0
    };
    Ok(format!(
        "\"subscribers\":{},\"established\":{},\"open_attempts\":{},\"open_errors\":{},\
\"open_retries\":{},\"open_error_kinds\":{},\"open_s\":{:.3},\"opens_per_s\":{:.1},\
\"open_phase_complete\":{}",
        hub.conns.len(),
        hub.ctx.established,
        hub.open_attempts,
        hub.ctx.open_errors.total,
        hub.ctx.open_retries,
        hub.ctx.open_errors.json(),
        span,
        rate,
        all
    ))
}

fn fanout(s: &Settings) -> Result<String, String> {
    let ctl = control(s)?;
    let seen_bits = (s.subscribers as u64).saturating_mul(s.publishes);
    if seen_bits > SEEN_BITS_MAX {
        return Err(format!(
            "--subscribers x --publishes must be at most {SEEN_BITS_MAX}"
        ));
    }
    let request = stream_request(s, &s.channel);
    let mut hub = Hub::new(
        Mode::Streams,
        s.target,
        vec![request],
        s.subscribers,
        s.concurrency,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    hub.open_attempts = s.open_attempts;
    let opened = open_streams(&mut hub, s)?;
    eprintln!(
        "bench-fanout: {} of {} streams open",
        hub.ctx.live, s.subscribers
    );

    // Prime: publish until every open stream has received something, so the measurement does not
    // race subscriptions that the proxy has not finished setting up.
    let mut rounds = 0;
    let prime_started = Instant::now();
    while rounds < PRIME_ROUNDS_MAX && hub.ctx.primed < hub.ctx.live {
        let body = stream_items(&s.channel, &[format!("p {rounds}\n")]);
        let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
        if !matches!(result, Ok(200)) {
            return Err(format!("priming publish failed: {result:?}"));
        }
        rounds += 1;
        let deadline = Instant::now() + s.prime_timeout;
        hub.run_until(deadline, s.open_timeout, |h| h.ctx.primed >= h.ctx.live)
            .map_err(|e| format!("poll failed: {e}"))?;
    }
    let prime_s = prime_started.elapsed().as_secs_f64();
    let unprimed = hub.ctx.live.saturating_sub(hub.ctx.primed);
    let live_at_start = hub.ctx.live;
    let drops_before = hub.ctx.drops.total;
    eprintln!(
        "bench-fanout: primed in {rounds} round(s), {prime_s:.2}s; {unprimed} stream(s) unprimed; publishing {}",
        s.publishes
    );

    hub.ctx.seen = Some(Seen::new(s.subscribers, s.publishes));
    let cpu_start = s.cpu.sample();
    let lanes = s.publish_parallel as u64;
    let mut publishers: Vec<JoinHandle<PublishTally>> = Vec::new();
    for lane in 0..lanes {
        let ctl = Arc::clone(&ctl);
        let (epoch, channel, publishes, size) = (s.epoch, s.channel.clone(), s.publishes, s.size);
        let handle = std::thread::Builder::new()
            .name(format!("publish-{lane}"))
            .spawn(move || publish_lane(ctl, epoch, channel, publishes, size, lane, lanes))
            .map_err(|e| e.to_string())?;
        publishers.push(handle);
    }
    let expected = (live_at_start as u64).saturating_mul(s.publishes);
    // Publishing itself is bounded by the POST timeouts; the drain after it by --drain-max.
    let hard_deadline = Instant::now()
        + s.drain_max
        + Duration::from_secs(s.publishes.saturating_mul(20).min(86_400));
    let mut published_at: Option<Instant> = None;
    let quiet = s.quiet;
    let drain_max = s.drain_max;
    let complete = hub
        .run_until(hard_deadline, s.open_timeout, |h| {
            let now = Instant::now();
            if published_at.is_none() && publishers.iter().all(|p| p.is_finished()) {
                published_at = Some(now);
            }
            let Some(seen) = h.ctx.seen.as_ref() else {
                return true;
            };
            if seen.unique >= expected || h.ctx.live == 0 {
                return true;
            }
            match published_at {
                None => false,
                Some(at) => {
                    let last = seen.last_at.unwrap_or(at).max(at);
                    now.saturating_duration_since(last) >= quiet
                        || now.saturating_duration_since(at) >= drain_max
                }
            }
        })
        .map_err(|e| format!("poll failed: {e}"))?;
    let cpu_end = s.cpu.sample();
    let mut tally = PublishTally::default();
    for p in publishers {
        match p.join() {
            Ok(t) => tally.merge(t),
            Err(_) => return Err("a publisher thread panicked".to_string()),
        }
    }
    let seen = hub.ctx.seen.take().ok_or("lost the delivery map")?;
    let window = secs_between(tally.first_sent, seen.last_at);
    let rate = if window > 0.0 {
        seen.unique as f64 / window
    } else {
        0.0
    };
    let (cpu_json, proxy_cpu) = s.cpu.json(cpu_start, cpu_end);
    let cpu_per = match proxy_cpu {
        Some(c) if seen.unique > 0 => format!("{:.2}", c * 1e6 / seen.unique as f64),
        _ => "null".to_string(),
    };
    let mut out = String::from("{\"scenario\":\"fanout\",");
    out.push_str(&opened);
    let _ = write!(
        out,
        ",\"prime_rounds\":{rounds},\"prime_s\":{prime_s:.3},\"unprimed\":{unprimed},\
\"streams_measured\":{live_at_start},\"publishes\":{},\"publish_parallel\":{},\"size\":{},\
\"posts\":{},\"publish_errors\":{},\"publish_error_kinds\":{},\"publish_s\":{:.3},\
\"expected\":{expected},\"received\":{},\"lost\":{},\"duplicates\":{},\"unknown\":{},\
\"other_lines\":{},\"dropped_streams\":{},\"drop_kinds\":{},\"delivery_window_s\":{window:.3},\
\"deliveries_per_s\":{rate:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\
\"complete\":{},{cpu_json},\"proxy_cpu_us_per_delivery\":{cpu_per}}}",
        s.publishes,
        s.publish_parallel,
        s.size,
        tally.posts,
        tally.failed.total,
        tally.failed.json(),
        secs_between(tally.first_sent, tally.last_done),
        seen.unique,
        expected.saturating_sub(seen.unique),
        seen.duplicates,
        seen.unknown,
        hub.ctx.other_lines,
        hub.ctx.drops.total.saturating_sub(drops_before),
        hub.ctx.drops.json(),
        us(seen.hist.quantile(0.5)),
        us(seen.hist.quantile(0.99)),
        us(seen.hist.max()),
        complete && seen.unique >= expected,
    );
    hub.close_all();
    Ok(out)
}

/// Writes `text` to `path` so that a reader never sees half of it.
fn write_atomically(path: &str, text: &str) -> Result<(), String> {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {path}: {e}"))
}

fn idle(s: &Settings) -> Result<String, String> {
    let request = stream_request(s, &s.channel);
    let mut hub = Hub::new(
        Mode::Streams,
        s.target,
        vec![request],
        s.subscribers,
        s.concurrency,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    let cpu_start = s.cpu.sample();
    let opened = open_streams(&mut hub, s)?;
    let cpu_end = s.cpu.sample();
    let held = hub.ctx.live;
    eprintln!("bench-fanout: holding {held} of {} streams", s.subscribers);
    let (cpu_json, _) = s.cpu.json(cpu_start, cpu_end);
    let summary = format!("{{\"scenario\":\"idle\",{opened},\"held\":{held},{cpu_json}}}");
    if let Some(path) = &s.ready_file {
        write_atomically(path, &summary)?;
    }
    let drops_before = hub.ctx.drops.total;
    let release = s.release_file.clone();
    let deadline = Instant::now() + s.hold_max;
    let mut next_check = Instant::now();
    let released = hub
        .run_until(deadline, s.open_timeout, |_| {
            let now = Instant::now();
            if now < next_check {
                return false;
            }
            next_check = now + Duration::from_millis(50);
            release
                .as_deref()
                .is_some_and(|p| std::path::Path::new(p).exists())
        })
        .map_err(|e| format!("poll failed: {e}"))?;
    let still = hub.ctx.live;
    hub.close_all();
    let summary = summary.trim_end_matches('}');
    Ok(format!(
        "{summary},\"released_by_file\":{released},\"dropped_while_held\":{},\"drop_kinds\":{},\
\"held_at_release\":{still}}}",
        hub.ctx.drops.total.saturating_sub(drops_before),
        hub.ctx.drops.json(),
    ))
}

fn longpoll(s: &Settings) -> Result<String, String> {
    let ctl = control(s)?;
    let requests: Vec<Vec<u8>> = (0..s.clients)
        .map(|i| stream_request(s, &format!("lp-{i}")))
        .collect();
    let mut hub = Hub::new(
        Mode::Polls,
        s.target,
        requests,
        s.clients,
        s.clients,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    // Every client connects and sends its first poll before publishing starts.
    let ready_by = Instant::now() + s.open_max;
    hub.run_until(ready_by, s.timeout, |h| {
        h.next >= h.conns.len() && h.conns.iter().all(|c| c.phase == Phase::Waiting)
    })
    .map_err(|e| format!("poll failed: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let end = start + s.warmup + s.duration;
    let publisher = {
        let (ctl, stop, epoch) = (Arc::clone(&ctl), Arc::clone(&stop), s.epoch);
        let rounds = Rounds {
            clients: s.clients,
            batch: s.batch,
            size: s.size,
            gap: s.round_gap,
        };
        std::thread::Builder::new()
            .name("publish".to_string())
            .spawn(move || publish_rounds(ctl, epoch, rounds, stop, end))
            .map_err(|e| e.to_string())?
    };
    hub.run_until(start + s.warmup, s.timeout, |_| false)
        .map_err(|e| format!("poll failed: {e}"))?;
    hub.ctx.measuring = true;
    let errors_before = hub.ctx.poll_errors.total;
    let cpu_start = s.cpu.sample();
    let window_start = Instant::now();
    hub.run_until(end, s.timeout, |_| false)
        .map_err(|e| format!("poll failed: {e}"))?;
    let window = window_start.elapsed().as_secs_f64();
    hub.ctx.measuring = false;
    let cpu_end = s.cpu.sample();
    stop.store(true, Ordering::Relaxed);
    let tally = publisher
        .join()
        .map_err(|_| "the publisher thread panicked".to_string())?;
    let waiting = hub
        .conns
        .iter()
        .filter(|c| c.phase == Phase::Waiting)
        .count();
    hub.close_all();
    let rate = if window > 0.0 {
        hub.ctx.cycles as f64 / window
    } else {
        0.0
    };
    let (cpu_json, proxy_cpu) = s.cpu.json(cpu_start, cpu_end);
    let cpu_per = match proxy_cpu {
        Some(c) if hub.ctx.cycles > 0 => format!("{:.2}", c * 1e6 / hub.ctx.cycles as f64),
        _ => "null".to_string(),
    };
    let post_s = secs_between(tally.first_sent, tally.last_done);
    Ok(format!(
        "{{\"scenario\":\"longpoll\",\"clients\":{},\"batch\":{},\"window_s\":{window:.3},\
\"round_gap_s\":{:.3},\"cycles\":{},\"cycles_per_s\":{rate:.1},\"errors\":{},\"errors_in_window\":{},\"error_kinds\":{},\
\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"posts\":{},\"items\":{},\"posts_per_s\":{:.1},\
\"publish_errors\":{},\"publish_error_kinds\":{},\"waiting_at_end\":{waiting},{cpu_json},\
\"proxy_cpu_us_per_cycle\":{cpu_per}}}",
        s.clients,
        s.batch,
        s.round_gap.as_secs_f64(),
        hub.ctx.cycles,
        hub.ctx.poll_errors.total,
        hub.ctx.poll_errors.total.saturating_sub(errors_before),
        hub.ctx.poll_errors.json(),
        us(hub.ctx.poll_hist.quantile(0.5)),
        us(hub.ctx.poll_hist.quantile(0.99)),
        us(hub.ctx.poll_hist.max()),
        tally.posts,
        tally.items,
        if post_s > 0.0 {
            tally.posts as f64 / post_s
        } else {
            0.0
        },
        tally.failed.total,
        tally.failed.json(),
    ))
}

// --- command line ----------------------------------------------------------------------------

fn seconds(opts: &Options, name: &str, default: f64) -> Result<Duration, String> {
    let s: f64 = opts.number(name, default).map_err(|e| e.to_string())?;
    if !(0.0..=SECONDS_MAX).contains(&s) {
        return Err(format!("{name} must be between 0 and {SECONDS_MAX}"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn addr(opts: &Options, name: &str) -> Result<Option<SocketAddr>, String> {
    opts.value(name)
        .map(|t| {
            t.parse()
                .map_err(|_| format!("{name} must be IP:PORT, not {t:?}"))
        })
        .transpose()
}

fn plain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

fn run() -> Result<(), String> {
    let valued = [
        "--scenario",
        "--target",
        "--control",
        "--path",
        "--channel",
        "--subscribers",
        "--publishes",
        "--publish-parallel",
        "--size",
        "--concurrency",
        "--open-attempts",
        "--open-timeout",
        "--open-max",
        "--prime-timeout",
        "--quiet",
        "--drain-max",
        "--ready-file",
        "--release-file",
        "--hold-max",
        "--clients",
        "--duration",
        "--warmup",
        "--batch",
        "--round-gap",
        "--timeout",
        "--proxy-pid",
        "--clk-tck",
    ];
    let opts = Options::parse(std::env::args().skip(1), &valued, &["--help"])
        .map_err(|e| format!("{e}\n{USAGE}"))?;
    if opts.flag("--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let num = |name: &str, default: usize| -> Result<usize, String> {
        opts.number(name, default).map_err(|e| e.to_string())
    };
    let target = addr(&opts, "--target")?.ok_or(format!("--target is required\n{USAGE}"))?;
    let path = opts.value("--path").unwrap_or("/stream").to_string();
    let channel = opts.value("--channel").unwrap_or("bench").to_string();
    if !path.starts_with('/') || !plain(&path) || !plain(&channel) || channel.contains('/') {
        return Err("--path and --channel must be plain names (letters, digits, -_./)".to_string());
    }
    let settings = Settings {
        target,
        control: addr(&opts, "--control")?,
        path,
        channel,
        subscribers: num("--subscribers", 5000)?,
        publishes: opts
            .number("--publishes", 200u64)
            .map_err(|e| e.to_string())?,
        publish_parallel: num("--publish-parallel", 1)?,
        size: num("--size", 100)?,
        concurrency: num("--concurrency", 1000)?,
        open_attempts: opts
            .number("--open-attempts", 3u32)
            .map_err(|e| e.to_string())?,
        open_timeout: seconds(&opts, "--open-timeout", 30.0)?,
        open_max: seconds(&opts, "--open-max", 300.0)?,
        prime_timeout: seconds(&opts, "--prime-timeout", 30.0)?,
        quiet: seconds(&opts, "--quiet", 5.0)?,
        drain_max: seconds(&opts, "--drain-max", 120.0)?,
        ready_file: opts.value("--ready-file").map(str::to_string),
        release_file: opts.value("--release-file").map(str::to_string),
        hold_max: seconds(&opts, "--hold-max", 300.0)?,
        clients: num("--clients", 500)?,
        duration: seconds(&opts, "--duration", 10.0)?,
        warmup: seconds(&opts, "--warmup", 1.0)?,
        batch: num("--batch", 100)?,
        round_gap: seconds(&opts, "--round-gap", 0.0)?,
        timeout: seconds(&opts, "--timeout", 10.0)?,
        cpu: Cpu {
            proxy_pid: opts
                .value("--proxy-pid")
                .map(|p| {
                    p.parse()
                        .map_err(|_| format!("--proxy-pid: cannot use {p:?}"))
                })
                .transpose()?,
            clk_tck: opts
                .number("--clk-tck", 100u64)
                .map_err(|e| e.to_string())?,
        },
        epoch: Instant::now(),
    };
    let s = &settings;
    if s.subscribers == 0
        || s.subscribers > STREAMS_MAX
        || s.clients == 0
        || s.clients > STREAMS_MAX
    {
        return Err(format!(
            "--subscribers and --clients must be 1..={STREAMS_MAX}"
        ));
    }
    if s.publishes == 0 || s.publishes > PUBLISHES_MAX {
        return Err(format!("--publishes must be 1..={PUBLISHES_MAX}"));
    }
    if s.publish_parallel == 0 || s.publish_parallel > PUBLISH_PARALLEL_MAX {
        return Err(format!(
            "--publish-parallel must be 1..={PUBLISH_PARALLEL_MAX}"
        ));
    }
    if s.concurrency == 0 || s.concurrency > CONCURRENCY_MAX {
        return Err(format!("--concurrency must be 1..={CONCURRENCY_MAX}"));
    }
    if s.open_attempts == 0 || s.open_attempts > OPEN_ATTEMPTS_MAX {
        return Err(format!("--open-attempts must be 1..={OPEN_ATTEMPTS_MAX}"));
    }
    if s.batch == 0 || s.batch > BATCH_MAX {
        return Err(format!("--batch must be 1..={BATCH_MAX}"));
    }
    if s.open_timeout.is_zero() || s.timeout.is_zero() || s.duration.is_zero() {
        return Err("--open-timeout, --timeout and --duration must be above 0".to_string());
    }
    let line = match opts.value("--scenario") {
        Some("fanout") => fanout(s)?,
        Some("idle") => idle(s)?,
        Some("longpoll") => longpoll(s)?,
        _ => {
            return Err(format!(
                "--scenario must be fanout, idle or longpoll\n{USAGE}"
            ))
        }
    };
    println!("{line}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-fanout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loopback source addresses client sockets are spread over.
const SOURCE_ADDRS: usize = 64;

/// A non-blocking connect. To a loopback IPv4 target the socket is first bound to one of
/// `SOURCE_ADDRS` loopback source addresses (by stream index): with thousands of sockets from one
/// address the kernel's search for a free ephemeral port dominated the client's CPU, so the open
/// rate measured the client rather than the proxy.
fn connect_spread(target: SocketAddr, idx: usize) -> io::Result<TcpStream> {
    let SocketAddr::V4(v4) = target else {
        return TcpStream::connect(target);
    };
    if !v4.ip().is_loopback() {
        return TcpStream::connect(target);
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    let src = std::net::Ipv4Addr::new(127, 0, 1, 1 + (idx % SOURCE_ADDRS) as u8);
    sock.bind(&SocketAddr::from((src, 0)).into())?;
    match sock.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}
