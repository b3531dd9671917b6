//! Keys that fall due a fixed delay after they were armed: subscription lingers, and the periodic refresh
//! of stats announcements. Because every key waits the same delay, arming order is due order, so a FIFO queue
//! replaces a timer heap; re-arming or cancelling a key leaves its old queue entry behind, which is recognised
//! as stale (its time is no longer the key's) and skipped when it reaches the front.

use crate::memory::Fit;
use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

pub struct FixedDelay<K> {
    delay: Duration,
    due: HashMap<K, Instant>,
    queue: VecDeque<(Instant, K)>,
}

impl<K: Eq + Hash + Clone> FixedDelay<K> {
    pub fn new(delay: Duration) -> FixedDelay<K> {
        FixedDelay {
            delay,
            due: HashMap::new(),
            queue: VecDeque::new(),
        }
    }

    /// Arm `key` (again): due `delay` after `now`.
    pub fn start(&mut self, key: K, now: Instant) {
        let at = now + self.delay;
        self.due.insert(key.clone(), at);
        self.queue.push_back((at, key));
    }

    /// Disarm `key`; whether it was armed.
    pub fn cancel<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        let armed = self.due.remove(key).is_some();
        if armed {
            self.tidy(Fit::Loose);
        }
        armed
    }

    pub fn contains<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.due.contains_key(key)
    }

    /// The next key due at `now`, disarmed.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        while let Some((at, _)) = self.queue.front() {
            if *at > now {
                break;
            }
            let (at, key) = self.queue.pop_front()?;
            if self.due.get(&key) == Some(&at) {
                self.due.remove(&key);
                return Some(key);
            }
        }
        self.tidy(Fit::Loose);
        None
    }

    /// Give memory back once most keys are gone (after a burst of connections closed, say): the queue's
    /// stale entries are dropped once they outnumber the armed keys, rather than kept until their time
    /// comes (a whole refresh period), and tables mostly empty are shrunk. Each check is O(1); the O(n)
    /// compaction runs only after n stale entries accumulated. With `Fit::Exact` (a burst has ended) every
    /// stale entry goes and both tables are reallocated at their size (see `crate::memory`).
    pub fn tidy(&mut self, fit: Fit) {
        if self.due.is_empty() {
            self.queue.clear();
        } else if fit == Fit::Exact || self.queue.len() > 2 * self.due.len() + 64 {
            let due = &self.due;
            self.queue.retain(|(at, key)| due.get(key) == Some(at));
        }
        if fit.shrinks(self.queue.capacity(), self.queue.len()) {
            self.queue.shrink_to_fit();
        }
        if fit.shrinks(self.due.capacity(), self.due.len()) {
            self.due.shrink_to_fit();
        }
    }

    /// When `pop_due` may next have a key (possibly a stale entry's time: early, never late).
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(10);

    #[test]
    fn keys_fall_due_in_arming_order_after_the_delay() {
        let t0 = Instant::now();
        let mut f = FixedDelay::new(D);
        f.start("a", t0);
        f.start("b", t0 + Duration::from_secs(1));
        assert_eq!(f.next_due(), Some(t0 + D));
        assert_eq!(f.pop_due(t0 + D - Duration::from_millis(1)), None);
        assert_eq!(f.pop_due(t0 + D), Some("a"));
        assert_eq!(f.pop_due(t0 + D), None);
        assert!(f.contains(&"b"));
        assert_eq!(f.pop_due(t0 + Duration::from_secs(11)), Some("b"));
        assert!(!f.contains(&"b"));
    }

    #[test]
    fn rearmed_and_cancelled_keys_leave_only_stale_entries_behind() {
        let t0 = Instant::now();
        let mut f = FixedDelay::new(D);
        f.start("a", t0);
        f.start("b", t0);
        f.start("a", t0 + Duration::from_secs(5));
        assert!(f.cancel(&"b"));
        assert!(!f.cancel(&"b"));
        assert_eq!(
            f.pop_due(t0 + D),
            None,
            "a's first entry is stale, b was cancelled"
        );
        assert_eq!(f.pop_due(t0 + Duration::from_secs(15)), Some("a"));
        // Armed twice at the same instant: due once.
        f.start("c", t0);
        f.start("c", t0);
        assert_eq!(f.pop_due(t0 + D), Some("c"));
        assert_eq!(f.pop_due(t0 + D), None);
    }

    #[test]
    fn cancelled_keys_give_their_queue_entries_and_table_memory_back() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut f = FixedDelay::new(D);
        for i in 0..1000u64 {
            f.start(i, t0 + ms(i));
        }
        // Cancel all but every tenth key: stale entries are compacted away as they pile up.
        for i in (0..1000).filter(|i| i % 10 != 0) {
            assert!(f.cancel(&i));
        }
        assert_eq!(f.due.len(), 100);
        assert!(f.queue.len() <= 2 * 100 + 64, "{} queued", f.queue.len());
        // The keys left still fall due in order.
        for i in (0..1000).step_by(10) {
            assert_eq!(f.pop_due(t0 + D + ms(999)), Some(i));
        }
        assert_eq!(f.pop_due(t0 + D + ms(999)), None);
        // Once every key is gone, so are the queue and the spare capacity.
        for i in 0..1000u64 {
            f.start(i, t0);
        }
        for i in 0..1000u64 {
            assert!(f.cancel(&i));
        }
        assert!(f.queue.is_empty());
        assert!(f.queue.capacity() <= 64 && f.due.capacity() <= 64);
        f.start(7, t0);
        assert_eq!(f.pop_due(t0 + D), Some(7));
    }
}
