//! A token bucket for Pushpin's `message_rate` (deliveries per second), sans-IO.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `per_sec` deliveries per second; up to one second's worth may go out in a burst.
    pub fn new(per_sec: f64, now: Instant) -> RateLimiter {
        let per_sec = per_sec.max(1.0);
        RateLimiter {
            per_sec,
            tokens: per_sec,
            last: now,
        }
    }

    pub fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
    }

    /// Take `n` deliveries' tokens if there are that many (all or none).
    pub fn try_take_n(&mut self, n: usize) -> bool {
        let n = n as f64;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Take one delivery's token if there is one.
    pub fn try_take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10.0, t0);
        assert_eq!((0..20).filter(|_| r.try_take()).count(), 10);
        r.refill(t0 + Duration::from_millis(500));
        assert_eq!((0..20).filter(|_| r.try_take()).count(), 5);
        r.refill(t0 + Duration::from_secs(100));
        assert_eq!(
            (0..20).filter(|_| r.try_take()).count(),
            10,
            "never more than one second's worth"
        );
    }

    #[test]
    fn take_n_is_all_or_nothing() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10.0, t0);
        assert!(r.try_take_n(6));
        assert!(!r.try_take_n(5), "4 left: none taken");
        assert!(r.try_take_n(4));
        assert!(!r.try_take());
        assert!(r.try_take_n(0));
    }
}
