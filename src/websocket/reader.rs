//! Incremental frame reader for one direction of a connection: bytes in, frame-granular events out.
//!
//! The reader never buffers. Data frame payload is unmasked in place in the caller's buffer and handed
//! back as borrowed [`Event::Payload`] slices in whatever pieces the input arrives in, so a relay can
//! forward a frame of any size, frame boundaries preserved, without holding it. Control frames are the
//! exception: they are at most 125 bytes and are reported only once whole, so the caller's buffer must be
//! able to hold [`CONTROL_FRAME_MAX`] bytes.
//!
//! Every rule that can be checked from a header is checked there, before any of that frame's payload is
//! accepted: RSV bits, opcodes, control-frame shape, masking by role, fragment sequencing, `max_frame`.
//! Text is UTF-8-validated as it streams and fails on the chunk that holds the first impossible byte.
//!
//! Event order, for every data frame: one [`Event::DataFrame`], then one or more [`Event::Payload`]s
//! whose lengths add up to the frame's, the last with `frame_end` set and `message_end` equal to the
//! frame's FIN. A zero-length frame still gets one (empty) `Payload`, so the end of a message is always
//! seen in a `Payload` event. Control-frame events may come between any two data frames, never inside
//! one frame's payload events.
//!
//! After the peer's Close nothing more may arrive: any further byte is an error. After an error, every
//! call returns the same error; the caller sends a Close with its code and stops reading.

use super::close::{parse_close_payload, ProtocolError};
use super::frame::{apply_mask, read_header, MessageKind, OpCode, Role, CONTROL_FRAME_MAX};
use super::limits::WsLimits;
use super::utf8::Utf8Validator;

/// What one [`Reader::read`] call found; borrowed from the input it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A data frame's header. `kind` is the message's (continuation frames inherit it), `first` is set on
    /// the frame that opens a message, `fin` on the one that ends it.
    DataFrame {
        kind: MessageKind,
        first: bool,
        fin: bool,
        len: u64,
    },
    /// Payload of the current data frame, unmasked (and, for text, UTF-8-valid so far).
    Payload {
        data: &'a [u8],
        frame_end: bool,
        message_end: bool,
    },
    /// A whole Ping frame's payload.
    Ping(&'a [u8]),
    /// A whole Pong frame's payload.
    Pong(&'a [u8]),
    /// The peer's Close, validated. Nothing may follow it.
    Close { code: Option<u16>, reason: &'a str },
}

#[derive(Debug, Clone, Copy)]
enum ReadState {
    /// Call: `read`. Next: a frame header. A data frame's header moves to `Payload`; a control frame is
    /// read whole and stays here (or, for Close, moves to `Closed`).
    Header,
    /// Call: `read`. Next: `remaining` payload bytes of the current data frame; a zero-length frame
    /// passes through here too, to report its end.
    Payload {
        remaining: u64,
        mask: Option<[u8; 4]>,
        /// Payload bytes of this frame unmasked so far, modulo 4: where the mask resumes.
        phase: usize,
        fin: bool,
        text: bool,
    },
    /// Call: nothing; the peer's Close was read. Next: any byte is an error.
    Closed,
}

/// Reads frames arriving at one end of a connection; see the module docs.
#[derive(Debug, Clone)]
pub struct Reader {
    role: Role,
    limits: WsLimits,
    state: ReadState,
    /// The kind of the fragmented message in progress: its first frame was read and its final frame's
    /// header not yet.
    message: Option<MessageKind>,
    utf8: Utf8Validator,
    failed: Option<ProtocolError>,
}

impl Reader {
    /// A reader for frames arriving at `role`'s end (`Role::Server` reads what a client sends).
    pub fn new(role: Role, limits: WsLimits) -> Self {
        Reader {
            role,
            limits,
            state: ReadState::Header,
            message: None,
            utf8: Utf8Validator::new(),
            failed: None,
        }
    }

    /// Read from the front of `input`, unmasking payload in place. Returns how many bytes were used up
    /// (drop them before the next call) and at most one event. `(0, None)` means more input is needed;
    /// `consumed > 0` with no event happens too, and so does an event with `consumed == 0` (the end of a
    /// zero-length frame). Call again until `(0, None)`.
    pub fn read<'a>(
        &mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let result = match self.state {
            ReadState::Header => self.read_frame(input),
            ReadState::Payload { .. } => self.read_payload(input),
            // RFC 6455 1.4: "after receiving a control frame indicating the connection should be closed,
            // a peer discards any further data received"; a peer that sends any is broken.
            ReadState::Closed if input.is_empty() => Ok((0, None)),
            ReadState::Closed => Err(ProtocolError::protocol("data after close")),
        };
        if let Err(err) = result {
            self.failed = Some(err);
        }
        result
    }

    /// Whether a data message has begun and its end was not yet reported.
    pub fn in_message(&self) -> bool {
        self.message.is_some() || matches!(self.state, ReadState::Payload { .. })
    }

    /// Whether the peer's Close was read.
    pub fn close_received(&self) -> bool {
        matches!(self.state, ReadState::Closed)
    }

    fn read_frame<'a>(
        &mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        let parsed = read_header(input).map_err(|e| ProtocolError::protocol(e.reason()))?;
        let Some((header, header_len)) = parsed else {
            return Ok((0, None));
        };
        // RFC 6455 5.2: "If a nonzero value is received and none of the negotiated extensions defines the
        // meaning of such a nonzero value, the receiving endpoint MUST _Fail the WebSocket Connection_."
        // No extension is ever negotiated.
        if header.rsv != 0 {
            return Err(ProtocolError::protocol("reserved bits set"));
        }
        if header.mask.is_some() != self.role.reads_masked() {
            return Err(match self.role {
                // RFC 6455 5.1: "The server MUST close the connection upon receiving a frame that is not
                // masked."
                Role::Server => ProtocolError::protocol("unmasked frame from client"),
                // RFC 6455 5.1: "A client MUST close a connection if it detects a masked frame."
                Role::Client => ProtocolError::protocol("masked frame from server"),
            });
        }
        if header.opcode.is_control() {
            return self.read_control(input, header.opcode, header.mask, header_len, header.len);
        }
        // RFC 6455 5.4: a fragmented message is "a single frame with the FIN bit clear and an opcode other
        // than 0, followed by zero or more frames with the FIN bit clear and the opcode set to 0, and
        // terminated by a single frame with the FIN bit set and an opcode of 0."
        let (kind, first) = match (header.opcode, self.message) {
            (OpCode::Continuation, Some(kind)) => (kind, false),
            (OpCode::Continuation, None) => {
                return Err(ProtocolError::protocol("continuation without a message"))
            }
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::protocol(
                    "new message inside a fragmented one",
                ))
            }
            (OpCode::Text, None) => (MessageKind::Text, true),
            _ => (MessageKind::Binary, true),
        };
        // RFC 6455 10.4: "Implementations that have implementation- and/or platform-specific limitations
        // regarding the frame size or total message size after reassembly from multiple frames MUST
        // protect themselves against exceeding those limits."
        if header.len > self.limits.max_frame {
            return Err(ProtocolError::too_big("frame too big"));
        }
        self.message = if header.fin { None } else { Some(kind) };
        self.state = ReadState::Payload {
            remaining: header.len,
            mask: header.mask,
            phase: 0,
            fin: header.fin,
            text: kind == MessageKind::Text,
        };
        let event = Event::DataFrame {
            kind,
            first,
            fin: header.fin,
            len: header.len,
        };
        Ok((header_len, Some(event)))
    }

    /// A control frame, once all of it is in `input` (`read_header` already capped it at 125 bytes).
    fn read_control<'a>(
        &mut self,
        input: &'a mut [u8],
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        header_len: usize,
        len: u64,
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        let total = header_len + len as usize;
        debug_assert!(total <= CONTROL_FRAME_MAX);
        let Some(frame) = input.get_mut(..total) else {
            return Ok((0, None));
        };
        let payload = &mut frame[header_len..];
        if let Some(mask) = mask {
            apply_mask(payload, mask, 0);
        }
        let payload: &'a [u8] = payload;
        let event = match opcode {
            OpCode::Ping => Event::Ping(payload),
            OpCode::Pong => Event::Pong(payload),
            _ => {
                let (code, reason) = parse_close_payload(payload)?;
                self.state = ReadState::Closed;
                Event::Close { code, reason }
            }
        };
        Ok((total, Some(event)))
    }

    fn read_payload<'a>(
        &mut self,
        input: &'a mut [u8],
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        let ReadState::Payload {
            remaining,
            mask,
            phase,
            fin,
            text,
        } = self.state
        else {
            unreachable!("read_payload outside a payload");
        };
        let take = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
        if take == 0 && remaining > 0 {
            return Ok((0, None));
        }
        let data = &mut input[..take];
        if let Some(mask) = mask {
            apply_mask(data, mask, phase);
        }
        let remaining = remaining - take as u64;
        let frame_end = remaining == 0;
        let message_end = frame_end && fin;
        if text {
            // RFC 6455 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
            // byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
            // Connection_." Checked per piece, so the fault is caught before the bytes are passed on.
            if self.utf8.feed(data).is_err() {
                return Err(ProtocolError::invalid_data("invalid UTF-8 in text"));
            }
            if message_end && self.utf8.finish().is_err() {
                return Err(ProtocolError::invalid_data("text ends inside a character"));
            }
        }
        self.state = if frame_end {
            ReadState::Header
        } else {
            ReadState::Payload {
                remaining,
                mask,
                phase: (phase + take) % 4,
                fin,
                text,
            }
        };
        let data: &'a [u8] = data;
        let event = Event::Payload {
            data,
            frame_end,
            message_end,
        };
        Ok((take, Some(event)))
    }
}

#[cfg(test)]
mod tests;
