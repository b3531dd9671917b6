//! The slice of `Settings` that a proxy session reads on every request, resolved once at start-up.

use std::time::Duration;

use crate::config::{Settings, XffRule, XfpMode};
use crate::grip::{parse_key, SigKey};
use crate::http1::HeadLimits;

/// Largest response head accepted from a backend. Backends are trusted more than clients, but a broken one must
/// still not make us buffer without bound.
pub const BACKEND_HEAD_MAX: usize = 64 * 1024;
/// Read buffer for streaming bodies, per direction. Bigger buffers mean fewer syscalls for large transfers;
/// they are allocated only while bytes flow and given back when a connection goes idle.
pub const BODY_BUF_SIZE: usize = 32 * 1024;
/// Bytes a producer may queue toward a socket before it stops producing (backpressure threshold).
pub const OUT_QUEUE_MAX: usize = 64 * 1024;
/// How long a connection we are closing may keep draining the peer's unread bytes, so our final response is not
/// destroyed by a TCP reset (the "lingering close" problem).
pub const LINGER: Duration = Duration::from_secs(2);
/// Bytes discarded while lingering before we give up and close.
pub const LINGER_DISCARD_MAX: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub client_head: HeadLimits,
    pub backend_head: HeadLimits,
    pub client_idle_timeout: Duration,
    pub client_request_timeout: Duration,
    pub client_max_body: Option<u64>,
    pub backend_connect_timeout: Duration,
    pub backend_response_timeout: Duration,
    pub backend_idle_timeout: Duration,
    pub debug: bool,
    pub accept_x_forwarded_protocol: bool,
    pub set_x_forwarded_protocol: XfpMode,
    pub x_forwarded_for: Vec<XffRule>,
    pub accept_pushpin_route: bool,
    pub cdn_loop: Option<String>,
    pub log_from: bool,
    pub log_user_agent: bool,
    /// `connection_subscription_max`: channels one hold may listen on.
    pub subscription_max: usize,
    /// `[holdfast] websocket_max_message`: the largest WebSocket message collected whole (at least 125).
    pub ws_max_message: usize,
    /// `[holdfast] websocket_max_frame`: the largest WebSocket frame payload accepted.
    pub ws_max_frame: u64,
    /// Grip-Sig issuer and key for routes that don't set their own (`sig_iss`, `sig_key`).
    pub sig: Option<(String, SigKey)>,
    /// Key that makes a client trusted when its Grip-Sig verifies (`upstream_key`).
    pub upstream_key: Option<SigKey>,
}

impl ProxyConfig {
    /// Errors name the key whose value can't be used.
    pub fn from_settings(s: &Settings) -> Result<ProxyConfig, String> {
        let client_head = HeadLimits {
            max_head: s.client_buffer_size.max(256),
            ..HeadLimits::default()
        };
        let backend_head = HeadLimits {
            max_head: BACKEND_HEAD_MAX,
            max_headers: crate::http1::HEADERS_MAX,
            max_uri: BACKEND_HEAD_MAX,
        };
        let sig = match &s.sig_key {
            Some(k) => Some((
                s.sig_iss.clone(),
                parse_key(k).map_err(|e| format!("[proxy] sig_key: {e}"))?,
            )),
            None => None,
        };
        let upstream_key = match &s.upstream_key {
            Some(k) => Some(parse_key(k).map_err(|e| format!("[proxy] upstream_key: {e}"))?),
            None => None,
        };
        Ok(ProxyConfig {
            client_head,
            backend_head,
            client_idle_timeout: Duration::from_millis(s.client_idle_timeout_ms),
            client_request_timeout: Duration::from_millis(s.client_request_timeout_ms),
            client_max_body: s.client_max_body_size,
            backend_connect_timeout: Duration::from_millis(s.backend_connect_timeout_ms),
            backend_response_timeout: Duration::from_millis(s.backend_response_timeout_ms),
            backend_idle_timeout: Duration::from_millis(s.backend_idle_timeout_ms),
            debug: s.debug,
            accept_x_forwarded_protocol: s.accept_x_forwarded_protocol,
            set_x_forwarded_protocol: s.set_x_forwarded_protocol,
            x_forwarded_for: s.x_forwarded_for.clone(),
            accept_pushpin_route: s.accept_pushpin_route,
            cdn_loop: s.cdn_loop.clone(),
            log_from: s.log_from,
            log_user_agent: s.log_user_agent,
            subscription_max: s.connection_subscription_max.max(1),
            ws_max_message: s.websocket_max_message.clamp(125, 256 * 1024 * 1024),
            ws_max_frame: s.websocket_max_frame.max(125),
            sig,
            upstream_key,
        })
    }

    /// Whether any X-Forwarded-Proto option is on: then clients' own X-Forwarded-Proto headers are stripped.
    pub fn xfp_enabled(&self) -> bool {
        self.accept_x_forwarded_protocol || self.set_x_forwarded_protocol != XfpMode::None
    }
}
