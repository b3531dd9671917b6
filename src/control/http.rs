//! The HTTP side of the control API (`push_in_http_addr:push_in_http_port`), sans-IO.
//!
//! Pushpin's control server is deliberately minimal: one request per connection, `Connection: close`, bodies
//! only with Content-Length, and fixed error texts that GRIP libraries surface to their users. This module turns
//! request bytes into a `ControlRequest` (or a ready error response) and builds responses in the negotiated
//! format; what a request *does* is up to the caller.

use crate::http1::{
    parse_request_head, reason_phrase, write_response_head, HeadError, HeadLimits, Header, Version,
};

/// The body format a client accepts, from its `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// A complete, transport-valid control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRequest {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub format: Format,
}

/// Outcome of feeding bytes to `parse`.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// The client asked for `100 Continue` and has not sent the body yet: send this interim response once.
    Continue,
    Request(ControlRequest),
    /// A transport error: send this response and close.
    Error(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
pub struct ControlLimits {
    pub max_headers_size: usize,
    pub max_body_size: usize,
}

/// Parse a control request from everything received so far. `continued` says a 100 Continue was sent already;
/// without `negotiate`, `Accept` is not looked at and the format is text.
pub fn parse(buf: &[u8], limits: &ControlLimits, continued: bool, negotiate: bool) -> Parsed {
    let head_limits = HeadLimits {
        max_head: limits.max_headers_size.max(64),
        ..HeadLimits::default()
    };
    let (head, used) = match parse_request_head(buf, &head_limits) {
        Ok(None) => return Parsed::Incomplete,
        Ok(Some(h)) => h,
        Err(HeadError::TooLarge) => {
            return Parsed::Error(text_response(
                400,
                "Request header too large.",
                Format::Text,
            ))
        }
        Err(_) => {
            return Parsed::Error(text_response(
                400,
                "Failed to parse request header.",
                Format::Text,
            ))
        }
    };
    let accept = if negotiate {
        head.header_str("Accept")
    } else {
        None
    };
    let format = match self::negotiate(accept) {
        Some(f) => f,
        None => {
            return Parsed::Error(text_response(
                406,
                "Not Acceptable. Supported formats are text/plain and application/json.",
                Format::Text,
            ))
        }
    };
    let body_method = !matches!(head.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS");
    let length = match head.header_str("Content-Length") {
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => return Parsed::Error(text_response(400, "Bad Content-Length.", format)),
        },
        None => None,
    };
    if head.header("Transfer-Encoding").is_some() || (body_method && length.is_none()) {
        return Parsed::Error(text_response(
            411,
            "Request requires Content-Length.",
            format,
        ));
    }
    let length = length.unwrap_or(0);
    if length > limits.max_body_size {
        return Parsed::Error(text_response(400, "Request body too large.", format));
    }
    let body = &buf[used..];
    if body.len() > length {
        return Parsed::Error(text_response(
            400,
            "Request body exceeded Content-Length.",
            format,
        ));
    }
    if body.len() < length {
        if body.is_empty() && !continued && head.expects_continue() {
            return Parsed::Continue;
        }
        return Parsed::Incomplete;
    }
    let mut head = head;
    Parsed::Request(ControlRequest {
        method: std::mem::take(&mut head.method),
        path: std::mem::take(&mut head.target),
        body: body.to_vec(),
        format,
    })
}

/// Pushpin's negotiation: each listed type is checked in order and the last acceptable one wins.
fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept else {
        return Some(Format::Text);
    };
    let mut chosen = None;
    for item in accept.split(',') {
        let media = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "text/plain" | "text/*" | "*/*" | "*" => chosen = Some(Format::Text),
            "application/json" | "application/*" => chosen = Some(Format::Json),
            _ => {}
        }
    }
    chosen
}

/// A complete response whose body is `message` as text (`message\n`) or JSON (`{"message":...}\n`).
pub fn text_response(code: u16, message: &str, format: Format) -> Vec<u8> {
    let (ctype, body) = match format {
        Format::Text => ("text/plain", format!("{message}\n")),
        Format::Json => (
            "application/json",
            format!("{{\"message\":{}}}\n", json_string(message)),
        ),
    };
    response(code, ctype, body.as_bytes(), &[])
}

/// A complete `Connection: close` response.
pub fn response(code: u16, content_type: &str, body: &[u8], extra: &[Header]) -> Vec<u8> {
    let mut headers = vec![
        Header::new("Content-Type", content_type.as_bytes()),
        Header::new("Content-Length", body.len().to_string().as_bytes()),
        Header::new("Connection", b"close"),
    ];
    headers.extend_from_slice(extra);
    let mut out = Vec::with_capacity(128 + body.len());
    write_response_head(
        &mut out,
        Version::Http11,
        code,
        reason_phrase(code),
        &headers,
    );
    out.extend_from_slice(body);
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ControlLimits = ControlLimits {
        max_headers_size: 10_000,
        max_body_size: 1_000_000,
    };

    fn status(parsed: &Parsed) -> u16 {
        match parsed {
            Parsed::Error(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                text[9..12].parse().unwrap()
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn transport_errors_use_pushpins_texts() {
        let cases: &[(&[u8], u16, &str)] = &[
            (
                b"POST /publish HTTP/1.1\r\nHost: x\r\n\r\n",
                411,
                "Request requires Content-Length.\n",
            ),
            (
                b"POST /publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                411,
                "Request requires Content-Length.\n",
            ),
            (
                b"POST /publish HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                400,
                "Bad Content-Length.\n",
            ),
            (
                b"POST /publish HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n",
                400,
                "Request body too large.\n",
            ),
            (
                b"POST /publish HTTP/1.1\r\nContent-Length: 1\r\n\r\nab",
                400,
                "Request body exceeded Content-Length.\n",
            ),
            (
                b"GET / HTTP/1.1\r\nAccept: image/png\r\n\r\n",
                406,
                "Not Acceptable.",
            ),
            (b"GARBAGE\r\n\r\n", 400, "Failed to parse request header.\n"),
        ];
        for (input, code, body) in cases {
            let parsed = parse(input, &LIMITS, false, true);
            assert_eq!(status(&parsed), *code, "{}", String::from_utf8_lossy(input));
            let Parsed::Error(bytes) = parsed else {
                unreachable!()
            };
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains(body), "{text}");
            assert!(text.contains("Connection: close\r\n"));
        }
    }

    #[test]
    fn oversized_head_is_refused() {
        let limits = ControlLimits {
            max_headers_size: 100,
            max_body_size: 10,
        };
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', 200));
        let parsed = parse(&req, &limits, false, true);
        assert_eq!(status(&parsed), 400);
    }

    #[test]
    fn complete_requests_split_at_every_byte() {
        let input = b"POST /publish/ HTTP/1.1\r\nContent-Length: 5\r\nAccept: application/json\r\n\r\nhello";
        for cut in 0..input.len() {
            assert_eq!(
                parse(&input[..cut], &LIMITS, true, true),
                Parsed::Incomplete,
                "cut at {cut}"
            );
        }
        assert_eq!(
            parse(input, &LIMITS, false, true),
            Parsed::Request(ControlRequest {
                method: "POST".into(),
                path: "/publish/".into(),
                body: b"hello".to_vec(),
                format: Format::Json,
            })
        );
    }

    #[test]
    fn expect_continue_is_answered_once() {
        let head = b"POST /publish HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
        assert_eq!(parse(head, &LIMITS, false, true), Parsed::Continue);
        assert_eq!(parse(head, &LIMITS, true, true), Parsed::Incomplete);
    }

    #[test]
    fn without_negotiation_any_accept_gets_text() {
        let req = b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n";
        assert_eq!(status(&parse(req, &LIMITS, false, true)), 406);
        match parse(req, &LIMITS, false, false) {
            Parsed::Request(r) => {
                assert_eq!(r.path, "/metrics");
                assert_eq!(r.format, Format::Text);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accept_negotiation_last_match_wins() {
        for (accept, want) in [
            (None, Some(Format::Text)),
            (Some("application/json"), Some(Format::Json)),
            (Some("application/json, text/plain"), Some(Format::Text)),
            (Some("text/plain;q=0.5, application/*"), Some(Format::Json)),
            (Some("*/*"), Some(Format::Text)),
            (Some("image/png"), None),
        ] {
            assert_eq!(negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn json_bodies_escape_messages() {
        let bytes = text_response(200, "say \"hi\"\n", Format::Json);
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.ends_with("{\"message\":\"say \\\"hi\\\"\\n\"}\n"),
            "{text}"
        );
    }
}
