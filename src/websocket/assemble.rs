//! Whole messages from [`Reader`](super::reader::Reader) events, for the places that need a message at once
//! (WebSocket-over-HTTP events, GRIP control messages) rather than a relayed stream.
//!
//! Memory policy: at most `max_message` bytes are ever collected. The check runs at each data frame's
//! header against the declared length, so a message that would overshoot fails with 1009 before any of
//! the offending frame's payload is stored. The buffer is kept between messages to avoid reallocating,
//! grows no further than `max_message`, and shrinks back to [`RETAINED_CAPACITY_MAX`] when a message
//! begins after a large one, so one burst does not pin memory for the connection's lifetime. A message
//! that arrives as one frame in one piece is returned borrowed from the reader's input, with no copy.

use super::close::ProtocolError;
use super::frame::MessageKind;
use super::reader::Event;

/// Buffer capacity kept between messages; more is given back when the next message begins.
pub const RETAINED_CAPACITY_MAX: usize = 64 * 1024;

/// A complete message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: MessageKind,
    /// The payload; for text, valid UTF-8 (the reader checked it).
    pub data: &'a [u8],
}

/// Collects data events into messages; see the module docs.
#[derive(Debug, Clone)]
pub struct Assembler {
    max_message: usize,
    buf: Vec<u8>,
    /// The message being collected (set by its first frame's header).
    kind: Option<MessageKind>,
    /// Set once a message overshot; every later call reports it again, as the reader does.
    failed: Option<ProtocolError>,
}

impl Assembler {
    /// An assembler for messages of at most `max_message` bytes (inclusive); use the connection's
    /// `WsLimits::max_message`.
    pub fn new(max_message: usize) -> Self {
        Assembler {
            max_message,
            buf: Vec::new(),
            kind: None,
            failed: None,
        }
    }

    /// Take the next event from the reader, in order. Returns the message that `event` completes, if
    /// any. Ping, Pong and Close are not message data: they return `Ok(None)` and stay the caller's to
    /// handle. After an error every call returns it again. Panics if events come out of the order the
    /// reader produces them in (a caller bug).
    pub fn push<'a>(&'a mut self, event: Event<'a>) -> Result<Option<Message<'a>>, ProtocolError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        match event {
            Event::DataFrame {
                kind, first, len, ..
            } => {
                if first {
                    self.begin(kind);
                }
                assert!(self.kind.is_some(), "data frame outside a message");
                // RFC 6455 10.4: implementations with limits on "total message size after reassembly
                // from multiple frames MUST protect themselves against exceeding those limits."
                let total = (self.buf.len() as u64).saturating_add(len);
                if total > self.max_message as u64 {
                    let err = ProtocolError::too_big("message too big");
                    self.failed = Some(err);
                    return Err(err);
                }
                Ok(None)
            }
            Event::Payload {
                data, message_end, ..
            } => {
                let kind = self.kind.expect("payload outside a message");
                if message_end {
                    self.kind = None;
                    if self.buf.is_empty() {
                        // The whole message is in this one piece: no copy.
                        return Ok(Some(Message { kind, data }));
                    }
                }
                self.append(data);
                Ok(message_end.then_some(Message {
                    kind,
                    data: &self.buf,
                }))
            }
            Event::Ping(_) | Event::Pong(_) | Event::Close { .. } => Ok(None),
        }
    }

    /// Give the buffer's memory back (for an idle connection).
    pub fn release(&mut self) {
        self.buf = Vec::new();
    }

    /// Buffer capacity held now, for accounting.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn begin(&mut self, kind: MessageKind) {
        self.buf.clear();
        self.buf.shrink_to(RETAINED_CAPACITY_MAX);
        self.kind = Some(kind);
    }

    /// Append within `max_message`: the header check already bounded the total. Growth doubles as `Vec`
    /// would, but never past `max_message`, so the cap bounds capacity too, not just length.
    fn append(&mut self, data: &[u8]) {
        let needed = self.buf.len() + data.len();
        assert!(
            needed <= self.max_message,
            "payload beyond its frame header"
        );
        if needed > self.buf.capacity() {
            let target = needed.max(self.buf.capacity() * 2).min(self.max_message);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::frame::{OpCode, Role};
    use crate::websocket::limits::WsLimits;
    use crate::websocket::reader::Reader;
    use crate::websocket::writer::encode_frame;

    /// Feed `wire` to a server-side reader in pieces of `piece` bytes; collect messages (owned) or the
    /// first error.
    fn assemble(
        wire: &[u8],
        piece: usize,
        max_message: usize,
    ) -> Result<Vec<(MessageKind, Vec<u8>)>, ProtocolError> {
        let mut reader = Reader::new(Role::Server, WsLimits::default());
        let mut asm = Assembler::new(max_message);
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(piece) {
            pending.extend_from_slice(chunk);
            loop {
                let (n, event) = reader.read(&mut pending)?;
                let Some(event) = event else {
                    pending.drain(..n);
                    if n == 0 {
                        break;
                    }
                    continue;
                };
                if let Some(msg) = asm.push(event)? {
                    out.push((msg.kind, msg.data.to_vec()));
                }
                assert!(asm.capacity() <= max_message.max(RETAINED_CAPACITY_MAX));
                pending.drain(..n);
            }
        }
        Ok(out)
    }

    fn masked(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
        encode_frame(out, opcode, fin, payload, Some([1, 2, 3, 4]));
    }

    #[test]
    fn fragments_and_controls() {
        let mut wire = Vec::new();
        masked(&mut wire, OpCode::Text, false, "hé".as_bytes());
        masked(&mut wire, OpCode::Ping, true, b"p");
        masked(&mut wire, OpCode::Continuation, false, b"");
        masked(&mut wire, OpCode::Continuation, true, "llo".as_bytes());
        masked(&mut wire, OpCode::Binary, true, b"");
        masked(&mut wire, OpCode::Binary, true, &[0, 1, 2]);
        masked(&mut wire, OpCode::Close, true, &[0x03, 0xe8]);
        for piece in [1, 2, 5, 1000] {
            assert_eq!(
                assemble(&wire, piece, 100),
                Ok(vec![
                    (MessageKind::Text, "héllo".as_bytes().to_vec()),
                    (MessageKind::Binary, vec![]),
                    (MessageKind::Binary, vec![0, 1, 2]),
                ]),
                "pieces of {piece}"
            );
        }
    }

    /// A message of exactly `max_message` bytes passes, one byte more fails with 1009, whether it comes
    /// as one frame or as several.
    #[test]
    fn limit_is_inclusive() {
        let max = 1000;
        for frames in [1, 3, 1000] {
            for (size, ok) in [(max, true), (max + 1, false)] {
                let size: usize = size;
                let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
                let step = size.div_ceil(frames);
                let mut wire = Vec::new();
                let chunks: Vec<&[u8]> = data.chunks(step).collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    let op = if i == 0 {
                        OpCode::Binary
                    } else {
                        OpCode::Continuation
                    };
                    masked(&mut wire, op, i + 1 == chunks.len(), chunk);
                }
                for piece in [7, 4096] {
                    let got = assemble(&wire, piece, max);
                    if ok {
                        assert_eq!(got, Ok(vec![(MessageKind::Binary, data.clone())]));
                    } else {
                        assert_eq!(
                            got,
                            Err(ProtocolError::too_big("message too big")),
                            "{frames}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn overshoot_is_refused_at_the_header() {
        // The second frame declares more than fits; no byte of its payload is ever sent, yet it fails.
        let mut wire = Vec::new();
        masked(&mut wire, OpCode::Text, false, b"0123456789");
        // Continuation, FIN, masked, 16-bit length 200, mask 01 02 03 04, and no payload.
        wire.extend_from_slice(&[0x80, 0x80 | 126, 0x00, 200, 1, 2, 3, 4]);
        assert_eq!(
            assemble(&wire, 3, 100),
            Err(ProtocolError::too_big("message too big"))
        );
    }

    #[test]
    fn errors_are_sticky() {
        let mut asm = Assembler::new(4);
        let frame = |first, len| Event::DataFrame {
            kind: MessageKind::Text,
            first,
            fin: true,
            len,
        };
        let too_big = Err(ProtocolError::too_big("message too big"));
        assert_eq!(asm.push(frame(true, 5)), too_big);
        let piece = Event::Payload {
            data: b"12345",
            frame_end: true,
            message_end: true,
        };
        assert_eq!(asm.push(piece), too_big);
        assert_eq!(asm.push(frame(true, 1)), too_big);
    }

    #[test]
    fn single_piece_messages_are_borrowed_and_buffer_is_reused() {
        let mut asm = Assembler::new(1 << 20);
        let frame = Event::DataFrame {
            kind: MessageKind::Binary,
            first: true,
            fin: true,
            len: 3,
        };
        assert_eq!(asm.push(frame), Ok(None));
        let data = [1u8, 2, 3];
        let payload = Event::Payload {
            data: &data,
            frame_end: true,
            message_end: true,
        };
        let msg = asm.push(payload).unwrap().unwrap();
        assert!(std::ptr::eq(msg.data, &data[..]), "borrowed, not copied");
        assert_eq!(asm.capacity(), 0);

        // A large message in pieces grows the buffer; the next message shrinks it back.
        let big = vec![9u8; 200_000];
        let big_frame = Event::DataFrame {
            kind: MessageKind::Binary,
            first: true,
            fin: true,
            len: big.len() as u64,
        };
        asm.push(big_frame).unwrap();
        for (i, piece) in big.chunks(1000).enumerate() {
            let end = (i + 1) * 1000 == big.len();
            let ev = Event::Payload {
                data: piece,
                frame_end: end,
                message_end: end,
            };
            let got = asm.push(ev).unwrap();
            assert_eq!(got.map(|m| m.data.len()), end.then_some(big.len()));
        }
        assert!(asm.capacity() >= big.len() && asm.capacity() <= 1 << 20);
        asm.push(frame).unwrap();
        assert!(asm.capacity() <= RETAINED_CAPACITY_MAX);
        asm.release();
        assert_eq!(asm.capacity(), 0);
        // Control events pass through untouched.
        assert_eq!(asm.push(Event::Ping(b"x")), Ok(None));
        assert_eq!(
            asm.push(Event::Close {
                code: None,
                reason: ""
            }),
            Ok(None)
        );
    }
}
