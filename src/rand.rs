//! Per-thread pseudo-random bytes for WebSocket keys and masks and for connection ids.
//!
//! None of these is a secret: a handshake key only proves the peer speaks WebSocket, a mask only keeps a
//! frame's bytes from being chosen by whoever wrote the payload, and a `Connection-Id` only has to be unique.
//! So a fast generator (SplitMix64) is enough, seeded per thread from the operating system's randomness,
//! which std's `RandomState` draws on, and the clock. No dependency, no unsafe, no system call per draw.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    h.write_u64(nanos);
    h.write_u64(std::process::id() as u64);
    h.finish()
}

/// The next 64 random bits of this thread's SplitMix64 sequence.
pub fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// Fill `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let bytes = next_u64().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// A random masking key for one client-to-server frame (RFC 6455 5.3).
pub fn mask() -> [u8; 4] {
    (next_u64() as u32).to_le_bytes()
}

/// A random (version 4) UUID in its usual text form, as Pushpin uses for `Connection-Id`.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from_digit((byte >> 4) as u32, 16).unwrap_or('0'));
        s.push(char::from_digit((byte & 0x0f) as u32, 16).unwrap_or('0'));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_v4_shape_and_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let u = uuid_v4();
            assert_eq!(u.len(), 36);
            let parts: Vec<&str> = u.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'), "{u}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{u}");
            assert!(u.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
            assert!(seen.insert(u));
        }
    }

    #[test]
    fn fill_covers_odd_lengths_and_threads_draw_different_sequences() {
        let mut a = [0u8; 13];
        fill(&mut a);
        assert!(a.iter().any(|&b| b != 0));
        let here = next_u64();
        let there = std::thread::spawn(next_u64).join().unwrap();
        assert_ne!(here, there);
    }
}
