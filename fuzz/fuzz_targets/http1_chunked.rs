//! Chunked body decoding must not depend on how the bytes are split across reads.
//! Input: byte 0 = (count of split-size bytes) | 0x80 for tight limits; then the sizes; then the body.
#![no_main]

use holdfast::http1::{BodyDecoder, BodyError, BodyKind, ChunkLimits};
use libfuzzer_sys::fuzz_target;

/// Feed `parts` the way the reactor does (keep unconsumed bytes, append the next read, loop while
/// progress is made). Returns the payload and either (total consumed, done) or the error.
fn feed(limits: ChunkLimits, parts: &[&[u8]]) -> (Vec<u8>, Result<(usize, bool), BodyError>) {
    let mut dec = BodyDecoder::new(BodyKind::Chunked, limits);
    let (mut pending, mut payload, mut total) = (Vec::new(), Vec::new(), 0usize);
    for part in parts {
        pending.extend_from_slice(part);
        loop {
            let step = match dec.decode(&pending) {
                Ok(step) => step,
                Err(e) => return (payload, Err(e)),
            };
            assert!(step.consumed <= pending.len());
            assert!(step.data.start <= step.data.end && step.data.end <= step.consumed);
            assert_eq!(step.done, dec.is_done());
            payload.extend_from_slice(&pending[step.data.clone()]);
            pending.drain(..step.consumed);
            total += step.consumed;
            if step.done {
                return (payload, Ok((total, true)));
            }
            if step.consumed == 0 {
                break;
            }
        }
    }
    assert!(pending.is_empty(), "the chunked decoder buffers nothing: all input is consumed");
    (payload, Ok((total, false)))
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let limits = if config & 0x80 != 0 {
        ChunkLimits { max_size_digits: 4, max_extension: 8, max_trailers: 32 }
    } else {
        ChunkLimits::default()
    };
    let (sizes, body) = rest.split_at(usize::from(config & 0x07).min(rest.len()));
    let mut parts = Vec::new();
    let mut left = body;
    for &size in sizes.iter().cycle() {
        if left.is_empty() {
            break;
        }
        let (part, tail) = left.split_at((usize::from(size % 32) + 1).min(left.len()));
        parts.push(part);
        left = tail;
    }
    parts.push(left);
    let whole = feed(limits, &[body]);
    let split = feed(limits, &parts);
    match (&whole.1, &split.1) {
        // Framing bytes that precede an error inside one call are not reported as consumed,
        // so totals are only comparable on success.
        (Err(a), Err(b)) => assert_eq!((&whole.0, a), (&split.0, b)),
        _ => assert_eq!(whole, split),
    }
    if let Ok((total, _)) = whole.1 {
        assert!(total <= body.len());
    }
});
