//! The bridge thread: its own `mio::Poll` waits on the ZeroMQ sockets' file descriptors and on a waker for its
//! inbox. ZeroMQ's descriptor only says "something may have changed", so after every wake-up, receive and
//! send the sockets are drained until `EAGAIN` and `ZMQ_EVENTS` is read again before sleeping.
//!
//! Queue policies: the inbox from the workers is bounded (`INBOX_CAP`); subscription changes that don't fit
//! trigger a full resynchronisation (never lost), stats events that don't fit are counted and logged
//! (`stats_dropped`). Each socket is read at most `READ_BUDGET` messages per loop, so no input starves the
//! others; the limit on inbound message size (`ZMQ_MAXMSGSIZE`) makes libzmq drop peers that send more.

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::command::{self, Call, Failure, RefreshOf};
use super::forward::{Change, Forwarder};
use crate::config::Settings;
use crate::logging::WarnLimit;
use crate::publish::{parse_zmq_frame, Item, Value, PUBLISH_FRAME_MAX};
use crate::reactor::{BridgeMsg, Inbox, RefreshTarget, Shared, WorkerMsg};
use crate::stats::{Flow, Input, Readings, Tracker, TrackerConfig, Transport};

/// Messages from the workers queued before senders are refused.
const INBOX_CAP: usize = 16_384;
/// Inbox messages handled per loop.
const INBOX_PER_LOOP: usize = 4_096;
/// Messages read from one socket per loop. Everything read in one turn goes to the workers as one batch,
/// and a worker writes each connection's share of a batch in one `send`: with 4,096 a flat-out PULL
/// publisher to 1,000 streams on distinct channels cost one `send` per ~5 items and 2.1 µs of proxy CPU
/// per item; with 16,384 one per ~40 items and 1.6 µs (bench/run-zmq.sh). A full turn is ~10 ms of work,
/// still short enough that no input waits noticeably behind another.
const READ_BUDGET: usize = 16_384;
/// Frames of one incoming message kept for its handler (the rest are counted and dropped).
const FRAMES_KEPT: usize = 16;
/// Largest command request accepted.
const COMMAND_MAX: i64 = PUBLISH_FRAME_MAX as i64;
/// Receive high-water mark of both publish inputs: Pushpin's for PULL. Pushpin leaves its SUB at libzmq's
/// 1,000, which caps what one turn can read from SUB at about 1,000 items while a publisher runs ahead;
/// those small batches meant one `send` per ~3 items per stream instead of ~20 (see `READ_BUDGET`). Past
/// the mark libzmq stops reading the TCP connection (the publisher's XPUB then queues, or drops at its own
/// send mark), so the larger mark only lets more wait here, as on PULL.
const INPUT_HWM: i32 = 101_000;
/// The longest the loop sleeps, so periodic work runs on time.
const TICK: Duration = Duration::from_millis(100);
/// How long a `refresh` of one connection waits for the workers' answers.
const REFRESH_WAIT: Duration = Duration::from_secs(5);
/// Distinct topics remembered for the stats socket's subscribers.
const STATS_TOPICS_MAX: usize = 1_024;
/// TCP keep-alive of a connecting SUB socket (spec 1.2): idle 30 s, 6 probes, 5 s apart.
const SUB_KEEPALIVE: (i32, i32, i32) = (30, 6, 5);

/// `report` fields per direction: header bytes, content bytes, WebSocket messages.
const REPORT_FLOWS: [(Flow, [&str; 3]); 4] = [
    (
        Flow::ClientReceived,
        [
            "client-header-bytes-received",
            "client-content-bytes-received",
            "client-messages-received",
        ],
    ),
    (
        Flow::ClientSent,
        [
            "client-header-bytes-sent",
            "client-content-bytes-sent",
            "client-messages-sent",
        ],
    ),
    (
        Flow::BackendReceived,
        [
            "server-header-bytes-received",
            "server-content-bytes-received",
            "server-messages-received",
        ],
    ),
    (
        Flow::BackendSent,
        [
            "server-header-bytes-sent",
            "server-content-bytes-sent",
            "server-messages-sent",
        ],
    ),
];

const WAKER: Token = Token(0);
const PULL: Token = Token(1);
const SUB: Token = Token(2);
const COMMAND: Token = Token(3);
const STATS: Token = Token(4);

/// The running bridge; `stop` ends the thread.
pub struct BridgeHandle {
    inbox: Arc<Inbox<BridgeMsg>>,
    thread: JoinHandle<()>,
}

impl BridgeHandle {
    pub fn stop(self) {
        // A full inbox drains within a loop or two; a thread that has already ended drains nothing.
        while self.inbox.push(BridgeMsg::Stop).is_err() && !self.thread.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.thread.join().is_err() {
            log::error!("zmq: the bridge thread panicked");
        }
    }
}

/// The endpoints as configured, for `get-zmq-uris` and log lines.
struct Endpoints {
    pull: Option<String>,
    sub: Vec<String>,
    sub_connect: bool,
    command: Option<String>,
    stats: Option<String>,
}

/// Create and bind every configured socket (so a busy address fails start-up) and start the thread. `None`
/// when no ZeroMQ endpoint is configured. Must run before the workers start: they read `shared.bridge`.
pub fn start(s: &Settings, shared: Arc<Shared>) -> Result<Option<BridgeHandle>, String> {
    let ep = Endpoints {
        pull: s.push_in_spec.clone(),
        sub: s.push_in_sub_specs.clone(),
        sub_connect: s.push_in_sub_connect,
        command: s.command_spec.clone(),
        stats: s.stats_spec.clone(),
    };
    if ep.pull.is_none() && ep.sub.is_empty() && ep.command.is_none() && ep.stats.is_none() {
        return Ok(None);
    }
    let ctx = zmq::Context::new();
    let mode = s.ipc_file_mode;
    let zerr = |what: &str, spec: &str, e: zmq::Error| format!("zmq: {what} {spec}: {e}");
    let pull = match &ep.pull {
        Some(spec) => {
            let sock = ctx.socket(zmq::PULL).map_err(|e| zerr("PULL", spec, e))?;
            sock.set_rcvhwm(INPUT_HWM)
                .map_err(|e| zerr("PULL", spec, e))?;
            limit_input(&sock).map_err(|e| zerr("PULL", spec, e))?;
            bind(&sock, spec, mode)
                .map_err(|e| format!("zmq: cannot bind push_in_spec {spec}: {e}"))?;
            log::info!("zmq: publish PULL bound at {spec}");
            Some(sock)
        }
        None => None,
    };
    let sub = if ep.sub.is_empty() {
        None
    } else {
        let sock = ctx.socket(zmq::SUB).map_err(|e| zerr("SUB", "", e))?;
        // Subscriptions go upstream as messages: never drop one.
        sock.set_sndhwm(0).map_err(|e| zerr("SUB", "", e))?;
        sock.set_rcvhwm(INPUT_HWM).map_err(|e| zerr("SUB", "", e))?;
        limit_input(&sock).map_err(|e| zerr("SUB", "", e))?;
        for spec in &ep.sub {
            if ep.sub_connect {
                let (idle, cnt, intvl) = SUB_KEEPALIVE;
                sock.set_tcp_keepalive(1)
                    .map_err(|e| zerr("SUB", spec, e))?;
                sock.set_tcp_keepalive_idle(idle)
                    .map_err(|e| zerr("SUB", spec, e))?;
                sock.set_tcp_keepalive_cnt(cnt)
                    .map_err(|e| zerr("SUB", spec, e))?;
                sock.set_tcp_keepalive_intvl(intvl)
                    .map_err(|e| zerr("SUB", spec, e))?;
                sock.connect(spec)
                    .map_err(|e| zerr("cannot connect push_in_sub_specs", spec, e))?;
                log::info!("zmq: publish SUB connecting to {spec}");
            } else {
                bind(&sock, spec, mode)
                    .map_err(|e| format!("zmq: cannot bind push_in_sub_specs {spec}: {e}"))?;
                log::info!("zmq: publish SUB bound at {spec}");
            }
        }
        Some(sock)
    };
    let command = match &ep.command {
        Some(spec) => {
            let sock = ctx
                .socket(zmq::ROUTER)
                .map_err(|e| zerr("ROUTER", spec, e))?;
            sock.set_maxmsgsize(COMMAND_MAX)
                .map_err(|e| zerr("ROUTER", spec, e))?;
            sock.set_linger(0).map_err(|e| zerr("ROUTER", spec, e))?;
            bind(&sock, spec, mode)
                .map_err(|e| format!("zmq: cannot bind command_spec {spec}: {e}"))?;
            log::info!("zmq: command socket bound at {spec}");
            Some(sock)
        }
        None => None,
    };
    let stats = match &ep.stats {
        Some(spec) => {
            // An XPUB is a PUB to its subscribers, and also tells which topics they want: events nobody
            // subscribed to are then not built at all (most deployments never read the stats socket).
            let sock = ctx.socket(zmq::XPUB).map_err(|e| zerr("XPUB", spec, e))?;
            sock.set_linger(0).map_err(|e| zerr("XPUB", spec, e))?;
            bind(&sock, spec, mode)
                .map_err(|e| format!("zmq: cannot bind stats_spec {spec}: {e}"))?;
            log::info!("zmq: stats socket (XPUB) bound at {spec}");
            Some(sock)
        }
        None => None,
    };

    let poll = Poll::new().map_err(|e| format!("zmq: poll: {e}"))?;
    let waker = Waker::new(poll.registry(), WAKER).map_err(|e| format!("zmq: waker: {e}"))?;
    for (sock, token) in [
        (&pull, PULL),
        (&sub, SUB),
        (&command, COMMAND),
        (&stats, STATS),
    ] {
        if let Some(sock) = sock {
            let fd: RawFd = sock.get_fd().map_err(|e| format!("zmq: socket fd: {e}"))?;
            poll.registry()
                .register(&mut SourceFd(&fd), token, Interest::READABLE)
                .map_err(|e| format!("zmq: registering a socket: {e}"))?;
        }
    }
    let inbox = Inbox::new(INBOX_CAP, waker);
    // Per-connection events cost the workers a little: only sent when something uses them.
    shared
        .report_connections
        .store(stats.is_some() || command.is_some(), Ordering::Relaxed);
    // Delivery tallies only once a stats subscriber wants `message` events (see `read_stats_subscribers`).
    shared.report_messages.store(false, Ordering::Relaxed);
    if shared.bridge.set(Arc::clone(&inbox)).is_err() {
        return Err("zmq: the bridge was started twice".into());
    }
    let now = Instant::now();
    let tracker = Tracker::new(
        TrackerConfig {
            from: shared.instance_id.clone(),
            format: s.stats_format,
            publish: stats.is_some(),
            conn_ttl: Duration::from_secs(s.stats_connection_ttl),
            conn_send: s.stats_connection_send,
            sub_ttl: Duration::from_secs(s.stats_subscription_ttl),
            linger: Duration::from_secs(s.subscription_linger),
            report_interval: Duration::from_secs(s.stats_report_interval),
            block_size: s.message_block_size,
        },
        now,
    );
    let mut tracker = tracker;
    if stats.is_some() {
        tracker.set_subscriptions(std::iter::empty());
    }
    let bridge = Bridge {
        _ctx: ctx,
        poll,
        inbox: Arc::clone(&inbox),
        shared,
        pull,
        sub,
        command,
        stats,
        endpoints: ep,
        forwarder: Forwarder::new(Duration::from_secs(s.subscription_linger)),
        tracker,
        refreshes: HashMap::new(),
        stats_topics: HashSet::new(),
        next_request: 1,
        complaints: Complaints::default(),
        busy: false,
        burst_end: crate::memory::BurstEnd::default(),
    };
    let thread = std::thread::Builder::new()
        .name("zmq-bridge".into())
        .spawn(move || bridge.run())
        .map_err(|e| format!("zmq: spawning the bridge thread: {e}"))?;
    Ok(Some(BridgeHandle { inbox, thread }))
}

/// Inputs refuse messages larger than a publish frame may be (libzmq disconnects such a peer).
fn limit_input(sock: &zmq::Socket) -> zmq::Result<()> {
    sock.set_maxmsgsize(PUBLISH_FRAME_MAX as i64)?;
    sock.set_linger(0)
}

/// Bind, creating the directory of an `ipc://` path first (the default stats socket lives in the rundir) and
/// giving the socket file `ipc_file_mode` afterwards.
fn bind(sock: &zmq::Socket, spec: &str, mode: Option<u32>) -> Result<(), String> {
    let path = spec.strip_prefix("ipc://").map(Path::new);
    if let Some(dir) = path.and_then(Path::parent) {
        if !dir.as_os_str().is_empty() {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    sock.bind(spec).map_err(|e| e.to_string())?;
    if let (Some(path), Some(mode)) = (path, mode) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("setting ipc_file_mode {mode:o} on {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A `refresh` of one connection waiting for every worker's answer.
struct PendingRefresh {
    envelope: Vec<Vec<u8>>,
    id: Option<Value>,
    remaining: usize,
    found: bool,
    deadline: Instant,
}

struct Bridge {
    // Dropped last: every socket must close before the context terminates.
    poll: Poll,
    inbox: Arc<Inbox<BridgeMsg>>,
    shared: Arc<Shared>,
    pull: Option<zmq::Socket>,
    sub: Option<zmq::Socket>,
    command: Option<zmq::Socket>,
    stats: Option<zmq::Socket>,
    endpoints: Endpoints,
    forwarder: Forwarder,
    tracker: Tracker,
    refreshes: HashMap<u64, PendingRefresh>,
    /// Topics the stats socket's subscribers hold (an XPUB reports each distinct one once).
    stats_topics: HashSet<Vec<u8>>,
    next_request: u64,
    complaints: Complaints,
    /// A socket had more than its budget: poll again without sleeping.
    busy: bool,
    /// When a burst of connections has ended, so this thread's allocator cache (their ids, events) is given back.
    burst_end: crate::memory::BurstEnd,
    _ctx: zmq::Context,
}

impl Bridge {
    fn run(mut self) {
        let mut events = Events::with_capacity(16);
        loop {
            let now = Instant::now();
            let timeout = if self.busy {
                Duration::ZERO
            } else {
                self.next_deadline(now)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("zmq: poll failed: {e}");
                    std::thread::sleep(TICK);
                }
            }
            self.busy = false;
            let now = Instant::now();
            if !self.handle_inbox(now) {
                break;
            }
            // Which descriptor fired says little with ZeroMQ: every input is read until it has nothing.
            self.read_input(Input::Pull);
            self.read_input(Input::Sub);
            self.read_commands(now);
            self.read_stats_subscribers();
            self.forward_subscriptions(now);
            self.run_stats(now);
            self.expire_refreshes(now);
            self.busy |= self.input_pending();
        }
        log::debug!("zmq: bridge stopped");
    }

    fn next_deadline(&self, now: Instant) -> Duration {
        let mut at = now + TICK;
        at = at.min(self.tracker.next_deadline());
        if let Some(d) = self.forwarder.next_deadline() {
            at = at.min(d);
        }
        at.saturating_duration_since(now)
    }

    /// Whether any input socket still has a message (`ZMQ_EVENTS` after the sends and receives above).
    fn input_pending(&self) -> bool {
        [&self.pull, &self.sub, &self.command, &self.stats]
            .into_iter()
            .flatten()
            .any(|s| {
                s.get_events()
                    .map(|ev| ev.contains(zmq::POLLIN))
                    .unwrap_or(false)
            })
    }

    /// Returns false when the bridge is to stop.
    fn handle_inbox(&mut self, now: Instant) -> bool {
        let mut msgs = Vec::new();
        if self.inbox.drain(INBOX_PER_LOOP, &mut msgs) {
            self.busy = true;
        }
        for msg in msgs {
            match msg {
                BridgeMsg::Stop => return false,
                BridgeMsg::Channel { channel, listening } => {
                    if let Some(change) = self.forwarder.listening(&channel, listening, now) {
                        self.apply(change);
                    }
                }
                BridgeMsg::Stats(events) => {
                    for ev in events {
                        self.tracker.apply(ev, now);
                    }
                }
                BridgeMsg::Delivered(tally) => self.tracker.delivered(&tally),
                BridgeMsg::Refreshed { request, found } => self.refresh_answer(request, found),
            }
        }
        true
    }

    fn forward_subscriptions(&mut self, now: Instant) {
        let mut changes = Vec::new();
        if self.shared.bridge_resync.swap(false, Ordering::AcqRel) {
            let listening: HashSet<String> = self.shared.listening_channels().into_iter().collect();
            log::info!(
                "zmq: re-synchronising subscriptions ({} channels with listeners)",
                listening.len()
            );
            self.forwarder.resync(&listening, now, &mut changes);
        }
        self.forwarder.expire(now, &mut changes);
        for c in changes {
            self.apply(c);
        }
    }

    fn apply(&mut self, change: Change) {
        let Some(sub) = &self.sub else {
            return;
        };
        let result = match &change {
            Change::Subscribe(ch) => sub.set_subscribe(ch.as_bytes()),
            Change::Unsubscribe(ch) => sub.set_unsubscribe(ch.as_bytes()),
        };
        match result {
            Ok(()) => log::debug!("zmq: {change:?}"),
            Err(e) => log::error!("zmq: {change:?} failed: {e}"),
        }
    }

    /// Read a publish input (PULL: one frame per item; SUB: channel, then payload) and publish what it held.
    fn read_input(&mut self, input: Input) {
        let (sock, parts) = match input {
            Input::Pull => (&self.pull, 1),
            Input::Sub => (&self.sub, 2),
            Input::Http | Input::Command => return,
        };
        let Some(sock) = sock else { return };
        let mut items = Vec::new();
        let more = drain(sock, |frames, count| {
            let parsed = match frames {
                [frame] if parts == 1 => parse_zmq_frame(frame, None),
                [channel, payload] if parts == 2 => match std::str::from_utf8(channel) {
                    Ok(channel) => parse_zmq_frame(payload, Some(channel)),
                    Err(_) => Err("channel is not UTF-8".to_owned()),
                },
                _ => Err(format!("message has {count} parts, not {parts}")),
            };
            match parsed {
                Ok(item) => items.push(item),
                Err(why) => self.complaints.bad(&self.shared, input, &why),
            }
        });
        self.busy |= more;
        self.publish(items, input);
    }

    /// Subscribe (`\x01topic`) and unsubscribe (`\x00topic`) messages from the stats socket's subscribers.
    fn read_stats_subscribers(&mut self) {
        let Some(sock) = &self.stats else { return };
        let mut changed = false;
        let topics = &mut self.stats_topics;
        let more = drain(sock, |frames, _| {
            let Some((&op, topic)) = frames.first().and_then(|f| f.split_first()) else {
                return;
            };
            changed = true;
            match op {
                // Past the cap a topic is remembered as the empty one: every event is built (safe, bounded).
                1 if topics.len() >= STATS_TOPICS_MAX => {
                    topics.insert(Vec::new());
                }
                1 => {
                    topics.insert(topic.to_vec());
                }
                0 => {
                    topics.remove(topic);
                }
                _ => {}
            }
        });
        self.busy |= more;
        if changed {
            self.tracker
                .set_subscriptions(self.stats_topics.iter().map(Vec::as_slice));
            let messages = self.tracker.wants("message");
            self.shared
                .report_messages
                .store(messages, Ordering::Relaxed);
            log::debug!(
                "zmq: stats subscribers hold {} topics; message events {}",
                self.stats_topics.len(),
                if messages { "on" } else { "off" }
            );
        }
    }

    fn publish(&self, items: Vec<Item>, input: Input) {
        if !items.is_empty() {
            log::debug!("zmq: {} items from {}", items.len(), input.as_str());
            self.shared.publish(items, input);
        }
    }

    fn read_commands(&mut self, now: Instant) {
        let Some(sock) = self.command.take() else {
            return;
        };
        let more = drain(&sock, |parts, count| {
            if count > parts.len() {
                // No client's envelope is that deep; without the whole envelope there is no answering.
                self.complaints.bad(
                    &self.shared,
                    Input::Command,
                    &format!("request of {count} frames dropped"),
                );
                return;
            }
            // ROUTER: routing frames (and REQ's empty delimiter), then the request.
            let mut frames: Vec<Vec<u8>> = parts.iter().map(|m| m.to_vec()).collect();
            let Some(body) = frames.pop() else { return };
            if frames.is_empty() {
                return; // nowhere to answer
            }
            if let Some(reply) = self.command(frames.clone(), &body, now) {
                frames.push(reply);
                if let Err(e) = sock.send_multipart(frames, zmq::DONTWAIT) {
                    log::warn!("zmq: command reply not sent: {e}");
                }
            }
        });
        self.command = Some(sock);
        self.busy |= more;
    }

    /// Carry out one request. `None` when the answer comes later (a refresh waiting for the workers).
    fn command(&mut self, envelope: Vec<Vec<u8>>, body: &[u8], now: Instant) -> Option<Vec<u8>> {
        let req = command::parse_request(body);
        let id = req.id.as_ref();
        let call = match req.call {
            Ok(call) => call,
            Err(f) => {
                if f.condition == "bad-request" {
                    self.complaints.bad(
                        &self.shared,
                        Input::Command,
                        &format!(
                            "{} request: {}",
                            if req.method.is_empty() {
                                "a"
                            } else {
                                &req.method
                            },
                            value_text(f.value.as_ref())
                        ),
                    );
                } else {
                    log::debug!("zmq: command {}: {}", req.method, f.condition);
                }
                return Some(command::failure(id, &f));
            }
        };
        log::debug!("zmq: command {}", req.method);
        let value = match call {
            Call::ConnCheck { ids } => Value::List(
                ids.into_iter()
                    .filter(|i| self.tracker.is_connected(i))
                    .map(|i| Value::Bytes(i.into_bytes()))
                    .collect(),
            ),
            Call::GetZmqUris => self.zmq_uris(),
            Call::Recover => {
                self.shared.recover();
                Value::Null
            }
            Call::Publish(items) => {
                self.shared.publish(items, Input::Command);
                Value::Null
            }
            Call::Refresh(RefreshOf::Channel(channel)) => {
                self.to_workers(|| WorkerMsg::Refresh(RefreshTarget::Channel(channel.clone())));
                Value::Null
            }
            Call::Refresh(RefreshOf::Connection(cid)) => {
                if !self.tracker.is_connected(&cid) {
                    return Some(command::failure(id, &not_found()));
                }
                let request = self.next_request;
                self.next_request += 1;
                let sent = self.to_workers(|| {
                    WorkerMsg::Refresh(RefreshTarget::Connection {
                        id: cid.clone(),
                        request,
                    })
                });
                if sent == 0 {
                    return Some(command::failure(id, &not_found()));
                }
                self.refreshes.insert(
                    request,
                    PendingRefresh {
                        envelope,
                        id: req.id.clone(),
                        remaining: sent,
                        found: false,
                        deadline: now + REFRESH_WAIT,
                    },
                );
                return None;
            }
        };
        Some(command::success(id, value))
    }

    /// Send a message to every worker; returns how many took it.
    fn to_workers(&self, msg: impl Fn() -> WorkerMsg) -> usize {
        let mut sent = 0;
        for (i, inbox) in self.shared.inboxes.get().into_iter().flatten().enumerate() {
            if inbox.push(msg()).is_ok() {
                sent += 1;
            } else {
                log::warn!("zmq: worker {i} inbox is full; a refresh did not reach it");
            }
        }
        sent
    }

    fn zmq_uris(&self) -> Value {
        let mut m = Vec::new();
        let mut put = |k: &str, v: &str| m.push((k.as_bytes().to_vec(), Value::Bytes(v.into())));
        if let Some(c) = &self.endpoints.command {
            put("command", c);
        }
        if let Some(p) = &self.endpoints.pull {
            put("publish-pull", p);
        }
        if !self.endpoints.sub_connect {
            if let Some(s) = self.endpoints.sub.first() {
                put("publish-sub", s);
            }
        }
        Value::Map(m)
    }

    fn refresh_answer(&mut self, request: u64, found: bool) {
        let Some(p) = self.refreshes.get_mut(&request) else {
            return;
        };
        p.found |= found;
        p.remaining = p.remaining.saturating_sub(1);
        if p.remaining == 0 || p.found {
            if let Some(p) = self.refreshes.remove(&request) {
                self.finish_refresh(p);
            }
        }
    }

    fn expire_refreshes(&mut self, now: Instant) {
        if self.refreshes.is_empty() {
            return;
        }
        let due: Vec<u64> = self
            .refreshes
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some(p) = self.refreshes.remove(&k) {
                self.finish_refresh(p);
            }
        }
    }

    fn finish_refresh(&mut self, p: PendingRefresh) {
        let body = if p.found {
            command::success(p.id.as_ref(), Value::Null)
        } else {
            command::failure(p.id.as_ref(), &not_found())
        };
        let Some(sock) = &self.command else { return };
        let mut frames = p.envelope;
        frames.push(body);
        if let Err(e) = sock.send_multipart(frames, zmq::DONTWAIT) {
            log::warn!("zmq: command reply not sent: {e}");
        }
    }

    fn run_stats(&mut self, now: Instant) {
        let m = &self.shared.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let mut counters = vec![
            ("received", m.received_total()),
            ("sent", m.delivered_total()),
            (
                "http-response-sent",
                load(&m.messages_delivered[Transport::HttpResponse.index()]),
            ),
        ];
        // Pushpin's byte and message counters: client side, then the backend ("server") side.
        for (flow, [header_key, content_key, messages_key]) in REPORT_FLOWS {
            let i = flow.index();
            let header = load(&m.header_bytes[i]);
            counters.push((header_key, header));
            counters.push((content_key, load(&m.bytes[i]).saturating_sub(header)));
            counters.push((messages_key, load(&m.ws_messages[i])));
        }
        let snap = Readings {
            conns: self.shared.conns.load(Ordering::Relaxed),
            requests: load(&m.requests),
            counters,
        };
        self.tracker.tick(now, &snap);
        if self.burst_end.ended(self.tracker.connections()) {
            self.tracker.shrink_tables(crate::memory::Fit::Exact);
            self.refreshes.shrink_to_fit();
            self.stats_topics.shrink_to_fit();
            crate::memory::release_thread_cache();
        }
        let frames = self.tracker.take_frames();
        let Some(sock) = &self.stats else { return };
        for f in frames {
            if let Err(e) = sock.send(f, zmq::DONTWAIT) {
                self.shared
                    .stats
                    .stats_dropped
                    .fetch_add(1, Ordering::Relaxed);
                log::debug!("zmq: stats event not sent: {e}");
            }
        }
        if self.tracker.dropped > 0 {
            let n = std::mem::take(&mut self.tracker.dropped);
            self.shared
                .stats
                .stats_dropped
                .fetch_add(n, Ordering::Relaxed);
            log::warn!("stats: {n} events dropped (stats queue full)");
        }
    }
}

fn not_found() -> Failure {
    Failure {
        condition: "item-not-found",
        value: None,
    }
}

fn value_text(v: Option<&Value>) -> String {
    v.and_then(Value::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// Receive up to `READ_BUDGET` messages, each handed over as its frames (at most `FRAMES_KEPT`) and its
/// whole frame count. Returns whether the budget ran out with messages left.
///
/// Frames land in reused `zmq::Message`s, so a message costs no allocation or copy of ours before the
/// handler reads it in place. Frames past `FRAMES_KEPT` (no input expects more than a few; ROUTER
/// envelopes a handful) are received and discarded, so a hostile many-part message costs no memory.
fn drain(sock: &zmq::Socket, mut handle: impl FnMut(&[zmq::Message], usize)) -> bool {
    let mut frames: Vec<zmq::Message> = Vec::new();
    let mut extra = zmq::Message::new();
    for _ in 0..READ_BUDGET {
        let mut count = 0;
        loop {
            if frames.len() == count && count < FRAMES_KEPT {
                frames.push(zmq::Message::new());
            }
            let slot = frames.get_mut(count).unwrap_or(&mut extra);
            match sock.recv(slot, zmq::DONTWAIT) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN) if count == 0 => return false,
                Err(zmq::Error::EINTR) => continue,
                Err(e) => {
                    // A message's later frames are already queued when its first arrives, so this is
                    // the socket failing, not a partial message.
                    log::error!("zmq: receive failed: {e}");
                    return false;
                }
            }
            count += 1;
            if !slot.get_more() {
                break;
            }
        }
        handle(&frames[..count.min(FRAMES_KEPT)], count);
    }
    true
}

/// Bad input is logged with its reason and counted, but a flood of it writes at most one line a second per
/// input (with how many more there were).
#[derive(Default)]
struct Complaints {
    limits: [WarnLimit; 4],
    suppressed: [u64; 4],
}

impl Complaints {
    fn bad(&mut self, shared: &Shared, input: Input, why: &str) {
        shared.stats.invalid(input);
        let i = input.index();
        if !self.limits[i].allow(Instant::now()) {
            self.suppressed[i] += 1;
            return;
        }
        let more = std::mem::take(&mut self.suppressed[i]);
        if more > 0 {
            log::warn!(
                "zmq: {}: dropped a bad message: {why} ({more} more since the last report)",
                input.as_str()
            );
        } else {
            log::warn!("zmq: {}: dropped a bad message: {why}", input.as_str());
        }
    }
}
