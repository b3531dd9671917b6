//! Minimal WebSocket pieces for the bench tools (written apart from holdfast's codec, so the system under
//! test does not also grade itself): frame headers, masking, the accept key, and the
//! `application/websocket-events` format of WebSocket-over-HTTP.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// A frame header: (fin, opcode, mask, payload length, header length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    pub header_len: usize,
}

/// The header at the front of `buf`, or `None` if it is not all there yet.
pub fn parse_header(buf: &[u8]) -> Option<Header> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as u64,
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (n as u64, 2),
    };
    let mask = if masked {
        let m: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    Some(Header {
        fin,
        opcode,
        mask,
        len,
        header_len: at,
    })
}

/// XOR `data` with `mask`, `offset` bytes into the payload.
pub fn unmask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[(offset + i) % 4];
    }
}

/// Append a frame header (masked when `mask` is given; the caller masks the payload).
pub fn write_header(out: &mut Vec<u8>, fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= u16::MAX as u64 {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
}

/// Append a whole frame; `mask` masks a copy of the payload.
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    write_header(out, fin, opcode, payload.len() as u64, mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        unmask(&mut out[start..], mask, 0);
    }
}

/// `Sec-WebSocket-Accept` for a key.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(h.finalize())
}

/// One WebSocket-over-HTTP event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsEvent {
    pub kind: String,
    pub content: Vec<u8>,
}

/// Parse an events body; `None` if it is malformed.
pub fn parse_events(mut body: &[u8]) -> Option<Vec<WsEvent>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let eol = body.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&body[..eol]).ok()?;
        body = &body[eol + 2..];
        match line.split_once(' ') {
            Some((kind, hex)) => {
                let len = usize::from_str_radix(hex, 16).ok()?;
                let content = body.get(..len)?.to_vec();
                body = body.get(len + 2..).unwrap_or(&[]);
                out.push(WsEvent {
                    kind: kind.to_string(),
                    content,
                });
            }
            None => out.push(WsEvent {
                kind: line.to_string(),
                content: Vec::new(),
            }),
        }
    }
    Some(out)
}

/// Append one event.
pub fn write_event(out: &mut Vec<u8>, kind: &str, content: &[u8]) {
    out.extend_from_slice(kind.as_bytes());
    if !content.is_empty() {
        out.extend_from_slice(format!(" {:x}\r\n", content.len()).as_bytes());
        out.extend_from_slice(content);
    }
    out.extend_from_slice(b"\r\n");
}

// --- the client side, for bench-ws ------------------------------------------------------------

/// Longest response head a client waits for before giving up on a handshake.
pub const CLIENT_HEAD_MAX: usize = 16 * 1024;
/// Bytes of buffered partial frames a [`ClientReader`] keeps once they have been used up; more
/// capacity than this is given back, so thousands of idle connections do not each keep their
/// busiest read.
const READER_KEEP: usize = 4096;

/// A client's opening handshake for `path` on `host`, with the 16-byte `key` (sent base64-encoded).
pub fn client_handshake(host: &str, path: &str, key: &[u8; 16]) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: holdfast-bench\r\n\r\n",
        STANDARD.encode(key)
    )
    .into_bytes()
}

/// Why a server's handshake answer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not a `101` (the status, 0 when the status line is unreadable).
    Status(u16),
    /// A `101` whose `Upgrade`, `Connection` or `Sec-WebSocket-Accept` is wrong.
    Header(&'static str),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Status(s) => write!(f, "status {s}"),
            HandshakeError::Header(h) => write!(f, "bad 101: {h}"),
        }
    }
}

/// The end of a response head at the front of `buf` (the index just past `\r\n\r\n`), if it is there.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Checks a whole response head (status line to the blank line) against the `key` the client sent.
pub fn check_handshake(head: &[u8], key: &[u8; 16]) -> Result<(), HandshakeError> {
    let text = std::str::from_utf8(head).map_err(|_| HandshakeError::Status(0))?;
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| {
            let mut w = l.split(' ');
            let version = w.next()?;
            version.starts_with("HTTP/1.").then_some(())?;
            w.next()?.parse().ok()
        })
        .ok_or(HandshakeError::Status(0))?;
    if status != 101 {
        return Err(HandshakeError::Status(status));
    }
    let mut upgrade = false;
    let mut connection = false;
    let mut accept = false;
    let want = accept_key(&STANDARD.encode(key));
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept |= value == want;
        }
    }
    match (upgrade, connection, accept) {
        (false, _, _) => Err(HandshakeError::Header("Upgrade")),
        (_, false, _) => Err(HandshakeError::Header("Connection")),
        (_, _, false) => Err(HandshakeError::Header("Sec-WebSocket-Accept")),
        _ => Ok(()),
    }
}

/// What a server sent, one whole message or control frame at a time.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A text or binary message, reassembled if it came in fragments.
    Message {
        opcode: u8,
        payload: &'a [u8],
    },
    Ping(&'a [u8]),
    Pong,
    /// A close frame: its code (1005 when it carried none) and reason.
    Close {
        code: u16,
        reason: &'a [u8],
    },
}

/// Why a server's frames were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Server frames must not be masked (RFC 6455 5.1).
    Masked,
    /// RSV bits set with no extension negotiated.
    Reserved,
    UnknownOpcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    BadControl,
    /// A continuation with no message begun, or a new message before the last one finished.
    BadFragment,
    /// A message longer than the reader's limit.
    TooLong,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Masked => f.write_str("masked server frame"),
            ReadError::Reserved => f.write_str("reserved bits set"),
            ReadError::UnknownOpcode(o) => write!(f, "unknown opcode {o}"),
            ReadError::BadControl => f.write_str("bad control frame"),
            ReadError::BadFragment => f.write_str("bad fragmentation"),
            ReadError::TooLong => f.write_str("message too long"),
        }
    }
}

/// Cuts the bytes a client reads into messages and control frames. Sans-IO: feed it whatever one
/// `read` returned. Bytes are copied only when a frame straddles two reads, or a message is
/// fragmented.
#[derive(Debug, Default)]
pub struct ClientReader {
    /// The start of a frame whose end has not arrived.
    buf: Vec<u8>,
    /// The fragments of a message so far, and its opcode.
    msg: Vec<u8>,
    msg_op: Option<u8>,
    max: usize,
}

impl ClientReader {
    /// A reader that refuses messages longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        ClientReader {
            max,
            ..Default::default()
        }
    }

    /// Reads `data`, calling `on` for every whole message or control frame in it.
    pub fn feed(&mut self, data: &[u8], mut on: impl FnMut(Incoming<'_>)) -> Result<(), ReadError> {
        if self.buf.is_empty() {
            let used = self.parse(data, &mut on)?;
            self.buf.extend_from_slice(data.get(used..).unwrap_or(&[]));
        } else {
            self.buf.extend_from_slice(data);
            let mut buf = std::mem::take(&mut self.buf);
            let used = self.parse(&buf, &mut on);
            match used {
                Ok(used) => {
                    buf.drain(..used.min(buf.len()));
                    self.buf = buf;
                }
                Err(e) => return Err(e),
            }
        }
        if self.buf.is_empty() && self.buf.capacity() > READER_KEEP {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Bytes held for a frame or message not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.msg.len()
    }

    fn parse(
        &mut self,
        data: &[u8],
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<usize, ReadError> {
        let mut at = 0usize;
        loop {
            let rest = data.get(at..).unwrap_or(&[]);
            if let Some(b) = rest.first() {
                if b & 0x70 != 0 {
                    return Err(ReadError::Reserved);
                }
            }
            if let Some(b) = rest.get(1) {
                if b & 0x80 != 0 {
                    return Err(ReadError::Masked);
                }
            }
            let Some(h) = parse_header(rest) else {
                return Ok(at);
            };
            let control = h.opcode >= 0x8;
            if control && (!h.fin || h.len > 125) {
                return Err(ReadError::BadControl);
            }
            if h.len > self.max as u64 {
                return Err(ReadError::TooLong);
            }
            let total = h.header_len + h.len as usize;
            let Some(payload) = rest.get(h.header_len..total) else {
                return Ok(at);
            };
            at += total;
            match h.opcode {
                OP_PING => on(Incoming::Ping(payload)),
                OP_PONG => on(Incoming::Pong),
                OP_CLOSE => {
                    let (code, reason) = match payload {
                        [a, b, reason @ ..] => (u16::from_be_bytes([*a, *b]), reason),
                        _ => (1005, &[][..]),
                    };
                    on(Incoming::Close { code, reason });
                }
                OP_TEXT | OP_BINARY => {
                    if self.msg_op.is_some() {
                        return Err(ReadError::BadFragment);
                    }
                    if h.fin {
                        on(Incoming::Message {
                            opcode: h.opcode,
                            payload,
                        });
                    } else {
                        self.msg_op = Some(h.opcode);
                        self.msg.extend_from_slice(payload);
                    }
                }
                OP_CONT => {
                    let Some(opcode) = self.msg_op else {
                        return Err(ReadError::BadFragment);
                    };
                    if self.msg.len() + payload.len() > self.max {
                        return Err(ReadError::TooLong);
                    }
                    self.msg.extend_from_slice(payload);
                    if h.fin {
                        on(Incoming::Message {
                            opcode,
                            payload: &self.msg,
                        });
                        self.msg_op = None;
                        self.msg = Vec::new();
                    }
                }
                op => return Err(ReadError::UnknownOpcode(op)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_round_trip_at_each_length_encoding() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let payload = vec![7u8; len];
            let mut out = Vec::new();
            write_frame(&mut out, true, OP_BINARY, &payload, Some([1, 2, 3, 4]));
            let h = parse_header(&out).unwrap();
            assert_eq!((h.fin, h.opcode, h.len), (true, OP_BINARY, len as u64));
            let mut body = out[h.header_len..].to_vec();
            unmask(&mut body, h.mask.unwrap(), 0);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn events_round_trip() {
        let mut body = Vec::new();
        write_event(&mut body, "OPEN", b"");
        write_event(&mut body, "TEXT", b"hello\r\nworld");
        let got = parse_events(&body).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].content, b"hello\r\nworld");
    }

    #[test]
    fn client_handshake_checks_the_answer() {
        let key = *b"0123456789abcdef";
        let req = String::from_utf8(client_handshake("h:1", "/ws?channel=a", &key)).unwrap();
        assert!(req.starts_with("GET /ws?channel=a HTTP/1.1\r\nHost: h:1\r\n"));
        let sent = STANDARD.encode(key);
        assert!(req.contains(&format!("Sec-WebSocket-Key: {sent}\r\n")));
        let accept = accept_key(&sent);
        let good = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        assert_eq!(head_end(good.as_bytes()), Some(good.len()));
        assert_eq!(head_end(b"HTTP/1.1 101 x\r\n"), None);
        assert_eq!(check_handshake(good.as_bytes(), &key), Ok(()));
        let cases: &[(&str, HandshakeError)] = &[
            ("HTTP/1.1 502 Bad Gateway\r\n\r\n", HandshakeError::Status(502)),
            ("garbage\r\n\r\n", HandshakeError::Status(0)),
            (
                "HTTP/1.1 101 x\r\nConnection: Upgrade\r\n\r\n",
                HandshakeError::Header("Upgrade"),
            ),
            (
                "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n\r\n",
                HandshakeError::Header("Connection"),
            ),
            (
                "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
                HandshakeError::Header("Sec-WebSocket-Accept"),
            ),
        ];
        for (head, want) in cases {
            assert_eq!(
                check_handshake(head.as_bytes(), &key),
                Err(want.clone()),
                "{head}"
            );
        }
    }

    fn collect(reader: &mut ClientReader, data: &[u8]) -> Result<Vec<String>, ReadError> {
        let mut got = Vec::new();
        reader.feed(data, |ev| {
            got.push(match ev {
                Incoming::Message { opcode, payload } => {
                    format!("{opcode}:{}", String::from_utf8_lossy(payload))
                }
                Incoming::Ping(p) => format!("ping:{}", String::from_utf8_lossy(p)),
                Incoming::Pong => "pong".to_string(),
                Incoming::Close { code, reason } => {
                    format!("close:{code}:{}", String::from_utf8_lossy(reason))
                }
            })
        })?;
        Ok(got)
    }

    #[test]
    fn client_reader_reassembles_at_every_split() {
        let mut stream = Vec::new();
        write_frame(&mut stream, true, OP_TEXT, b"hello", None);
        write_frame(&mut stream, false, OP_BINARY, b"ab", None);
        write_frame(&mut stream, true, OP_PING, b"p", None);
        write_frame(&mut stream, true, OP_CONT, &[b'c'; 300], None);
        write_frame(&mut stream, true, OP_PONG, b"", None);
        write_frame(&mut stream, true, OP_CLOSE, b"\x03\xe8bye", None);
        write_frame(&mut stream, true, OP_CLOSE, b"", None);
        let want = vec![
            "1:hello".to_string(),
            "ping:p".to_string(),
            format!("2:ab{}", "c".repeat(300)),
            "pong".to_string(),
            "close:1000:bye".to_string(),
            "close:1005:".to_string(),
        ];
        for split in 0..stream.len() {
            let mut r = ClientReader::new(1024);
            let mut got = collect(&mut r, &stream[..split]).unwrap();
            got.extend(collect(&mut r, &stream[split..]).unwrap());
            assert_eq!(got, want, "split at {split}");
            assert_eq!(r.pending(), 0);
        }
        let mut r = ClientReader::new(1024);
        let mut got = Vec::new();
        for b in &stream {
            got.extend(collect(&mut r, std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got, want);
    }

    #[test]
    fn client_reader_refuses_bad_frames() {
        let frame = |fin, op, payload: &[u8], mask| {
            let mut out = Vec::new();
            write_frame(&mut out, fin, op, payload, mask);
            out
        };
        let mut rsv = frame(true, OP_TEXT, b"x", None);
        rsv[0] |= 0x40;
        let mut two = frame(false, OP_TEXT, b"a", None);
        two.extend(frame(true, OP_TEXT, b"b", None));
        let cases: Vec<(Vec<u8>, ReadError)> = vec![
            (
                frame(true, OP_TEXT, b"x", Some([1, 2, 3, 4])),
                ReadError::Masked,
            ),
            (rsv, ReadError::Reserved),
            (frame(true, 3, b"", None), ReadError::UnknownOpcode(3)),
            (frame(false, OP_PING, b"", None), ReadError::BadControl),
            (frame(true, OP_PING, &[0; 126], None), ReadError::BadControl),
            (frame(true, OP_CONT, b"x", None), ReadError::BadFragment),
            (two, ReadError::BadFragment),
            (frame(true, OP_BINARY, &[0; 20], None), ReadError::TooLong),
        ];
        for (bytes, want) in cases {
            let mut r = ClientReader::new(16);
            assert_eq!(collect(&mut r, &bytes), Err(want), "{bytes:?}");
        }
        // A long header is refused before its payload arrives.
        let mut r = ClientReader::new(16);
        let mut head = Vec::new();
        write_header(&mut head, true, OP_BINARY, 1 << 40, None);
        assert_eq!(collect(&mut r, &head), Err(ReadError::TooLong));
    }
}
