//! tnetstring codec (spec Appendix A): `<len>:<payload><tag>`.
//!
//! Tags: `,` bytes, `#` integer, `^` float, `!` boolean (`true`/`false`), `~` null (empty payload),
//! `]` list, `}` dict (alternating key/value; keys must be byte strings).
//!
//! Hostile-input policy: the whole input is capped at `TNET_SIZE_MAX` bytes; a declared length is
//! only ever compared with the bytes actually remaining (never used to allocate), so a length larger
//! than the input is `Truncated` rather than the over-read that crashes Pushpin 1.36; nesting is
//! capped at `TNET_DEPTH_MAX` containers so recursion depth is bounded; and the number of decoded
//! values is capped at `TNET_ELEMENTS_MAX` so tiny elements (`0:~` is 3 bytes, its `Value` is ten
//! times that) cannot multiply memory use. The decoder is not resumable: ZeroMQ delivers whole
//! frames.
//!
//! Leading zeros (in a length prefix, at most ten digits, or in an integer) and `-0` are accepted,
//! as Pushpin's own number parsing accepts them; `encode` always writes the one canonical form.

use std::fmt;

use super::value::Value;

/// Maximum input size accepted by `decode`.
pub const TNET_SIZE_MAX: usize = 4 * 1024 * 1024;
/// Maximum number of nested containers (lists and dicts); the outermost counts as one.
pub const TNET_DEPTH_MAX: usize = 32;
/// Maximum number of values (of any kind, dict keys included) in one decode.
pub const TNET_ELEMENTS_MAX: usize = 65_536;
/// Maximum digits in a length prefix; ten digits already exceed `TNET_SIZE_MAX`.
const TNET_LEN_DIGITS_MAX: usize = 10;

/// Why a tnetstring could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TnetError {
    /// The input is larger than `TNET_SIZE_MAX`.
    TooLarge,
    /// Containers nest deeper than `TNET_DEPTH_MAX`.
    TooDeep,
    /// More than `TNET_ELEMENTS_MAX` values.
    TooManyElements,
    /// The length prefix is empty, not decimal, or too long.
    BadLength,
    /// The input ends before the declared payload and its tag.
    Truncated,
    /// The byte after the payload is not a known tag.
    BadTag(u8),
    BadInt,
    BadFloat,
    BadBool,
    /// A null (`~`) with a non-empty payload.
    BadNull,
    /// A dict key that is not a byte string.
    BadDictKey,
    /// A dict payload with a key but no value.
    MissingDictValue,
    /// `decode_all` found bytes after the value.
    TrailingData,
}

impl fmt::Display for TnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TnetError::TooLarge => write!(f, "tnetstring larger than {TNET_SIZE_MAX} bytes"),
            TnetError::TooDeep => write!(f, "tnetstring nested deeper than {TNET_DEPTH_MAX}"),
            TnetError::TooManyElements => {
                write!(f, "tnetstring has more than {TNET_ELEMENTS_MAX} values")
            }
            TnetError::BadLength => write!(f, "bad tnetstring length prefix"),
            TnetError::Truncated => write!(f, "truncated tnetstring"),
            TnetError::BadTag(t) => write!(f, "unknown tnetstring tag 0x{t:02x}"),
            TnetError::BadInt => write!(f, "bad tnetstring integer"),
            TnetError::BadFloat => write!(f, "bad tnetstring float"),
            TnetError::BadBool => write!(f, "bad tnetstring boolean"),
            TnetError::BadNull => write!(f, "tnetstring null with a payload"),
            TnetError::BadDictKey => write!(f, "tnetstring dict key is not a byte string"),
            TnetError::MissingDictValue => write!(f, "tnetstring dict key without a value"),
            TnetError::TrailingData => write!(f, "trailing data after tnetstring"),
        }
    }
}

impl std::error::Error for TnetError {}

/// Decodes the value at the start of `input`, returning it and the number of bytes it used.
pub fn decode(input: &[u8]) -> Result<(Value, usize), TnetError> {
    if input.len() > TNET_SIZE_MAX {
        return Err(TnetError::TooLarge);
    }
    let mut decoder = Decoder { elements: 0 };
    decoder.value(input, 0)
}

/// Decodes `input`, which must hold exactly one value.
pub fn decode_all(input: &[u8]) -> Result<Value, TnetError> {
    let (value, used) = decode(input)?;
    if used != input.len() {
        return Err(TnetError::TrailingData);
    }
    Ok(value)
}

struct Decoder {
    elements: usize,
}

impl Decoder {
    /// Parses one value at the start of `buf`; `depth` is the number of enclosing containers.
    fn value(&mut self, buf: &[u8], depth: usize) -> Result<(Value, usize), TnetError> {
        let (len, colon) = length_prefix(buf)?;
        let start = colon + 1;
        // `len` comes from the peer: only compare it with what is actually there.
        let remaining = buf.len().saturating_sub(start);
        if len >= remaining {
            // Either the payload or its tag byte is missing.
            return Err(TnetError::Truncated);
        }
        let end = start + len;
        let payload = buf.get(start..end).ok_or(TnetError::Truncated)?;
        let tag = *buf.get(end).ok_or(TnetError::Truncated)?;

        self.elements += 1;
        if self.elements > TNET_ELEMENTS_MAX {
            return Err(TnetError::TooManyElements);
        }

        let value = match tag {
            b',' => Value::Bytes(payload.to_vec()),
            b'#' => Value::Int(parse_int(payload)?),
            b'^' => Value::Float(parse_float(payload)?),
            b'!' => match payload {
                b"true" => Value::Bool(true),
                b"false" => Value::Bool(false),
                _ => return Err(TnetError::BadBool),
            },
            b'~' if payload.is_empty() => Value::Null,
            b'~' => return Err(TnetError::BadNull),
            b']' => Value::List(self.list(payload, enter(depth)?)?),
            b'}' => Value::Map(self.dict(payload, enter(depth)?)?),
            other => return Err(TnetError::BadTag(other)),
        };
        Ok((value, end + 1))
    }

    fn list(&mut self, mut payload: &[u8], depth: usize) -> Result<Vec<Value>, TnetError> {
        let mut out = Vec::new();
        while !payload.is_empty() {
            let (v, used) = self.value(payload, depth)?;
            out.push(v);
            payload = payload.get(used..).unwrap_or_default();
        }
        Ok(out)
    }

    fn dict(
        &mut self,
        mut payload: &[u8],
        depth: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>, TnetError> {
        let mut out = Vec::new();
        while !payload.is_empty() {
            let (k, used) = self.value(payload, depth)?;
            let Value::Bytes(key) = k else {
                return Err(TnetError::BadDictKey);
            };
            payload = payload.get(used..).unwrap_or_default();
            if payload.is_empty() {
                return Err(TnetError::MissingDictValue);
            }
            let (v, used) = self.value(payload, depth)?;
            out.push((key, v));
            payload = payload.get(used..).unwrap_or_default();
        }
        Ok(out)
    }
}

/// The nesting level of a container found inside `depth` enclosing containers.
fn enter(depth: usize) -> Result<usize, TnetError> {
    let inner = depth + 1;
    if inner > TNET_DEPTH_MAX {
        return Err(TnetError::TooDeep);
    }
    Ok(inner)
}

/// Reads `<digits>:` and returns the length and the colon's index.
fn length_prefix(buf: &[u8]) -> Result<(usize, usize), TnetError> {
    let mut len: usize = 0;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b':' if i > 0 => return Ok((len, i)),
            b'0'..=b'9' if i < TNET_LEN_DIGITS_MAX => {
                len = len
                    .checked_mul(10)
                    .and_then(|l| l.checked_add(usize::from(b - b'0')))
                    .ok_or(TnetError::BadLength)?;
            }
            _ => return Err(TnetError::BadLength),
        }
    }
    Err(TnetError::Truncated)
}

/// `-?[0-9]+`: stricter than `str::parse`, which also takes a leading `+`.
fn parse_int(payload: &[u8]) -> Result<i64, TnetError> {
    let digits = payload.strip_prefix(b"-").unwrap_or(payload);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(TnetError::BadInt);
    }
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(TnetError::BadInt)
}

/// Decimal or exponent notation only; `inf`/`NaN` spellings are refused because JSON, where these
/// values usually end up, cannot represent them.
fn parse_float(payload: &[u8]) -> Result<f64, TnetError> {
    let allowed = |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    if payload.is_empty() || !payload.iter().all(allowed) {
        return Err(TnetError::BadFloat);
    }
    std::str::from_utf8(payload)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|f| f.is_finite())
        .ok_or(TnetError::BadFloat)
}

/// Appends the tnetstring encoding of `v` to `out`.
///
/// A non-finite float has no tnetstring spelling that `decode` accepts, so it is written as null.
/// Recursion follows the value's nesting, which is bounded for every value this crate decodes.
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"0:~"),
        Value::Bool(true) => out.extend_from_slice(b"4:true!"),
        Value::Bool(false) => out.extend_from_slice(b"5:false!"),
        Value::Int(i) => put(out, i.to_string().as_bytes(), b'#'),
        // `{:?}` is the shortest text that parses back to the same f64, always with a `.` or an
        // exponent (`1.0`, `1e300`), which other tnetstring readers also accept.
        Value::Float(f) if f.is_finite() => put(out, format!("{f:?}").as_bytes(), b'^'),
        Value::Float(_) => out.extend_from_slice(b"0:~"),
        Value::Bytes(b) => put(out, b, b','),
        Value::List(items) => {
            let mut payload = Vec::new();
            for item in items {
                encode(item, &mut payload);
            }
            put(out, &payload, b']');
        }
        Value::Map(entries) => {
            let mut payload = Vec::new();
            for (k, item) in entries {
                put(&mut payload, k, b',');
                encode(item, &mut payload);
            }
            put(out, &payload, b'}');
        }
    }
}

fn put(out: &mut Vec<u8>, payload: &[u8], tag: u8) {
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(tag);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    fn encoded(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    /// xorshift64*: deterministic pseudo-random input without a dependency.
    use crate::test_rng::XorShift64Star as Rng;

    /// Random tnetstring values for round-trip properties.
    trait Gen {
        fn bytes(&mut self, max: u64) -> Vec<u8>;
        fn value(&mut self, depth: usize) -> Value;
    }

    impl Gen for Rng {
        fn bytes(&mut self, max: u64) -> Vec<u8> {
            let len = self.below(max + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }

        fn value(&mut self, depth: usize) -> Value {
            let kinds = if depth >= 4 { 5 } else { 7 };
            match self.below(kinds) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 1),
                2 => Value::Int(self.next() as i64 >> self.below(64)),
                3 => {
                    let f = f64::from_bits(self.next());
                    Value::Float(if f.is_finite() { f } else { 0.25 })
                }
                4 => Value::Bytes(self.bytes(20)),
                5 => Value::List((0..self.below(5)).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Map(
                    (0..self.below(5))
                        .map(|_| (self.bytes(8), self.value(depth + 1)))
                        .collect(),
                ),
            }
        }
    }

    #[test]
    fn decode_table() {
        let cases: &[(&[u8], Value)] = &[
            (b"0:~", Value::Null),
            (b"4:true!", Value::Bool(true)),
            (b"5:false!", Value::Bool(false)),
            (b"1:0#", Value::Int(0)),
            (b"2:-7#", Value::Int(-7)),
            (b"2:-0#", Value::Int(0)),
            (b"19:9223372036854775807#", Value::Int(i64::MAX)),
            (b"20:-9223372036854775808#", Value::Int(i64::MIN)),
            (b"3:1.5^", Value::Float(1.5)),
            (b"5:1e+16^", Value::Float(1e16)),
            (b"4:-2E3^", Value::Float(-2000.0)),
            (b"1:7^", Value::Float(7.0)),
            (b"0:,", bytes("")),
            (b"5:hello,", bytes("hello")),
            (b"3:\x00:,,", Value::Bytes(b"\x00:,".to_vec())),
            (b"01:x,", bytes("x")),
            (b"0:]", Value::List(vec![])),
            (b"7:1:1#0:~]", Value::List(vec![Value::Int(1), Value::Null])),
            (b"0:}", Value::Map(vec![])),
            (
                b"15:1:a,1:b,1:c,0:~}",
                Value::Map(vec![
                    (b"a".to_vec(), bytes("b")),
                    (b"c".to_vec(), Value::Null),
                ]),
            ),
            (
                b"10:7:1:k,0:]}]",
                Value::List(vec![Value::Map(vec![(b"k".to_vec(), Value::List(vec![]))])]),
            ),
        ];
        for (input, want) in cases {
            let got = decode_all(input);
            assert_eq!(
                got.as_ref(),
                Ok(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn decode_reports_consumed_bytes() {
        assert_eq!(decode(b"1:a,rest"), Ok((bytes("a"), 4)));
        assert_eq!(decode(b"0:~0:~"), Ok((Value::Null, 3)));
        assert_eq!(decode_all(b"1:a,x"), Err(TnetError::TrailingData));
    }

    #[test]
    fn malformed_table() {
        let cases: &[(&[u8], TnetError)] = &[
            (b"", TnetError::Truncated),
            (b"5", TnetError::Truncated),
            (b"5:", TnetError::Truncated),
            (b"5:abc,", TnetError::Truncated),
            // The declared length runs past the payload: the Pushpin 1.36 crash.
            (b"10:abc,", TnetError::Truncated),
            (b"100:0:~]", TnetError::Truncated),
            (b"99999999:x,", TnetError::Truncated),
            (b"9999999999:x,", TnetError::Truncated),
            (b"99999999999999999999:", TnetError::BadLength),
            (b"18446744073709551616:x,", TnetError::BadLength),
            (b"0123456789:x,", TnetError::Truncated),
            (b"01234567890:x,", TnetError::BadLength),
            (b":x,", TnetError::BadLength),
            (b"a:x,", TnetError::BadLength),
            (b"-1:x,", TnetError::BadLength),
            (b"+1:x,", TnetError::BadLength),
            (b" 1:x,", TnetError::BadLength),
            (b"1 :x,", TnetError::BadLength),
            (b"1:x", TnetError::Truncated),
            (b"1:x?", TnetError::BadTag(b'?')),
            (b"1:xx", TnetError::BadTag(b'x')),
            (b"0:{", TnetError::BadTag(b'{')),
            (b"0:[", TnetError::BadTag(b'[')),
            (b"0:#", TnetError::BadInt),
            (b"1:-#", TnetError::BadInt),
            (b"2:+1#", TnetError::BadInt),
            (b"2: 1#", TnetError::BadInt),
            (b"3:1.0#", TnetError::BadInt),
            (b"19:9223372036854775808#", TnetError::BadInt),
            (b"0:^", TnetError::BadFloat),
            (b"3:inf^", TnetError::BadFloat),
            (b"3:NaN^", TnetError::BadFloat),
            (b"5:1e999^", TnetError::BadFloat),
            (b"1:.^", TnetError::BadFloat),
            (b"3:1,5^", TnetError::BadFloat),
            (b"4:True!", TnetError::BadBool),
            (b"1:1!", TnetError::BadBool),
            (b"0:!", TnetError::BadBool),
            (b"1:x~", TnetError::BadNull),
            (b"3:1:a]", TnetError::Truncated),
            (b"5:1:a,x]", TnetError::BadLength),
            (b"7:1:1#0:~}", TnetError::BadDictKey),
            (b"4:1:a,}", TnetError::MissingDictValue),
            (b"3:0:]}", TnetError::BadDictKey),
            (b"6:0:,0:?}", TnetError::BadTag(b'?')),
            // A tag byte that is not ASCII is shown in hex, not raw.
            (b"0:\xff", TnetError::BadTag(0xff)),
            (b"1:a#", TnetError::BadInt),
            (b"3:1e3#", TnetError::BadInt),
            (b"2:--#", TnetError::BadInt),
            (b"20:-9223372036854775809#", TnetError::BadInt),
            (b"24:000009223372036854775808#", TnetError::BadInt),
            (b"4:TRUE!", TnetError::BadBool),
            (b"5:true !", TnetError::BadBool),
            (b"3:yes!", TnetError::BadBool),
            (b"1:0~", TnetError::BadNull),
            (b"3:0:~~", TnetError::BadNull),
            // An odd number of dict items, and keys of every non-bytes kind.
            (b"12:1:a,1:b,1:c,}", TnetError::MissingDictValue),
            (b"6:0:~0:~}", TnetError::BadDictKey),
            (b"10:4:true!0:~}", TnetError::BadDictKey),
            (b"9:3:1.5^0:~}", TnetError::BadDictKey),
            (b"6:0:}0:~}", TnetError::BadDictKey),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode(input).map(|(v, _)| v),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    fn nested_lists(levels: usize) -> Vec<u8> {
        let mut v = Value::Null;
        for _ in 0..levels {
            v = Value::List(vec![v]);
        }
        encoded(&v)
    }

    #[test]
    fn depth_cap() {
        assert!(decode_all(&nested_lists(TNET_DEPTH_MAX)).is_ok());
        assert_eq!(
            decode_all(&nested_lists(TNET_DEPTH_MAX + 1)),
            Err(TnetError::TooDeep)
        );
        // A deep bomb is refused without recursing through all of it.
        assert_eq!(decode_all(&nested_lists(1000)), Err(TnetError::TooDeep));
    }

    #[test]
    fn size_and_element_caps() {
        let big = vec![b'x'; TNET_SIZE_MAX + 1];
        assert_eq!(decode(&big), Err(TnetError::TooLarge));

        let at_cap = Value::List(vec![Value::Null; TNET_ELEMENTS_MAX - 1]);
        assert!(decode_all(&encoded(&at_cap)).is_ok());
        let over = Value::List(vec![Value::Null; TNET_ELEMENTS_MAX]);
        assert_eq!(decode_all(&encoded(&over)), Err(TnetError::TooManyElements));
    }

    #[test]
    fn encode_table() {
        let cases: &[(Value, &[u8])] = &[
            (Value::Null, b"0:~"),
            (Value::Bool(true), b"4:true!"),
            (Value::Bool(false), b"5:false!"),
            (Value::Int(-12), b"3:-12#"),
            (Value::Float(1.0), b"3:1.0^"),
            (Value::Float(1e300), b"5:1e300^"),
            (Value::Float(f64::NAN), b"0:~"),
            (Value::Float(f64::NEG_INFINITY), b"0:~"),
            (bytes("hi"), b"2:hi,"),
            (Value::List(vec![Value::Int(1), bytes("")]), b"7:1:1#0:,]"),
            (
                Value::Map(vec![(b"k".to_vec(), Value::Null)]),
                b"7:1:k,0:~}",
            ),
            (Value::Int(0), b"1:0#"),
            (Value::Int(i64::MIN), b"20:-9223372036854775808#"),
            (Value::Int(i64::MAX), b"19:9223372036854775807#"),
            // The sign of zero survives: `-0.0` is a distinct f64 and decodes back as one.
            (Value::Float(-0.0), b"4:-0.0^"),
            (Value::Float(0.1), b"3:0.1^"),
            (Value::Float(1e-7), b"4:1e-7^"),
            (Value::Float(5e-324), b"6:5e-324^"),
            (Value::Float(f64::INFINITY), b"0:~"),
            (Value::Bytes(b"1:a,\x00".to_vec()), b"5:1:a,\x00,"),
            (Value::List(vec![]), b"0:]"),
            (Value::Map(vec![]), b"0:}"),
            // Dict entries keep their order, duplicates included.
            (
                Value::Map(vec![
                    (b"k".to_vec(), Value::Int(1)),
                    (b"".to_vec(), Value::List(vec![Value::Bool(false)])),
                    (b"k".to_vec(), Value::Int(2)),
                ]),
                b"30:1:k,1:1#0:,8:5:false!]1:k,1:2#}",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(encoded(v), *want, "{v:?}");
        }
    }

    #[test]
    fn round_trip_pseudo_random_values() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let v = rng.value(0);
            let bytes = encoded(&v);
            assert_eq!(decode_all(&bytes), Ok(v.clone()), "{v:?}");
            // Encoding is canonical: decode then encode gives the same bytes.
            let again = decode_all(&bytes).map(|d| encoded(&d));
            assert_eq!(again.as_deref(), Ok(bytes.as_slice()));
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut rng = Rng(42);
        for _ in 0..200 {
            let bytes = encoded(&rng.value(0));
            for cut in 0..bytes.len() {
                let prefix = bytes.get(..cut).unwrap_or_default();
                assert!(decode_all(prefix).is_err(), "cut {cut} of {bytes:?}");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(7);
        for i in 0..5000 {
            let input = if i % 2 == 0 {
                rng.bytes(64)
            } else {
                // Mutate a valid encoding so the decoder gets past the first byte.
                let mut b = encoded(&rng.value(0));
                if !b.is_empty() {
                    let at = rng.below(b.len() as u64) as usize;
                    if let Some(byte) = b.get_mut(at) {
                        *byte = rng.next() as u8;
                    }
                }
                b
            };
            let _ = decode(&input);
        }
    }

    /// Encodings as Pushpin writes them (spec Appendix A) decode and re-encode byte for byte.
    #[test]
    fn pushpin_encodings_round_trip_byte_identical() {
        let cases: &[&[u8]] = &[
            b"0:~",
            b"4:true!",
            b"5:false!",
            b"1:5#",
            b"2:-5#",
            b"3:0.5^",
            b"0:,",
            b"5:hello,",
            b"0:]",
            b"0:}",
            b"11:1:1#4:true!]",
            b"13:0:]0:}4:1:x,]]",
            // A publish item the way the command socket and PUSH/SUB inputs carry it.
            b"66:7:channel,4:test,7:formats,35:11:http-stream,16:7:content,3:hi\n,}}}",
        ];
        for input in cases {
            let v = decode_all(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(encoded(&v), *input, "{v:?}");
        }
        let item = decode_all(cases.last().copied().unwrap_or_default()).ok();
        let content = item
            .as_ref()
            .and_then(|v| v.get("formats"))
            .and_then(|v| v.get("http-stream"))
            .and_then(|v| v.get("content"));
        assert_eq!(content, Some(&bytes("hi\n")));
    }

    /// Regression guard for the Pushpin 1.36 crash: a child's declared length that runs past its
    /// parent's payload is truncation, even though the whole buffer has enough bytes after it (read
    /// past the parent, `3:0:~]` would be a valid list).
    #[test]
    fn a_child_cannot_read_past_its_parent() {
        assert_eq!(decode(b"5:3:0:~]]"), Err(TnetError::Truncated));
        assert_eq!(decode(b"5:3:0:~}}"), Err(TnetError::Truncated));
        assert_eq!(decode(b"4:2:ab],"), Err(TnetError::Truncated));
    }

    /// Leading zeros (in a length or an integer), `-0` and other float spellings are accepted, as
    /// Pushpin's number parsing accepts them, and re-encode in the one canonical form. Without
    /// floats the canonical form is never longer: that is what the `tnetstring` fuzz target relies
    /// on.
    #[test]
    fn non_canonical_inputs_reencode_canonically() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"01:x,", b"1:x,"),
            (b"00:~", b"0:~"),
            (b"0000000004:true!", b"4:true!"),
            (b"3:007#", b"1:7#"),
            (b"2:-0#", b"1:0#"),
            (b"4:-007#", b"2:-7#"),
            (b"06:02:-0#]", b"4:1:0#]"),
            (b"1:7^", b"3:7.0^"),
            (b"5:1e+16^", b"4:1e16^"),
            (b"4:0.50^", b"3:0.5^"),
            (b"5:-0.00^", b"4:-0.0^"),
        ];
        for (input, canonical) in cases {
            let v = decode_all(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(encoded(&v), *canonical, "{input:?}");
            if !matches!(v, Value::Float(_)) {
                assert!(canonical.len() < input.len(), "{input:?}");
            }
        }
    }

    #[test]
    fn float_spellings() {
        let accepted: &[(&[u8], f64)] = &[
            (b"+1.5", 1.5),
            (b".5", 0.5),
            (b"5.", 5.0),
            (b"1E3", 1000.0),
            (b"-2.5e-3", -0.0025),
            // Underflow rounds to zero, a finite value; only overflow to infinity is refused.
            (b"1e-400", 0.0),
            (b"1.7976931348623157e308", f64::MAX),
        ];
        for (text, want) in accepted {
            let mut input = format!("{}:", text.len()).into_bytes();
            input.extend_from_slice(text);
            input.push(b'^');
            let got = decode_all(&input);
            assert_eq!(got, Ok(Value::Float(*want)), "{input:?}");
        }
        let Ok(Value::Float(z)) = decode_all(b"4:-0.0^") else {
            panic!("-0.0 refused");
        };
        assert!(z == 0.0 && z.is_sign_negative());

        let refused: &[&[u8]] = &[
            b"nan",
            b"NaN",
            b"inf",
            b"-inf",
            b"infinity",
            b"1e309",
            b"-1e309",
            b"1e",
            b"e1",
            b"--1",
            b"1.2.3",
            b"0x10",
            b"1_0",
            b" 1",
            b"1 ",
            b"-",
            b"+",
        ];
        for text in refused {
            let mut input = format!("{}:", text.len()).into_bytes();
            input.extend_from_slice(text);
            input.push(b'^');
            assert_eq!(decode_all(&input), Err(TnetError::BadFloat), "{input:?}");
        }
    }

    #[test]
    fn decode_all_refuses_any_trailing_byte() {
        for input in [&b"0:~\n"[..], b"0:~0:~", b"5:hello,\0", b"0:] "] {
            assert_eq!(decode_all(input), Err(TnetError::TrailingData), "{input:?}");
            // `decode` itself stops at the end of the first value.
            assert!(decode(input).is_ok_and(|(_, used)| used < input.len()));
        }
    }

    #[test]
    fn depth_cap_counts_dicts_and_mixed_nesting() {
        let nest = |levels: usize| {
            let mut v = bytes("leaf");
            for i in 0..levels {
                v = if i % 2 == 0 {
                    Value::Map(vec![(b"k".to_vec(), v)])
                } else {
                    Value::List(vec![Value::Null, v])
                };
            }
            encoded(&v)
        };
        assert!(decode_all(&nest(TNET_DEPTH_MAX)).is_ok());
        assert_eq!(
            decode_all(&nest(TNET_DEPTH_MAX + 1)),
            Err(TnetError::TooDeep)
        );
        // A dict key that is itself a deep container trips the depth cap, not the key check.
        let mut deep_key = b"0:}".to_vec();
        for _ in 0..TNET_DEPTH_MAX {
            let mut outer = format!("{}:", deep_key.len() + 3).into_bytes();
            outer.extend_from_slice(&deep_key);
            outer.extend_from_slice(b"0:~}");
            deep_key = outer;
        }
        assert_eq!(decode_all(&deep_key), Err(TnetError::TooDeep));
    }

    /// Dict keys are values too: a dict of empty keys and nulls costs 6 input bytes per entry.
    #[test]
    fn dict_keys_count_towards_the_element_cap() {
        let dict = |entries: usize| {
            // The outer list plus the dict plus a key and a value per entry.
            let inner = Value::Map(vec![(Vec::new(), Value::Null); entries]);
            encoded(&Value::List(vec![inner]))
        };
        let at_cap = (TNET_ELEMENTS_MAX - 2) / 2;
        assert!(decode_all(&dict(at_cap)).is_ok());
        assert_eq!(
            decode_all(&dict(at_cap + 1)),
            Err(TnetError::TooManyElements)
        );
    }

    /// The declared length is compared with the bytes that are there before anything is read or
    /// allocated, at every level, so a few bytes can claim gigabytes without cost.
    #[test]
    fn huge_declared_lengths_are_truncation() {
        let cases: &[&[u8]] = &[
            b"4294967296:,",
            b"9999999999:}",
            b"12:9999999999:,]",
            b"10:0:,999999:}",
        ];
        for input in cases {
            assert_eq!(decode(input), Err(TnetError::Truncated), "{input:?}");
        }
    }

    #[test]
    fn encode_appends_to_the_output() {
        let mut out = b"T".to_vec();
        encode(&Value::List(vec![Value::Int(1)]), &mut out);
        encode(&Value::Null, &mut out);
        assert_eq!(out, b"T4:1:1#]0:~");
    }

    #[test]
    fn errors_display_on_one_line() {
        let all = [
            TnetError::TooLarge,
            TnetError::TooDeep,
            TnetError::TooManyElements,
            TnetError::BadLength,
            TnetError::Truncated,
            TnetError::BadTag(b'?'),
            TnetError::BadInt,
            TnetError::BadFloat,
            TnetError::BadBool,
            TnetError::BadNull,
            TnetError::BadDictKey,
            TnetError::MissingDictValue,
            TnetError::TrailingData,
        ];
        for e in all {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{e:?}");
        }
        assert_eq!(
            TnetError::BadTag(b'?').to_string(),
            "unknown tnetstring tag 0x3f"
        );
    }
}
