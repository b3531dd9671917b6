//! Where HTTP/1.1 messages end: request framing for the origin server, response framing for the load
//! client. Only what framing needs is read from a head (version, status, Content-Length,
//! Transfer-Encoding, Connection); bodies are skipped, never stored.
//!
//! Both framers are fed the unconsumed bytes of a connection from their start and say how many they
//! used, so the caller owns the buffer and may feed it in pieces of any size.

use std::fmt;

/// Largest request or response head accepted; bigger ones are an error, not a reason to grow.
pub const HEAD_MAX: usize = 64 * 1024;
/// Largest total size of chunk extensions on one chunk-size line.
pub const CHUNK_EXT_MAX: usize = 4 * 1024;
/// Largest total size of a chunked trailer section.
pub const TRAILER_MAX: usize = 8 * 1024;
/// Hex digits in a chunk size; 15 keeps the size below 2^60.
const CHUNK_SIZE_DIGITS_MAX: u32 = 15;
/// Decimal digits in a Content-Length; 18 keeps it below 10^18.
const CONTENT_LENGTH_DIGITS_MAX: usize = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    HeadTooLarge,
    BadStartLine,
    BadHeader,
    BadContentLength,
    BadTransferEncoding,
    BadChunk,
    ChunkExtTooLarge,
    TrailerTooLarge,
    Upgrade,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self {
            FrameError::HeadTooLarge => "message head larger than the limit",
            FrameError::BadStartLine => "malformed request or status line",
            FrameError::BadHeader => "malformed header line",
            FrameError::BadContentLength => "invalid or conflicting Content-Length",
            FrameError::BadTransferEncoding => "unsupported Transfer-Encoding",
            FrameError::BadChunk => "malformed chunked body",
            FrameError::ChunkExtTooLarge => "chunk extensions larger than the limit",
            FrameError::TrailerTooLarge => "chunked trailer larger than the limit",
            FrameError::Upgrade => "protocol upgrade is not supported",
        };
        f.write_str(reason)
    }
}

impl std::error::Error for FrameError {}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What framing needs from one head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    minor: u8,
    status: u16,
    content_length: Option<u64>,
    te_present: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

impl Head {
    fn persistent(&self) -> bool {
        if self.minor >= 1 {
            !self.close
        } else {
            self.keep_alive && !self.close
        }
    }
}

/// Offset just past the blank line ending the head at the start of `buf`, if it is all there.
/// Bare LF line ends are accepted alongside CRLF.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = buf.get(from..)?.iter().position(|b| *b == b'\n') {
        let lf = from + rel;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            _ => from = lf + 1,
        }
    }
    None
}

fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn http_minor(version: &[u8]) -> Result<u8, FrameError> {
    match version {
        b"HTTP/1.1" => Ok(1),
        b"HTTP/1.0" => Ok(0),
        _ => Err(FrameError::BadStartLine),
    }
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(b))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or(&[])
}

fn parse_content_length(value: &[u8]) -> Result<u64, FrameError> {
    if value.is_empty()
        || value.len() > CONTENT_LENGTH_DIGITS_MAX
        || !value.iter().all(u8::is_ascii_digit)
    {
        return Err(FrameError::BadContentLength);
    }
    let text = std::str::from_utf8(value).map_err(|_| FrameError::BadContentLength)?;
    text.parse().map_err(|_| FrameError::BadContentLength)
}

/// Parses a head; `response` chooses a status line over a request line.
fn parse_head(head: &[u8], response: bool) -> Result<Head, FrameError> {
    let mut it = lines(head);
    let start = it.next().ok_or(FrameError::BadStartLine)?;
    let mut parsed = Head {
        minor: 1,
        status: 0,
        content_length: None,
        te_present: false,
        chunked: false,
        close: false,
        keep_alive: false,
    };
    if response {
        let version = start.get(..8).ok_or(FrameError::BadStartLine)?;
        parsed.minor = http_minor(version)?;
        let code = start.get(9..12).ok_or(FrameError::BadStartLine)?;
        let space_ok = start.get(8) == Some(&b' ') && matches!(start.get(12), None | Some(b' '));
        if !space_ok || !code.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadStartLine);
        }
        parsed.status = code
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    } else {
        let mut parts = start.split(|b| *b == b' ');
        let (method, target, version) = (parts.next(), parts.next(), parts.next());
        match (method, target, version, parts.next()) {
            (Some(m), Some(t), Some(v), None) if is_token(m) && !t.is_empty() => {
                parsed.minor = http_minor(v)?;
            }
            _ => return Err(FrameError::BadStartLine),
        }
    }
    for line in it {
        if line.is_empty() {
            continue;
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(FrameError::BadHeader);
        }
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or(FrameError::BadHeader)?;
        let name = line.get(..colon).unwrap_or(&[]);
        let value = trim(line.get(colon + 1..).unwrap_or(&[]));
        if !is_token(name) {
            return Err(FrameError::BadHeader);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value)?;
            if parsed.content_length.is_some_and(|old| old != n) {
                return Err(FrameError::BadContentLength);
            }
            parsed.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            parsed.te_present = true;
            // Only the last coding decides whether the body is chunked.
            let last = value
                .split(|b| *b == b',')
                .map(trim)
                .rfind(|t| !t.is_empty());
            parsed.chunked = last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|b| *b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    parsed.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    parsed.keep_alive = true;
                }
            }
        }
    }
    Ok(parsed)
}

/// Bytes at the start of `buf` that are blank-line padding between messages.
fn leading_blank(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size { value: u64, digits: u32 },
    Ext { value: u64, len: usize },
    SizeLf { value: u64 },
    Data(u64),
    DataCr,
    DataLf,
    Trailer { line: usize, total: usize },
}

/// Skips a chunked body, or hands its data to a sink; resumable at any byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkSkipper {
    state: Chunk,
}

impl ChunkSkipper {
    pub(crate) fn new() -> Self {
        ChunkSkipper {
            state: Chunk::Size {
                value: 0,
                digits: 0,
            },
        }
    }

    fn end_size_line(value: u64) -> Chunk {
        if value == 0 {
            Chunk::Trailer { line: 0, total: 0 }
        } else {
            Chunk::Data(value)
        }
    }

    /// Returns the bytes used and whether the body ended.
    fn feed(&mut self, buf: &[u8]) -> Result<(usize, bool), FrameError> {
        self.feed_into(buf, None)
    }

    /// Like `feed`, and appends the chunk data (not the framing) to `sink` when there is one.
    pub(crate) fn feed_into(
        &mut self,
        buf: &[u8],
        mut sink: Option<&mut Vec<u8>>,
    ) -> Result<(usize, bool), FrameError> {
        let mut pos = 0;
        while let Some(&b) = buf.get(pos) {
            if let Chunk::Data(left) = self.state {
                let avail = (buf.len() - pos) as u64;
                let take = left.min(avail);
                if let Some(out) = sink.as_deref_mut() {
                    out.extend_from_slice(buf.get(pos..pos + take as usize).unwrap_or(&[]));
                }
                pos += take as usize;
                self.state = if take == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - take)
                };
                continue;
            }
            pos += 1;
            self.state = match self.state {
                Chunk::Size { value, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits >= CHUNK_SIZE_DIGITS_MAX {
                            return Err(FrameError::BadChunk);
                        }
                        let d = (b as char).to_digit(16).ok_or(FrameError::BadChunk)?;
                        Chunk::Size {
                            value: value * 16 + u64::from(d),
                            digits: digits + 1,
                        }
                    }
                    _ if digits == 0 => return Err(FrameError::BadChunk),
                    b';' | b' ' | b'\t' => Chunk::Ext { value, len: 0 },
                    b'\r' => Chunk::SizeLf { value },
                    b'\n' => Self::end_size_line(value),
                    _ => return Err(FrameError::BadChunk),
                },
                Chunk::Ext { value, len } => match b {
                    b'\n' => Self::end_size_line(value),
                    _ if len >= CHUNK_EXT_MAX => return Err(FrameError::ChunkExtTooLarge),
                    _ => Chunk::Ext {
                        value,
                        len: len + 1,
                    },
                },
                Chunk::SizeLf { value } => match b {
                    b'\n' => Self::end_size_line(value),
                    _ => return Err(FrameError::BadChunk),
                },
                Chunk::Data(_) => return Err(FrameError::BadChunk),
                Chunk::DataCr => match b {
                    b'\r' => Chunk::DataLf,
                    b'\n' => Chunk::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err(FrameError::BadChunk),
                },
                Chunk::DataLf => match b {
                    b'\n' => Chunk::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err(FrameError::BadChunk),
                },
                Chunk::Trailer { line, total } => match b {
                    b'\n' if line == 0 => {
                        *self = ChunkSkipper::new();
                        return Ok((pos, true));
                    }
                    b'\n' => Chunk::Trailer { line: 0, total },
                    b'\r' => Chunk::Trailer { line, total },
                    _ if total >= TRAILER_MAX => return Err(FrameError::TrailerTooLarge),
                    _ => Chunk::Trailer {
                        line: line + 1,
                        total: total + 1,
                    },
                },
            };
        }
        Ok((pos, false))
    }
}

/// Outcome of a whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDone {
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqState {
    Head,
    Length(u64),
    Chunked(ChunkSkipper),
}

/// Finds the end of each request on a server connection (pipelining included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFramer {
    state: ReqState,
    keep_alive: bool,
}

impl Default for RequestFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestFramer {
    pub fn new() -> Self {
        RequestFramer {
            state: ReqState::Head,
            keep_alive: true,
        }
    }

    /// Consumes bytes from the start of `buf`. Returns how many were used and, when a request ended,
    /// its outcome; call again with the rest to find the next one. `(0, None)` means more bytes are
    /// needed.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<RequestDone>), FrameError> {
        let mut used = 0;
        loop {
            let rest = buf.get(used..).unwrap_or(&[]);
            match &mut self.state {
                ReqState::Head => {
                    let blank = leading_blank(rest);
                    used += blank;
                    let rest = rest.get(blank..).unwrap_or(&[]);
                    let Some(end) = head_end(rest) else {
                        if rest.len() > HEAD_MAX {
                            return Err(FrameError::HeadTooLarge);
                        }
                        return Ok((used, None));
                    };
                    if end > HEAD_MAX {
                        return Err(FrameError::HeadTooLarge);
                    }
                    let head = parse_head(rest.get(..end).unwrap_or(&[]), false)?;
                    used += end;
                    self.keep_alive = head.persistent();
                    self.state = if head.te_present {
                        if !head.chunked {
                            return Err(FrameError::BadTransferEncoding);
                        }
                        ReqState::Chunked(ChunkSkipper::new())
                    } else {
                        match head.content_length {
                            Some(n) if n > 0 => ReqState::Length(n),
                            _ => return Ok((used, Some(self.finish()))),
                        }
                    };
                }
                ReqState::Length(left) => {
                    let take = (*left).min(rest.len() as u64);
                    used += take as usize;
                    *left -= take;
                    if *left > 0 {
                        return Ok((used, None));
                    }
                    return Ok((used, Some(self.finish())));
                }
                ReqState::Chunked(skipper) => {
                    let (n, done) = skipper.feed(rest)?;
                    used += n;
                    if !done {
                        return Ok((used, None));
                    }
                    return Ok((used, Some(self.finish())));
                }
            }
        }
    }

    fn finish(&mut self) -> RequestDone {
        self.state = ReqState::Head;
        RequestDone {
            keep_alive: self.keep_alive,
        }
    }
}

/// A response head read from the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// Bytes of the buffer the head took, blank lines before it included.
    pub used: usize,
    pub status: u16,
    pub persistent: bool,
    pub body: Body,
}

/// Reads the response head at the start of `buf` (after any blank-line padding); `None` until it is
/// all there. Interim (1xx) heads are returned too, with an empty body: the caller skips them.
pub(crate) fn read_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, FrameError> {
    let blank = leading_blank(buf);
    let rest = buf.get(blank..).unwrap_or(&[]);
    let Some(end) = head_end(rest) else {
        if rest.len() > HEAD_MAX {
            return Err(FrameError::HeadTooLarge);
        }
        return Ok(None);
    };
    if end > HEAD_MAX {
        return Err(FrameError::HeadTooLarge);
    }
    let head = parse_head(rest.get(..end).unwrap_or(&[]), true)?;
    if head.status == 101 {
        return Err(FrameError::Upgrade);
    }
    let body = if (100..200).contains(&head.status) || head.status == 204 || head.status == 304 {
        Body::Empty
    } else if head.te_present {
        if head.chunked {
            Body::Chunked
        } else {
            Body::UntilClose
        }
    } else {
        match head.content_length {
            Some(0) => Body::Empty,
            Some(n) => Body::Length(n),
            None => Body::UntilClose,
        }
    };
    Ok(Some(ResponseHead {
        used: blank + end,
        status: head.status,
        persistent: head.persistent() && body != Body::UntilClose,
        body,
    }))
}

/// Outcome of a whole response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseDone {
    pub status: u16,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespState {
    Head,
    Length(u64),
    Chunked(ChunkSkipper),
    UntilClose,
}

/// Finds the end of each response to a GET on a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFramer {
    state: RespState,
    status: u16,
    keep_alive: bool,
}

impl Default for ResponseFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseFramer {
    pub fn new() -> Self {
        ResponseFramer {
            state: RespState::Head,
            status: 0,
            keep_alive: true,
        }
    }

    /// Like [`RequestFramer::feed`]: bytes used and, when a final response ended, its outcome.
    /// Interim (1xx) responses are skipped.
    pub fn feed(&mut self, buf: &[u8]) -> Result<(usize, Option<ResponseDone>), FrameError> {
        let mut used = 0;
        loop {
            let rest = buf.get(used..).unwrap_or(&[]);
            match &mut self.state {
                RespState::Head => {
                    let Some(head) = read_response_head(rest)? else {
                        return Ok((used + leading_blank(rest), None));
                    };
                    used += head.used;
                    if (100..200).contains(&head.status) {
                        continue;
                    }
                    self.status = head.status;
                    self.keep_alive = head.persistent;
                    self.state = match head.body {
                        Body::Empty => return Ok((used, Some(self.finish()))),
                        Body::Length(n) => RespState::Length(n),
                        Body::Chunked => RespState::Chunked(ChunkSkipper::new()),
                        Body::UntilClose => RespState::UntilClose,
                    };
                }
                RespState::Length(left) => {
                    let take = (*left).min(rest.len() as u64);
                    used += take as usize;
                    *left -= take;
                    if *left > 0 {
                        return Ok((used, None));
                    }
                    return Ok((used, Some(self.finish())));
                }
                RespState::Chunked(skipper) => {
                    let (n, done) = skipper.feed(rest)?;
                    used += n;
                    if !done {
                        return Ok((used, None));
                    }
                    return Ok((used, Some(self.finish())));
                }
                RespState::UntilClose => return Ok((used + rest.len(), None)),
            }
        }
    }

    /// The peer closed the connection: a body delimited by the close ends here.
    pub fn on_eof(&mut self) -> Option<ResponseDone> {
        if self.state == RespState::UntilClose {
            Some(self.finish())
        } else {
            None
        }
    }

    fn finish(&mut self) -> ResponseDone {
        self.state = RespState::Head;
        ResponseDone {
            status: self.status,
            keep_alive: self.keep_alive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at `split` the way a connection would: append, feed while progress, drain.
    fn run_requests(input: &[u8], split: usize) -> Result<Vec<RequestDone>, FrameError> {
        let mut f = RequestFramer::new();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in [&input[..split], &input[split..]] {
            buf.extend_from_slice(piece);
            loop {
                let (used, done) = f.feed(&buf)?;
                buf.drain(..used);
                match done {
                    Some(d) => out.push(d),
                    None if used == 0 || buf.is_empty() => break,
                    None => {}
                }
            }
        }
        Ok(out)
    }

    fn run_responses(
        input: &[u8],
        split: usize,
        eof: bool,
    ) -> Result<Vec<ResponseDone>, FrameError> {
        let mut f = ResponseFramer::new();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in [&input[..split], &input[split..]] {
            buf.extend_from_slice(piece);
            loop {
                let (used, done) = f.feed(&buf)?;
                buf.drain(..used);
                match done {
                    Some(d) => out.push(d),
                    None if used == 0 || buf.is_empty() => break,
                    None => {}
                }
            }
        }
        if eof {
            out.extend(f.on_eof());
        }
        Ok(out)
    }

    const KA: RequestDone = RequestDone { keep_alive: true };
    const CLOSE: RequestDone = RequestDone { keep_alive: false };

    #[test]
    fn requests_at_every_split() {
        let cases: &[(&str, &[u8], &[RequestDone])] = &[
            ("get", b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", &[KA]),
            ("bare lf", b"GET /x HTTP/1.1\nHost: a\n\n", &[KA]),
            ("pipelined", b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n", &[KA, KA, KA]),
            ("content-length body", b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n", &[KA, KA]),
            ("zero length", b"POST /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n", &[KA]),
            (
                "chunked with ext and trailer",
                b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                &[KA, KA],
            ),
            ("http/1.0 closes", b"GET / HTTP/1.0\r\n\r\n", &[CLOSE]),
            ("http/1.0 keep-alive", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &[KA]),
            ("connection close", b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &[CLOSE]),
            ("padding before request", b"\r\nGET / HTTP/1.1\r\n\r\n", &[KA]),
            ("partial head", b"GET / HTTP/1.1\r\nHost: a\r\n", &[]),
        ];
        for (name, input, want) in cases {
            for split in 0..=input.len() {
                let got =
                    run_requests(input, split).unwrap_or_else(|e| panic!("{name} @{split}: {e}"));
                assert_eq!(got, *want, "{name} @{split}");
            }
        }
    }

    #[test]
    fn bad_requests_at_every_split() {
        let cases: &[(&str, &[u8], FrameError)] = &[
            ("no version", b"GET /\r\n\r\n", FrameError::BadStartLine),
            (
                "http/2",
                b"GET / HTTP/2.0\r\n\r\n",
                FrameError::BadStartLine,
            ),
            (
                "no colon",
                b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
                FrameError::BadHeader,
            ),
            (
                "folded",
                b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
                FrameError::BadHeader,
            ),
            (
                "signed length",
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                FrameError::BadContentLength,
            ),
            (
                "conflicting lengths",
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                FrameError::BadContentLength,
            ),
            (
                "huge length",
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                FrameError::BadContentLength,
            ),
            (
                "gzip only",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                FrameError::BadTransferEncoding,
            ),
            (
                "bad chunk size",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                FrameError::BadChunk,
            ),
            (
                "chunk size overflow",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                FrameError::BadChunk,
            ),
            (
                "missing crlf after data",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX",
                FrameError::BadChunk,
            ),
        ];
        for (name, input, want) in cases {
            for split in 0..=input.len() {
                assert_eq!(run_requests(input, split), Err(*want), "{name} @{split}");
            }
        }
    }

    #[test]
    fn oversized_heads_and_trailers_are_refused() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        while head.len() <= HEAD_MAX {
            head.extend_from_slice(b"X-Pad: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(
            RequestFramer::new().feed(&head),
            Err(FrameError::HeadTooLarge)
        );
        head.extend_from_slice(b"\r\n");
        assert_eq!(
            RequestFramer::new().feed(&head),
            Err(FrameError::HeadTooLarge)
        );

        let mut body = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        body.extend_from_slice(&[b'a'; TRAILER_MAX + 1]);
        assert_eq!(
            RequestFramer::new().feed(&body),
            Err(FrameError::TrailerTooLarge)
        );

        let mut ext = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        ext.extend_from_slice(&[b'a'; CHUNK_EXT_MAX + 1]);
        assert_eq!(
            RequestFramer::new().feed(&ext),
            Err(FrameError::ChunkExtTooLarge)
        );
    }

    fn ok(status: u16, keep_alive: bool) -> ResponseDone {
        ResponseDone { status, keep_alive }
    }

    #[test]
    fn responses_at_every_split() {
        let hello = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n";
        let cases: Vec<(&str, Vec<u8>, bool, Vec<ResponseDone>)> = vec![
            ("content-length", hello.to_vec(), false, vec![ok(200, true)]),
            ("two in a row", [&hello[..], &hello[..]].concat(), false, vec![ok(200, true), ok(200, true)]),
            (
                "chunked",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r\nhello world\n\r\n0\r\n\r\n".to_vec(),
                false,
                vec![ok(200, true)],
            ),
            ("until close", b"HTTP/1.1 200 OK\r\n\r\nabc".to_vec(), true, vec![ok(200, false)]),
            ("until close, no eof yet", b"HTTP/1.1 200 OK\r\n\r\nabc".to_vec(), false, vec![]),
            ("unknown coding", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx".to_vec(), true, vec![ok(200, false)]),
            ("no content", b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(), false, vec![ok(204, true)]),
            ("not modified", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n".to_vec(), false, vec![ok(304, true)]),
            (
                "continue first",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\nContent-Length: 1\r\n\r\nx".to_vec(),
                false,
                vec![ok(502, true)],
            ),
            ("http/1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(), false, vec![ok(200, false)]),
            ("no reason", b"HTTP/1.1 404\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(), false, vec![ok(404, false)]),
        ];
        for (name, input, eof, want) in &cases {
            for split in 0..=input.len() {
                let got = run_responses(input, split, *eof)
                    .unwrap_or_else(|e| panic!("{name} @{split}: {e}"));
                assert_eq!(got, *want, "{name} @{split}");
            }
        }
    }

    #[test]
    fn bad_responses_at_every_split() {
        let cases: &[(&str, &[u8], FrameError)] = &[
            ("not http", b"SSH-2.0-x\r\n\r\n", FrameError::BadStartLine),
            (
                "short status",
                b"HTTP/1.1 20\r\n\r\n",
                FrameError::BadStartLine,
            ),
            (
                "letters in status",
                b"HTTP/1.1 2x0 OK\r\n\r\n",
                FrameError::BadStartLine,
            ),
            (
                "upgrade",
                b"HTTP/1.1 101 Switching\r\n\r\n",
                FrameError::Upgrade,
            ),
            (
                "bad length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                FrameError::BadContentLength,
            ),
            (
                "bad chunk",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;\r\n",
                FrameError::BadChunk,
            ),
        ];
        for (name, input, want) in cases {
            for split in 0..=input.len() {
                assert_eq!(
                    run_responses(input, split, true),
                    Err(*want),
                    "{name} @{split}"
                );
            }
        }
    }
}
