//! A hierarchical timer wheel with a fixed capacity, owned by one reactor thread.
//!
//! Time is counted in ticks of `TICK_MS` since the `Instant` given to `new`. A deadline is rounded up to a
//! tick, and a timer fires at the first `update` whose `now`, rounded down to a tick, has reached it: never
//! early, and at most one tick late (plus however late the reactor gets round to calling `update`).
//!
//! Layout: `LEVELS` levels of `SLOTS` lists each, plus an overflow list and the expired list. A timer due
//! at tick `e`, seen from the current tick `cur`, sits at the level of the most significant base-64 digit
//! in which `e` and `cur` differ, in the slot named by `e`'s digit at that level. Everything below leans on
//! three consequences of that rule:
//!
//! * A timer at level `l`, slot `s` shares every digit above `l` with `cur`, and `s` is greater than
//!   `cur`'s digit `l`. So no slot ever mixes two rotations, slot 0 is never used, and no wrap-around
//!   arithmetic is needed anywhere.
//! * `cur` "enters" that slot at the tick where its digits from `l` up become `e`'s, which is at or before
//!   `e`. The slot's timers are then placed again relative to that tick, which puts each one on a lower
//!   level or on the expired list. A timer therefore moves at most once per level.
//! * Every occupied slot of a lower level is entered before any slot of a higher level. The next thing
//!   that can happen is thus the first occupied slot of the lowest occupied level, found with two bit
//!   operations; `update` jumps from event to event, never tick by tick.
//!
//! Timers whose digits differ from `cur` above the top level wait in the overflow list. They are placed
//! again when `cur` crosses the next multiple of 64^4 ticks (about 1.9 days); when the wheel is otherwise
//! empty, `update` jumps straight to the last such boundary before its target, so a jump of years costs
//! one pass over the overflow list rather than one per boundary.
//!
//! Keys carry the generation of their slab slot, so a key kept after its timer fired or was removed can
//! never cancel a newer timer that reused the slot.
//!
//! Capacity policy: `add` refuses (returns `None`) once `capacity` timers exist, expired-but-not-taken ones
//! included. Nothing allocates after `new`.

use slab::Slab;
use std::fmt;
use std::time::{Duration, Instant};

/// Tick length: 10 ms. Levels: 4 × 64 slots (covers 64^4 ticks ≈ 1.9 days); timers further out wait in an
/// overflow list that is re-cascaded each time the top level completes a rotation (so any `Instant` works,
/// including the far future and the past).
pub const TICK_MS: u64 = 10;

/// Largest capacity `TimerWheel::new` accepts; larger requests are clamped. Keeps keys and links in `u32`
/// and the up-front allocation sane (about 40 bytes per timer).
pub const TIMERS_MAX: usize = 1 << 24;

const TICK_NS: u128 = TICK_MS as u128 * 1_000_000;
const LEVEL_BITS: u32 = 6;
const SLOTS: usize = 1 << LEVEL_BITS;
const LEVELS: usize = 4;
const DIGIT_MASK: u64 = SLOTS as u64 - 1;
/// Ticks in one rotation of the top level.
const SPAN_BITS: u32 = LEVEL_BITS * LEVELS as u32;
const SPAN_MASK: u64 = (1 << SPAN_BITS) - 1;

// List ids: `level * SLOTS + slot` for the wheel, then these two.
const OVERFLOW: usize = LEVELS * SLOTS;
const EXPIRED: usize = OVERFLOW + 1;
const LISTS: usize = EXPIRED + 1;

/// End of a list. Never a valid index because capacity is at most `TIMERS_MAX`.
const NIL: u32 = u32::MAX;

/// Names one armed timer. Opaque: the slab index plus that slot's generation when the timer was armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

struct Entry {
    tick: u64,
    user: u64,
    prev: u32,
    next: u32,
    /// Which list the entry is on. Stale only while `cascade` holds the entry in a detached chain.
    list: u16,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

pub struct TimerWheel {
    entries: Slab<Entry>,
    /// Per slab slot, bumped each time the slot is freed. Sized to `capacity` up front.
    generations: Vec<u32>,
    lists: [List; LISTS],
    /// Bit `s` of `occupied[l]` is set iff list `l * SLOTS + s` is non-empty.
    occupied: [u64; LEVELS],
    capacity: usize,
    origin: Instant,
    last_now: Instant,
    /// `last_now` in whole ticks since `origin`.
    cur: u64,
    /// Entries visited by cascades, so tests can bound the work of an update.
    #[cfg(test)]
    moves: u64,
}

impl fmt::Debug for TimerWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("tick", &self.cur)
            .finish()
    }
}

impl TimerWheel {
    /// A wheel that holds at most `capacity` timers (clamped to `TIMERS_MAX`), with `now` as tick 0.
    pub fn new(capacity: usize, now: Instant) -> TimerWheel {
        let capacity = capacity.min(TIMERS_MAX);
        TimerWheel {
            // Both grow as timers are armed (never past `capacity`) and are dropped by `shrink_if_empty`.
            entries: Slab::new(),
            generations: Vec::new(),
            lists: [List::EMPTY; LISTS],
            occupied: [0; LEVELS],
            capacity,
            origin: now,
            last_now: now,
            cur: 0,
            #[cfg(test)]
            moves: 0,
        }
    }

    /// Arm a timer that fires at `deadline` (rounded up to the next tick) carrying `user` (the reactor
    /// stores a connection key/generation there). None when `capacity` timers already exist (never grows).
    /// A deadline at or before the last `update` is expired at once.
    pub fn add(&mut self, deadline: Instant, user: u64) -> Option<TimerKey> {
        if self.entries.len() >= self.capacity {
            return None;
        }
        let tick = self.deadline_tick(deadline);
        let vacant = self.entries.vacant_entry();
        let slot = vacant.key();
        // Slab never hands out an index past the most entries it has held, which is at most `capacity`.
        if slot >= self.generations.len() {
            self.generations.resize(slot + 1, 0);
        }
        let generation = *self.generations.get(slot)?;
        let index = u32::try_from(slot).ok()?;
        vacant.insert(Entry {
            tick,
            user,
            prev: NIL,
            next: NIL,
            list: 0,
        });
        self.place(index);
        Some(TimerKey { index, generation })
    }

    /// Cancel; false if the key is not (or no longer) armed. O(1). A timer that has expired but has not
    /// been taken yet is still armed and is cancelled. A stale key never touches a newer timer.
    pub fn remove(&mut self, key: TimerKey) -> bool {
        let slot = key.index as usize;
        if !self.entries.contains(slot) || self.generations.get(slot) != Some(&key.generation) {
            return false;
        }
        self.unlink(key.index);
        self.release(key.index);
        true
    }

    /// Advance the wheel's notion of time to `now` (monotonic; an earlier `now` is ignored). Expired timers
    /// become available through `take_expired`. Cost is proportional to the occupied slots passed plus the
    /// timers cascaded; time with no timers costs nothing, however long.
    pub fn update(&mut self, now: Instant) {
        if now <= self.last_now {
            return;
        }
        self.last_now = now;
        let target = self.now_tick(now);
        while let Some((list, at)) = self.next_event() {
            if at > target {
                break;
            }
            if list == OVERFLOW {
                // Overflow is only next when every level is empty, so placing its timers relative to any
                // later tick keeps the layout rules. Pick the last top-level boundary not after `target`:
                // one pass, however many boundaries the jump crosses.
                self.cur = target & !SPAN_MASK;
                self.cascade(OVERFLOW, true);
            } else {
                self.cur = at;
                self.cascade(list, false);
            }
        }
        self.cur = target;
    }

    /// Pop one expired timer (deadline <= the time given to `update`) → (key, user). Timers come out in the
    /// order they fell due: by deadline tick, ties in no promised order. A timer added with its deadline
    /// already past falls due when added, so it comes after everything that expired before it.
    pub fn take_expired(&mut self) -> Option<(TimerKey, u64)> {
        let index = self.lists[EXPIRED].head;
        if index == NIL {
            return None;
        }
        self.unlink(index);
        let generation = self.generations.get(index as usize).copied().unwrap_or(0);
        let user = self.release(index);
        Some((TimerKey { index, generation }, user))
    }

    /// Time from the last `update` until the earliest armed timer (`Duration::ZERO` if one is already
    /// expired), None if none armed. May be an underestimate (the next slot boundary in a higher level, or
    /// the next top-level rotation for far timers), never an overestimate, and never zero unless a timer is
    /// waiting in `take_expired`.
    pub fn timeout(&self) -> Option<Duration> {
        if self.lists[EXPIRED].head != NIL {
            return Some(Duration::ZERO);
        }
        let (_, at) = self.next_event()?;
        let ticks = at.saturating_sub(self.cur);
        let wait = Duration::from_millis(ticks.saturating_mul(TICK_MS));
        // `last_now` is partway through tick `cur`; the wait counts from the start of that tick.
        let since_origin = self.last_now.saturating_duration_since(self.origin);
        let into_tick = (since_origin.as_nanos() % TICK_NS) as u64;
        Some(wait.saturating_sub(Duration::from_nanos(into_tick)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// With no timer armed, drop the tables a burst has grown, so their memory is given back. Keys handed out
    /// earlier name no armed timer any more, and the worker drops a key as soon as its timer fires or is
    /// removed, so restarting the generations can't make an old key match a new timer.
    pub fn shrink_if_empty(&mut self) {
        if !self.entries.is_empty()
            || (self.entries.capacity() == 0 && self.generations.capacity() == 0)
        {
            return;
        }
        self.entries = Slab::new();
        self.generations = Vec::new();
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn deadline_tick(&self, deadline: Instant) -> u64 {
        match deadline.checked_duration_since(self.origin) {
            Some(d) => u64::try_from(d.as_nanos().div_ceil(TICK_NS)).unwrap_or(u64::MAX),
            None => 0,
        }
    }

    fn now_tick(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.origin);
        u64::try_from(d.as_nanos() / TICK_NS).unwrap_or(u64::MAX)
    }

    /// The next list to cascade and the tick at which `cur` enters it.
    fn next_event(&self) -> Option<(usize, u64)> {
        for (level, &bits) in self.occupied.iter().enumerate() {
            if bits != 0 {
                let slot = u64::from(bits.trailing_zeros());
                let shift = level as u32 * LEVEL_BITS;
                let above = shift + LEVEL_BITS;
                debug_assert!(
                    slot > (self.cur >> shift) & DIGIT_MASK,
                    "slot behind the wheel"
                );
                let at = ((self.cur >> above) << above) | (slot << shift);
                return Some((level * SLOTS + slot as usize, at));
            }
        }
        if self.lists[OVERFLOW].head != NIL {
            let at = (self.cur | SPAN_MASK).saturating_add(1);
            return Some((OVERFLOW, at));
        }
        None
    }

    /// Put a linked-out entry on the list its tick calls for, relative to `cur`.
    fn place(&mut self, index: u32) {
        let tick = self.entries[index as usize].tick;
        let list = if tick <= self.cur {
            EXPIRED
        } else {
            // tick != cur, so the xor has a set bit and leading_zeros is at most 63.
            let top_bit = 63 - (tick ^ self.cur).leading_zeros();
            let level = (top_bit / LEVEL_BITS) as usize;
            if level >= LEVELS {
                OVERFLOW
            } else {
                let slot = ((tick >> (level as u32 * LEVEL_BITS)) & DIGIT_MASK) as usize;
                self.occupied[level] |= 1 << slot;
                level * SLOTS + slot
            }
        };
        push_back(&mut self.entries, &mut self.lists[list], list, index);
    }

    /// Empty list `list` and place each of its timers again relative to `cur`. The ones now due go to the
    /// expired list; `sort_due` sorts them first, needed only when they may span several ticks.
    fn cascade(&mut self, list: usize, sort_due: bool) {
        let mut index = std::mem::replace(&mut self.lists[list], List::EMPTY).head;
        if list < OVERFLOW {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
        let mut due = List::EMPTY;
        let mut due_len = 0usize;
        while index != NIL {
            #[cfg(test)]
            {
                self.moves += 1;
            }
            let entry = &self.entries[index as usize];
            let next = entry.next;
            if entry.tick <= self.cur {
                push_back(&mut self.entries, &mut due, EXPIRED, index);
                due_len += 1;
            } else {
                self.place(index);
            }
            index = next;
        }
        if sort_due && due_len > 1 {
            let head = self.sort_chain(due.head, due_len);
            due = self.relink_prev(head);
        }
        self.append_expired(due);
    }

    fn append_expired(&mut self, chain: List) {
        if chain.head == NIL {
            return;
        }
        let expired = &mut self.lists[EXPIRED];
        if expired.tail == NIL {
            expired.head = chain.head;
        } else {
            self.entries[expired.tail as usize].next = chain.head;
            self.entries[chain.head as usize].prev = expired.tail;
        }
        expired.tail = chain.tail;
    }

    /// Stable merge sort by tick of the `len`-long chain at `head`, following `next` only (`prev` is left
    /// stale for `relink_prev`). Recursion depth is log2(len), at most 24.
    fn sort_chain(&mut self, head: u32, len: usize) -> u32 {
        if len < 2 {
            return head;
        }
        let left_len = len / 2;
        let mut left_last = head;
        for _ in 1..left_len {
            left_last = self.entries[left_last as usize].next;
        }
        let right = std::mem::replace(&mut self.entries[left_last as usize].next, NIL);
        let left = self.sort_chain(head, left_len);
        let right = self.sort_chain(right, len - left_len);
        self.merge_chains(left, right)
    }

    fn merge_chains(&mut self, mut left: u32, mut right: u32) -> u32 {
        let mut head = NIL;
        let mut tail = NIL;
        while left != NIL && right != NIL {
            // Ties go left, which keeps the sort stable.
            let take = if self.entries[right as usize].tick < self.entries[left as usize].tick {
                let take = right;
                right = self.entries[take as usize].next;
                take
            } else {
                let take = left;
                left = self.entries[take as usize].next;
                take
            };
            if tail == NIL {
                head = take;
            } else {
                self.entries[tail as usize].next = take;
            }
            tail = take;
        }
        let rest = if left != NIL { left } else { right };
        if tail == NIL {
            head = rest;
        } else {
            self.entries[tail as usize].next = rest;
        }
        head
    }

    fn relink_prev(&mut self, head: u32) -> List {
        let mut prev = NIL;
        let mut index = head;
        while index != NIL {
            let entry = &mut self.entries[index as usize];
            entry.prev = prev;
            prev = index;
            index = entry.next;
        }
        List { head, tail: prev }
    }

    fn unlink(&mut self, index: u32) {
        let entry = &self.entries[index as usize];
        let (prev, next, list) = (entry.prev, entry.next, usize::from(entry.list));
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if list < OVERFLOW && self.lists[list].head == NIL {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
    }

    /// Free a linked-out entry's slab slot, retiring every key that names it. Returns its user value.
    fn release(&mut self, index: u32) -> u64 {
        if let Some(generation) = self.generations.get_mut(index as usize) {
            *generation = generation.wrapping_add(1);
        }
        self.entries.remove(index as usize).user
    }
}

fn push_back(entries: &mut Slab<Entry>, list: &mut List, list_id: usize, index: u32) {
    let entry = &mut entries[index as usize];
    entry.prev = list.tail;
    entry.next = NIL;
    // list_id < LISTS, which fits u16.
    entry.list = list_id as u16;
    if list.tail == NIL {
        list.head = index;
    } else {
        entries[list.tail as usize].next = index;
    }
    list.tail = index;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test clocks count milliseconds from the wheel's origin and may go this far below it.
    const BEFORE_ORIGIN_MS: u64 = 3_600_000;
    const DAY_MS: i64 = 86_400_000;

    struct Clock {
        base: Instant,
    }

    impl Clock {
        fn new() -> Clock {
            Clock {
                base: Instant::now(),
            }
        }

        fn at(&self, ms: i64) -> Instant {
            let from_base = BEFORE_ORIGIN_MS
                .checked_add_signed(ms)
                .expect("test time before the clock base");
            self.base + Duration::from_millis(from_base)
        }

        fn wheel(&self, capacity: usize) -> TimerWheel {
            TimerWheel::new(capacity, self.at(0))
        }
    }

    fn drain(w: &mut TimerWheel) -> Vec<u64> {
        std::iter::from_fn(|| w.take_expired().map(|(_, user)| user)).collect()
    }

    /// What the wheel's layout rules promise about where each timer sits; checked after every step of the
    /// randomized test.
    fn check_layout(w: &TimerWheel) {
        let mut seen = 0;
        for list in 0..LISTS {
            let mut prev = NIL;
            let mut index = w.lists[list].head;
            while index != NIL {
                let e = &w.entries[index as usize];
                assert_eq!(usize::from(e.list), list);
                assert_eq!(e.prev, prev);
                if list == EXPIRED {
                    assert!(e.tick <= w.cur);
                } else if list == OVERFLOW {
                    assert!(e.tick >> SPAN_BITS > w.cur >> SPAN_BITS);
                } else {
                    let (level, slot) = (list / SLOTS, list % SLOTS);
                    let shift = level as u32 * LEVEL_BITS;
                    assert_eq!(
                        e.tick >> (shift + LEVEL_BITS),
                        w.cur >> (shift + LEVEL_BITS)
                    );
                    assert_eq!((e.tick >> shift) & DIGIT_MASK, slot as u64);
                    assert!(slot as u64 > (w.cur >> shift) & DIGIT_MASK);
                }
                prev = index;
                index = e.next;
                seen += 1;
            }
            assert_eq!(w.lists[list].tail, prev);
            if list < OVERFLOW {
                let bit = (w.occupied[list / SLOTS] >> (list % SLOTS)) & 1;
                assert_eq!(bit == 1, prev != NIL, "occupancy bit of list {list}");
            }
        }
        assert_eq!(seen, w.len());
    }

    enum Op {
        /// Arm a timer at this many ms from the origin, with this user value.
        Add(i64, u64),
        /// Remove the timer armed with this user value; expect this result.
        Remove(u64, bool),
        /// Update to this many ms from the origin; expect these user values out, in this order.
        Update(i64, &'static [u64]),
    }
    use Op::*;

    #[test]
    fn table() {
        let table: &[(&str, &[Op])] = &[
            ("nothing armed", &[Update(1_000, &[])]),
            (
                "rounded up to a tick, never early",
                &[
                    Add(15, 1),
                    Add(20, 2),
                    Add(21, 3),
                    Update(19, &[]),
                    Update(20, &[1, 2]),
                    Update(29, &[]),
                    Update(30, &[3]),
                ],
            ),
            (
                "deadline order across levels",
                &[
                    Add(3_600_000, 4),
                    Add(5_000, 3),
                    Add(700, 2),
                    Add(30, 1),
                    Update(10, &[]),
                    Update(4_000_000, &[1, 2, 3, 4]),
                ],
            ),
            (
                "each at its own update",
                &[
                    Add(650, 2),
                    Add(40, 1),
                    Add(5_000, 3),
                    Update(39, &[]),
                    Update(40, &[1]),
                    Update(640, &[]),
                    Update(649, &[]),
                    Update(650, &[2]),
                    Update(4_990, &[]),
                    Update(5_000, &[3]),
                ],
            ),
            (
                "same tick, insertion order",
                &[Add(55, 1), Add(60, 2), Add(51, 3), Update(60, &[1, 2, 3])],
            ),
            (
                "remove before expiry",
                &[
                    Add(30, 1),
                    Add(30, 2),
                    Add(90_000, 3),
                    Remove(1, true),
                    Remove(3, true),
                    Remove(3, false),
                    Update(100_000, &[2]),
                ],
            ),
            (
                "remove an expired timer not yet taken",
                &[
                    Add(30, 1),
                    Update(10, &[]),
                    Add(5, 2),
                    Remove(2, true),
                    Update(30, &[1]),
                ],
            ),
            (
                "past deadline fires on next update",
                &[
                    Update(500, &[]),
                    Add(-2_000, 1),
                    Add(100, 2),
                    Add(500, 3),
                    Update(501, &[1, 2, 3]),
                ],
            ),
            (
                "earlier now is ignored",
                &[
                    Add(120, 1),
                    Update(100, &[]),
                    Update(50, &[]),
                    Update(119, &[]),
                    Update(120, &[1]),
                ],
            ),
            (
                "beyond the top level, sorted after a long jump",
                &[
                    Add(3 * DAY_MS, 5),
                    Add(2 * DAY_MS, 4),
                    Add(39 * DAY_MS / 10, 6),
                    Add(3_600_000, 2),
                    Add(50, 1),
                    Add(2 * DAY_MS - 20, 3),
                    Add(5 * DAY_MS, 7),
                    Update(4 * DAY_MS, &[1, 2, 3, 4, 5, 6]),
                    Update(5 * DAY_MS - 10, &[]),
                    Update(5 * DAY_MS, &[7]),
                ],
            ),
            (
                "one day, walked in hours",
                &[
                    Add(DAY_MS, 1),
                    Add(DAY_MS + 10, 2),
                    Update(DAY_MS / 4, &[]),
                    Update(DAY_MS / 2, &[]),
                    Update(DAY_MS - 1, &[]),
                    Update(DAY_MS + 9, &[1]),
                    Update(DAY_MS + 10, &[2]),
                ],
            ),
        ];
        for (name, ops) in table {
            let clock = Clock::new();
            let mut w = clock.wheel(16);
            let mut keys = Vec::new();
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    Add(ms, user) => {
                        let key = w.add(clock.at(ms), user).expect("capacity");
                        keys.push((user, key));
                    }
                    Remove(user, expected) => {
                        let key = keys
                            .iter()
                            .find(|(u, _)| *u == user)
                            .expect("no such user")
                            .1;
                        assert_eq!(w.remove(key), expected, "{name}: step {step}");
                    }
                    Update(ms, expected) => {
                        w.update(clock.at(ms));
                        assert_eq!(drain(&mut w), expected, "{name}: step {step}");
                    }
                }
                check_layout(&w);
            }
        }
    }

    #[test]
    fn capacity_is_fixed() {
        let clock = Clock::new();
        let mut w = clock.wheel(3);
        assert_eq!(w.capacity(), 3);
        assert!(w.is_empty());
        let keys: Vec<_> = (0..3).map(|i| w.add(clock.at(10 * i), i as u64)).collect();
        assert!(keys.iter().all(Option::is_some));
        assert_eq!(w.add(clock.at(50), 9), None);
        assert_eq!(w.len(), 3);
        // A timer expired but not taken still holds its place.
        w.update(clock.at(10));
        assert_eq!(w.add(clock.at(50), 9), None);
        assert!(w.take_expired().is_some());
        assert!(w.add(clock.at(50), 9).is_some());
        assert_eq!(w.add(clock.at(50), 10), None);
        assert_eq!(w.len(), 3);

        let mut none = clock.wheel(0);
        assert_eq!(none.add(clock.at(10), 1), None);
    }

    #[test]
    fn stale_key_cannot_touch_newer_timer() {
        let clock = Clock::new();
        let mut w = clock.wheel(4);
        let old = w.add(clock.at(20), 1).unwrap();
        w.update(clock.at(20));
        let (taken, user) = w.take_expired().unwrap();
        assert_eq!((taken, user), (old, 1));

        // Same slab slot, same wheel slot.
        let new = w.add(clock.at(40), 2).unwrap();
        assert_eq!(new.index, old.index);
        assert_ne!(new, old);
        assert!(!w.remove(old));
        assert_eq!(w.len(), 1);
        w.update(clock.at(40));
        assert_eq!(drain(&mut w), [2]);

        // And after a removal rather than an expiry.
        let a = w.add(clock.at(60), 3).unwrap();
        assert!(w.remove(a));
        let b = w.add(clock.at(60), 4).unwrap();
        assert_eq!(a.index, b.index);
        assert!(!w.remove(a));
        assert!(w.remove(b));
        assert!(!w.remove(b));
        assert!(w.is_empty());
    }

    #[test]
    fn far_future_is_clamped_and_recascaded() {
        let clock = Clock::new();
        let mut w = clock.wheel(4);
        let year = w.add(clock.at(365 * DAY_MS), 1).unwrap();
        let distant = w
            .add(clock.base + Duration::from_secs(100 * 365 * 86_400), 2)
            .unwrap();
        assert_eq!(w.lists[OVERFLOW].head, year.index);
        assert_eq!(w.lists[OVERFLOW].tail, distant.index);
        // Only the rotation boundary is promised, and it comes first.
        let rotation_ms = (1u64 << SPAN_BITS) * TICK_MS;
        assert_eq!(w.timeout(), Some(Duration::from_millis(rotation_ms)));

        for day in 1..365 {
            w.update(clock.at(day * DAY_MS));
            assert_eq!(w.take_expired(), None, "day {day}");
            check_layout(&w);
        }
        w.update(clock.at(365 * DAY_MS - 10));
        assert_eq!(w.take_expired(), None);
        w.update(clock.at(365 * DAY_MS));
        assert_eq!(w.take_expired(), Some((year, 1)));
        assert!(w.remove(distant));
    }

    #[test]
    fn timeout_values() {
        let ms = Duration::from_millis;
        // (armed at ms, last update at ms, expected timeout)
        let table: &[(&[i64], i64, Option<Duration>)] = &[
            (&[], 0, None),
            (&[], 5_000, None),
            (&[30], 0, Some(ms(30))),
            (&[25], 0, Some(ms(30))),
            (&[25], 7, Some(ms(23))),
            (&[25, 400], 7, Some(ms(23))),
            (&[-5], 0, Some(Duration::ZERO)),
            (&[0], 0, Some(Duration::ZERO)),
            (&[300], 295, Some(ms(5))),
            // Tick 100 sits at level 1, slot 1: the wheel promises only the slot boundary, tick 64.
            (&[1_000], 0, Some(ms(640))),
            (&[1_000], 645, Some(ms(355))),
            (&[1_000, 70], 0, Some(ms(70))),
            // Tick 4096 * 5 at level 2: the boundary of its slot is the timer itself.
            (&[204_800], 0, Some(ms(204_800))),
            (&[204_810], 0, Some(ms(204_800))),
        ];
        for (row, &(armed, now, expected)) in table.iter().enumerate() {
            let clock = Clock::new();
            let mut w = clock.wheel(4);
            w.update(clock.at(now));
            for &at in armed {
                w.add(clock.at(at), 0).unwrap();
            }
            assert_eq!(w.timeout(), expected, "row {row}");
        }
    }

    /// xorshift64*: deterministic, and good enough to shuffle operations.
    use crate::test_rng::XorShift64Star as Rng;

    /// Deadlines are signed offsets from the origin.
    trait SignedBelow {
        fn signed_below(&mut self, n: u64) -> i64;
    }

    impl SignedBelow for Rng {
        fn signed_below(&mut self, n: u64) -> i64 {
            self.below(n) as i64
        }
    }

    /// The obvious implementation: a list of (deadline in ms from the origin, user), scanned on every update.
    struct Naive {
        timers: Vec<(i64, u64)>,
        capacity: usize,
        now_ms: i64,
    }

    impl Naive {
        /// First whole tick at or after the deadline; everything before the origin is tick 0.
        fn tick(deadline_ms: i64) -> i64 {
            let ms = deadline_ms.max(0);
            (ms + TICK_MS as i64 - 1) / TICK_MS as i64
        }

        fn add(&mut self, deadline_ms: i64, user: u64) -> bool {
            if self.timers.len() == self.capacity {
                return false;
            }
            self.timers.push((deadline_ms, user));
            true
        }

        fn remove(&mut self, user: u64) -> bool {
            let before = self.timers.len();
            self.timers.retain(|&(_, u)| u != user);
            self.timers.len() != before
        }

        fn update(&mut self, now_ms: i64) -> Vec<u64> {
            self.now_ms = self.now_ms.max(now_ms);
            let now_tick = self.now_ms / TICK_MS as i64;
            let mut due: Vec<u64> = self
                .timers
                .iter()
                .filter(|&&(d, _)| Self::tick(d) <= now_tick)
                .map(|&(_, u)| u)
                .collect();
            self.timers.retain(|&(d, _)| Self::tick(d) > now_tick);
            due.sort_unstable();
            due
        }

        /// Exact time from `now_ms` until the earliest timer fires.
        fn until_first(&self) -> Option<Duration> {
            let first = self.timers.iter().map(|&(d, _)| Self::tick(d)).min()?;
            let wait = (first * TICK_MS as i64 - self.now_ms).max(0);
            Some(Duration::from_millis(wait as u64))
        }
    }

    fn differential(seed: u64, capacity: usize, steps: usize) {
        let clock = Clock::new();
        let mut w = clock.wheel(capacity);
        let mut naive = Naive {
            timers: Vec::new(),
            capacity,
            now_ms: 0,
        };
        let mut rng = Rng(seed);
        // Recent keys, stale ones included, with their user values.
        let mut keys: Vec<(TimerKey, u64)> = Vec::new();
        // Per user value: the tick at which its timer fell due, or would have.
        let mut due_tick: Vec<i64> = Vec::new();
        for step in 0..steps {
            let now = naive.now_ms;
            match rng.below(100) {
                0..=44 => {
                    let deadline = match rng.below(20) {
                        0..=7 => now + rng.signed_below(100),
                        8..=12 => now + rng.signed_below(10_000),
                        13..=15 => now + rng.signed_below(3 * 3_600_000),
                        16..=17 => now + rng.signed_below(5 * DAY_MS as u64),
                        _ => now - rng.signed_below(1_000),
                    };
                    let user = due_tick.len() as u64;
                    due_tick.push(Naive::tick(deadline).max(now / TICK_MS as i64));
                    let key = w.add(clock.at(deadline), user);
                    assert_eq!(key.is_some(), naive.add(deadline, user), "step {step}: add");
                    if let Some(key) = key {
                        keys.push((key, user));
                    }
                }
                45..=69 if !keys.is_empty() => {
                    let i = rng.below(keys.len() as u64) as usize;
                    let (key, user) = keys[i];
                    assert_eq!(w.remove(key), naive.remove(user), "step {step}: remove");
                }
                _ => {
                    let later = match rng.below(40) {
                        0..=19 => now + rng.signed_below(15),
                        20..=29 => now + rng.signed_below(200),
                        30..=34 => now + rng.signed_below(60_000),
                        35..=36 => now + rng.signed_below(2 * 3_600_000),
                        37 => now + rng.signed_below(10 * DAY_MS as u64),
                        _ => now - rng.signed_below(100),
                    };
                    w.update(clock.at(later));
                    let out = drain(&mut w);
                    let ticks: Vec<i64> = out.iter().map(|&u| due_tick[u as usize]).collect();
                    assert!(
                        ticks.windows(2).all(|p| p[0] <= p[1]),
                        "step {step}: order {ticks:?}"
                    );
                    let mut out = out;
                    out.sort_unstable();
                    assert_eq!(out, naive.update(later), "step {step}: update to {later}");
                }
            }
            assert_eq!(w.len(), naive.timers.len(), "step {step}: len");
            let timeout = w.timeout();
            match (timeout, naive.until_first()) {
                (None, None) => {}
                (Some(got), Some(exact)) => {
                    assert!(got <= exact, "step {step}: timeout {got:?} past {exact:?}");
                    let pending = w.lists[EXPIRED].head != NIL;
                    assert_eq!(got.is_zero(), pending, "step {step}: zero timeout");
                }
                other => panic!("step {step}: timeout {other:?}"),
            }
            if step % 64 == 0 {
                check_layout(&w);
            }
            if keys.len() > 8 * capacity {
                keys.drain(..4 * capacity);
            }
        }
        check_layout(&w);
    }

    #[test]
    fn differential_against_naive() {
        for seed in 1..=8u64 {
            differential(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 48, 6_000);
        }
        differential(0xdead_beef, 1_000, 20_000);
    }

    #[test]
    fn long_jumps_do_bounded_work() {
        let clock = Clock::new();
        let timers = 20_000u64;
        let mut w = clock.wheel(timers as usize);
        let mut rng = Rng(7);
        for user in 0..timers {
            let deadline = match user % 4 {
                0 => rng.signed_below(60 * DAY_MS as u64),
                1 => rng.signed_below(3_600_000),
                2 => 365 * DAY_MS + rng.signed_below(100 * 365 * DAY_MS as u64),
                _ => rng.signed_below(1_000),
            };
            w.add(clock.at(deadline), user).unwrap();
        }
        // Each timer moves at most once per level plus once out of overflow, per update.
        let bound = 5 * timers;
        w.update(clock.at(30 * DAY_MS));
        let fired = drain(&mut w).len() as u64;
        assert!(w.moves <= bound, "{} moves for {timers} timers", w.moves);
        // All of the near ones and about half of the 60-day ones.
        assert!(
            (timers / 2..timers * 3 / 4).contains(&fired),
            "{fired} fired"
        );

        w.moves = 0;
        w.update(clock.at(300 * 365 * DAY_MS));
        assert!(w.moves <= bound, "{} moves", w.moves);
        assert_eq!(drain(&mut w).len() as u64, timers - fired);
        assert!(w.is_empty());
        assert_eq!(w.timeout(), None);

        // Nothing armed: a jump costs nothing.
        w.moves = 0;
        w.update(clock.at(1_000 * 365 * DAY_MS));
        assert_eq!(w.moves, 0);
    }

    #[test]
    #[ignore = "micro-benchmark; run with --ignored --nocapture"]
    fn bench_add_remove() {
        let clock = Clock::new();
        let n = 100_000u64;
        let mut w = clock.wheel(n as usize);
        let mut rng = Rng(42);
        let deadlines: Vec<Instant> = (0..n)
            .map(|_| clock.at(rng.signed_below(120_000)))
            .collect();
        let mut keys = Vec::with_capacity(n as usize);
        let rounds = 10;
        let start = Instant::now();
        for _ in 0..rounds {
            keys.extend(
                deadlines
                    .iter()
                    .enumerate()
                    .filter_map(|(u, &d)| w.add(d, u as u64)),
            );
            for key in keys.drain(..) {
                w.remove(key);
            }
        }
        let per = start.elapsed().as_nanos() / u128::from(n * rounds);
        println!("timer wheel: {per} ns per add+remove ({n} timers, {rounds} rounds)");

        for (u, &d) in deadlines.iter().enumerate() {
            w.add(d, u as u64);
        }
        let start = Instant::now();
        let mut fired = 0u64;
        for ms in (0..=120_000).step_by(10) {
            w.update(clock.at(ms));
            fired += drain(&mut w).len() as u64;
        }
        let per = start.elapsed().as_nanos() / u128::from(fired.max(1));
        println!("timer wheel: {per} ns per expiry, 10 ms updates ({fired} timers)");
    }
}
