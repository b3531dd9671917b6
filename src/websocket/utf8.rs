//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! RFC 6455 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream
//! is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_." A relay
//! forwards text as it streams, so validity cannot wait for the whole message: [`Utf8Validator::feed`]
//! fails on the first byte after which no continuation could make the text valid, even when that byte
//! is the second half of a character split across two frames or two socket reads. That keeps the bytes
//! a relay passes on, before it learns of the fault, to a prefix of some valid text.
//!
//! "Can no longer be valid" is exact because the well-formed byte sequences (Unicode 15, table 3-7) are
//! decided byte by byte: a lead byte fixes how many continuation bytes follow and the range the first of
//! them must fall in (narrower after E0, ED, F0 and F4, which is where overlong forms, surrogates and
//! code points past U+10FFFF are excluded); every later continuation byte is 80..=BF.
//!
//! The fast path hands whole runs to `std::str::from_utf8`; only the few bytes around a character split
//! at a chunk edge, or around a fault, go through the byte-at-a-time state machine.

use std::fmt;

/// Why text is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8Error {
    /// The byte at this index of the chunk given to `feed` cannot continue any valid text.
    InvalidByte(usize),
    /// The text ended inside a multi-byte character.
    Incomplete,
}

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Utf8Error::InvalidByte(at) => write!(f, "invalid UTF-8 at byte {at} of the chunk"),
            Utf8Error::Incomplete => f.write_str("UTF-8 text ends inside a character"),
        }
    }
}

impl std::error::Error for Utf8Error {}

/// Validates one text message fed in pieces; see the module docs. After an error the state is
/// meaningless until [`Utf8Validator::finish`] or [`Utf8Validator::reset`].
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// Continuation bytes still owed by the current character (0 at a character boundary).
    need: u8,
    /// Inclusive range the next continuation byte must fall in.
    lo: u8,
    hi: u8,
}

impl Utf8Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate the next piece of the text.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        // Finish a character left open by the previous piece.
        let mut i = 0;
        while self.need > 0 {
            let Some(&b) = bytes.get(i) else {
                return Ok(());
            };
            self.step(b).map_err(|()| Utf8Error::InvalidByte(i))?;
            i += 1;
        }
        let rest = &bytes[i..];
        let Err(e) = std::str::from_utf8(rest) else {
            return Ok(());
        };
        // Everything before `valid_up_to` is whole characters. The fault (or the unfinished tail) lies
        // within the next four bytes, so stepping through them is cheap and finds the exact byte.
        let start = i + e.valid_up_to();
        for (j, &b) in bytes[start..].iter().enumerate() {
            self.step(b)
                .map_err(|()| Utf8Error::InvalidByte(start + j))?;
        }
        Ok(())
    }

    /// End of the message: fails if it stopped inside a character. Either way the validator is ready
    /// for the next message.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let open = self.need > 0;
        self.reset();
        if open {
            Err(Utf8Error::Incomplete)
        } else {
            Ok(())
        }
    }

    /// Forget any partial character.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Whether the text so far ends on a character boundary.
    pub fn is_boundary(&self) -> bool {
        self.need == 0
    }

    /// Advance by one byte; `Err` if no valid text has the bytes so far as a prefix.
    fn step(&mut self, b: u8) -> Result<(), ()> {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                return Err(());
            }
            self.need -= 1;
            self.lo = 0x80;
            self.hi = 0xBF;
            return Ok(());
        }
        // Unicode table 3-7: the lead byte decides the length and the second byte's range.
        let (need, lo, hi) = match b {
            0x00..=0x7F => return Ok(()),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            // E0 80..9F would be overlong.
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            // ED A0..BF would be a surrogate (U+D800..U+DFFF).
            0xED => (2, 0x80, 0x9F),
            // F0 80..8F would be overlong.
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            // F4 90..BF would be past U+10FFFF.
            0xF4 => (3, 0x80, 0x8F),
            // 80..BF cannot start a character; C0, C1 only start overlong forms; F5..FF are past U+10FFFF.
            _ => return Err(()),
        };
        self.need = need;
        self.lo = lo;
        self.hi = hi;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift64 as Rng;

    /// Reference: the index of the first byte after which `bytes` is no longer a prefix of valid UTF-8,
    /// computed from `std::str::from_utf8` alone (an error with no `error_len` means "ended early").
    fn first_bad_byte(bytes: &[u8]) -> Option<usize> {
        (0..bytes.len())
            .find(|&k| std::str::from_utf8(&bytes[..=k]).is_err_and(|e| e.error_len().is_some()))
    }

    /// How a whole input fares: fine, refused at this index of the whole input, or cut short.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Outcome {
        Valid,
        BadAt(usize),
        Incomplete,
    }

    /// Feed the pieces in order and say how it went; `InvalidByte` positions are checked to lie within
    /// their piece and turned into positions in the whole input.
    fn run(pieces: &[&[u8]]) -> Outcome {
        let mut v = Utf8Validator::new();
        let mut base = 0;
        for piece in pieces {
            match v.feed(piece) {
                Ok(()) => base += piece.len(),
                Err(Utf8Error::InvalidByte(at)) => {
                    assert!(at < piece.len());
                    return Outcome::BadAt(base + at);
                }
                Err(e) => panic!("feed reported {e:?}"),
            }
        }
        match v.finish() {
            Ok(()) => Outcome::Valid,
            Err(Utf8Error::Incomplete) => Outcome::Incomplete,
            Err(e) => panic!("finish reported {e:?}"),
        }
    }

    /// The same outcome for the whole input, every two-way split, every three-way split of short
    /// inputs, and byte-by-byte delivery; returns it.
    fn all_splits(bytes: &[u8]) -> Outcome {
        let whole = run(&[bytes]);
        for a in 0..=bytes.len() {
            assert_eq!(
                run(&[&bytes[..a], &bytes[a..]]),
                whole,
                "{bytes:02x?} split {a}"
            );
            if bytes.len() <= 24 {
                for b in a..=bytes.len() {
                    let got = run(&[&bytes[..a], &bytes[a..b], &bytes[b..]]);
                    assert_eq!(got, whole, "{bytes:02x?} split {a},{b}");
                }
            }
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&singles), whole, "{bytes:02x?} byte by byte");
        whole
    }

    fn expect(bytes: &[u8]) -> Outcome {
        match first_bad_byte(bytes) {
            Some(at) => Outcome::BadAt(at),
            None if std::str::from_utf8(bytes).is_ok() => Outcome::Valid,
            None => Outcome::Incomplete,
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // (bytes, index of the failing byte); None = valid.
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"", None),
            (b"hello", None),
            ("κόσμε".as_bytes(), None),
            // Autobahn 6.4.x shapes: valid start, then a fault mid-text.
            (
                &[
                    0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0,
                    0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
                ],
                Some(12),
            ),
            (
                &[
                    0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xf4, 0x90,
                    0x80, 0x80,
                ],
                Some(12),
            ),
            // Boundaries of the ranges.
            (&[0x7f], None),
            (&[0xc2, 0x80], None),
            (&[0xdf, 0xbf], None),
            (&[0xe0, 0xa0, 0x80], None),
            (&[0xed, 0x9f, 0xbf], None),
            (&[0xee, 0x80, 0x80], None),
            (&[0xef, 0xbf, 0xbf], None),
            (&[0xf0, 0x90, 0x80, 0x80], None),
            (&[0xf4, 0x8f, 0xbf, 0xbf], None),
            // Lone continuation bytes and impossible lead bytes.
            (&[0x80], Some(0)),
            (&[0xbf], Some(0)),
            (&[0x61, 0xc0, 0x80], Some(1)),
            (&[0xc1, 0xbf], Some(0)),
            (&[0xf5, 0x80, 0x80, 0x80], Some(0)),
            (&[0xfe], Some(0)),
            (&[0xff], Some(0)),
            // Overlong forms, surrogates, past U+10FFFF: the second byte gives them away.
            (&[0xe0, 0x9f, 0xbf], Some(1)),
            (&[0xe0, 0x80, 0xaf], Some(1)),
            (&[0xf0, 0x8f, 0xbf, 0xbf], Some(1)),
            (&[0xed, 0xa0, 0x80], Some(1)),
            (&[0xed, 0xbf, 0xbf], Some(1)),
            (&[0xf4, 0x90, 0x80, 0x80], Some(1)),
            // A continuation byte missing in the middle.
            (&[0xc2, 0x41], Some(1)),
            (&[0xe1, 0x80, 0x41], Some(2)),
            (&[0xf1, 0x80, 0x80, 0xc0], Some(3)),
            (&[0xf1, 0x80, 0x80, 0x80, 0x80], Some(4)),
        ];
        for (bytes, bad) in cases {
            let want = bad.map_or(Outcome::Valid, Outcome::BadAt);
            assert_eq!(expect(bytes), want, "reference disagrees on {bytes:02x?}");
            assert_eq!(all_splits(bytes), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn unfinished_character_fails_only_at_finish() {
        for bytes in [
            &[0xc2][..],
            &[0xe1, 0x80],
            &[0xf0, 0x90, 0x80],
            b"ok\xf4\x8f",
        ] {
            assert_eq!(all_splits(bytes), Outcome::Incomplete);
        }
    }

    #[test]
    fn finish_resets() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xe2, 0x82]).expect("prefix");
        assert!(!v.is_boundary());
        assert_eq!(v.finish(), Err(Utf8Error::Incomplete));
        assert!(v.is_boundary());
        v.feed(b"abc").expect("fresh message");
        assert_eq!(v.finish(), Ok(()));
    }

    /// Random text from a mix of valid characters of every length, ASCII runs and stray bytes, checked
    /// against `std::str::from_utf8` under every split.
    #[test]
    fn matches_std_on_random_inputs() {
        let mut rng = Rng(0xdead_beef_1234);
        let mut invalid = 0;
        for _ in 0..1500 {
            let mut bytes = Vec::new();
            for _ in 0..rng.below(12) {
                match rng.below(6) {
                    0 => bytes.extend_from_slice(&b"plain ascii text "[..rng.below(17)]),
                    1 => bytes.push(rng.next() as u8),
                    _ => {
                        let c = char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}');
                        let mut buf = [0u8; 4];
                        let enc = c.encode_utf8(&mut buf).as_bytes();
                        // Sometimes only part of the character, to land faults mid-sequence.
                        let keep = if rng.below(8) == 0 {
                            rng.below(enc.len())
                        } else {
                            enc.len()
                        };
                        bytes.extend_from_slice(&enc[..keep]);
                    }
                }
            }
            let want = expect(&bytes);
            invalid += usize::from(want != Outcome::Valid);
            assert_eq!(all_splits(&bytes), want, "{bytes:02x?}");
        }
        // Both outcomes must be well represented for the test to mean anything.
        assert!(invalid > 300 && invalid < 1200, "{invalid} invalid of 1500");
    }

    #[test]
    fn long_valid_text_in_odd_pieces() {
        let text = "ascii, then Grüße, 日本語 and 🦀🦀 ".repeat(200);
        let bytes = text.as_bytes();
        for piece in [1, 2, 3, 5, 7, 64, 1000] {
            let chunks: Vec<&[u8]> = bytes.chunks(piece).collect();
            assert_eq!(run(&chunks), Outcome::Valid, "pieces of {piece}");
        }
    }
}
