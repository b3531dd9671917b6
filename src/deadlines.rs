//! Keys that fall due a fixed delay after they were armed: subscription lingers, and the periodic refresh
//! of stats announcements. Because every key waits the same delay, arming order is due order, so a FIFO queue
//! replaces a timer heap; re-arming or cancelling a key leaves its old queue entry behind, which is recognised
//! as stale (its time is no longer the key's) and skipped when it reaches the front.

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
        self.due.remove(key).is_some()
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
        if self.queue.capacity() > 4 * self.queue.len() + 64 {
            self.queue.shrink_to_fit();
        }
        None
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
}
