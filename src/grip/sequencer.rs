//! Publish ordering and de-duplication (spec 4.8), sans-IO: items in, items to deliver out, `now` passed in.
//!
//! * De-duplication: with `id_cache_ttl` > 0, an item whose (channel, id) was seen within the TTL is dropped.
//! * Sequencing: for a channel with listeners, the id of the last delivered item is remembered. An item whose
//!   `prev-id` names a different id is parked (at most `PARKED_PER_CHANNEL_MAX` per channel, one per prev-id)
//!   until its predecessor is delivered, or until `message_wait` passes; then it is released in order. Items
//!   with `no-seq` bypass this. Channels without listeners keep no state.
//!
//! Policy when a bound is hit: the dedup cache holds at most `DEDUP_ENTRIES_MAX` ids (the oldest are forgotten
//! early); a channel with a full parking lot releases the oldest parked item at once (counted as released
//! out of order). Every item dropped as a duplicate is counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::publish::Item;

/// Out-of-order items parked per channel (Pushpin: 100).
pub const PARKED_PER_CHANNEL_MAX: usize = 100;
/// (channel, id) pairs remembered for de-duplication.
pub const DEDUP_ENTRIES_MAX: usize = 1_000_000;

struct Parked {
    item: Arc<Item>,
    since: Instant,
}

#[derive(Default)]
struct ChannelState {
    last_id: Option<String>,
    /// Parked items by the prev-id they wait for.
    parked: HashMap<String, Parked>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SequencerStats {
    pub duplicates: u64,
    pub parked: u64,
    /// Released because their predecessor never came within `message_wait` (or the lot was full).
    pub released_out_of_order: u64,
}

pub struct Sequencer {
    wait: Duration,
    dedup_ttl: Duration,
    seen: HashMap<(String, String), Instant>,
    seen_order: VecDeque<((String, String), Instant)>,
    channels: HashMap<String, ChannelState>,
    pub stats: SequencerStats,
}

impl Sequencer {
    pub fn new(message_wait: Duration, id_cache_ttl: Duration) -> Sequencer {
        Sequencer {
            wait: message_wait,
            dedup_ttl: id_cache_ttl,
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            channels: HashMap::new(),
            stats: SequencerStats::default(),
        }
    }

    /// A channel got its first listener anywhere: start tracking its order.
    pub fn channel_active(&mut self, channel: &str) {
        self.channels.entry(channel.to_string()).or_default();
    }

    /// A channel lost its last listener: forget its state, releasing whatever was parked.
    pub fn channel_inactive(&mut self, channel: &str, out: &mut Vec<Arc<Item>>) {
        if let Some(state) = self.channels.remove(channel) {
            let mut parked: Vec<Parked> = state.parked.into_values().collect();
            parked.sort_by_key(|p| p.since);
            self.stats.released_out_of_order += parked.len() as u64;
            out.extend(parked.into_iter().map(|p| p.item));
        }
    }

    /// Whether `channel`'s last delivered id is known and differs from `prev`; if so it is forgotten, so
    /// the request retried because of it is not retried again for the same reason.
    pub fn take_conflict(&mut self, channel: &str, prev: &str) -> bool {
        match self.channels.get_mut(channel) {
            Some(state) if state.last_id.as_deref().is_some_and(|last| last != prev) => {
                state.last_id = None;
                true
            }
            _ => false,
        }
    }

    /// Forget every channel's last id (the `recover` operation).
    pub fn reset_last_ids(&mut self) {
        for state in self.channels.values_mut() {
            state.last_id = None;
        }
    }

    /// Offer an item; whatever may be delivered now (the item and any parked successors, in order) is appended
    /// to `out`.
    pub fn offer(&mut self, item: Arc<Item>, now: Instant, out: &mut Vec<Arc<Item>>) {
        if self.is_duplicate(&item, now) {
            self.stats.duplicates += 1;
            log::debug!(
                "publish: dropping duplicate id {:?} on channel {}",
                item.id,
                item.channel
            );
            return;
        }
        let Some(state) = self.channels.get_mut(&item.channel) else {
            out.push(item);
            return;
        };
        if !item.no_seq {
            if let (Some(prev), Some(last)) = (&item.prev_id, &state.last_id) {
                if prev != last {
                    if state.parked.len() >= PARKED_PER_CHANNEL_MAX {
                        // Make room: the oldest parked item goes out now, out of order.
                        if let Some(oldest) = state
                            .parked
                            .iter()
                            .min_by_key(|(_, p)| p.since)
                            .map(|(k, _)| k.clone())
                        {
                            if let Some(p) = state.parked.remove(&oldest) {
                                self.stats.released_out_of_order += 1;
                                Self::deliver(state, p.item, out);
                            }
                        }
                    }
                    self.stats.parked += 1;
                    state
                        .parked
                        .insert(prev.clone(), Parked { item, since: now });
                    return;
                }
            }
        }
        Self::deliver(state, item, out);
    }

    /// Deliver an item and then every parked item that was waiting for it, in order.
    fn deliver(state: &mut ChannelState, item: Arc<Item>, out: &mut Vec<Arc<Item>>) {
        let mut next = Some(item);
        while let Some(item) = next.take() {
            if !item.no_seq {
                if let Some(id) = &item.id {
                    state.last_id = Some(id.clone());
                    next = state.parked.remove(id).map(|p| p.item);
                }
            }
            out.push(item);
        }
    }

    /// Release items that waited longer than `message_wait`, and expire old dedup entries.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Arc<Item>>) {
        let wait = self.wait;
        let mut released = 0u64;
        for state in self.channels.values_mut() {
            let mut due: Vec<(String, Instant)> = state
                .parked
                .iter()
                .filter(|(_, p)| now.saturating_duration_since(p.since) >= wait)
                .map(|(k, p)| (k.clone(), p.since))
                .collect();
            due.sort_by_key(|(_, since)| *since);
            for (key, _) in due {
                if let Some(p) = state.parked.remove(&key) {
                    released += 1;
                    Self::deliver(state, p.item, out);
                }
            }
        }
        self.stats.released_out_of_order += released;
        while let Some((_, at)) = self.seen_order.front() {
            if now.saturating_duration_since(*at) < self.dedup_ttl {
                break;
            }
            if let Some((key, at)) = self.seen_order.pop_front() {
                if self.seen.get(&key) == Some(&at) {
                    self.seen.remove(&key);
                }
            }
        }
    }

    fn is_duplicate(&mut self, item: &Item, now: Instant) -> bool {
        if self.dedup_ttl.is_zero() {
            return false;
        }
        let Some(id) = &item.id else { return false };
        let key = (item.channel.clone(), id.clone());
        if let Some(at) = self.seen.get(&key) {
            if now.saturating_duration_since(*at) < self.dedup_ttl {
                return true;
            }
        }
        if self.seen_order.len() >= DEDUP_ENTRIES_MAX {
            if let Some((old, at)) = self.seen_order.pop_front() {
                if self.seen.get(&old) == Some(&at) {
                    self.seen.remove(&old);
                }
            }
        }
        self.seen.insert(key.clone(), now);
        self.seen_order.push_back((key, now));
        false
    }

    /// Whether any item is parked (the caller then calls `expire` periodically).
    pub fn has_parked(&self) -> bool {
        self.channels.values().any(|s| !s.parked.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::parse_publish_body;

    fn item(channel: &str, id: Option<&str>, prev: Option<&str>, no_seq: bool) -> Arc<Item> {
        let mut obj =
            serde_json::json!({"channel": channel, "formats": {"http-stream": {"content": "x"}}});
        if let Some(id) = id {
            obj["id"] = id.into();
        }
        if let Some(prev) = prev {
            obj["prev-id"] = prev.into();
        }
        if no_seq {
            obj["no-seq"] = true.into();
        }
        let body = serde_json::json!({ "items": [obj] });
        Arc::new(
            parse_publish_body(body.to_string().as_bytes())
                .unwrap()
                .remove(0),
        )
    }

    fn ids(out: &[Arc<Item>]) -> Vec<&str> {
        out.iter().map(|i| i.id.as_deref().unwrap_or("-")).collect()
    }

    #[test]
    fn a_stale_prev_id_conflicts_once_and_then_the_last_id_is_forgotten() {
        let now = Instant::now();
        let mut s = Sequencer::new(Duration::from_secs(5), Duration::ZERO);
        assert!(
            !s.take_conflict("c", "41"),
            "an inactive channel knows no last id"
        );
        s.channel_active("c");
        assert!(!s.take_conflict("c", "41"), "nothing published yet");
        let mut out = Vec::new();
        s.offer(item("c", Some("50"), None, false), now, &mut out);
        assert!(!s.take_conflict("c", "50"), "up to date");
        assert!(s.take_conflict("c", "41"));
        assert!(!s.take_conflict("c", "41"), "cleared by the first conflict");
        // With the last id forgotten, the next item is delivered whatever its prev-id says.
        s.offer(item("c", Some("52"), Some("51"), false), now, &mut out);
        assert_eq!(ids(&out), vec!["50", "52"]);
    }

    #[test]
    fn out_of_order_items_are_released_in_order() {
        // Pushpin's publishStreamReorder: one, three (prev two), four (prev three), two (prev one).
        let now = Instant::now();
        let mut s = Sequencer::new(Duration::from_secs(5), Duration::ZERO);
        s.channel_active("c");
        let mut out = Vec::new();
        s.offer(item("c", Some("one"), None, false), now, &mut out);
        s.offer(item("c", Some("three"), Some("two"), false), now, &mut out);
        s.offer(item("c", Some("four"), Some("three"), false), now, &mut out);
        assert_eq!(ids(&out), vec!["one"]);
        s.offer(item("c", Some("two"), Some("one"), false), now, &mut out);
        assert_eq!(ids(&out), vec!["one", "two", "three", "four"]);
        assert!(!s.has_parked());
    }

    #[test]
    fn a_missing_predecessor_is_given_up_after_message_wait() {
        let now = Instant::now();
        let mut s = Sequencer::new(Duration::from_secs(5), Duration::ZERO);
        s.channel_active("c");
        let mut out = Vec::new();
        s.offer(item("c", Some("1"), None, false), now, &mut out);
        s.offer(item("c", Some("3"), Some("2"), false), now, &mut out);
        s.expire(now + Duration::from_secs(4), &mut out);
        assert_eq!(ids(&out), vec!["1"]);
        s.expire(now + Duration::from_secs(5), &mut out);
        assert_eq!(ids(&out), vec!["1", "3"]);
        assert_eq!(s.stats.released_out_of_order, 1);
        // The sequence continues from the released item.
        s.offer(item("c", Some("4"), Some("3"), false), now, &mut out);
        assert_eq!(ids(&out), vec!["1", "3", "4"]);
    }

    #[test]
    fn no_seq_and_inactive_channels_pass_straight_through() {
        let now = Instant::now();
        let mut s = Sequencer::new(Duration::from_secs(5), Duration::ZERO);
        let mut out = Vec::new();
        s.offer(item("idle", Some("b"), Some("a"), false), now, &mut out);
        s.channel_active("c");
        s.offer(item("c", Some("1"), None, false), now, &mut out);
        s.offer(item("c", Some("x"), Some("zzz"), true), now, &mut out);
        assert_eq!(ids(&out), vec!["b", "1", "x"]);
    }

    #[test]
    fn duplicates_are_dropped_within_the_ttl() {
        let now = Instant::now();
        let mut s = Sequencer::new(Duration::from_secs(5), Duration::from_secs(60));
        let mut out = Vec::new();
        s.offer(item("c", Some("1"), None, false), now, &mut out);
        s.offer(
            item("c", Some("1"), None, false),
            now + Duration::from_secs(10),
            &mut out,
        );
        s.offer(item("d", Some("1"), None, false), now, &mut out);
        s.offer(item("c", None, None, false), now, &mut out);
        s.offer(item("c", None, None, false), now, &mut out);
        assert_eq!(
            out.len(),
            4,
            "same id on another channel and id-less items are not duplicates"
        );
        assert_eq!(s.stats.duplicates, 1);
        s.expire(now + Duration::from_secs(61), &mut out);
        s.offer(
            item("c", Some("1"), None, false),
            now + Duration::from_secs(61),
            &mut out,
        );
        assert_eq!(out.len(), 5, "forgotten after the ttl");
    }

    #[test]
    fn losing_the_last_listener_releases_and_forgets() {
        let now = Instant::now();
        let mut s = Sequencer::new(Duration::from_secs(5), Duration::ZERO);
        s.channel_active("c");
        let mut out = Vec::new();
        s.offer(item("c", Some("1"), None, false), now, &mut out);
        s.offer(item("c", Some("3"), Some("2"), false), now, &mut out);
        s.channel_inactive("c", &mut out);
        assert_eq!(ids(&out), vec!["1", "3"]);
        s.channel_active("c");
        s.offer(item("c", Some("9"), Some("8"), false), now, &mut out);
        assert_eq!(
            ids(&out),
            vec!["1", "3", "9"],
            "no last id after reactivation"
        );
    }

    #[test]
    fn the_parking_lot_is_bounded() {
        let now = Instant::now();
        let mut s = Sequencer::new(Duration::from_secs(5), Duration::ZERO);
        s.channel_active("c");
        let mut out = Vec::new();
        s.offer(item("c", Some("start"), None, false), now, &mut out);
        for i in 0..PARKED_PER_CHANNEL_MAX + 3 {
            let id = format!("i{i}");
            let prev = format!("p{i}");
            s.offer(
                item("c", Some(&id), Some(&prev), false),
                now + Duration::from_millis(i as u64),
                &mut out,
            );
        }
        assert_eq!(
            out.len(),
            1 + 3,
            "the three oldest were released to make room"
        );
        assert_eq!(s.stats.released_out_of_order, 3);
    }
}
