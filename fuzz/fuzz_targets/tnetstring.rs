//! tnetstring decoding of arbitrary bytes, as any ZeroMQ peer (publisher, command client) can send.
//!
//! Besides "no panic", this checks what must hold for every accepted input:
//! * the decoder reads nothing past the bytes it reports as used, and stays within its caps;
//! * `decode_all` is `decode` plus "nothing after the value";
//! * re-encoding gives the canonical form, which decodes to the same value and re-encodes to itself.
//!
//! Accepted inputs need not be canonical: a length prefix or an integer may carry leading zeros,
//! `-0` is an integer, and a float has many spellings (`1:7^` is `3:7.0^` canonically). Every
//! non-canonical length or integer spelling is strictly longer than the canonical one, and shrinking
//! a payload never lengthens its parent's length prefix, so for a value without floats the canonical
//! encoding is never longer than the input and has the same length only if it is the same bytes.
//! A float's canonical spelling can be longer or shorter than the input's, so for values holding a
//! float only the round trip is checked.
#![no_main]

use holdfast::publish::tnetstring::{
    decode, decode_all, encode, TnetError, TNET_DEPTH_MAX, TNET_ELEMENTS_MAX,
};
use holdfast::publish::Value;
use libfuzzer_sys::fuzz_target;

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

fn has_float(v: &Value) -> bool {
    match v {
        Value::Float(_) => true,
        Value::List(items) => items.iter().any(has_float),
        Value::Map(entries) => entries.iter().any(|(_, v)| has_float(v)),
        _ => false,
    }
}

fn encoded(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let first = decode(data);
    // `decode_all` is exactly `decode` that also refuses trailing bytes.
    let all = decode_all(data);
    match &first {
        Ok((v, used)) if *used == data.len() => assert_eq!(all.as_ref(), Ok(v)),
        Ok(_) => assert_eq!(all, Err(TnetError::TrailingData)),
        Err(e) => assert_eq!(all.as_ref(), Err(e)),
    }

    let (value, used) = match first {
        Ok(ok) => ok,
        Err(e) => {
            // The error becomes a log line and a `bad-request` condition text: one line.
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{e:?}");
            return;
        }
    };
    // A value is at least `0:` and a tag.
    assert!((3..=data.len()).contains(&used));
    assert!(depth(&value) <= TNET_DEPTH_MAX);
    assert!(elements(&value) <= TNET_ELEMENTS_MAX);
    // Decoded floats are finite (non-finite spellings are refused), so `==` is a fair comparison.
    // The decoder read nothing past `used`: the used bytes alone decode the same, in full.
    let consumed = &data[..used];
    assert_eq!(decode_all(consumed).as_ref(), Ok(&value));

    let canonical = encoded(&value);
    assert_eq!(decode(&canonical), Ok((value.clone(), canonical.len())));
    // The canonical form is a fixed point of decode-then-encode.
    assert_eq!(decode_all(&canonical).map(|v| encoded(&v)).as_deref(), Ok(canonical.as_slice()));

    if !has_float(&value) {
        assert!(canonical.len() <= used, "canonical {} > used {used}", canonical.len());
        assert_eq!(canonical.len() == used, canonical == consumed);
    } else if canonical == consumed {
        assert_eq!(canonical.len(), used);
    }
});
