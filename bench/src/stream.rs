//! Reading responses whose body matters: a held stream's chunks or a long-poll's published body.
//! `ResponseReader` turns the bytes of a connection into a status and body bytes; `split_lines`
//! cuts those body bytes into the newline-ended messages the GRIP benchmark publishes.
//!
//! Both are sans-IO and resumable at any byte, so a caller may feed whatever one `read` returned.

use crate::framing::{read_response_head, Body, ChunkSkipper, FrameError, HEAD_MAX};

/// Longest message line kept while its end has not arrived; a longer one is an error.
pub const LINE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(ChunkSkipper),
    UntilClose,
}

/// What one call to [`ResponseReader::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fed {
    /// Input bytes used. Less than the input only when the response ended before it.
    pub used: usize,
    /// The status of a final head read in this call.
    pub head: Option<u16>,
    /// The response ended in this call.
    pub ended: bool,
}

/// Reads one response at a time from a client connection, handing the body (de-chunked) to the
/// caller. After an end it is ready for the next response on the same connection.
#[derive(Debug, Clone, Default)]
pub struct ResponseReader {
    /// Bytes of a head that has not all arrived; empty once it has.
    partial_head: Vec<u8>,
    state: Option<State>,
    status: u16,
    persistent: bool,
}

impl ResponseReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Status of the current (or last) response head; 0 before the first.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the connection may carry another request after the response that ended.
    pub fn persistent(&self) -> bool {
        self.persistent
    }

    /// Whether a response is under way (some bytes of it read, its end not yet).
    pub fn in_response(&self) -> bool {
        !self.partial_head.is_empty() || !matches!(self.state, None | Some(State::Head))
    }

    /// Consumes `input`, appending body bytes to `body`. Stops right after a response ends so the
    /// caller decides what the following bytes mean.
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<Fed, FrameError> {
        let mut fed = Fed::default();
        loop {
            let rest = input.get(fed.used..).unwrap_or(&[]);
            match self.state.unwrap_or(State::Head) {
                State::Head => {
                    if rest.is_empty() {
                        return Ok(fed);
                    }
                    let Some((took, status, next)) = self.read_head(rest)? else {
                        fed.used = input.len();
                        return Ok(fed);
                    };
                    fed.used += took;
                    if (100..200).contains(&status) {
                        continue;
                    }
                    self.status = status;
                    fed.head = Some(status);
                    match next {
                        Some(state) => self.state = Some(state),
                        None => return Ok(self.finish(fed)),
                    }
                }
                State::Length(left) => {
                    let take = left.min(rest.len() as u64);
                    body.extend_from_slice(rest.get(..take as usize).unwrap_or(&[]));
                    fed.used += take as usize;
                    if take < left {
                        self.state = Some(State::Length(left - take));
                        return Ok(fed);
                    }
                    return Ok(self.finish(fed));
                }
                State::Chunked(mut chunks) => {
                    let (took, done) = chunks.feed_into(rest, Some(body))?;
                    fed.used += took;
                    if done {
                        return Ok(self.finish(fed));
                    }
                    self.state = Some(State::Chunked(chunks));
                    return Ok(fed);
                }
                State::UntilClose => {
                    body.extend_from_slice(rest);
                    fed.used = input.len();
                    return Ok(fed);
                }
            }
        }
    }

    /// The peer closed the connection. True when that ended a response whose body runs to the
    /// close; false when a response was cut short (or none was under way).
    pub fn on_eof(&mut self) -> bool {
        if self.state == Some(State::UntilClose) {
            self.state = None;
            self.persistent = false;
            return true;
        }
        false
    }

    /// Reads a head from `rest` plus what is already buffered. `Some((bytes of rest used, status,
    /// body state or None for no body))` once it is complete.
    fn read_head(
        &mut self,
        rest: &[u8],
    ) -> Result<Option<(usize, u16, Option<State>)>, FrameError> {
        let earlier = self.partial_head.len();
        let parsed = if earlier == 0 {
            read_response_head(rest)?
        } else {
            self.partial_head.extend_from_slice(rest);
            read_response_head(&self.partial_head)?
        };
        let Some(head) = parsed else {
            if earlier == 0 {
                self.partial_head.extend_from_slice(rest);
            }
            // Blank padding plus a head may not exceed what `read_response_head` allows.
            if self.partial_head.len() > 2 * HEAD_MAX {
                return Err(FrameError::HeadTooLarge);
            }
            return Ok(None);
        };
        self.partial_head = Vec::new();
        let took = head.used.saturating_sub(earlier);
        self.persistent = head.persistent;
        let next = match head.body {
            Body::Empty => None,
            Body::Length(n) => Some(State::Length(n)),
            Body::Chunked => Some(State::Chunked(ChunkSkipper::new())),
            Body::UntilClose => Some(State::UntilClose),
        };
        Ok(Some((took, head.status, next)))
    }

    fn finish(&mut self, mut fed: Fed) -> Fed {
        self.state = None;
        fed.ended = true;
        fed
    }
}

/// The line that would not end within [`LINE_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a message line longer than {LINE_MAX} bytes")
    }
}

impl std::error::Error for LineTooLong {}

/// Calls `each` with every complete line of `buf` (without its `\n`) and removes them, leaving an
/// unfinished last line in place.
pub fn split_lines(buf: &mut Vec<u8>, mut each: impl FnMut(&[u8])) -> Result<(), LineTooLong> {
    let mut start = 0;
    while let Some(rel) = buf
        .get(start..)
        .and_then(|rest| memchr::memchr(b'\n', rest))
    {
        each(buf.get(start..start + rel).unwrap_or(&[]));
        start += rel + 1;
    }
    buf.drain(..start.min(buf.len()));
    if buf.len() > LINE_MAX {
        return Err(LineTooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a response looked when the input ran out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum End {
        KeepAlive,
        Close,
        Unfinished,
    }

    /// (status, body, how it ended) of one response.
    type Response = (u16, Vec<u8>, End);

    /// What a reader makes of `input` fed in two pieces split at `split`: each response in order,
    /// with bytes after an end fed again as the next response; and the number of final heads
    /// reported.
    fn run(input: &[u8], split: usize, eof: bool) -> Result<(Vec<Response>, usize), FrameError> {
        let mut r = ResponseReader::new();
        let mut body = Vec::new();
        let mut out = Vec::new();
        let mut heads = 0;
        let end = |r: &ResponseReader| {
            if r.persistent() {
                End::KeepAlive
            } else {
                End::Close
            }
        };
        for piece in [&input[..split], &input[split..]] {
            let mut at = 0;
            while at < piece.len() {
                let fed = r.feed(&piece[at..], &mut body)?;
                at += fed.used;
                heads += usize::from(fed.head.is_some());
                if fed.ended {
                    out.push((r.status(), std::mem::take(&mut body), end(&r)));
                } else {
                    assert_eq!(at, piece.len(), "stopped early without an end");
                }
            }
        }
        if eof && r.on_eof() {
            out.push((r.status(), std::mem::take(&mut body), end(&r)));
        }
        if r.in_response() {
            out.push((r.status(), body, End::Unfinished));
        }
        Ok((out, heads))
    }

    #[test]
    fn bodies_at_every_split() {
        use End::*;
        let stream = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nopen\n\r\n8;x=y\r\nm 1 2 x\n\r\n";
        type Want<'a> = Vec<(u16, &'a [u8], End)>;
        let cases: Vec<(&str, Vec<u8>, bool, Want, usize)> = vec![
            (
                "stream, still open",
                stream.to_vec(),
                false,
                vec![(200, b"open\nm 1 2 x\n", Unfinished)],
                1,
            ),
            (
                "stream ended",
                [&stream[..], b"0\r\n\r\n"].concat(),
                false,
                vec![(200, b"open\nm 1 2 x\n", KeepAlive)],
                1,
            ),
            (
                "two long-polls",
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nr 1\nHTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
                    .to_vec(),
                false,
                vec![(200, b"r 1\n", KeepAlive), (502, b"", KeepAlive)],
                2,
            ),
            (
                "interim then final",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                false,
                vec![(200, b"ok", KeepAlive)],
                1,
            ),
            (
                "until close",
                b"HTTP/1.0 200 OK\r\n\r\nab\ncd".to_vec(),
                true,
                vec![(200, b"ab\ncd", Close)],
                1,
            ),
            (
                "until close, no eof yet",
                b"HTTP/1.1 200 OK\r\n\r\nab".to_vec(),
                false,
                vec![(200, b"ab", Unfinished)],
                1,
            ),
            (
                "close requested",
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx".to_vec(),
                false,
                vec![(200, b"x", Close)],
                1,
            ),
            (
                "padding and partial head",
                b"\r\nHTTP/1.1 200 OK\r\nContent-Le".to_vec(),
                false,
                vec![(0, b"", Unfinished)],
                0,
            ),
        ];
        for (name, input, eof, want, heads) in &cases {
            let want: Vec<Response> = want.iter().map(|(s, b, e)| (*s, b.to_vec(), *e)).collect();
            for split in 0..=input.len() {
                let (got, got_heads) =
                    run(input, split, *eof).unwrap_or_else(|e| panic!("{name} @{split}: {e}"));
                assert_eq!(got, want, "{name} @{split}");
                assert_eq!(got_heads, *heads, "{name} @{split}");
            }
        }
    }

    #[test]
    fn errors_at_every_split() {
        let cases: &[(&str, &[u8], FrameError)] = &[
            ("not http", b"SSH-2.0-x\r\n\r\n", FrameError::BadStartLine),
            (
                "bad chunk",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                FrameError::BadChunk,
            ),
            (
                "upgrade",
                b"HTTP/1.1 101 Switching\r\n\r\n",
                FrameError::Upgrade,
            ),
        ];
        for (name, input, want) in cases {
            for split in 0..=input.len() {
                assert_eq!(
                    run(input, split, true).err(),
                    Some(*want),
                    "{name} @{split}"
                );
            }
        }
    }

    #[test]
    fn head_size_is_bounded() {
        let mut r = ResponseReader::new();
        let mut body = Vec::new();
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'a', HEAD_MAX));
        let mut result = Ok(Fed::default());
        for piece in head.chunks(1000) {
            result = r.feed(piece, &mut body);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FrameError::HeadTooLarge));
    }

    #[test]
    fn lines_at_every_split() {
        let input = b"open\nm 1 2 xx\n\np 3\nunfinished";
        let want: Vec<&[u8]> = vec![b"open", b"m 1 2 xx", b"", b"p 3"];
        for split in 0..=input.len() {
            let mut buf = Vec::new();
            let mut got: Vec<Vec<u8>> = Vec::new();
            for piece in [&input[..split], &input[split..]] {
                buf.extend_from_slice(piece);
                split_lines(&mut buf, |l| got.push(l.to_vec())).unwrap();
            }
            assert_eq!(got, want, "@{split}");
            assert_eq!(buf, b"unfinished", "@{split}");
        }
    }

    #[test]
    fn line_length_is_bounded() {
        let mut buf = vec![b'a'; LINE_MAX + 1];
        assert_eq!(split_lines(&mut buf, |_| {}), Err(LineTooLong));
        let mut buf = vec![b'a'; LINE_MAX];
        assert_eq!(split_lines(&mut buf, |_| {}), Ok(()));
    }
}
