//! bench-ws: a WebSocket load client for measuring a proxy, in one of three scenarios.
//!
//! - `echo`: `--clients` WebSocket connections to an echo origin, each with exactly one message of
//!   `--size` bytes in flight (a closed loop: the next goes out as soon as the echo of the last is
//!   read). After `--warmup` seconds the counters start; after `--duration` more it reports
//!   round-trips/s, latency from the write of a message to the read of its echo, and errors.
//!   Failed connections are counted and opened again after a short pause. `--threads` splits the
//!   clients over that many threads, each with its own `mio::Poll`.
//! - `fanout`: opens `--clients` connections on `--path?channel=--channel` (an origin that
//!   subscribes each connection to that channel, or the proxy's `test` target), primes them
//!   (publishes a `ws-message` probe every `--prime-interval` until every connection has received
//!   one, so every subscription is live), then publishes `--publishes` messages flat out,
//!   `--batch` items per POST, and counts what every connection receives: deliveries/s, loss,
//!   duplicates, publish-to-receive latency. It ends when everything has arrived, or `--quiet`
//!   seconds after both the last publish and the last message of any kind, or `--drain-max`
//!   seconds after the last publish.
//! - `idle`: opens `--clients` connections, reports how fast they opened, writes `--ready-file`,
//!   keeps them until `--release-file` appears (or `--hold-max`), then closes them all.
//!
//! Client frames are masked with a fresh mask each; server frames are parsed and checked
//! (`holdfast_bench::ws::ClientReader`); pings are answered. Connections are spread over loopback
//! source addresses 127.0.1.x so thousands of them do not crowd one address's ephemeral ports.
//! Every phase has a deadline. One JSON line goes to stdout.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use holdfast_bench::grip::{message, parse_line, publish_request, ws_items};
use holdfast_bench::hub::{publish_phase_over, Cpu};
use holdfast_bench::ws::{
    check_handshake, client_handshake, head_end, write_frame, ClientReader, Incoming,
    CLIENT_HEAD_MAX, OP_CLOSE, OP_PONG, OP_TEXT,
};
use holdfast_bench::{Histogram, Line, Options, ResponseFramer};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const CLIENTS_MAX: usize = 60_000;
const THREADS_MAX: usize = 64;
const PUBLISHES_MAX: u64 = 1_000_000;
/// Bits of the per-connection "which messages arrived" map; clients × publishes may not exceed it.
const SEEN_BITS_MAX: u64 = 1 << 30;
const CONCURRENCY_MAX: usize = 20_000;
const OPEN_ATTEMPTS_MAX: u32 = 10;
const PUBLISH_PARALLEL_MAX: usize = 64;
const BATCH_MAX: usize = 10_000;
/// Largest message a connection accepts (the benchmark's are about 100 bytes).
const MESSAGE_MAX: usize = 64 * 1024;
/// Largest echo message.
const ECHO_SIZE_MAX: usize = 60 * 1024;
const READ_CHUNK: usize = 64 * 1024;
const EVENTS_MAX: usize = 1024;
/// Largest control API answer read; its status is all that matters.
const REPLY_MAX: usize = 64 * 1024;
/// Distinct error kinds kept per tally; the rest are counted under "other".
const KINDS_MAX: usize = 16;
/// Longest sleep in `poll`, so deadlines and phase changes are seen promptly.
const TICK: Duration = Duration::from_millis(10);
/// Pause before an echo client reconnects after a failure.
const RECONNECT_DELAY: Duration = Duration::from_millis(20);
/// Output buffer capacity kept once it has been written out.
const OUT_KEEP: usize = 4096;
/// Loopback source addresses client sockets are spread over.
const SOURCE_ADDRS: usize = 64;

const USAGE: &str = "usage: bench-ws --scenario echo|fanout|idle --target IP:PORT [--path /]
        [--clients N] [--concurrency 1000] [--open-attempts 1|3] [--open-timeout 30] [--open-max 300]
  echo:   [--threads 1] [--size 64] [--duration 10] [--warmup 2] [--timeout 5]
  fanout: --control IP:PORT [--channel bench] [--publishes 200] [--batch 10] [--publish-parallel 1]
          [--size 100] [--prime-interval 2] [--prime-timeout 60] [--quiet 5]
          [--drain-max 120]
  idle:   [--ready-file F] [--release-file F] [--hold-max 300]
  all:    [--proxy-pid PID] [--clk-tck 100]";

// --- tallies ---------------------------------------------------------------------------------

/// Counts by kind, with a bounded number of kinds.
#[derive(Debug, Default, Clone)]
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

    fn merge(&mut self, other: &Kinds) {
        for (k, n) in &other.list {
            self.add(k, *n);
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

/// Which published messages each connection has received, to count loss and duplicates exactly.
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
    fn new(conns: usize, publishes: u64) -> Seen {
        let words = publishes.div_ceil(64) as usize;
        Seen {
            publishes,
            words,
            bits: vec![0; conns.saturating_mul(words)],
            unique: 0,
            duplicates: 0,
            unknown: 0,
            hist: Histogram::new(),
            last_at: None,
        }
    }

    fn record(&mut self, conn: usize, seq: u64, latency_ns: u64, now: Instant) {
        if seq >= self.publishes {
            self.unknown += 1;
            return;
        }
        let word = conn
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

/// A small xorshift generator for masks and keys: they need to vary, not to be secret.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut r = Rng((t ^ u64::from(std::process::id()).rotate_left(32) ^ salt) | 1);
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_le_bytes()
    }

    fn key(&mut self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&self.next().to_le_bytes());
        k[8..].copy_from_slice(&self.next().to_le_bytes());
        k
    }
}

// --- connections -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not opened yet.
    Idle,
    Connecting,
    /// Handshake sent (or being sent), the 101 awaited.
    Handshake,
    Open,
    /// Echo client waiting to reconnect.
    Down(Instant),
    /// Failed or ended; reopened only through the retry queue.
    Gone,
}

struct Conn {
    stream: Option<TcpStream>,
    phase: Phase,
    key: [u8; 16],
    /// The handshake answer so far.
    head: Vec<u8>,
    reader: ClientReader,
    out: Vec<u8>,
    out_pos: usize,
    /// When the current open began, or (echo) when the message in flight was written.
    since: Instant,
    attempts: u32,
    /// Echo: sequence number of the message in flight, and whether one is.
    seq: u64,
    awaiting: bool,
    primed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Echo,
    Fanout,
    Idle,
}

/// Everything connections report into.
struct Ctx {
    mode: Mode,
    epoch: Instant,
    rng: Rng,
    /// Echo message size.
    size: usize,
    /// Scratch for the expected echo.
    expect: Vec<u8>,
    in_flight: usize,
    live: usize,
    established: u64,
    open_errors: Kinds,
    /// Connections lost after they opened.
    drops: Kinds,
    first_connect: Option<Instant>,
    last_established: Option<Instant>,
    open_retries: u64,
    /// Messages that were neither a probe nor a measured message (fan-out, idle).
    other_messages: u64,
    /// When the last text or binary message of any kind arrived (fan-out, idle).
    last_message_at: Option<Instant>,
    primed: usize,
    seen: Option<Seen>,
    // echo
    measuring: bool,
    round_trips: u64,
    echo_errors: Kinds,
    echo_hist: Histogram,
}

enum Outcome {
    Keep,
    Fail(String),
}

struct Hub {
    poll: Poll,
    events: Events,
    target: SocketAddr,
    host: String,
    path: String,
    conns: Vec<Conn>,
    /// Added to a connection's index to pick its source address (threads number their clients).
    first_index: usize,
    read_buf: Vec<u8>,
    tokens: Vec<usize>,
    next: usize,
    retry: VecDeque<usize>,
    open_attempts: u32,
    concurrency: usize,
    ctx: Ctx,
}

impl Hub {
    #[allow(clippy::too_many_arguments)]
    fn new(
        mode: Mode,
        target: SocketAddr,
        path: String,
        count: usize,
        first_index: usize,
        concurrency: usize,
        size: usize,
        epoch: Instant,
    ) -> io::Result<Hub> {
        let now = Instant::now();
        let conns = (0..count)
            .map(|_| Conn {
                stream: None,
                phase: Phase::Idle,
                key: [0; 16],
                head: Vec::new(),
                reader: ClientReader::new(MESSAGE_MAX),
                out: Vec::new(),
                out_pos: 0,
                since: now,
                attempts: 0,
                seq: 0,
                awaiting: false,
                primed: false,
            })
            .collect();
        Ok(Hub {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS_MAX),
            target,
            host: target.to_string(),
            path,
            conns,
            first_index,
            read_buf: vec![0; READ_CHUNK],
            tokens: Vec::with_capacity(EVENTS_MAX),
            next: 0,
            retry: VecDeque::new(),
            open_attempts: 1,
            concurrency,
            ctx: Ctx {
                mode,
                epoch,
                rng: Rng::seeded(first_index as u64),
                size,
                expect: Vec::new(),
                in_flight: 0,
                live: 0,
                established: 0,
                open_errors: Kinds::default(),
                drops: Kinds::default(),
                first_connect: None,
                last_established: None,
                open_retries: 0,
                other_messages: 0,
                last_message_at: None,
                primed: 0,
                seen: None,
                measuring: false,
                round_trips: 0,
                echo_errors: Kinds::default(),
                echo_hist: Histogram::new(),
            },
        })
    }

    /// Opens more connections (retries first) while fewer than `concurrency` are opening.
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

    /// Every connection has been opened (or has given up) and none is opening now.
    fn opening_done(&self) -> bool {
        self.next >= self.conns.len() && self.retry.is_empty() && self.ctx.in_flight == 0
    }

    fn open(&mut self, idx: usize) {
        let now = Instant::now();
        self.ctx.first_connect.get_or_insert(now);
        let key = self.ctx.rng.key();
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        conn.key = key;
        conn.head = Vec::new();
        conn.reader = ClientReader::new(MESSAGE_MAX);
        conn.out = client_handshake(&self.host, &self.path, &key);
        conn.out_pos = 0;
        conn.since = now;
        conn.awaiting = false;
        conn.primed = false;
        conn.attempts = conn.attempts.saturating_add(1);
        let result = connect_spread(self.target, self.first_index + idx).and_then(|mut s| {
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
                self.ctx.in_flight += 1;
            }
            Err(e) => {
                conn.phase = Phase::Gone;
                conn.out = Vec::new();
                self.ctx.in_flight += 1;
                self.fail(idx, &format!("connect: {}", e.kind()));
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
            read_buf,
            ctx,
            ..
        } = self;
        let Some(conn) = conns.get_mut(idx) else {
            return;
        };
        if let Outcome::Fail(kind) = drive(conn, idx, read_buf, ctx) {
            self.fail(idx, &kind);
        }
    }

    /// Closes a connection that failed. Before it opened: an open error, tried again while attempts
    /// remain (echo clients always reconnect). After: a drop (fan-out, idle) or an echo error.
    fn fail(&mut self, idx: usize, kind: &str) {
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        let was = conn.phase;
        conn.stream = None;
        conn.head = Vec::new();
        conn.out = Vec::new();
        conn.out_pos = 0;
        conn.reader = ClientReader::new(MESSAGE_MAX);
        conn.awaiting = false;
        let echo = self.ctx.mode == Mode::Echo;
        conn.phase = if echo {
            Phase::Down(Instant::now() + RECONNECT_DELAY)
        } else {
            Phase::Gone
        };
        match was {
            Phase::Open => {
                self.ctx.live = self.ctx.live.saturating_sub(1);
                if echo {
                    self.ctx.echo_errors.note(kind);
                } else {
                    self.ctx.drops.note(kind);
                }
            }
            Phase::Connecting | Phase::Handshake | Phase::Gone => {
                self.ctx.in_flight = self.ctx.in_flight.saturating_sub(1);
                self.ctx.open_errors.note(kind);
                if echo {
                    self.ctx.echo_errors.note(kind);
                } else if conn.attempts < self.open_attempts {
                    self.ctx.open_retries += 1;
                    self.retry.push_back(idx);
                }
            }
            Phase::Idle | Phase::Down(_) => {}
        }
    }

    /// Fails opens older than `open_limit` and echoes older than `echo_limit`; reconnects echo
    /// clients whose pause is over.
    fn sweep(&mut self, open_limit: Duration, echo_limit: Duration) {
        let now = Instant::now();
        for idx in 0..self.conns.len() {
            let Some(conn) = self.conns.get(idx) else {
                continue;
            };
            let age = now.saturating_duration_since(conn.since);
            match conn.phase {
                Phase::Down(at) if now >= at => self.open(idx),
                Phase::Connecting | Phase::Handshake if age > open_limit => {
                    self.fail(idx, "open timeout")
                }
                Phase::Open if conn.awaiting && age > echo_limit => self.fail(idx, "echo timeout"),
                _ => {}
            }
        }
    }

    /// Runs until `done` says so or `deadline` passes; sweeps for timeouts every tick.
    fn run_until(
        &mut self,
        deadline: Instant,
        open_limit: Duration,
        echo_limit: Duration,
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
                self.sweep(open_limit, echo_limit);
                next_sweep = now + TICK;
            }
            self.turn(TICK.min(deadline.saturating_duration_since(now)))?;
        }
    }

    /// Closes every connection (without a close handshake: the proxy sees them vanish).
    fn close_all(&mut self) {
        for conn in &mut self.conns {
            conn.stream = None;
            conn.phase = Phase::Gone;
        }
        self.ctx.live = 0;
    }
}

/// Moves one connection along after an event: finish connecting, write, read.
fn drive(conn: &mut Conn, idx: usize, buf: &mut [u8], ctx: &mut Ctx) -> Outcome {
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
        conn.phase = Phase::Handshake;
    }
    if !matches!(conn.phase, Phase::Handshake | Phase::Open) {
        return Outcome::Keep;
    }
    if let Err(kind) = flush(conn) {
        return Outcome::Fail(kind);
    }
    read_all(conn, idx, buf, ctx)
}

/// Writes what `conn.out` holds until the socket would block.
fn flush(conn: &mut Conn) -> Result<(), String> {
    let Some(stream) = conn.stream.as_mut() else {
        return Err("write: no socket".to_string());
    };
    while conn.out_pos < conn.out.len() {
        match stream.write(conn.out.get(conn.out_pos..).unwrap_or(&[])) {
            Ok(0) => return Err("write: closed".to_string()),
            Ok(n) => conn.out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("write: {}", e.kind())),
        }
    }
    conn.out.clear();
    conn.out_pos = 0;
    if conn.out.capacity() > OUT_KEEP {
        conn.out = Vec::new();
    }
    Ok(())
}

/// Reads until the socket is empty (edge-triggered).
fn read_all(conn: &mut Conn, idx: usize, buf: &mut [u8], ctx: &mut Ctx) -> Outcome {
    loop {
        let Some(stream) = conn.stream.as_mut() else {
            return Outcome::Fail("read: no socket".to_string());
        };
        let n = match stream.read(buf) {
            Ok(0) => {
                return Outcome::Fail(if conn.phase == Phase::Open {
                    "closed by proxy without a close frame".to_string()
                } else {
                    "closed before the handshake answer".to_string()
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::Fail(format!("read: {}", e.kind())),
        };
        let data = buf.get(..n).unwrap_or(&[]);
        let out = if conn.phase == Phase::Handshake {
            handshake_bytes(conn, idx, data, ctx)
        } else {
            frame_bytes(conn, idx, data, ctx)
        };
        if let Outcome::Fail(kind) = out {
            return Outcome::Fail(kind);
        }
        if let Err(kind) = flush(conn) {
            return Outcome::Fail(kind);
        }
    }
}

fn handshake_bytes(conn: &mut Conn, idx: usize, data: &[u8], ctx: &mut Ctx) -> Outcome {
    conn.head.extend_from_slice(data);
    let Some(end) = head_end(&conn.head) else {
        if conn.head.len() > CLIENT_HEAD_MAX {
            return Outcome::Fail("handshake answer too long".to_string());
        }
        return Outcome::Keep;
    };
    let mut head = std::mem::take(&mut conn.head);
    if let Err(e) = check_handshake(head.get(..end).unwrap_or(&[]), &conn.key) {
        return Outcome::Fail(e.to_string());
    }
    let now = Instant::now();
    conn.phase = Phase::Open;
    ctx.in_flight = ctx.in_flight.saturating_sub(1);
    ctx.live += 1;
    ctx.established += 1;
    ctx.last_established = Some(now);
    if ctx.mode == Mode::Echo {
        send_echo(conn, ctx, now);
    }
    let rest = head.split_off(end.min(head.len()));
    if rest.is_empty() {
        return Outcome::Keep;
    }
    frame_bytes(conn, idx, &rest, ctx)
}

/// The echo message with sequence number `seq`: `e <seq> ` padded with `x` to `size` bytes.
fn echo_message(seq: u64, size: usize, out: &mut Vec<u8>) {
    out.clear();
    let _ = write!(EchoWriter(out), "e {seq} ");
    while out.len() < size {
        out.push(b'x');
    }
}

struct EchoWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for EchoWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn send_echo(conn: &mut Conn, ctx: &mut Ctx, now: Instant) {
    echo_message(conn.seq, ctx.size, &mut ctx.expect);
    let mask = ctx.rng.mask();
    write_frame(&mut conn.out, true, OP_TEXT, &ctx.expect, Some(mask));
    conn.since = now;
    conn.awaiting = true;
}

fn frame_bytes(conn: &mut Conn, idx: usize, data: &[u8], ctx: &mut Ctx) -> Outcome {
    let Conn {
        reader,
        out,
        seq,
        since,
        awaiting,
        primed,
        ..
    } = conn;
    let now = Instant::now();
    let mut problem: Option<String> = None;
    let mut closed: Option<u16> = None;
    let fed = reader.feed(data, |ev| match ev {
        Incoming::Message { payload, .. } => match ctx.mode {
            Mode::Echo => {
                if !*awaiting {
                    problem.get_or_insert_with(|| "message with none in flight".to_string());
                    return;
                }
                echo_message(*seq, ctx.size, &mut ctx.expect);
                if payload != ctx.expect.as_slice() {
                    problem.get_or_insert_with(|| "echo differs from the message".to_string());
                    return;
                }
                if ctx.measuring {
                    ctx.round_trips += 1;
                    let ns = now.saturating_duration_since(*since).as_nanos();
                    ctx.echo_hist.record(u64::try_from(ns).unwrap_or(u64::MAX));
                }
                *seq += 1;
                echo_message(*seq, ctx.size, &mut ctx.expect);
                let mask = ctx.rng.mask();
                write_frame(out, true, OP_TEXT, &ctx.expect, Some(mask));
                *since = now;
            }
            Mode::Fanout | Mode::Idle => {
                ctx.last_message_at = Some(now);
                let line = payload.strip_suffix(b"\n").unwrap_or(payload);
                match parse_line(line) {
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
                    } => match ctx.seen.as_mut() {
                        Some(seen) => {
                            let now_ns = nanos_since(ctx.epoch, now);
                            seen.record(idx, seq, now_ns.saturating_sub(sent_ns), now);
                        }
                        None => ctx.other_messages += 1,
                    },
                    _ => ctx.other_messages += 1,
                }
            }
        },
        Incoming::Ping(p) => {
            let mask = ctx.rng.mask();
            write_frame(out, true, OP_PONG, p, Some(mask));
        }
        Incoming::Pong => {}
        Incoming::Close { code, .. } => {
            closed.get_or_insert(code);
        }
    });
    if let Err(e) = fed {
        return Outcome::Fail(format!("protocol: {e}"));
    }
    if let Some(code) = closed {
        // Answer the close so the proxy sees a clean end, then drop the connection.
        let mask = ctx.rng.mask();
        write_frame(
            &mut conn.out,
            true,
            OP_CLOSE,
            &code.to_be_bytes(),
            Some(mask),
        );
        let _ = flush(conn);
        return Outcome::Fail(format!("close frame {code}"));
    }
    match problem {
        Some(p) => Outcome::Fail(p),
        None => Outcome::Keep,
    }
}

fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// A non-blocking connect. To a loopback IPv4 target the socket is first bound to one of
/// `SOURCE_ADDRS` loopback source addresses (by connection index), so thousands of connections do
/// not all search one address's ephemeral ports.
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
        self.failed.merge(&other.failed);
        self.first_sent = match (self.first_sent, other.first_sent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_done = self.last_done.max(other.last_done);
    }
}

struct Control {
    addr: SocketAddr,
    host: String,
    timeout: Duration,
}

/// What one publisher thread sends: batches `lane, lane + lanes, ...` of `batch` messages each.
struct Lane {
    channel: String,
    publishes: u64,
    batch: u64,
    size: usize,
    lane: u64,
    lanes: u64,
}

/// Publishes its share of the messages `0..publishes` flat out, `batch` `ws-message` items per
/// POST. Every item of a POST carries the time just before that POST was written.
fn publish_lane(ctl: Arc<Control>, epoch: Instant, l: Lane) -> PublishTally {
    let mut tally = PublishTally::default();
    let mut b = l.lane;
    while b * l.batch < l.publishes {
        let now = Instant::now();
        tally.first_sent.get_or_insert(now);
        let sent = nanos_since(epoch, now);
        let end = ((b + 1) * l.batch).min(l.publishes);
        let contents: Vec<String> = (b * l.batch..end)
            .map(|seq| message('m', seq, sent, l.size))
            .collect();
        let body = ws_items(&l.channel, &contents);
        let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
        tally.posts += 1;
        tally.items += contents.len() as u64;
        match result {
            Ok(200) => {}
            Ok(code) => tally.failed.note(&format!("publish status {code}")),
            Err(kind) => tally.failed.note(&kind),
        }
        tally.last_done = Some(Instant::now());
        b += l.lanes;
    }
    tally
}

// --- scenarios -------------------------------------------------------------------------------

struct Settings {
    target: SocketAddr,
    control: Option<SocketAddr>,
    path: String,
    channel: String,
    clients: usize,
    threads: usize,
    size: usize,
    duration: Duration,
    warmup: Duration,
    timeout: Duration,
    publishes: u64,
    batch: usize,
    publish_parallel: usize,
    concurrency: usize,
    open_attempts: u32,
    open_timeout: Duration,
    open_max: Duration,
    prime_timeout: Duration,
    prime_interval: Duration,
    quiet: Duration,
    drain_max: Duration,
    ready_file: Option<String>,
    release_file: Option<String>,
    hold_max: Duration,
    cpu: Cpu,
    epoch: Instant,
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

/// Opens every connection (bounded concurrency) and returns the opening summary as JSON fields.
fn open_all(hub: &mut Hub, s: &Settings) -> Result<String, String> {
    let attempts = hub.open_attempts;
    let deadline = Instant::now() + s.open_max;
    let all = hub
        .run_until(deadline, s.open_timeout, s.timeout, |h| h.opening_done())
        .map_err(|e| format!("poll failed: {e}"))?;
    if !all {
        // Whatever is still opening at the deadline counts as a timeout, and nothing is retried or
        // opened after it.
        hub.open_attempts = 0;
        hub.sweep(Duration::ZERO, s.timeout);
        hub.retry.clear();
        hub.next = hub.conns.len();
    }
    let span = secs_between(hub.ctx.first_connect, hub.ctx.last_established);
    let rate = if span > 0.0 {
        hub.ctx.established as f64 / span
    } else {
        0.0
    };
    Ok(format!(
        "\"clients\":{},\"established\":{},\"open_attempts\":{},\"open_errors\":{},\
\"open_retries\":{},\"open_error_kinds\":{},\"open_s\":{:.3},\"opens_per_s\":{:.1},\
\"open_phase_complete\":{}",
        hub.conns.len(),
        hub.ctx.established,
        attempts,
        hub.ctx.open_errors.total,
        hub.ctx.open_retries,
        hub.ctx.open_errors.json(),
        span,
        rate,
        all
    ))
}

/// What one echo thread counted.
struct EchoTally {
    round_trips: u64,
    errors: Kinds,
    errors_total: u64,
    hist: Histogram,
    window: f64,
    opened: u64,
    live_at_end: usize,
}

fn echo_thread(
    s: Arc<EchoPlan>,
    first: usize,
    count: usize,
    start: Instant,
) -> Result<EchoTally, String> {
    let mut hub = Hub::new(
        Mode::Echo,
        s.target,
        s.path.clone(),
        count,
        first,
        count,
        s.size,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    let measure_from = start + s.warmup;
    let end = measure_from + s.duration;
    let mut window_start = measure_from;
    let mut errors_before = 0;
    hub.run_until(end, s.open_timeout, s.timeout, |h| {
        if !h.ctx.measuring && Instant::now() >= measure_from {
            h.ctx.measuring = true;
            h.ctx.round_trips = 0;
            h.ctx.echo_hist.clear();
            errors_before = h.ctx.echo_errors.total;
            h.ctx.echo_errors = Kinds {
                total: errors_before,
                list: Vec::new(),
            };
            window_start = Instant::now();
        }
        false
    })
    .map_err(|e| format!("poll failed: {e}"))?;
    let window = window_start.elapsed().as_secs_f64();
    let errors_total = hub.ctx.echo_errors.total;
    let mut errors = hub.ctx.echo_errors.clone();
    errors.total = errors_total.saturating_sub(errors_before);
    let tally = EchoTally {
        round_trips: hub.ctx.round_trips,
        errors,
        errors_total,
        hist: hub.ctx.echo_hist.clone(),
        window,
        opened: hub.ctx.established,
        live_at_end: hub.ctx.live,
    };
    hub.close_all();
    Ok(tally)
}

struct EchoPlan {
    target: SocketAddr,
    path: String,
    size: usize,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
    open_timeout: Duration,
    epoch: Instant,
}

fn echo(s: &Settings) -> Result<String, String> {
    let plan = Arc::new(EchoPlan {
        target: s.target,
        path: s.path.clone(),
        size: s.size,
        warmup: s.warmup,
        duration: s.duration,
        timeout: s.timeout,
        open_timeout: s.open_timeout,
        epoch: s.epoch,
    });
    let start = Instant::now();
    let cpu_at = start + s.warmup;
    let threads = s.threads.min(s.clients).max(1);
    let mut handles: Vec<JoinHandle<Result<EchoTally, String>>> = Vec::new();
    let mut first = 0;
    for t in 0..threads {
        let count = s.clients / threads + usize::from(t < s.clients % threads);
        let plan = Arc::clone(&plan);
        let h = std::thread::Builder::new()
            .name(format!("echo-{t}"))
            .spawn(move || echo_thread(plan, first, count, start))
            .map_err(|e| e.to_string())?;
        handles.push(h);
        first += count;
    }
    std::thread::sleep(cpu_at.saturating_duration_since(Instant::now()));
    let cpu_start = s.cpu.sample();
    let mut total = EchoTally {
        round_trips: 0,
        errors: Kinds::default(),
        errors_total: 0,
        hist: Histogram::new(),
        window: 0.0,
        opened: 0,
        live_at_end: 0,
    };
    let mut cpu_end = None;
    for h in handles {
        let t = h
            .join()
            .map_err(|_| "an echo thread panicked".to_string())??;
        cpu_end.get_or_insert_with(|| s.cpu.sample());
        total.round_trips += t.round_trips;
        total.errors.merge(&t.errors);
        total.errors_total += t.errors_total;
        total.hist.merge(&t.hist);
        total.window = total.window.max(t.window);
        total.opened += t.opened;
        total.live_at_end += t.live_at_end;
    }
    let cpu_end = cpu_end.unwrap_or_else(|| s.cpu.sample());
    let rate = if total.window > 0.0 {
        total.round_trips as f64 / total.window
    } else {
        0.0
    };
    let (cpu_json, proxy_cpu) = s.cpu.json(cpu_start, cpu_end);
    let cpu_per = match proxy_cpu {
        Some(c) if total.round_trips > 0 => {
            format!("{:.2}", c * 1e6 / total.round_trips as f64)
        }
        _ => "null".to_string(),
    };
    Ok(format!(
        "{{\"scenario\":\"echo\",\"clients\":{},\"threads\":{threads},\"size\":{},\"window_s\":{:.3},\
\"round_trips\":{},\"round_trips_per_s\":{rate:.1},\"errors\":{},\"errors_total\":{},\"error_kinds\":{},\
\"opened\":{},\"open_at_end\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},{cpu_json},\
\"proxy_cpu_us_per_round_trip\":{cpu_per}}}",
        s.clients,
        s.size,
        total.window,
        total.round_trips,
        total.errors.total,
        total.errors_total,
        total.errors.json(),
        total.opened,
        total.live_at_end,
        us(total.hist.quantile(0.5)),
        us(total.hist.quantile(0.99)),
        us(total.hist.max()),
    ))
}

fn control(s: &Settings) -> Result<Arc<Control>, String> {
    let addr = s.control.ok_or("--control is required for this scenario")?;
    Ok(Arc::new(Control {
        addr,
        host: addr.to_string(),
        timeout: Duration::from_secs(10),
    }))
}

fn channel_path(s: &Settings) -> String {
    let sep = if s.path.contains('?') { '&' } else { '?' };
    format!("{}{sep}channel={}", s.path, s.channel)
}

fn fanout(s: &Settings) -> Result<String, String> {
    let ctl = control(s)?;
    let seen_bits = (s.clients as u64).saturating_mul(s.publishes);
    if seen_bits > SEEN_BITS_MAX {
        return Err(format!(
            "--clients x --publishes must be at most {SEEN_BITS_MAX}"
        ));
    }
    let mut hub = Hub::new(
        Mode::Fanout,
        s.target,
        channel_path(s),
        s.clients,
        0,
        s.concurrency,
        s.size,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    hub.open_attempts = s.open_attempts;
    let opened = open_all(&mut hub, s)?;
    eprintln!(
        "bench-ws: {} of {} connections open",
        hub.ctx.live, s.clients
    );

    // Prime: publish a probe every --prime-interval until every open connection has received one
    // (or --prime-timeout passes), so the measurement does not race subscriptions the proxy has
    // not finished setting up.
    let mut rounds = 0u32;
    let prime_started = Instant::now();
    let prime_end = prime_started + s.prime_timeout;
    while hub.ctx.primed < hub.ctx.live && Instant::now() < prime_end {
        let body = ws_items(&s.channel, &[format!("p {rounds}")]);
        let result = post(ctl.addr, &publish_request(&ctl.host, &body), ctl.timeout);
        if !matches!(result, Ok(200)) {
            return Err(format!("priming publish failed: {result:?}"));
        }
        rounds += 1;
        let deadline = (Instant::now() + s.prime_interval).min(prime_end);
        hub.run_until(deadline, s.open_timeout, s.timeout, |h| {
            h.ctx.primed >= h.ctx.live
        })
        .map_err(|e| format!("poll failed: {e}"))?;
    }
    let prime_s = prime_started.elapsed().as_secs_f64();
    let unprimed = hub.ctx.live.saturating_sub(hub.ctx.primed);
    let live_at_start = hub.ctx.live;
    let drops_before = hub.ctx.drops.total;
    eprintln!(
        "bench-ws: primed in {rounds} round(s), {prime_s:.2}s; {unprimed} connection(s) unprimed; publishing {}",
        s.publishes
    );

    hub.ctx.seen = Some(Seen::new(s.clients, s.publishes));
    let cpu_start = s.cpu.sample();
    let lanes = s.publish_parallel as u64;
    let mut publishers: Vec<JoinHandle<PublishTally>> = Vec::new();
    for lane in 0..lanes {
        let ctl = Arc::clone(&ctl);
        let plan = Lane {
            channel: s.channel.clone(),
            publishes: s.publishes,
            batch: s.batch as u64,
            size: s.size,
            lane,
            lanes,
        };
        let epoch = s.epoch;
        let handle = std::thread::Builder::new()
            .name(format!("publish-{lane}"))
            .spawn(move || publish_lane(ctl, epoch, plan))
            .map_err(|e| e.to_string())?;
        publishers.push(handle);
    }
    let expected = (live_at_start as u64).saturating_mul(s.publishes);
    let hard_deadline = Instant::now()
        + s.drain_max
        + Duration::from_secs(s.publishes.saturating_mul(20).min(86_400));
    let mut published_at: Option<Instant> = None;
    let (quiet, drain_max) = (s.quiet, s.drain_max);
    let complete = hub
        .run_until(hard_deadline, s.open_timeout, s.timeout, |h| {
            let now = Instant::now();
            if published_at.is_none() && publishers.iter().all(|p| p.is_finished()) {
                published_at = Some(now);
            }
            let Some(seen) = h.ctx.seen.as_ref() else {
                return true;
            };
            let all_in = seen.unique >= expected || h.ctx.live == 0;
            // Any message counts as progress: a proxy still working through a queue of late
            // probes has not gone quiet.
            let last = seen.last_at.max(h.ctx.last_message_at);
            publish_phase_over(all_in, last, published_at, now, quiet, drain_max)
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
\"measured\":{live_at_start},\"publishes\":{},\"batch\":{},\"publish_parallel\":{},\"size\":{},\
\"posts\":{},\"publish_errors\":{},\"publish_error_kinds\":{},\"publish_s\":{:.3},\
\"expected\":{expected},\"received\":{},\"lost\":{},\"duplicates\":{},\"unknown\":{},\
\"other_messages\":{},\"dropped\":{},\"drop_kinds\":{},\"delivery_window_s\":{window:.3},\
\"deliveries_per_s\":{rate:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\
\"complete\":{},{cpu_json},\"proxy_cpu_us_per_delivery\":{cpu_per}}}",
        s.publishes,
        s.batch,
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
        hub.ctx.other_messages,
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
    let mut hub = Hub::new(
        Mode::Idle,
        s.target,
        s.path.clone(),
        s.clients,
        0,
        s.concurrency,
        s.size,
        s.epoch,
    )
    .map_err(|e| e.to_string())?;
    hub.open_attempts = s.open_attempts;
    let cpu_start = s.cpu.sample();
    let opened = open_all(&mut hub, s)?;
    let cpu_end = s.cpu.sample();
    let held = hub.ctx.live;
    eprintln!("bench-ws: holding {held} of {} connections", s.clients);
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
        .run_until(deadline, s.open_timeout, s.timeout, |_| {
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
    let other = hub.ctx.other_messages;
    hub.close_all();
    let summary = summary.trim_end_matches('}');
    Ok(format!(
        "{summary},\"released_by_file\":{released},\"dropped_while_held\":{},\"drop_kinds\":{},\
\"held_at_release\":{still},\"messages_while_held\":{other}}}",
        hub.ctx.drops.total.saturating_sub(drops_before),
        hub.ctx.drops.json(),
    ))
}

// --- command line ----------------------------------------------------------------------------

fn addr(opts: &Options, name: &str) -> Result<Option<SocketAddr>, String> {
    opts.value(name)
        .map(|t| {
            t.parse()
                .map_err(|_| format!("{name} must be IP:PORT, not {t:?}"))
        })
        .transpose()
}

/// A path or channel name the request line can carry as it is.
fn plain(text: &str, extra: &[u8]) -> bool {
    !text.is_empty()
        && text.len() <= 256
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b) || extra.contains(&b))
}

fn run() -> Result<(), String> {
    let valued = [
        "--scenario",
        "--target",
        "--control",
        "--path",
        "--channel",
        "--clients",
        "--threads",
        "--size",
        "--duration",
        "--warmup",
        "--timeout",
        "--publishes",
        "--batch",
        "--publish-parallel",
        "--concurrency",
        "--open-attempts",
        "--open-timeout",
        "--open-max",
        "--prime-timeout",
        "--prime-interval",
        "--quiet",
        "--drain-max",
        "--ready-file",
        "--release-file",
        "--hold-max",
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
    let scenario = match opts.value("--scenario") {
        Some("echo") => Mode::Echo,
        Some("fanout") => Mode::Fanout,
        Some("idle") => Mode::Idle,
        _ => return Err(format!("--scenario must be echo, fanout or idle\n{USAGE}")),
    };
    let target = addr(&opts, "--target")?.ok_or(format!("--target is required\n{USAGE}"))?;
    let path = opts.value("--path").unwrap_or("/").to_string();
    let channel = opts.value("--channel").unwrap_or("bench").to_string();
    if !path.starts_with('/') || !plain(&path, b"?=&") || !plain(&channel, b"") {
        return Err(
            "--path and --channel must be plain (letters, digits, -_./, and ?=& in the path)"
                .to_string(),
        );
    }
    let default_clients = match scenario {
        Mode::Echo => 100,
        Mode::Fanout | Mode::Idle => 5000,
    };
    let default_size = if scenario == Mode::Echo { 64 } else { 100 };
    let default_attempts = if scenario == Mode::Fanout { 3 } else { 1 };
    let settings = Settings {
        target,
        control: addr(&opts, "--control")?,
        path,
        channel,
        clients: num("--clients", default_clients)?,
        threads: num("--threads", 1)?,
        size: num("--size", default_size)?,
        duration: opts.seconds("--duration", 10.0)?,
        warmup: opts.seconds("--warmup", 2.0)?,
        timeout: opts.seconds("--timeout", 5.0)?,
        publishes: opts
            .number("--publishes", 200u64)
            .map_err(|e| e.to_string())?,
        batch: num("--batch", 10)?,
        publish_parallel: num("--publish-parallel", 1)?,
        concurrency: num("--concurrency", 1000)?,
        open_attempts: opts
            .number("--open-attempts", default_attempts)
            .map_err(|e| e.to_string())?,
        open_timeout: opts.seconds("--open-timeout", 30.0)?,
        open_max: opts.seconds("--open-max", 300.0)?,
        prime_timeout: opts.seconds("--prime-timeout", 60.0)?,
        prime_interval: opts.seconds("--prime-interval", 2.0)?,
        quiet: opts.seconds("--quiet", 5.0)?,
        drain_max: opts.seconds("--drain-max", 120.0)?,
        ready_file: opts.value("--ready-file").map(str::to_string),
        release_file: opts.value("--release-file").map(str::to_string),
        hold_max: opts.seconds("--hold-max", 300.0)?,
        cpu: Cpu::from_options(&opts)?,
        epoch: Instant::now(),
    };
    let s = &settings;
    if s.clients == 0 || s.clients > CLIENTS_MAX {
        return Err(format!("--clients must be 1..={CLIENTS_MAX}"));
    }
    if s.threads == 0 || s.threads > THREADS_MAX {
        return Err(format!("--threads must be 1..={THREADS_MAX}"));
    }
    if scenario == Mode::Echo && (s.size == 0 || s.size > ECHO_SIZE_MAX) {
        return Err(format!("--size must be 1..={ECHO_SIZE_MAX} for echo"));
    }
    if s.publishes == 0 || s.publishes > PUBLISHES_MAX {
        return Err(format!("--publishes must be 1..={PUBLISHES_MAX}"));
    }
    if s.batch == 0 || s.batch > BATCH_MAX {
        return Err(format!("--batch must be 1..={BATCH_MAX}"));
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
    if s.open_timeout.is_zero() || s.timeout.is_zero() || s.duration.is_zero() {
        return Err("--open-timeout, --timeout and --duration must be above 0".to_string());
    }
    let line = match scenario {
        Mode::Echo => echo(s)?,
        Mode::Fanout => fanout(s)?,
        Mode::Idle => idle(s)?,
    };
    println!("{line}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-ws: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_messages_have_their_size_and_sequence() {
        let mut out = Vec::new();
        echo_message(42, 64, &mut out);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with(b"e 42 x"));
        echo_message(123_456, 4, &mut out);
        assert_eq!(out, b"e 123456 ");
    }

    #[test]
    fn seen_counts_loss_and_duplicates() {
        let now = Instant::now();
        let mut seen = Seen::new(3, 130);
        seen.record(0, 0, 5, now);
        seen.record(0, 0, 5, now);
        seen.record(2, 129, 7, now);
        seen.record(2, 130, 7, now);
        assert_eq!((seen.unique, seen.duplicates, seen.unknown), (2, 1, 1));
        assert_eq!(seen.hist.max(), 7);
    }

    #[test]
    fn kinds_keep_a_bounded_list() {
        let mut k = Kinds::default();
        for i in 0..40 {
            k.note(&format!("kind {i}"));
        }
        k.note("kind 0");
        assert_eq!(k.total, 41);
        assert_eq!(k.list.len(), KINDS_MAX);
        assert!(k.json().contains("\"other\":25"));
        let mut m = Kinds::default();
        m.merge(&k);
        assert_eq!(m.total, 41);
    }

    #[test]
    fn rng_varies() {
        let mut r = Rng::seeded(1);
        let a = r.key();
        let b = r.key();
        assert_ne!(a, b);
        assert_ne!(r.mask(), r.mask());
    }
}
