//! Giving a burst's memory back to the system. The binary's global allocator is jemalloc (src/main.rs), which
//! keeps a cache of freed small blocks per thread: only that thread can hand them back to its arena, and it
//! does so only as it keeps allocating, so once a burst of connections ends each idle worker's cache pins
//! part-empty slabs (about 1 MiB over the threads after 15,000 held streams closed). A thread that sees a
//! burst end calls `release_thread_cache`.
//!
//! The same thread first fits its long-lived tables exactly (`Fit::Exact`: subscriptions, the stats tracker
//! and its refresh queues): a table that grew mid-burst was reallocated into a slab that then filled with
//! per-connection objects, and once those are gone it alone keeps the whole slab (up to 28 KiB) resident.
//! Reallocated after the burst, it lands in an older, fuller slab. What jemalloc keeps whatever we do is
//! its extent records (128 bytes per slab or large block the burst had at once, never returned): the
//! read buffers start small (`crate::buf`) and the smallest size classes use four-page slabs
//! (`.cargo/config.toml`) so a burst needs fewer of them.

use tikv_jemalloc_ctl::{Access, AsName};

/// How closely a long-lived table is fitted to what it holds when it is tidied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// The periodic tidy: only a table far larger than its contents is shrunk (reallocation stays rare).
    Loose,
    /// A burst has just ended: every table is reallocated at its size now. One that grew mid-burst sits in
    /// a slab the burst's connections filled, which it alone would keep resident once they are gone.
    Exact,
}

impl Fit {
    /// Whether a table with room for `capacity` entries, `len` of them used, is to be shrunk.
    pub fn shrinks(self, capacity: usize, len: usize) -> bool {
        match self {
            Fit::Loose => capacity > 4 * len + 64,
            Fit::Exact => true,
        }
    }
}

/// A thread calls `release_thread_cache` once its connections fell to half of this many or more since its
/// last release: smaller bursts leave too little in the cache to matter.
pub const RELEASE_AFTER_CONNS: usize = 256;

/// Empty the calling thread's allocator cache into its arena. The slabs that empties are purged by jemalloc's
/// background thread within its decay time (1 s, `.cargo/config.toml`). Forcing that purge at once as well
/// (rewriting `arena.<i>.dirty_decay_ms`) was tried and left the RSS after idle WebSocket bursts erratic,
/// at times above what no release at all kept. Callers run this only when a burst has ended, at most once a
/// period. Errors are ignored (in unit tests jemalloc is not the global allocator): this only gives memory
/// back sooner.
pub fn release_thread_cache() {
    let tcache = b"thread.tcache.enabled\0".name();
    // Disabling the cache flushes it; enabling it again starts an empty one.
    if matches!(Access::<bool>::read(tcache), Ok(true)) && tcache.write(false).is_ok() {
        let _ = tcache.write(true);
    }
}

/// Tracks a thread's connection count, asked once a period, and says when a burst has ended: the count fell
/// to half its high-water mark since the last release, that mark being at least `RELEASE_AFTER_CONNS`; and
/// after that, at each period the count is still falling, so what the burst's last connections freed (into
/// the cache, or the thread's pools) goes back too.
#[derive(Debug, Default)]
pub struct BurstEnd {
    /// Most connections since the last release.
    high: usize,
    /// The count at the previous `ended`.
    last: usize,
    /// The previous `ended` said to release.
    releasing: bool,
}

impl BurstEnd {
    /// Note the current count (as connections are added).
    pub fn note(&mut self, conns: usize) {
        self.high = self.high.max(conns);
    }

    /// Note the current count; whether the thread should give its memory back now (asked once a period).
    pub fn ended(&mut self, conns: usize) -> bool {
        self.note(conns);
        let falling = conns < self.last;
        self.last = conns;
        let release = (self.high >= RELEASE_AFTER_CONNS && conns * 2 <= self.high)
            || (self.releasing && falling);
        if release {
            self.high = conns;
        }
        self.releasing = release;
        release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_ends_when_half_its_connections_are_gone_and_releases_while_they_keep_going() {
        let mut b = BurstEnd::default();
        assert!(!b.ended(RELEASE_AFTER_CONNS - 1));
        assert!(!b.ended(0), "too small a burst to matter");
        b.note(1000);
        b.note(10);
        assert!(!b.ended(501));
        assert!(b.ended(500));
        assert!(b.ended(400), "still falling");
        assert!(b.ended(10), "still falling");
        assert!(!b.ended(10), "no longer falling");
        assert!(!b.ended(0), "a fall after a pause, of a small count");
        // Steady load that never halves: no release.
        for n in [300, 600, 400, 350, 600] {
            assert!(!b.ended(n));
        }
        assert!(b.ended(300));
        assert!(!b.ended(320));
    }

    #[test]
    fn a_loose_fit_shrinks_only_far_oversized_tables_an_exact_fit_every_table() {
        assert!(!Fit::Loose.shrinks(64, 0));
        assert!(Fit::Loose.shrinks(65, 0));
        assert!(!Fit::Loose.shrinks(464, 100));
        assert!(Fit::Loose.shrinks(465, 100));
        assert!(Fit::Exact.shrinks(3, 1));
        assert!(Fit::Exact.shrinks(0, 0));
    }

    #[test]
    fn releasing_is_harmless_whatever_the_allocator() {
        release_thread_cache();
        let v: Vec<u8> = vec![1; 1000];
        release_thread_cache();
        assert_eq!(v.len(), 1000);
    }
}
