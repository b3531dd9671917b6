//! The HTTP control API: Pushpin's publish endpoint and friends (spec section 5.1).

mod http;
mod session;

pub use http::{response, text_response, ControlLimits, ControlRequest, Format};
pub use session::{ControlSession, ControlWant};

/// Answer a transport-valid control request. Publishing and recovery are wired in by the GRIP work.
pub fn handle(req: &ControlRequest) -> Vec<u8> {
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
        "/publish" | "/recover" => text_response(
            503,
            "Publishing is not available in this build yet.",
            req.format,
        ),
        _ => text_response(404, "Not Found", req.format),
    }
}
