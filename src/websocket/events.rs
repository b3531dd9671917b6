//! The `application/websocket-events` body format of WebSocket-over-HTTP (spec 6.2): each event is
//! `TYPE\r\n`, or `TYPE <hex length>\r\n<content>\r\n`, and a body is events one after another.
//!
//! Parsing takes a whole body (the session reads it fully, up to its 1 000 000-byte limit) and fails as a
//! whole, as Pushpin does: a backend whose body cannot be decoded has its client's connection dropped. The
//! events borrow their content from the body.
//!
//! What the parser accepts, against what Pushpin's does:
//! * Lines end with CRLF only. A bare LF is ordinary text inside the type line, as in Pushpin (so `OPEN\n`
//!   alone is an error and `X\nTEXT\r\n` is one unknown event).
//! * Type names are case-sensitive; unknown ones (the empty line included) are skipped with their content.
//! * The length is one or more hex digits of either case and nothing else. Pushpin's `toInt(16)` would also
//!   take a sign, a `0x` prefix or surrounding blanks; no known backend writes those, so they are refused.
//! * Content must lie within the body. Pushpin silently truncates content that runs past the end, which
//!   would hand the client a message the backend never meant; here that is an error.
//! * The CRLF after content is checked. Pushpin skips any two bytes there, so a wrong length goes unnoticed
//!   and the rest of the body is misread; here it is an error. One leniency is kept: the CRLF may be
//!   missing after the last event of the body, which Pushpin also accepts (so a final length that is two
//!   too long takes the CRLF into the content, as in Pushpin).

use std::fmt;
use std::io::Write as _;

/// The event types of spec 6.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Connect request, and its acceptance.
    Open,
    Text,
    Binary,
    Ping,
    Pong,
    /// Content: nothing, or a 2-byte big-endian code then a UTF-8 reason ([`encode_close`], [`decode_close`]).
    Close,
    /// The client went away without a close (or, from the backend, drop the client).
    Disconnect,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::Open,
        EventKind::Text,
        EventKind::Binary,
        EventKind::Ping,
        EventKind::Pong,
        EventKind::Close,
        EventKind::Disconnect,
    ];

    /// The type name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Open => "OPEN",
            EventKind::Text => "TEXT",
            EventKind::Binary => "BINARY",
            EventKind::Ping => "PING",
            EventKind::Pong => "PONG",
            EventKind::Close => "CLOSE",
            EventKind::Disconnect => "DISCONNECT",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str().as_bytes() == name)
    }
}

/// One event, its content borrowed from the body (empty when the event had none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    pub kind: EventKind,
    pub content: &'a [u8],
}

/// Why a body (or a close event's content) is refused. Offsets are from the start of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsError {
    /// A type line without its CRLF.
    UnterminatedLine { offset: usize },
    /// The text after the space of the type line at `offset` is not a hex length.
    BadLength { offset: usize },
    /// The content announced at `offset` runs past the end of the body.
    Truncated { offset: usize },
    /// Content ending at `offset` is followed by something other than CRLF.
    MissingContentEnd { offset: usize },
    /// Close content of one byte, or a reason that is not UTF-8.
    BadClose,
}

impl fmt::Display for EventsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventsError::UnterminatedLine { offset } => {
                write!(f, "event line at byte {offset} has no CRLF")
            }
            EventsError::BadLength { offset } => {
                write!(f, "event line at byte {offset} has an invalid hex length")
            }
            EventsError::Truncated { offset } => {
                write!(
                    f,
                    "event content at byte {offset} runs past the end of the body"
                )
            }
            EventsError::MissingContentEnd { offset } => {
                write!(
                    f,
                    "event content ending at byte {offset} is not followed by CRLF"
                )
            }
            EventsError::BadClose => {
                f.write_str("close content is not a 2-byte code and a UTF-8 reason")
            }
        }
    }
}

impl std::error::Error for EventsError {}

/// Decode a whole `application/websocket-events` body. Unknown event types are left out of the result.
pub fn parse_events(body: &[u8]) -> Result<Vec<Event<'_>>, EventsError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rest) = body.get(pos..).filter(|r| !r.is_empty()) {
        let line_len = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(EventsError::UnterminatedLine { offset: pos })?;
        let line = rest.get(..line_len).unwrap_or_default();
        let line_start = pos;
        pos += line_len + 2;
        // Spec 6.2: "a line with a space → hex length ..., otherwise no content".
        let (name, content) = match line.iter().position(|&b| b == b' ') {
            None => (line, &[][..]),
            Some(space) => {
                let digits = line.get(space + 1..).unwrap_or_default();
                let len = parse_hex(digits).ok_or(EventsError::BadLength { offset: line_start })?;
                let content = pos
                    .checked_add(len)
                    .and_then(|end| body.get(pos..end))
                    .ok_or(EventsError::Truncated { offset: pos })?;
                pos += len;
                match body.get(pos..pos + 2) {
                    Some(b"\r\n") => pos += 2,
                    // The last event's closing CRLF may be missing (Pushpin ends the body there too).
                    _ if pos == body.len() => {}
                    _ => return Err(EventsError::MissingContentEnd { offset: pos }),
                }
                (line.get(..space).unwrap_or_default(), content)
            }
        };
        if let Some(kind) = EventKind::from_name(name) {
            out.push(Event { kind, content });
        }
    }
    Ok(out)
}

/// One or more hex digits, either case, as a length; `None` on anything else or on overflow.
fn parse_hex(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &c| {
        let d = char::from(c).to_digit(16)?;
        acc.checked_mul(16)?.checked_add(d as usize)
    })
}

/// Append one event. Pushpin writes the length in lowercase hex; TEXT and BINARY always carry a length
/// (an empty message is `TEXT 0`), other types only when `content` is non-empty (spec 6.2: PING/PONG content
/// "only when non-empty").
pub fn encode_event(out: &mut Vec<u8>, kind: EventKind, content: &[u8]) {
    out.extend_from_slice(kind.as_str().as_bytes());
    if content.is_empty() && !matches!(kind, EventKind::Text | EventKind::Binary) {
        out.extend_from_slice(b"\r\n");
        return;
    }
    out.reserve(content.len() + 22);
    out.push(b' ');
    push_hex(out, content.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(content);
    out.extend_from_slice(b"\r\n");
}

/// Append a CLOSE event: `Some((code, reason))` as a 2-byte big-endian code then the reason, `None` as a bare
/// `CLOSE\r\n` (a close without a status code, e.g. one holdfast starts itself, spec 6.2 step 7).
pub fn encode_close(out: &mut Vec<u8>, close: Option<(u16, &str)>) {
    match close {
        None => encode_event(out, EventKind::Close, &[]),
        Some((code, reason)) => {
            let mut content = Vec::with_capacity(2 + reason.len());
            content.extend_from_slice(&code.to_be_bytes());
            content.extend_from_slice(reason.as_bytes());
            encode_event(out, EventKind::Close, &content);
        }
    }
}

/// Decode a CLOSE event's content: `None` for no content (no status code), else the code and the reason.
/// The code is not range-checked here; that is the close-frame writer's business.
pub fn decode_close(content: &[u8]) -> Result<Option<(u16, &str)>, EventsError> {
    match content {
        [] => Ok(None),
        [hi, lo, reason @ ..] => {
            let reason = std::str::from_utf8(reason).map_err(|_| EventsError::BadClose)?;
            Ok(Some((u16::from_be_bytes([*hi, *lo]), reason)))
        }
        [_] => Err(EventsError::BadClose),
    }
}

/// Lowercase hex without leading zeros.
fn push_hex(out: &mut Vec<u8>, n: usize) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n:x}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift64 as Rng;
    use EventKind::*;

    fn ev(kind: EventKind, content: &[u8]) -> Event<'_> {
        Event { kind, content }
    }

    fn encode_all(events: &[Event<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            encode_event(&mut out, e.kind, e.content);
        }
        out
    }

    #[test]
    fn parse_table() {
        let cases: &[(&[u8], &[Event<'_>])] = &[
            (b"", &[]),
            (b"OPEN\r\n", &[ev(Open, b"")]),
            (
                b"OPEN\r\nTEXT 5\r\nhello\r\nBINARY 3\r\n\x00\r\n\r\n",
                &[ev(Open, b""), ev(Text, b"hello"), ev(Binary, b"\x00\r\n")],
            ),
            // Either case of hex, leading zeros.
            (b"TEXT A\r\n0123456789\r\n", &[ev(Text, b"0123456789")]),
            (b"TEXT a\r\n0123456789\r\n", &[ev(Text, b"0123456789")]),
            (b"TEXT 00000a\r\n0123456789\r\n", &[ev(Text, b"0123456789")]),
            // Zero-length content, with and without a length.
            (
                b"TEXT 0\r\n\r\nPING\r\nPONG 0\r\n\r\n",
                &[ev(Text, b""), ev(Ping, b""), ev(Pong, b"")],
            ),
            (
                b"PING 4\r\nabcd\r\nPONG 2\r\nxy\r\n",
                &[ev(Ping, b"abcd"), ev(Pong, b"xy")],
            ),
            (
                b"CLOSE\r\nDISCONNECT\r\n",
                &[ev(Close, b""), ev(Disconnect, b"")],
            ),
            (b"CLOSE 5\r\n\x03\xe8bye\r\n", &[ev(Close, b"\x03\xe8bye")]),
            // Unknown types (the empty one too) are skipped, their content consumed.
            (b"FOO\r\nTEXT 1\r\nx\r\n", &[ev(Text, b"x")]),
            (b"FOO 6\r\nTEXT 1\r\nOPEN\r\n", &[ev(Open, b"")]),
            (b"\r\n\r\nOPEN\r\n", &[ev(Open, b"")]),
            (b"text 1\r\nx\r\nOpen\r\n", &[]),
            // A bare LF is part of the type line: one unknown event here.
            (b"OPEN\nTEXT 1\r\nx\r\n", &[]),
            // The last event's closing CRLF may be missing.
            (b"TEXT 3\r\nabc", &[ev(Text, b"abc")]),
            // ... which also means a length 2 too long at the end takes the CRLF as content, as in Pushpin.
            (b"TEXT 5\r\nabc\r\n", &[ev(Text, b"abc\r\n")]),
            (b"OPEN\r\nTEXT 0\r\n", &[ev(Open, b""), ev(Text, b"")]),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_events(body).as_deref(),
                Ok(*want),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn parse_errors() {
        use EventsError::*;
        let cases: &[(&[u8], EventsError)] = &[
            (b"OPEN", UnterminatedLine { offset: 0 }),
            (b"OPEN\n", UnterminatedLine { offset: 0 }),
            (b"OPEN\r", UnterminatedLine { offset: 0 }),
            (b"OPEN\r\nTEXT", UnterminatedLine { offset: 6 }),
            (b"TEXT \r\n", BadLength { offset: 0 }),
            (b"OPEN\r\nTEXT 0x5\r\nhello\r\n", BadLength { offset: 6 }),
            (b"TEXT +5\r\nhello\r\n", BadLength { offset: 0 }),
            (b"TEXT -1\r\n", BadLength { offset: 0 }),
            (b"TEXT 5 \r\nhello\r\n", BadLength { offset: 0 }),
            (b"TEXT  5\r\nhello\r\n", BadLength { offset: 0 }),
            (b"TEXT g\r\n", BadLength { offset: 0 }),
            (b"TEXT 1 2\r\n", BadLength { offset: 0 }),
            (b"TEXT 1ffffffffffffffff\r\n", BadLength { offset: 0 }),
            // The whole body fails even when the bad line has an unknown type.
            (b"OPEN\r\nFOO z\r\n", BadLength { offset: 6 }),
            (b"TEXT ffffffff\r\nabc", Truncated { offset: 15 }),
            (b"TEXT ffffffffffffffff\r\nabc", Truncated { offset: 23 }),
            (b"TEXT 6\r\nabc\r\n", Truncated { offset: 8 }),
            (b"TEXT 3\r\nhello\r\n", MissingContentEnd { offset: 11 }),
            (b"TEXT 3\r\nabc\n", MissingContentEnd { offset: 11 }),
            (b"TEXT 3\r\nabc\r", MissingContentEnd { offset: 11 }),
            (b"TEXT 3\r\nabcOPEN\r\n", MissingContentEnd { offset: 11 }),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_events(body),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert!(!want.to_string().contains('\n'));
        }
    }

    #[test]
    fn encode_table() {
        let cases: &[(EventKind, &[u8], &[u8])] = &[
            (Open, b"", b"OPEN\r\n"),
            (Open, b"x", b"OPEN 1\r\nx\r\n"),
            (Text, b"", b"TEXT 0\r\n\r\n"),
            (Text, b"hello", b"TEXT 5\r\nhello\r\n"),
            (Binary, b"", b"BINARY 0\r\n\r\n"),
            (Ping, b"", b"PING\r\n"),
            (Pong, b"", b"PONG\r\n"),
            (Ping, b"p", b"PING 1\r\np\r\n"),
            (Close, b"", b"CLOSE\r\n"),
            (Disconnect, b"", b"DISCONNECT\r\n"),
        ];
        for (kind, content, want) in cases {
            let mut out = b"..".to_vec();
            encode_event(&mut out, *kind, content);
            assert_eq!(out.strip_prefix(b".."), Some(*want), "{kind:?}");
        }
        // Lowercase hex, no leading zeros.
        let big = vec![b'z'; 0x1ab];
        let mut out = Vec::new();
        encode_event(&mut out, Binary, &big);
        assert!(out.starts_with(b"BINARY 1ab\r\nzz"));
        assert_eq!(out.len(), "BINARY 1ab\r\n".len() + big.len() + 2);
    }

    #[test]
    fn close_content() {
        type Close<'a> = Option<(u16, &'a str)>;
        let cases: &[(Close, &[u8])] = &[
            (None, b"CLOSE\r\n"),
            (Some((1000, "")), b"CLOSE 2\r\n\x03\xe8\r\n"),
            (Some((4001, "pubclose")), b"CLOSE a\r\n\x0f\xa1pubclose\r\n"),
            (Some((1001, "é")), b"CLOSE 4\r\n\x03\xe9\xc3\xa9\r\n"),
            (Some((0, "")), b"CLOSE 2\r\n\x00\x00\r\n"),
        ];
        for (close, wire) in cases {
            let mut out = Vec::new();
            encode_close(&mut out, *close);
            assert_eq!(out, *wire);
            let events = parse_events(&out).expect("valid");
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, Close);
            assert_eq!(decode_close(events[0].content), Ok(*close));
        }
        assert_eq!(decode_close(b"\x03"), Err(EventsError::BadClose));
        assert_eq!(decode_close(b"\x03\xe8\xff"), Err(EventsError::BadClose));
    }

    fn random_events(rng: &mut Rng, contents: &mut Vec<Vec<u8>>) {
        contents.clear();
        for _ in 0..rng.below(8) {
            // Content drawn from bytes that look like the format itself.
            const ALPHABET: &[u8] = b"\r\nTEXT 0aF";
            let len = if rng.below(4) == 0 { 0 } else { rng.below(40) };
            contents.push(
                (0..len)
                    .map(|_| {
                        if rng.below(4) == 0 {
                            rng.next() as u8
                        } else {
                            ALPHABET[rng.below(ALPHABET.len())]
                        }
                    })
                    .collect(),
            );
        }
    }

    #[test]
    fn random_round_trips_and_every_cut() {
        let mut rng = Rng(0x5eed_cafe_f00d_0001);
        let mut contents = Vec::new();
        for _ in 0..400 {
            random_events(&mut rng, &mut contents);
            let events: Vec<Event<'_>> = contents
                .iter()
                .map(|c| ev(EventKind::ALL[rng.below(EventKind::ALL.len())], c))
                .collect();
            let body = encode_all(&events);
            assert_eq!(parse_events(&body), Ok(events.clone()));
            // Where each event ends in the body.
            let mut ends = vec![0];
            for e in &events {
                ends.push(ends.last().copied().unwrap_or(0) + encode_all(&[*e]).len());
            }
            for cut in 0..=body.len() {
                let Ok(got) = parse_events(&body[..cut]) else {
                    continue;
                };
                // A cut body parses only at an event boundary, or just before the final CRLF of an event
                // with a length, and then gives the events before the cut.
                assert_eq!(got[..], events[..got.len()], "cut {cut}");
                let end = ends[got.len()];
                let lenient = got
                    .last()
                    .is_some_and(|e| !e.content.is_empty() || matches!(e.kind, Text | Binary));
                assert!(
                    end == cut || (lenient && end == cut + 2),
                    "cut {cut} end {end}"
                );
            }
            // Two bodies back to back parse as both.
            let mut twice = body.clone();
            twice.extend_from_slice(&body);
            let both = parse_events(&twice).expect("valid");
            assert_eq!(both, [&events[..], &events[..]].concat());
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        const ALPHABET: &[u8] = b"\r\n\r\n OPENTEXTBINARYPINGCLOSE0123456789abcdefABCDEF\x00";
        let mut rng = Rng(0x0dd_ba11);
        for _ in 0..20_000 {
            let len = rng.below(60);
            let body: Vec<u8> = (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect();
            match parse_events(&body) {
                Ok(events) => {
                    // Re-encoding is canonical: it parses to the same events.
                    let again = encode_all(&events);
                    assert_eq!(parse_events(&again), Ok(events.clone()));
                    for e in events.iter().filter(|e| e.kind == Close) {
                        let _ = decode_close(e.content);
                    }
                }
                Err(e) => assert!(!e.to_string().contains('\n')),
            }
        }
    }
}
