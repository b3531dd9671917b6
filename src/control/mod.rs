//! The HTTP control API: Pushpin's publish endpoint and friends (spec section 5.1), and the Prometheus endpoint
//! (spec 7.3), which shares its one-request HTTP handling.

mod http;
mod session;

pub use http::{response, text_response, ControlLimits, ControlRequest, Format};

use crate::publish::parse_publish_body;
use crate::reactor::Shared;
use crate::stats::prometheus;
pub use session::{ControlSession, ControlWant};

/// Request limits of the Prometheus endpoint (Pushpin's: 8192-byte head, 8192-byte body).
pub const METRICS_LIMITS: ControlLimits = ControlLimits {
    max_headers_size: 8192,
    max_body_size: 8192,
};

/// Any request to the metrics endpoint, whatever its method and path, gets the exposition (as Pushpin's does);
/// a HEAD gets the head alone.
pub fn metrics_response(req: &ControlRequest, shared: &Shared) -> Vec<u8> {
    let body = prometheus::render(&shared.metrics_snapshot(), &shared.prometheus_prefix);
    let mut out = response(200, prometheus::CONTENT_TYPE, body.as_bytes(), &[]);
    if req.method == "HEAD" {
        out.truncate(out.len() - body.len());
    }
    out
}

/// Answer a transport-valid control request (spec 5.1).
pub fn handle(req: &ControlRequest, shared: &Shared) -> Vec<u8> {
    let path = req
        .path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(&req.path);
    match path {
        "/" => response(200, "text/plain", b"Pushpin API\n", &[]),
        "/publish" | "/recover" if req.method != "POST" => {
            let allow = [crate::http1::Header::new("Allow", b"POST")];
            let body = format!("Method not allowed: {}.\n", req.method);
            response(405, "text/plain", body.as_bytes(), &allow)
        }
        "/publish" => match parse_publish_body(&req.body) {
            Ok(items) => {
                log::debug!("control: publish of {} items", items.len());
                shared.publish(items, crate::stats::Input::Http);
                text_response(200, "Published", req.format)
            }
            Err(reason) => text_response(400, &reason, req.format),
        },
        "/recover" => {
            shared.recover();
            text_response(200, "Updated", req.format)
        }
        _ => text_response(404, "Not Found", req.format),
    }
}
