//! Message body framing decisions (RFC 9112 6.1-6.3).
//!
//! Requests are judged strictly, because a proxy that frames a request differently from the origin
//! is the textbook request-smuggling bug: anything ambiguous is refused rather than guessed.
//! Responses follow the RFC's recipient rules (Transfer-Encoding wins over Content-Length), since
//! the origin is the party we chose to trust; a bad Content-Length is still an error (502).

use std::fmt;

use super::head::{RequestHead, ResponseHead};
use super::headers::{list_items, Header, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the peer closes (responses only).
    CloseDelimited,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    LengthAndTransferEncoding,
    ConflictingLength,
    BadLength,
    UnsupportedTransferCoding,
}

impl FramingError {
    /// Suggested status for answering a client: 501 for an unsupported coding, else 400.
    pub fn status(&self) -> u16 {
        match self {
            FramingError::UnsupportedTransferCoding => 501,
            _ => 400,
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramingError::LengthAndTransferEncoding => {
                "both Content-Length and Transfer-Encoding present"
            }
            FramingError::ConflictingLength => "conflicting Content-Length values",
            FramingError::BadLength => "invalid Content-Length",
            FramingError::UnsupportedTransferCoding => "unsupported transfer coding",
        })
    }
}

impl std::error::Error for FramingError {}

fn has_field(headers: &[Header], name: &str) -> bool {
    headers.iter().any(|h| h.name.eq_ignore_ascii_case(name))
}

/// How the body of a request is delimited.
///
/// * Transfer-Encoding: exactly one coding in total, `chunked` → `Chunked`. Any other coding, or
///   `chunked` applied twice (RFC 9112 7: a sender MUST NOT), or an empty list → unsupported (501).
///   An HTTP/1.0 request with Transfer-Encoding is refused the same way: RFC 9112 6.1 says its
///   framing must be treated as faulty, and 1.0 has no transfer codings to implement.
/// * Content-Length → `Length` (repeated identical values, also as a list, are accepted per
///   RFC 9112 6.3 item 5).
/// * Both → refused (RFC 9112 6.1 allows a server to reject this outright).
/// * Neither → `None` (RFC 9112 6.3 item 7).
pub fn request_body_kind(head: &RequestHead) -> Result<BodyKind, FramingError> {
    let has_te = has_field(&head.headers, "transfer-encoding");
    let has_cl = has_field(&head.headers, "content-length");
    if has_te && has_cl {
        return Err(FramingError::LengthAndTransferEncoding);
    }
    if has_te {
        if head.version == Version::Http10 {
            return Err(FramingError::UnsupportedTransferCoding);
        }
        let mut codings = list_items(&head.headers, "transfer-encoding");
        let only_chunked = codings
            .next()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
            && codings.next().is_none();
        return if only_chunked {
            Ok(BodyKind::Chunked)
        } else {
            Err(FramingError::UnsupportedTransferCoding)
        };
    }
    if has_cl {
        return content_length(&head.headers).map(BodyKind::Length);
    }
    Ok(BodyKind::None)
}

/// How the body of a response to a `request_method` request is delimited (RFC 9112 6.3):
///
/// 1. HEAD requests and 1xx/204/304 responses have no body, whatever the fields say.
/// 2. Transfer-Encoding (wins over Content-Length): final coding `chunked` → `Chunked`, otherwise
///    the body runs until close. In an HTTP/1.0 response the TE framing cannot be trusted
///    (RFC 9112 6.1) and the body runs until close as well. Codings other than `chunked` are not
///    undone here; see [`super::transfer_codings`] if they must be passed on.
/// 3. Content-Length → `Length`; an invalid or conflicting one is an error (RFC 9112 6.3 item 5).
/// 4. Otherwise the body runs until close.
///
/// CONNECT tunnels (2xx to CONNECT) are not handled: holdfast does not forward CONNECT.
pub fn response_body_kind(
    head: &ResponseHead,
    request_method: &str,
) -> Result<BodyKind, FramingError> {
    // Methods are case-sensitive (RFC 9110 9.1): "head" is some other method.
    if request_method == "HEAD" || head.code < 200 || head.code == 204 || head.code == 304 {
        return Ok(BodyKind::None);
    }
    if has_field(&head.headers, "transfer-encoding") {
        if head.version == Version::Http10 {
            return Ok(BodyKind::CloseDelimited);
        }
        let last = list_items(&head.headers, "transfer-encoding").last();
        return Ok(match last {
            Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => BodyKind::Chunked,
            _ => BodyKind::CloseDelimited,
        });
    }
    if has_field(&head.headers, "content-length") {
        return content_length(&head.headers).map(BodyKind::Length);
    }
    Ok(BodyKind::CloseDelimited)
}

/// The single value of all Content-Length lines. RFC 9110 8.6: `Content-Length = 1*DIGIT`; a
/// list of identical values may be treated as that value, differing ones are unrecoverable.
/// Empty elements are not tolerated here: a lenient reading is what smuggling attacks probe for.
fn content_length(headers: &[Header]) -> Result<u64, FramingError> {
    let mut found: Option<u64> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        for item in h.value.split(|&b| b == b',') {
            let value = parse_decimal(super::headers::trim_ows(item))?;
            match found {
                Some(prev) if prev != value => return Err(FramingError::ConflictingLength),
                _ => found = Some(value),
            }
        }
    }
    found.ok_or(FramingError::BadLength)
}

/// `1*DIGIT` as u64; no sign, no whitespace, overflow is an error.
fn parse_decimal(digits: &[u8]) -> Result<u64, FramingError> {
    if digits.is_empty() {
        return Err(FramingError::BadLength);
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(FramingError::BadLength);
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(FramingError::BadLength)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = &'static [(&'static str, &'static str)];

    fn request(version: Version, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "POST".into(),
            target: "/".into(),
            version,
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(n, v.as_bytes()))
                .collect(),
        }
    }

    fn response(version: Version, code: u16, headers: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            version,
            code,
            reason: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| Header::new(n, v.as_bytes()))
                .collect(),
        }
    }

    #[test]
    fn request_framing_table() {
        use BodyKind::*;
        use FramingError::*;
        let v11 = Version::Http11;
        let v10 = Version::Http10;
        type Case = (Version, Fields, Result<BodyKind, FramingError>);
        let cases: &[Case] = &[
            (v11, &[], Ok(None)),
            (v10, &[], Ok(None)),
            (v11, &[("Host", "x")], Ok(None)),
            (v11, &[("Content-Length", "0")], Ok(Length(0))),
            (v11, &[("content-length", "42")], Ok(Length(42))),
            (v10, &[("Content-Length", "5")], Ok(Length(5))),
            (v11, &[("Content-Length", "007")], Ok(Length(7))),
            (v11, &[("Content-Length", "5, 5")], Ok(Length(5))),
            (
                v11,
                &[("Content-Length", "5"), ("Content-Length", "5")],
                Ok(Length(5)),
            ),
            (v11, &[("Content-Length", "5,5 ,\t5")], Ok(Length(5))),
            (
                v11,
                &[("Content-Length", "18446744073709551615")],
                Ok(Length(u64::MAX)),
            ),
            (
                v11,
                &[("Content-Length", "18446744073709551616")],
                Err(BadLength),
            ),
            (v11, &[("Content-Length", "5, 6")], Err(ConflictingLength)),
            (
                v11,
                &[("Content-Length", "5"), ("content-length", "6")],
                Err(ConflictingLength),
            ),
            (v11, &[("Content-Length", "")], Err(BadLength)),
            (v11, &[("Content-Length", "5,")], Err(BadLength)),
            (v11, &[("Content-Length", "+5")], Err(BadLength)),
            (v11, &[("Content-Length", "-1")], Err(BadLength)),
            (v11, &[("Content-Length", "0x10")], Err(BadLength)),
            (v11, &[("Content-Length", "1 2")], Err(BadLength)),
            (v11, &[("Content-Length", "abc")], Err(BadLength)),
            (v11, &[("Transfer-Encoding", "chunked")], Ok(Chunked)),
            (v11, &[("transfer-encoding", "Chunked")], Ok(Chunked)),
            (v11, &[("Transfer-Encoding", " chunked , ")], Ok(Chunked)),
            (
                v11,
                &[("Transfer-Encoding", "gzip, chunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[
                    ("Transfer-Encoding", "gzip"),
                    ("Transfer-Encoding", "chunked"),
                ],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[("Transfer-Encoding", "chunked, gzip")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[("Transfer-Encoding", "chunked, chunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[("Transfer-Encoding", "identity")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[("Transfer-Encoding", "chunked;x=1")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[("Transfer-Encoding", "")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[("Transfer-Encoding", "xchunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v10,
                &[("Transfer-Encoding", "chunked")],
                Err(UnsupportedTransferCoding),
            ),
            (
                v11,
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                Err(LengthAndTransferEncoding),
            ),
            (
                v11,
                &[("Content-Length", "x"), ("Transfer-Encoding", "gzip")],
                Err(LengthAndTransferEncoding),
            ),
            (
                v10,
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                Err(LengthAndTransferEncoding),
            ),
        ];
        for (version, headers, want) in cases {
            let got = request_body_kind(&request(*version, headers));
            assert_eq!(&got, want, "{version:?} {headers:?}");
        }
    }

    #[test]
    fn response_framing_table() {
        use BodyKind::*;
        use FramingError::*;
        let v11 = Version::Http11;
        let v10 = Version::Http10;
        type Case = (
            Version,
            u16,
            &'static str,
            Fields,
            Result<BodyKind, FramingError>,
        );
        let cases: &[Case] = &[
            (v11, 200, "GET", &[], Ok(CloseDelimited)),
            (v10, 200, "GET", &[], Ok(CloseDelimited)),
            (v11, 200, "GET", &[("Content-Length", "10")], Ok(Length(10))),
            (
                v11,
                200,
                "POST",
                &[("Content-Length", "3, 3")],
                Ok(Length(3)),
            ),
            (
                v11,
                200,
                "GET",
                &[("Content-Length", "3, 4")],
                Err(ConflictingLength),
            ),
            (
                v11,
                200,
                "GET",
                &[("Content-Length", "three")],
                Err(BadLength),
            ),
            (
                v11,
                200,
                "GET",
                &[("Transfer-Encoding", "chunked")],
                Ok(Chunked),
            ),
            (
                v11,
                200,
                "GET",
                &[("Transfer-Encoding", "gzip, chunked")],
                Ok(Chunked),
            ),
            (
                v11,
                200,
                "GET",
                &[("Transfer-Encoding", "chunked, gzip")],
                Ok(CloseDelimited),
            ),
            (
                v11,
                200,
                "GET",
                &[("Transfer-Encoding", "gzip")],
                Ok(CloseDelimited),
            ),
            (
                v11,
                200,
                "GET",
                &[("Transfer-Encoding", "")],
                Ok(CloseDelimited),
            ),
            (
                v11,
                200,
                "GET",
                &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                Ok(Chunked),
            ),
            (
                v11,
                200,
                "GET",
                &[("Content-Length", "bad"), ("Transfer-Encoding", "chunked")],
                Ok(Chunked),
            ),
            (
                v10,
                200,
                "GET",
                &[("Transfer-Encoding", "chunked")],
                Ok(CloseDelimited),
            ),
            (v11, 200, "HEAD", &[("Content-Length", "10")], Ok(None)),
            (
                v11,
                200,
                "HEAD",
                &[("Transfer-Encoding", "chunked")],
                Ok(None),
            ),
            (v11, 200, "HEAD", &[("Content-Length", "x, y")], Ok(None)),
            (
                v11,
                200,
                "head",
                &[("Content-Length", "10")],
                Ok(Length(10)),
            ),
            (v11, 100, "POST", &[("Content-Length", "10")], Ok(None)),
            (v11, 101, "GET", &[], Ok(None)),
            (
                v11,
                103,
                "GET",
                &[("Transfer-Encoding", "chunked")],
                Ok(None),
            ),
            (v11, 204, "GET", &[("Content-Length", "10")], Ok(None)),
            (v11, 304, "GET", &[("Content-Length", "10")], Ok(None)),
            (v11, 205, "GET", &[("Content-Length", "0")], Ok(Length(0))),
            (v11, 404, "GET", &[("Content-Length", "9")], Ok(Length(9))),
            (v11, 502, "GET", &[], Ok(CloseDelimited)),
        ];
        for (version, code, method, headers, want) in cases {
            let got = response_body_kind(&response(*version, *code, headers), method);
            assert_eq!(&got, want, "{version:?} {code} {method} {headers:?}");
        }
    }

    #[test]
    fn error_display_and_status() {
        let cases = [
            (
                FramingError::LengthAndTransferEncoding,
                400,
                "both Content-Length and Transfer-Encoding present",
            ),
            (
                FramingError::ConflictingLength,
                400,
                "conflicting Content-Length values",
            ),
            (FramingError::BadLength, 400, "invalid Content-Length"),
            (
                FramingError::UnsupportedTransferCoding,
                501,
                "unsupported transfer coding",
            ),
        ];
        for (err, status, text) in cases {
            assert_eq!(err.status(), status);
            assert_eq!(err.to_string(), text);
        }
    }
}
