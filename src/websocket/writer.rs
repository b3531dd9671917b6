//! Frame encoding into caller buffers.
//!
//! Two ways to send: [`encode_frame`] for a payload in hand (control frames, assembled messages), and
//! [`encode_header`] followed by [`append_masked`] (or a plain copy) for a relay that streams a frame's
//! payload in pieces as they arrive, using the length from the incoming frame's header.
//!
//! Masks are the caller's: RFC 6455 5.3 wants each frame's key "derived from a strong source of
//! entropy", and a sans-IO encoder has none. A client-side caller passes a fresh key per frame; a
//! server passes `None`.

use super::close::fit_close_reason;
use super::frame::{apply_mask, write_header, FrameHeader, MessageKind, OpCode, HEADER_SIZE_MAX};

/// Append `header`, minimally encoded.
pub fn encode_header(out: &mut Vec<u8>, header: &FrameHeader) {
    let mut buf = [0u8; HEADER_SIZE_MAX];
    let n = write_header(header, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// Append `data` masked with `mask`, where `offset` is how many bytes of the same frame's payload were
/// already appended.
pub fn append_masked(out: &mut Vec<u8>, data: &[u8], mask: [u8; 4], offset: usize) {
    let start = out.len();
    out.extend_from_slice(data);
    apply_mask(&mut out[start..], mask, offset);
}

/// Append one whole frame carrying `payload`, masked with `mask` if given (the payload itself is not
/// modified). Panics on a control frame that is not final or is over 125 bytes: that is a bug in the
/// caller, which must cut or refuse such payloads first.
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        len: payload.len() as u64,
    };
    encode_header(out, &header);
    match mask {
        Some(mask) => append_masked(out, payload, mask, 0),
        None => out.extend_from_slice(payload),
    }
}

/// Append a Close frame: empty when `code` is `None`, otherwise the code and `reason` cut to fit (see
/// [`fit_close_reason`]). The code is written as given; see [`super::close::write_close_payload`].
pub fn encode_close(out: &mut Vec<u8>, code: Option<u16>, reason: &str, mask: Option<[u8; 4]>) {
    let Some(code) = code else {
        encode_frame(out, OpCode::Close, true, &[], mask);
        return;
    };
    let reason = fit_close_reason(reason).as_bytes();
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Close,
        mask,
        len: 2 + reason.len() as u64,
    };
    encode_header(out, &header);
    match mask {
        Some(mask) => {
            append_masked(out, &code.to_be_bytes(), mask, 0);
            append_masked(out, reason, mask, 2);
        }
        None => {
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(reason);
        }
    }
}

/// One frame of a message cut by [`split_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub opcode: OpCode,
    pub fin: bool,
    pub payload: &'a [u8],
}

/// Iterator over the frames of one message; see [`split_message`].
#[derive(Debug, Clone)]
pub struct Fragments<'a> {
    kind: MessageKind,
    rest: &'a [u8],
    max: usize,
    first: bool,
    done: bool,
}

/// Cut a message into frames of at most `max_payload` bytes each (16,384 for WebSocket-over-HTTP, say).
/// An empty message is one empty final frame. Text may be cut inside a character: RFC 6455 5.6 speaks of
/// "text data encoded as UTF-8" for the message, and a receiver validates the reassembled whole (or, like
/// [`super::reader::Reader`], the stream across frames). Panics if `max_payload` is 0.
pub fn split_message(kind: MessageKind, data: &[u8], max_payload: usize) -> Fragments<'_> {
    assert!(max_payload > 0, "fragments must carry at least one byte");
    Fragments {
        kind,
        rest: data,
        max: max_payload,
        first: true,
        done: false,
    }
}

impl<'a> Iterator for Fragments<'a> {
    type Item = Fragment<'a>;

    fn next(&mut self) -> Option<Fragment<'a>> {
        if self.done {
            return None;
        }
        let (payload, rest) = self.rest.split_at(self.rest.len().min(self.max));
        self.rest = rest;
        let opcode = if self.first {
            self.kind.opcode()
        } else {
            OpCode::Continuation
        };
        self.first = false;
        self.done = rest.is_empty();
        Some(Fragment {
            opcode,
            fin: self.done,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::close::{parse_close_payload, NORMAL};
    use crate::websocket::frame::read_header;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// The examples of RFC 6455 5.7, byte for byte.
    #[test]
    fn rfc_examples() {
        let frame = |opcode, fin, payload: &[u8], mask| {
            let mut out = Vec::new();
            encode_frame(&mut out, opcode, fin, payload, mask);
            out
        };
        assert_eq!(
            frame(OpCode::Text, true, b"Hello", None),
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            frame(OpCode::Text, true, b"Hello", Some(KEY)),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        assert_eq!(
            frame(OpCode::Text, false, b"Hel", None),
            [0x01, 0x03, 0x48, 0x65, 0x6c]
        );
        assert_eq!(
            frame(OpCode::Continuation, true, b"lo", None),
            [0x80, 0x02, 0x6c, 0x6f]
        );
        assert_eq!(
            frame(OpCode::Ping, true, b"Hello", None),
            [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            frame(OpCode::Pong, true, b"Hello", Some(KEY)),
            [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        let big = frame(OpCode::Binary, true, &[0u8; 256], None);
        assert_eq!(big[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(big.len(), 4 + 256);
        let huge = frame(OpCode::Binary, true, &vec![0u8; 65536], None);
        assert_eq!(huge[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(huge.len(), 10 + 65536);
    }

    #[test]
    fn streamed_frame_equals_whole_frame() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut whole = Vec::new();
        encode_frame(&mut whole, OpCode::Binary, false, &payload, Some(KEY));
        let mut streamed = Vec::new();
        encode_header(
            &mut streamed,
            &FrameHeader {
                fin: false,
                rsv: 0,
                opcode: OpCode::Binary,
                mask: Some(KEY),
                len: payload.len() as u64,
            },
        );
        let mut offset = 0;
        for piece in payload.chunks(7) {
            append_masked(&mut streamed, piece, KEY, offset);
            offset += piece.len();
        }
        assert_eq!(streamed, whole);
    }

    #[test]
    fn close_frames() {
        type Case<'a> = (Option<u16>, &'a str, Option<[u8; 4]>);
        let cases: &[Case<'_>] = &[
            (None, "ignored without a code", None),
            (None, "", Some(KEY)),
            (Some(NORMAL), "", None),
            (Some(1001), "bye", Some(KEY)),
            (Some(4000), &"ü".repeat(100), Some(KEY)),
        ];
        for &(code, reason, mask) in cases {
            let mut out = Vec::new();
            encode_close(&mut out, code, reason, mask);
            let (header, n) = read_header(&out).unwrap().unwrap();
            assert_eq!(
                (header.opcode, header.fin, header.mask),
                (OpCode::Close, true, mask)
            );
            assert_eq!(n as u64 + header.len, out.len() as u64);
            assert!(header.len <= 125);
            let mut payload = out[n..].to_vec();
            if let Some(mask) = mask {
                apply_mask(&mut payload, mask, 0);
            }
            let (got_code, got_reason) = parse_close_payload(&payload).unwrap();
            assert_eq!(got_code, code);
            if code.is_some() {
                assert_eq!(got_reason, fit_close_reason(reason));
            } else {
                assert_eq!(got_reason, "");
            }
        }
    }

    #[test]
    #[should_panic(expected = "control frames")]
    fn oversized_ping_is_a_bug() {
        encode_frame(&mut Vec::new(), OpCode::Ping, true, &[0; 126], None);
    }

    #[test]
    fn splitting() {
        let pieces = |kind, data: &[u8], max| -> Vec<(OpCode, bool, usize)> {
            split_message(kind, data, max)
                .map(|f| (f.opcode, f.fin, f.payload.len()))
                .collect()
        };
        use OpCode::*;
        assert_eq!(pieces(MessageKind::Text, b"", 4), [(Text, true, 0)]);
        assert_eq!(pieces(MessageKind::Binary, b"abcd", 4), [(Binary, true, 4)]);
        assert_eq!(
            pieces(MessageKind::Binary, b"abcde", 4),
            [(Binary, false, 4), (Continuation, true, 1)]
        );
        assert_eq!(
            pieces(MessageKind::Text, b"abcdefghi", 3),
            [
                (Text, false, 3),
                (Continuation, false, 3),
                (Continuation, true, 3)
            ]
        );
        let data = vec![7u8; 40_000];
        let frames: Vec<Fragment<'_>> = split_message(MessageKind::Binary, &data, 16_384).collect();
        assert_eq!(
            frames.iter().map(|f| f.payload.len()).collect::<Vec<_>>(),
            [16_384, 16_384, 7_232]
        );
        assert_eq!(frames.iter().flat_map(|f| f.payload).count(), data.len());
        // A character may straddle two frames; the bytes are unchanged.
        let text = "aé€🦀".as_bytes();
        let joined: Vec<u8> = split_message(MessageKind::Text, text, 2)
            .flat_map(|f| f.payload.to_vec())
            .collect();
        assert_eq!(joined, text);
    }
}
