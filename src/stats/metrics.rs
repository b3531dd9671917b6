//! Counters shared by every thread. Plain relaxed atomics: each is an independent tally, read for reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Input, Transport};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Client request heads parsed (Pushpin's `request_received`; stats `activity`).
    pub requests_received: AtomicU64,
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
}
