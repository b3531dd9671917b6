//! What the GRIP benchmark sends and expects, as pure functions: the origin's hold responses, the
//! publish requests for the control API, and the one-line messages whose send time travels inside
//! them so the receiver can time each delivery.
//!
//! Message lines (each published content is exactly one line, ended by `\n`):
//! - `open` — the origin's initial body of a stream hold;
//! - `p <round>` — a priming message, sent until every stream has one, so that measuring starts
//!   only once every subscription is live;
//! - `m <seq> <sent_ns> <padding>` — a measured message: `seq` counts from 0, `sent_ns` is the
//!   sender's monotonic clock (nanoseconds since the benchmark process started) just before the
//!   publish request was written;
//! - `r <seq> <sent_ns> <padding>` — the body of a long-poll response.

use std::fmt::Write as _;

/// Longest channel name the origin takes from a query; longer or odd ones fall back to the default.
pub const CHANNEL_MAX: usize = 64;
/// Channel used when the request names none.
pub const DEFAULT_CHANNEL: &str = "bench";
/// Largest message the benchmark will build.
pub const MESSAGE_MAX: usize = 16 * 1024;
/// Path the origin answers without a hold, so a harness can check a route without holding it.
pub const READY_PATH: &str = "/ready";

/// The kind of hold the origin asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldMode {
    Stream,
    Response,
}

impl HoldMode {
    pub fn parse(text: &str) -> Option<HoldMode> {
        match text {
            "stream" => Some(HoldMode::Stream),
            "response" => Some(HoldMode::Response),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HoldMode::Stream => "stream",
            HoldMode::Response => "response",
        }
    }
}

/// The request target (second word of the request line) of the head at the start of `buf`, after
/// any blank-line padding; `None` until that first line is complete or when it is malformed.
pub fn request_target(buf: &[u8]) -> Option<&[u8]> {
    let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n')?;
    let rest = buf.get(start..)?;
    let line = rest.get(..rest.iter().position(|b| *b == b'\n')?)?;
    line.split(|b| *b == b' ').nth(1).filter(|t| !t.is_empty())
}

/// The path of a request target, without its query.
pub fn target_path(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|b| *b == b'?')
        .unwrap_or(target.len());
    target.get(..end).unwrap_or(target)
}

/// The `channel` query parameter of a request target when it is a plain name (letters, digits,
/// `-`, `_`, `.`, at most [`CHANNEL_MAX`] bytes); anything else gives [`DEFAULT_CHANNEL`].
pub fn channel_of(target: &[u8]) -> &str {
    let query = match target.iter().position(|b| *b == b'?') {
        Some(q) => target.get(q + 1..).unwrap_or(&[]),
        None => return DEFAULT_CHANNEL,
    };
    let found = query
        .split(|b| *b == b'&')
        .find_map(|pair| pair.strip_prefix(b"channel="));
    match found {
        Some(name)
            if !name.is_empty()
                && name.len() <= CHANNEL_MAX
                && name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b)) =>
        {
            std::str::from_utf8(name).unwrap_or(DEFAULT_CHANNEL)
        }
        _ => DEFAULT_CHANNEL,
    }
}

/// The origin's answer that makes the proxy hold the request on `channel`. The body is what a
/// stream starts with, or what a long-poll gets if its hold times out.
pub fn hold_response(mode: HoldMode, channel: &str, close: bool) -> Vec<u8> {
    let body = match mode {
        HoldMode::Stream => "open\n",
        HoldMode::Response => "timeout\n",
    };
    let mut out = String::with_capacity(192);
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nGrip-Hold: {}\r\nGrip-Channel: {}\r\n\
Content-Length: {}\r\n{}\r\n{}",
        mode.as_str(),
        channel,
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
        body
    );
    out.into_bytes()
}

/// A message line of exactly `size` bytes (or the shortest that holds its fields, if more), `\n`
/// included: `<kind> <seq> <sent_ns> ` then `x` padding.
pub fn message(kind: char, seq: u64, sent_ns: u64, size: usize) -> String {
    let mut out = String::with_capacity(size.min(MESSAGE_MAX) + 1);
    let _ = write!(out, "{kind} {seq} {sent_ns} ");
    let want = size.min(MESSAGE_MAX);
    let pad = want.saturating_sub(out.len() + 1);
    out.extend(std::iter::repeat_n('x', pad));
    out.push('\n');
    out
}

/// One received line, as the benchmark understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Open,
    Prime(u64),
    Message { kind: u8, seq: u64, sent_ns: u64 },
    Other,
}

fn number(word: Option<&[u8]>) -> Option<u64> {
    let word = word?;
    // At most 19 digits, so the value always fits a u64.
    if word.is_empty() || word.len() > 19 {
        return None;
    }
    word.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

pub fn parse_line(line: &[u8]) -> Line {
    if line == b"open" {
        return Line::Open;
    }
    let mut words = line.split(|b| *b == b' ');
    match words.next() {
        Some(b"p") => number(words.next()).map_or(Line::Other, Line::Prime),
        Some(kind @ (b"m" | b"r")) => match (number(words.next()), number(words.next())) {
            (Some(seq), Some(sent_ns)) => Line::Message {
                kind: kind.first().copied().unwrap_or(b'm'),
                seq,
                sent_ns,
            },
            _ => Line::Other,
        },
        _ => Line::Other,
    }
}

/// Appends `text` as a JSON string literal.
pub fn json_string(text: &str, out: &mut String) {
    out.push('"');
    // Runs of bytes that need no escape are copied whole: the publishing thread formats every item
    // while the clock runs, and its CPU comes out of the same two cores as the proxy's.
    let mut rest = text;
    while let Some(at) = rest
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < 0x20)
    {
        out.push_str(&rest[..at]);
        match rest.as_bytes()[at] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// A publish body with one `http-stream` item per content, all on `channel`.
pub fn stream_items(channel: &str, contents: &[String]) -> String {
    content_items(channel, "http-stream", contents)
}

/// A publish body with one `ws-message` item per content (each a text message), all on `channel`.
pub fn ws_items(channel: &str, contents: &[String]) -> String {
    content_items(channel, "ws-message", contents)
}

/// One item per content, all on `channel`, in `format` (a format whose payload field is `content`).
fn content_items(channel: &str, format: &str, contents: &[String]) -> String {
    let mut out = String::from("{\"items\":[");
    for (i, content) in contents.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"channel\":");
        json_string(channel, &mut out);
        out.push_str(",\"formats\":{\"");
        out.push_str(format);
        out.push_str("\":{\"content\":");
        json_string(content, &mut out);
        out.push_str("}}}");
    }
    out.push_str("]}");
    out
}

/// One `http-stream` item as a ZeroMQ publish frame: `J` and the item's JSON. For a PULL socket
/// the item names its `channel`; on SUB the channel travels in the first frame, so `None` leaves it
/// out.
pub fn zmq_stream_frame(channel: Option<&str>, content: &str) -> Vec<u8> {
    let mut out = String::with_capacity(content.len() + 80);
    out.push_str("J{");
    if let Some(channel) = channel {
        out.push_str("\"channel\":");
        json_string(channel, &mut out);
        out.push(',');
    }
    out.push_str("\"formats\":{\"http-stream\":{\"content\":");
    json_string(content, &mut out);
    out.push_str("}}}");
    out.into_bytes()
}

/// Writes into `out` (cleared first) exactly `zmq_stream_frame(channel, &message(kind, seq, sent_ns, size))`,
/// without building the message or escaping it byte by byte: its only character that JSON escapes is
/// the final newline. The publishing thread does this for every item while the clock runs, sharing
/// the two cores with the proxy.
pub fn zmq_stream_frame_into(
    out: &mut Vec<u8>,
    channel: Option<&str>,
    kind: char,
    seq: u64,
    sent_ns: u64,
    size: usize,
) {
    out.clear();
    out.extend_from_slice(b"J{");
    if let Some(channel) = channel {
        let mut quoted = String::new();
        json_string(channel, &mut quoted);
        out.extend_from_slice(b"\"channel\":");
        out.extend_from_slice(quoted.as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"\"formats\":{\"http-stream\":{\"content\":\"");
    let start = out.len();
    let mut kind_buf = [0u8; 4];
    out.extend_from_slice(kind.encode_utf8(&mut kind_buf).as_bytes());
    out.push(b' ');
    push_decimal(out, seq);
    out.push(b' ');
    push_decimal(out, sent_ns);
    out.push(b' ');
    let line = out.len() - start;
    let want = size.min(MESSAGE_MAX);
    out.resize(out.len() + want.saturating_sub(line + 1), b'x');
    out.extend_from_slice(b"\\n\"}}}");
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A publish body with one `http-response` item per `(channel, body)`.
pub fn response_items(items: &[(String, String)]) -> String {
    let mut out = String::from("{\"items\":[");
    for (i, (channel, body)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"channel\":");
        json_string(channel, &mut out);
        out.push_str(",\"formats\":{\"http-response\":{\"body\":");
        json_string(body, &mut out);
        out.push_str("}}}");
    }
    out.push_str("]}");
    out
}

/// A `POST /publish/` request carrying `body`; the connection closes after it, as both control
/// APIs want.
pub fn publish_request(host: &str, body: &str) -> Vec<u8> {
    let mut out = String::with_capacity(body.len() + 160);
    let _ = write!(
        out,
        "POST /publish/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_channels() {
        // (request head, its target, the channel the origin takes from it)
        type Case<'a> = (&'a [u8], Option<&'a [u8]>, &'a str);
        let cases: &[Case] = &[
            (
                b"GET /s?channel=lp-7 HTTP/1.1\r\nHost: a\r\n\r\n",
                Some(b"/s?channel=lp-7"),
                "lp-7",
            ),
            (
                b"\r\nGET /s?a=1&channel=x.y_z HTTP/1.1\r\n",
                Some(b"/s?a=1&channel=x.y_z"),
                "x.y_z",
            ),
            (b"GET /s HTTP/1.1\r\n", Some(b"/s"), DEFAULT_CHANNEL),
            (
                b"GET /s?channel= HTTP/1.1\r\n",
                Some(b"/s?channel="),
                DEFAULT_CHANNEL,
            ),
            (
                b"GET /s?channel=a%20b HTTP/1.1\r\n",
                Some(b"/s?channel=a%20b"),
                DEFAULT_CHANNEL,
            ),
            (b"GET /s?channel=abc HTTP/1.1", None, ""),
            (b"GET\r\n", None, ""),
            (b"", None, ""),
        ];
        for (input, target, channel) in cases {
            let got = request_target(input);
            assert_eq!(got, *target, "{:?}", String::from_utf8_lossy(input));
            if let Some(t) = got {
                assert_eq!(channel_of(t), *channel);
            }
        }
        let long = format!("/s?channel={}", "a".repeat(CHANNEL_MAX + 1));
        assert_eq!(channel_of(long.as_bytes()), DEFAULT_CHANNEL);
        let fits = format!("/s?channel={}", "a".repeat(CHANNEL_MAX));
        assert_eq!(channel_of(fits.as_bytes()).len(), CHANNEL_MAX);
        assert_eq!(target_path(b"/ready?x=1"), b"/ready");
        assert_eq!(target_path(b"/ready"), b"/ready");
    }

    #[test]
    fn hold_responses_frame_their_body() {
        for mode in [HoldMode::Stream, HoldMode::Response] {
            for close in [false, true] {
                let r = hold_response(mode, "c1", close);
                let text = String::from_utf8(r.clone()).unwrap();
                assert!(text.contains(&format!("Grip-Hold: {}\r\n", mode.as_str())));
                assert!(text.contains("Grip-Channel: c1\r\n"));
                assert_eq!(text.contains("Connection: close"), close);
                let mut framer = crate::ResponseFramer::new();
                let (used, done) = framer.feed(&r).unwrap();
                assert_eq!(used, r.len());
                assert_eq!(done.map(|d| (d.status, d.keep_alive)), Some((200, !close)));
            }
        }
        assert_eq!(HoldMode::parse("stream"), Some(HoldMode::Stream));
        assert_eq!(HoldMode::parse("Stream"), None);
    }

    #[test]
    fn messages_round_trip() {
        for size in [0, 10, 30, 100, 1000] {
            let m = message('m', 42, 123_456_789_012, size);
            assert!(m.ends_with('\n'));
            assert_eq!(m.matches('\n').count(), 1);
            assert_eq!(m.len(), size.max("m 42 123456789012 \n".len()));
            assert_eq!(
                parse_line(m.trim_end_matches('\n').as_bytes()),
                Line::Message {
                    kind: b'm',
                    seq: 42,
                    sent_ns: 123_456_789_012
                }
            );
        }
        assert_eq!(message('m', 1, 2, MESSAGE_MAX * 2).len(), MESSAGE_MAX);
        let cases: &[(&[u8], Line)] = &[
            (b"open", Line::Open),
            (b"p 3", Line::Prime(3)),
            (
                b"r 1 2 xx",
                Line::Message {
                    kind: b'r',
                    seq: 1,
                    sent_ns: 2,
                },
            ),
            (b"m 1", Line::Other),
            (b"m x 2", Line::Other),
            (b"m 1 99999999999999999999", Line::Other),
            (
                b"p 9999999999999999999",
                Line::Prime(9_999_999_999_999_999_999),
            ),
            (b"p 1a", Line::Other),
            (b"p", Line::Other),
            (b"timeout", Line::Other),
            (b"", Line::Other),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_line(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn fast_zmq_frames_equal_the_built_ones() {
        let mut out = Vec::new();
        for channel in [None, Some("c"), Some("ch-17"), Some("q\"uote")] {
            for (seq, ts) in [(0, 0), (7, 1_234_567), (u64::MAX, u64::MAX)] {
                for size in [0, 10, 30, 100, 1000, MESSAGE_MAX * 2] {
                    zmq_stream_frame_into(&mut out, channel, 'm', seq, ts, size);
                    let want = zmq_stream_frame(channel, &message('m', seq, ts, size));
                    assert_eq!(out, want, "{channel:?} {seq} {ts} {size}");
                }
            }
        }
    }

    #[test]
    fn publish_bodies_are_json() {
        let body = stream_items("c\"h", &["a\nb".to_string(), "\\\u{1}".to_string()]);
        assert_eq!(
            body,
            "{\"items\":[{\"channel\":\"c\\\"h\",\"formats\":{\"http-stream\":{\"content\":\"a\\nb\"}}},\
{\"channel\":\"c\\\"h\",\"formats\":{\"http-stream\":{\"content\":\"\\\\\\u0001\"}}}]}"
        );
        let body = response_items(&[("lp-1".to_string(), "r 1 2\n".to_string())]);
        assert_eq!(
            body,
            "{\"items\":[{\"channel\":\"lp-1\",\"formats\":{\"http-response\":{\"body\":\"r 1 2\\n\"}}}]}"
        );
        assert_eq!(stream_items("c", &[]), "{\"items\":[]}");
        let mut s = String::new();
        json_string("é\"ü\t\u{7f}", &mut s);
        assert_eq!(s, "\"é\\\"ü\\t\u{7f}\"");
        assert_eq!(
            ws_items("c", &["m 1 2 x".to_string(), "q\"".to_string()]),
            "{\"items\":[{\"channel\":\"c\",\"formats\":{\"ws-message\":{\"content\":\"m 1 2 x\"}}},\
{\"channel\":\"c\",\"formats\":{\"ws-message\":{\"content\":\"q\\\"\"}}}]}"
        );
        assert_eq!(
            zmq_stream_frame(Some("c"), "m 1\n"),
            b"J{\"channel\":\"c\",\"formats\":{\"http-stream\":{\"content\":\"m 1\\n\"}}}"
        );
        assert_eq!(
            zmq_stream_frame(None, "x"),
            b"J{\"formats\":{\"http-stream\":{\"content\":\"x\"}}}"
        );
        let req = String::from_utf8(publish_request("h:1", "{}")).unwrap();
        assert!(req.starts_with("POST /publish/ HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(req.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
    }
}
