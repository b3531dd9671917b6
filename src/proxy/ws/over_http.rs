//! WebSocket-over-HTTP (spec 6.2): the backend half of a client WebSocket served by plain HTTP requests. Every
//! request is a `POST` of `application/websocket-events`; at most one is in flight per connection, and
//! client messages that arrive meanwhile are batched into the next one (or sent one per request with
//! `one_event`). Responses carry events for the client and `Set-Meta-*`, `Keep-Alive-Interval` and
//! `Content-Bytes-Accepted` headers.
//!
//! Sans-IO: the session supplies a backend connection when asked (`connect`), and takes it back into its
//! pool (`release`) or drops it (`drop_backend`) after each response.
//!
//! Bounds: pending client content stops reading the client at `pending_max` (backpressure, not an error);
//! a response body over `body_max` fails the connection; connect errors are retried at most
//! `RETRIES_MAX` times with growing delays.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::grip::{backend_message, BackendMessage, ControlEffects, GripWs};
use super::BackendIo;
use crate::buf::OutBuf;
use crate::grip::{cached_grip_sig, unix_now};
use crate::http1::{
    parse_response_head, response_body_kind, write_response_head, BodyDecoder, BodyKind,
    ChunkLimits, Header, RequestHead, ResponseHead, Version,
};
use crate::proxy::config::ProxyConfig;
use crate::proxy::rewrite::{self, RequestContext, WsForward, WEBSOCKET_EVENTS};
use crate::proxy::router::Router;
use crate::proxy::session::ConnectRequest;
use crate::stats::{BackendError, ConnCounts, Flow};
use crate::websocket::close as code;
use crate::websocket::events::{self, EventKind};
use crate::websocket::frame::{MessageKind, OpCode, CONTROL_PAYLOAD_MAX};
use crate::websocket::handshake::{remove_grip_extension, write_server_response, WS_ACCEPT_MAX};
use crate::websocket::writer::encode_frame;

/// Largest response body Pushpin accepts after the connection is open.
pub const RESPONSE_BODY_MIN_MAX: usize = 1_000_000;
/// Rejection bodies relayed to the client are cut to this (as Pushpin does).
pub const REJECTION_BODY_MAX: usize = 100_000;
/// Messages to the client are cut into frames of at most this many bytes (as Pushpin does).
pub const CLIENT_FRAME_MAX: usize = 16_384;
/// Pending client content before the client stops being read; Pushpin's write buffer toward the backend.
pub const PENDING_MIN_MAX: usize = 200_000;
/// Request retries after connect errors once the connection is open (1, 2, 4, 8, 16 s apart).
pub const RETRIES_MAX: u32 = 5;
/// Smallest `Keep-Alive-Interval` honoured (seconds).
pub const KEEP_ALIVE_MIN_SECS: u64 = 20;
/// `Set-Meta-*` entries kept.
pub const META_MAX: usize = 32;

/// What the session knows of the client's handshake and where to send requests.
pub struct WohSetup {
    pub head: RequestHead,
    pub router: Arc<Router>,
    pub route_idx: usize,
    /// Backend addresses with the index of their target in the route.
    pub candidates: Vec<(SocketAddr, usize)>,
    pub peer: IpAddr,
    pub tls: bool,
    pub trusted: bool,
    pub client_accept: [u8; WS_ACCEPT_MAX],
    /// Largest client message (assembled) and the base of the body and pending bounds.
    pub max_message: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The OPEN request is out: the client has not had its 101.
    Opening,
    Open,
}

enum Request {
    Idle,
    /// A backend connection was asked for.
    Connecting {
        since: Instant,
    },
    /// The request is queued or sent; its response is awaited.
    Waiting {
        since: Instant,
        head: Option<ResponseHead>,
        dec: BodyDecoder,
        body: Vec<u8>,
        keep_alive: bool,
    },
}

/// What the connection learned from a response, for `WsConn` to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Signal {
    /// The OPEN was accepted: the 101 is queued to the client.
    Opened,
    /// The OPEN was refused or failed: an HTTP answer is queued to the client; the connection is over.
    Refused,
    /// The connection failed after it was open: drop the client without a Close (spec 6.2 "Errors").
    Failed(String),
    /// The backend closed the WebSocket (a CLOSE event).
    Close(Option<u16>, String),
    /// The backend asked to drop the client (a DISCONNECT event).
    Disconnect,
    /// A control message was applied.
    Control(ControlEffects),
}

pub struct OverHttp {
    setup: WohSetup,
    cid: String,
    stage: Stage,
    request: Request,
    /// Events waiting for the next request.
    pending: Vec<(EventKind, Vec<u8>)>,
    pending_content: usize,
    /// Events of the request in flight (re-sent on a retry, and for `Content-Bytes-Accepted`).
    in_flight: Vec<(EventKind, Vec<u8>)>,
    /// Content bytes at the front of `pending` that were sent before and are being sent again.
    replayed: usize,
    meta: Vec<(String, String)>,
    keep_alive: Option<Duration>,
    last_request: Instant,
    /// Candidate index in use, and the next to try while opening.
    current: usize,
    retries: u32,
    retry_at: Option<Instant>,
    one_event: bool,
    /// A DISCONNECT (or a last CLOSE) is the final request: nothing follows it.
    final_sent: bool,
    /// An empty request is wanted now (a published `refresh`).
    refresh: bool,
    finished: bool,
    pending_max: usize,
    body_max: usize,
    /// The status the client's handshake got (101, a relayed refusal, 502), once, for the access log.
    answer: Option<u16>,
    /// For the session: a connection is wanted / the connection is done with.
    pub connect: Option<ConnectRequest>,
    pub release: bool,
    pub drop_backend: bool,
    log_prefix: u64,
    /// Backend heads and messages each way, and failures; `WsConn` moves them to the session's counts.
    pub counts: ConnCounts,
}

impl OverHttp {
    pub fn new(setup: WohSetup, one_event: bool, now: Instant, log_prefix: u64) -> OverHttp {
        let pending_max = PENDING_MIN_MAX.max(setup.max_message + 1024);
        let body_max = RESPONSE_BODY_MIN_MAX.max(2 * setup.max_message + 64 * 1024);
        let mut w = OverHttp {
            setup,
            cid: crate::rand::uuid_v4(),
            stage: Stage::Opening,
            request: Request::Idle,
            pending: vec![(EventKind::Open, Vec::new())],
            pending_content: 0,
            in_flight: Vec::new(),
            replayed: 0,
            meta: Vec::new(),
            keep_alive: None,
            last_request: now,
            current: 0,
            retries: 0,
            retry_at: None,
            one_event,
            final_sent: false,
            refresh: false,
            answer: None,
            finished: false,
            pending_max,
            body_max,
            connect: None,
            release: false,
            drop_backend: false,
            log_prefix,
            counts: ConnCounts::default(),
        };
        w.ask_connection(now);
        w
    }

    pub fn connection_id(&self) -> &str {
        &self.cid
    }

    /// The client's handshake request.
    pub fn head(&self) -> &RequestHead {
        &self.setup.head
    }

    /// The backend address in use.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.setup.candidates.get(self.current).map(|c| c.0)
    }

    /// The handshake's outcome, once: the status the client got.
    pub fn take_answer(&mut self) -> Option<u16> {
        self.answer.take()
    }

    pub fn is_open(&self) -> bool {
        self.stage == Stage::Open
    }

    /// Nothing in flight and nothing to send: the backend side has nothing left to do.
    pub fn is_idle(&self) -> bool {
        matches!(self.request, Request::Idle) && self.pending.is_empty() && self.retry_at.is_none()
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Room for more client content (backpressure on the client's reads).
    pub fn has_room(&self) -> bool {
        self.pending_content < self.pending_max
    }

    /// Queue an event for the backend.
    pub fn queue(&mut self, kind: EventKind, content: &[u8]) {
        if self.final_sent {
            return;
        }
        if kind != EventKind::Close {
            self.pending_content += content.len();
        }
        if matches!(kind, EventKind::Text | EventKind::Binary) {
            self.counts.message(Flow::BackendSent);
        }
        self.pending.push((kind, content.to_vec()));
    }

    /// Ask the backend at once with an empty request (or with whatever is pending).
    pub fn refresh(&mut self) {
        if self.stage == Stage::Open && !self.final_sent {
            self.refresh = true;
        }
    }

    /// The last request: a DISCONNECT (the client vanished) or a bare CLOSE (holdfast closed the client).
    pub fn queue_final(&mut self, kind: EventKind) {
        if self.final_sent || self.stage != Stage::Open {
            self.finished = self.is_idle() || self.stage != Stage::Open;
            return;
        }
        self.queue(kind, &[]);
        self.final_sent = true;
    }

    pub fn deadline(&self, cfg: &ProxyConfig) -> Option<Instant> {
        let request = match &self.request {
            Request::Idle => None,
            Request::Connecting { since } => Some(*since + cfg.backend_connect_timeout),
            Request::Waiting { since, .. } => Some(*since + cfg.backend_response_timeout),
        };
        let keep_alive = match (&self.request, self.keep_alive, self.stage) {
            (Request::Idle, Some(every), Stage::Open) if !self.final_sent => {
                Some(self.last_request + every)
            }
            _ => None,
        };
        [request, keep_alive, self.retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: a retry or keep-alive request may be due, or a request timed out.
    pub fn on_time(
        &mut self,
        cfg: &ProxyConfig,
        now: Instant,
        out: &mut Vec<Signal>,
        client_out: &mut OutBuf,
    ) {
        let timed_out = match &self.request {
            Request::Connecting { since } => now >= *since + cfg.backend_connect_timeout,
            Request::Waiting { since, .. } => now >= *since + cfg.backend_response_timeout,
            Request::Idle => false,
        };
        if timed_out {
            self.drop_backend = true;
            self.request_failed("backend timed out", now, out, client_out);
        }
    }

    /// The connection asked for could not be made.
    pub fn connect_failed(
        &mut self,
        why: &str,
        now: Instant,
        out: &mut Vec<Signal>,
        client_out: &mut OutBuf,
    ) {
        self.request_failed(why, now, out, client_out);
    }

    /// Send, read and act as far as the buffers allow.
    #[allow(clippy::too_many_arguments)]
    pub fn advance(
        &mut self,
        backend: Option<&mut BackendIo>,
        cfg: &ProxyConfig,
        grip: &mut GripWs,
        client_out: &mut OutBuf,
        to_client: bool,
        now: Instant,
        out: &mut Vec<Signal>,
    ) -> bool {
        if self.finished {
            return false;
        }
        let mut progress = false;
        if let Some(at) = self.retry_at {
            if now >= at {
                self.retry_at = None;
                self.ask_connection(now);
                progress = true;
            }
        }
        if matches!(self.request, Request::Idle) && self.retry_at.is_none() {
            let keep_alive_due = self.stage == Stage::Open
                && !self.final_sent
                && self
                    .keep_alive
                    .is_some_and(|every| now >= self.last_request + every);
            if !self.pending.is_empty() || keep_alive_due || self.refresh {
                self.ask_connection(now);
                progress = true;
            }
        }
        let Some(b) = backend else {
            return progress;
        };
        if let Request::Connecting { .. } = self.request {
            self.send_request(b, cfg, now);
            progress = true;
        }
        if let Request::Waiting { .. } = self.request {
            progress |= self.read_response(b, cfg, grip, client_out, to_client, now, out);
        }
        progress
    }

    fn ask_connection(&mut self, now: Instant) {
        let Some(&(addr, _)) = self.setup.candidates.get(self.current) else {
            return;
        };
        self.connect = Some(ConnectRequest {
            addr,
            pooled_ok: true,
        });
        self.request = Request::Connecting { since: now };
    }

    fn send_request(&mut self, b: &mut BackendIo, cfg: &ProxyConfig, now: Instant) {
        // One event per request with `one_event` (OPEN always goes alone).
        let take = if self.one_event || self.stage == Stage::Opening {
            self.pending.len().min(1)
        } else {
            self.pending.len()
        };
        self.in_flight = self.pending.drain(..take).collect();
        self.refresh = false;
        let mut body = Vec::new();
        for (kind, content) in &self.in_flight {
            match kind {
                EventKind::Close if content.is_empty() => events::encode_close(&mut body, None),
                _ => events::encode_event(&mut body, *kind, content),
            }
        }
        let (_, target_idx) = self.setup.candidates[self.current];
        let router = &self.setup.router;
        let route = &router.table().routes()[self.setup.route_idx];
        let grip_sig = if route.no_grip || self.setup.trusted {
            None
        } else {
            router
                .signing(self.setup.route_idx, cfg)
                .map(|(iss, key)| cached_grip_sig(iss, key, unix_now() + 3600))
        };
        let ctx = RequestContext {
            cfg,
            route,
            target: &route.targets[target_idx],
            peer: self.setup.peer,
            tls: self.setup.tls,
            body: BodyKind::Length(body.len() as u64),
            trusted: self.setup.trusted,
            grip_sig: grip_sig.as_deref(),
            grip_last: &[],
            ws: Some(WsForward::OverHttp {
                connection_id: &self.cid,
                meta: &self.meta,
                replayed: self.replayed,
                grip: !route.no_grip,
            }),
        };
        b.output.clear();
        rewrite::backend_request(&self.setup.head, &ctx, b.output.vec());
        self.counts.header(Flow::BackendSent, b.output.len() as u64);
        b.output.extend(&body);
        self.last_request = now;
        self.request = Request::Waiting {
            since: now,
            head: None,
            dec: BodyDecoder::new(BodyKind::None, ChunkLimits::default()),
            body: Vec::new(),
            keep_alive: false,
        };
    }

    #[allow(clippy::too_many_arguments)]
    fn read_response(
        &mut self,
        b: &mut BackendIo,
        cfg: &ProxyConfig,
        grip: &mut GripWs,
        client_out: &mut OutBuf,
        to_client: bool,
        now: Instant,
        out: &mut Vec<Signal>,
    ) -> bool {
        let Request::Waiting {
            head,
            dec,
            body,
            keep_alive,
            ..
        } = &mut self.request
        else {
            return false;
        };
        let mut progress = false;
        if head.is_none() {
            match parse_response_head(b.input.data(), &cfg.backend_head) {
                Ok(None) => {
                    if b.eof {
                        self.drop_backend = true;
                        self.request_failed("backend closed the connection", now, out, client_out);
                        return true;
                    }
                    return false;
                }
                Err(e) => {
                    self.drop_backend = true;
                    let why = format!("invalid response head: {e}");
                    self.fail(&why, out, client_out);
                    return true;
                }
                Ok(Some((resp, used))) => {
                    b.input.consume(used);
                    self.counts.header(Flow::BackendReceived, used as u64);
                    progress = true;
                    if (100..200).contains(&resp.code) {
                        return true; // interim: the final head follows
                    }
                    let kind = match response_body_kind(&resp, "POST") {
                        Ok(k) => k,
                        Err(e) => {
                            self.drop_backend = true;
                            self.fail(&format!("invalid response framing: {e}"), out, client_out);
                            return true;
                        }
                    };
                    *keep_alive = resp.keep_alive() && kind != BodyKind::CloseDelimited;
                    *dec = BodyDecoder::new(kind, ChunkLimits::default());
                    *head = Some(resp);
                }
            }
        }
        loop {
            let data = b.input.data();
            match dec.decode(data) {
                Ok(step) => {
                    if step.consumed == 0 && !step.done {
                        break;
                    }
                    body.extend_from_slice(&data[step.data.clone()]);
                    b.input.consume(step.consumed);
                    progress = true;
                    if body.len() > self.body_max {
                        self.drop_backend = true;
                        let why = format!("response body over {} bytes", self.body_max);
                        self.fail(&why, out, client_out);
                        return true;
                    }
                    if step.done {
                        break;
                    }
                }
                Err(e) => {
                    self.drop_backend = true;
                    self.fail(&format!("invalid response body: {e}"), out, client_out);
                    return true;
                }
            }
        }
        if b.eof && !dec.is_done() && (dec.finish_on_eof().is_err() || !dec.is_done()) {
            self.drop_backend = true;
            self.request_failed("backend closed mid-response", now, out, client_out);
            return true;
        }
        if !dec.is_done() {
            return progress;
        }
        let Request::Waiting {
            head: Some(resp),
            body,
            keep_alive,
            ..
        } = std::mem::replace(&mut self.request, Request::Idle)
        else {
            return true;
        };
        if keep_alive && b.input.is_empty() && !b.eof {
            self.release = true;
        } else {
            self.drop_backend = true;
        }
        self.retries = 0;
        self.on_response(resp, body, grip, client_out, to_client, now, out);
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn on_response(
        &mut self,
        resp: ResponseHead,
        body: Vec<u8>,
        grip: &mut GripWs,
        client_out: &mut OutBuf,
        to_client: bool,
        now: Instant,
        out: &mut Vec<Signal>,
    ) {
        let is_events = resp.code == 200
            && resp
                .header("Content-Type")
                .is_some_and(|v| v == WEBSOCKET_EVENTS.as_bytes());
        if !is_events {
            let why = format!("backend answered {} {}", resp.code, resp.reason);
            if self.stage == Stage::Opening {
                log::info!(
                    "ws {}: WebSocket-over-HTTP open refused: {why}",
                    self.log_prefix
                );
                write_rejection(client_out, &resp, &body);
                self.answer = Some(resp.code);
                self.finished = true;
                out.push(Signal::Refused);
            } else {
                self.fail(&why, out, client_out);
            }
            return;
        }
        let evs = match events::parse_events(&body) {
            Ok(evs) => evs,
            Err(e) => {
                let why = format!("undecodable events: {e}");
                if self.stage == Stage::Opening {
                    self.refuse_open(&why, out, client_out);
                } else {
                    self.fail(&why, out, client_out);
                }
                return;
            }
        };
        self.read_headers(&resp);
        if let Some(accepted) = resp.header_str("Content-Bytes-Accepted") {
            if let Err(why) = self.accepted(accepted.trim()) {
                self.fail(&why, out, client_out);
                return;
            }
        } else {
            self.in_flight.clear();
            self.replayed = 0;
        }
        let mut rest = &evs[..];
        if self.stage == Stage::Opening {
            let opened = match evs.first() {
                Some(e) => e.kind == EventKind::Open,
                None => self.keep_alive.is_some(),
            };
            if !opened {
                self.refuse_open(
                    "the backend's answer did not start with OPEN",
                    out,
                    client_out,
                );
                return;
            }
            if grip_enabled(&resp) {
                grip.enabled = true;
                grip.prefix = "m:".into();
                if let Some(prefix) = crate::websocket::handshake::grip_extension(&resp.headers) {
                    grip.prefix = prefix;
                }
            }
            write_switch(client_out, &resp, &self.setup.client_accept);
            self.answer = Some(101);
            self.stage = Stage::Open;
            out.push(Signal::Opened);
            rest = &evs[evs.len().min(1)..];
        }
        for ev in rest {
            match ev.kind {
                EventKind::Text | EventKind::Binary => {
                    let kind = if ev.kind == EventKind::Text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    };
                    self.counts.message(Flow::BackendReceived);
                    match backend_message(
                        kind,
                        ev.content,
                        true,
                        grip,
                        client_out,
                        to_client,
                        CLIENT_FRAME_MAX,
                        now,
                        self.log_prefix,
                    ) {
                        BackendMessage::Control(fx) => out.push(Signal::Control(fx)),
                        BackendMessage::Relayed => self.counts.message(Flow::ClientSent),
                        BackendMessage::Dropped => {}
                    }
                }
                EventKind::Ping | EventKind::Pong if to_client => {
                    let op = if ev.kind == EventKind::Ping {
                        OpCode::Ping
                    } else {
                        OpCode::Pong
                    };
                    let n = ev.content.len().min(CONTROL_PAYLOAD_MAX);
                    encode_frame(client_out.vec(), op, true, &ev.content[..n], None);
                }
                EventKind::Close => {
                    let close = events::decode_close(ev.content).ok().flatten();
                    let (c, reason) = match close {
                        Some((c, r)) if code::is_valid_close_code(c) => (Some(c), r.to_string()),
                        Some(_) => (Some(code::NORMAL), String::new()),
                        None => (None, String::new()),
                    };
                    out.push(Signal::Close(c, reason));
                }
                EventKind::Disconnect => out.push(Signal::Disconnect),
                _ => {}
            }
        }
        if self.final_sent && self.pending.is_empty() {
            self.finished = true;
        }
    }

    fn read_headers(&mut self, resp: &ResponseHead) {
        for h in &resp.headers {
            let Some(name) = strip_prefix_ignore_case(&h.name, "Set-Meta-") else {
                continue;
            };
            let value = String::from_utf8_lossy(&h.value).trim().to_string();
            self.meta.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            if !value.is_empty() && self.meta.len() < META_MAX {
                self.meta.push((name.to_string(), value));
            }
        }
        if let Some(v) = resp.header_str("Keep-Alive-Interval") {
            self.keep_alive = match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(Duration::from_secs(n.max(KEEP_ALIVE_MIN_SECS))),
                _ => None,
            };
        }
    }

    /// `Content-Bytes-Accepted: N`: the backend took only the first N content bytes of the request;
    /// the rest goes again (with `Content-Bytes-Replayed`) ahead of what is pending.
    fn accepted(&mut self, value: &str) -> Result<(), String> {
        let n: usize = value
            .parse()
            .map_err(|_| format!("bad Content-Bytes-Accepted {value:?}"))?;
        let offered: usize = self
            .in_flight
            .iter()
            .filter(|(k, _)| *k != EventKind::Close)
            .map(|(_, c)| c.len())
            .sum();
        if n > offered {
            return Err(format!("backend accepted {n} content bytes of {offered}"));
        }
        let mut left = n;
        let mut replay = Vec::new();
        let mut replayed = 0;
        for (kind, content) in self.in_flight.drain(..) {
            if kind == EventKind::Close {
                if left == 0 && n == offered && offered > 0 && replay.is_empty() {
                    return Err("backend accepted the data but not the close after it".into());
                }
                replay.push((kind, content));
                continue;
            }
            if left >= content.len() {
                left -= content.len();
                continue;
            }
            let rest = content[left..].to_vec();
            left = 0;
            replayed += rest.len();
            replay.push((kind, rest));
        }
        self.replayed = replayed;
        self.pending_content = self.pending_content.saturating_sub(n);
        replay.append(&mut self.pending);
        self.pending = replay;
        Ok(())
    }

    /// A request could not be made or completed.
    fn request_failed(
        &mut self,
        why: &str,
        now: Instant,
        out: &mut Vec<Signal>,
        client_out: &mut OutBuf,
    ) {
        self.request = Request::Idle;
        if self.stage == Stage::Opening {
            // Errors while opening go to the next target (spec 6.2), then fail the handshake.
            self.current += 1;
            if self.current < self.setup.candidates.len() {
                log::debug!(
                    "ws {}: open failed ({why}); trying the next target",
                    self.log_prefix
                );
                self.ask_connection(now);
                return;
            }
            self.refuse_open(why, out, client_out);
            return;
        }
        // The request's events go again, first.
        let mut again = std::mem::take(&mut self.in_flight);
        again.append(&mut self.pending);
        self.pending = again;
        if self.retries >= RETRIES_MAX {
            self.fail(
                &format!("{why}; gave up after {RETRIES_MAX} retries"),
                out,
                client_out,
            );
            return;
        }
        let delay = Duration::from_secs(1 << self.retries)
            + Duration::from_millis(crate::rand::next_u64() % 1000);
        self.retries += 1;
        log::info!(
            "ws {}: request failed ({why}); retry {} in {delay:?}",
            self.log_prefix,
            self.retries
        );
        self.retry_at = Some(now + delay);
    }

    fn refuse_open(&mut self, why: &str, out: &mut Vec<Signal>, client_out: &mut OutBuf) {
        log::warn!(
            "ws {}: WebSocket-over-HTTP open failed: {why}",
            self.log_prefix
        );
        self.counts.backend_error(BackendError::BadGateway);
        let n = crate::proxy::local::write_text_response(
            client_out.vec(),
            502,
            crate::proxy::local::ORIGIN_ERROR,
            true,
        );
        client_out.mark_head(n);
        self.answer = Some(502);
        self.finished = true;
        out.push(Signal::Refused);
    }

    fn fail(&mut self, why: &str, out: &mut Vec<Signal>, client_out: &mut OutBuf) {
        if self.stage == Stage::Opening {
            self.refuse_open(why, out, client_out);
            return;
        }
        log::info!("ws {}: WebSocket-over-HTTP failed: {why}", self.log_prefix);
        self.counts.backend_error(BackendError::BadGateway);
        self.request = Request::Idle;
        self.pending.clear();
        self.finished = true;
        out.push(Signal::Failed(why.to_string()));
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn grip_enabled(resp: &ResponseHead) -> bool {
    crate::websocket::handshake::grip_extension(&resp.headers).is_some()
}

/// The client's 101, from the backend's OPEN answer (spec 6.2 step 1).
fn write_switch(out: &mut OutBuf, resp: &ResponseHead, accept: &[u8; WS_ACCEPT_MAX]) {
    let mut headers: Vec<Header> = resp
        .headers
        .iter()
        .filter(|h| {
            let n = h.name.as_str();
            ![
                "Content-Type",
                "Content-Length",
                "Keep-Alive-Interval",
                "Content-Bytes-Accepted",
            ]
            .iter()
            .any(|x| n.eq_ignore_ascii_case(x))
                && strip_prefix_ignore_case(n, "Set-Meta-").is_none()
        })
        .cloned()
        .collect();
    remove_grip_extension(&mut headers);
    out.push_head(|v| write_server_response(v, accept, None, &headers));
}

/// A refused OPEN goes to the client as the backend's answer (body cut to `REJECTION_BODY_MAX`).
fn write_rejection(out: &mut OutBuf, resp: &ResponseHead, body: &[u8]) {
    let body = &body[..body.len().min(REJECTION_BODY_MAX)];
    let mut headers: Vec<Header> = resp
        .headers
        .iter()
        .filter(|h| {
            !crate::http1::is_hop_by_hop(&h.name) && !h.name.eq_ignore_ascii_case("Content-Length")
        })
        .cloned()
        .collect();
    headers.push(Header::new(
        "Content-Length",
        body.len().to_string().as_bytes(),
    ));
    headers.push(Header::new("Connection", b"close"));
    out.push_head(|v| write_response_head(v, Version::Http11, resp.code, &resp.reason, &headers));
    out.extend(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteTable;

    fn woh() -> OverHttp {
        let (table, _) = RouteTable::parse("* 127.0.0.1:1,over_http\n", "test").unwrap();
        let (router, _) = Router::new(table).unwrap();
        let head = crate::http1::parse_request_head(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            &Default::default(),
        )
        .unwrap()
        .unwrap()
        .0;
        let setup = WohSetup {
            head,
            router: Arc::new(router),
            route_idx: 0,
            candidates: vec![("127.0.0.1:1".parse().unwrap(), 0)],
            peer: "127.0.0.1".parse().unwrap(),
            tls: false,
            trusted: false,
            client_accept: [b'a'; WS_ACCEPT_MAX],
            max_message: 1024,
        };
        OverHttp::new(setup, false, Instant::now(), 1)
    }

    fn response(headers: &str) -> ResponseHead {
        let text = format!("HTTP/1.1 200 OK\r\n{headers}\r\n");
        parse_response_head(text.as_bytes(), &Default::default())
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn keep_alive_interval_is_at_least_20_seconds_and_zero_turns_it_off() {
        let mut w = woh();
        w.read_headers(&response("Keep-Alive-Interval: 5\r\n"));
        assert_eq!(w.keep_alive, Some(Duration::from_secs(20)));
        w.read_headers(&response("Keep-Alive-Interval: 45\r\n"));
        assert_eq!(w.keep_alive, Some(Duration::from_secs(45)));
        w.read_headers(&response("Keep-Alive-Interval: 0\r\n"));
        assert_eq!(w.keep_alive, None);
    }

    #[test]
    fn set_meta_sets_replaces_and_an_empty_value_removes() {
        let mut w = woh();
        w.read_headers(&response("Set-Meta-User: alice\r\nSet-Meta-Room: 7\r\n"));
        w.read_headers(&response("Set-Meta-User: bob\r\n"));
        assert_eq!(
            w.meta,
            [
                ("Room".to_string(), "7".to_string()),
                ("User".to_string(), "bob".to_string())
            ]
        );
        w.read_headers(&response("Set-Meta-Room: \r\n"));
        assert_eq!(w.meta, [("User".to_string(), "bob".to_string())]);
    }

    #[test]
    fn partly_accepted_content_is_replayed_first() {
        let mut w = woh();
        w.pending.clear();
        w.in_flight = vec![
            (EventKind::Text, b"hello".to_vec()),
            (EventKind::Binary, b"world".to_vec()),
        ];
        w.pending_content = 10;
        w.queue(EventKind::Text, b"later");
        w.accepted("7").unwrap();
        assert_eq!(
            w.pending,
            [
                (EventKind::Binary, b"rld".to_vec()),
                (EventKind::Text, b"later".to_vec()),
            ]
        );
        assert_eq!(w.replayed, 3);
        assert_eq!(w.pending_content, 8);
    }

    #[test]
    fn accepting_more_than_offered_or_data_without_its_close_is_an_error() {
        let mut w = woh();
        w.in_flight = vec![(EventKind::Text, b"abc".to_vec())];
        assert!(w.accepted("4").is_err());
        w.in_flight = vec![
            (EventKind::Text, b"abc".to_vec()),
            (EventKind::Close, vec![3, 232]),
        ];
        assert!(w.accepted("3").is_err());
    }

    #[test]
    fn connect_errors_after_open_are_retried_with_growing_delays_then_fail() {
        let mut w = woh();
        w.stage = Stage::Open;
        w.pending.clear();
        w.queue(EventKind::Text, b"keep me");
        let mut out = Vec::new();
        let mut client = OutBuf::new();
        let t0 = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..RETRIES_MAX {
            w.request = Request::Connecting { since: t0 };
            w.connect_failed("refused", t0, &mut out, &mut client);
            let at = w.retry_at.take().expect("a retry is scheduled");
            delays.push(at.duration_since(t0).as_secs());
            assert_eq!(w.pending.len(), 1, "the queued event must survive a retry");
        }
        assert_eq!(delays, [1, 2, 4, 8, 16]);
        assert!(out.is_empty());
        w.request = Request::Connecting { since: t0 };
        w.connect_failed("refused", t0, &mut out, &mut client);
        assert!(matches!(out.as_slice(), [Signal::Failed(_)]), "{out:?}");
        assert!(w.is_finished());
        assert!(
            client.is_empty(),
            "a failure after open sends the client nothing"
        );
    }

    #[test]
    fn open_errors_go_to_the_next_candidate_then_answer_502() {
        let mut w = woh();
        w.setup.candidates.push(("127.0.0.2:1".parse().unwrap(), 0));
        let mut out = Vec::new();
        let mut client = OutBuf::new();
        let now = Instant::now();
        w.connect_failed("refused", now, &mut out, &mut client);
        assert_eq!(
            w.connect.take().map(|c| c.addr.to_string()).as_deref(),
            Some("127.0.0.2:1")
        );
        assert!(out.is_empty());
        w.connect_failed("refused", now, &mut out, &mut client);
        assert_eq!(out, [Signal::Refused]);
        assert!(String::from_utf8_lossy(client.data()).starts_with("HTTP/1.1 502 "));
    }
}
