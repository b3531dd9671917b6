//! The client side of the GRIP benchmarks that hold HTTP streams or long-polls: one thread and one
//! `mio::Poll` for all connections, at most `concurrency` opens in flight, every socket bound to one
//! of 64 loopback source addresses. Received lines are parsed as `grip::parse_line` messages and
//! counted into a [`Seen`] map (loss, duplicates, latency). Used by `bench-fanout` (publishing over
//! the HTTP control API) and `bench-zmq` (publishing over ZeroMQ).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::grip::parse_line;
use crate::{procfs, split_lines, Histogram, Line, ResponseReader};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const READ_CHUNK: usize = 64 * 1024;
const EVENTS_MAX: usize = 1024;
/// Distinct error kinds kept per tally; the rest are counted under "other".
const KINDS_MAX: usize = 16;
/// Longest sleep in `poll`, so deadlines and phase changes are seen promptly.
pub const TICK: Duration = Duration::from_millis(20);
/// Pause before a long-poll client reconnects after a failure.
const RECONNECT_DELAY: Duration = Duration::from_millis(20);
/// A partial-line buffer bigger than this is shrunk once it empties, so 10,000 idle streams do
/// not each keep the capacity of their busiest read.
const PARTIAL_KEEP: usize = 4096;

// --- tallies ---------------------------------------------------------------------------------

/// Counts by kind, with a bounded number of kinds.
#[derive(Debug, Default)]
pub struct Kinds {
    pub total: u64,
    pub list: Vec<(String, u64)>,
}

impl Kinds {
    pub fn note(&mut self, kind: &str) {
        self.add(kind, 1);
    }

    pub fn add(&mut self, kind: &str, n: u64) {
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

    pub fn json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, n)) in self.list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::grip::json_string(k, &mut out);
            let _ = write!(out, ":{n}");
        }
        out.push('}');
        out
    }
}

/// Which published messages each stream has received, to count loss and duplicates exactly.
///
/// Either every stream gets every message ([`Seen::new`]), or message `seq` goes to stream
/// `seq % streams` alone ([`Seen::routed`]); then one bit per message is enough, and a message
/// that reaches another stream is counted as misrouted.
pub struct Seen {
    publishes: u64,
    words: usize,
    bits: Vec<u64>,
    /// `Some(streams)` when each message is for one stream only.
    routed: Option<usize>,
    pub unique: u64,
    pub duplicates: u64,
    pub unknown: u64,
    pub misrouted: u64,
    pub hist: Histogram,
    pub first_at: Option<Instant>,
    pub last_at: Option<Instant>,
}

impl Seen {
    pub fn new(streams: usize, publishes: u64) -> Seen {
        Seen::with(streams, publishes, None)
    }

    /// Message `seq` is meant for stream `seq % streams` only.
    pub fn routed(streams: usize, publishes: u64) -> Seen {
        Seen::with(1, publishes, Some(streams.max(1)))
    }

    fn with(maps: usize, publishes: u64, routed: Option<usize>) -> Seen {
        let words = publishes.div_ceil(64) as usize;
        Seen {
            publishes,
            words,
            bits: vec![0; maps.saturating_mul(words)],
            routed,
            unique: 0,
            duplicates: 0,
            unknown: 0,
            misrouted: 0,
            hist: Histogram::new(),
            first_at: None,
            last_at: None,
        }
    }

    /// Deliveries that make the set complete.
    pub fn expected(&self, streams: usize) -> u64 {
        match self.routed {
            Some(_) => self.publishes,
            None => (streams as u64).saturating_mul(self.publishes),
        }
    }

    pub fn record(&mut self, stream: usize, seq: u64, latency_ns: u64, now: Instant) {
        if seq >= self.publishes {
            self.unknown += 1;
            return;
        }
        let map = match self.routed {
            Some(n) if seq % n as u64 != stream as u64 => {
                self.misrouted += 1;
                return;
            }
            Some(_) => 0,
            None => stream,
        };
        let word = map
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
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_phase_ends_when_all_arrived_or_quiet_or_drained() {
        let t0 = Instant::now();
        let (quiet, drain) = (Duration::from_secs(1), Duration::from_secs(10));
        let s = |n: u64| t0 + Duration::from_secs(n);
        assert!(publish_phase_over(true, None, None, t0, quiet, drain));
        assert!(
            !publish_phase_over(false, None, None, s(100), quiet, drain),
            "still sending"
        );
        assert!(!publish_phase_over(false, None, Some(t0), t0, quiet, drain));
        assert!(
            publish_phase_over(false, None, Some(t0), s(1), quiet, drain),
            "quiet since sending ended"
        );
        assert!(
            !publish_phase_over(false, Some(s(5)), Some(t0), s(5), quiet, drain),
            "progress"
        );
        assert!(
            publish_phase_over(false, Some(s(10)), Some(t0), s(10), quiet, drain),
            "drain_max"
        );
    }

    #[test]
    fn seen_counts_every_stream_or_routes() {
        let now = Instant::now();
        let mut all = Seen::new(3, 70);
        assert_eq!(all.expected(3), 210);
        for stream in 0..3 {
            for seq in 0..70 {
                all.record(stream, seq, 1000, now);
            }
        }
        all.record(1, 69, 5, now);
        all.record(0, 70, 5, now);
        all.record(3, 1, 5, now);
        assert_eq!((all.unique, all.duplicates, all.unknown), (210, 1, 2));

        let mut one = Seen::routed(4, 10);
        assert_eq!(one.expected(4), 10);
        for seq in 0..10 {
            one.record((seq % 4) as usize, seq, 1000, now);
        }
        one.record(1, 2, 5, now);
        one.record(2, 2, 5, now);
        one.record(0, 10, 5, now);
        assert_eq!(
            (one.unique, one.duplicates, one.misrouted, one.unknown),
            (10, 1, 1, 1)
        );
    }
}

// --- connections -----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
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

pub struct Conn {
    pub stream: Option<TcpStream>,
    pub phase: Phase,
    pub reader: ResponseReader,
    /// Stream: the unfinished last line. Long-poll: the body so far.
    pub partial: Vec<u8>,
    /// When the current open or request started.
    pub since: Instant,
    pub primed: bool,
    /// Opens tried for this stream so far.
    pub attempts: u32,
    /// The peer's FIN (or an error) was signalled: read to the end, not just to a short read.
    pub read_closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Streams,
    Polls,
}

/// Everything connections report into.
pub struct Ctx {
    pub mode: Mode,
    pub epoch: Instant,
    pub in_flight: usize,
    pub live: usize,
    pub established: usize,
    pub open_errors: Kinds,
    /// Streams lost after they opened.
    pub drops: Kinds,
    pub first_connect: Option<Instant>,
    pub last_established: Option<Instant>,
    /// Failed opens that were tried again.
    pub open_retries: u64,
    pub open_lines: u64,
    pub other_lines: u64,
    pub primed: usize,
    pub seen: Option<Seen>,
    // long-poll
    pub measuring: bool,
    pub cycles: u64,
    pub poll_errors: Kinds,
    pub poll_hist: Histogram,
}

pub enum Outcome {
    Keep,
    /// Long-poll: the proxy ended the connection after a whole response; reconnect, no error.
    Reopen,
    /// Stream mode: count under `open_errors` before it opened, `drops` after.
    Fail(String),
}

pub struct Hub {
    poll: Poll,
    events: Events,
    target: SocketAddr,
    pub conns: Vec<Conn>,
    requests: Vec<Vec<u8>>,
    read_buf: Vec<u8>,
    tokens: Vec<usize>,
    pub next: usize,
    /// Streams whose open failed and that may try again, opened before new ones.
    retry: VecDeque<usize>,
    pub open_attempts: u32,
    pub concurrency: usize,
    pub ctx: Ctx,
}

/// Whether a measured publish phase is over: `all_in` (every expected message arrived, or no stream is
/// left), or, once sending ended at `sent_at`, nothing arrived for `quiet` since `last_progress` or
/// `drain_max` passed since sending ended.
pub fn publish_phase_over(
    all_in: bool,
    last_progress: Option<Instant>,
    sent_at: Option<Instant>,
    now: Instant,
    quiet: Duration,
    drain_max: Duration,
) -> bool {
    if all_in {
        return true;
    }
    match sent_at {
        None => false,
        Some(at) => {
            let last = last_progress.unwrap_or(at).max(at);
            now.saturating_duration_since(last) >= quiet
                || now.saturating_duration_since(at) >= drain_max
        }
    }
}

impl Hub {
    pub fn new(
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
                read_closed: false,
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
    pub fn fill(&mut self) {
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
    pub fn opening_done(&self) -> bool {
        self.next >= self.conns.len() && self.retry.is_empty() && self.ctx.in_flight == 0
    }

    pub fn open(&mut self, idx: usize) {
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
                conn.read_closed = false;
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
    pub fn turn(&mut self, wait: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.tokens.clear();
        self.tokens.extend(self.events.iter().map(|e| e.token().0));
        for e in self.events.iter() {
            if e.is_read_closed() || e.is_error() {
                if let Some(conn) = self.conns.get_mut(e.token().0) {
                    conn.read_closed = true;
                }
            }
        }
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
    pub fn fail(&mut self, idx: usize, kind: &str) {
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
    pub fn sweep(&mut self, limit: Duration) {
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
    /// Whether a measured publish phase is over: every expected message arrived (or no stream is left),
    /// or, once sending ended at `sent_at`, nothing arrived for `quiet` or `drain_max` passed since.
    pub fn deliveries_done(
        &self,
        expected: u64,
        sent_at: Option<Instant>,
        now: Instant,
        quiet: Duration,
        drain_max: Duration,
    ) -> bool {
        let Some(seen) = self.ctx.seen.as_ref() else {
            return true;
        };
        let all_in = seen.unique >= expected || self.ctx.live == 0;
        publish_phase_over(all_in, seen.last_at, sent_at, now, quiet, drain_max)
    }

    pub fn run_until(
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

    pub fn close_all(&mut self) {
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
        if n < buf.len() && !conn.read_closed {
            // A short read emptied the socket; the next arrival raises a new edge, so the read that
            // would only say WouldBlock is skipped (one system call fewer per wake-up).
            return Outcome::Keep;
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

pub fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

// --- CPU ---------------------------------------------------------------------------------------

pub struct Cpu {
    pub proxy_pid: Option<u32>,
    pub clk_tck: u64,
}

#[derive(Clone, Copy)]
pub struct CpuSample {
    pub proxy: Option<u64>,
    pub client: Option<u64>,
}

impl Cpu {
    /// `--proxy-pid` (whose process tree is measured; none: proxy CPU unknown) and `--clk-tck` (100).
    pub fn from_options(opts: &crate::Options) -> Result<Cpu, String> {
        Ok(Cpu {
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
        })
    }

    pub fn sample(&self) -> CpuSample {
        let proxy = self
            .proxy_pid
            .and_then(|pid| procfs::tree_ticks(&procfs::read_all(), pid));
        CpuSample {
            proxy,
            client: procfs::self_ticks(),
        }
    }

    /// `"proxy_cpu_s":..,"client_cpu_s":..` between two samples (null when unknown).
    pub fn json(&self, a: CpuSample, b: CpuSample) -> (String, Option<f64>) {
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

pub fn secs_between(a: Option<Instant>, b: Option<Instant>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
        _ => 0.0,
    }
}

pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Opens every stream (bounded concurrency) and returns the opening summary as JSON fields.
/// `open_max` bounds the whole phase, `open_timeout` each open.
pub fn open_streams(
    hub: &mut Hub,
    open_max: Duration,
    open_timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + open_max;
    let all = hub
        .run_until(deadline, open_timeout, |h| h.opening_done())
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

/// Loopback source addresses client sockets are spread over.
const SOURCE_ADDRS: usize = 64;

/// A non-blocking connect. To a loopback IPv4 target the socket is first bound to one of
/// `SOURCE_ADDRS` loopback source addresses (by stream index): with thousands of sockets from one
/// address the kernel's search for a free ephemeral port dominated the client's CPU, so the open
/// rate measured the client rather than the proxy.
pub fn connect_spread(target: SocketAddr, idx: usize) -> io::Result<TcpStream> {
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
