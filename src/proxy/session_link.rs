//! Next links and gone links on a proxy session (spec 4.9 and 4.11). A child module of `session`.
//!
//! A next link continues the client's response with another backend response: after a no-hold GRIP
//! response at once, and for a stream hold when its refresh timeout passes without activity on every
//! channel, on a published hint, on an update (first subscription, recover). The link is fetched with
//! `GET` and only `Grip-Last` (plus the signature headers); its body is appended to the client's response
//! and its instructions replace the old ones. Failed fetches are retried with back-off, then the stream
//! ends. A gone link from the initial response is posted to when the session ends for any reason.

use super::exchange::ExchangeStart;
use super::*;
use crate::grip::{HoldMode, Instruct, NextLink};
use crate::http1::Header;
use crate::proxy::gone::GoneRequest;
use crate::proxy::hold::{begin_stream, Hold};
use crate::proxy::link::{resolve_link, LinkTarget};

/// Failed next-link fetches retried before the stream ends (Pushpin's count).
const LINK_RETRIES_MAX: u32 = 5;

/// Where a session's links resolve and how they are routed: the original request's authority and route.
#[derive(Clone)]
pub(super) struct LinkBase {
    pub router: Arc<Router>,
    pub route_idx: usize,
    pub candidates: Vec<Candidate>,
    pub tls: bool,
    /// `Host` of the original request.
    pub host: String,
    /// The original request target, for relative links.
    pub target: String,
    /// Route prefix and implicit channels, for holds that next links start.
    pub prefix: String,
    pub implicit: Vec<String>,
}

/// A session's links.
pub(super) struct Links {
    pub base: LinkBase,
    pub next: Option<NextLink>,
    /// Only the initial response's gone link counts.
    pub gone: Option<String>,
    /// When a stream hold checks its channels' activity and refreshes from the next link.
    pub refresh_at: Option<Instant>,
}

/// For the access line of a streamed response.
pub(super) struct StreamLabel {
    pub method: String,
    pub target: String,
    pub route_id: String,
    pub started: Instant,
    pub code: u16,
}

/// A client response being continued by a next link: in an exchange, or waiting to retry one.
pub(super) struct LinkFetch {
    pub links: Links,
    /// The client body framing, mid-response.
    pub encoder: BodyEncoder,
    pub client_version: Version,
    pub keep_alive_conn: bool,
    pub grip_last: Vec<(String, String)>,
    pub failures: u32,
    pub retry_at: Instant,
    pub label: StreamLabel,
}

/// A gone link to post once `process` has the configuration to build the request.
pub(super) struct PendingGone {
    base: LinkBase,
    url: String,
}

impl Links {
    pub(super) fn new(base: LinkBase, inst: &Instruct, now: Instant) -> Links {
        let next = inst.next_link.clone();
        Links {
            refresh_at: next
                .as_ref()
                .map(|n| now + Duration::from_secs(n.timeout_secs)),
            next,
            gone: inst.gone_link.clone(),
            base,
        }
    }
}

impl<S: Socket> Session<S> {
    /// A no-hold GRIP response with a next link: start the client's response as a stream (chunked for
    /// HTTP/1.1, close-delimited for 1.0), send its body, then fetch the link.
    pub(super) fn start_link_stream(
        &mut self,
        inst: Instruct,
        links: Links,
        label: StreamLabel,
        version: Version,
        keep_alive: bool,
        now: Instant,
    ) {
        let head = ResponseHead {
            version: Version::Http11,
            code: inst.code,
            reason: inst.reason,
            headers: inst.headers,
        };
        let (encoder, keep_alive_conn) =
            begin_stream(&head, &inst.body, version, keep_alive, &mut self.client_out);
        let fetch = LinkFetch {
            links,
            encoder,
            client_version: version,
            keep_alive_conn,
            grip_last: unheld_grip_last(&inst.unheld_channels),
            failures: 0,
            retry_at: now,
            label,
        };
        // The backend connection goes back to the pool if the response left it reusable.
        if !self.release_backend {
            self.backend = None;
        }
        self.start_link_fetch(Box::new(fetch), now);
    }

    /// Fetch the next link: an exchange whose response continues the client's.
    pub(super) fn start_link_fetch(&mut self, fetch: Box<LinkFetch>, now: Instant) {
        let Some(next) = &fetch.links.next else {
            self.end_link_stream(fetch, now, None);
            return;
        };
        let base = &fetch.links.base;
        let (host, path, candidates) =
            match resolve_link(&next.url, &base.host, base.tls, &base.target) {
                Ok(LinkTarget::SameOrigin { path }) => {
                    (base.host.clone(), path, base.candidates.clone())
                }
                Ok(LinkTarget::Other {
                    tls: true, host, ..
                }) => {
                    let why =
                        format!("next link to {host} needs TLS, which backends can't use yet");
                    self.end_link_stream(fetch, now, Some(&why));
                    return;
                }
                Ok(LinkTarget::Other {
                    host,
                    port,
                    authority,
                    path,
                    ..
                }) => match other_host_addrs(&base.router, &host, port) {
                    Some(addrs) => {
                        let target_idx = base.candidates.first().map_or(0, |c| c.target_idx);
                        let candidates = addrs
                            .into_iter()
                            .map(|addr| Candidate { addr, target_idx })
                            .collect();
                        (authority, path, candidates)
                    }
                    None => {
                        let why = format!("next link host {host} is not an address holdfast knows");
                        self.end_link_stream(fetch, now, Some(&why));
                        return;
                    }
                },
                Err(e) => {
                    self.end_link_stream(fetch, now, Some(&e));
                    return;
                }
            };
        log::debug!("conn {}: fetching next link {path}", self.log_prefix);
        let head = RequestHead {
            method: "GET".to_string(),
            target: path,
            version: Version::Http11,
            headers: vec![Header::new("Host", host.as_bytes())],
        };
        let mut ex = Exchange::new(ExchangeStart {
            head,
            router: Arc::clone(&base.router),
            route_idx: base.route_idx,
            candidates,
            tried: Vec::new(),
            tls: base.tls,
            trusted: false,
            client_keep_alive: fetch.keep_alive_conn,
            req_kind: BodyKind::None,
            grip_last: fetch.grip_last.clone(),
            now,
        });
        // The client's response is under way: errors can't become a 502 any more.
        ex.status = fetch.label.code;
        ex.link = Some(fetch);
        self.phase = Phase::Exchange(Box::new(ex));
        self.request_connect();
    }

    /// The next link's response head: a GRIP response is read as instructions, any other 2xx body ends
    /// the client's response, anything else is a failed fetch.
    pub(super) fn start_link_response(
        &mut self,
        resp: ResponseHead,
        kind: BodyKind,
    ) -> Result<(), String> {
        let Phase::Exchange(ex) = &mut self.phase else {
            return Ok(());
        };
        if !(200..300).contains(&resp.code) {
            self.backend = None;
            self.link_failed(&format!("next link answered {}", resp.code));
            return Ok(());
        }
        let backend_keep_alive = backend_reusable(&resp, kind);
        if is_grip_response(&resp.headers) {
            ex.resp = RespState::instruct(resp, kind);
            return Ok(());
        }
        let Some(fetch) = ex.link.as_mut() else {
            return Ok(());
        };
        // The body goes out in the client's framing, which it then finishes.
        let enc = std::mem::replace(&mut fetch.encoder, BodyEncoder::new(BodyKind::None));
        ex.resp = RespState::Body {
            dec: BodyDecoder::new(kind, ChunkLimits::default()),
            enc,
            backend_keep_alive,
        };
        Ok(())
    }

    /// The next link answered with instructions.
    pub(super) fn on_link_instruct(&mut self, mut inst: Instruct, now: Instant) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        let Some(mut fetch) = ex.link.take() else {
            return;
        };
        match inst.hold.as_ref().map(|h| h.mode) {
            Some(HoldMode::Response) => {
                self.end_link_stream(fetch, now, Some("Next link returned non-stream hold."));
            }
            Some(HoldMode::Stream) => {
                fetch.links.next = inst.next_link.take();
                fetch.links.refresh_at = fetch
                    .links
                    .next
                    .as_ref()
                    .map(|n| now + Duration::from_secs(n.timeout_secs));
                let fetch = *fetch;
                let Some(hold) = Hold::resume(
                    inst,
                    &fetch.links.base.prefix,
                    &fetch.links.base.implicit,
                    fetch.client_version,
                    fetch.keep_alive_conn,
                    fetch.encoder,
                    now,
                    &mut self.client_out,
                ) else {
                    self.phase = Phase::Closed;
                    return;
                };
                self.enter_held(
                    hold,
                    HeldInfo {
                        method: fetch.label.method,
                        target: fetch.label.target,
                        route_id: fetch.label.route_id,
                        started: fetch.label.started,
                        retry: None,
                        links: Some(Box::new(fetch.links)),
                    },
                );
            }
            None => {
                let _ = fetch.encoder.encode(&inst.body, self.client_out.vec());
                fetch.failures = 0;
                fetch.grip_last = unheld_grip_last(&inst.unheld_channels);
                match inst.next_link.take() {
                    Some(next) => {
                        fetch.links.next = Some(next);
                        self.start_link_fetch(fetch, now);
                    }
                    None => self.end_link_stream(fetch, now, None),
                }
            }
        }
    }

    /// A next-link fetch failed (connect error, timeout, non-2xx, bad instructions): wait and retry, or
    /// give up and end the client's response.
    pub(super) fn link_failed(&mut self, why: &str) {
        let now = self.now;
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        let Some(mut fetch) = ex.link.take() else {
            return;
        };
        self.backend = None;
        self.release_backend = false;
        fetch.failures += 1;
        if fetch.failures > LINK_RETRIES_MAX {
            let why = format!("Failed to retrieve next link. (last: {why})");
            self.end_link_stream(fetch, now, Some(&why));
            return;
        }
        // 1 s, 2 s, 4 s, 8 s, 16 s, plus up to a second of spread so many sessions don't retry together.
        let backoff = Duration::from_secs(1 << (fetch.failures - 1));
        let jitter = Duration::from_millis(self.log_prefix.wrapping_mul(7919) % 1000);
        fetch.retry_at = now + backoff + jitter;
        log::debug!(
            "conn {}: next link failed ({why}); retry {} in {:?}",
            self.log_prefix,
            fetch.failures,
            backoff + jitter
        );
        self.phase = Phase::LinkWait(fetch);
    }

    /// End the client's streamed response (cleanly: the final chunk goes out) and post the gone link.
    pub(super) fn end_link_stream(
        &mut self,
        mut fetch: Box<LinkFetch>,
        now: Instant,
        error: Option<&str>,
    ) {
        let _ = fetch.encoder.finish(self.client_out.vec());
        let label = &fetch.label;
        match error {
            Some(e) => log::warn!(
                "{} {} -> stream route={} ended: {e}",
                label.method,
                label.target,
                label.route_id
            ),
            None => log::info!(
                "{} {} -> stream route={} code={} {:.1}s",
                label.method,
                label.target,
                label.route_id,
                label.code,
                now.saturating_duration_since(label.started).as_secs_f64()
            ),
        }
        self.queue_gone(&fetch.links);
        let keep = fetch.keep_alive_conn && !self.draining && error.is_none();
        self.next_request_or_close(keep, now);
    }

    /// Waiting to retry a next link: the client leaving ends it.
    pub(super) fn advance_link_wait(&mut self) -> bool {
        if !self.client_eof {
            return false;
        }
        if let Phase::LinkWait(fetch) = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.queue_gone(&fetch.links);
        }
        true
    }

    pub(super) fn link_wait_timeout(&mut self, now: Instant) {
        if let Phase::LinkWait(fetch) = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.start_link_fetch(fetch, now);
        }
    }

    /// A stream hold gives its response over to the next link (refresh, hint, update).
    pub(super) fn fetch_from_hold(&mut self, now: Instant) {
        let Phase::Held(h) = std::mem::replace(&mut self.phase, Phase::Closed) else {
            return;
        };
        let h = *h;
        self.unsubscribe
            .extend(h.hold.channels.iter().map(|c| c.name.clone()));
        let client_version = h.hold.client_version();
        let (Some(links), Some(parts)) = (h.links, h.hold.into_stream_parts()) else {
            return;
        };
        let fetch = LinkFetch {
            links: *links,
            encoder: parts.encoder,
            client_version,
            keep_alive_conn: parts.keep_alive_conn,
            grip_last: parts.grip_last,
            failures: 0,
            retry_at: now,
            label: StreamLabel {
                method: h.method,
                target: h.target,
                route_id: h.route_id,
                started: h.started,
                code: parts.code,
            },
        };
        self.start_link_fetch(Box::new(fetch), now);
    }

    /// Remember the gone link (if any) to post once `process` can build the request.
    pub(super) fn queue_gone(&mut self, links: &Links) {
        if let Some(url) = &links.gone {
            self.pending_gone.push(PendingGone {
                base: links.base.clone(),
                url: url.clone(),
            });
        }
    }

    /// Build the queued gone-link requests (`POST`, empty body, signed like any request to the route).
    pub(super) fn take_gone_requests(&mut self, env: &Env) -> Vec<GoneRequest> {
        let mut out = Vec::new();
        for g in std::mem::take(&mut self.pending_gone) {
            let base = &g.base;
            let (host, path, addr) = match resolve_link(&g.url, &base.host, base.tls, &base.target)
            {
                Ok(LinkTarget::SameOrigin { path }) => (
                    base.host.clone(),
                    path,
                    base.candidates.first().map(|c| c.addr),
                ),
                Ok(LinkTarget::Other {
                    tls: false,
                    host,
                    port,
                    authority,
                    path,
                }) => {
                    let addr = other_host_addrs(&base.router, &host, port)
                        .and_then(|a| a.first().copied());
                    (authority, path, addr)
                }
                Ok(LinkTarget::Other { host, .. }) => {
                    log::debug!("gone link to {host} not sent: TLS to backends is not supported");
                    continue;
                }
                Err(e) => {
                    log::debug!("gone link not sent: {e}");
                    continue;
                }
            };
            let Some(addr) = addr else {
                log::debug!("gone link to {host} not sent: no address for it");
                continue;
            };
            let routes = base.router.table().routes();
            let Some(route) = routes.get(base.route_idx) else {
                continue;
            };
            let target_idx = base.candidates.first().map_or(0, |c| c.target_idx);
            let Some(target) = route.targets.get(target_idx) else {
                continue;
            };
            let grip_sig = if route.no_grip {
                None
            } else {
                base.router
                    .signing(base.route_idx, env.cfg)
                    .map(|(iss, key)| cached_grip_sig(iss, key, unix_now() + 3600))
            };
            let head = RequestHead {
                method: "POST".to_string(),
                target: path,
                version: Version::Http11,
                headers: vec![
                    Header::new("Host", host.as_bytes()),
                    Header::new("Content-Length", b"0"),
                    Header::new("Connection", b"close"),
                ],
            };
            let ctx = RequestContext {
                cfg: env.cfg,
                route,
                target,
                peer: self.peer.ip(),
                tls: base.tls,
                body: BodyKind::Length(0),
                trusted: false,
                grip_sig: grip_sig.as_deref(),
                grip_last: &[],
                ws: None,
            };
            let mut request = Vec::new();
            rewrite::backend_request(&head, &ctx, &mut request);
            out.push(GoneRequest { addr, request });
        }
        out
    }
}

/// `Grip-Last` for a no-hold response's channels that named a prev-id.
fn unheld_grip_last(channels: &[crate::grip::Channel]) -> Vec<(String, String)> {
    channels
        .iter()
        .filter_map(|c| c.prev_id.as_ref().map(|id| (c.name.clone(), id.clone())))
        .collect()
}

/// Addresses for a link to another host: an IP literal, or a name the router has already resolved (a
/// route target). Other names are not looked up: resolving would block the reactor.
fn other_host_addrs(router: &Router, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    let known = router.addrs(host, port);
    (!known.is_empty()).then(|| known.to_vec())
}
