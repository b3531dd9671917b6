//! RFC 6455 frame headers and masking, as pure functions over byte slices.
//!
//! [`read_header`] decodes the at most 14 header bytes at the front of a buffer. It tells "need more
//! bytes" (`Ok(None)`) apart from "invalid" (`Err`), and it fails as early as the bytes allow: a
//! reserved opcode is an error with only the first byte in hand, so a caller feeding one byte at a time
//! sees the same error as one holding the whole frame. It checks only what a header says about itself
//! (opcode, control-frame shape, the 64-bit length's top bit); the rules that depend on the connection
//! (masking per role, RSV without extensions, fragment sequencing, size caps) live in
//! [`super::reader::Reader`].
//!
//! Non-minimal length encodings (a 5-byte length written in the 16-bit form, say) are accepted. RFC 6455
//! 5.2 puts that MUST on the sender ("the minimal number of bytes MUST be used to encode the length"),
//! the value is still unambiguous, and holdfast never forwards header bytes verbatim: [`write_header`]
//! always writes the minimal form. So a read header re-written is byte-identical exactly when the
//! original was minimal, which is what the `ws_frame_header` fuzz target checks.

use std::fmt;

/// Payload cap for control frames. RFC 6455 5.5: "All control frames MUST have a payload length of 125
/// bytes or less".
pub const CONTROL_PAYLOAD_MAX: usize = 125;

/// Longest possible frame header: 2 fixed bytes, 8 bytes of extended length, 4 bytes of mask.
pub const HEADER_SIZE_MAX: usize = 14;

/// The largest whole control frame (header included); a reader's buffer must hold at least this much,
/// because control frames are only reported once complete.
pub const CONTROL_FRAME_MAX: usize = 2 + 4 + CONTROL_PAYLOAD_MAX;

/// Frame opcodes defined by RFC 6455 5.2. The reserved values (3-7, 11-15) have no variant: no extension
/// that defines them is ever negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// The opcode for the low nibble `bits`, or `None` for a reserved value.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, Ping and Pong. RFC 6455 5.5: "Control frames are identified by opcodes where the most
    /// significant bit of the opcode is 1."
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// What a data message carries; fixed by its first frame, continuation frames inherit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Binary,
}

impl MessageKind {
    /// The opcode of a message's first frame.
    pub fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// Which end of the connection we are, which decides masking. RFC 6455 5.1: "a client MUST mask all
/// frames that it sends to the server" and "A server MUST NOT mask any frames that it sends to the
/// client."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection: frames we read must be masked, frames we write must not be.
    Server,
    /// We opened the connection: frames we read must not be masked, frames we write must be.
    Client,
}

impl Role {
    /// Whether frames arriving at this end must carry a mask.
    pub fn reads_masked(self) -> bool {
        self == Role::Server
    }

    /// Whether frames sent from this end must carry a mask.
    pub fn writes_masked(self) -> bool {
        self == Role::Client
    }
}

/// One decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    /// Declared payload length; always below 2^63.
    pub len: u64,
}

impl FrameHeader {
    /// Bytes [`write_header`] uses for this header (the minimal encoding).
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }
}

/// A header no endpoint may send. Each one fails the connection with close code 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// An opcode reserved for extensions (the value is attached).
    ReservedOpcode(u8),
    /// A Close, Ping or Pong without FIN.
    FragmentedControl,
    /// A Close, Ping or Pong longer than 125 bytes.
    ControlTooLong,
    /// A 64-bit length with its most significant bit set.
    LengthOverflow,
}

impl FrameError {
    /// A short description, suitable as a close reason.
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::ReservedOpcode(_) => "reserved opcode",
            FrameError::FragmentedControl => "fragmented control frame",
            FrameError::ControlTooLong => "control frame too long",
            FrameError::LengthOverflow => "frame length overflow",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedOpcode(bits) => write!(f, "reserved opcode {bits:#x}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for FrameError {}

/// Decode the frame header at the front of `buf`: `Ok(Some((header, header_bytes)))`, `Ok(None)` when
/// `buf` ends inside a header that is valid so far, or the first fault the bytes prove.
pub fn read_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0x7;
    // RFC 6455 5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket
    // Connection_."
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(FrameError::ReservedOpcode(b0 & 0x0F))?;
    // RFC 6455 5.5: "Control frames themselves MUST NOT be fragmented."
    if opcode.is_control() && !fin {
        return Err(FrameError::FragmentedControl);
    }
    let Some(&b1) = buf.get(1) else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    // RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less". Only the two
    // extended forms can exceed it.
    if opcode.is_control() && len7 > 125 {
        return Err(FrameError::ControlTooLong);
    }
    let (len, mut pos) = match len7 {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => {
            // RFC 6455 5.2: "the most significant bit MUST be 0". Known from the first length byte.
            if buf.get(2).is_some_and(|&b| b & 0x80 != 0) {
                return Err(FrameError::LengthOverflow);
            }
            match buf.get(2..10) {
                Some(b) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(b);
                    (u64::from_be_bytes(be), 10)
                }
                None => return Ok(None),
            }
        }
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        match buf.get(pos..pos + 4) {
            Some(b) => {
                pos += 4;
                Some([b[0], b[1], b[2], b[3]])
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some((
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            len,
        },
        pos,
    )))
}

/// Encode `header` minimally into `out`; returns how many bytes of `out` were written.
///
/// Panics on a header no frame may carry (`rsv` over 3 bits, `len` of 2^63 or more, a control frame
/// that is fragmented or longer than 125 bytes): producing one is a bug in the caller.
pub fn write_header(header: &FrameHeader, out: &mut [u8; HEADER_SIZE_MAX]) -> usize {
    assert!(header.rsv <= 0x7, "RSV is three bits");
    assert!(header.len < 1 << 63, "frame length must fit in 63 bits");
    assert!(
        !header.opcode.is_control() || (header.fin && header.len <= CONTROL_PAYLOAD_MAX as u64),
        "control frames must be final and at most 125 bytes"
    );
    out[0] = (u8::from(header.fin) << 7) | (header.rsv << 4) | header.opcode.bits();
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    let mut pos = match header.len {
        0..=125 => {
            out[1] = mask_bit | header.len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(header.len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&header.len.to_be_bytes());
            10
        }
    };
    if let Some(mask) = header.mask {
        out[pos..pos + 4].copy_from_slice(&mask);
        pos += 4;
    }
    pos
}

/// XOR `data` with `mask` (RFC 6455 5.3), where `offset` is how many bytes of the same payload were
/// already masked, so a payload can be (un)masked piece by piece as it arrives. Masking is its own
/// inverse.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    // Rotate the key so key[0] lines up with data[0]; the payload's byte i uses mask[i % 4].
    let key: [u8; 4] = std::array::from_fn(|i| mask[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    // Whole words span a multiple of 4 bytes, so the tail starts in phase with `key`.
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift64 as Rng;

    fn header(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            len,
        }
    }

    /// Every prefix shorter than the header needs more; the whole header (and anything after it)
    /// decodes to `want`.
    fn check_valid(bytes: &[u8], want: FrameHeader, size: usize) {
        for cut in 0..size {
            assert_eq!(
                read_header(&bytes[..cut]),
                Ok(None),
                "{bytes:02x?} cut {cut}"
            );
        }
        for cut in size..=bytes.len() {
            assert_eq!(
                read_header(&bytes[..cut]),
                Ok(Some((want, size))),
                "{bytes:02x?} cut {cut}"
            );
        }
    }

    #[test]
    fn valid_headers() {
        use OpCode::*;
        let m = Some([1, 2, 3, 4]);
        let cases: &[(&[u8], FrameHeader, usize)] = &[
            (&[0x81, 0x00], header(true, Text, None, 0), 2),
            (&[0x01, 0x05, b'h'], header(false, Text, None, 5), 2),
            (&[0x82, 0x7D], header(true, Binary, None, 125), 2),
            (
                &[0x00, 0x83, 1, 2, 3, 4, 9],
                header(false, Continuation, m, 3),
                6,
            ),
            (&[0x88, 0x02, 0x03, 0xE8], header(true, Close, None, 2), 2),
            (&[0x89, 0xFD, 1, 2, 3, 4], header(true, Ping, m, 125), 6),
            (&[0x8A, 0x80, 1, 2, 3, 4], header(true, Pong, m, 0), 6),
            // 16-bit lengths, smallest and largest.
            (
                &[0x82, 0x7E, 0x00, 0x7E],
                header(true, Binary, None, 126),
                4,
            ),
            (
                &[0x82, 0x7E, 0xFF, 0xFF],
                header(true, Binary, None, 65535),
                4,
            ),
            (
                &[0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4],
                header(true, Binary, m, 256),
                8,
            ),
            // 64-bit lengths, smallest and largest.
            (
                &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0],
                header(true, Binary, None, 65536),
                10,
            ),
            (
                &[
                    0x02, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
                ],
                header(false, Binary, m, (1 << 63) - 1),
                14,
            ),
            // Non-minimal encodings are accepted (see the module docs).
            (&[0x81, 0x7E, 0x00, 0x05], header(true, Text, None, 5), 4),
            (
                &[0x81, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0],
                header(true, Text, None, 0),
                10,
            ),
        ];
        for (bytes, want, size) in cases {
            check_valid(bytes, *want, *size);
        }
    }

    #[test]
    fn rsv_bits_are_reported_not_judged() {
        for rsv in 0..8u8 {
            let got = read_header(&[0x81 | (rsv << 4), 0x00]);
            assert_eq!(
                got,
                Ok(Some((
                    FrameHeader {
                        rsv,
                        ..header(true, OpCode::Text, None, 0)
                    },
                    2
                )))
            );
        }
    }

    /// Each case: bytes, the error, and the shortest prefix that proves it. Shorter prefixes need more;
    /// every longer prefix gives the same error.
    #[test]
    fn invalid_headers() {
        use FrameError::*;
        let cases: &[(&[u8], FrameError, usize)] = &[
            (&[0x83, 0x00], ReservedOpcode(3), 1),
            (&[0x07, 0x00], ReservedOpcode(7), 1),
            (&[0x8B, 0x00], ReservedOpcode(0xB), 1),
            (&[0xFF, 0xFF], ReservedOpcode(0xF), 1),
            (&[0x08, 0x00], FragmentedControl, 1),
            (&[0x09, 0x80, 1, 2, 3, 4], FragmentedControl, 1),
            (&[0x0A, 0x00], FragmentedControl, 1),
            (&[0x88, 0x7E, 0x00, 0x7D], ControlTooLong, 2),
            (&[0x89, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1], ControlTooLong, 2),
            (&[0x8A, 0x7E, 0x00, 0x7E], ControlTooLong, 2),
            (&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], LengthOverflow, 3),
            (
                &[
                    0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
                ],
                LengthOverflow,
                3,
            ),
        ];
        for (bytes, want, proves_at) in cases {
            for cut in 0..=bytes.len() {
                let got = read_header(&bytes[..cut]);
                if cut < *proves_at {
                    assert_eq!(got, Ok(None), "{bytes:02x?} cut {cut}");
                } else {
                    assert_eq!(got, Err(*want), "{bytes:02x?} cut {cut}");
                }
            }
            assert!(!want.to_string().is_empty() && !want.reason().contains('\n'));
        }
    }

    #[test]
    fn every_opcode_nibble() {
        for bits in 0..16u8 {
            let got = read_header(&[0x80 | bits, 0x00]);
            match OpCode::from_bits(bits) {
                Some(op) => {
                    assert_eq!(op.bits(), bits);
                    assert_eq!(op.is_control(), bits >= 8);
                    assert_eq!(got, Ok(Some((header(true, op, None, 0), 2))));
                }
                None => assert_eq!(got, Err(FrameError::ReservedOpcode(bits))),
            }
        }
    }

    #[test]
    fn write_uses_the_minimal_length_form() {
        let cases: &[(u64, usize)] = &[
            (0, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            ((1 << 63) - 1, 10),
        ];
        for &(len, size) in cases {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = header(true, OpCode::Binary, mask, len);
                let mut out = [0u8; HEADER_SIZE_MAX];
                let n = write_header(&h, &mut out);
                let want = size + if mask.is_some() { 4 } else { 0 };
                assert_eq!(n, want, "len {len}");
                assert_eq!(h.encoded_len(), want);
                assert_eq!(read_header(&out[..n]), Ok(Some((h, n))));
            }
        }
    }

    #[test]
    fn write_read_round_trip_random() {
        let mut rng = Rng(0x5eed_f00d);
        let ops = [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ];
        for _ in 0..5000 {
            let opcode = ops[rng.below(ops.len())];
            let len = if opcode.is_control() {
                rng.below(126) as u64
            } else {
                match rng.below(3) {
                    0 => rng.below(126) as u64,
                    1 => rng.below(1 << 16) as u64,
                    _ => rng.next() >> 1,
                }
            };
            let h = FrameHeader {
                fin: opcode.is_control() || rng.below(2) == 0,
                rsv: rng.below(8) as u8,
                opcode,
                mask: (rng.below(2) == 0).then(|| (rng.next() as u32).to_be_bytes()),
                len,
            };
            let mut out = [0u8; HEADER_SIZE_MAX];
            let n = write_header(&h, &mut out);
            assert_eq!(read_header(&out), Ok(Some((h, n))));
            for cut in 0..n {
                assert_eq!(read_header(&out[..cut]), Ok(None));
            }
        }
    }

    #[test]
    #[should_panic(expected = "control frames")]
    fn writing_a_long_control_frame_is_a_bug() {
        let mut out = [0u8; HEADER_SIZE_MAX];
        write_header(&header(true, OpCode::Ping, None, 126), &mut out);
    }

    fn mask_naive(data: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= mask[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_masking_example() {
        // RFC 6455 5.7: a masked "Hello" with key 37 fa 21 3d.
        let mut payload = *b"Hello";
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn masking_in_pieces_matches_whole_and_round_trips() {
        let mut rng = Rng(77);
        for _ in 0..2000 {
            let len = rng.below(70);
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mask = (rng.next() as u32).to_le_bytes();
            let start = rng.below(9);
            let mut want = data.clone();
            mask_naive(&mut want, mask, start);
            // The same payload masked in random pieces, each resuming at its offset.
            let mut got = data.clone();
            let mut pos = 0;
            while pos < len {
                let end = pos + 1 + rng.below(len - pos);
                apply_mask(&mut got[pos..end], mask, start + pos);
                pos = end;
            }
            assert_eq!(got, want);
            apply_mask(&mut got, mask, start);
            assert_eq!(got, data, "masking twice restores the data");
        }
    }
}
