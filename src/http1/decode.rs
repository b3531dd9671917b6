//! Incremental, zero-copy body decoding for every [`BodyKind`].
//!
//! The decoder never buffers: it reports payload as ranges into the caller's input and remembers
//! only a few counters between calls, so a body can arrive split at any byte.
//!
//! Chunked coding (RFC 9112 7.1) is a byte-level state machine. Line endings must be CRLF:
//! a bare LF is rejected everywhere in the chunked framing, because lenient line parsing is
//! exactly where front-end/back-end disagreements (smuggling) come from, and real clients send CRLF.
//! Limits policy: a chunk-size line with more than `max_size_digits` digits (or a size that
//! overflows u64), more than `max_extension` bytes of extensions, or trailer fields totalling more
//! than `max_trailers` bytes is an error; the caller answers 400 (or drops the origin) and closes.
//! Extensions and trailers are checked for shape and then discarded.

use std::fmt;
use std::ops::Range;

use super::framing::BodyKind;
use super::headers::is_tchar;

/// Default cap on hex digits in a chunk-size (16 digits = any u64).
pub const CHUNK_SIZE_DIGITS_MAX: usize = 16;
/// Default cap on chunk-extension bytes per chunk-size line.
pub const CHUNK_EXTENSION_MAX: usize = 1024;
/// Default cap on the total size of trailer field lines.
pub const TRAILERS_SIZE_MAX: usize = 8192;

#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    pub max_size_digits: usize,
    pub max_extension: usize,
    pub max_trailers: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_size_digits: CHUNK_SIZE_DIGITS_MAX,
            max_extension: CHUNK_EXTENSION_MAX,
            max_trailers: TRAILERS_SIZE_MAX,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    BadChunkSize,
    ChunkSizeTooLong,
    ExtensionTooLong,
    BadChunkTerminator,
    TrailersTooLarge,
    BadTrailer,
    Truncated,
    LengthExceeded,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::BadChunkSize => "invalid chunk size",
            BodyError::ChunkSizeTooLong => "chunk size too long",
            BodyError::ExtensionTooLong => "chunk extension too long",
            BodyError::BadChunkTerminator => "chunk not terminated by CRLF",
            BodyError::TrailersTooLarge => "chunked trailers too large",
            BodyError::BadTrailer => "invalid chunked trailer field",
            BodyError::Truncated => "body ended early",
            BodyError::LengthExceeded => "body longer than declared",
        })
    }
}

impl std::error::Error for BodyError {}

/// What one [`BodyDecoder::decode`] call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeStep {
    /// Bytes of the input used up (framing and payload).
    pub consumed: usize,
    /// Payload found, as a range into the input; empty if none. Always within `0..consumed`.
    pub data: Range<usize>,
    /// The body is complete; bytes after `consumed` belong to the next message.
    pub done: bool,
}

/// Where the chunked parser is. Each variant says what the next byte may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkedState {
    /// Call: decode. Next: first hex digit of a chunk-size.
    SizeStart,
    /// Call: decode. Next: more hex digits, BWS, `;`, or CR.
    Size,
    /// Call: decode. Next: more BWS, `;`, or CR.
    SizeWs,
    /// Call: decode. Next: extension bytes until CR.
    Extension,
    /// Call: decode. Next: LF ending the chunk-size line.
    SizeLf,
    /// Call: decode. Next: `remaining` payload bytes.
    Data,
    /// Call: decode. Next: CR after the payload.
    DataCr,
    /// Call: decode. Next: LF after the payload.
    DataLf,
    /// Call: decode. Next: a trailer field name, or CR of the final empty line.
    TrailerStart,
    /// Call: decode. Next: more name bytes or `:`.
    TrailerName,
    /// Call: decode. Next: field value bytes until CR.
    TrailerValue,
    /// Call: decode. Next: LF ending a trailer field line.
    TrailerLf,
    /// Call: decode. Next: LF of the final empty line.
    EndLf,
    /// Call: nothing more, the body is complete.
    Done,
}

#[derive(Debug, Clone)]
struct Chunked {
    state: ChunkedState,
    /// While reading the size line: the size so far; in `Data`: payload bytes still to come.
    remaining: u64,
    digits: usize,
    extension_len: usize,
    trailers_len: usize,
}

#[derive(Debug, Clone)]
enum Reading {
    Length { remaining: u64 },
    Chunked(Chunked),
    UntilClose,
    Done,
}

/// Incremental body decoder; see the module docs.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    kind: BodyKind,
    limits: ChunkLimits,
    reading: Reading,
    /// Set on the first error; every later call reports it again, so a caller cannot resume a
    /// stream whose framing is already lost.
    failed: Option<BodyError>,
}

impl BodyDecoder {
    pub fn new(kind: BodyKind, limits: ChunkLimits) -> Self {
        let reading = match kind {
            BodyKind::None | BodyKind::Length(0) => Reading::Done,
            BodyKind::Length(n) => Reading::Length { remaining: n },
            BodyKind::Chunked => Reading::Chunked(Chunked {
                state: ChunkedState::SizeStart,
                remaining: 0,
                digits: 0,
                extension_len: 0,
                trailers_len: 0,
            }),
            BodyKind::CloseDelimited => Reading::UntilClose,
        };
        BodyDecoder {
            kind,
            limits,
            reading,
            failed: None,
        }
    }

    /// Consume a prefix of `input`, yielding at most one contiguous payload range. Loop while
    /// `consumed > 0 && !done`; `consumed == 0 && !done` means more input is needed.
    pub fn decode(&mut self, input: &[u8]) -> Result<DecodeStep, BodyError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let limits = self.limits;
        let step = match &mut self.reading {
            Reading::Done => Ok(DecodeStep {
                consumed: 0,
                data: 0..0,
                done: true,
            }),
            Reading::UntilClose => Ok(DecodeStep {
                consumed: input.len(),
                data: 0..input.len(),
                done: false,
            }),
            Reading::Length { remaining } => {
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                // take <= remaining, so this cannot underflow; saturate anyway.
                *remaining = remaining.saturating_sub(u64::try_from(take).unwrap_or(u64::MAX));
                Ok(DecodeStep {
                    consumed: take,
                    data: 0..take,
                    done: *remaining == 0,
                })
            }
            Reading::Chunked(chunked) => chunked.decode(input, &limits),
        };
        match &step {
            Ok(s) if s.done => self.reading = Reading::Done,
            Ok(_) => {}
            Err(e) => self.failed = Some(e.clone()),
        }
        step
    }

    /// The peer closed the stream. Fine for a close-delimited body (which is now complete) or a
    /// body already complete; anything else was cut short.
    pub fn finish_on_eof(&mut self) -> Result<(), BodyError> {
        match self.reading {
            Reading::Done => Ok(()),
            Reading::UntilClose => {
                self.reading = Reading::Done;
                Ok(())
            }
            Reading::Length { .. } | Reading::Chunked(_) => Err(BodyError::Truncated),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.reading, Reading::Done)
    }

    pub fn kind(&self) -> BodyKind {
        self.kind
    }
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// RFC 9110 5.5 field-vchar, SP and HTAB: what may appear in an extension or a trailer value.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

impl Chunked {
    fn decode(&mut self, input: &[u8], limits: &ChunkLimits) -> Result<DecodeStep, BodyError> {
        let mut pos = 0;
        while let Some(rest) = input.get(pos..) {
            if rest.is_empty() || self.state == ChunkedState::Done {
                break;
            }
            if self.state == ChunkedState::Data {
                let take =
                    usize::try_from(self.remaining).map_or(rest.len(), |r| r.min(rest.len()));
                self.remaining = self
                    .remaining
                    .saturating_sub(u64::try_from(take).unwrap_or(u64::MAX));
                if self.remaining == 0 {
                    self.state = ChunkedState::DataCr;
                }
                let start = pos;
                pos += take;
                return Ok(DecodeStep {
                    consumed: pos,
                    data: start..pos,
                    done: false,
                });
            }
            // Framing bytes: one at a time, they are few.
            for &b in rest {
                self.step(b, limits)?;
                pos += 1;
                if matches!(self.state, ChunkedState::Data | ChunkedState::Done) {
                    break;
                }
            }
        }
        let done = self.state == ChunkedState::Done;
        Ok(DecodeStep {
            consumed: pos,
            data: pos..pos,
            done,
        })
    }

    /// Advance over one framing byte.
    fn step(&mut self, b: u8, limits: &ChunkLimits) -> Result<(), BodyError> {
        use ChunkedState::*;
        self.state = match self.state {
            // RFC 9112 7.1: chunk-size = 1*HEXDIG
            SizeStart => {
                self.remaining = hex_value(b).ok_or(BodyError::BadChunkSize)?;
                self.digits = 1;
                self.extension_len = 0;
                Size
            }
            Size => match b {
                b'\r' => SizeLf,
                b';' => self.extension_byte(limits, Extension)?,
                // BWS before `;` (RFC 9112 7.1.1); also tolerated before CR, as hyper and nginx do.
                b' ' | b'\t' => self.extension_byte(limits, SizeWs)?,
                _ => {
                    let digit = hex_value(b).ok_or(BodyError::BadChunkSize)?;
                    self.digits = self.digits.saturating_add(1);
                    if self.digits > limits.max_size_digits {
                        return Err(BodyError::ChunkSizeTooLong);
                    }
                    self.remaining = self
                        .remaining
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(digit))
                        .ok_or(BodyError::ChunkSizeTooLong)?;
                    Size
                }
            },
            SizeWs => match b {
                b'\r' => SizeLf,
                b';' => self.extension_byte(limits, Extension)?,
                b' ' | b'\t' => self.extension_byte(limits, SizeWs)?,
                _ => return Err(BodyError::BadChunkSize),
            },
            // chunk-ext is only shape-checked: no CTLs, no bare LF, bounded length.
            Extension => match b {
                b'\r' => SizeLf,
                _ if is_field_byte(b) => self.extension_byte(limits, Extension)?,
                _ => return Err(BodyError::BadChunkSize),
            },
            SizeLf => match b {
                b'\n' if self.remaining == 0 => TrailerStart,
                b'\n' => Data,
                _ => return Err(BodyError::BadChunkSize),
            },
            // The data arm never sees framing bytes; the caller hands payload out as a range.
            Data => Data,
            // RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
            DataCr => match b {
                b'\r' => DataLf,
                _ => return Err(BodyError::BadChunkTerminator),
            },
            DataLf => match b {
                b'\n' => SizeStart,
                _ => return Err(BodyError::BadChunkTerminator),
            },
            // trailer-section = *( field-line CRLF ); field-line = field-name ":" OWS field-value OWS
            TrailerStart => match b {
                b'\r' => EndLf,
                _ if is_tchar(b) => self.trailer_byte(limits, TrailerName)?,
                _ => return Err(BodyError::BadTrailer),
            },
            TrailerName => match b {
                b':' => self.trailer_byte(limits, TrailerValue)?,
                _ if is_tchar(b) => self.trailer_byte(limits, TrailerName)?,
                _ => return Err(BodyError::BadTrailer),
            },
            TrailerValue => match b {
                b'\r' => self.trailer_byte(limits, TrailerLf)?,
                _ if is_field_byte(b) => self.trailer_byte(limits, TrailerValue)?,
                _ => return Err(BodyError::BadTrailer),
            },
            TrailerLf => match b {
                b'\n' => self.trailer_byte(limits, TrailerStart)?,
                _ => return Err(BodyError::BadTrailer),
            },
            EndLf => match b {
                b'\n' => Done,
                _ => return Err(BodyError::BadChunkTerminator),
            },
            Done => Done,
        };
        Ok(())
    }

    fn extension_byte(
        &mut self,
        limits: &ChunkLimits,
        next: ChunkedState,
    ) -> Result<ChunkedState, BodyError> {
        self.extension_len = self.extension_len.saturating_add(1);
        if self.extension_len > limits.max_extension {
            return Err(BodyError::ExtensionTooLong);
        }
        Ok(next)
    }

    fn trailer_byte(
        &mut self,
        limits: &ChunkLimits,
        next: ChunkedState,
    ) -> Result<ChunkedState, BodyError> {
        self.trailers_len = self.trailers_len.saturating_add(1);
        if self.trailers_len > limits.max_trailers {
            return Err(BodyError::TrailersTooLarge);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `parts` one after another the way a reactor would: keep unconsumed bytes, append the
    /// next part, loop while progress is made. Returns payload, total consumed, done.
    fn feed(
        kind: BodyKind,
        limits: ChunkLimits,
        parts: &[&[u8]],
    ) -> Result<(Vec<u8>, usize, bool), BodyError> {
        let mut dec = BodyDecoder::new(kind, limits);
        let mut pending: Vec<u8> = Vec::new();
        let mut payload = Vec::new();
        let mut total = 0;
        for part in parts {
            pending.extend_from_slice(part);
            loop {
                let step = dec.decode(&pending)?;
                assert!(step.consumed <= pending.len());
                assert!(step.data.start <= step.data.end && step.data.end <= step.consumed);
                payload.extend_from_slice(&pending[step.data.clone()]);
                pending.drain(..step.consumed);
                total += step.consumed;
                assert_eq!(step.done, dec.is_done());
                if step.consumed == 0 || step.done {
                    break;
                }
            }
        }
        Ok((payload, total, dec.is_done()))
    }

    /// Same result for the whole input, every two-way split and byte-by-byte delivery.
    fn feed_all_splits(kind: BodyKind, input: &[u8]) -> Result<(Vec<u8>, usize, bool), BodyError> {
        let limits = ChunkLimits::default();
        let whole = feed(kind, limits, &[input]);
        for cut in 0..=input.len() {
            let split = feed(kind, limits, &[&input[..cut], &input[cut..]]);
            assert_eq!(
                split,
                whole,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(feed(kind, limits, &bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn chunked_valid() {
        let next = b"GET /next HTTP/1.1\r\n\r\n";
        let cases: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"a\r\n0123456789\r\n00\r\n\r\n", b"0123456789"),
            (
                b"1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
                b"0123456789abcdef0123456789abcde",
            ),
            (b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;name=value\r\nabc\r\n0;last\r\n\r\n", b"abc"),
            (b"3 ; a=\"q;\\\"x\" ;b\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3\t\r\nabc\r\n0 \r\n\r\n", b"abc"),
            (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),
            (
                b"2\r\nab\r\n0\r\nExpires: never\r\nX-Sum:abc \r\n\r\n",
                b"ab",
            ),
            (b"0\r\nEmpty:\r\n\r\n", b""),
            (b"1\r\n\xff\r\n0\r\nX: caf\xc3\xa9\r\n\r\n", b"\xff"),
        ];
        for (body, want) in cases {
            let mut input = body.to_vec();
            input.extend_from_slice(next);
            let (payload, consumed, done) =
                feed_all_splits(BodyKind::Chunked, &input).expect("valid");
            assert_eq!(payload, *want, "{:?}", String::from_utf8_lossy(body));
            assert!(done);
            // The pipelined request behind the body is left alone.
            assert_eq!(consumed, body.len(), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn chunked_invalid() {
        use BodyError::*;
        let long_ext = {
            let mut v = b"1;".to_vec();
            v.extend_from_slice(&[b'x'; CHUNK_EXTENSION_MAX]);
            v.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
            v
        };
        let long_trailer = {
            let mut v = b"0\r\nX: ".to_vec();
            v.extend_from_slice(&[b'y'; TRAILERS_SIZE_MAX]);
            v.extend_from_slice(b"\r\n\r\n");
            v
        };
        let cases: &[(&[u8], BodyError)] = &[
            (b"", Truncated),
            (b"5\r\nhel", Truncated),
            (b"5\r\nhello\r\n0\r\n", Truncated),
            (b"g\r\n", BadChunkSize),
            (b"\r\n", BadChunkSize),
            (b" 5\r\nhello\r\n", BadChunkSize),
            (b"-1\r\n", BadChunkSize),
            (b"0x5\r\nhello\r\n", BadChunkSize),
            (b"5 5\r\n", BadChunkSize),
            (b"5\nhello\n0\n\n", BadChunkSize),
            (b"5\r\rhello", BadChunkSize),
            (b"5;a\nb\r\n", BadChunkSize),
            (b"5;a\x01\r\n", BadChunkSize),
            (b"1_0\r\n", BadChunkSize),
            (b"10000000000000000\r\n", ChunkSizeTooLong),
            (b"00000000000000001\r\n", ChunkSizeTooLong),
            (b"5\r\nhelloX\r\n", BadChunkTerminator),
            (b"5\r\nhello\n0\r\n\r\n", BadChunkTerminator),
            (b"5\r\nhello\rX", BadChunkTerminator),
            (b"0\r\n\rX", BadChunkTerminator),
            (b"0\r\nX\r\n\r\n", BadTrailer),
            (b"0\r\n: v\r\n\r\n", BadTrailer),
            (b"0\r\nBad Name: v\r\n\r\n", BadTrailer),
            (b"0\r\nX: a\nY: b\r\n\r\n", BadTrailer),
            (b"0\r\nX: a\x00\r\n\r\n", BadTrailer),
            (b"0\r\nX: a\r\r\n\r\n", BadTrailer),
            (b"0\r\n folded: v\r\n\r\n", BadTrailer),
            (&long_ext, ExtensionTooLong),
            (&long_trailer, TrailersTooLarge),
        ];
        for (input, want) in cases {
            for cut in 0..=input.len() {
                let got = feed(
                    BodyKind::Chunked,
                    ChunkLimits::default(),
                    &[&input[..cut], &input[cut..]],
                )
                .and_then(|(_, _, done)| if done { Ok(()) } else { Err(Truncated) });
                assert_eq!(
                    got.as_ref().err(),
                    Some(want),
                    "{:?} cut {cut}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn chunk_limits_are_exact() {
        let limits = ChunkLimits {
            max_size_digits: 2,
            max_extension: 4,
            max_trailers: 8,
        };
        let run = |input: &[u8]| feed(BodyKind::Chunked, limits, &[input]).map(|(p, _, d)| (p, d));
        assert_eq!(
            run(b"0f\r\n0123456789abcde\r\n0\r\n\r\n"),
            Ok((b"0123456789abcde".to_vec(), true))
        );
        assert_eq!(run(b"00f\r\n"), Err(BodyError::ChunkSizeTooLong));
        assert_eq!(run(b"1;abc\r\nx\r\n0\r\n\r\n"), Ok((b"x".to_vec(), true)));
        assert_eq!(run(b"1;abcd\r\n"), Err(BodyError::ExtensionTooLong));
        assert_eq!(run(b"1   ;\r\nx\r\n0\r\n\r\n"), Ok((b"x".to_vec(), true)));
        assert_eq!(run(b"1    ;\r\n"), Err(BodyError::ExtensionTooLong));
        // "X: 1234" CRLF is 9 bytes of field line; one byte less fits.
        assert_eq!(run(b"0\r\nX: 123\r\n\r\n"), Ok((vec![], true)));
        assert_eq!(
            run(b"0\r\nX: 1234\r\n\r\n"),
            Err(BodyError::TrailersTooLarge)
        );
        // The extension budget is per chunk line, not per body.
        assert_eq!(
            run(b"1;abc\r\nx\r\n1;abc\r\ny\r\n0;abc\r\n\r\n"),
            Ok((b"xy".to_vec(), true))
        );

        // Overflow of u64 is caught even when the digit cap would allow it.
        let wide = ChunkLimits {
            max_size_digits: 64,
            ..ChunkLimits::default()
        };
        let ok = feed(BodyKind::Chunked, wide, &[b"0ffffffffffffffff\r\nab"]);
        assert_eq!(ok.map(|(p, _, d)| (p, d)), Ok((b"ab".to_vec(), false)));
        let over = feed(BodyKind::Chunked, wide, &[b"10000000000000000\r\n"]);
        assert_eq!(over.err(), Some(BodyError::ChunkSizeTooLong));
    }

    #[test]
    fn error_is_sticky() {
        let mut dec = BodyDecoder::new(BodyKind::Chunked, ChunkLimits::default());
        assert_eq!(dec.decode(b"z"), Err(BodyError::BadChunkSize));
        assert_eq!(dec.decode(b"0\r\n\r\n"), Err(BodyError::BadChunkSize));
        assert!(!dec.is_done());
        assert_eq!(dec.finish_on_eof(), Err(BodyError::Truncated));
    }

    #[test]
    fn one_range_per_call() {
        let mut dec = BodyDecoder::new(BodyKind::Chunked, ChunkLimits::default());
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        let want = [
            DecodeStep {
                consumed: 6,
                data: 3..6,
                done: false,
            },
            DecodeStep {
                consumed: 7,
                data: 5..7,
                done: false,
            },
            DecodeStep {
                consumed: 7,
                data: 7..7,
                done: true,
            },
        ];
        let mut at = 0;
        for w in want {
            let step = dec.decode(&input[at..]).expect("valid");
            assert_eq!(step, w);
            at += step.consumed;
        }
        assert_eq!(&input[at..], b"NEXT");
        assert_eq!(
            dec.decode(&input[at..]),
            Ok(DecodeStep {
                consumed: 0,
                data: 0..0,
                done: true
            })
        );
        assert_eq!(dec.finish_on_eof(), Ok(()));
    }

    #[test]
    fn length_bodies() {
        // declared, input, payload, consumed, done
        type Case = (u64, &'static [u8], &'static [u8], usize, bool);
        let cases: &[Case] = &[
            // declared, input, payload, consumed, done
            (0, b"GET / HTTP/1.1", b"", 0, true),
            (5, b"hello", b"hello", 5, true),
            (5, b"helloGET /", b"hello", 5, true),
            (5, b"hel", b"hel", 3, false),
            (u64::MAX, b"abc", b"abc", 3, false),
        ];
        for (n, input, payload, consumed, done) in cases {
            let got = feed_all_splits(BodyKind::Length(*n), input).expect("valid");
            assert_eq!(got, (payload.to_vec(), *consumed, *done), "{n} {input:?}");
        }
        let mut dec = BodyDecoder::new(BodyKind::Length(4), ChunkLimits::default());
        assert_eq!(dec.decode(b"ab").map(|s| s.data), Ok(0..2));
        assert_eq!(dec.finish_on_eof(), Err(BodyError::Truncated));
        let mut dec = BodyDecoder::new(BodyKind::Length(0), ChunkLimits::default());
        assert!(dec.is_done());
        assert_eq!(dec.finish_on_eof(), Ok(()));
    }

    #[test]
    fn none_and_close_delimited() {
        let mut dec = BodyDecoder::new(BodyKind::None, ChunkLimits::default());
        assert_eq!(
            dec.decode(b"GET /"),
            Ok(DecodeStep {
                consumed: 0,
                data: 0..0,
                done: true
            })
        );
        assert!(dec.is_done());
        assert_eq!(dec.kind(), BodyKind::None);

        let mut dec = BodyDecoder::new(BodyKind::CloseDelimited, ChunkLimits::default());
        assert_eq!(
            dec.decode(b"anything\r\n0\r\n\r\n"),
            Ok(DecodeStep {
                consumed: 15,
                data: 0..15,
                done: false
            })
        );
        assert_eq!(
            dec.decode(b""),
            Ok(DecodeStep {
                consumed: 0,
                data: 0..0,
                done: false
            })
        );
        assert!(!dec.is_done());
        assert_eq!(dec.finish_on_eof(), Ok(()));
        assert!(dec.is_done());
        assert_eq!(
            dec.decode(b"late"),
            Ok(DecodeStep {
                consumed: 0,
                data: 0..0,
                done: true
            })
        );
        assert_eq!(dec.kind(), BodyKind::CloseDelimited);
    }

    #[test]
    fn error_display() {
        use BodyError::*;
        let cases = [
            (BadChunkSize, "invalid chunk size"),
            (ChunkSizeTooLong, "chunk size too long"),
            (ExtensionTooLong, "chunk extension too long"),
            (BadChunkTerminator, "chunk not terminated by CRLF"),
            (TrailersTooLarge, "chunked trailers too large"),
            (BadTrailer, "invalid chunked trailer field"),
            (Truncated, "body ended early"),
            (LengthExceeded, "body longer than declared"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }
}
