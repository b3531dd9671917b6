//! Counters shared by every thread. Plain relaxed atomics: each is an independent tally, read for reports.
//! Workers add their connection counts and gauge changes once per loop (`LocalStats::flush`), never per event.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::counts::LocalStats;
use super::{Input, Transport};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Items accepted for publishing, by input (`Input::index`).
    pub messages_received: [AtomicU64; 4],
    /// Items handed to connections, by transport (`Transport::index`).
    pub messages_delivered: [AtomicU64; 3],
    /// A worker's inbox was full, so a publish did not reach that worker's subscribers.
    pub messages_dropped_inbox: AtomicU64,
    /// Deliveries dropped because `message_hwm` deliveries were already waiting for `message_rate`.
    pub messages_dropped_hwm: AtomicU64,
    /// Published messages refused by a ZeroMQ input (bad encoding or item), by input.
    pub messages_invalid: [AtomicU64; 4],
    /// Stats events (and `message` tallies) dropped because the bridge's queue was full.
    pub stats_dropped: AtomicU64,
    /// Time from accepting a publish to queueing it on a connection, one observation per delivery.
    pub latency: Histogram,
    /// Request heads parsed from clients (Pushpin's `request_received`; stats `activity`).
    pub requests: AtomicU64,
    /// Open client connections by `ConnType::index` (gauges; control and metrics connections are not counted).
    pub connections: [AtomicI64; 2],
    /// Whole minutes of client connection time (the integral of open connections over time).
    pub connection_minutes: AtomicU64,
    /// Connections held for publishing by `Transport::index` (`mode`), gauges.
    pub held: [AtomicI64; 3],
    /// Connection-channel subscriptions by `Transport::index` (`mode`), gauges.
    pub subscriptions: [AtomicI64; 3],
    /// Bytes read and written on client and backend sockets, by `Flow::index`.
    pub bytes: [AtomicU64; 4],
    /// The part of `bytes` that was HTTP heads, by `Flow::index`.
    pub header_bytes: [AtomicU64; 4],
    /// WebSocket data messages, by `Flow::index`.
    pub ws_messages: [AtomicU64; 4],
    /// By `BackendError::index`.
    pub backend_errors: [AtomicU64; 3],
}

/// Every metric's value at one moment, for rendering. Gauges are clamped at zero (a worker's decrement may be
/// flushed before another worker's increment).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: u64,
    pub connections: [u64; 2],
    pub connection_minutes: u64,
    pub held: [u64; 3],
    /// Channels with at least one listener on some worker.
    pub subscribed_channels: u64,
    pub subscriptions: [u64; 3],
    pub received: [u64; 4],
    pub delivered: [u64; 3],
    pub dropped_inbox: u64,
    pub dropped_hwm: u64,
    pub invalid: [u64; 4],
    pub stats_dropped: u64,
    pub bytes: [u64; 4],
    pub header_bytes: [u64; 4],
    pub ws_messages: [u64; 4],
    pub backend_errors: [u64; 3],
    /// Per-bucket (not cumulative) latency counts, the sum in microseconds and the count.
    pub latency_buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    pub latency_sum_us: u64,
    pub latency_count: u64,
}

/// Upper bounds of the latency buckets, in microseconds (the last bucket is everything above).
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000,
];

/// A cumulative-on-read histogram: per-bucket counts, plus the sum for the mean.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Record `n` observations of `d`.
    pub fn observe(&self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i].fetch_add(n, Ordering::Relaxed);
        self.sum_us
            .fetch_add(us.saturating_mul(n), Ordering::Relaxed);
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    /// Per-bucket counts (not cumulative), the sum in microseconds and the count.
    pub fn snapshot(&self) -> ([u64; LATENCY_BOUNDS_US.len() + 1], u64, u64) {
        let mut b = [0; LATENCY_BOUNDS_US.len() + 1];
        for (out, c) in b.iter_mut().zip(&self.buckets) {
            *out = c.load(Ordering::Relaxed);
        }
        (
            b,
            self.sum_us.load(Ordering::Relaxed),
            self.count.load(Ordering::Relaxed),
        )
    }
}

impl Metrics {
    pub fn received(&self, input: Input, n: u64) {
        self.messages_received[input.index()].fetch_add(n, Ordering::Relaxed);
    }

    pub fn delivered(&self, transport: Transport, n: u64) {
        if n > 0 {
            self.messages_delivered[transport.index()].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn invalid(&self, input: Input) {
        self.messages_invalid[input.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn received_total(&self) -> u64 {
        self.messages_received
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn delivered_total(&self) -> u64 {
        self.messages_delivered
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Open client connections of every type.
    pub fn open_connections(&self) -> u64 {
        self.connections
            .iter()
            .map(|c| c.load(Ordering::Relaxed).max(0) as u64)
            .sum()
    }

    pub(super) fn add_bytes(&self, flows: &[u64; 4]) {
        add_all(&self.bytes, flows);
    }

    pub(super) fn add_local(&self, l: &LocalStats) {
        let c = &l.counts;
        if c.requests > 0 {
            self.requests.fetch_add(c.requests, Ordering::Relaxed);
        }
        add_all(&self.header_bytes, &c.header_bytes);
        add_all(&self.ws_messages, &c.ws_messages);
        add_all(&self.backend_errors, &c.backend_errors);
        add_gauges(&self.connections, &l.connections);
        add_gauges(&self.held, &l.held);
        add_gauges(&self.subscriptions, &l.subscriptions);
    }

    /// Everything at once; `subscribed_channels` comes from the shared channel table.
    pub fn snapshot(&self, subscribed_channels: u64) -> Snapshot {
        let (latency_buckets, latency_sum_us, latency_count) = self.latency.snapshot();
        Snapshot {
            requests: load(&self.requests),
            connections: gauges(&self.connections),
            connection_minutes: load(&self.connection_minutes),
            held: gauges(&self.held),
            subscribed_channels,
            subscriptions: gauges(&self.subscriptions),
            received: loads(&self.messages_received),
            delivered: loads(&self.messages_delivered),
            dropped_inbox: load(&self.messages_dropped_inbox),
            dropped_hwm: load(&self.messages_dropped_hwm),
            invalid: loads(&self.messages_invalid),
            stats_dropped: load(&self.stats_dropped),
            bytes: loads(&self.bytes),
            header_bytes: loads(&self.header_bytes),
            ws_messages: loads(&self.ws_messages),
            backend_errors: loads(&self.backend_errors),
            latency_buckets,
            latency_sum_us,
            latency_count,
        }
    }
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn loads<const N: usize>(cs: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| cs[i].load(Ordering::Relaxed))
}

fn gauges<const N: usize>(cs: &[AtomicI64; N]) -> [u64; N] {
    std::array::from_fn(|i| cs[i].load(Ordering::Relaxed).max(0) as u64)
}

fn add_all<const N: usize>(cs: &[AtomicU64; N], values: &[u64; N]) {
    for (c, &v) in cs.iter().zip(values) {
        if v != 0 {
            c.fetch_add(v, Ordering::Relaxed);
        }
    }
}

fn add_gauges<const N: usize>(cs: &[AtomicI64; N], deltas: &[i64; N]) {
    for (c, &d) in cs.iter().zip(deltas) {
        if d != 0 {
            c.fetch_add(d, Ordering::Relaxed);
        }
    }
}

/// Turns "this many connections were open for this long" into whole connection-minutes, carrying the
/// fraction over, so sampling every few milliseconds loses nothing to rounding.
#[derive(Debug, Default)]
pub struct MinuteCounter {
    carry_us: u128,
}

impl MinuteCounter {
    /// `open` connections were open for `elapsed`: the whole minutes that completes.
    pub fn advance(&mut self, open: u64, elapsed: Duration) -> u64 {
        const MINUTE_US: u128 = 60_000_000;
        self.carry_us += open as u128 * elapsed.as_micros();
        let minutes = self.carry_us / MINUTE_US;
        self.carry_us %= MINUTE_US;
        minutes.min(u64::MAX as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_minutes_integrate_open_connections_over_time() {
        let mut m = MinuteCounter::default();
        // Ten connections for 50 ms ticks: 0.5 connection-seconds a tick, so a minute every 120 ticks.
        let mut total = 0;
        for _ in 0..119 {
            total += m.advance(10, Duration::from_millis(50));
        }
        assert_eq!(total, 0, "the fraction is carried, not rounded up");
        total += m.advance(10, Duration::from_millis(50));
        assert_eq!(total, 1);
        assert_eq!(m.advance(0, Duration::from_secs(3600)), 0);
        assert_eq!(m.advance(3, Duration::from_secs(60)), 3);
    }

    #[test]
    fn latency_lands_in_the_first_bucket_whose_bound_is_not_below_it() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100), 2);
        h.observe(Duration::from_micros(101), 1);
        h.observe(Duration::from_secs(60), 1);
        let (b, sum, count) = h.snapshot();
        assert_eq!(b[0], 2, "100 µs is in the le=100µs bucket");
        assert_eq!(b[1], 1);
        assert_eq!(b[LATENCY_BOUNDS_US.len()], 1, "above every bound");
        assert_eq!(count, 4);
        assert_eq!(sum, 200 + 101 + 60_000_000);
    }
}
