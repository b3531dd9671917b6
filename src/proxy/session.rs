//! One client connection of the reverse proxy, as a sans-IO state machine.
//!
//! The session owns its sockets only through the `Socket` trait (`Read + Write` plus connect status), so tests
//! drive it with in-memory fakes and a hand-advanced clock. The reactor sets readiness flags from poll events,
//! calls `process(now, env)`, and acts on the returned `Want`: open a backend connection, take an idle backend
//! connection back into its pool, arm a timer for `deadline`, or drop the session.
//!
//! Invariants:
//! * A readiness flag is cleared only when an operation returns `WouldBlock`, so the session may stop reading a
//!   socket whose buffer is full (backpressure) and resume later without waiting for a new edge.
//! * Every buffer is bounded: the client read buffer by `client_buffer_size` (a request head must fit), the
//!   backend read buffer by `BODY_BUF_SIZE`, and each write queue stops growing at `OUT_QUEUE_MAX`; a full queue
//!   stops the producer from reading its socket, which is how a slow client slows the backend down.
//! * Responses leave in request order: the next pipelined request is parsed only after the current exchange is
//!   complete.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{ProxyConfig, BODY_BUF_SIZE, LINGER, LINGER_DISCARD_MAX, OUT_QUEUE_MAX};
use super::local::{write_continue, write_text_response, ORIGIN_ERROR, ROUTE_NOT_FOUND};
use super::rewrite::{self, RequestContext};
use super::router::Router;
use super::test_target;
use crate::grip::{
    cached_grip_sig, is_grip_response, unix_now, verify_grip_sig, INSTRUCT_BODY_MAX,
};

#[path = "session_exchange.rs"]
mod exchange;
use exchange::ExchangeStart;
#[path = "session_grip.rs"]
mod grip_glue;
use grip_glue::{Held, HeldInfo, HoldContext};
#[path = "session_link.rs"]
mod links;
use links::{LinkFetch, PendingGone};
#[path = "session_ws.rs"]
mod ws_glue;
use ws_glue::{WsPhase, WsStart, WsUpgrade};

use crate::buf::{InBuf, OutBuf};
use crate::http1::{
    parse_request_head, parse_response_head, request_body_kind, response_body_kind, BodyDecoder,
    BodyEncoder, BodyKind, ChunkLimits, FramingError, HeadError, RequestHead, ResponseHead,
    Version,
};
use crate::routes::{RouteQuery, TargetKind};
use crate::stats::{BackendError, ConnCounts, Flow};

/// A guard against our own bugs: state changes without a single byte moving can't go on this long. Tripping
/// it logs the state and closes the connection.
const STEPS_MAX: usize = 4096;
/// Largest backend write buffer kept for reuse between exchanges.
const SPARE_BUFFER_MAX: usize = 4096;
/// Passes through the I/O loop per `process` call before yielding to other connections (fairness); a busy
/// session asks to be called again with `Want::again`.
const PASSES_PER_CALL_MAX: usize = 64;

/// What the session needs from a socket besides reading and writing.
pub trait Socket: Read + Write {
    /// Outcome of a non-blocking connect: `None` while it is still in progress.
    fn connect_result(&mut self) -> Option<io::Result<()>>;
    /// Half-close: no more bytes from us.
    fn shutdown_write(&mut self);
}

/// A socket plus its cached readiness.
#[derive(Debug)]
pub struct Endpoint<S> {
    pub sock: S,
    pub readable: bool,
    pub writable: bool,
    /// The poller said the peer closed its side. A short read then no longer proves the socket drained: the
    /// end-of-stream is still to be read, and no further edge will announce it.
    pub read_closed: bool,
}

impl<S> Endpoint<S> {
    pub fn new(sock: S) -> Endpoint<S> {
        Endpoint {
            sock,
            readable: true,
            writable: true,
            read_closed: false,
        }
    }
}

/// The reactor should open (or take from its pool) a connection to `addr` and hand it to `attach_backend`, or
/// report failure with `backend_connect_failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRequest {
    pub addr: SocketAddr,
    pub pooled_ok: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// Call `process` again no later than this.
    pub deadline: Option<Instant>,
    pub connect: Option<ConnectRequest>,
    /// The backend connection is idle and reusable: take it with `take_backend`.
    pub release_backend: bool,
    /// The session is over: drop it (closing its sockets).
    pub close: bool,
    /// Channels this connection now listens on (a hold started).
    pub subscribe: Vec<String>,
    /// Channels this connection no longer listens on (a hold ended).
    pub unsubscribe: Vec<String>,
    /// The session yielded with work left: queue it again on the next loop.
    pub again: bool,
    /// Gone-link notices to post (fire and forget).
    pub gone: Vec<super::gone::GoneRequest>,
    /// What the connection did since the last call (requests, head bytes, WebSocket messages, backend
    /// errors), for the metrics.
    pub counts: ConnCounts,
}

/// See `Env::prev_id_conflict`: (channel, prev-id) to whether they conflict.
pub type PrevIdCheck<'a> = dyn Fn(&str, &str) -> bool + 'a;

/// Shared, read-only context for a call to `process`.
pub struct Env<'a> {
    pub cfg: &'a ProxyConfig,
    pub router: &'a Arc<Router>,
    /// The server is shutting down: finish the current request, then close.
    pub draining: bool,
    /// Sequencing state shared by the workers (spec 4.8): given a channel and the prev-id a response
    /// hold names, says whether the channel's last published id differs, clearing it if so. `None`
    /// where nothing is published (tests).
    pub prev_id_conflict: Option<&'a PrevIdCheck<'a>>,
}

struct Backend<S> {
    ep: Endpoint<S>,
    addr: SocketAddr,
    connected: bool,
    reused: bool,
    input: InBuf,
    output: OutBuf,
    eof: bool,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    addr: SocketAddr,
    target_idx: usize,
}

enum RespState {
    /// Call: backend bytes. Next: Body once a (non-1xx) head parses.
    AwaitHead,
    /// Call: backend bytes and client writability. Next: Done when the body is complete.
    Body {
        dec: BodyDecoder,
        enc: BodyEncoder,
        backend_keep_alive: bool,
    },
    /// A GRIP response: its body is collected (bounded) and then read as instructions.
    /// Call: backend bytes. Next: Done (no hold) or the session's Held phase.
    Instruct {
        head: ResponseHead,
        dec: BodyDecoder,
        body: Vec<u8>,
        backend_keep_alive: bool,
    },
    /// A stream hold whose initial body is too large to buffer: the hold has started (head sent,
    /// channels subscribed, publishes queue up) and the rest of the body is relayed through its
    /// framing before the held phase proper. Call: backend bytes. Next: the session's Held phase.
    PreStream {
        hold: Box<crate::proxy::hold::Hold>,
        info: Box<HeldInfo>,
        dec: BodyDecoder,
        backend_keep_alive: bool,
    },
    /// The response has been produced (it may still be flushing).
    Done,
}

impl RespState {
    /// Collect a GRIP response's body (framed as `kind`) to read it as instructions.
    fn instruct(head: ResponseHead, kind: BodyKind) -> RespState {
        RespState::Instruct {
            backend_keep_alive: backend_reusable(&head, kind),
            dec: BodyDecoder::new(kind, ChunkLimits::default()),
            body: Vec::new(),
            head,
        }
    }
}

/// Whether a backend connection may carry another request after this response (framed as `kind`).
fn backend_reusable(head: &ResponseHead, kind: BodyKind) -> bool {
    head.keep_alive() && kind != BodyKind::CloseDelimited
}

/// One request being proxied to a backend.
struct Exchange {
    head: RequestHead,
    router: Arc<Router>,
    route_idx: usize,
    candidates: Vec<Candidate>,
    next_candidate: usize,
    tried: Vec<String>,
    /// Candidate whose head is (being) sent; `None` until a connection is asked for.
    current: Option<usize>,
    connect_started: Option<Instant>,
    /// The request head for the current backend connection is in its output queue.
    head_queued: bool,
    pooled_ok: bool,
    retried: bool,
    started: Instant,
    last_progress: Instant,
    tls: bool,
    client_keep_alive: bool,
    req_kind: BodyKind,
    req_dec: BodyDecoder,
    req_enc: BodyEncoder,
    req_body_bytes: u64,
    req_done: bool,
    resp: RespState,
    /// Bytes of the response already queued to the client; once non-zero, errors can only close the connection.
    resp_bytes: u64,
    status: u16,
    /// The client proved itself with `upstream_key`: GRIP passes through untouched both ways.
    trusted: bool,
    /// `Grip-Last` entries (channel, last id) sent with a retried request.
    grip_last: Vec<(String, String)>,
    /// This exchange fetches a next link: its response continues the client's.
    link: Option<Box<LinkFetch>>,
    /// The request body as forwarded, kept (up to `GRIP_REQUEST_BODY_MAX`) so a GRIP hold can make the
    /// request again; `None` once it grew past that or on routes without GRIP.
    req_copy: Option<Vec<u8>>,
    /// A retried request's body, queued with its head.
    retry_body: Option<Vec<u8>>,
    /// This exchange is already a retry for a prev-id conflict (never retried twice for one).
    prev_id_retried: bool,
    /// The request is a WebSocket handshake being forwarded to a WebSocket backend.
    ws: Option<WsUpgrade>,
}

enum Phase {
    /// Call: client bytes. Next: Exchange when a head parses; Closing on bad input; Closed on idle EOF.
    ReadHead {
        started: Option<Instant>,
    },
    /// Call: client and backend bytes. Next: ReadHead (keep-alive) or Closing.
    Exchange(Box<Exchange>),
    /// Held by GRIP until a publish, a timeout or the client leaves. Call: deliveries, time, client EOF.
    /// Next: ReadHead (keep-alive) or Closing.
    Held(Box<Held>),
    /// A next-link fetch failed; the client's response waits for the retry. Call: time, client EOF.
    /// Next: Exchange (the retry) or Closed.
    LinkWait(Box<LinkFetch>),
    /// A WebSocket after its handshake. Call: client and backend bytes, deliveries, time. Next: Closing.
    WebSocket(Box<WsPhase>),
    /// Flushing the last response, then half-closing and draining the peer before the final close.
    Closing {
        since: Instant,
        shut: bool,
        discarded: usize,
    },
    Closed,
}

pub struct Session<S: Socket> {
    client: Endpoint<S>,
    peer: SocketAddr,
    tls: bool,
    client_in: InBuf,
    client_out: OutBuf,
    client_eof: bool,
    backend: Option<Backend<S>>,
    phase: Phase,
    last_activity: Instant,
    deadline: Option<Instant>,
    pending_connect: Option<ConnectRequest>,
    release_backend: bool,
    draining: bool,
    log_prefix: u64,
    /// The `now` of the current `process` call, for transitions deep in the call tree.
    now: Instant,
    subscribe: Vec<String>,
    unsubscribe: Vec<String>,
    /// The explicit id of the route of the latest request, if it has one (stats `route`).
    stats_route: Option<Arc<str>>,
    /// An empty backend write buffer kept between exchanges on this connection.
    spare_backend_out: OutBuf,
    /// Gone links to post once `process` has the configuration to build them.
    pending_gone: Vec<PendingGone>,
    /// Counted since the last `process` returned them.
    counts: ConnCounts,
}

/// Why an exchange failed before a response could be relayed.
enum Failure {
    /// 502 with Pushpin's generic text; debug mode shows the detail.
    BadGateway(String),
    /// 504: the origin did not answer in time.
    Timeout(String),
}

impl<S: Socket> Session<S> {
    pub fn new(
        sock: S,
        peer: SocketAddr,
        tls: bool,
        cfg: &ProxyConfig,
        now: Instant,
        id: u64,
    ) -> Session<S> {
        Session {
            client: Endpoint::new(sock),
            peer,
            tls,
            client_in: InBuf::new(cfg.client_head.max_head.max(BODY_BUF_SIZE)),
            client_out: OutBuf::new(),
            client_eof: false,
            backend: None,
            phase: Phase::ReadHead { started: None },
            last_activity: now,
            deadline: None,
            pending_connect: None,
            release_backend: false,
            draining: false,
            log_prefix: id,
            now,
            subscribe: Vec::new(),
            unsubscribe: Vec::new(),
            stats_route: None,
            spare_backend_out: OutBuf::new(),
            pending_gone: Vec::new(),
            counts: ConnCounts::default(),
        }
    }

    /// The explicit id of the route the latest request took, if it has one.
    pub fn stats_route(&self) -> Option<&Arc<str>> {
        self.stats_route.as_ref()
    }

    /// The client's address as accepted (before any `X-Forwarded-For` reading).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn client_socket(&self) -> &S {
        &self.client.sock
    }

    pub fn backend_socket(&self) -> Option<&S> {
        self.backend.as_ref().map(|b| &b.ep.sock)
    }

    pub fn set_client_ready(&mut self, readable: bool, writable: bool) {
        self.client.readable |= readable;
        self.client.writable |= writable;
    }

    pub fn set_backend_ready(&mut self, readable: bool, writable: bool) {
        if let Some(b) = &mut self.backend {
            b.ep.readable |= readable;
            b.ep.writable |= writable;
        }
    }

    /// The poller reported that the client closed its sending side.
    pub fn set_client_read_closed(&mut self) {
        self.client.readable = true;
        self.client.read_closed = true;
    }

    /// The poller reported that the backend closed its sending side.
    pub fn set_backend_read_closed(&mut self) {
        if let Some(b) = &mut self.backend {
            b.ep.readable = true;
            b.ep.read_closed = true;
        }
    }

    /// The server is shutting down.
    pub fn begin_drain(&mut self) {
        self.draining = true;
    }

    /// Hand over the connection asked for with `Want::connect`. `reused` says it came from the pool (connected).
    pub fn attach_backend(&mut self, sock: S, addr: SocketAddr, reused: bool, now: Instant) {
        // A pooled socket is idle and writable, and the pool just vouched there is nothing to read; a fresh one
        // says it is connected with a writable edge. Either way a first read would only return WouldBlock.
        let ep = Endpoint {
            sock,
            readable: false,
            writable: reused,
            read_closed: false,
        };
        self.backend = Some(Backend {
            ep,
            addr,
            connected: reused,
            reused,
            input: InBuf::new(BODY_BUF_SIZE),
            // The previous exchange's buffer, kept so each request doesn't regrow a fresh one.
            output: std::mem::take(&mut self.spare_backend_out),
            eof: false,
        });
        if let Phase::Exchange(ex) = &mut self.phase {
            ex.connect_started = Some(now);
            ex.last_progress = now;
            ex.head_queued = false;
        }
    }

    /// The connection asked for could not even be started.
    pub fn backend_connect_failed(&mut self, err: io::Error, env: &Env) {
        self.backend = None;
        if matches!(self.phase, Phase::WebSocket(_)) {
            self.websocket_connect_failed(&format!("connect failed: {err}"), env);
            return;
        }
        self.try_next_candidate(env, &format!("connect failed: {err}"));
    }

    /// Take the idle backend connection after `Want::release_backend`.
    pub fn take_backend(&mut self) -> Option<(S, SocketAddr)> {
        self.release_backend = false;
        self.backend.take().map(|mut b| {
            b.output.clear();
            // Small buffers only: an idle connection must not keep a big upload's buffer.
            if b.output.capacity() <= SPARE_BUFFER_MAX {
                self.spare_backend_out = b.output;
            }
            (b.ep.sock, b.addr)
        })
    }

    /// Advance as far as the buffered bytes, readiness and time allow.
    pub fn process(&mut self, now: Instant, env: &Env) -> Want {
        self.now = now;
        if env.draining {
            self.draining = true;
        }
        if let Some(deadline) = self.deadline {
            if now >= deadline {
                self.deadline = None;
                self.on_timeout(now, env);
            }
        }
        let mut idle_steps = 0;
        let mut passes = 0;
        let mut again = false;
        loop {
            passes += 1;
            if passes > PASSES_PER_CALL_MAX {
                again = true;
                break;
            }
            if idle_steps > STEPS_MAX {
                log::error!(
                    "conn {}: step budget exceeded in {}; closing",
                    self.log_prefix,
                    self.phase_name()
                );
                self.phase = Phase::Closed;
                break;
            }
            if self.pending_connect.is_some() || matches!(self.phase, Phase::Closed) {
                break;
            }
            let mut io = self.read_client(now);
            let mut state = self.advance(now, env);
            io |= self.read_backend(now);
            state |= self.advance(now, env);
            io |= self.flush_backend(now, env);
            io |= self.flush_client(now);
            if !io && !state {
                break;
            }
            idle_steps = if io { 0 } else { idle_steps + 1 };
        }
        if self.client_out.is_empty()
            && matches!(self.phase, Phase::ReadHead { .. })
            && self.client_in.is_empty()
        {
            // Idle between requests: give the buffers' memory back.
            self.client_in.release_if_empty();
            self.client_out.release_if_empty();
        }
        if matches!(self.phase, Phase::Held(_) | Phase::WebSocket(_))
            && self.client_in.is_empty()
            && self.client_out.is_empty()
        {
            // A held connection or an idle WebSocket waits with no buffer memory at all.
            self.client_in.release_if_empty();
            self.client_out.release();
            if let Some(b) = &mut self.backend {
                if matches!(self.phase, Phase::WebSocket(_)) {
                    b.input.release_if_empty();
                    b.output.release();
                }
            }
        }
        let close = matches!(self.phase, Phase::Closed);
        let gone = if self.pending_gone.is_empty() {
            Vec::new()
        } else {
            self.take_gone_requests(env)
        };
        self.deadline = if close {
            None
        } else {
            self.compute_deadline(env.cfg)
        };
        // Heads for the client are counted as they are queued, wherever in the session that happens.
        let client_heads = self.client_out.take_head_bytes();
        self.counts.header(Flow::ClientSent, client_heads);
        Want {
            deadline: self.deadline,
            connect: self.pending_connect.take(),
            release_backend: self.release_backend && !close,
            close,
            subscribe: std::mem::take(&mut self.subscribe),
            unsubscribe: std::mem::take(&mut self.unsubscribe),
            again: again && !close,
            gone,
            counts: self.counts.take(),
        }
    }

    fn phase_name(&self) -> &'static str {
        match &self.phase {
            Phase::ReadHead { .. } => "read-head",
            Phase::Exchange(ex) => match ex.resp {
                RespState::AwaitHead => "await-response",
                RespState::Body { .. } => "response-body",
                RespState::Instruct { .. } => "grip-instruct",
                RespState::PreStream { .. } => "grip-stream-body",
                RespState::Done => "response-done",
            },
            Phase::Held(_) => "held",
            Phase::LinkWait(_) => "next-link-wait",
            Phase::WebSocket(_) => "websocket",
            Phase::Closing { .. } => "closing",
            Phase::Closed => "closed",
        }
    }

    // ---- socket I/O -------------------------------------------------------------------------------------------

    fn wants_client_read(&self) -> bool {
        match &self.phase {
            Phase::ReadHead { .. } | Phase::Exchange(_) | Phase::Held(_) | Phase::LinkWait(_) => {
                !self.client_eof && !self.client_in.is_full()
            }
            Phase::WebSocket(ws) => {
                let backend_out = self.backend.as_ref().map_or(0, |b| b.output.len());
                !self.client_eof
                    && !self.client_in.is_full()
                    && ws.conn.wants_client_read(backend_out)
            }
            Phase::Closing { shut, .. } => *shut && !self.client_eof,
            Phase::Closed => false,
        }
    }

    fn read_client(&mut self, now: Instant) -> bool {
        let mut progress = false;
        while self.client.readable && self.wants_client_read() {
            if let Phase::Closing { discarded, .. } = &mut self.phase {
                let mut scratch = [0u8; 4096];
                match self.client.sock.read(&mut scratch) {
                    Ok(0) => self.client_eof = true,
                    Ok(n) => {
                        *discarded += n;
                        if *discarded > LINGER_DISCARD_MAX {
                            self.phase = Phase::Closed;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.client.readable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => self.client_eof = true,
                }
                progress = true;
                continue;
            }
            match self.client_in.read_some(&mut self.client.sock) {
                Ok((0, _)) => {
                    self.client_eof = true;
                    progress = true;
                }
                Ok((_, drained)) => {
                    if drained && !self.client.read_closed {
                        // A short read drained the socket; the next arrival raises a new edge. Skipping the read
                        // that would only return WouldBlock saves a system call per request.
                        self.client.readable = false;
                    }
                    self.last_activity = now;
                    if let Phase::ReadHead {
                        started: started @ None,
                    } = &mut self.phase
                    {
                        *started = Some(now);
                    }
                    if let Phase::Exchange(ex) = &mut self.phase {
                        ex.last_progress = now;
                    }
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.client.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("conn {}: client read error: {e}", self.log_prefix);
                    self.client_eof = true;
                    self.client_out.clear();
                    progress = true;
                }
            }
        }
        progress
    }

    fn flush_client(&mut self, now: Instant) -> bool {
        if !self.client.writable || self.client_out.is_empty() {
            return false;
        }
        match self.client_out.write_to(&mut self.client.sock) {
            Ok(n) => {
                if n > 0 {
                    self.last_activity = now;
                    match &mut self.phase {
                        Phase::Exchange(ex) => ex.last_progress = now,
                        Phase::Held(h) => h.last_write = now,
                        _ => {}
                    }
                }
                n > 0
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.client.writable = false;
                false
            }
            Err(e) => {
                log::debug!("conn {}: client write error: {e}", self.log_prefix);
                self.abort("client went away while a response was being written");
                true
            }
        }
    }

    fn read_backend(&mut self, now: Instant) -> bool {
        let Some(b) = &mut self.backend else {
            return false;
        };
        let active = match &self.phase {
            Phase::Exchange(ex) => !matches!(ex.resp, RespState::Done),
            Phase::WebSocket(_) => true,
            _ => false,
        };
        if !b.connected || b.eof || !active {
            return false;
        }
        let mut progress = false;
        while b.ep.readable && !b.input.is_full() && !b.eof {
            match b.input.read_some(&mut b.ep.sock) {
                Ok((0, _)) => {
                    b.eof = true;
                    progress = true;
                }
                Ok((_, drained)) => {
                    if drained && !b.ep.read_closed {
                        b.ep.readable = false; // drained: see read_client
                    }
                    if let Phase::Exchange(ex) = &mut self.phase {
                        ex.last_progress = now;
                    }
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => b.ep.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("conn {}: backend read error: {e}", self.log_prefix);
                    b.eof = true;
                    progress = true;
                }
            }
        }
        progress
    }

    fn flush_backend(&mut self, now: Instant, env: &Env) -> bool {
        let Some(b) = &mut self.backend else {
            return false;
        };
        if !b.connected || !b.ep.writable || b.output.is_empty() {
            return false;
        }
        match b.output.write_to(&mut b.ep.sock) {
            Ok(n) => {
                if let Phase::Exchange(ex) = &mut self.phase {
                    ex.last_progress = now;
                }
                n > 0
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                b.ep.writable = false;
                false
            }
            Err(e) => {
                b.output.clear();
                b.eof = true;
                self.backend_broken(env, &format!("write failed: {e}"));
                true
            }
        }
    }

    // ---- state transitions ------------------------------------------------------------------------------------

    fn advance(&mut self, now: Instant, env: &Env) -> bool {
        match &self.phase {
            Phase::ReadHead { .. } => self.advance_read_head(now, env),
            Phase::Exchange(_) => self.advance_exchange(now, env),
            Phase::Held(_) => self.advance_held(now),
            Phase::LinkWait(_) => self.advance_link_wait(),
            Phase::WebSocket(_) => self.advance_websocket(now, env),
            Phase::Closing { .. } => self.advance_closing(),
            Phase::Closed => false,
        }
    }

    fn advance_read_head(&mut self, now: Instant, env: &Env) -> bool {
        if self.client_in.is_empty() {
            if self.client_eof || (self.draining && self.client_out.is_empty()) {
                self.phase = Phase::Closed;
                return true;
            }
            return false;
        }
        match parse_request_head(self.client_in.data(), &env.cfg.client_head) {
            Ok(None) => {
                if self.client_eof {
                    log::debug!("conn {}: client closed mid-request head", self.log_prefix);
                    self.phase = Phase::Closed;
                    return true;
                }
                false
            }
            Err(e) => {
                let code = match e {
                    HeadError::TooLarge | HeadError::TooManyHeaders => 431,
                    HeadError::UriTooLong => 414,
                    _ => 400,
                };
                log::info!(
                    "conn {}: bad request from {}: {e}",
                    self.log_prefix,
                    self.peer
                );
                self.respond_and_close(code, &e.to_string(), now);
                true
            }
            Ok(Some((head, used))) => {
                self.client_in.consume(used);
                self.counts.requests += 1;
                self.counts.header(Flow::ClientReceived, used as u64);
                self.start_request(head, now, env);
                true
            }
        }
    }

    fn start_request(&mut self, head: RequestHead, now: Instant, env: &Env) {
        let cfg = env.cfg;
        let req_kind = match request_body_kind(&head) {
            Ok(k) => k,
            Err(e) => {
                let code = if e == FramingError::UnsupportedTransferCoding {
                    501
                } else {
                    400
                };
                log::info!(
                    "conn {}: bad request framing from {}: {e}",
                    self.log_prefix,
                    self.peer
                );
                self.respond_and_close(code, &e.to_string(), now);
                return;
            }
        };
        if head.version == Version::Http11
            && head.header("Host").is_none()
            && !head.target.contains("://")
        {
            self.respond_and_close(400, "HTTP/1.1 request without a Host header", now);
            return;
        }
        if let (Some(max), BodyKind::Length(n)) = (cfg.client_max_body, req_kind) {
            if n > max {
                self.respond_and_close(413, &format!("request body exceeds {max} bytes"), now);
                return;
            }
        }
        let ws = rewrite::is_websocket_upgrade(&head);
        let tls = self.tls || (cfg.accept_x_forwarded_protocol && rewrite::forwarded_tls(&head));
        let (host, path) = rewrite::route_key(&head);
        let route_id = if cfg.accept_pushpin_route {
            head.header_str("Pushpin-Route")
                .map(|s| s.trim().to_string())
        } else {
            None
        };
        let router = Arc::clone(env.router);
        let query = RouteQuery {
            host,
            path,
            ws,
            tls,
            route_id: route_id.as_deref(),
        };
        let Some(route) = router.select(&query) else {
            self.stats_route = None;
            log::info!(
                "{} {} -> (none) code=502 route not found",
                head.method,
                head.target
            );
            self.respond_local(&head, req_kind, 502, ROUTE_NOT_FOUND, now);
            return;
        };
        self.stats_route.clone_from(&route.stats_id);
        let ws_upgrade = if ws {
            match self.start_websocket(&head, route, path, now, env) {
                Some(upgrade) => Some(upgrade),
                None => return,
            }
        } else {
            None
        };
        let trusted = match (&cfg.upstream_key, head.header_str("Grip-Sig")) {
            (Some(key), Some(token)) => verify_grip_sig(token.trim(), key, unix_now()),
            _ => false,
        };
        if !ws
            && !trusted
            && route.targets.iter().any(|t| t.over_http)
            && head.header("Content-Type") == Some(rewrite::WEBSOCKET_EVENTS.as_bytes())
        {
            // Spec 6.2: only holdfast speaks WebSocket-over-HTTP to an over_http backend.
            log::info!(
                "{} {} -> (none) route={} code=403 client sent WebSocket events",
                head.method,
                head.target,
                route.id
            );
            self.respond_local(
                &head,
                req_kind,
                403,
                "Client not allowed to send WebSocket events directly.",
                now,
            );
            return;
        }
        if route.targets.iter().any(|t| t.kind == TargetKind::Test) {
            let local = test_target::local_path(path, route.path_beg.as_deref());
            if let Some(inst) =
                test_target::hold_instruct(local, &head.target, env.cfg.subscription_max)
            {
                let ctx = HoldContext {
                    prefix: route.prefix.clone().unwrap_or_default(),
                    implicit: Vec::new(),
                    method: head.method.clone(),
                    target: head.target.clone(),
                    route_id: route.id.clone(),
                    version: head.version,
                    keep_alive: head.keep_alive() && req_kind == BodyKind::None && !self.draining,
                    started: now,
                    retry: None,
                    links: None,
                };
                self.start_hold(inst, ctx, now);
                return;
            }
            let (code, text) = test_target::answer(local);
            log::info!(
                "{} {} -> test route={} code={code}",
                head.method,
                head.target,
                route.id
            );
            self.respond_local(&head, req_kind, code, text, now);
            return;
        }
        let route_idx = router
            .table()
            .routes()
            .iter()
            .position(|r| std::ptr::eq(r, route))
            .unwrap_or(0);
        let mut candidates = Vec::new();
        let mut unusable = Vec::new();
        for (target_idx, target) in route.targets.iter().enumerate() {
            match &target.kind {
                TargetKind::Http { host, port } if !target.ssl => {
                    let addrs = router.addrs(host, *port);
                    if addrs.is_empty() {
                        unusable.push(format!("{host}:{port} (unresolved)"));
                    }
                    candidates.extend(addrs.iter().map(|&addr| Candidate { addr, target_idx }));
                }
                TargetKind::Http { host, port } => unusable.push(format!(
                    "{host}:{port} (TLS to backends is not supported yet)"
                )),
                TargetKind::Test => {
                    unusable.push("test (the test target is not supported yet)".into())
                }
                TargetKind::Zhttp(spec) | TargetKind::ZhttpReq(spec) => {
                    unusable.push(format!("{spec} (zhttp targets are not supported)"))
                }
            }
        }
        if candidates.is_empty() {
            let detail = format!("no usable target: {}", unusable.join(", "));
            log::warn!(
                "{} {} route={} code=502 {detail}",
                head.method,
                head.target,
                route.id
            );
            let text = if cfg.debug {
                detail.as_str()
            } else {
                ORIGIN_ERROR
            };
            self.respond_local(&head, req_kind, 502, text, now);
            return;
        }
        if head.expects_continue() && req_kind != BodyKind::None && req_kind != BodyKind::Length(0)
        {
            // Pushpin strips Expect toward the backend, so the proxy itself invites the body.
            self.client_out.push_head(write_continue);
        }
        let client_keep_alive = head.keep_alive();
        let ws_upgrade = match ws_upgrade {
            Some(WsStart::OverHttp { client_accept }) => {
                let candidates = candidates.iter().map(|c| (c.addr, c.target_idx)).collect();
                self.start_over_http(
                    head,
                    router,
                    route_idx,
                    candidates,
                    tls,
                    trusted,
                    client_accept,
                    now,
                    env,
                );
                return;
            }
            Some(WsStart::Passthrough(upgrade)) => Some(upgrade),
            None => None,
        };
        let mut ex = Exchange::new(ExchangeStart {
            head,
            router,
            route_idx,
            candidates,
            tried: unusable,
            tls,
            trusted,
            client_keep_alive,
            req_kind,
            grip_last: Vec::new(),
            now,
        });
        ex.ws = ws_upgrade;
        self.phase = Phase::Exchange(Box::new(ex));
        self.request_connect();
    }

    fn advance_closing(&mut self) -> bool {
        let Phase::Closing { shut, .. } = &mut self.phase else {
            return false;
        };
        if !self.client_out.is_empty() {
            return false;
        }
        if !*shut {
            *shut = true;
            self.client.sock.shutdown_write();
            return true;
        }
        if self.client_eof {
            self.phase = Phase::Closed;
            return true;
        }
        false
    }

    // ---- endings ----------------------------------------------------------------------------------------------

    /// Answer locally; keep the connection if the request has no body to skip.
    fn respond_local(
        &mut self,
        head: &RequestHead,
        body: BodyKind,
        code: u16,
        text: &str,
        now: Instant,
    ) {
        let keep = head.keep_alive() && body == BodyKind::None && !self.draining;
        let n = write_text_response(self.client_out.vec(), code, text, !keep);
        self.client_out.mark_head(n);
        self.next_request_or_close(keep, now);
    }

    /// A response is complete (or queued): read the next request on a kept-alive connection, or close it
    /// gracefully (flush, half-close, drain).
    fn next_request_or_close(&mut self, keep_alive: bool, now: Instant) {
        if keep_alive {
            self.phase = Phase::ReadHead { started: None };
            self.last_activity = now;
        } else {
            self.phase = Phase::Closing {
                since: now,
                shut: false,
                discarded: 0,
            };
        }
    }

    fn respond_and_close(&mut self, code: u16, text: &str, now: Instant) {
        let n = write_text_response(self.client_out.vec(), code, text, true);
        self.client_out.mark_head(n);
        self.phase = Phase::Closing {
            since: now,
            shut: false,
            discarded: 0,
        };
    }

    /// The exchange failed before a response head reached the client: answer with an error, logged once.
    fn fail(&mut self, env: &Env, failure: Failure) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        self.counts.backend_error(match failure {
            Failure::BadGateway(_) => BackendError::BadGateway,
            Failure::Timeout(_) => BackendError::Timeout,
        });
        if ex.link.is_some() {
            let (Failure::BadGateway(why) | Failure::Timeout(why)) = failure;
            self.link_failed(&why);
            return;
        }
        let route = &ex.router.table().routes()[ex.route_idx];
        let target = ex
            .current
            .map(|i| ex.candidates[i].addr.to_string())
            .unwrap_or_else(|| "-".into());
        let (code, detail) = match &failure {
            Failure::BadGateway(d) => (502, d.as_str()),
            Failure::Timeout(d) => (504, d.as_str()),
        };
        log::warn!(
            "{} {} -> {} route={} code={} {}",
            ex.head.method,
            ex.head.target,
            target,
            route.id,
            code,
            detail
        );
        self.backend = None;
        if ex.resp_bytes > 0 {
            self.abort(detail.to_string().as_str());
            return;
        }
        let text = if env.cfg.debug || route.debug {
            detail.to_string()
        } else if code == 504 {
            "Timed out waiting for the origin.".to_string()
        } else {
            ORIGIN_ERROR.to_string()
        };
        let keep = ex.client_keep_alive && ex.req_kind == BodyKind::None && !self.draining;
        // Only an interim 100 Continue can be queued here; it may be partly sent, so append after it.
        let n = write_text_response(self.client_out.vec(), code, &text, !keep);
        self.client_out.mark_head(n);
        self.phase = if keep {
            Phase::ReadHead { started: None }
        } else {
            Phase::Closing {
                since: self.now,
                shut: false,
                discarded: 0,
            }
        };
    }

    /// Nothing sensible can be sent any more: drop the connection.
    fn abort(&mut self, why: &str) {
        log::debug!("conn {}: closing: {why}", self.log_prefix);
        if let Phase::Exchange(ex) = &self.phase {
            if ex.resp_bytes > 0 {
                log::warn!(
                    "{} {} aborted after the response started: {why}",
                    ex.head.method,
                    ex.head.target
                );
            }
        }
        self.backend = None;
        self.phase = Phase::Closed;
    }

    // ---- time -------------------------------------------------------------------------------------------------

    fn compute_deadline(&self, cfg: &ProxyConfig) -> Option<Instant> {
        match &self.phase {
            Phase::ReadHead { started } => Some(match started {
                Some(t) if !self.client_in.is_empty() => *t + cfg.client_request_timeout,
                _ => self.last_activity + cfg.client_idle_timeout,
            }),
            Phase::Exchange(ex) => {
                let connecting = self.backend.as_ref().map(|b| !b.connected).unwrap_or(false);
                if connecting {
                    ex.connect_started.map(|t| t + cfg.backend_connect_timeout)
                } else if matches!(ex.resp, RespState::AwaitHead) {
                    Some(ex.last_progress + cfg.backend_response_timeout)
                } else {
                    Some(ex.last_progress + cfg.backend_idle_timeout)
                }
            }
            Phase::Held(h) => {
                let refresh = h.links.as_ref().and_then(|l| l.refresh_at);
                match (h.hold.deadline(), refresh) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Phase::LinkWait(fetch) => Some(fetch.retry_at),
            Phase::WebSocket(ws) => ws.conn.deadline(cfg),
            Phase::Closing { since, .. } => Some(*since + LINGER),
            Phase::Closed => None,
        }
    }

    fn on_timeout(&mut self, now: Instant, env: &Env) {
        let cfg = env.cfg;
        match &mut self.phase {
            Phase::ReadHead { .. } => {
                if self.client_in.is_empty() {
                    log::debug!("conn {}: idle timeout", self.log_prefix);
                    self.phase = Phase::Closed;
                } else {
                    let secs = secs(cfg.client_request_timeout);
                    self.client_in.consume(self.client_in.len());
                    self.respond_and_close(
                        408,
                        &format!("request head not received within {secs} s"),
                        now,
                    );
                }
            }
            Phase::Exchange(ex) => {
                let connecting = self.backend.as_ref().map(|b| !b.connected).unwrap_or(false);
                if connecting {
                    self.backend = None;
                    let why = format!(
                        "connect timed out after {} s",
                        secs(cfg.backend_connect_timeout)
                    );
                    self.try_next_candidate(env, &why);
                } else if matches!(ex.resp, RespState::AwaitHead) {
                    let addr = self
                        .backend
                        .as_ref()
                        .map(|b| b.addr.to_string())
                        .unwrap_or_default();
                    let d = format!(
                        "origin {addr} did not respond within {} s",
                        secs(cfg.backend_response_timeout)
                    );
                    self.fail(env, Failure::Timeout(d));
                } else {
                    self.abort("no progress within the backend idle timeout");
                }
            }
            Phase::Held(_) => self.held_timeout(now),
            Phase::LinkWait(_) => self.link_wait_timeout(now),
            Phase::WebSocket(_) => self.websocket_timeout(now, env),
            Phase::Closing { .. } => self.phase = Phase::Closed,
            Phase::Closed => {}
        }
    }
}

fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

#[allow(clippy::too_many_arguments)]
fn log_request(
    cfg: &ProxyConfig,
    head: &RequestHead,
    peer: SocketAddr,
    route: &str,
    target: Option<SocketAddr>,
    status: u16,
    bytes: u64,
    elapsed: Duration,
) {
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    // Optional fields are formatted in place (no allocation per request).
    struct Opt<'a>(&'a str, Option<&'a dyn std::fmt::Display>);
    impl std::fmt::Display for Opt<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.1 {
                Some(v) => write!(f, " {}={v}", self.0),
                None => Ok(()),
            }
        }
    }
    let ip = peer.ip();
    let from = Opt(
        "from",
        cfg.log_from.then_some(&ip as &dyn std::fmt::Display),
    );
    let agent = head.header_str("User-Agent").unwrap_or("-");
    let ua = Opt(
        "ua",
        cfg.log_user_agent
            .then_some(&agent as &dyn std::fmt::Display),
    );
    let target: &dyn std::fmt::Display = match &target {
        Some(addr) => addr,
        None => &"-",
    };
    // Integer arithmetic: formatting a float costs more than the rest of the line.
    let tenths_ms = elapsed.as_micros() / 100;
    crate::logging::info_line(format_args!(
        "{} {} -> {} route={}{} code={} {} {}.{}ms{}",
        head.method,
        head.target,
        target,
        route,
        from,
        status,
        bytes,
        tenths_ms / 10,
        tenths_ms % 10,
        ua
    ));
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
