//! Request and response heads: parsing with httparse, plus the semantic helpers callers ask of a head.
//!
//! Limits policy: a head is refused (error, the caller answers 431/414/400 and closes) as soon as it
//! cannot fit `HeadLimits::max_head` bytes, holds more than `max_headers` fields, or its request
//! target exceeds `max_uri`. Only the first `max_head` bytes of the buffer are ever looked at, so the
//! parse cost per call is bounded no matter how much the peer has sent.
//!
//! httparse does the lexing (token/field-name validation, obs-fold rejection, leading empty lines
//! before the start line per RFC 9112 2.2). It also accepts bare-LF line endings, as RFC 9112 2.2
//! permits a recipient to; `consumed` then ends after the final LF.

use std::fmt;

use super::headers::{header_has_token, header_value, header_value_str, Header, Version};

/// Default (and stack-array) cap on header fields per head; Pushpin's `HEADERS_MAX`.
pub const HEADERS_MAX: usize = 64;
/// Default cap on the request target length; Pushpin's `URI_SIZE_MAX`.
pub const URI_SIZE_MAX: usize = 4096;
/// Default cap on a whole head (start line, fields, final blank line).
pub const HEAD_SIZE_MAX: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub code: u16,
    pub reason: String,
    pub headers: Vec<Header>,
}

/// Connection persistence rules of RFC 9112 9.3, shared by both heads. `close` always wins.
fn persistent(version: Version, headers: &[Header]) -> bool {
    if header_has_token(headers, "connection", "close") {
        return false;
    }
    match version {
        Version::Http11 => true,
        Version::Http10 => header_has_token(headers, "connection", "keep-alive"),
    }
}

impl RequestHead {
    /// First value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        header_value(&self.headers, name)
    }

    /// First value of `name`, `None` if absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        header_value_str(&self.headers, name)
    }

    /// Does the comma-list header `name` contain `token` (case-insensitive)?
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        header_has_token(&self.headers, name, token)
    }

    /// May the connection carry another request after this one's response?
    pub fn keep_alive(&self) -> bool {
        persistent(self.version, &self.headers)
    }

    /// Does the client wait for `100 Continue` before sending the body? RFC 9110 10.1.1: a server
    /// must ignore the expectation in an HTTP/1.0 request.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11 && self.has_token("expect", "100-continue")
    }
}

impl ResponseHead {
    /// First value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        header_value(&self.headers, name)
    }

    /// First value of `name`, `None` if absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        header_value_str(&self.headers, name)
    }

    /// Does the comma-list header `name` contain `token` (case-insensitive)?
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        header_has_token(&self.headers, name, token)
    }

    /// May the connection be reused after this response? The caller must also treat a
    /// close-delimited body as the end of the connection.
    pub fn keep_alive(&self) -> bool {
        persistent(self.version, &self.headers)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Most bytes a head may take, final blank line included.
    pub max_head: usize,
    /// Most header fields.
    pub max_headers: usize,
    /// Longest request target (ignored for responses).
    pub max_uri: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head: HEAD_SIZE_MAX,
            max_headers: HEADERS_MAX,
            max_uri: URI_SIZE_MAX,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    TooManyHeaders,
    UriTooLong,
    Malformed(&'static str),
    UnsupportedVersion,
}

impl HeadError {
    /// Suggested status for answering a client: 431, 431, 414, 400, 505.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge | HeadError::TooManyHeaders => 431,
            HeadError::UriTooLong => 414,
            HeadError::Malformed(_) => 400,
            HeadError::UnsupportedVersion => 505,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => f.write_str("header block exceeds the size limit"),
            HeadError::TooManyHeaders => f.write_str("too many header fields"),
            HeadError::UriTooLong => f.write_str("request target exceeds the length limit"),
            HeadError::Malformed(what) => write!(f, "malformed message head: {what}"),
            HeadError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
        }
    }
}

impl std::error::Error for HeadError {}

/// The part of `buf` a head may occupy.
fn window<'a>(buf: &'a [u8], limits: &HeadLimits) -> &'a [u8] {
    buf.get(..limits.max_head).unwrap_or(buf)
}

/// Header slots to hand httparse. A field line takes at least 3 bytes (`a:` LF), so more than
/// `len / 3 + 1` slots can never be filled: that bounds the heap fallback by bytes actually received
/// even when a caller configures a huge `max_headers`.
fn heap_slots(limits: &HeadLimits, window_len: usize) -> Vec<httparse::Header<'static>> {
    let count = limits.max_headers.min(window_len / 3 + 1);
    vec![httparse::EMPTY_HEADER; count]
}

/// Parse a request head from the start of `buf`.
///
/// `Ok(None)`: incomplete and `buf.len() < limits.max_head`, read more. `Ok(Some((head, consumed)))`:
/// `consumed` covers any leading empty lines, the head and its final blank line; the body (or the
/// next pipelined request) starts at `buf[consumed..]`.
pub fn parse_request_head(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let win = window(buf, limits);
    if limits.max_headers <= HEADERS_MAX {
        let mut slots = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let slots = slots.get_mut(..limits.max_headers).unwrap_or(&mut []);
        parse_request_in(win, buf.len(), limits, slots)
    } else {
        let mut slots = heap_slots(limits, win.len());
        parse_request_in(win, buf.len(), limits, &mut slots)
    }
}

fn parse_request_in<'b>(
    win: &'b [u8],
    buf_len: usize,
    limits: &HeadLimits,
    slots: &mut [httparse::Header<'b>],
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut req = httparse::Request::new(slots);
    let status = req.parse(win).map_err(|e| map_error(e, win, true))?;
    match status {
        httparse::Status::Complete(consumed) => {
            let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version)
            else {
                return Err(HeadError::Malformed("incomplete request line"));
            };
            if target.len() > limits.max_uri {
                return Err(HeadError::UriTooLong);
            }
            let head = RequestHead {
                method: method.to_string(),
                target: target.to_string(),
                version: version_from_minor(minor)?,
                headers: own_headers(req.headers),
            };
            Ok(Some((head, consumed)))
        }
        httparse::Status::Partial => {
            // A 414 is more useful to the client than a 431 when the URI is what overflowed, and
            // it can be reported before the whole head arrives.
            let uri_len = match req.path {
                Some(path) => path.len(),
                None => partial_target_len(win),
            };
            if uri_len > limits.max_uri {
                return Err(HeadError::UriTooLong);
            }
            too_large_or_more(buf_len, limits)
        }
    }
}

/// Parse a response head from the start of `buf`; same contract as [`parse_request_head`].
/// 1xx heads parse like any other; the caller decides whether to wait for the final response.
pub fn parse_response_head(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let win = window(buf, limits);
    if limits.max_headers <= HEADERS_MAX {
        let mut slots = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let slots = slots.get_mut(..limits.max_headers).unwrap_or(&mut []);
        parse_response_in(win, buf.len(), limits, slots)
    } else {
        let mut slots = heap_slots(limits, win.len());
        parse_response_in(win, buf.len(), limits, &mut slots)
    }
}

fn parse_response_in<'b>(
    win: &'b [u8],
    buf_len: usize,
    limits: &HeadLimits,
    slots: &mut [httparse::Header<'b>],
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut res = httparse::Response::new(slots);
    let status = res.parse(win).map_err(|e| map_error(e, win, false))?;
    match status {
        httparse::Status::Complete(consumed) => {
            let (Some(minor), Some(code)) = (res.version, res.code) else {
                return Err(HeadError::Malformed("incomplete status line"));
            };
            // RFC 9110 15: status codes are 100..=599 in practice; anything below 100 has no class.
            if code < 100 {
                return Err(HeadError::Malformed("invalid status code"));
            }
            let head = ResponseHead {
                version: version_from_minor(minor)?,
                code,
                reason: res.reason.unwrap_or("").to_string(),
                headers: own_headers(res.headers),
            };
            Ok(Some((head, consumed)))
        }
        httparse::Status::Partial => too_large_or_more(buf_len, limits),
    }
}

/// An incomplete head is an error exactly when the buffer already holds `max_head` bytes.
fn too_large_or_more<T>(buf_len: usize, limits: &HeadLimits) -> Result<Option<T>, HeadError> {
    if buf_len >= limits.max_head {
        Err(HeadError::TooLarge)
    } else {
        Ok(None)
    }
}

fn version_from_minor(minor: u8) -> Result<Version, HeadError> {
    match minor {
        0 => Ok(Version::Http10),
        1 => Ok(Version::Http11),
        _ => Err(HeadError::UnsupportedVersion),
    }
}

fn own_headers(parsed: &[httparse::Header<'_>]) -> Vec<Header> {
    let mut out = recycled_headers();
    // Reuse the recycled fields' storage: on a keep-alive connection the next head has much the same
    // fields, so a parse usually allocates nothing for them. Fields get a little room to spare so a
    // recycled field rarely has to grow for the next head's different value.
    let reused = out.len().min(parsed.len());
    for (slot, h) in out.iter_mut().zip(parsed) {
        slot.name.clear();
        slot.name.reserve(h.name.len().max(FIELD_NAME_ROOM));
        slot.name.push_str(h.name);
        slot.value.clear();
        slot.value.reserve(h.value.len().max(FIELD_VALUE_ROOM));
        slot.value.extend_from_slice(h.value);
    }
    out.truncate(reused);
    out.reserve(parsed.len() - reused);
    out.extend(parsed.iter().skip(reused).map(|h| {
        let mut name = String::with_capacity(h.name.len().max(FIELD_NAME_ROOM));
        name.push_str(h.name);
        let mut value = Vec::with_capacity(h.value.len().max(FIELD_VALUE_ROOM));
        value.extend_from_slice(h.value);
        Header { name, value }
    }));
    out
}

/// Minimum storage of a parsed field's name and value (most fit).
const FIELD_NAME_ROOM: usize = 24;
const FIELD_VALUE_ROOM: usize = 48;

/// Header lists kept per thread for reuse by the next parsed head, and the bounds that keep the
/// pool from holding much memory: a handful of lists of ordinary-sized fields.
const RECYCLE_LISTS_MAX: usize = 64;
const RECYCLE_FIELDS_MAX: usize = 32;
const RECYCLE_FIELD_BYTES_MAX: usize = 256;

thread_local! {
    static HEADER_LISTS: std::cell::RefCell<Vec<Vec<Header>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn recycled_headers() -> Vec<Header> {
    HEADER_LISTS
        .try_with(|lists| lists.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Free this thread's pooled header lists (a burst of connections has ended: see `crate::memory`).
pub fn release_header_pool() {
    let _ = HEADER_LISTS.try_with(|lists| {
        if let Ok(mut lists) = lists.try_borrow_mut() {
            *lists = Vec::new();
        }
    });
}

/// Gives a dropped head's field storage back to this thread's pool, unless it is unusually large.
fn recycle_headers(mut headers: Vec<Header>) {
    if headers.capacity() == 0 || headers.capacity() > RECYCLE_FIELDS_MAX {
        return;
    }
    headers.retain(|h| {
        h.name.capacity() <= RECYCLE_FIELD_BYTES_MAX
            && h.value.capacity() <= RECYCLE_FIELD_BYTES_MAX
    });
    let _ = HEADER_LISTS.try_with(|lists| {
        if let Ok(mut lists) = lists.try_borrow_mut() {
            if lists.len() < RECYCLE_LISTS_MAX {
                lists.push(headers);
            }
        }
    });
}

impl Drop for RequestHead {
    fn drop(&mut self) {
        recycle_headers(std::mem::take(&mut self.headers));
    }
}

impl Drop for ResponseHead {
    fn drop(&mut self) {
        recycle_headers(std::mem::take(&mut self.headers));
    }
}

/// The start line after any leading empty lines, up to (not including) its line ending.
fn start_line(win: &[u8]) -> &[u8] {
    let begin = win
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(win.len());
    let rest = win.get(begin..).unwrap_or(&[]);
    let end = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or(rest)
}

/// Length of the (possibly still arriving) request target: from the first SP to the next SP or
/// line end.
fn partial_target_len(win: &[u8]) -> usize {
    let line = start_line(win);
    match line.iter().position(|&b| b == b' ') {
        Some(sp) => {
            let after = line.get(sp + 1..).unwrap_or(&[]);
            after.iter().position(|&b| b == b' ').unwrap_or(after.len())
        }
        None => 0,
    }
}

/// httparse reports any bad version token as `Error::Version`. Tell a well-formed but unsupported
/// version (`HTTP/2.0`, `HTTP/1.2`: answer 505) from garbage (answer 400).
fn map_error(err: httparse::Error, win: &[u8], request: bool) -> HeadError {
    match err {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
        httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
        httparse::Error::Status => HeadError::Malformed("invalid status line"),
        httparse::Error::Token => HeadError::Malformed("invalid request line"),
        httparse::Error::Version => {
            let line = start_line(win);
            let token = if request {
                line.rsplit(|&b| b == b' ').next().unwrap_or(&[])
            } else {
                line.split(|&b| b == b' ').next().unwrap_or(&[])
            };
            if looks_like_other_version(token) {
                HeadError::UnsupportedVersion
            } else {
                HeadError::Malformed("invalid HTTP version")
            }
        }
    }
}

/// `HTTP/` followed by a digit and then only digits and dots, and not a prefix of a version we
/// speak (which would mean the failure lay elsewhere, e.g. a doubled space before it).
fn looks_like_other_version(token: &[u8]) -> bool {
    let Some(rest) = token.strip_prefix(b"HTTP/") else {
        return false;
    };
    let shaped = rest.first().is_some_and(u8::is_ascii_digit)
        && rest.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    shaped && !b"1.0".starts_with(rest) && !b"1.1".starts_with(rest)
}

#[cfg(test)]
mod tests {

    #[test]
    fn recycled_field_storage_never_leaks_into_the_next_head() {
        let limits = HeadLimits::default();
        let first = b"GET /a HTTP/1.1\r\nHost: first.example\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaa\r\nX-Third: 3\r\n\r\n";
        let second = b"POST /b HTTP/1.1\r\nH: 2\r\n\r\n";
        for _ in 0..3 {
            let (head, _) = parse_request_head(first, &limits).unwrap().unwrap();
            assert_eq!(head.headers.len(), 3);
            drop(head);
            let (head, _) = parse_request_head(second, &limits).unwrap().unwrap();
            assert_eq!(head.headers, vec![Header::new("H", b"2")]);
            let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
            let (r, _) = parse_response_head(resp, &limits).unwrap().unwrap();
            assert_eq!(r.headers, vec![Header::new("Content-Length", b"0")]);
        }
    }
    use super::*;

    type ReqResult = Result<Option<(RequestHead, usize)>, HeadError>;

    fn req(buf: &[u8]) -> ReqResult {
        parse_request_head(buf, &HeadLimits::default())
    }

    fn names(h: &[Header]) -> Vec<(String, Vec<u8>)> {
        h.iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect()
    }

    #[test]
    fn good_requests() {
        struct Case {
            input: &'static [u8],
            method: &'static str,
            target: &'static str,
            version: Version,
            headers: &'static [(&'static str, &'static [u8])],
            consumed: usize,
        }
        let cases = [
            Case {
                input: b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
                method: "GET",
                target: "/",
                version: Version::Http11,
                headers: &[("Host", b"example.com")],
                consumed: 37,
            },
            Case {
                input:
                    b"POST /a?b=c HTTP/1.0\r\nContent-Length: 5\r\nX-Raw: caf\xc3\xa9\r\n\r\nhello",
                method: "POST",
                target: "/a?b=c",
                version: Version::Http10,
                headers: &[("Content-Length", b"5"), ("X-Raw", b"caf\xc3\xa9")],
                consumed: 57,
            },
            Case {
                input: b"\r\n\r\nGET /x HTTP/1.1\r\nhost:  spaced  \r\n\r\nGET /next",
                method: "GET",
                target: "/x",
                version: Version::Http11,
                headers: &[("host", b"spaced")],
                consumed: 40,
            },
            Case {
                input: b"OPTIONS * HTTP/1.1\r\n\r\n",
                method: "OPTIONS",
                target: "*",
                version: Version::Http11,
                headers: &[],
                consumed: 22,
            },
            Case {
                input: b"GET http://h/p HTTP/1.1\nA: 1\nb:\n\n",
                method: "GET",
                target: "http://h/p",
                version: Version::Http11,
                headers: &[("A", b"1"), ("b", b"")],
                consumed: 33,
            },
        ];
        for c in cases {
            let (head, consumed) = req(c.input).expect("ok").expect("complete");
            assert_eq!(head.method, c.method);
            assert_eq!(head.target, c.target);
            assert_eq!(head.version, c.version);
            let want: Vec<(String, Vec<u8>)> = c
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect();
            assert_eq!(names(&head.headers), want);
            assert_eq!(
                consumed,
                c.consumed,
                "{:?}",
                String::from_utf8_lossy(c.input)
            );
            // Every strict prefix is incomplete, never an error.
            for cut in 0..c.consumed {
                assert_eq!(
                    req(&c.input[..cut]).map(|o| o.is_some()),
                    Ok(false),
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn bad_requests() {
        let cases: &[(&[u8], HeadError)] = &[
            (
                b"GET  / HTTP/1.1\r\n\r\n",
                HeadError::Malformed("invalid request line"),
            ),
            (
                b"G(T / HTTP/1.1\r\n\r\n",
                HeadError::Malformed("invalid request line"),
            ),
            (
                b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                HeadError::Malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\n: x\r\n\r\n",
                HeadError::Malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\nA: x\r\n folded\r\n\r\n",
                HeadError::Malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\nA: x\x00y\r\n\r\n",
                HeadError::Malformed("invalid header value"),
            ),
            (
                b"GET / HTTP/1.1\rX",
                HeadError::Malformed("invalid line ending"),
            ),
            (b"GET / HTTP/1.2\r\n\r\n", HeadError::UnsupportedVersion),
            (b"GET / HTTP/2.0\r\n\r\n", HeadError::UnsupportedVersion),
            (b"GET / HTTP/3", HeadError::UnsupportedVersion),
            (
                b"GET / HTTPS/1.1\r\n\r\n",
                HeadError::Malformed("invalid HTTP version"),
            ),
            (
                b"GET / HTTP/1.x\r\n\r\n",
                HeadError::Malformed("invalid HTTP version"),
            ),
            (
                b"GET / http/1.1\r\n\r\n",
                HeadError::Malformed("invalid HTTP version"),
            ),
            (
                b"GET /\r\n\r\n",
                HeadError::Malformed("invalid request line"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                req(input).err().as_ref(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn too_large_exactly_at_max_head() {
        let limits = HeadLimits {
            max_head: 64,
            ..HeadLimits::default()
        };
        let mut buf = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        while buf.len() < 63 {
            buf.push(b'a');
        }
        assert_eq!(parse_request_head(&buf, &limits), Ok(None));
        buf.push(b'a');
        assert_eq!(
            parse_request_head(&buf, &limits).err(),
            Some(HeadError::TooLarge)
        );
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            parse_request_head(&buf, &limits).err(),
            Some(HeadError::TooLarge)
        );

        // A head of exactly max_head bytes fits, even with more bytes behind it.
        let mut exact = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        while exact.len() < 60 {
            exact.push(b'a');
        }
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), 64);
        exact.extend_from_slice(b"body bytes");
        let (_, consumed) = parse_request_head(&exact, &limits)
            .expect("ok")
            .expect("complete");
        assert_eq!(consumed, 64);
        let (_, consumed) = parse_request_head(&exact[..64], &limits)
            .expect("ok")
            .expect("complete");
        assert_eq!(consumed, 64);
        assert_eq!(parse_request_head(&exact[..63], &limits), Ok(None));
    }

    fn with_headers(n: usize) -> Vec<u8> {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..n {
            buf.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        buf
    }

    #[test]
    fn header_count_limit() {
        let (head, _) = req(&with_headers(HEADERS_MAX))
            .expect("ok")
            .expect("complete");
        assert_eq!(head.headers.len(), HEADERS_MAX);
        assert_eq!(
            req(&with_headers(HEADERS_MAX + 1)).err(),
            Some(HeadError::TooManyHeaders)
        );

        let small = HeadLimits {
            max_headers: 2,
            ..HeadLimits::default()
        };
        assert!(parse_request_head(&with_headers(2), &small)
            .expect("ok")
            .is_some());
        assert_eq!(
            parse_request_head(&with_headers(3), &small).err(),
            Some(HeadError::TooManyHeaders)
        );
        let none = HeadLimits {
            max_headers: 0,
            ..HeadLimits::default()
        };
        assert!(parse_request_head(&with_headers(0), &none)
            .expect("ok")
            .is_some());
        assert_eq!(
            parse_request_head(&with_headers(1), &none).err(),
            Some(HeadError::TooManyHeaders)
        );

        // Above HEADERS_MAX the slots come from the heap and the configured cap still holds.
        let big = HeadLimits {
            max_head: 1 << 20,
            max_headers: 200,
            max_uri: URI_SIZE_MAX,
        };
        assert_eq!(
            parse_request_head(&with_headers(200), &big)
                .expect("ok")
                .map(|(h, _)| h.headers.len()),
            Some(200)
        );
        assert_eq!(
            parse_request_head(&with_headers(201), &big).err(),
            Some(HeadError::TooManyHeaders)
        );
        let huge = HeadLimits {
            max_headers: usize::MAX,
            ..big
        };
        assert_eq!(
            parse_request_head(&with_headers(500), &huge)
                .expect("ok")
                .map(|(h, _)| h.headers.len()),
            Some(500)
        );
        // Smallest possible field lines must not run out of slots in the heap fallback.
        let mut tiny = b"GET / HTTP/1.1\n".to_vec();
        tiny.extend_from_slice(&b"a:\n".repeat(300));
        tiny.push(b'\n');
        assert_eq!(
            parse_request_head(&tiny, &huge)
                .expect("ok")
                .map(|(h, _)| h.headers.len()),
            Some(300)
        );
    }

    #[test]
    fn uri_length_limit() {
        let limits = HeadLimits {
            max_uri: 10,
            ..HeadLimits::default()
        };
        let ok = b"GET /123456789 HTTP/1.1\r\n\r\n";
        assert!(parse_request_head(ok, &limits).expect("ok").is_some());
        let long = b"GET /1234567890 HTTP/1.1\r\n\r\n";
        assert_eq!(
            parse_request_head(long, &limits).err(),
            Some(HeadError::UriTooLong)
        );
        // Reported while the request line is still arriving, and with headers still pending.
        assert_eq!(
            parse_request_head(b"GET /1234567890", &limits).err(),
            Some(HeadError::UriTooLong)
        );
        assert_eq!(parse_request_head(b"GET /123456789", &limits), Ok(None));
        assert_eq!(
            parse_request_head(b"\r\nGET /1234567890 HTTP/1.1\r\nA: b", &limits).err(),
            Some(HeadError::UriTooLong)
        );
        // Default: 4096.
        let mut buf = b"GET /".to_vec();
        buf.extend_from_slice(&[b'a'; URI_SIZE_MAX]);
        assert_eq!(req(&buf).err(), Some(HeadError::UriTooLong));
        buf.truncate(URI_SIZE_MAX);
        buf.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert!(req(&buf).expect("ok").is_some());
    }

    #[test]
    fn request_semantics() {
        let cases: &[(&[u8], bool, bool)] = &[
            // input, keep_alive, expects_continue
            (b"GET / HTTP/1.1\r\n\r\n", true, false),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false, false),
            (
                b"GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n",
                false,
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false, false),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                true,
                false,
            ),
            (
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n",
                false,
                false,
            ),
            (
                b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n",
                true,
                true,
            ),
            (
                b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
                false,
                false,
            ),
            (
                b"PUT / HTTP/1.1\r\nExpect: 100-continued\r\n\r\n",
                true,
                false,
            ),
        ];
        for (input, ka, cont) in cases {
            let (head, _) = req(input).expect("ok").expect("complete");
            assert_eq!(
                head.keep_alive(),
                *ka,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                head.expects_continue(),
                *cont,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let (head, _) = req(b"GET / HTTP/1.1\r\nX-A: \xff\r\nx-b: ok\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert_eq!(head.header("x-a"), Some(&b"\xff"[..]));
        assert_eq!(head.header_str("x-a"), None);
        assert_eq!(head.header_str("X-B"), Some("ok"));
        assert!(head.has_token("x-b", "OK"));
    }

    #[test]
    fn responses() {
        type Want = Option<(Version, u16, &'static str, usize, usize)>;
        let cases: &[(&[u8], Result<Want, HeadError>)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                Ok(Some((Version::Http11, 200, "OK", 1, 38))),
            ),
            (
                b"HTTP/1.0 404 Not Found\r\n\r\nbody",
                Ok(Some((Version::Http10, 404, "Not Found", 0, 26))),
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200",
                Ok(Some((Version::Http11, 100, "Continue", 0, 25))),
            ),
            (
                b"HTTP/1.1 204\r\n\r\n",
                Ok(Some((Version::Http11, 204, "", 0, 16))),
            ),
            (
                b"\r\nHTTP/1.1 200 \r\n\r\n",
                Ok(Some((Version::Http11, 200, "", 0, 19))),
            ),
            (
                b"HTTP/1.1 200 \xe9t\xe9\r\n\r\n",
                Ok(Some((Version::Http11, 200, "", 0, 20))),
            ),
            (b"HTTP/1.1 200 OK\r\nX: 1", Ok(None)),
            (
                b"HTTP/1.1 099 Low\r\n\r\n",
                Err(HeadError::Malformed("invalid status code")),
            ),
            (
                b"HTTP/1.1 20 OK\r\n\r\n",
                Err(HeadError::Malformed("invalid status line")),
            ),
            (
                b"HTTP/1.1 2000 OK\r\n\r\n",
                Err(HeadError::Malformed("invalid status line")),
            ),
            (b"HTTP/2 200 OK\r\n\r\n", Err(HeadError::UnsupportedVersion)),
            (
                b"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
                Err(HeadError::Malformed("invalid header name")),
            ),
            (
                b"ICY 200 OK\r\n\r\n",
                Err(HeadError::Malformed("invalid HTTP version")),
            ),
        ];
        for (input, want) in cases {
            let got = parse_response_head(input, &HeadLimits::default())
                .map(|o| o.map(|(h, n)| (h.version, h.code, h.reason.clone(), h.headers.len(), n)));
            let want = want
                .clone()
                .map(|o| o.map(|(v, c, r, hl, n)| (v, c, r.to_string(), hl, n)));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
        }
        let limits = HeadLimits {
            max_head: 20,
            ..HeadLimits::default()
        };
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nA:", &limits),
            Ok(None)
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nA: ", &limits).err(),
            Some(HeadError::TooLarge)
        );
    }

    #[test]
    fn response_keep_alive() {
        let cases: &[(&[u8], bool)] = &[
            (b"HTTP/1.1 200 OK\r\n\r\n", true),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false),
            (b"HTTP/1.0 200 OK\r\n\r\n", false),
            (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", true),
        ];
        for (input, want) in cases {
            let (head, _) = parse_response_head(input, &HeadLimits::default())
                .expect("ok")
                .expect("complete");
            assert_eq!(head.keep_alive(), *want);
            assert!(head.header("connection").is_some() == head.header_str("Connection").is_some());
        }
    }

    #[test]
    fn error_display_and_status() {
        let cases = [
            (
                HeadError::TooLarge,
                431,
                "header block exceeds the size limit",
            ),
            (HeadError::TooManyHeaders, 431, "too many header fields"),
            (
                HeadError::UriTooLong,
                414,
                "request target exceeds the length limit",
            ),
            (
                HeadError::Malformed("invalid header name"),
                400,
                "malformed message head: invalid header name",
            ),
            (
                HeadError::UnsupportedVersion,
                505,
                "unsupported HTTP version",
            ),
        ];
        for (err, status, text) in cases {
            assert_eq!(err.status(), status);
            assert_eq!(err.to_string(), text);
        }
    }
}
