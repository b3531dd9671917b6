//! Bounded byte buffers for sockets.
//!
//! `InBuf` is what a socket reads into: a hard capacity decided by its owner, allocated on first use and
//! given back when empty, so an idle connection (for example a held stream) costs no buffer memory. It starts
//! at `FIRST_ALLOC` bytes and grows toward its capacity only when a read fills it: most requests and backend
//! heads fit the first allocation, so a burst of new connections does not carve one 32 KiB block per
//! connection out of the allocator (each such block is its own jemalloc extent, whose bookkeeping outlives
//! the burst: see `crate::memory`).
//! `OutBuf` collects bytes to write; its owner checks `len()` against its own limit before producing more,
//! which is how backpressure reaches the side that produces the bytes.

use std::cell::RefCell;
use std::io::{self, Read, Write};

/// Read buffers kept per thread for reuse, so a keep-alive connection does not allocate and zero a fresh
/// buffer for every request. Bounded; `trim_pool` frees what went unused for a whole trim period, so memory
/// returns to the baseline once load is gone.
const POOL_BUFFERS_MAX: usize = 64;

/// First allocation of a read buffer. 3,584 bytes is a jemalloc size class with eight buffers to a slab,
/// where 4,096 would take one slab (and one extent record) per buffer.
const FIRST_ALLOC: usize = 3584;

/// Factor by which a full read buffer grows, up to its capacity (3.5 KiB, 14 KiB, then the cap).
const GROWTH: usize = 4;

struct Pool {
    free: Vec<Vec<u8>>,
    /// The fewest buffers the pool held since the last trim: that many were not needed during the period.
    low_water: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { free: Vec::new(), low_water: 0 }) };
}

/// A zeroed buffer of at least `want` and at most `cap` bytes: a pooled one (a keep-alive connection gets
/// back the large buffer its previous request grew) or a new one of `want` bytes.
fn pool_take(want: usize, cap: usize) -> Vec<u8> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let found = p
            .free
            .iter()
            .rposition(|v| (want..=cap).contains(&v.len()))
            .map(|i| p.free.swap_remove(i));
        p.low_water = p.low_water.min(p.free.len());
        found
    })
    .unwrap_or_else(|| vec![0; want])
}

fn pool_give(buf: Vec<u8>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.free.len() < POOL_BUFFERS_MAX {
            p.free.push(buf);
        }
    });
}

/// Free the pooled buffers this thread did not need since the previous call. Call it periodically.
pub fn trim_pool() {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let unused = p.low_water.min(p.free.len());
        let keep = p.free.len() - unused;
        p.free.truncate(keep);
        p.free.shrink_to_fit();
        p.low_water = p.free.len();
    });
}

/// Free all of this thread's pooled buffers (a burst of connections has ended: see `crate::memory`).
pub fn release_pool() {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.free = Vec::new();
        p.low_water = 0;
    });
}

/// A read buffer with a hard capacity. Bytes live in `data[start..end]`.
#[derive(Debug)]
pub struct InBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    cap: usize,
}

impl InBuf {
    pub fn new(cap: usize) -> InBuf {
        InBuf {
            data: Vec::new(),
            start: 0,
            end: 0,
            cap,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.cap
    }

    pub fn data(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// The buffered bytes, for parsers that work in place (WebSocket unmasking).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    /// Drop `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Append bytes that were read elsewhere; returns how many fitted.
    pub fn extend(&mut self, bytes: &[u8]) -> usize {
        let mut done = 0;
        // More than one step when the buffer grows (or compacts) on the way.
        while done < bytes.len() {
            let spare = self.spare();
            let n = (bytes.len() - done).min(spare.len());
            if n == 0 {
                break;
            }
            spare[..n].copy_from_slice(&bytes[done..done + n]);
            self.end += n;
            done += n;
        }
        done
    }

    /// Free the memory of an empty buffer (idle connections keep none).
    pub fn release_if_empty(&mut self) {
        if self.is_empty() && !self.data.is_empty() {
            pool_give(std::mem::take(&mut self.data));
        }
    }

    /// Free space left before the buffer is full.
    pub fn room(&self) -> usize {
        self.cap - self.len()
    }

    /// One `read` call into the free space. `Ok(0)` means end of stream, unless the buffer was full, in which case
    /// nothing is read and `Err(WouldBlock)`-like state is the caller's job: callers check `is_full` first.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<usize> {
        let spare = self.spare();
        if spare.is_empty() {
            return Ok(0);
        }
        let n = r.read(spare)?;
        self.end += n;
        Ok(n)
    }

    /// Like `read_from`, and also says whether the read proved the source drained: it returned less than
    /// the space it was offered. (Offered space, not `room()`: unread bytes that are not at the front
    /// leave less contiguous space than `room()` counts, and taking a full read of that smaller space for
    /// a drained socket left data unread with no edge to come — a stalled transfer.)
    pub fn read_some<R: Read>(&mut self, r: &mut R) -> io::Result<(usize, bool)> {
        let spare = self.spare();
        let offered = spare.len();
        if offered == 0 {
            return Ok((0, false));
        }
        let n = r.read(spare)?;
        self.end += n;
        Ok((n, n < offered))
    }

    fn spare(&mut self) -> &mut [u8] {
        if self.data.is_empty() {
            // Taken at a fixed size (or from the pool) so reads never re-zero memory.
            self.data = pool_take(self.cap.min(FIRST_ALLOC), self.cap);
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.data.len() {
            if self.start > 0 {
                // Compact: move the unread tail to the front so the free space is contiguous.
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.data.len() < self.cap {
                let grown = (self.data.len() * GROWTH).min(self.cap);
                self.data.resize(grown, 0);
            }
        }
        let allocated = self.data.len();
        &mut self.data[self.end..allocated]
    }
}

impl Drop for InBuf {
    fn drop(&mut self) {
        if !self.data.is_empty() {
            pool_give(std::mem::take(&mut self.data));
        }
    }
}

/// A write buffer. Producers append; `write_to` drains it.
#[derive(Debug, Default)]
pub struct OutBuf {
    data: Vec<u8>,
    pos: usize,
    /// Bytes of HTTP heads appended since `take_head_bytes`, for the header-bytes metrics. Kept here because
    /// heads are written deep in code that has the buffer and nothing else (holds, WebSocket-over-HTTP).
    head_bytes: u64,
}

impl OutBuf {
    pub fn new() -> OutBuf {
        OutBuf::default()
    }

    pub fn len(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }

    /// The vector to append to. Consumed bytes are dropped first when they dominate, so the vector does not
    /// grow past what its producer allows in flight.
    pub fn vec(&mut self) -> &mut Vec<u8> {
        if self.pos > 0 && self.pos * 2 >= self.data.len() {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        &mut self.data
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.vec().extend_from_slice(bytes);
    }

    /// Append an HTTP head written by `write`, counting its bytes as head bytes.
    pub fn push_head(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let v = self.vec();
        let before = v.len();
        write(v);
        let n = v.len() - before;
        self.head_bytes += n as u64;
    }

    /// The last `n` bytes appended were an HTTP head (its body may follow).
    pub fn mark_head(&mut self, n: usize) {
        self.head_bytes += n as u64;
    }

    /// Head bytes appended since the last call.
    pub fn take_head_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.head_bytes)
    }

    pub fn data(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Write as much as the writer takes. Returns bytes written; `Err(WouldBlock)` passes through.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while self.pos < self.data.len() {
            match w.write(&self.data[self.pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pos += n;
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if total > 0 && e.kind() == io::ErrorKind::WouldBlock {
                        break;
                    }
                    return Err(e);
                }
            }
        }
        if self.pos == self.data.len() {
            self.pos = 0;
            self.data.clear();
        }
        Ok(total)
    }

    /// Give back memory once drained, keeping small allocations for reuse.
    pub fn release_if_empty(&mut self) {
        if self.is_empty() && self.data.capacity() > 4096 {
            self.data = Vec::new();
        }
    }

    pub fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Give back all memory once drained (held connections keep none while they wait).
    pub fn release(&mut self) {
        if self.is_empty() && self.data.capacity() > 0 {
            self.data = Vec::new();
            self.pos = 0;
        }
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbuf_is_bounded_and_compacts() {
        let mut b = InBuf::new(8);
        assert_eq!(b.extend(b"abcdefghij"), 8);
        assert!(b.is_full());
        b.consume(5);
        assert_eq!(b.data(), b"fgh");
        assert_eq!(b.extend(b"12345678"), 5);
        assert_eq!(b.data(), b"fgh12345");
        b.consume(8);
        assert!(b.is_empty());
        b.release_if_empty();
        assert_eq!(b.data.capacity(), 0);
    }

    #[test]
    fn released_buffers_are_reused_then_trimmed() {
        let mut a = InBuf::new(1000);
        a.extend(b"x");
        a.consume(1);
        a.release_if_empty();
        trim_pool(); // start a fresh period
        let mut b = InBuf::new(1000);
        b.extend(b"y");
        assert_eq!(b.data(), b"y");
        drop(b); // back to the pool
        trim_pool(); // the pooled buffer was taken during this period: it stays
        assert_eq!(POOL.with(|p| p.borrow().free.len()), 1);
        trim_pool(); // unused for a whole period: freed
        assert_eq!(POOL.with(|p| p.borrow().free.len()), 0);
    }

    #[test]
    fn a_read_that_fills_the_offered_space_is_not_taken_for_a_drained_source() {
        let mut b = InBuf::new(8);
        let mut src: &[u8] = b"abcdef";
        assert_eq!(b.read_some(&mut src).unwrap(), (6, true));
        b.consume(4); // "ef" unread at offset 4: 6 bytes of room, but only 2 contiguous at the end
        let mut more: &[u8] = b"ghijkl";
        let (n, drained) = b.read_some(&mut more).unwrap();
        assert_eq!(n, 2);
        assert!(!drained, "the source still holds 4 bytes");
        assert!(
            b.room() > n,
            "the old test (n < room) would have called this drained"
        );
        let (n, drained) = b.read_some(&mut more).unwrap();
        assert_eq!((n, drained), (4, false), "compacted, then the rest");
        assert_eq!(b.data(), b"efghijkl");
    }

    #[test]
    fn inbuf_starts_small_and_grows_to_its_cap_only_as_reads_fill_it() {
        release_pool();
        let cap = 32 * 1024;
        let mut b = InBuf::new(cap);
        let mut head: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        b.read_some(&mut head).unwrap();
        assert_eq!(
            b.data.len(),
            FIRST_ALLOC,
            "a short request takes the small first buffer"
        );
        let body = vec![7u8; 40 * 1024];
        let mut src: &[u8] = &body;
        let mut reads = Vec::new();
        loop {
            let (n, _) = b.read_some(&mut src).unwrap();
            if n == 0 {
                break;
            }
            reads.push(b.data.len());
        }
        assert!(b.is_full());
        assert_eq!(b.len(), cap);
        assert_eq!(reads.first(), Some(&FIRST_ALLOC));
        assert!(
            reads.contains(&(FIRST_ALLOC * GROWTH)),
            "grew by steps: {reads:?}"
        );
        assert_eq!(b.data.len(), cap, "never past the cap");
        assert_eq!(
            &b.data()[..head_len()],
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        );
        // Back in the pool at its grown size, and handed to the next buffer that asks for at most that.
        b.consume(cap);
        b.release_if_empty();
        let mut c = InBuf::new(cap);
        c.extend(b"x");
        assert_eq!(
            c.data.len(),
            cap,
            "a keep-alive connection gets the grown buffer back"
        );
        let mut small = InBuf::new(1000);
        small.extend(b"y");
        assert_eq!(
            small.data.len(),
            1000,
            "never a pooled buffer larger than the cap"
        );
        release_pool();
    }

    fn head_len() -> usize {
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".len()
    }

    #[test]
    fn extend_fills_past_the_first_allocation_up_to_the_cap() {
        let mut b = InBuf::new(10_000);
        let bytes = vec![1u8; 12_000];
        assert_eq!(b.extend(&bytes), 10_000);
        assert!(b.is_full());
        assert_eq!(b.extend(b"more"), 0);
    }

    #[test]
    fn inbuf_reads_only_into_free_space() {
        let mut b = InBuf::new(4);
        let mut src: &[u8] = b"hello world";
        assert_eq!(b.read_from(&mut src).unwrap(), 4);
        assert_eq!(b.read_from(&mut src).unwrap(), 0);
        assert_eq!(b.data(), b"hell");
    }

    struct Trickle(Vec<u8>, usize);
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.1 == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.1).min(3);
            self.1 -= n;
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn head_bytes_are_counted_apart_from_the_rest() {
        let mut out = OutBuf::new();
        out.extend(b"body before");
        out.push_head(|v| v.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n"));
        out.extend(b"body");
        out.mark_head(7);
        assert_eq!(out.take_head_bytes(), 19 + 7);
        assert_eq!(out.take_head_bytes(), 0, "taken means reset");
        assert_eq!(out.len(), 11 + 19 + 4);
    }

    #[test]
    fn outbuf_resumes_partial_writes_exactly() {
        let mut o = OutBuf::new();
        o.extend(b"0123456789");
        let mut w = Trickle(Vec::new(), 4);
        assert_eq!(o.write_to(&mut w).unwrap(), 4);
        assert_eq!(o.data(), b"456789");
        o.extend(b"ab");
        assert!(o.write_to(&mut w).unwrap_err().kind() == io::ErrorKind::WouldBlock);
        w.1 = 100;
        assert_eq!(o.write_to(&mut w).unwrap(), 8);
        assert_eq!(w.0, b"0123456789ab");
        assert!(o.is_empty());
    }
}
