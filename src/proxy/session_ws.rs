//! The session's WebSocket phase: the client's upgrade request (checked, then answered by the `test` target's
//! echo endpoint or forwarded as a backend handshake), the switch to `Phase::WebSocket` once the backend
//! answers 101, and the glue that hands the session's buffers to `proxy::ws::WsConn`. A child module of
//! `session`, working on its private state.

use super::*;
use crate::proxy::ws::{BackendIo, GripWs, OverHttp, Passthrough, Peer, WohSetup, WsConn, WsIo};
use crate::routes::Route;
use crate::websocket::handshake::{
    check_server_response, check_upgrade, client_key, write_server_response,
};
use crate::websocket::limits::WsLimits;

/// The session's buffers as `WsConn` sees them (a macro: a method would borrow all of the session).
macro_rules! ws_io {
    ($s:expr, $cfg:expr) => {
        WsIo {
            cfg: $cfg,
            client_in: &mut $s.client_in,
            client_out: &mut $s.client_out,
            client_eof: $s.client_eof,
            counts: &mut $s.counts,
            backend: $s
                .backend
                .as_mut()
                // A connection handed back to the pool is no longer the session's to use.
                .filter(|b| b.connected && !$s.release_backend)
                .map(|b| BackendIo {
                    input: &mut b.input,
                    output: &mut b.output,
                    eof: b.eof,
                }),
        }
    };
}

/// The WebSocket phase: the connection and what the log line at its end reports.
pub(super) struct WsPhase {
    pub conn: WsConn,
    pub method_target: String,
    pub route_id: String,
    pub started: Instant,
}

/// How a client's upgrade request goes on once checked.
pub(super) enum WsStart {
    /// Forwarded as a handshake to a WebSocket backend.
    Passthrough(WsUpgrade),
    /// Opened with a WebSocket-over-HTTP OPEN request.
    OverHttp { client_accept: [u8; 28] },
}

/// A client handshake being forwarded to a WebSocket backend.
pub(super) struct WsUpgrade {
    /// The key holdfast sent the backend (its own, RFC 6455 4.1).
    pub backend_key: String,
    /// `Sec-WebSocket-Accept` for the client's key.
    pub client_accept: [u8; 28],
    pub protocols: Vec<String>,
}

/// Response fields of the backend's 101 that describe the backend's own connection, not the client's.
const NOT_RELAYED_101: [&str; 5] = [
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
    "Keep-Alive",
];

/// WebSocket limits from the configuration.
fn ws_limits(cfg: &ProxyConfig) -> WsLimits {
    WsLimits {
        max_message: cfg.ws_max_message,
        max_frame: cfg.ws_max_frame,
    }
}

impl<S: Socket> Session<S> {
    /// A request to switch to WebSocket on `route`. Returns with the session in its next phase.
    pub(super) fn start_websocket(
        &mut self,
        head: &RequestHead,
        route: &Route,
        path: &str,
        now: Instant,
        env: &Env,
    ) -> Option<WsStart> {
        let upgrade = match check_upgrade(head) {
            Ok(u) => u,
            Err(reject) => {
                log::info!(
                    "{} {} -> (none) route={} code={} {}",
                    head.method,
                    head.target,
                    route.id,
                    reject.code,
                    reject.reason
                );
                let extra: &[(&str, &str)] = if reject.version_header {
                    &[("Sec-WebSocket-Version", "13")]
                } else {
                    &[]
                };
                let n = crate::proxy::local::write_text_response_with(
                    self.client_out.vec(),
                    reject.code,
                    reject.reason,
                    true,
                    extra,
                );
                self.client_out.mark_head(n);
                self.phase = Phase::Closing {
                    since: now,
                    shut: false,
                    discarded: 0,
                };
                return None;
            }
        };
        if route.targets.iter().any(|t| t.kind == TargetKind::Test) {
            let local = test_target::local_path(path, route.path_beg.as_deref());
            if local != "/ws" {
                self.respond_and_close(404, "no such test resource", now);
                return None;
            }
            let mut grip = GripWs::new(
                route.prefix.as_deref().unwrap_or(""),
                env.cfg.subscription_max,
            );
            let channels = test_target::channels(&head.target);
            self.subscribe.extend(grip.subscribe_implicit(&channels));
            grip.enabled = true;
            let accept = upgrade.accept();
            self.client_out
                .push_head(|out| write_server_response(out, &accept, None, &[]));
            log_request(
                env.cfg,
                head,
                self.peer,
                &route.id,
                None,
                101,
                0,
                Duration::ZERO,
            );
            let conn = WsConn::new(Peer::Echo, grip, ws_limits(env.cfg), self.log_prefix);
            self.enter_websocket(conn, head, &route.id, now);
            return None;
        }
        if route.targets.iter().any(|t| t.over_http) {
            return Some(WsStart::OverHttp {
                client_accept: upgrade.accept(),
            });
        }
        let mut nonce = [0u8; 16];
        crate::rand::fill(&mut nonce);
        let key = client_key(&nonce);
        Some(WsStart::Passthrough(WsUpgrade {
            backend_key: String::from_utf8_lossy(&key).into_owned(),
            client_accept: upgrade.accept(),
            protocols: upgrade.protocols,
        }))
    }

    /// The backend answered a forwarded handshake with 101: check it, answer the client, switch phases.
    pub(super) fn accept_backend_websocket(
        &mut self,
        resp: ResponseHead,
        env: &Env,
    ) -> Result<(), String> {
        let Phase::Exchange(ex) = &mut self.phase else {
            return Ok(());
        };
        let Some(up) = ex.ws.take() else {
            return Err("origin switched protocols on a plain HTTP request".into());
        };
        let accepted = check_server_response(&resp, &up.backend_key, &up.protocols)
            .map_err(|e| format!("origin {e}"))?;
        let route = &ex.router.table().routes()[ex.route_idx];
        let target = ex
            .current
            .map(|i| &route.targets[ex.candidates[i].target_idx]);
        let extra: Vec<_> = resp
            .headers
            .iter()
            .filter(|h| {
                !NOT_RELAYED_101
                    .iter()
                    .any(|n| h.name.eq_ignore_ascii_case(n))
            })
            .cloned()
            .collect();
        self.client_out
            .push_head(|out| write_server_response(out, &up.client_accept, None, &extra));
        let mut grip = GripWs::new(
            route.prefix.as_deref().unwrap_or(""),
            env.cfg.subscription_max,
        );
        let prefix = if route.no_grip {
            None
        } else {
            accepted.grip_prefix
        };
        if let Some(p) = &prefix {
            grip.enabled = true;
            grip.prefix = p.clone();
        }
        if let Some(t) = target {
            self.subscribe.extend(grip.subscribe_implicit(&t.subs));
        }
        let addr = ex.current.map(|i| ex.candidates[i].addr);
        log_request(
            env.cfg,
            &ex.head,
            self.peer,
            &route.id,
            addr,
            101,
            0,
            self.now.saturating_duration_since(ex.started),
        );
        let pt = Passthrough::new(WsLimits::default(), prefix.is_some(), self.log_prefix);
        let conn = WsConn::new(
            Peer::Backend(Box::new(pt)),
            grip,
            WsLimits::default(),
            self.log_prefix,
        );
        let head = ex.head.clone();
        let route_id = route.id.clone();
        let now = self.now;
        self.enter_websocket(conn, &head, &route_id, now);
        Ok(())
    }

    fn enter_websocket(&mut self, conn: WsConn, head: &RequestHead, route_id: &str, now: Instant) {
        self.phase = Phase::WebSocket(Box::new(WsPhase {
            conn,
            method_target: format!("{} {}", head.method, head.target),
            route_id: route_id.to_string(),
            started: now,
        }));
    }

    /// A WebSocket-over-HTTP connection: the OPEN request goes out first; the client gets its 101 once the
    /// backend accepts.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_over_http(
        &mut self,
        head: RequestHead,
        router: Arc<Router>,
        route_idx: usize,
        candidates: Vec<(SocketAddr, usize)>,
        tls: bool,
        trusted: bool,
        client_accept: [u8; 28],
        now: Instant,
        env: &Env,
    ) {
        let route = &router.table().routes()[route_idx];
        let limits = ws_limits(env.cfg);
        let mut grip = GripWs::new(
            route.prefix.as_deref().unwrap_or(""),
            env.cfg.subscription_max,
        );
        let target = candidates.first().map(|&(_, t)| &route.targets[t]);
        if let Some(t) = target {
            self.subscribe.extend(grip.subscribe_implicit(&t.subs));
        }
        let one_event = target.is_some_and(|t| t.one_event);
        let route_id = route.id.clone();
        let setup = WohSetup {
            head: head.clone(),
            router: Arc::clone(&router),
            route_idx,
            candidates,
            peer: self.peer.ip(),
            tls,
            trusted,
            client_accept,
            max_message: limits.max_message,
        };
        let woh = OverHttp::new(setup, one_event, now, self.log_prefix);
        let conn = WsConn::new(Peer::OverHttp(Box::new(woh)), grip, limits, self.log_prefix);
        self.enter_websocket(conn, &head, &route_id, now);
        self.take_over_http_wants(env);
    }

    /// Hand WebSocket-over-HTTP's connection wishes to the reactor (`Want`).
    fn take_over_http_wants(&mut self, env: &Env) {
        let Phase::WebSocket(ws) = &mut self.phase else {
            return;
        };
        let (route_id, started) = (&ws.route_id, ws.started);
        let Some(w) = ws.conn.over_http() else {
            return;
        };
        if let Some(code) = w.take_answer() {
            // The access line waits for the backend's answer to the OPEN: 101, or what the client got.
            let elapsed = self.now.saturating_duration_since(started);
            log_request(
                env.cfg,
                w.head(),
                self.peer,
                route_id,
                w.addr(),
                code,
                0,
                elapsed,
            );
        }
        if std::mem::take(&mut w.drop_backend) {
            self.backend = None;
            self.release_backend = false;
        }
        if std::mem::take(&mut w.release) && self.backend.is_some() {
            self.release_backend = true;
        }
        if let Some(c) = w.connect.take() {
            self.pending_connect = Some(c);
        }
    }

    pub(super) fn websocket_connect_failed(&mut self, why: &str, env: &Env) {
        self.counts.backend_error(BackendError::Connect);
        let now = self.now;
        let Phase::WebSocket(ws) = &mut self.phase else {
            return;
        };
        let mut io = ws_io!(self, env.cfg);
        ws.conn.backend_connect_failed(&mut io, why, now);
        self.take_over_http_wants(env);
    }

    /// A fresh backend connection of WebSocket-over-HTTP: is it connected yet?
    fn check_ws_backend_connected(&mut self, env: &Env) {
        let Some(b) = &mut self.backend else {
            return;
        };
        if b.connected || !b.ep.writable {
            return;
        }
        match b.ep.sock.connect_result() {
            None => b.ep.writable = false,
            Some(Ok(())) => b.connected = true,
            Some(Err(e)) => {
                self.backend = None;
                self.websocket_connect_failed(&format!("connect failed: {e}"), env);
            }
        }
    }

    pub(super) fn advance_websocket(&mut self, now: Instant, env: &Env) -> bool {
        self.check_ws_backend_connected(env);
        let Phase::WebSocket(ws) = &mut self.phase else {
            return false;
        };
        let mut io = ws_io!(self, env.cfg);
        if self.draining {
            ws.conn.begin_drain(&mut io, now);
        }
        let progress = ws.conn.advance(&mut io, now);
        let wants_backend = ws.conn.wants_backend();
        let finished = ws.conn.is_finished();
        self.subscribe.append(&mut ws.conn.subscribe);
        self.unsubscribe.append(&mut ws.conn.unsubscribe);
        if !wants_backend {
            // Dropped once our last frame to it is written (or it is gone).
            if let Some(b) = &self.backend {
                if b.output.is_empty() || b.eof {
                    self.backend = None;
                }
            }
        }
        self.take_over_http_wants(env);
        if finished {
            self.end_websocket(now);
            return true;
        }
        progress
    }

    pub(super) fn websocket_timeout(&mut self, now: Instant, env: &Env) {
        let Phase::WebSocket(ws) = &mut self.phase else {
            return;
        };
        let mut io = ws_io!(self, env.cfg);
        ws.conn.on_time(&mut io, now);
        self.take_over_http_wants(env);
    }

    fn end_websocket(&mut self, now: Instant) {
        let Phase::WebSocket(ws) = &mut self.phase else {
            return;
        };
        self.unsubscribe
            .extend(ws.conn.grip.channel_names().map(str::to_string));
        log::debug!(
            "{} route={} websocket closed after {:.1}s in={} out={} delivered={} dropped={}",
            ws.method_target,
            ws.route_id,
            now.saturating_duration_since(ws.started).as_secs_f64(),
            ws.conn.bytes_in,
            ws.conn.bytes_out,
            ws.conn.delivered,
            ws.conn.dropped
        );
        self.backend = None;
        self.phase = Phase::Closing {
            since: now,
            shut: false,
            discarded: 0,
        };
    }
}
