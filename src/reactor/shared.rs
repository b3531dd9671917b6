//! State every worker shares: configuration, the connection count, the publish path (sequencer → worker
//! inboxes), the cross-worker channel table behind subscription forwarding, counters, and the link to the
//! ZeroMQ bridge.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::inbox::Inbox;
use super::worker::WorkerMsg;
use crate::control::ControlLimits;
use crate::grip::Sequencer;
use crate::memory::Fit;
use crate::proxy::ProxyConfig;
use crate::publish::Item;
use crate::stats::{Input, Metrics, Snapshot, StatsEvent, Tally};

/// Messages the workers and the publish path send to the ZeroMQ bridge thread.
pub enum BridgeMsg {
    /// A channel got its first listener on any worker (`true`), or lost its last one everywhere (`false`).
    Channel { channel: String, listening: bool },
    /// Stats events collected during one worker loop.
    Stats(Vec<StatsEvent>),
    /// Every worker has delivered a publish batch: receivers per item and transport.
    Delivered(Arc<Tally>),
    /// A worker's answer to `WorkerMsg::Refresh` for one connection id.
    Refreshed { request: u64, found: bool },
    /// The server is stopping.
    Stop,
}

/// Published items as handed to the workers: parsed once, shared by all.
pub struct PublishBatch {
    pub items: Arc<[Arc<Item>]>,
    /// When the items were accepted (for the publish-to-write latency).
    pub received: Instant,
    /// Present when the bridge reports `message` stats events.
    pub tally: Option<Arc<Tally>>,
}

/// State shared by all workers.
pub struct Shared {
    pub cfg: ProxyConfig,
    pub conns: AtomicUsize,
    pub max_conns: usize,
    pub next_conn_id: AtomicU64,
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
    /// Pushpin's `message_rate` (deliveries/s) and `message_hwm` (deliveries waiting), for all workers together.
    pub message_rate: Option<u64>,
    pub message_hwm: Option<u64>,
    /// Pushpin's `update_on_first_subscription`.
    pub update_on_first_subscription: bool,
    /// Pushpin's `subscription_linger`: a channel counts as still subscribed this long after its last
    /// subscriber left, so a re-polling client (or a retried hold) does not count as a first subscriber.
    pub subscription_linger: Duration,
    pub control_limits: ControlLimits,
    /// Every worker's inbox, for publishing; set once all workers exist.
    pub inboxes: OnceLock<Vec<Arc<Inbox<WorkerMsg>>>>,
    pub stats: Metrics,
    /// Ordering and de-duplication of published items, before they fan out.
    pub sequencer: Mutex<Sequencer>,
    /// How many workers have listeners on each channel (only channels with listeners are present).
    pub channel_workers: Mutex<HashMap<String, usize>>,
    /// The ZeroMQ bridge's inbox, when the bridge runs (set before the workers start).
    pub bridge: OnceLock<Arc<Inbox<BridgeMsg>>>,
    /// A channel change could not be queued for the bridge: it must compare its subscriptions with
    /// `channel_workers` as a whole. Subscription changes are never just dropped.
    pub bridge_resync: AtomicBool,
    /// This instance's name in stats (`from`) and in connection ids.
    pub instance_id: String,
    /// The bridge wants connection and subscription events (it has a stats or a command socket).
    pub report_connections: AtomicBool,
    /// The bridge wants delivery tallies (it has a stats socket).
    pub report_messages: AtomicBool,
    /// `prometheus_prefix`: put in front of every metric name.
    pub prometheus_prefix: String,
}

impl Shared {
    /// Hand published items to every worker. Policy on a full inbox: that worker misses these items; the loss
    /// is counted and logged (never silent), and the publisher still gets its answer.
    pub fn publish(&self, items: Vec<Item>, input: Input) {
        self.stats.received(input, items.len() as u64);
        let now = Instant::now();
        let mut ready = Vec::with_capacity(items.len());
        {
            let mut seq = lock(&self.sequencer);
            for item in items {
                seq.offer(Arc::new(item), now, &mut ready);
            }
        }
        self.fan_out(ready, now);
    }

    /// A response hold names `prev` as the last id it has seen on `channel`: whether the channel's last
    /// published id is another one (then it is forgotten, and the request is made again at once).
    pub fn prev_id_conflict(&self, channel: &str, prev: &str) -> bool {
        lock(&self.sequencer).take_conflict(channel, prev)
    }

    /// Shrink the shared channel table as `fit` says (after a burst of channels came and went).
    pub(super) fn shrink_tables(&self, fit: Fit) {
        let mut counts = lock(&self.channel_workers);
        if fit.shrinks(counts.capacity(), counts.len()) {
            counts.shrink_to_fit();
        }
    }

    /// `POST /recover`: forget every channel's last id, so the next item of each channel is delivered whatever
    /// its prev-id says.
    pub fn recover(&self) {
        lock(&self.sequencer).reset_last_ids();
    }

    /// Release items whose predecessors did not arrive in time; called periodically by the control thread.
    pub fn expire_sequencer(&self, now: Instant) {
        let mut ready = Vec::new();
        lock(&self.sequencer).expire(now, &mut ready);
        self.fan_out(ready, now);
    }

    /// Every metric now, for a Prometheus scrape.
    pub fn metrics_snapshot(&self) -> Snapshot {
        let channels = lock(&self.channel_workers).len() as u64;
        self.stats.snapshot(channels)
    }

    /// Channels with a listener on some worker, for the bridge's resynchronisation.
    pub fn listening_channels(&self) -> Vec<String> {
        lock(&self.channel_workers).keys().cloned().collect()
    }

    /// A worker's first listener on a channel arrived, or its last one left.
    pub(super) fn channel_transition(&self, channel: &str, first: bool) {
        let mut counts = lock(&self.channel_workers);
        if first {
            let n = counts.entry(channel.to_string()).or_insert(0);
            *n += 1;
            if *n == 1 {
                lock(&self.sequencer).channel_active(channel);
                // Queued under the table lock, so the bridge sees a channel's changes in order.
                self.tell_bridge_channel(channel, true);
            }
        } else if let Some(n) = counts.get_mut(channel) {
            *n -= 1;
            if *n == 0 {
                counts.remove(channel);
                self.tell_bridge_channel(channel, false);
                drop(counts);
                let mut ready = Vec::new();
                lock(&self.sequencer).channel_inactive(channel, &mut ready);
                self.fan_out(ready, Instant::now());
            }
        }
    }

    fn tell_bridge_channel(&self, channel: &str, listening: bool) {
        let Some(bridge) = self.bridge.get() else {
            return;
        };
        let msg = BridgeMsg::Channel {
            channel: channel.to_string(),
            listening,
        };
        if bridge.push(msg).is_err() && !self.bridge_resync.swap(true, Ordering::AcqRel) {
            log::warn!(
                "zmq: bridge queue full; subscriptions will be re-synchronised from the channel table"
            );
        }
    }

    fn fan_out(&self, ready: Vec<Arc<Item>>, received: Instant) {
        if ready.is_empty() {
            return;
        }
        let count = ready.len() as u64;
        let items: Arc<[Arc<Item>]> = ready.into();
        let inboxes = self.inboxes.get().map(Vec::as_slice).unwrap_or_default();
        let tally = self
            .report_messages
            .load(Ordering::Relaxed)
            .then(|| Arc::new(Tally::new(Arc::clone(&items), inboxes.len())));
        for (i, inbox) in inboxes.iter().enumerate() {
            let batch = PublishBatch {
                items: Arc::clone(&items),
                received,
                tally: tally.clone(),
            };
            if inbox.push(WorkerMsg::Publish(batch)).is_err() {
                self.stats
                    .messages_dropped_inbox
                    .fetch_add(count, Ordering::Relaxed);
                log::error!("publish: worker {i} inbox is full; {count} items not delivered to its connections");
                if let Some(t) = &tally {
                    self.tally_done(t);
                }
            }
        }
    }

    /// One worker is done with a batch's tally; the last one hands it to the bridge.
    pub(super) fn tally_done(&self, tally: &Arc<Tally>) {
        if !tally.finish_one() {
            return;
        }
        if let Some(bridge) = self.bridge.get() {
            if bridge
                .push(BridgeMsg::Delivered(Arc::clone(tally)))
                .is_err()
            {
                self.stats.stats_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Lock a mutex, recovering the data if a panicking thread poisoned it (no invariant here spans a panic).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
