//! Responses the proxy makes itself (errors, 100 Continue). Every error body is one line of text naming the
//! problem, `Content-Type: text/plain`, as Pushpin does.

use crate::http1::{reason_phrase, write_response_head, Header, Version};

pub const ROUTE_NOT_FOUND: &str = "Route not found";
/// Pushpin's generic text for any failure to reach or understand the origin (non-debug mode).
pub const ORIGIN_ERROR: &str = "Error while proxying to origin.";

/// Append a complete text/plain response. `close` adds `Connection: close`. Returns the size of its head.
pub fn write_text_response(out: &mut Vec<u8>, code: u16, body_line: &str, close: bool) -> usize {
    write_text_response_with(out, code, body_line, close, &[])
}

/// As `write_text_response`, with `extra` header fields (e.g. `Sec-WebSocket-Version` on a 426).
pub fn write_text_response_with(
    out: &mut Vec<u8>,
    code: u16,
    body_line: &str,
    close: bool,
    extra: &[(&str, &str)],
) -> usize {
    let body_len = body_line.len() + 1;
    let mut headers = vec![
        Header {
            name: "Content-Type".into(),
            value: b"text/plain".to_vec(),
        },
        Header {
            name: "Content-Length".into(),
            value: body_len.to_string().into_bytes(),
        },
    ];
    if close {
        headers.push(Header {
            name: "Connection".into(),
            value: b"close".to_vec(),
        });
    }
    headers.extend(extra.iter().map(|(n, v)| Header::new(n, v.as_bytes())));
    let start = out.len();
    write_response_head(out, Version::Http11, code, reason_phrase(code), &headers);
    let head = out.len() - start;
    out.extend_from_slice(body_line.as_bytes());
    out.push(b'\n');
    head
}

pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_one_line_of_text() {
        let mut out = b"before".to_vec();
        let head = write_text_response(&mut out, 502, ROUTE_NOT_FOUND, true);
        assert_eq!(
            out.len() - 6 - head,
            ROUTE_NOT_FOUND.len() + 1,
            "the rest is the body"
        );
        let text = String::from_utf8(out[6..].to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{text}");
        assert!(text.contains("Content-Length: 16\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nRoute not found\n"));
    }
}
