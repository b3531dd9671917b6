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
        126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as u64, 4),
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
pub fn write_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
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
}
