//! A worker's channel index: which of its connections listen on which channel.
//!
//! Subscribe and unsubscribe are O(1) (hash map + hash set); a delivery walks exactly the members of one
//! channel. Members are `ConnRef`s (slab key + generation), so a reference to a connection that has since
//! closed and whose slot was reused never receives its successor's messages. The index reports a channel's
//! 0 → 1 and 1 → 0 transitions, which is all the ZeroMQ bridge needs to forward subscriptions.

use std::collections::{HashMap, HashSet};

use crate::memory::Fit;

/// A connection of this worker: slab key and the generation of its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub key: usize,
    pub generation: u32,
}

/// What a subscribe or unsubscribe did to the channel as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The channel had no member on this worker and now has one.
    First,
    /// The channel's last member on this worker left.
    Last,
    None,
}

#[derive(Debug, Default)]
pub struct Subscriptions {
    channels: HashMap<String, HashSet<ConnRef>>,
    members: usize,
}

impl Subscriptions {
    pub fn new() -> Subscriptions {
        Subscriptions::default()
    }

    pub fn subscribe(&mut self, channel: &str, conn: ConnRef) -> Transition {
        let set = match self.channels.get_mut(channel) {
            Some(set) => set,
            None => self.channels.entry(channel.to_string()).or_default(),
        };
        let first = set.is_empty();
        if set.insert(conn) {
            self.members += 1;
            if first {
                return Transition::First;
            }
        }
        Transition::None
    }

    pub fn unsubscribe(&mut self, channel: &str, conn: ConnRef) -> Transition {
        let Some(set) = self.channels.get_mut(channel) else {
            return Transition::None;
        };
        if !set.remove(&conn) {
            return Transition::None;
        }
        self.members -= 1;
        if set.is_empty() {
            self.channels.remove(channel);
            return Transition::Last;
        }
        Transition::None
    }

    /// The members of a channel, for one delivery.
    pub fn members(&self, channel: &str) -> impl Iterator<Item = ConnRef> + '_ {
        self.channels
            .get(channel)
            .into_iter()
            .flat_map(|set| set.iter().copied())
    }

    /// How many connections listen on a channel.
    pub fn members_of(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, HashSet::len)
    }

    /// Give back memory of the channel table and member sets as `fit` says (called periodically, and when a
    /// burst ends; not on every unsubscribe).
    pub fn shrink(&mut self, fit: Fit) {
        if fit.shrinks(self.channels.capacity(), self.channels.len()) {
            self.channels.shrink_to_fit();
        }
        for set in self.channels.values_mut() {
            if fit.shrinks(set.capacity(), set.len()) {
                set.shrink_to_fit();
            }
        }
    }

    pub fn is_subscribed(&self, channel: &str, conn: ConnRef) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|set| set.contains(&conn))
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Subscriptions summed over channels.
    pub fn member_count(&self) -> usize {
        self.members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: usize, generation: u32) -> ConnRef {
        ConnRef { key, generation }
    }

    #[test]
    fn transitions_only_on_first_and_last() {
        let mut s = Subscriptions::new();
        assert_eq!(s.subscribe("a", c(1, 1)), Transition::First);
        assert_eq!(s.subscribe("a", c(2, 1)), Transition::None);
        assert_eq!(
            s.subscribe("a", c(2, 1)),
            Transition::None,
            "double subscribe is idempotent"
        );
        assert_eq!(s.member_count(), 2);
        assert_eq!(s.members_of("a"), 2);
        assert_eq!(s.members_of("b"), 0);
        assert_eq!(s.unsubscribe("a", c(1, 1)), Transition::None);
        assert_eq!(
            s.unsubscribe("a", c(1, 1)),
            Transition::None,
            "double unsubscribe is harmless"
        );
        assert_eq!(s.unsubscribe("a", c(2, 1)), Transition::Last);
        assert_eq!(s.channel_count(), 0);
        assert_eq!(s.member_count(), 0);
        assert_eq!(s.unsubscribe("missing", c(1, 1)), Transition::None);
    }

    #[test]
    fn generations_keep_recycled_slots_apart() {
        let mut s = Subscriptions::new();
        s.subscribe("a", c(7, 1));
        assert!(s.is_subscribed("a", c(7, 1)));
        assert!(!s.is_subscribed("a", c(7, 2)));
        let members: Vec<_> = s.members("a").collect();
        assert_eq!(members, vec![c(7, 1)]);
        assert_eq!(s.members("b").count(), 0);
    }
}
