//! Subscription forwarding (spec 1.2), sans-IO: which channels the SUB socket should be subscribed to.
//!
//! The workers report a channel's first listener anywhere and its last one leaving. A channel is subscribed at
//! once and unsubscribed only after `subscription_linger` without listeners, so a long-poll client that
//! re-polls (or a hold that is retried) does not make an XPUB publisher see the channel flap.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::deadlines::FixedDelay;

/// What to do to the SUB socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Subscribe(String),
    Unsubscribe(String),
}

pub struct Forwarder {
    /// Zero: unsubscribe as soon as the last listener leaves.
    no_linger: bool,
    /// Channels the SUB socket is subscribed to (including lingering ones).
    subscribed: HashSet<String>,
    /// Channels without listeners, until they are unsubscribed.
    lingering: FixedDelay<String>,
}

impl Forwarder {
    pub fn new(linger: Duration) -> Forwarder {
        Forwarder {
            no_linger: linger.is_zero(),
            subscribed: HashSet::new(),
            lingering: FixedDelay::new(linger),
        }
    }

    /// A channel got its first listener (`true`) or lost its last one (`false`).
    pub fn listening(&mut self, channel: &str, on: bool, now: Instant) -> Option<Change> {
        if on {
            if self.lingering.cancel(channel) {
                return None; // still subscribed: the linger is simply called off
            }
            if self.subscribed.insert(channel.to_string()) {
                return Some(Change::Subscribe(channel.to_string()));
            }
            return None;
        }
        if !self.subscribed.contains(channel) || self.lingering.contains(channel) {
            return None;
        }
        if self.no_linger {
            self.subscribed.remove(channel);
            return Some(Change::Unsubscribe(channel.to_string()));
        }
        self.lingering.start(channel.to_string(), now);
        None
    }

    /// Unsubscribe channels whose linger is over.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Change>) {
        while let Some(channel) = self.lingering.pop_due(now) {
            self.subscribed.remove(&channel);
            out.push(Change::Unsubscribe(channel));
        }
    }

    /// Bring the subscriptions in line with the channels that have listeners now (after change reports were
    /// lost to a full queue): missing ones are subscribed, ones without listeners start lingering.
    pub fn resync(&mut self, listening: &HashSet<String>, now: Instant, out: &mut Vec<Change>) {
        for channel in listening {
            if let Some(c) = self.listening(channel, true, now) {
                out.push(c);
            }
        }
        let idle: Vec<String> = self
            .subscribed
            .iter()
            .filter(|c| !listening.contains(*c) && !self.lingering.contains(c.as_str()))
            .cloned()
            .collect();
        for channel in idle {
            if let Some(c) = self.listening(&channel, false, now) {
                out.push(c);
            }
        }
    }

    /// When `expire` has something to do next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lingering.next_due()
    }

    pub fn subscribed(&self) -> usize {
        self.subscribed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_secs(60);

    #[test]
    fn subscribes_at_once_and_unsubscribes_after_the_linger() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(LINGER);
        assert_eq!(
            f.listening("a", true, t0),
            Some(Change::Subscribe("a".into()))
        );
        assert_eq!(f.listening("a", false, t0), None);
        assert_eq!(f.next_deadline(), Some(t0 + LINGER));
        let mut out = Vec::new();
        f.expire(t0 + LINGER - Duration::from_millis(1), &mut out);
        assert!(out.is_empty());
        f.expire(t0 + LINGER, &mut out);
        assert_eq!(out, [Change::Unsubscribe("a".into())]);
        assert_eq!(f.subscribed(), 0);
    }

    #[test]
    fn a_listener_back_within_the_linger_keeps_the_subscription_without_a_resubscribe() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(LINGER);
        f.listening("a", true, t0);
        f.listening("a", false, t0);
        assert_eq!(f.listening("a", true, t0 + Duration::from_secs(5)), None);
        // It leaves again later: the new linger counts from then, the old deadline is stale.
        f.listening("a", false, t0 + Duration::from_secs(30));
        let mut out = Vec::new();
        f.expire(t0 + LINGER, &mut out);
        assert!(out.is_empty());
        f.expire(t0 + Duration::from_secs(90), &mut out);
        assert_eq!(out, [Change::Unsubscribe("a".into())]);
    }

    #[test]
    fn zero_linger_unsubscribes_at_once_and_unknown_channels_are_ignored() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(Duration::ZERO);
        assert_eq!(f.listening("x", false, t0), None);
        f.listening("a", true, t0);
        assert_eq!(f.listening("a", true, t0), None);
        assert_eq!(
            f.listening("a", false, t0),
            Some(Change::Unsubscribe("a".into()))
        );
    }

    #[test]
    fn resync_subscribes_what_is_missing_and_lets_the_rest_linger() {
        let t0 = Instant::now();
        let mut f = Forwarder::new(LINGER);
        f.listening("old", true, t0);
        f.listening("kept", true, t0);
        let now: HashSet<String> = ["kept", "new"].iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        f.resync(&now, t0, &mut out);
        assert_eq!(out, [Change::Subscribe("new".into())]);
        out.clear();
        f.expire(t0 + LINGER, &mut out);
        assert_eq!(out, [Change::Unsubscribe("old".into())]);
        assert_eq!(f.subscribed(), 2);
    }
}
