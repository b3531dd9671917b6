//! A worker's stats reporting: connection and subscription events collected during one loop and handed to the
//! bridge in one message at the end of it (one lock and at most one wake-up per loop, whatever the load).
//!
//! Policy when the bridge's queue is full: the loop's events are dropped, counted in `stats_dropped` and
//! logged at most once a second. Only stats suffer; subscription forwarding has its own never-lost path.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::shared::{BridgeMsg, Shared};
use crate::stats::{StatsEvent, Transport};

/// How a connection was last reported: nothing yet, as plain HTTP, or as a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReportedAs {
    Http,
    Ws,
}

/// Events queued per loop before the rest of that loop's are counted as dropped.
const EVENTS_PER_LOOP_MAX: usize = 65_536;

pub(super) struct Reporter {
    enabled: bool,
    events: Vec<StatsEvent>,
    dropped: u64,
    last_warning: Option<Instant>,
}

impl Reporter {
    pub fn new(enabled: bool) -> Reporter {
        Reporter {
            enabled,
            events: Vec::new(),
            dropped: 0,
            last_warning: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn push(&mut self, ev: StatsEvent) {
        if self.events.len() < EVENTS_PER_LOOP_MAX {
            self.events.push(ev);
        } else {
            self.dropped += 1;
        }
    }

    pub fn conn_open(&mut self, id: String, ws: bool, peer: IpAddr, tls: bool) {
        if self.enabled {
            self.push(StatsEvent::ConnOpen { id, ws, peer, tls });
        }
    }

    pub fn conn_close(&mut self, id: String) {
        if self.enabled {
            self.push(StatsEvent::ConnClose { id });
        }
    }

    pub fn sub(&mut self, mode: Transport, channel: &str, delta: i32) {
        if self.enabled {
            self.push(StatsEvent::Sub {
                mode,
                channel: channel.to_string(),
                delta,
            });
        }
    }

    /// Hand this loop's events to the bridge.
    pub fn flush(&mut self, shared: &Shared, now: Instant) {
        if self.events.is_empty() && self.dropped == 0 {
            return;
        }
        let mut lost = std::mem::take(&mut self.dropped);
        if !self.events.is_empty() {
            let events = std::mem::take(&mut self.events);
            let n = events.len() as u64;
            let pushed = shared
                .bridge
                .get()
                .is_some_and(|b| b.push(BridgeMsg::Stats(events)).is_ok());
            if !pushed {
                lost += n;
            }
        }
        if lost == 0 {
            return;
        }
        shared
            .stats
            .stats_dropped
            .fetch_add(lost, Ordering::Relaxed);
        if self
            .last_warning
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1))
        {
            self.last_warning = Some(now);
            log::warn!("stats: bridge queue full; {lost} stats events dropped");
        }
    }
}
