//! GRIP on a proxy session: from a backend's instructions (or the `test` target) to a held connection, and the
//! held phase itself. A child module of `session`, so it works on the session's private state directly.

use super::exchange::ExchangeStart;
use super::links::{LinkBase, Links, StreamLabel};
use super::*;
use crate::grip::{parse_instruct, Instruct, InstructLimits};
use crate::proxy::hold::{Hold, Outcome};
use crate::publish::Item;
use crate::stats::Transport;

/// Channels a connection may listen on from a single hold (Pushpin's `connection_subscription_max` applies
/// first; this is the hard cap for hostile instructions).
const FILTERS_PER_CHANNEL_MAX: usize = 5;

/// A connection held open by GRIP.
pub(super) struct Held {
    pub(super) hold: Hold,
    pub(super) method: String,
    pub(super) target: String,
    pub(super) route_id: String,
    pub(super) started: Instant,
    pub(super) last_write: Instant,
    warned_drop: bool,
    /// What a retry (a published hint) needs to make the original request again; only for body-less
    /// requests held in response mode.
    retry: Option<Box<RetryInfo>>,
    /// Next and gone links of the response (stream holds refresh from the next link).
    pub(super) links: Option<Box<Links>>,
}

/// A hold's labels and what it may need later, before the hold itself exists.
pub(super) struct HeldInfo {
    pub method: String,
    pub target: String,
    pub route_id: String,
    pub started: Instant,
    pub retry: Option<Box<RetryInfo>>,
    pub links: Option<Box<Links>>,
}

/// The original request of a response hold, kept so it can be made again.
pub(super) struct RetryInfo {
    head: RequestHead,
    router: Arc<Router>,
    route_idx: usize,
    candidates: Vec<Candidate>,
    tls: bool,
    trusted: bool,
    client_keep_alive: bool,
    /// The request body, for requests that had one.
    body: Option<Vec<u8>>,
}

/// Who the hold belongs to, for channel naming and the access log.
pub(super) struct HoldContext {
    pub prefix: String,
    pub implicit: Vec<String>,
    pub method: String,
    pub target: String,
    pub route_id: String,
    pub version: Version,
    pub keep_alive: bool,
    pub started: Instant,
    pub retry: Option<Box<RetryInfo>>,
    pub links: Option<Box<Links>>,
}

impl HoldContext {
    /// What the held phase keeps once the hold has been started from this context.
    fn into_held_info(self) -> HeldInfo {
        HeldInfo {
            method: self.method,
            target: self.target,
            route_id: self.route_id,
            started: self.started,
            retry: self.retry,
            links: self.links,
        }
    }
}

impl<S: Socket> Session<S> {
    /// The body of a GRIP response is complete: act on its instructions.
    pub(super) fn on_instruct(
        &mut self,
        head: ResponseHead,
        body: Vec<u8>,
        now: Instant,
        env: &Env,
    ) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        let inst = match read_instructions(&head, &body, env) {
            Ok(inst) => inst,
            Err(detail) => {
                self.fail(env, Failure::BadGateway(detail));
                return;
            }
        };
        if ex.link.is_some() {
            self.on_link_instruct(inst, now);
            return;
        }
        if let Some(hold) = &inst.hold {
            if hold.mode == crate::grip::HoldMode::Stream && inst.next_link.is_none() {
                if let Some(c) = hold.channels.iter().find(|c| c.prev_id.is_some()) {
                    let detail = format!(
                        "channel '{}' specifies prev-id, but no next link found",
                        c.name
                    );
                    self.fail(env, Failure::BadGateway(detail));
                    return;
                }
            }
        }
        let ctx = hold_context(ex, &inst, self.draining, now);
        let keep_alive = ctx.keep_alive;
        if inst.hold.is_none() {
            let mut links = ctx.links;
            if let Some(next_links) = links.take_if(|l| l.next.is_some()) {
                let label = StreamLabel {
                    method: ctx.method,
                    target: ctx.target,
                    route_id: ctx.route_id,
                    started: ctx.started,
                    code: inst.code,
                };
                self.start_link_stream(inst, *next_links, label, ctx.version, keep_alive, now);
                return;
            }
            // No hold: the instructions only shape a normal response.
            ex.status = inst.code;
            if !keep_alive {
                ex.client_keep_alive = false;
            }
            write_plain_response(&inst, ex.head.version, keep_alive, &mut self.client_out);
            ex.resp = RespState::Done;
            if let Some(links) = links {
                // The exchange ends with this response: that is the session's end for the gone link.
                self.queue_gone(&links);
            }
            return;
        }
        if let (Some(check), Some(hold)) = (env.prev_id_conflict, &inst.hold) {
            if hold.mode == crate::grip::HoldMode::Response && ctx.retry.is_some() {
                // Spec 4.8: a prev-id older than what was already published on the channel means the
                // backend answered from stale state; ask again at once, saying what it claimed.
                let stale: Vec<(String, String)> = hold
                    .channels
                    .iter()
                    .filter_map(|c| c.prev_id.as_ref().map(|p| (c.name.clone(), p.clone())))
                    .collect();
                let conflict = stale
                    .iter()
                    .any(|(name, prev)| check(&format!("{}{name}", ctx.prefix), prev));
                if conflict && !ex.prev_id_retried {
                    let Some(info) = ctx.retry else { return };
                    log::debug!(
                        "conn {}: prev-id behind the channel's last id; retrying {} {}",
                        self.log_prefix,
                        ctx.method,
                        ctx.target
                    );
                    if !self.release_backend {
                        self.backend = None;
                    }
                    self.restart_request(*info, stale, now);
                    if let Phase::Exchange(ex) = &mut self.phase {
                        ex.prev_id_retried = true;
                    }
                    return;
                }
            }
        }
        self.start_hold(inst, ctx, now);
    }

    /// Enter the held phase. The channels are reported to the worker in the same `Want` that carries the first
    /// bytes out, so the subscription is live before the client has seen anything of its response.
    pub(super) fn start_hold(&mut self, inst: Instruct, ctx: HoldContext, now: Instant) {
        let Some(hold) = Hold::start(
            inst,
            &ctx.prefix,
            &ctx.implicit,
            ctx.version,
            ctx.keep_alive,
            now,
            &mut self.client_out,
        ) else {
            return;
        };
        // The backend connection goes back to the pool if the response left it reusable.
        if !self.release_backend {
            self.backend = None;
        }
        self.enter_held(hold, ctx.into_held_info());
    }

    /// The held phase proper, for a new hold or one a next link started.
    pub(super) fn enter_held(&mut self, hold: Hold, info: HeldInfo) {
        self.subscribe
            .extend(hold.channels.iter().map(|c| c.name.clone()));
        self.enter_held_subscribed(hold, info);
    }

    /// A stream hold whose initial body is larger than a GRIP response may be: parse the instructions
    /// from the head alone, start the hold (head out, channels subscribed), send what was buffered, and
    /// relay the rest of the body before the held phase proper.
    pub(super) fn start_prestream(&mut self, now: Instant, env: &Env) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        let RespState::Instruct {
            head,
            dec,
            body,
            backend_keep_alive,
        } = std::mem::replace(&mut ex.resp, RespState::Done)
        else {
            return;
        };
        let inst = match read_instructions(&head, &[], env) {
            Ok(inst) => inst,
            Err(detail) => {
                self.fail(env, Failure::BadGateway(detail));
                return;
            }
        };
        let ctx = hold_context(ex, &inst, self.draining, now);
        let Some(mut hold) = Hold::start(
            inst,
            &ctx.prefix,
            &ctx.implicit,
            ctx.version,
            ctx.keep_alive,
            now,
            &mut self.client_out,
        ) else {
            return;
        };
        hold.encode_body(&body, &mut self.client_out);
        ex.resp_bytes += body.len() as u64;
        self.subscribe
            .extend(hold.channels.iter().map(|c| c.name.clone()));
        ex.resp = RespState::PreStream {
            hold: Box::new(hold),
            info: Box::new(ctx.into_held_info()),
            dec,
            backend_keep_alive,
        };
    }

    /// The held phase for a hold whose channels were already reported to the worker.
    pub(super) fn enter_held_subscribed(&mut self, hold: Hold, info: HeldInfo) {
        log::debug!(
            "conn {}: holding ({:?}) on {} channels",
            self.log_prefix,
            hold.mode,
            hold.channels.len()
        );
        self.phase = Phase::Held(Box::new(Held {
            hold,
            method: info.method,
            target: info.target,
            route_id: info.route_id,
            started: info.started,
            last_write: self.now,
            warned_drop: false,
            retry: info.retry,
            links: info.links,
        }));
    }

    /// "Update" the session (spec 4.10, update on first subscription): a response hold makes its request
    /// again, so a message published before the subscription reached every publisher is not missed.
    /// Returns whether anything will happen (the worker then runs the session).
    pub fn update(&mut self, now: Instant) -> bool {
        let Phase::Held(h) = &self.phase else {
            return false;
        };
        if h.hold.mode == crate::grip::HoldMode::Stream {
            // A stream is updated from its next link, when it has one.
            if h.hold.is_finished() || h.links.as_ref().is_none_or(|l| l.next.is_none()) {
                return false;
            }
            self.fetch_from_hold(now);
            return true;
        }
        if h.hold.mode != crate::grip::HoldMode::Response
            || h.retry.is_none()
            || h.hold.is_finished()
        {
            return false;
        }
        self.retry_request(now);
        true
    }

    /// A published item for one of this connection's channels. Returns how it was queued, if it was.
    pub fn deliver(
        &mut self,
        item: &Arc<Item>,
        channel: &str,
        subscribed: &dyn Fn(&str) -> bool,
    ) -> Option<Transport> {
        let (queued, transport) = match &mut self.phase {
            Phase::Held(h) => (
                h.hold
                    .deliver_into(item, channel, subscribed, &mut self.client_out),
                hold_transport(h.hold.mode),
            ),
            Phase::WebSocket(ws) => (
                ws.conn.deliver(item, channel, subscribed),
                Transport::WsMessage,
            ),
            // Subscribed while the stream's large initial body is still being relayed: queue.
            Phase::Exchange(ex) => match &mut ex.resp {
                RespState::PreStream { hold, .. } => (
                    hold.deliver(item, channel, subscribed),
                    Transport::HttpStream,
                ),
                _ => return None,
            },
            _ => return None,
        };
        queued.then_some(transport)
    }

    /// The connection is a WebSocket now: its id in stats and commands (the `Connection-Id` of
    /// WebSocket-over-HTTP, `None` for other WebSockets), or `None` for plain HTTP.
    pub fn websocket_id(&self) -> Option<Option<&str>> {
        match &self.phase {
            Phase::WebSocket(ws) => Some(ws.conn.connection_id()),
            _ => None,
        }
    }

    /// The client has its 101: the connection is a WebSocket as the client sees it. (WebSocket-over-HTTP is in
    /// the WebSocket phase from its OPEN request on, before the backend has accepted.)
    pub fn websocket_open(&self) -> bool {
        match &self.phase {
            Phase::WebSocket(ws) => ws.conn.is_open(),
            _ => false,
        }
    }

    /// The command socket's `refresh` for this connection: whether it is a WebSocket-over-HTTP connection (which
    /// then asks its backend at once).
    pub fn refresh(&mut self) -> bool {
        match &mut self.phase {
            Phase::WebSocket(ws) => ws.conn.refresh(),
            _ => false,
        }
    }

    /// How this connection listens right now (the `mode` of its subscriptions in stats), if it does.
    pub fn listening_as(&self) -> Option<Transport> {
        match &self.phase {
            Phase::Held(h) => Some(hold_transport(h.hold.mode)),
            Phase::WebSocket(_) => Some(Transport::WsMessage),
            Phase::Exchange(ex) if matches!(ex.resp, RespState::PreStream { .. }) => {
                Some(Transport::HttpStream)
            }
            _ => None,
        }
    }

    pub(super) fn advance_held(&mut self, now: Instant) -> bool {
        let Phase::Held(h) = &mut self.phase else {
            return false;
        };
        if self.client_eof {
            log::debug!("conn {}: client went away while held", self.log_prefix);
            self.end_hold(now, false);
            return true;
        }
        if self.draining {
            h.hold.finish_now(&mut self.client_out);
        }
        let before = self.client_out.len();
        let outcome = h.hold.pump(&mut self.client_out);
        let progress = self.client_out.len() != before;
        if h.hold.dropped > 0 && !h.warned_drop {
            h.warned_drop = true;
            log::warn!(
                "conn {}: client is not keeping up; dropping its oldest queued messages (queue limit {})",
                self.log_prefix,
                crate::proxy::hold::HELD_QUEUE_MAX
            );
        }
        match outcome {
            Outcome::Finished => {
                self.end_hold(now, true);
                true
            }
            Outcome::Retry if h.hold.mode == crate::grip::HoldMode::Stream => {
                if h.links.as_ref().is_some_and(|l| l.next.is_some()) {
                    self.fetch_from_hold(now);
                } else {
                    log::debug!(
                        "conn {}: hint ignored: the stream has no next link",
                        self.log_prefix
                    );
                }
                true
            }
            Outcome::Retry => {
                self.retry_request(now);
                true
            }
            Outcome::Held => progress,
        }
    }

    /// A hint arrived for a response hold: make the original request again (with `Grip-Last` for the channels
    /// whose last id is known) and act on whatever the backend answers this time.
    fn retry_request(&mut self, now: Instant) {
        let Phase::Held(h) = &mut self.phase else {
            return;
        };
        let Some(info) = h.retry.take() else {
            log::debug!(
                "conn {}: hint ignored: the original request was not kept (its body was too large)",
                self.log_prefix
            );
            return;
        };
        let grip_last = h.hold.grip_last();
        self.unsubscribe
            .extend(h.hold.channels.iter().map(|c| c.name.clone()));
        // The retried request is a new session for the backend: this one's gone link fires.
        let links = h.links.take();
        log::debug!(
            "conn {}: hint received; retrying {} {}",
            self.log_prefix,
            info.head.method,
            info.head.target
        );
        if let Some(links) = links {
            self.queue_gone(&links);
        }
        self.restart_request(*info, grip_last, now);
    }

    /// Make the original request again, as a new exchange, with these `Grip-Last` entries.
    fn restart_request(&mut self, info: RetryInfo, grip_last: Vec<(String, String)>, now: Instant) {
        let body = info.body;
        let mut ex = Exchange::new(ExchangeStart {
            head: info.head,
            router: info.router,
            route_idx: info.route_idx,
            candidates: info.candidates,
            tried: Vec::new(),
            tls: info.tls,
            trusted: info.trusted,
            client_keep_alive: info.client_keep_alive,
            req_kind: match &body {
                Some(body) => BodyKind::Length(body.len() as u64),
                None => BodyKind::None,
            },
            grip_last,
            now,
        });
        if let Some(body) = body {
            ex.req_copy = Some(body.clone());
            ex.retry_body = Some(body);
        }
        self.phase = Phase::Exchange(Box::new(ex));
        self.request_connect();
    }

    pub(super) fn held_timeout(&mut self, now: Instant) {
        let Phase::Held(h) = &mut self.phase else {
            return;
        };
        if let Some(links) = &mut h.links {
            if let (Some(at), Some(next)) = (links.refresh_at, &links.next) {
                if now >= at {
                    // Refresh from the next link unless every channel had a message in the period.
                    if h.hold.take_all_active() {
                        links.refresh_at = Some(now + Duration::from_secs(next.timeout_secs));
                    } else {
                        self.fetch_from_hold(now);
                        return;
                    }
                }
            }
        }
        if h.hold.on_time(now, h.last_write, &mut self.client_out) == Outcome::Finished {
            self.end_hold(now, true);
        }
    }

    /// Leave the held phase: unsubscribe, log, and continue with the next request or close.
    fn end_hold(&mut self, now: Instant, completed: bool) {
        let Phase::Held(h) = std::mem::replace(&mut self.phase, Phase::Closed) else {
            return;
        };
        self.unsubscribe
            .extend(h.hold.channels.iter().map(|c| c.name.clone()));
        if let Some(links) = &h.links {
            self.queue_gone(links);
        }
        if log::log_enabled!(log::Level::Info) {
            let elapsed = now.saturating_duration_since(h.started);
            let dropped = if h.hold.dropped > 0 {
                format!(" dropped={}", h.hold.dropped)
            } else {
                String::new()
            };
            log::info!(
                "{} {} -> hold route={} code={} delivered={}{} {:.1}s{}",
                h.method,
                h.target,
                h.route_id,
                h.hold.status(),
                h.hold.delivered,
                dropped,
                elapsed.as_secs_f64(),
                if completed { "" } else { " (client gone)" }
            );
        }
        if completed {
            self.next_request_or_close(h.hold.keep_alive_conn() && !self.draining, now);
        } else {
            self.phase = Phase::Closed;
        }
    }
}

/// A GRIP response's instructions, or the 502 detail naming what is wrong with them.
fn read_instructions(head: &ResponseHead, body: &[u8], env: &Env) -> Result<Instruct, String> {
    let limits = InstructLimits {
        subscription_max: env.cfg.subscription_max,
        filters_max: FILTERS_PER_CHANNEL_MAX,
    };
    parse_instruct(head.code, &head.reason, &head.headers, body, &limits)
        .map_err(|e| format!("Failed to parse accept instructions: {e}"))
}

/// Everything a hold (or a no-hold response with links) needs to know about the exchange it came from.
fn hold_context(ex: &Exchange, inst: &Instruct, draining: bool, now: Instant) -> HoldContext {
    let route = &ex.router.table().routes()[ex.route_idx];
    let target = ex
        .current
        .map(|i| &route.targets[ex.candidates[i].target_idx]);
    let keep_alive = ex.client_keep_alive && ex.req_done && !draining;
    let links = (inst.next_link.is_some() || inst.gone_link.is_some()).then(|| {
        Box::new(Links::new(
            LinkBase {
                router: Arc::clone(&ex.router),
                route_idx: ex.route_idx,
                candidates: ex.candidates.clone(),
                tls: ex.tls,
                host: ex
                    .head
                    .header_str("Host")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default(),
                target: ex.head.target.clone(),
                prefix: route.prefix.clone().unwrap_or_default(),
                implicit: target.map(|t| t.subs.clone()).unwrap_or_default(),
            },
            inst,
            now,
        ))
    });
    HoldContext {
        prefix: route.prefix.clone().unwrap_or_default(),
        implicit: target.map(|t| t.subs.clone()).unwrap_or_default(),
        method: ex.head.method.clone(),
        target: ex.head.target.clone(),
        route_id: route.id.clone(),
        version: ex.head.version,
        keep_alive,
        started: ex.started,
        retry: (ex.req_kind == BodyKind::None || ex.req_done && ex.req_copy.is_some()).then(|| {
            Box::new(RetryInfo {
                body: (ex.req_kind != BodyKind::None)
                    .then(|| ex.req_copy.clone().unwrap_or_default()),
                head: ex.head.clone(),
                router: Arc::clone(&ex.router),
                route_idx: ex.route_idx,
                candidates: ex.candidates.clone(),
                tls: ex.tls,
                trusted: ex.trusted,
                client_keep_alive: ex.client_keep_alive,
            })
        }),
        links,
    }
}

/// A no-hold GRIP response: status, headers and body as the instructions shaped them.
fn write_plain_response(inst: &Instruct, version: Version, keep_alive: bool, out: &mut OutBuf) {
    let mut headers = inst.headers.clone();
    crate::http1::remove_headers(&mut headers, "Content-Length");
    crate::http1::remove_headers(&mut headers, "Transfer-Encoding");
    headers.push(crate::http1::Header::new(
        "Content-Length",
        inst.body.len().to_string().as_bytes(),
    ));
    let head = ResponseHead {
        version: Version::Http11,
        code: inst.code,
        reason: inst.reason.clone(),
        headers,
    };
    out.push_head(|v| {
        rewrite::client_response(
            &head,
            BodyKind::Length(inst.body.len() as u64),
            keep_alive,
            version,
            v,
        )
    });
    out.extend(&inst.body);
}

fn hold_transport(mode: crate::grip::HoldMode) -> Transport {
    match mode {
        crate::grip::HoldMode::Response => Transport::HttpResponse,
        crate::grip::HoldMode::Stream => Transport::HttpStream,
    }
}
