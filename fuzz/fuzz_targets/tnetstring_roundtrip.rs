//! tnetstring round trip as a property: a `Value` built from the input encodes deterministically,
//! and decodes back to itself exactly when it is within the decoder's caps.
//!
//! Random bytes rarely get past a tnetstring's length prefixes, so the `tnetstring` target mostly
//! exercises the refusals; this one starts from structured values instead. The generator below reads
//! the input as a list of small opcodes. A chain of nested containers costs a few input bytes, so the
//! model is checked on both sides of the depth cap, not only far inside it.
//!
//! The element and size caps are left to the unit tests next to the codec. Reaching them takes a
//! 65,536-value or 4 MiB value, and a first version of this target that generated such values now
//! and then ran at about 150 executions a second instead of thousands: with coverage
//! instrumentation, one decode of 65,536 values takes tens of milliseconds. The model still says
//! what those caps must give, should a value reach them.
#![no_main]

use holdfast::publish::tnetstring::{
    decode, decode_all, encode, TnetError, TNET_DEPTH_MAX, TNET_ELEMENTS_MAX, TNET_SIZE_MAX,
};
use holdfast::publish::Value;
use libfuzzer_sys::fuzz_target;

/// Generated containers may nest a little deeper than the decoder allows, to test the refusal.
const GEN_DEPTH_MAX: usize = TNET_DEPTH_MAX + 4;
/// Bounds the generator's work per input (values made one opcode each).
const GEN_NODES_MAX: usize = 4096;
/// Bounds the leaves of runs per input, far below `TNET_ELEMENTS_MAX` (see above).
const GEN_RUN_LEAVES_MAX: usize = 8192;

struct Gen<'a> {
    data: &'a [u8],
    nodes: usize,
    run_leaves: usize,
}

impl Gen<'_> {
    /// The next input byte; 0 once the input is used up, which makes every choice end quickly.
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        b.iter_mut().for_each(|x| *x = self.byte());
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes of the input, taken as they are (so `:`, `,` and digits show up in payloads).
    fn take(&mut self, n: usize) -> Vec<u8> {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head.to_vec()
    }

    fn value(&mut self, depth: usize) -> Value {
        if self.data.is_empty() {
            return Value::Null;
        }
        let op = self.byte();
        self.nodes += 1;
        let can_nest = depth < GEN_DEPTH_MAX && self.nodes < GEN_NODES_MAX;
        match op % 10 {
            0 => Value::Null,
            1 => Value::Bool(op & 0x80 != 0),
            2 => Value::Int(self.u64() as i64),
            3 => Value::Int(
                [0, -1, 1, i64::MIN, i64::MAX, i64::from(self.byte() as i8)][usize::from(op >> 5) % 6],
            ),
            // Any bit pattern: NaN, infinities, -0.0 and subnormals included.
            4 => Value::Float(f64::from_bits(self.u64())),
            // Short decimals, the floats publishers actually send.
            5 => Value::Float(f64::from(self.u16() as i16) / 10f64.powi(i32::from(op >> 4) - 4)),
            6 => {
                let n = usize::from(self.byte() % 64);
                Value::Bytes(self.take(n))
            }
            7 if can_nest => {
                let n = usize::from(op >> 5);
                Value::List((0..n).map(|_| self.value(depth + 1)).collect())
            }
            8 if can_nest => {
                let n = usize::from(op >> 5);
                Value::Map(
                    (0..n)
                        .map(|_| {
                            let k = usize::from(self.byte() % 16);
                            (self.take(k), self.value(depth + 1))
                        })
                        .collect(),
                )
            }
            9 => self.special(op >> 4),
            _ => Value::Bytes(Vec::new()),
        }
    }

    /// Values that are big for the input bytes they take.
    fn special(&mut self, which: u8) -> Value {
        match which % 3 {
            // A chain of nested containers around a null: the depth cap.
            0 | 1 => {
                let levels = usize::from(self.byte() % 48);
                let shape = self.u64();
                let mut v = Value::Null;
                for i in 0..levels {
                    v = if shape >> (i % 64) & 1 == 0 {
                        Value::List(vec![v])
                    } else {
                        Value::Map(vec![(b"k".to_vec(), v)])
                    };
                }
                v
            }
            // A list of up to 255 equal leaves: wide containers for a few input bytes.
            _ => {
                let leaf = match self.byte() % 3 {
                    0 => Value::Null,
                    1 => Value::Int(0),
                    _ => Value::Bytes(Vec::new()),
                };
                let n = usize::from(self.byte()).min(GEN_RUN_LEAVES_MAX - self.run_leaves);
                self.run_leaves += n;
                Value::List(vec![leaf; n])
            }
        }
    }
}

/// What decoding the encoding must give: `encode` writes a non-finite float as null.
fn expected(v: &Value) -> Value {
    match v {
        Value::Float(f) if !f.is_finite() => Value::Null,
        Value::List(items) => Value::List(items.iter().map(expected).collect()),
        Value::Map(entries) => Value::Map(entries.iter().map(|(k, v)| (k.clone(), expected(v))).collect()),
        other => other.clone(),
    }
}

/// Equality with floats compared by bits, so a lost `-0.0` sign or a changed NaN payload shows.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}

/// Nesting of containers, the outermost counting as one (how the decoder counts).
fn depth(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(entries) => 1 + entries.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Values decoded, dict keys included (how the decoder counts).
fn elements(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(elements).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + elements(v)).sum::<usize>(),
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut gen = Gen { data, nodes: 0, run_leaves: 0 };
    let value = gen.value(0);

    // `encode` appends, leaving what is already in the buffer alone.
    let mut out = b"prefix".to_vec();
    encode(&value, &mut out);
    assert_eq!(&out[..6], b"prefix");
    let bytes = out.split_off(6);
    // Deterministic, and a non-finite float is written exactly as a null would be.
    let want = expected(&value);
    let mut again = Vec::new();
    encode(&want, &mut again);
    assert!(again == bytes, "encoding depends on more than the value");

    let got = decode_all(&bytes);
    let (too_deep, too_many) = (depth(&want) > TNET_DEPTH_MAX, elements(&want) > TNET_ELEMENTS_MAX);
    if bytes.len() > TNET_SIZE_MAX {
        assert_eq!(got, Err(TnetError::TooLarge));
        return;
    }
    match (too_deep, too_many) {
        // Which cap trips first depends on where the deep part sits relative to the many values.
        (true, true) => {
            assert!(matches!(got, Err(TnetError::TooDeep | TnetError::TooManyElements)), "{got:?}")
        }
        (true, false) => assert_eq!(got, Err(TnetError::TooDeep)),
        (false, true) => assert_eq!(got, Err(TnetError::TooManyElements)),
        (false, false) => {
            let Ok(decoded) = got else { panic!("a value within the caps was refused: {got:?}") };
            assert!(same(&decoded, &want), "round trip changed the value");
            // Decoding then encoding gives back the same bytes: the encoding is canonical.
            let mut re = Vec::new();
            encode(&decoded, &mut re);
            assert!(re == bytes, "re-encoding differs");
            // Bytes after the value are left alone by `decode` and refused by `decode_all`.
            if bytes.len() < TNET_SIZE_MAX {
                let mut longer = bytes.clone();
                longer.push(b'0');
                assert!(matches!(decode(&longer), Ok((_, used)) if used == bytes.len()));
                assert_eq!(decode_all(&longer), Err(TnetError::TrailingData));
            }
        }
    }
    // Every strict prefix is truncated; the top-level length check catches it before any nesting.
    // Up to 256 cuts per input (all of them for short encodings), to keep big values cheap.
    let step = bytes.len() / 256 + 1;
    for cut in (0..bytes.len()).step_by(step).chain(bytes.len().checked_sub(1)) {
        assert_eq!(decode(&bytes[..cut]).map(|(_, used)| used), Err(TnetError::Truncated), "cut {cut}");
    }
});
