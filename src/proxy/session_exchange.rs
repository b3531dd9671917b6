//! The backend side of a proxy session: connecting (with fail-over), forwarding the request, relaying the
//! response, and the end of an exchange. A child module of `session`, working on its private state.

use super::*;

/// What a new exchange starts from: a first request, or a retry of a held one.
pub(super) struct ExchangeStart {
    pub head: RequestHead,
    pub router: Arc<Router>,
    pub route_idx: usize,
    pub candidates: Vec<Candidate>,
    pub tried: Vec<String>,
    pub tls: bool,
    pub trusted: bool,
    pub client_keep_alive: bool,
    pub req_kind: BodyKind,
    pub grip_last: Vec<(String, String)>,
    pub now: Instant,
}

impl Exchange {
    pub(super) fn new(start: ExchangeStart) -> Exchange {
        // Only a request a GRIP answer could hold needs its body kept for a retry.
        let keep_body = start.req_kind != BodyKind::None
            && !start.trusted
            && !start.router.table().routes()[start.route_idx].no_grip;
        Exchange {
            req_dec: BodyDecoder::new(start.req_kind, ChunkLimits::default()),
            req_enc: BodyEncoder::new(start.req_kind),
            head: start.head,
            router: start.router,
            route_idx: start.route_idx,
            candidates: start.candidates,
            next_candidate: 0,
            tried: start.tried,
            current: None,
            connect_started: None,
            head_queued: false,
            pooled_ok: true,
            retried: false,
            started: start.now,
            last_progress: start.now,
            tls: start.tls,
            client_keep_alive: start.client_keep_alive,
            req_kind: start.req_kind,
            req_body_bytes: 0,
            req_done: false,
            resp: RespState::AwaitHead,
            resp_bytes: 0,
            status: 0,
            trusted: start.trusted,
            grip_last: start.grip_last,
            link: None,
            req_copy: keep_body.then(Vec::new),
            retry_body: None,
            prev_id_retried: false,
            ws: None,
        }
    }
}

impl<S: Socket> Session<S> {
    /// Ask the reactor for a connection to the next candidate.
    pub(super) fn request_connect(&mut self) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        let Some(c) = ex.candidates.get(ex.next_candidate) else {
            return;
        };
        ex.current = Some(ex.next_candidate);
        ex.next_candidate += 1;
        self.pending_connect = Some(ConnectRequest {
            addr: c.addr,
            pooled_ok: ex.pooled_ok,
        });
    }

    pub(super) fn advance_exchange(&mut self, now: Instant, env: &Env) -> bool {
        if self.release_backend {
            // The backend connection is going back to the pool (the worker takes it when this call
            // returns); a new exchange started meanwhile (a retry, a next link) waits for its own.
            return false;
        }
        let mut progress = false;
        progress |= self.check_connected(env);
        progress |= self.queue_request_head(env);
        progress |= self.forward_request_body(env);
        progress |= self.relay_response(now, env);
        progress |= self.finish_exchange_if_done(now, env);
        progress
    }

    pub(super) fn check_connected(&mut self, env: &Env) -> bool {
        let Some(b) = &mut self.backend else {
            return false;
        };
        if b.connected || !b.ep.writable {
            return false;
        }
        match b.ep.sock.connect_result() {
            None => {
                b.ep.writable = false;
                false
            }
            Some(Ok(())) => {
                b.connected = true;
                true
            }
            Some(Err(e)) => {
                self.backend = None;
                self.try_next_candidate(env, &format!("connect failed: {e}"));
                true
            }
        }
    }

    /// Once a backend connection is usable (fresh and connected, or reused from the pool), queue the head.
    pub(super) fn queue_request_head(&mut self, env: &Env) -> bool {
        let (Some(b), Phase::Exchange(ex)) = (&mut self.backend, &mut self.phase) else {
            return false;
        };
        if !b.connected || ex.head_queued {
            return false;
        }
        let Some(idx) = ex.current else { return false };
        ex.head_queued = true;
        let route = &ex.router.table().routes()[ex.route_idx];
        let grip_sig = if route.no_grip || ex.trusted {
            None
        } else {
            ex.router
                .signing(ex.route_idx, env.cfg)
                .map(|(iss, key)| cached_grip_sig(iss, key, unix_now() + 3600))
        };
        let ctx = RequestContext {
            cfg: env.cfg,
            route,
            target: &route.targets[ex.candidates[idx].target_idx],
            peer: self.peer.ip(),
            tls: ex.tls,
            body: ex.req_kind,
            trusted: ex.trusted,
            grip_sig: grip_sig.as_deref(),
            grip_last: &ex.grip_last,
            ws: ex.ws.as_ref().map(|w| rewrite::WsForward::Handshake {
                key: &w.backend_key,
                grip: !route.no_grip && !ex.trusted,
            }),
        };
        b.output.clear();
        rewrite::backend_request(&ex.head, &ctx, b.output.vec());
        self.counts.header(Flow::BackendSent, b.output.len() as u64);
        if let Some(body) = ex.retry_body.take() {
            // A retried request: its body was kept from the first time.
            b.output.extend(&body);
            ex.req_body_bytes = body.len() as u64;
            ex.req_done = true;
        }
        true
    }

    /// A connection attempt failed: fail over to the next address/target, or answer 502.
    pub(super) fn try_next_candidate(&mut self, env: &Env, why: &str) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        // Only failed connection attempts lead here (refused, unreachable, timed out).
        self.counts.backend_error(BackendError::Connect);
        if let Some(idx) = ex.current.take() {
            ex.tried
                .push(format!("{} ({why})", ex.candidates[idx].addr));
        }
        if ex.next_candidate < ex.candidates.len() {
            log::debug!("conn {}: {why}; trying the next target", self.log_prefix);
            self.request_connect();
            return;
        }
        let detail = format!(
            "Unable to connect to any targets. Tried: {}",
            ex.tried.join(", ")
        );
        self.fail(env, Failure::BadGateway(detail));
    }

    /// The backend connection broke after it was established.
    pub(super) fn backend_broken(&mut self, env: &Env, why: &str) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        let reused = self.backend.as_ref().map(|b| b.reused).unwrap_or(false);
        let nothing_received = matches!(ex.resp, RespState::AwaitHead)
            && self
                .backend
                .as_ref()
                .map(|b| b.input.is_empty())
                .unwrap_or(true);
        if reused && nothing_received && ex.req_kind == BodyKind::None && !ex.retried {
            // A pooled connection the backend had already closed: retry once on a fresh connection.
            log::debug!(
                "conn {}: pooled backend connection failed ({why}); retrying",
                self.log_prefix
            );
            ex.retried = true;
            ex.pooled_ok = false;
            if let Some(idx) = ex.current {
                ex.next_candidate = idx;
            }
            self.backend = None;
            self.request_connect();
            return;
        }
        if matches!(ex.resp, RespState::AwaitHead) {
            let addr = self
                .backend
                .as_ref()
                .map(|b| b.addr.to_string())
                .unwrap_or_default();
            self.fail(
                env,
                Failure::BadGateway(format!("origin {addr} closed the connection: {why}")),
            );
        } else {
            self.abort(&format!("backend connection failed mid-response: {why}"));
        }
    }

    pub(super) fn forward_request_body(&mut self, env: &Env) -> bool {
        let (Some(b), Phase::Exchange(ex)) = (&mut self.backend, &mut self.phase) else {
            return false;
        };
        if !b.connected || !ex.head_queued || ex.req_done {
            return false;
        }
        match pump(
            &mut ex.req_dec,
            &mut ex.req_enc,
            &mut self.client_in,
            &mut b.output,
            &mut ex.req_copy,
        ) {
            Ok((progress, bytes)) => {
                ex.req_body_bytes += bytes;
                if ex.req_dec.is_done() && ex.req_enc.is_finished() {
                    ex.req_done = true;
                }
                if let Some(max) = env.cfg.client_max_body {
                    if ex.req_body_bytes > max {
                        let msg = format!("request body exceeds {max} bytes");
                        self.reject_request(413, &msg);
                        return true;
                    }
                }
                if !ex.req_done && self.client_eof && progress == 0 && self.client_in.is_empty() {
                    self.abort("client closed before sending the whole request body");
                    return true;
                }
                progress > 0 || ex.req_done
            }
            Err(e) => {
                log::info!(
                    "conn {}: bad request body from {}: {e}",
                    self.log_prefix,
                    self.peer
                );
                self.reject_request(400, &e.to_string());
                true
            }
        }
    }

    /// The request body was bad or too large: answer the client if no response has started, else just close.
    pub(super) fn reject_request(&mut self, code: u16, text: &str) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        self.backend = None;
        if ex.resp_bytes == 0 {
            log::info!("{} {} code={code} {text}", ex.head.method, ex.head.target);
            // Only an interim 100 Continue can be queued here; it may be partly sent, so append after it.
            let n = write_text_response(self.client_out.vec(), code, text, true);
            self.client_out.mark_head(n);
            self.phase = Phase::Closing {
                since: self.now,
                shut: false,
                discarded: 0,
            };
        } else {
            self.abort(text);
        }
    }

    pub(super) fn relay_response(&mut self, now: Instant, env: &Env) -> bool {
        let mut progress = false;
        loop {
            let (Some(b), Phase::Exchange(ex)) = (&mut self.backend, &mut self.phase) else {
                return progress;
            };
            if !b.connected {
                return progress;
            }
            match &mut ex.resp {
                RespState::AwaitHead => {
                    match parse_response_head(b.input.data(), &env.cfg.backend_head) {
                        Ok(None) => {
                            if b.eof {
                                self.backend_broken(env, "no response");
                                return true;
                            }
                            return progress;
                        }
                        Err(e) => {
                            let detail =
                                format!("invalid response head from origin {}: {e}", b.addr);
                            self.backend = None;
                            self.fail(env, Failure::BadGateway(detail));
                            return true;
                        }
                        Ok(Some((resp, used))) => {
                            b.input.consume(used);
                            self.counts.header(Flow::BackendReceived, used as u64);
                            progress = true;
                            if (100..200).contains(&resp.code) {
                                if resp.code == 101 {
                                    if let Err(d) = self.accept_backend_websocket(resp, env) {
                                        self.backend = None;
                                        self.fail(env, Failure::BadGateway(d));
                                    }
                                    return true;
                                }
                                // Interim responses are the backend's; the client got our own 100 already.
                                continue;
                            }
                            if let Err(e) = self.start_response(resp) {
                                self.backend = None;
                                self.fail(env, Failure::BadGateway(e));
                                return true;
                            }
                        }
                    }
                }
                RespState::Body {
                    dec,
                    enc,
                    backend_keep_alive,
                } => {
                    match pump(dec, enc, &mut b.input, &mut self.client_out, &mut None) {
                        Ok((moved, _)) => {
                            if moved > 0 {
                                ex.resp_bytes += moved;
                                progress = true;
                            }
                        }
                        Err(e) => {
                            let why = format!("invalid response body from origin {}: {e}", b.addr);
                            self.abort(&why);
                            return true;
                        }
                    }
                    if dec.is_done() && enc.is_finished() {
                        let backend_keep_alive = *backend_keep_alive;
                        ex.resp = RespState::Done;
                        ex.last_progress = now;
                        self.end_backend_response(backend_keep_alive);
                        return true;
                    }
                    if b.eof && b.input.is_empty() {
                        if let Err(e) = dec.finish_on_eof() {
                            let why = format!("origin {} ended the body early: {e}", b.addr);
                            self.abort(&why);
                            return true;
                        }
                        continue;
                    }
                    return progress;
                }
                RespState::Instruct {
                    dec, body, head, ..
                } => {
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
                                if step.done || body.len() > INSTRUCT_BODY_MAX {
                                    break;
                                }
                            }
                            Err(e) => {
                                let d = format!(
                                    "invalid GRIP response body from origin {}: {e}",
                                    b.addr
                                );
                                self.backend = None;
                                self.fail(env, Failure::BadGateway(d));
                                return true;
                            }
                        }
                    }
                    if body.len() > INSTRUCT_BODY_MAX && ex.link.is_none() && is_stream_hold(head) {
                        // Too large to buffer: start the hold now, relay the rest.
                        self.start_prestream(now, env);
                        progress = true;
                        continue;
                    }
                    if body.len() > INSTRUCT_BODY_MAX {
                        let d = format!("GRIP instruct response too large from {}", b.addr);
                        self.backend = None;
                        self.fail(env, Failure::BadGateway(d));
                        return true;
                    }
                    if b.eof && b.input.is_empty() && !dec.is_done() && dec.finish_on_eof().is_err()
                    {
                        let d = format!("origin {} ended the GRIP response early", b.addr);
                        self.backend = None;
                        self.fail(env, Failure::BadGateway(d));
                        return true;
                    }
                    if !dec.is_done() {
                        return progress;
                    }
                    let RespState::Instruct {
                        head,
                        body,
                        backend_keep_alive,
                        ..
                    } = std::mem::replace(&mut ex.resp, RespState::Done)
                    else {
                        return true;
                    };
                    self.end_backend_response(backend_keep_alive);
                    self.on_instruct(head, body, now, env);
                    return true;
                }
                RespState::PreStream { hold, dec, .. } => {
                    while self.client_out.len() < OUT_QUEUE_MAX && !dec.is_done() {
                        let room = OUT_QUEUE_MAX - self.client_out.len();
                        let data = b.input.data();
                        let step = match dec.decode(&data[..data.len().min(room)]) {
                            Ok(step) => step,
                            Err(e) => {
                                let why = format!("invalid GRIP stream body from {}: {e}", b.addr);
                                self.abort(&why);
                                return true;
                            }
                        };
                        if step.consumed == 0 && !step.done {
                            break;
                        }
                        hold.encode_body(&data[step.data.clone()], &mut self.client_out);
                        b.input.consume(step.consumed);
                        ex.resp_bytes += step.consumed as u64;
                        progress = true;
                    }
                    if b.eof && b.input.is_empty() && !dec.is_done() {
                        if dec.finish_on_eof().is_err() {
                            let why = format!("origin {} ended the GRIP stream body early", b.addr);
                            self.abort(&why);
                            return true;
                        }
                        continue;
                    }
                    if !dec.is_done() {
                        return progress;
                    }
                    let RespState::PreStream {
                        hold,
                        info,
                        backend_keep_alive,
                        ..
                    } = std::mem::replace(&mut ex.resp, RespState::Done)
                    else {
                        return true;
                    };
                    self.end_backend_response(backend_keep_alive);
                    self.enter_held_subscribed(*hold, *info);
                    return true;
                }
                RespState::Done => return progress,
            }
        }
    }

    /// The backend's response is fully read: its connection goes back to the pool when it may carry
    /// another request (the response allowed it, nothing more was sent or read, the request went out
    /// whole), else it is closed.
    fn end_backend_response(&mut self, backend_keep_alive: bool) {
        let clean = self
            .backend
            .as_ref()
            .is_some_and(|b| b.input.is_empty() && !b.eof);
        let req_done = matches!(&self.phase, Phase::Exchange(ex) if ex.req_done);
        if backend_keep_alive && clean && req_done {
            self.release_backend = true;
        } else {
            self.backend = None;
        }
    }

    /// A response head arrived: queue the client's version of it and set up body framing.
    pub(super) fn start_response(&mut self, resp: ResponseHead) -> Result<(), String> {
        let Phase::Exchange(ex) = &mut self.phase else {
            return Ok(());
        };
        let kind = response_body_kind(&resp, &ex.head.method)
            .map_err(|e| format!("invalid response framing from origin: {e}"))?;
        if ex.link.is_some() {
            return self.start_link_response(resp, kind);
        }
        let route = &ex.router.table().routes()[ex.route_idx];
        if !route.no_grip && !ex.trusted && ex.ws.is_none() && is_grip_response(&resp.headers) {
            if ex.req_kind != BodyKind::None && ex.req_copy.is_none() {
                // Pushpin's rule: a GRIP answer needs the request kept for retries, and this one was
                // too large to keep.
                self.backend = None;
                self.reject_request(400, "Request too large to accept GRIP instruct.");
                return Ok(());
            }
            ex.status = resp.code;
            ex.resp = RespState::instruct(resp, kind);
            return Ok(());
        }
        let framing = rewrite::client_framing(kind, ex.head.version);
        // A response that starts before the request body is complete ends the connection: the rest of the body
        // is still on the wire and can't be told apart from a next request.
        let keep_alive = ex.client_keep_alive
            && ex.req_done
            && !self.draining
            && framing != BodyKind::CloseDelimited
            && !(self.client_eof && self.client_in.is_empty());
        if !keep_alive {
            ex.client_keep_alive = false;
        }
        let before = self.client_out.len();
        self.client_out.push_head(|out| {
            rewrite::client_response(&resp, framing, keep_alive, ex.head.version, out)
        });
        ex.resp_bytes += (self.client_out.len() - before) as u64;
        ex.status = resp.code;
        ex.resp = RespState::Body {
            dec: BodyDecoder::new(kind, ChunkLimits::default()),
            enc: BodyEncoder::new(framing),
            backend_keep_alive: backend_reusable(&resp, kind),
        };
        Ok(())
    }

    pub(super) fn finish_exchange_if_done(&mut self, now: Instant, env: &Env) -> bool {
        let Phase::Exchange(ex) = &mut self.phase else {
            return false;
        };
        if !matches!(ex.resp, RespState::Done)
            || !self.client_out.is_empty()
            || self.release_backend
        {
            return false;
        }
        if let Some(fetch) = ex.link.take() {
            // A plain next-link response ended the client's stream.
            self.queue_gone(&fetch.links);
            let keep = fetch.keep_alive_conn && !self.draining;
            let label = &fetch.label;
            log::info!(
                "{} {} -> stream route={} code={} {:.1}s",
                label.method,
                label.target,
                label.route_id,
                label.code,
                now.saturating_duration_since(label.started).as_secs_f64()
            );
            self.backend = None;
            self.next_request_or_close(keep, now);
            return true;
        }
        let elapsed = now.saturating_duration_since(ex.started);
        let route = &ex.router.table().routes()[ex.route_idx];
        let target = ex.current.map(|i| ex.candidates[i].addr);
        log_request(
            env.cfg,
            &ex.head,
            self.peer,
            &route.id,
            target,
            ex.status,
            ex.resp_bytes,
            elapsed,
        );
        // A request body the backend did not wait for is still on the wire: the connection can't be reused.
        let keep = ex.client_keep_alive && ex.req_done && !self.draining;
        self.backend = None;
        self.next_request_or_close(keep, now);
        true
    }
}

/// Request body kept for GRIP retries (Pushpin's limit).
const GRIP_REQUEST_BODY_MAX: usize = 100_000;

/// A `Grip-Hold: stream` response that is not an `application/grip-instruct` body: its body is the
/// stream's first bytes, which may be relayed before the hold starts.
fn is_stream_hold(head: &ResponseHead) -> bool {
    let instruct_body = head.header_str("Content-Type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/grip-instruct"))
    });
    !instruct_body && head.header_str("Grip-Hold").map(str::trim) == Some("stream")
}

/// Move body bytes from `input` through a decoder and encoder into `out`, stopping when `out` holds
/// `OUT_QUEUE_MAX` bytes or input runs dry. Returns (bytes appended to out, payload bytes moved).
/// The payload is also appended to `copy` while that stays within `GRIP_REQUEST_BODY_MAX` (past it,
/// `copy` becomes `None`).
fn pump(
    dec: &mut BodyDecoder,
    enc: &mut BodyEncoder,
    input: &mut InBuf,
    out: &mut OutBuf,
    copy: &mut Option<Vec<u8>>,
) -> Result<(u64, u64), crate::http1::BodyError> {
    let before = out.len();
    let mut payload = 0u64;
    loop {
        if dec.is_done() {
            if !enc.is_finished() {
                enc.finish(out.vec())?;
            }
            break;
        }
        if out.len() >= OUT_QUEUE_MAX {
            break;
        }
        let room = OUT_QUEUE_MAX - out.len();
        let data = input.data();
        let step = dec.decode(&data[..data.len().min(room)])?;
        if step.consumed == 0 && !step.done {
            break;
        }
        let range = step.data.clone();
        enc.encode(&data[range.clone()], out.vec())?;
        if let Some(c) = copy {
            if c.len() + range.len() > GRIP_REQUEST_BODY_MAX {
                *copy = None;
            } else {
                c.extend_from_slice(&data[range.clone()]);
            }
        }
        payload += range.len() as u64;
        input.consume(step.consumed);
    }
    Ok(((out.len() as u64).saturating_sub(before as u64), payload))
}
