//! The outgoing side: body framing, head serialisation and reason phrases.
//!
//! Everything appends to a caller-owned `Vec<u8>`, so a reactor can batch a head and the first
//! body bytes into one write. Names and values are written verbatim: values that came from an
//! untrusted source must pass [`super::is_valid_header_value`] first, or a CR/LF in them would
//! inject header lines.

use super::decode::BodyError;
use super::framing::BodyKind;
use super::headers::{Header, Version};

/// Largest chunk [`BodyEncoder::encode`] emits; bigger writes are split (Pushpin's cap).
pub const CHUNK_SIZE_MAX: usize = 0xffff;

/// Frames an outgoing body.
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    kind: BodyKind,
    /// Payload bytes accepted so far.
    written: u64,
    finished: bool,
}

impl BodyEncoder {
    /// `kind` is the framing announced in the outgoing head.
    pub fn new(kind: BodyKind) -> Self {
        BodyEncoder {
            kind,
            written: 0,
            finished: false,
        }
    }

    /// Append `data` framed for the wire. On error nothing is appended. Writing after
    /// [`finish`](Self::finish) is refused as `LengthExceeded`: the body is already over.
    pub fn encode(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.finished {
            return Err(BodyError::LengthExceeded);
        }
        let len = u64::try_from(data.len()).map_err(|_| BodyError::LengthExceeded)?;
        let total = self
            .written
            .checked_add(len)
            .ok_or(BodyError::LengthExceeded)?;
        match self.kind {
            BodyKind::None => return Err(BodyError::LengthExceeded),
            BodyKind::Length(declared) if total > declared => {
                return Err(BodyError::LengthExceeded)
            }
            BodyKind::Length(_) | BodyKind::CloseDelimited => out.extend_from_slice(data),
            BodyKind::Chunked => {
                // 4 hex digits + 2 CRLFs per chunk at most.
                out.reserve(
                    data.len()
                        .saturating_add(8 * (data.len() / CHUNK_SIZE_MAX + 1)),
                );
                for chunk in data.chunks(CHUNK_SIZE_MAX) {
                    push_hex(out, chunk.len());
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        self.written = total;
        Ok(())
    }

    /// End the body: the last chunk for `Chunked`, a completeness check for `Length`. Calling it
    /// again is a no-op. A close-delimited body ends when the caller closes the connection.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.finished {
            return Ok(());
        }
        match self.kind {
            BodyKind::Length(declared) if self.written < declared => {
                return Err(BodyError::Truncated)
            }
            BodyKind::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
            _ => {}
        }
        self.finished = true;
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Payload bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn kind(&self) -> BodyKind {
        self.kind
    }
}

/// Lowercase hex without leading zeros.
fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(slot) = buf.get_mut(at) {
            *slot = DIGITS.get(n % 16).copied().unwrap_or(b'0');
        }
        n /= 16;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(at..).unwrap_or(&[]));
}

fn push_decimal(out: &mut Vec<u8>, n: u16) {
    let mut buf = [0u8; 5];
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        if let Some(slot) = buf.get_mut(at) {
            // n % 10 < 10, so the cast cannot truncate.
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(at..).unwrap_or(&[]));
}

fn push_headers(out: &mut Vec<u8>, headers: &[Header]) {
    for h in headers {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn headers_len(headers: &[Header]) -> usize {
    headers
        .iter()
        .map(|h| h.name.len().saturating_add(h.value.len()).saturating_add(4))
        .fold(2, usize::saturating_add)
}

/// `METHOD SP target SP version CRLF`, the header lines, then the blank line.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    version: Version,
    headers: &[Header],
) {
    out.reserve(
        (method.len() + 12)
            .saturating_add(target.len())
            .saturating_add(headers_len(headers)),
    );
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    push_headers(out, headers);
}

/// `version SP code SP reason CRLF` (the space stays when `reason` is empty, RFC 9112 4),
/// the header lines, then the blank line.
pub fn write_response_head(
    out: &mut Vec<u8>,
    version: Version,
    code: u16,
    reason: &str,
    headers: &[Header],
) {
    out.reserve((reason.len() + 16).saturating_add(headers_len(headers)));
    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    push_decimal(out, code);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    push_headers(out, headers);
}

/// The RFC 9110 reason phrase for `code` (plus the WebDAV and RFC 6585 codes), `""` if unknown.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::{BodyDecoder, ChunkLimits};
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header::new(name, value.as_bytes())
    }

    #[test]
    fn request_head_bytes() {
        let mut out = b"prefix|".to_vec();
        write_request_head(
            &mut out,
            "POST",
            "/path?q=1",
            Version::Http11,
            &[
                h("Host", "example.com"),
                h("content-length", "5"),
                h("X-Empty", ""),
            ],
        );
        assert_eq!(
            out,
            b"prefix|POST /path?q=1 HTTP/1.1\r\nHost: example.com\r\ncontent-length: 5\r\nX-Empty: \r\n\r\n"
        );
        let mut out = Vec::new();
        write_request_head(&mut out, "GET", "/", Version::Http10, &[]);
        assert_eq!(out, b"GET / HTTP/1.0\r\n\r\n");
    }

    #[test]
    fn response_head_bytes() {
        type Case = (Version, u16, &'static str, &'static [Header], &'static [u8]);
        let cases: &[Case] = &[
            (Version::Http11, 200, "OK", &[], b"HTTP/1.1 200 OK\r\n\r\n"),
            (
                Version::Http10,
                502,
                "Bad Gateway",
                &[],
                b"HTTP/1.0 502 Bad Gateway\r\n\r\n",
            ),
            (Version::Http11, 299, "", &[], b"HTTP/1.1 299 \r\n\r\n"),
            (Version::Http11, 0, "", &[], b"HTTP/1.1 0 \r\n\r\n"),
            (Version::Http11, 65535, "", &[], b"HTTP/1.1 65535 \r\n\r\n"),
        ];
        for (version, code, reason, headers, want) in cases {
            let mut out = Vec::new();
            write_response_head(&mut out, *version, *code, reason, headers);
            assert_eq!(out, *want);
        }
        let mut out = Vec::new();
        let headers = [h("Content-Type", "text/plain"), h("Content-Length", "16")];
        write_response_head(&mut out, Version::Http11, 404, reason_phrase(404), &headers);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\n"
        );
    }

    #[test]
    fn written_heads_parse_back() {
        use super::super::head::{parse_request_head, parse_response_head, HeadLimits};
        let headers = vec![h("Host", "a"), h("X-Multi", "1"), h("x-multi", "2")];
        let mut out = Vec::new();
        write_request_head(&mut out, "PUT", "/x", Version::Http11, &headers);
        let (head, n) = parse_request_head(&out, &HeadLimits::default())
            .expect("ok")
            .expect("complete");
        assert_eq!(
            (head.method.as_str(), head.target.as_str(), n),
            ("PUT", "/x", out.len())
        );
        assert_eq!(head.headers, headers);
        let mut out = Vec::new();
        write_response_head(&mut out, Version::Http10, 431, reason_phrase(431), &headers);
        let (head, n) = parse_response_head(&out, &HeadLimits::default())
            .expect("ok")
            .expect("complete");
        assert_eq!(
            (head.code, head.reason.as_str(), n),
            (431, "Request Header Fields Too Large", out.len())
        );
        assert_eq!(head.version, Version::Http10);
        assert_eq!(head.headers, headers);
    }

    #[test]
    fn reasons() {
        let cases = [
            (200, "OK"),
            (204, "No Content"),
            (400, "Bad Request"),
            (411, "Length Required"),
            (414, "URI Too Long"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (502, "Bad Gateway"),
            (505, "HTTP Version Not Supported"),
            (299, ""),
            (0, ""),
        ];
        for (code, want) in cases {
            assert_eq!(reason_phrase(code), want, "{code}");
        }
    }

    #[test]
    fn chunked_encoding_bytes() {
        let mut enc = BodyEncoder::new(BodyKind::Chunked);
        let mut out = Vec::new();
        enc.encode(b"hello", &mut out).expect("ok");
        enc.encode(b"", &mut out).expect("ok");
        enc.encode(&[b'x'; 26], &mut out).expect("ok");
        assert!(!enc.is_finished());
        enc.finish(&mut out).expect("ok");
        assert!(enc.is_finished());
        let mut want = b"5\r\nhello\r\n1a\r\n".to_vec();
        want.extend_from_slice(&[b'x'; 26]);
        want.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, want);
        // finish is idempotent; data afterwards is refused.
        enc.finish(&mut out).expect("ok");
        assert_eq!(out, want);
        assert_eq!(
            enc.encode(b"late", &mut out),
            Err(BodyError::LengthExceeded)
        );
        assert_eq!(out, want);
        assert_eq!(enc.written(), 31);
    }

    #[test]
    fn chunked_splits_large_writes() {
        let data: Vec<u8> = (0..CHUNK_SIZE_MAX * 2 + 10)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut enc = BodyEncoder::new(BodyKind::Chunked);
        let mut out = Vec::new();
        enc.encode(&data, &mut out).expect("ok");
        assert!(out.starts_with(b"ffff\r\n"));
        let second = 6 + CHUNK_SIZE_MAX + 2;
        assert_eq!(&out[second..second + 6], b"ffff\r\n");
        let third = second * 2;
        assert_eq!(&out[third..third + 3], b"a\r\n");
        assert_eq!(out.len(), third + 3 + 10 + 2);
    }

    #[test]
    fn length_encoding() {
        let mut enc = BodyEncoder::new(BodyKind::Length(5));
        let mut out = Vec::new();
        enc.encode(b"he", &mut out).expect("ok");
        assert_eq!(
            enc.encode(b"llo!", &mut out),
            Err(BodyError::LengthExceeded)
        );
        assert_eq!(out, b"he");
        assert_eq!(enc.finish(&mut out), Err(BodyError::Truncated));
        assert!(!enc.is_finished());
        enc.encode(b"llo", &mut out).expect("ok");
        enc.finish(&mut out).expect("ok");
        assert_eq!(out, b"hello");
        assert!(enc.is_finished());

        let mut enc = BodyEncoder::new(BodyKind::Length(0));
        assert_eq!(enc.encode(b"x", &mut out), Err(BodyError::LengthExceeded));
        assert_eq!(enc.finish(&mut out), Ok(()));
    }

    #[test]
    fn none_and_close_encoding() {
        let mut out = Vec::new();
        let mut enc = BodyEncoder::new(BodyKind::None);
        assert_eq!(enc.encode(b"", &mut out), Ok(()));
        assert_eq!(enc.encode(b"x", &mut out), Err(BodyError::LengthExceeded));
        assert_eq!(enc.finish(&mut out), Ok(()));
        assert!(out.is_empty());

        let mut enc = BodyEncoder::new(BodyKind::CloseDelimited);
        enc.encode(b"raw\r\n0\r\n\r\n", &mut out).expect("ok");
        enc.finish(&mut out).expect("ok");
        assert_eq!(out, b"raw\r\n0\r\n\r\n");
        assert_eq!(enc.kind(), BodyKind::CloseDelimited);
    }

    #[test]
    fn round_trip_through_decoder() {
        let pieces: &[&[u8]] = &[
            b"",
            b"a",
            b"hello world",
            &[0u8; 70_000],
            b"\r\n0\r\n\r\n",
            b"end",
        ];
        let want: Vec<u8> = pieces.concat();
        let total = u64::try_from(want.len()).expect("fits");
        for kind in [
            BodyKind::Chunked,
            BodyKind::Length(total),
            BodyKind::CloseDelimited,
        ] {
            let mut enc = BodyEncoder::new(kind);
            let mut wire = Vec::new();
            for p in pieces {
                enc.encode(p, &mut wire).expect("ok");
            }
            enc.finish(&mut wire).expect("ok");
            wire.extend_from_slice(b"NEXT");

            let mut dec = BodyDecoder::new(kind, ChunkLimits::default());
            let mut got = Vec::new();
            let mut at = 0;
            // Feed in odd-sized slices to cross chunk boundaries at arbitrary points.
            while at < wire.len() && !dec.is_done() {
                let end = (at + 997).min(wire.len());
                let step = dec.decode(&wire[at..end]).expect("valid");
                got.extend_from_slice(&wire[at..end][step.data.clone()]);
                at += step.consumed;
            }
            if kind == BodyKind::CloseDelimited {
                dec.finish_on_eof().expect("ok");
                assert_eq!(got.len(), want.len() + 4);
                got.truncate(want.len());
            } else {
                assert!(dec.is_done());
                assert_eq!(&wire[at..], b"NEXT");
            }
            assert_eq!(got, want, "{kind:?}");
        }
    }
}
