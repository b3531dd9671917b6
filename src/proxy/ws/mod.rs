//! A client's WebSocket once its handshake is done, as a sans-IO state machine over the session's buffers:
//! frames between the client and what serves it (a WebSocket backend, spec 6.1, or the `test` target's echo
//! endpoint, spec 7.8), GRIP control messages (spec 6.3) and published `ws-message` items (spec 6.4).
//!
//! Invariants:
//! * Relayed frames stream: a data frame's header goes out as soon as it is read and its payload follows in
//!   whatever pieces arrive, so a message costs no memory however large. Only what must be seen whole is
//!   collected (GRIP messages from the backend, bounded by `WsLimits::max_message`).
//! * Published messages never land inside a relayed fragmented message: they wait for its last frame.
//! * Each direction stops reading while the other side's write queue is over `OUT_QUEUE_MAX`.
//! * The connection ends once the client has both sent and been sent a Close (or vanished), or `CLOSE_WAIT`
//!   after a Close was sent without an answer.

mod grip;
mod over_http;
mod passthrough;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{ProxyConfig, OUT_QUEUE_MAX};
use crate::buf::{InBuf, OutBuf};
use crate::publish::{Action, Item, WsType};
use crate::stats::{ConnCounts, Flow};
use crate::websocket::assemble::Assembler;
use crate::websocket::close::{self as code, ProtocolError};
use crate::websocket::events::EventKind;
use crate::websocket::frame::{MessageKind, OpCode, Role};
use crate::websocket::limits::WsLimits;
use crate::websocket::reader::{Event, Reader};
use crate::websocket::writer::{encode_close, encode_frame};

pub use grip::{GripWs, FILTERS_MAX};
pub use over_http::{OverHttp, WohSetup};
pub use passthrough::Passthrough;

/// Published messages one WebSocket may queue before the oldest is dropped (as for HTTP holds).
pub const WS_QUEUE_MAX: usize = crate::proxy::hold::HELD_QUEUE_MAX;
/// How long to wait for the peer's Close after sending ours.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The session's buffers for one `advance` call.
pub struct WsIo<'a> {
    pub cfg: &'a ProxyConfig,
    pub client_in: &'a mut InBuf,
    pub client_out: &'a mut OutBuf,
    pub client_eof: bool,
    pub backend: Option<BackendIo<'a>>,
    /// The session's counts: WebSocket messages each way (and what the backend half counted).
    pub counts: &'a mut ConnCounts,
}

pub struct BackendIo<'a> {
    pub input: &'a mut InBuf,
    pub output: &'a mut OutBuf,
    pub eof: bool,
}

/// What serves the client.
pub enum Peer {
    /// A WebSocket backend (spec 6.1).
    Backend(Box<Passthrough>),
    /// The `test` target's echo endpoint (spec 7.8): messages come straight back.
    Echo,
    /// A plain HTTP backend speaking WebSocket-over-HTTP (spec 6.2).
    OverHttp(Box<OverHttp>),
}

pub struct WsConn {
    client_rx: Reader,
    /// Client messages collected whole, where the peer needs them so (the echo endpoint).
    client_msg: Assembler,
    peer: Peer,
    pub grip: GripWs,
    queue: VecDeque<Arc<Item>>,
    pub dropped: u64,
    warned_drop: bool,
    /// The client's Close was read.
    client_closed: bool,
    /// Our Close (or the backend's, relayed) is queued to the client.
    client_close_sent: bool,
    close_sent_at: Option<Instant>,
    /// A fragmented message is being relayed to the client: deliveries wait for its end.
    relaying_to_client: bool,
    /// The client's connection ended without a Close (or must be dropped without one).
    client_gone: bool,
    /// The code of the client's Close, to answer it with when the backend does not.
    client_close_code: Option<u16>,
    finished: bool,
    /// Channel changes for the reactor.
    pub subscribe: Vec<String>,
    pub unsubscribe: Vec<String>,
    /// Client bytes read and written, for the log line at the end.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Messages delivered from publishes.
    pub delivered: u64,
    log_prefix: u64,
}

impl WsConn {
    pub fn new(peer: Peer, grip: GripWs, limits: WsLimits, log_prefix: u64) -> WsConn {
        WsConn {
            client_rx: Reader::new(Role::Server, limits),
            client_msg: Assembler::new(limits.max_message),
            peer,
            grip,
            queue: VecDeque::new(),
            dropped: 0,
            warned_drop: false,
            client_closed: false,
            client_close_sent: false,
            close_sent_at: None,
            relaying_to_client: false,
            client_gone: false,
            client_close_code: None,
            finished: false,
            subscribe: Vec::new(),
            unsubscribe: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            delivered: 0,
            log_prefix,
        }
    }

    /// The connection is over: the session flushes the client's queue and closes.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the client has had its 101 (WebSocket-over-HTTP answers it only once the backend accepts).
    pub fn is_open(&self) -> bool {
        match &self.peer {
            Peer::OverHttp(w) => w.is_open(),
            Peer::Backend(_) | Peer::Echo => true,
        }
    }

    /// Whether the backend connection is still wanted (passthrough, until both Closes crossed it).
    pub fn wants_backend(&self) -> bool {
        match &self.peer {
            Peer::Backend(pt) => !pt.is_done(),
            Peer::Echo => false,
            Peer::OverHttp(_) => true,
        }
    }

    /// The id a WebSocket-over-HTTP backend knows this connection by (`Connection-Id`).
    pub fn connection_id(&self) -> Option<&str> {
        match &self.peer {
            Peer::OverHttp(w) => Some(w.connection_id()),
            _ => None,
        }
    }

    /// The command socket's `refresh`: a WebSocket-over-HTTP connection asks its backend now. False for
    /// other kinds of WebSocket, which have no backend request to make.
    pub fn refresh(&mut self) -> bool {
        match &mut self.peer {
            Peer::OverHttp(w) => {
                w.refresh();
                true
            }
            _ => false,
        }
    }

    /// WebSocket-over-HTTP's requests for the session's connection handling.
    pub fn over_http(&mut self) -> Option<&mut OverHttp> {
        match &mut self.peer {
            Peer::OverHttp(w) => Some(w),
            _ => None,
        }
    }

    /// The connection asked for by WebSocket-over-HTTP could not be made.
    pub fn backend_connect_failed(&mut self, io: &mut WsIo, why: &str, now: Instant) {
        let mut signals = Vec::new();
        if let Peer::OverHttp(w) = &mut self.peer {
            w.connect_failed(why, now, &mut signals, io.client_out);
        }
        self.on_signals(io, signals, now);
        self.take_peer_counts(io.counts);
    }

    /// Move what the backend half counted into the session's counts. Called at the end of every entry point
    /// that may have reached the backend half, so nothing is lost when the connection ends.
    fn take_peer_counts(&mut self, counts: &mut ConnCounts) {
        match &mut self.peer {
            Peer::Backend(pt) => counts.add(&pt.counts.take()),
            Peer::OverHttp(w) => counts.add(&w.counts.take()),
            Peer::Echo => {}
        }
    }

    /// Whether client bytes should be read now (backpressure: the peer's queue has room).
    pub fn wants_client_read(&self, backend_out_len: usize) -> bool {
        !self.finished
            && !self.client_closed
            && !self.client_gone
            && match &self.peer {
                Peer::Backend(_) => backend_out_len < OUT_QUEUE_MAX,
                Peer::Echo => true,
                Peer::OverHttp(w) => w.is_open() && w.has_room(),
            }
    }

    /// Move as many bytes as buffers and backpressure allow. Returns whether anything changed.
    pub fn advance(&mut self, io: &mut WsIo, now: Instant) -> bool {
        if self.finished {
            return false;
        }
        let progress = self.advance_inner(io, now);
        self.take_peer_counts(io.counts);
        progress
    }

    fn advance_inner(&mut self, io: &mut WsIo, now: Instant) -> bool {
        let out_before = io.client_out.len();
        let mut progress = self.read_client(io, now);
        progress |= self.read_peer(io, now);
        progress |= self.send_due(io.client_out, io.counts, now);
        progress |= self.pump_deliveries(io, now);
        if let (Peer::Backend(pt), Some(b)) = (&mut self.peer, io.backend.as_mut()) {
            pt.flush_wanted_close(b.output);
        }
        if io.client_out.len() > out_before {
            self.bytes_out += (io.client_out.len() - out_before) as u64;
            self.grip.client_written(now);
        }
        if !self.finished && !self.client_gone && io.client_eof && !self.client_closed {
            log::debug!("ws {}: client went away without a Close", self.log_prefix);
            self.client_gone = true;
            self.end_backend(io);
            progress = true;
        }
        if let Peer::OverHttp(w) = &mut self.peer {
            if self.client_closed && !self.client_close_sent && w.is_idle() && !self.client_gone {
                // The backend answered the client's CLOSE without one of its own: complete the handshake.
                let c = self.client_close_code;
                self.close_client(io.client_out, c, "", now);
            }
        }
        if !self.finished {
            let client_done = self.client_gone || (self.client_closed && self.client_close_sent);
            let backend_done = match &self.peer {
                Peer::OverHttp(w) => w.is_finished() || w.is_idle(),
                // Our last frames to the backend (its Close answered) leave before the socket is dropped.
                Peer::Backend(_) => io
                    .backend
                    .as_ref()
                    .is_none_or(|b| b.output.is_empty() || b.eof),
                Peer::Echo => true,
            };
            if client_done && backend_done {
                self.finished = true;
                progress = true;
            }
        }
        progress
    }

    /// A published item for `channel`. Returns whether it was queued.
    pub fn deliver(
        &mut self,
        item: &Arc<Item>,
        channel: &str,
        subscribed: &dyn Fn(&str) -> bool,
    ) -> bool {
        if self.finished || self.client_close_sent || !self.grip.wants(item, channel, subscribed) {
            return false;
        }
        if self.queue.len() >= WS_QUEUE_MAX {
            self.queue.pop_front();
            self.dropped += 1;
            if !self.warned_drop {
                self.warned_drop = true;
                log::warn!(
                    "ws {}: client is not keeping up; dropping its oldest queued messages (queue limit {WS_QUEUE_MAX})",
                    self.log_prefix
                );
            }
        }
        self.queue.push_back(Arc::clone(item));
        true
    }

    /// The earliest time `on_time` has something to do.
    pub fn deadline(&self, cfg: &ProxyConfig) -> Option<Instant> {
        let close = self.close_sent_at.map(|t| t + CLOSE_WAIT);
        let own = if self.client_close_sent {
            None
        } else {
            self.grip.deadline()
        };
        let woh = match &self.peer {
            Peer::OverHttp(w) => w.deadline(cfg),
            _ => None,
        };
        [close, own, woh].into_iter().flatten().min()
    }

    /// Time passed: keep-alives and delayed messages go out, an unanswered Close gives up.
    pub fn on_time(&mut self, io: &mut WsIo, now: Instant) {
        self.on_time_inner(io, now);
        self.take_peer_counts(io.counts);
    }

    fn on_time_inner(&mut self, io: &mut WsIo, now: Instant) {
        if self.finished {
            return;
        }
        if let Some(sent) = self.close_sent_at {
            if now >= sent + CLOSE_WAIT {
                log::debug!(
                    "ws {}: no Close in answer within {CLOSE_WAIT:?}",
                    self.log_prefix
                );
                self.end_backend(io);
                self.finished = true;
                return;
            }
        }
        let mut signals = Vec::new();
        if let Peer::OverHttp(w) = &mut self.peer {
            w.on_time(io.cfg, now, &mut signals, io.client_out);
        }
        self.on_signals(io, signals, now);
        if self.send_due(io.client_out, io.counts, now) {
            self.grip.client_written(now);
        }
    }

    /// The server is shutting down: close the client with 1001.
    pub fn begin_drain(&mut self, io: &mut WsIo, now: Instant) {
        if !self.client_close_sent {
            self.close_client(
                io.client_out,
                Some(code::GOING_AWAY),
                "server shutting down",
                now,
            );
            self.end_backend(io);
        }
    }

    // ---- client → peer ----------------------------------------------------------------------------------------

    fn read_client(&mut self, io: &mut WsIo, now: Instant) -> bool {
        let mut progress = false;
        loop {
            let backend_out = io.backend.as_ref().map_or(0, |b| b.output.len());
            // An empty buffer is still read: a zero-length frame's end is reported without input.
            if !self.wants_client_read(backend_out) {
                return progress;
            }
            let (used, result) = match self.client_rx.read(io.client_in.data_mut()) {
                Err(e) => {
                    self.client_broke_protocol(io, e, now);
                    return true;
                }
                Ok((0, None)) => return progress,
                Ok((used, event)) => {
                    if let Some(Event::DataFrame { first: true, .. }) = event {
                        io.counts.message(Flow::ClientReceived);
                    }
                    let result = match event {
                        None => Ok(()),
                        Some(ev) => route_client_event(
                            ev,
                            &mut self.peer,
                            &mut self.client_msg,
                            &self.grip,
                            io.client_out,
                            io.backend.as_mut(),
                            io.counts,
                        ),
                    };
                    (used, result)
                }
            };
            io.client_in.consume(used);
            self.bytes_in += used as u64;
            progress = true;
            match result {
                Ok(()) => {}
                Err(ClientOutcome::Closed { code: c, reason }) => {
                    self.client_closed = true;
                    self.on_client_close(io, c, &reason, now);
                }
                Err(ClientOutcome::Broken(e)) => {
                    self.client_broke_protocol(io, e, now);
                    return true;
                }
            }
        }
    }

    fn on_client_close(&mut self, io: &mut WsIo, c: Option<u16>, reason: &str, now: Instant) {
        self.client_close_code = c;
        match &mut self.peer {
            Peer::OverHttp(w) if !self.grip.detached && !self.client_close_sent => {
                // The backend answers with a CLOSE event, which completes the client's handshake.
                let mut content = Vec::new();
                if let Some(c) = c {
                    crate::websocket::close::write_close_payload(&mut content, c, reason);
                }
                w.queue(EventKind::Close, &content);
            }
            Peer::Backend(pt) if !self.grip.detached && pt.can_send() => {
                // The backend answers; its Close is relayed to complete the client's handshake.
                if let Some(b) = io.backend.as_mut() {
                    pt.send_close(b.output, c, reason);
                }
                if self.client_close_sent {
                    self.end_backend(io);
                }
            }
            _ => {
                if !self.client_close_sent {
                    // RFC 6455 5.5.1: the endpoint answers with a Close, usually echoing the status code (and a
                    // Close without one is answered without one).
                    self.close_client(io.client_out, c, "", now);
                }
                self.end_backend(io);
            }
        }
    }

    fn client_broke_protocol(&mut self, io: &mut WsIo, e: ProtocolError, now: Instant) {
        log::debug!(
            "ws {}: client protocol error: {} ({})",
            self.log_prefix,
            e.reason,
            e.code
        );
        self.client_closed = true; // nothing more is read from it
        if !self.client_close_sent {
            self.close_client(io.client_out, Some(e.code), e.reason, now);
        }
        if let (Peer::Backend(pt), Some(b)) = (&mut self.peer, io.backend.as_mut()) {
            if pt.can_send() {
                pt.send_close(b.output, Some(code::GOING_AWAY), "client protocol error");
            }
        }
        self.finished = true;
    }

    // ---- peer → client ----------------------------------------------------------------------------------------

    fn read_peer(&mut self, io: &mut WsIo, now: Instant) -> bool {
        if let Peer::OverHttp(w) = &mut self.peer {
            let to_client = !self.client_close_sent && !self.client_gone && !self.grip.detached;
            let mut signals = Vec::new();
            let progress = w.advance(
                io.backend.as_mut(),
                io.cfg,
                &mut self.grip,
                io.client_out,
                to_client,
                now,
                &mut signals,
            );
            let any = !signals.is_empty();
            self.on_signals(io, signals, now);
            return progress || any;
        }
        let Peer::Backend(pt) = &mut self.peer else {
            return false;
        };
        let Some(b) = io.backend.as_mut() else {
            return false;
        };
        let mut progress = false;
        // A Close for the client is decided in the loop and queued after it (it needs all of `self`).
        let mut close: Option<(Option<u16>, String)> = None;
        loop {
            if io.client_out.len() >= OUT_QUEUE_MAX || pt.close_received() || close.is_some() {
                break;
            }
            match pt.read(
                b.input,
                io.client_out,
                &mut self.grip,
                self.client_close_sent,
                now,
            ) {
                Ok(passthrough::Read::Nothing) => break,
                Ok(passthrough::Read::Moved { relaying }) => {
                    self.relaying_to_client = relaying;
                    progress = true;
                }
                Ok(passthrough::Read::Control(fx)) => {
                    progress = true;
                    self.subscribe.extend(fx.subscribe);
                    self.unsubscribe.extend(fx.unsubscribe);
                    if let Some((c, reason)) = fx.close {
                        close = Some((Some(c), reason.to_string()));
                        pt.send_close(b.output, Some(code::NORMAL), "");
                    }
                    if fx.detach && pt.can_send() {
                        pt.send_close(b.output, Some(code::NORMAL), "");
                    }
                }
                Ok(passthrough::Read::Closed { code: c, reason }) => {
                    progress = true;
                    if self.client_closed {
                        pt.finish();
                    }
                    if !self.grip.detached && !self.client_close_sent {
                        close = Some((c, reason));
                    }
                }
                Err(e) => {
                    log::info!(
                        "ws {}: backend protocol error: {} ({})",
                        self.log_prefix,
                        e.reason,
                        e.code
                    );
                    pt.send_close(b.output, Some(e.code), e.reason);
                    pt.finish();
                    if !self.grip.detached {
                        close = Some((Some(code::INTERNAL), "backend protocol error".into()));
                    }
                    progress = true;
                    break;
                }
            }
        }
        if b.eof && !pt.is_done() {
            pt.finish();
            progress = true;
            if !self.grip.detached && close.is_none() {
                log::debug!(
                    "ws {}: backend closed the connection without a Close",
                    self.log_prefix
                );
                close = Some((Some(code::INTERNAL), "backend went away".into()));
            }
        }
        if let Some((c, reason)) = close {
            self.close_client(io.client_out, c, &reason, now);
        }
        progress
    }

    /// Act on what a WebSocket-over-HTTP response said.
    fn on_signals(&mut self, io: &mut WsIo, signals: Vec<over_http::Signal>, now: Instant) {
        for signal in signals {
            match signal {
                over_http::Signal::Opened => {}
                // An HTTP answer is queued instead of a 101, or (spec 6.2 "Errors") the client's TCP
                // connection is closed without a Close frame.
                over_http::Signal::Refused | over_http::Signal::Failed(_) => {
                    self.client_gone = true;
                    self.client_close_sent = true;
                    self.finished = true;
                }
                over_http::Signal::Disconnect => {
                    self.client_gone = true;
                    self.client_close_sent = true;
                }
                over_http::Signal::Close(c, reason) => {
                    if !self.grip.detached && !self.client_close_sent && !self.client_gone {
                        self.close_client(io.client_out, c, &reason, now);
                    }
                }
                over_http::Signal::Control(fx) => {
                    self.subscribe.extend(fx.subscribe);
                    self.unsubscribe.extend(fx.unsubscribe);
                    if let Some((c, reason)) = fx.close {
                        self.close_client(io.client_out, Some(c), reason, now);
                    }
                    if fx.detach || fx.close.is_some() {
                        if let Peer::OverHttp(w) = &mut self.peer {
                            w.queue_final(EventKind::Close);
                        }
                    }
                }
            }
        }
    }

    // ---- proxy's own messages ---------------------------------------------------------------------------------

    fn send_due(&mut self, out: &mut OutBuf, counts: &mut ConnCounts, now: Instant) -> bool {
        if self.client_close_sent || self.relaying_to_client {
            return false;
        }
        let due = self.grip.due(now);
        for msg in &due {
            let opcode = ws_opcode(msg.kind);
            let payload = if opcode.is_control() {
                &msg.content[..msg.content.len().min(125)]
            } else {
                counts.message(Flow::ClientSent);
                &msg.content[..]
            };
            encode_frame(out.vec(), opcode, true, payload, None);
        }
        !due.is_empty()
    }

    fn pump_deliveries(&mut self, io: &mut WsIo, now: Instant) -> bool {
        let out = &mut *io.client_out;
        let mut progress = false;
        while !self.relaying_to_client && !self.client_close_sent && out.len() < OUT_QUEUE_MAX {
            let Some(item) = self.queue.pop_front() else {
                break;
            };
            let Some(ws) = &item.ws_message else {
                continue;
            };
            progress = true;
            self.delivered += 1;
            if ws.action == Action::Close {
                // A code that may not appear on the wire (1005, 1006, 1015, out of range) becomes 1000.
                let c = ws
                    .close_code
                    .filter(|c| code::is_valid_close_code(*c))
                    .unwrap_or(code::NORMAL);
                let reason = ws.close_reason.as_deref().unwrap_or("");
                self.close_client(out, Some(c), reason, now);
                match &mut self.peer {
                    Peer::Backend(pt) => {
                        pt.want_close();
                        if let Some(b) = io.backend.as_mut() {
                            pt.flush_wanted_close(b.output);
                        }
                    }
                    Peer::OverHttp(w) => w.queue_final(EventKind::Close),
                    Peer::Echo => {}
                }
                break;
            }
            match ws.action {
                Action::Send => {
                    let opcode = ws_opcode(ws.kind);
                    if !opcode.is_control() {
                        io.counts.message(Flow::ClientSent);
                    }
                    encode_frame(out.vec(), opcode, true, &ws.content, None)
                }
                // Spec 5.2: a refresh makes a WebSocket-over-HTTP connection ask its backend at once.
                Action::Refresh => {
                    if let Peer::OverHttp(w) = &mut self.peer {
                        w.refresh();
                    }
                }
                // A hint is accepted and ignored for WebSockets (spec 5.2).
                Action::Hint | Action::Close => {}
            }
        }
        progress
    }

    // ---- endings ----------------------------------------------------------------------------------------------

    /// Queue our Close to the client. Inside a relayed frame's payload nothing can be inserted, so the
    /// connection is just dropped instead.
    fn close_client(&mut self, out: &mut OutBuf, c: Option<u16>, reason: &str, now: Instant) {
        if self.client_close_sent {
            return;
        }
        self.client_close_sent = true;
        self.close_sent_at = Some(now);
        self.queue.clear();
        if let Peer::Backend(pt) = &self.peer {
            if !pt.client_frame_boundary() {
                self.finished = true;
                return;
            }
        }
        encode_close(out.vec(), c, reason, None);
    }

    /// Close the backend side: a Close if it can still take one, then it is done.
    fn end_backend(&mut self, io: &mut WsIo) {
        if let Peer::OverHttp(w) = &mut self.peer {
            // Spec 6.2 steps 7 and 8: DISCONNECT when the client vanished, a bare CLOSE when holdfast
            // closed it.
            let kind = if self.client_gone {
                EventKind::Disconnect
            } else {
                EventKind::Close
            };
            w.queue_final(kind);
            return;
        }
        if let Peer::Backend(pt) = &mut self.peer {
            if let Some(b) = io.backend.as_mut() {
                if pt.can_send() {
                    pt.send_close(b.output, Some(code::GOING_AWAY), "");
                }
            }
            pt.finish();
        }
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

fn ws_opcode(kind: WsType) -> OpCode {
    match kind {
        WsType::Text => OpCode::Text,
        WsType::Binary => OpCode::Binary,
        WsType::Ping => OpCode::Ping,
        WsType::Pong => OpCode::Pong,
    }
}

/// Why reading a client event stopped the relay.
enum ClientOutcome {
    Closed { code: Option<u16>, reason: String },
    Broken(ProtocolError),
}

/// One client event: relayed to the backend, echoed, or answered.
fn route_client_event(
    ev: Event,
    peer: &mut Peer,
    msg: &mut Assembler,
    grip: &GripWs,
    client_out: &mut OutBuf,
    backend: Option<&mut BackendIo>,
    counts: &mut ConnCounts,
) -> Result<(), ClientOutcome> {
    if let Event::Close { code: c, reason } = ev {
        return Err(ClientOutcome::Closed {
            code: c,
            reason: reason.to_string(),
        });
    }
    match peer {
        Peer::Backend(pt) if !grip.detached => {
            if let Some(b) = backend {
                pt.relay_client_event(ev, b.output);
            }
            Ok(())
        }
        Peer::OverHttp(w) if !grip.detached => {
            match ev {
                Event::Ping(p) => w.queue(EventKind::Ping, p),
                Event::Pong(p) => w.queue(EventKind::Pong, p),
                _ => {
                    if let Some(m) = msg.push(ev).map_err(ClientOutcome::Broken)? {
                        let kind = match m.kind {
                            MessageKind::Text => EventKind::Text,
                            MessageKind::Binary => EventKind::Binary,
                        };
                        w.queue(kind, m.data);
                    }
                }
            }
            Ok(())
        }
        // Detached (the backend is gone but publishes still flow) or the echo endpoint: we are the
        // client's peer and answer pings ourselves.
        _ => {
            match ev {
                Event::Ping(p) => encode_frame(client_out.vec(), OpCode::Pong, true, p, None),
                Event::Pong(_) => {}
                _ => {
                    let complete = msg.push(ev).map_err(ClientOutcome::Broken)?;
                    if let (Some(m), Peer::Echo) = (complete, &*peer) {
                        encode_frame(client_out.vec(), m.kind.opcode(), true, m.data, None);
                        counts.message(Flow::ClientSent);
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
