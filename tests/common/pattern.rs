//! A deterministic byte pattern for large bodies, generated and checked without buffering.

use std::io::{self, Write};
use std::sync::OnceLock;

/// Block length of the pattern; prime, so blocks never line up with buffer or chunk sizes.
const PATTERN_BLOCK: u64 = 65_521;

fn pattern_base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..PATTERN_BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    })
}

/// Fill `out` with the pattern bytes at stream offsets `pos..`. Each block starts with its index, so a lost,
/// repeated or reordered block is detected.
pub fn pattern_fill(mut pos: u64, mut out: &mut [u8]) {
    let base = pattern_base();
    while !out.is_empty() {
        let block = pos / PATTERN_BLOCK;
        let off = (pos % PATTERN_BLOCK) as usize;
        let n = out.len().min(PATTERN_BLOCK as usize - off);
        let (now, rest) = out.split_at_mut(n);
        now.copy_from_slice(&base[off..off + n]);
        let tag = block.to_le_bytes();
        for (i, b) in now.iter_mut().enumerate() {
            let at = off + i;
            if at >= 8 {
                break;
            }
            *b = tag[at];
        }
        pos += n as u64;
        out = rest;
    }
}

/// Checks a received stream against the pattern without buffering it.
#[derive(Debug, Default, Clone)]
pub struct Verifier {
    pub len: u64,
    pub bad_at: Option<u64>,
}

impl Verifier {
    pub fn feed(&mut self, mut data: &[u8]) {
        let base = pattern_base();
        while !data.is_empty() {
            let block = self.len / PATTERN_BLOCK;
            let off = (self.len % PATTERN_BLOCK) as usize;
            let n = data.len().min(PATTERN_BLOCK as usize - off);
            let (now, rest) = data.split_at(n);
            if self.bad_at.is_none() {
                let tag = block.to_le_bytes();
                let head = 8usize.saturating_sub(off).min(n);
                let head_ok = (0..head).all(|i| now[i] == tag[off + i]);
                if !head_ok || now[head..] != base[off + head..off + n] {
                    self.bad_at = Some(self.len);
                }
            }
            self.len += n as u64;
            data = rest;
        }
    }

    /// The bytes seen are exactly the first `len` pattern bytes.
    pub fn ok(&self, len: u64) -> bool {
        self.bad_at.is_none() && self.len == len
    }
}

/// Write `n` pattern bytes, framed as chunked (chunks of odd sizes) or raw.
pub fn write_pattern(w: &mut impl Write, n: u64, chunked: bool) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut pos = 0u64;
    let mut turn = 0usize;
    while pos < n {
        // Vary the write size so framing boundaries move around.
        let size = [256 * 1024, 100_003, 7_777, 65_536][turn % 4];
        turn += 1;
        let len = (n - pos).min(size as u64) as usize;
        pattern_fill(pos, &mut buf[..len]);
        if chunked {
            w.write_all(format!("{len:x}\r\n").as_bytes())?;
            w.write_all(&buf[..len])?;
            w.write_all(b"\r\n")?;
        } else {
            w.write_all(&buf[..len])?;
        }
        pos += len as u64;
    }
    if chunked {
        w.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}
