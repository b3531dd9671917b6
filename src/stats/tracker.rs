//! The stats socket's model (spec 1.4), sans-IO: connection and subscription tables fed by the workers'
//! events, `message` events from delivery tallies, and the periodic `activity`, `report` and refresh events.
//! The caller passes the time and a snapshot of the counters; the tracker queues encoded frames to publish.
//! The connection table also answers the command socket's `conncheck`, as Pushpin's handler answers it from
//! its stats.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{StatsEvent, Tally, Transport};
use crate::config::StatsFormat;
use crate::deadlines::FixedDelay;
use crate::memory::Fit;
use crate::publish::{tnetstring, Value};

/// Every event type the tracker sends.
pub const EVENT_TYPES: [&str; 6] = ["conn", "sub", "message", "activity", "report", "conn-max"];

/// How often `activity` is sent (Pushpin batches it about every 100 ms).
pub const ACTIVITY_EVERY: Duration = Duration::from_millis(100);
/// Frames queued for the socket before further ones are dropped (the bridge sends them every loop).
const OUT_MAX: usize = 100_000;

pub struct TrackerConfig {
    /// `from` in every event: this instance's name.
    pub from: String,
    pub format: StatsFormat,
    /// Publish events at all (a tracker without a stats socket only keeps the tables for `conncheck`).
    pub publish: bool,
    pub conn_ttl: Duration,
    /// `stats_connection_send`: per-connection `conn` events; otherwise only `conn-max` maxima.
    pub conn_send: bool,
    pub sub_ttl: Duration,
    /// Response-mode subscriptions are reported gone only after this long without subscribers.
    pub linger: Duration,
    pub report_interval: Duration,
    /// `message_block_size`, for `blocks` in `message` events.
    pub block_size: Option<u64>,
}

/// Counters read at each tick: open connections, requests so far, and named cumulative counters that
/// `report` sends as per-interval differences.
pub struct Readings {
    pub conns: usize,
    pub requests: u64,
    pub counters: Vec<(&'static str, u64)>,
}

#[derive(Clone)]
struct ConnInfo {
    ws: bool,
    peer: IpAddr,
    tls: bool,
    route: Option<Arc<str>>,
}

type SubKey = (Transport, String);

pub struct Tracker {
    cfg: TrackerConfig,
    conns: HashMap<String, ConnInfo>,
    /// Connections and subscriptions are announced again every ¾ of their ttl.
    conn_refresh: FixedDelay<String>,
    subs: HashMap<SubKey, u32>,
    sub_refresh: FixedDelay<SubKey>,
    /// Response-mode subscriptions without subscribers, until they are reported gone.
    sub_lingering: FixedDelay<SubKey>,
    next_activity: Instant,
    /// Requests per route with an explicit id since the last `activity` (at most one entry per route).
    route_activity: Vec<(Arc<str>, u64)>,
    /// The request count at the last `activity` tick. Counters start at zero with the process (the bridge
    /// and its tracker exist before any worker accepts), so the first tick reports every request since.
    last_requests: u64,
    report_started: Instant,
    next_report: Instant,
    last_sample: Instant,
    max_conns: usize,
    conn_ms: u128,
    last_counters: Vec<(&'static str, u64)>,
    out: Vec<Vec<u8>>,
    /// Which of `EVENT_TYPES` some subscriber of the stats socket wants (all, until told otherwise).
    wanted: [bool; EVENT_TYPES.len()],
    /// Frames not queued because `out` was full.
    pub dropped: u64,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig, now: Instant) -> Tracker {
        let next_report = now + cfg.report_interval.max(Duration::from_secs(1));
        Tracker {
            conns: HashMap::new(),
            conn_refresh: FixedDelay::new(refresh_every(cfg.conn_ttl)),
            subs: HashMap::new(),
            sub_refresh: FixedDelay::new(refresh_every(cfg.sub_ttl)),
            sub_lingering: FixedDelay::new(cfg.linger),
            next_activity: now + ACTIVITY_EVERY,
            route_activity: Vec::new(),
            last_requests: 0,
            report_started: now,
            next_report,
            last_sample: now,
            max_conns: 0,
            conn_ms: 0,
            last_counters: Vec::new(),
            out: Vec::new(),
            wanted: [true; EVENT_TYPES.len()],
            cfg,
            dropped: 0,
        }
    }

    /// The stats socket's subscribers hold these topic prefixes (as an XPUB reports them): events no
    /// subscriber would receive are not built at all. The tables behind them are kept either way.
    pub fn set_subscriptions<'a>(&mut self, topics: impl Iterator<Item = &'a [u8]> + Clone) {
        for (wanted, kind) in self.wanted.iter_mut().zip(EVENT_TYPES) {
            let mut frame_start = kind.as_bytes().to_vec();
            frame_start.push(b' ');
            *wanted = topics.clone().any(|t| {
                // A topic matches frames that start with it; it may also run past the type's space.
                frame_start.starts_with(t) || t.starts_with(&frame_start)
            });
        }
    }

    /// Whether a subscriber wants events of this type.
    pub fn wants(&self, kind: &str) -> bool {
        self.cfg.publish
            && EVENT_TYPES
                .iter()
                .position(|k| *k == kind)
                .is_some_and(|i| self.wanted[i])
    }

    pub fn is_connected(&self, id: &str) -> bool {
        self.conns.contains_key(id)
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Encoded frames ready for the stats socket.
    pub fn take_frames(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }

    pub fn apply(&mut self, ev: StatsEvent, now: Instant) {
        match ev {
            StatsEvent::ConnOpen {
                id,
                ws,
                peer,
                tls,
                route,
            } => {
                let info = ConnInfo {
                    ws,
                    peer,
                    tls,
                    route,
                };
                self.announce_conn(&id, &info);
                self.conn_refresh.start(id.clone(), now);
                self.conns.insert(id, info);
            }
            StatsEvent::ConnClose { id } => {
                self.conn_refresh.cancel(&id);
                if self.conns.remove(&id).is_some() && self.cfg.conn_send {
                    let body = map(vec![
                        ("from", text(&self.cfg.from)),
                        ("id", text(&id)),
                        ("unavailable", Value::Bool(true)),
                    ]);
                    self.emit("conn", body);
                }
            }
            StatsEvent::Sub {
                mode,
                channel,
                delta,
            } => self.sub_changed((mode, channel), delta, now),
            StatsEvent::Activity { route, count } => {
                match self.route_activity.iter_mut().find(|(r, _)| *r == route) {
                    Some((_, n)) => *n += u64::from(count),
                    // Bounded by the number of routes with an explicit id.
                    None => self.route_activity.push((route, u64::from(count))),
                }
            }
        }
    }

    fn sub_changed(&mut self, key: SubKey, delta: i32, now: Instant) {
        let n = self.subs.entry(key.clone()).or_insert(0);
        let before = *n;
        *n = n.saturating_add_signed(delta);
        let after = *n;
        if after == 0 {
            self.subs.remove(&key);
        }
        match (before, after) {
            // Back within the linger: still announced, nothing to say.
            (0, a) if a > 0 && !self.sub_lingering.cancel(&key) => {
                self.announce_sub(&key, after, now);
            }
            (b, 0) if b > 0 => {
                if key.0 == Transport::HttpResponse && !self.cfg.linger.is_zero() {
                    self.sub_lingering.start(key, now);
                } else {
                    self.sub_gone(&key);
                }
            }
            _ => {}
        }
    }

    fn announce_conn(&mut self, id: &str, c: &ConnInfo) {
        if !self.cfg.conn_send {
            return;
        }
        let mut fields = vec![("from", text(&self.cfg.from))];
        if let Some(route) = &c.route {
            fields.push(("route", text(route)));
        }
        fields.extend([
            ("id", text(id)),
            ("type", text(if c.ws { "ws" } else { "http" })),
            ("peer-address", text(&c.peer.to_string())),
        ]);
        if c.tls {
            fields.push(("ssl", Value::Bool(true)));
        }
        fields.push(("ttl", Value::Int(self.cfg.conn_ttl.as_secs() as i64)));
        self.emit("conn", map(fields));
    }

    fn announce_sub(&mut self, key: &SubKey, subscribers: u32, now: Instant) {
        let body = map(vec![
            ("from", text(&self.cfg.from)),
            ("mode", text(key.0.mode())),
            ("channel", text(&key.1)),
            ("ttl", Value::Int(self.cfg.sub_ttl.as_secs() as i64)),
            ("subscribers", Value::Int(subscribers as i64)),
        ]);
        self.emit("sub", body);
        self.sub_refresh.start(key.clone(), now);
    }

    fn sub_gone(&mut self, key: &SubKey) {
        self.sub_refresh.cancel(key);
        let body = map(vec![
            ("from", text(&self.cfg.from)),
            ("mode", text(key.0.mode())),
            ("channel", text(&key.1)),
            ("unavailable", Value::Bool(true)),
        ]);
        self.emit("sub", body);
    }

    /// A publish batch's receivers are known: one `message` event per item and format it carried.
    pub fn delivered(&mut self, tally: &Tally) {
        if !self.wants("message") {
            return;
        }
        for (i, item) in tally.items.iter().enumerate() {
            let formats = [
                (Transport::HttpResponse, item.http_response.is_some()),
                (Transport::HttpStream, item.http_stream.is_some()),
                (Transport::WsMessage, item.ws_message.is_some()),
            ];
            for (transport, present) in formats {
                if !present {
                    continue;
                }
                let mut fields = vec![
                    ("from", text(&self.cfg.from)),
                    ("channel", text(&item.channel)),
                ];
                if let Some(id) = &item.id {
                    fields.push(("item-id", text(id)));
                }
                fields.push(("count", Value::Int(tally.count(i, transport) as i64)));
                if let (Some(bs), Some(size)) = (self.cfg.block_size, item.size) {
                    if bs > 0 {
                        fields.push(("blocks", Value::Int(size.div_ceil(bs) as i64)));
                    }
                }
                fields.push(("transport", text(transport.as_str())));
                self.emit("message", map(fields));
            }
        }
    }

    /// Periodic work: activity, refreshes of long-lived connections and subscriptions, lingering
    /// subscriptions that end, and the report.
    pub fn tick(&mut self, now: Instant, snap: &Readings) {
        // Connection-minutes and the interval's maximum, from samples at every tick.
        let elapsed = now.saturating_duration_since(self.last_sample);
        self.conn_ms += elapsed.as_millis() * snap.conns as u128;
        self.last_sample = now;
        self.max_conns = self.max_conns.max(snap.conns);

        if now >= self.next_activity {
            self.next_activity = now + ACTIVITY_EVERY;
            self.shrink_tables(Fit::Loose);
            let count = snap.requests.saturating_sub(self.last_requests);
            self.last_requests = snap.requests;
            // Requests on routes with an explicit id are reported under their route, the rest without one.
            let routed: u64 = self.route_activity.iter().map(|(_, n)| *n).sum();
            let unrouted = count.saturating_sub(routed);
            if unrouted > 0 {
                let body = map(vec![
                    ("from", text(&self.cfg.from)),
                    ("count", Value::Int(unrouted as i64)),
                ]);
                self.emit("activity", body);
            }
            for (route, n) in std::mem::take(&mut self.route_activity) {
                let body = map(vec![
                    ("from", text(&self.cfg.from)),
                    ("route", text(&route)),
                    ("count", Value::Int(n as i64)),
                ]);
                self.emit("activity", body);
            }
        }
        self.refresh_conns(now);
        self.refresh_subs(now);
        while let Some(key) = self.sub_lingering.pop_due(now) {
            self.sub_gone(&key);
        }
        if now >= self.next_report {
            self.report(now, snap);
        }
    }

    /// Give back the memory of tables left mostly empty after a burst of connections or subscriptions
    /// ended (15,000 connections leave several MiB of table behind otherwise); with `Fit::Exact` (the
    /// bridge saw the burst end) every table, refresh queues included, is reallocated at its size.
    pub fn shrink_tables(&mut self, fit: Fit) {
        if fit.shrinks(self.conns.capacity(), self.conns.len()) {
            self.conns.shrink_to_fit();
        }
        if fit.shrinks(self.subs.capacity(), self.subs.len()) {
            self.subs.shrink_to_fit();
        }
        self.conn_refresh.tidy(fit);
        self.sub_refresh.tidy(fit);
    }

    fn refresh_conns(&mut self, now: Instant) {
        while let Some(id) = self.conn_refresh.pop_due(now) {
            let Some(info) = self.conns.get(&id).cloned() else {
                continue;
            };
            self.announce_conn(&id, &info);
            self.conn_refresh.start(id, now);
        }
    }

    fn refresh_subs(&mut self, now: Instant) {
        while let Some(key) = self.sub_refresh.pop_due(now) {
            // A lingering subscription has no subscribers but is still there.
            let n = self.subs.get(&key).copied().unwrap_or(0);
            self.announce_sub(&key, n, now);
        }
    }

    fn report(&mut self, now: Instant, snap: &Readings) {
        let duration = now.saturating_duration_since(self.report_started);
        let minutes = (self.conn_ms / 60_000) as i64;
        self.conn_ms %= 60_000;
        let mut fields = vec![
            ("from", text(&self.cfg.from)),
            ("connections", Value::Int(self.max_conns as i64)),
            ("minutes", Value::Int(minutes)),
        ];
        for (name, total) in &snap.counters {
            let before = self
                .last_counters
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| *v);
            fields.push((name, Value::Int(total.saturating_sub(before) as i64)));
        }
        fields.push(("duration", Value::Int(duration.as_millis() as i64)));
        self.emit("report", map(fields));
        if !self.cfg.conn_send {
            let body = map(vec![
                ("from", text(&self.cfg.from)),
                ("max", Value::Int(self.max_conns as i64)),
                ("ttl", Value::Int(self.cfg.conn_ttl.as_secs() as i64)),
            ]);
            self.emit("conn-max", body);
        }
        self.last_counters = snap.counters.clone();
        self.report_started = now;
        self.next_report = now + self.cfg.report_interval.max(Duration::from_secs(1));
        self.max_conns = snap.conns;
    }

    /// The earliest time `tick` has something to do.
    pub fn next_deadline(&self) -> Instant {
        self.next_activity.min(self.next_report)
    }

    fn emit(&mut self, kind: &str, body: Value) {
        if !self.wants(kind) {
            return;
        }
        if self.out.len() >= OUT_MAX {
            self.dropped += 1;
            return;
        }
        self.out.push(encode_event(kind, &body, self.cfg.format));
    }
}

/// Announcements are repeated every ¾ of their ttl (and at most once a second).
fn refresh_every(ttl: Duration) -> Duration {
    (ttl * 3 / 4).max(Duration::from_secs(1))
}

/// One stats frame: `<type> T<tnetstring>` or `<type> J<json>`.
pub fn encode_event(kind: &str, body: &Value, format: StatsFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(kind.as_bytes());
    out.push(b' ');
    match format {
        StatsFormat::Tnetstring => {
            out.push(b'T');
            tnetstring::encode(body, &mut out);
        }
        StatsFormat::Json => {
            out.push(b'J');
            // Serialising a serde_json::Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, &body.to_json());
        }
    }
    out
}

fn text(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

fn map(fields: Vec<(&str, Value)>) -> Value {
    Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
