//! One worker thread: a `mio::Poll`, a fixed-capacity slab of connections, a timer wheel, a backend pool and an
//! inbox for messages from other threads.
//!
//! `run()` is a short list of phases: timers → accepted sockets → inbox → work queue → poll → dispatch. Socket
//! events only set cached readiness flags and queue the connection; the connection's session does the work when
//! the queue is run, so a connection is processed at most once per loop however many events it had.
//!
//! Capacity policy: the number of client connections is capped across all workers by `client_maxconn` (a shared
//! atomic). At the cap a worker stops accepting and leaves new connections in the kernel's backlog; it resumes
//! as soon as a connection closes.

use crate::memory::Fit;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll};
use slab::Slab;

use super::inbox::Inbox;
use super::pool::{BackendPool, Health};
use super::report::{Announced, Reporter};
use super::shared::{BridgeMsg, PublishBatch, Shared};
use super::socket::CountedStream;
use super::timer::{TimerKey, TimerWheel};
use super::token::{self, Side, TokenKind};
use crate::control::{self, ControlSession};
use crate::grip::{ConnRef, RateLimiter, Subscriptions, Transition};
use crate::logging::WarnLimit;
use crate::proxy::{Env, Router, Session};
use crate::publish::Item;
use crate::stats::{ConnType, IoCounters, LocalStats, Transport};

/// Poll events taken per `poll` call.
const EVENTS_MAX: usize = 1024;
/// New connections accepted per listener per loop, so a connection storm can't starve existing connections.
const ACCEPT_PER_LOOP_MAX: usize = 100;
/// Inbox messages handled per loop.
const INBOX_PER_LOOP_MAX: usize = 256;
/// Upper bound on the poll timeout, so periodic chores run even when nothing happens.
const POLL_TIMEOUT_MAX: Duration = Duration::from_millis(100);
/// Deliveries that may wait for `message_rate` when `message_hwm` is not set (all workers together).
const THROTTLE_WAITING_MAX: u64 = 1_000_000;
/// A channel's sessions are updated this long after its first subscriber arrives (spec 4.10).
const FIRST_SUBSCRIPTION_UPDATE_DELAY: Duration = Duration::from_secs(1);
/// Session updates per `UPDATE_TICK`, so a burst of new channels can't turn into a burst of backend requests.
const UPDATES_PER_TICK: usize = 100;
const UPDATE_TICK: Duration = Duration::from_millis(100);
/// How often deliveries held back by `message_rate` are let out.
const THROTTLE_TICK: Duration = Duration::from_millis(10);
/// How often idle pooled backend connections are swept.
const POOL_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// After an accept error such as EMFILE, wait this long before accepting again instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Calls to a session per work item, to catch a session that keeps asking for the same thing.
const SESSION_CALLS_MAX: usize = 64;
/// Consecutive failing `poll` calls before the worker gives up.
/// Zero-timeout polls a worker that just had events tries before it sleeps (see `poll_events`).
const SPIN_POLLS: usize = 8;
const POLL_ERRORS_MAX: usize = 100;

/// Messages other threads send to a worker.
pub enum WorkerMsg {
    /// A new route table (routes file reloaded, or addresses re-resolved).
    Router(Arc<Router>),
    /// Stop accepting; finish in-flight requests within `grace`, then exit.
    Shutdown { grace: Duration },
    /// Published items, parsed once and shared by every worker.
    Publish(PublishBatch),
    /// The command socket's `refresh`: WebSocket-over-HTTP connections ask their backend now.
    Refresh(RefreshTarget),
}

/// Which connections a `refresh` command is for.
pub enum RefreshTarget {
    /// Every WebSocket session listening on the channel.
    Channel(String),
    /// The WebSocket connection with this id; every worker answers the bridge with `Refreshed { request }`.
    Connection { id: String, request: u64 },
}

pub struct WorkerSetup {
    pub id: usize,
    pub poll: Poll,
    pub inbox: Arc<Inbox<WorkerMsg>>,
    /// Client listeners, and the control API and metrics listeners (on one worker only).
    pub listeners: Vec<(TcpListener, ListenerKind)>,
    pub router: Arc<Router>,
    pub shared: Arc<Shared>,
    /// How many workers share the listeners (for splitting `message_rate` and `message_hwm`).
    pub workers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Client,
    Control,
    /// `prometheus_port`: every request gets the metrics exposition.
    Metrics,
}

// Proxy sessions are nearly every connection, so they stay inline in the slab; the rare control and metrics
// connections are boxed to keep the slab entry no bigger than a proxy session needs.
#[allow(clippy::large_enum_variant)]
enum ConnKind {
    Proxy(Session<CountedStream>),
    Control(Box<ControlSession<TcpStream>>),
    /// A Prometheus scrape: the control API's one-request HTTP handling, answered with the exposition.
    Metrics(Box<ControlSession<TcpStream>>),
}

struct Conn {
    generation: u32,
    kind: ConnKind,
    /// Channels this connection listens on, and how (mirrors the channel index, for clean-up on close).
    channels: Vec<(String, Transport)>,
    /// The connection's number (log lines, stats ids).
    id: u64,
    /// How the connection was announced to stats, if it was.
    reported: Option<Announced>,
    /// The backend slot of the backend socket the session holds, if any.
    backend_slot: Option<usize>,
    timer: Option<(TimerKey, Instant)>,
    queued: bool,
    /// How the connection counts in the `connections` gauge (`None`: not a client connection).
    counted_as: Option<ConnType>,
    /// How the connection counts in the held-connections gauge, if it does.
    held: Option<Transport>,
}

struct Listener {
    sock: TcpListener,
    kind: ListenerKind,
    /// More connections may be waiting (the accept budget ran out): try again next loop.
    pending: bool,
}

pub struct Worker {
    id: usize,
    poll: Poll,
    events: Events,
    inbox: Arc<Inbox<WorkerMsg>>,
    inbox_pending: bool,
    listeners: Vec<Listener>,
    accept_paused: bool,
    accept_resume_at: Option<Instant>,
    accepted: Vec<(TcpStream, SocketAddr, ListenerKind)>,
    conns: Slab<Conn>,
    /// Most connections this worker may hold (its share of the slab token space and of `client_maxconn`).
    conn_cap: usize,
    next_generation: u32,
    timers: TimerWheel,
    work: VecDeque<usize>,
    pool: BackendPool,
    next_pool_sweep: Instant,
    router: Arc<Router>,
    shared: Arc<Shared>,
    drain_deadline: Option<Instant>,
    poll_errors: usize,
    subs: Subscriptions,
    /// Every backend socket this worker has open, in a session or in the pool. Its poll token names the slot,
    /// so a pooled socket stays registered while it moves between sessions.
    backend_slots: Slab<BackendSlot>,
    next_backend_generation: u32,
    /// Channels that got their first subscriber on this worker, and when to update their sessions.
    first_sub_updates: VecDeque<(Instant, String)>,
    /// Channels updated within `subscription_linger`, which don't get another first-subscription update.
    recently_updated: HashMap<String, Instant>,
    /// Session updates left in the current `UPDATE_TICK` (Pushpin rate-limits them too).
    update_budget: usize,
    next_update_refill: Instant,
    /// Only when `message_rate` is set: this worker's share of the rate, and deliveries waiting for it.
    throttle: Option<Throttle>,
    /// Connection and subscription events for the stats socket (and `conncheck`), when the bridge runs.
    reporter: Reporter,
    /// Bytes through this worker's client and backend sockets, and counts and gauge changes from its
    /// connections: both moved into the shared metrics once per loop.
    io: Arc<IoCounters>,
    local: LocalStats,
    /// When a burst of this worker's connections has ended, so its allocator cache is given back.
    burst_end: crate::memory::BurstEnd,
}

/// A backend socket's registration: who owns it now.
struct BackendSlot {
    generation: u32,
    /// The session holding the socket (slab key, generation), or `None` while it idles in the pool.
    owner: Option<(usize, u32)>,
    /// The backend closed the socket (or it failed) while pooled: don't reuse it.
    dead: bool,
    /// A readable edge arrived while pooled. Often it is late news of bytes the session already read, so the
    /// socket is peeked before reuse rather than thrown away.
    suspect: bool,
}

/// Deliveries held back by `message_rate`, bounded by this worker's share of `message_hwm`.
struct Throttle {
    limiter: RateLimiter,
    waiting: VecDeque<(ConnRef, Arc<Item>)>,
    hwm: usize,
    warn_limit: WarnLimit,
}

impl Conn {
    /// How the connection listens for published messages right now, if it does.
    fn listening_as(&self) -> Option<Transport> {
        match &self.kind {
            ConnKind::Proxy(session) => session.listening_as(),
            ConnKind::Control(_) | ConnKind::Metrics(_) => None,
        }
    }
}

impl Worker {
    pub fn new(setup: WorkerSetup) -> io::Result<Worker> {
        let now = Instant::now();
        let capacity = setup.shared.max_conns.clamp(1, token::CONN_KEY_MAX);
        let mut listeners = Vec::new();
        for (i, (mut sock, kind)) in setup.listeners.into_iter().enumerate() {
            setup
                .poll
                .registry()
                .register(&mut sock, token::listener(i), Interest::READABLE)?;
            listeners.push(Listener {
                sock,
                kind,
                pending: true,
            });
        }
        let throttle = setup.shared.message_rate.map(|rate| {
            let workers = setup.workers.max(1) as f64;
            // Without message_hwm Pushpin queues without bound; holdfast caps the wait queue anyway.
            let hwm = setup.shared.message_hwm.unwrap_or(THROTTLE_WAITING_MAX)
                / setup.workers.max(1) as u64;
            Throttle {
                limiter: RateLimiter::new(rate as f64 / workers, now),
                waiting: VecDeque::new(),
                hwm: hwm.max(1).min(usize::MAX as u64) as usize,
                warn_limit: WarnLimit::default(),
            }
        });
        let reporting = setup.shared.report_connections.load(Ordering::Relaxed);
        Ok(Worker {
            id: setup.id,
            poll: setup.poll,
            events: Events::with_capacity(EVENTS_MAX),
            inbox: setup.inbox,
            inbox_pending: true,
            listeners,
            accept_paused: false,
            accept_resume_at: None,
            accepted: Vec::new(),
            // Grown on demand and shrunk when idle (see `chores`), so memory follows the load back down.
            conns: Slab::new(),
            conn_cap: capacity,
            next_generation: 0,
            // One timer per connection at most.
            timers: TimerWheel::new(capacity, now),
            work: VecDeque::new(),
            pool: BackendPool::new(setup.shared.pool_max_idle, setup.shared.pool_idle_timeout),
            next_pool_sweep: now + POOL_SWEEP_EVERY,
            router: setup.router,
            shared: setup.shared,
            drain_deadline: None,
            poll_errors: 0,
            subs: Subscriptions::new(),
            first_sub_updates: VecDeque::new(),
            recently_updated: HashMap::new(),
            update_budget: UPDATES_PER_TICK,
            next_update_refill: now + UPDATE_TICK,
            backend_slots: Slab::new(),
            next_backend_generation: 0,
            throttle,
            reporter: Reporter::new(reporting),
            io: Arc::new(IoCounters::default()),
            local: LocalStats::default(),
            burst_end: crate::memory::BurstEnd::default(),
        })
    }

    pub fn run(mut self) {
        log::debug!("worker {}: running", self.id);
        loop {
            let now = Instant::now();
            self.expire_timers(now);
            self.accept_connections(now);
            self.create_sessions(now);
            self.handle_inbox(now);
            self.run_work_queue(now);
            self.chores(now);
            self.reporter.flush(&self.shared, now);
            self.local.flush(&self.shared.stats, &self.io);
            if self.finished(now) {
                break;
            }
            if let Err(e) = self.poll_events() {
                log::error!(
                    "worker {}: poll failed {} times in a row, last: {e}; exiting",
                    self.id,
                    self.poll_errors
                );
                break;
            }
            self.dispatch_events();
        }
        let open = self.conns.len();
        if open > 0 {
            log::warn!(
                "worker {}: closing {open} connections still open at the end of the grace period",
                self.id
            );
            for (_, _) in self.conns.iter() {
                self.shared.conns.fetch_sub(1, Ordering::AcqRel);
            }
        }
        log::debug!("worker {}: stopped", self.id);
    }

    // ---- phases -----------------------------------------------------------------------------------------------

    fn expire_timers(&mut self, now: Instant) {
        self.timers.update(now);
        while let Some((_, user)) = self.timers.take_expired() {
            let key = (user & 0xffff_ffff) as usize;
            let generation = (user >> 32) as u32;
            if let Some(conn) = self.conns.get_mut(key) {
                if conn.generation == generation {
                    conn.timer = None;
                    queue(&mut self.work, key, conn);
                }
            }
        }
    }

    fn accept_connections(&mut self, now: Instant) {
        if self.drain_deadline.is_some() {
            return;
        }
        if let Some(at) = self.accept_resume_at {
            if now < at {
                return;
            }
            self.accept_resume_at = None;
            for l in &mut self.listeners {
                l.pending = true;
            }
        }
        for idx in 0..self.listeners.len() {
            if !self.listeners[idx].pending {
                continue;
            }
            for _ in 0..ACCEPT_PER_LOOP_MAX {
                if !self.reserve_slot() {
                    if !self.accept_paused {
                        log::warn!(
                            "worker {}: connection limit reached ({} of client_maxconn {}); not accepting",
                            self.id,
                            self.shared.conns.load(Ordering::Acquire),
                            self.shared.max_conns
                        );
                    }
                    self.accept_paused = true;
                    return;
                }
                match self.listeners[idx].sock.accept() {
                    Ok((sock, peer)) => self.accepted.push((sock, peer, self.listeners[idx].kind)),
                    Err(e) => {
                        self.shared.conns.fetch_sub(1, Ordering::AcqRel);
                        if e.kind() == io::ErrorKind::WouldBlock {
                            self.listeners[idx].pending = false;
                        } else if e.kind() != io::ErrorKind::Interrupted
                            && e.kind() != io::ErrorKind::ConnectionAborted
                        {
                            log::error!(
                                "worker {}: accept failed: {e}; pausing accepts briefly",
                                self.id
                            );
                            self.accept_resume_at = Some(now + ACCEPT_BACKOFF);
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Count a connection against `client_maxconn` and this worker's slab before accepting it.
    fn reserve_slot(&mut self) -> bool {
        if self.conns.len() + self.accepted.len() >= self.conn_cap {
            return false;
        }
        let prev = self.shared.conns.fetch_add(1, Ordering::AcqRel);
        if prev >= self.shared.max_conns {
            self.shared.conns.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Sessions are created after the event batch, so a slot freed during the batch is never reused while events
    /// for its previous occupant may still be pending in the same batch.
    fn create_sessions(&mut self, now: Instant) {
        for (mut sock, peer, kind) in std::mem::take(&mut self.accepted) {
            let _ = sock.set_nodelay(true);
            self.burst_end.note(self.conns.len() + 1);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            self.next_generation = self.next_generation.wrapping_add(1);
            let generation = self.next_generation;
            let tok = token::conn(key, generation, Side::Client);
            if let Err(e) = self.poll.registry().register(
                &mut sock,
                tok,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::error!(
                    "worker {}: registering a client socket failed: {e}",
                    self.id
                );
                self.shared.conns.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            let id = self.shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
            log::debug!("conn {id}: accepted from {peer} on worker {}", self.id);
            let kind = match kind {
                ListenerKind::Client => {
                    let sock = CountedStream::client(sock, Arc::clone(&self.io));
                    self.local.connection(ConnType::Http, 1);
                    ConnKind::Proxy(Session::new(sock, peer, false, &self.shared.cfg, now, id))
                }
                ListenerKind::Control => ConnKind::Control(Box::new(ControlSession::new(
                    sock,
                    self.shared.control_limits,
                    now,
                ))),
                ListenerKind::Metrics => ConnKind::Metrics(Box::new(ControlSession::plain(
                    sock,
                    control::METRICS_LIMITS,
                    now,
                ))),
            };
            let counted_as = match kind {
                ConnKind::Proxy(_) => Some(ConnType::Http),
                _ => None,
            };
            let reported = match kind {
                ConnKind::Proxy(_) => {
                    let name = conn_name(&self.shared.instance_id, id, None);
                    self.reporter.announce(name, false, peer.ip(), false)
                }
                ConnKind::Control(_) | ConnKind::Metrics(_) => None,
            };
            entry.insert(Conn {
                generation,
                kind,
                channels: Vec::new(),
                id,
                reported,
                backend_slot: None,
                timer: None,
                queued: false,
                counted_as,
                held: None,
            });
            let conn = &mut self.conns[key];
            queue(&mut self.work, key, conn);
        }
    }

    fn handle_inbox(&mut self, now: Instant) {
        if !self.inbox_pending {
            return;
        }
        let mut msgs = Vec::new();
        self.inbox_pending = self.inbox.drain(INBOX_PER_LOOP_MAX, &mut msgs);
        // Consecutive publishes are delivered as one batch (see `deliver`).
        let mut batches: Vec<PublishBatch> = Vec::new();
        for msg in msgs {
            if let WorkerMsg::Publish(batch) = msg {
                batches.push(batch);
                continue;
            }
            if !batches.is_empty() {
                self.deliver_batches(&mut batches, now);
            }
            match msg {
                WorkerMsg::Router(router) => {
                    log::debug!(
                        "worker {}: new route table ({} routes)",
                        self.id,
                        router.table().len()
                    );
                    self.router = router;
                }
                WorkerMsg::Shutdown { grace } => self.begin_shutdown(now, grace),
                WorkerMsg::Refresh(target) => self.refresh(target),
                WorkerMsg::Publish(_) => {}
            }
        }
        if !batches.is_empty() {
            self.deliver_batches(&mut batches, now);
        }
    }

    /// Deliver publish batches in order, then add this worker's receivers to their tallies. Connections are
    /// written only after the whole run (see `run_work_queue`), so a connection's items from several
    /// batches still leave in one write. The items are read in place: cloning each `Arc` here would bump
    /// counters that every worker shares, once per item per worker.
    fn deliver_batches(&mut self, batches: &mut Vec<PublishBatch>, now: Instant) {
        let mut counts = Vec::new();
        for batch in batches.drain(..) {
            counts.clear();
            counts.resize(batch.items.len(), [0u32; 3]);
            self.deliver(&batch.items, &mut counts);
            if let Some(tally) = &batch.tally {
                for (i, c) in counts.iter().enumerate() {
                    for t in Transport::ALL {
                        tally.add(i, t, c[t.index()]);
                    }
                }
                self.shared.tally_done(tally);
            }
            let deliveries: u64 = counts.iter().flatten().map(|&c| c as u64).sum();
            self.shared
                .stats
                .latency
                .observe(now.saturating_duration_since(batch.received), deliveries);
        }
    }

    /// Hand each item to this worker's subscribers of its channel and queue them for writing. One connection
    /// receiving several items in a batch writes them in one go when its turn comes. `counts[i]` gets item
    /// `i`'s receivers by transport.
    fn deliver(&mut self, items: &[Arc<Item>], counts: &mut [[u32; 3]]) {
        let now = Instant::now();
        if let Some(t) = &mut self.throttle {
            t.limiter.refill(now);
        }
        let mut delivered = [0u64; 3];
        // Each run of consecutive items on one channel goes subscriber by subscriber, every item of the
        // run to one connection before the next, so a connection's state is visited once per run rather
        // than once per item. Items on different channels keep their publish order.
        let mut start = 0;
        while start < items.len() {
            let channel = items[start].channel.as_str();
            let run_len = items[start..]
                .iter()
                .take_while(|i| i.channel == channel)
                .count();
            let run = &items[start..start + run_len];
            let run_counts = &mut counts[start..start + run_len];
            start += run_len;
            let throttled = match &mut self.throttle {
                None => false,
                // With `message_rate` set, a run goes out at once only when nothing waits ahead of it and
                // the limiter covers every one of its deliveries; otherwise they all queue, in publish
                // order, for `run_throttle`.
                Some(t) => {
                    let n = run_len.saturating_mul(self.subs.members_of(channel));
                    if !t.waiting.is_empty() || !t.limiter.try_take_n(n) {
                        self.queue_throttled(run, run_counts, now);
                        continue;
                    }
                    true
                }
            };
            let subs = &self.subs;
            for member in subs.members(channel) {
                // Counted as a receiver at fan-out when rate-limited, as Pushpin counts (and as queued
                // deliveries are counted); otherwise counted when the connection took the item.
                let listening = if throttled {
                    listening_as(&self.conns, member)
                } else {
                    None
                };
                for (item, count) in run.iter().zip(run_counts.iter_mut()) {
                    let took = deliver_to(&mut self.conns, &mut self.work, subs, member, item);
                    if let Some(tr) = took {
                        delivered[tr.index()] += 1;
                    }
                    if let Some(tr) = if throttled { listening } else { took } {
                        count[tr.index()] += 1;
                    }
                }
            }
        }
        for t in Transport::ALL {
            self.shared.stats.delivered(t, delivered[t.index()]);
        }
        self.run_throttle(now);
    }

    /// Queue a run's deliveries for the rate limiter, item by item, dropping past `message_hwm`.
    fn queue_throttled(&mut self, run: &[Arc<Item>], counts: &mut [[u32; 3]], now: Instant) {
        let Some(t) = &mut self.throttle else { return };
        for (item, count) in run.iter().zip(counts.iter_mut()) {
            for member in self.subs.members(&item.channel) {
                if t.waiting.len() >= t.hwm {
                    self.shared
                        .stats
                        .messages_dropped_hwm
                        .fetch_add(1, Ordering::Relaxed);
                    if t.warn_limit.allow(now) {
                        log::warn!(
                            "worker {}: exceeded publish hwm ({} deliveries waiting); dropping",
                            self.id,
                            t.hwm
                        );
                    }
                    continue;
                }
                // Counted as a receiver when queued for the rate limiter, as Pushpin counts at fan-out.
                if let Some(tr) = listening_as(&self.conns, member) {
                    count[tr.index()] += 1;
                }
                t.waiting.push_back((member, Arc::clone(item)));
            }
        }
    }

    /// Deliver what `message_rate` allows now.
    fn run_throttle(&mut self, now: Instant) {
        let Some(t) = &mut self.throttle else { return };
        t.limiter.refill(now);
        let mut by_transport = [0u64; 3];
        while !t.waiting.is_empty() && t.limiter.try_take() {
            let Some((member, item)) = t.waiting.pop_front() else {
                break;
            };
            if let Some(tr) = deliver_to(&mut self.conns, &mut self.work, &self.subs, member, &item)
            {
                by_transport[tr.index()] += 1;
            }
        }
        for tr in Transport::ALL {
            self.shared.stats.delivered(tr, by_transport[tr.index()]);
        }
    }

    /// The command socket's `refresh`: WebSocket-over-HTTP connections of a channel, or one by id.
    fn refresh(&mut self, target: RefreshTarget) {
        match target {
            RefreshTarget::Channel(channel) => {
                let members: Vec<ConnRef> = self.subs.members(&channel).collect();
                for member in members {
                    let Some(conn) = self.conns.get_mut(member.key) else {
                        continue;
                    };
                    if conn.generation != member.generation {
                        continue;
                    }
                    if let ConnKind::Proxy(session) = &mut conn.kind {
                        if session.refresh() {
                            queue(&mut self.work, member.key, conn);
                        }
                    }
                }
            }
            RefreshTarget::Connection { id, request } => {
                let mut found = false;
                for (key, conn) in self.conns.iter_mut() {
                    let ConnKind::Proxy(session) = &mut conn.kind else {
                        continue;
                    };
                    if session.websocket_id() == Some(Some(id.as_str())) {
                        found = session.refresh();
                        if found {
                            queue(&mut self.work, key, conn);
                        }
                        break;
                    }
                }
                if let Some(bridge) = self.shared.bridge.get() {
                    if bridge
                        .push(BridgeMsg::Refreshed { request, found })
                        .is_err()
                    {
                        log::warn!("zmq: bridge queue full; a refresh answer was lost (the command times out)");
                    }
                }
            }
        }
    }

    /// Update the sessions of channels whose first subscriber arrived a second ago, within the rate budget.
    fn run_first_subscription_updates(&mut self, now: Instant) {
        if now >= self.next_update_refill {
            self.update_budget = UPDATES_PER_TICK;
            self.next_update_refill = now + UPDATE_TICK;
        }
        while self.update_budget > 0 {
            match self.first_sub_updates.front() {
                Some((at, _)) if *at <= now => {}
                _ => break,
            }
            let Some((_, channel)) = self.first_sub_updates.pop_front() else {
                break;
            };
            let members: Vec<ConnRef> = self.subs.members(&channel).collect();
            for member in members {
                let Some(conn) = self.conns.get_mut(member.key) else {
                    continue;
                };
                if conn.generation != member.generation {
                    continue;
                }
                let ConnKind::Proxy(session) = &mut conn.kind else {
                    continue;
                };
                if session.update(now) {
                    self.update_budget = self.update_budget.saturating_sub(1);
                    queue(&mut self.work, member.key, conn);
                }
            }
        }
    }

    fn begin_shutdown(&mut self, now: Instant, grace: Duration) {
        if self.drain_deadline.is_some() {
            return;
        }
        log::debug!(
            "worker {}: draining {} connections",
            self.id,
            self.conns.len()
        );
        self.drain_deadline = Some(now + grace);
        for l in &mut self.listeners {
            let _ = self.poll.registry().deregister(&mut l.sock);
        }
        self.listeners.clear();
        for (key, conn) in self.conns.iter_mut() {
            if let ConnKind::Proxy(session) = &mut conn.kind {
                session.begin_drain();
            }
            queue(&mut self.work, key, conn);
        }
    }

    fn run_work_queue(&mut self, now: Instant) {
        // Only what is queued now; work queued while running waits for the next loop (fairness).
        for _ in 0..self.work.len() {
            let Some(key) = self.work.pop_front() else {
                break;
            };
            if let Some(conn) = self.conns.get_mut(key) {
                conn.queued = false;
                self.run_session(key, now);
            }
        }
    }

    fn chores(&mut self, now: Instant) {
        if self
            .throttle
            .as_ref()
            .is_some_and(|t| !t.waiting.is_empty())
        {
            self.run_throttle(now);
        }
        self.run_first_subscription_updates(now);
        if now >= self.next_pool_sweep {
            let mut freed = Vec::new();
            let slots = &self.backend_slots;
            self.pool
                .sweep(now, |s| slots.get(s).is_none_or(|b| b.dead), &mut freed);
            for slot in freed {
                self.free_backend_slot(slot);
            }
            crate::buf::trim_pool();
            let linger = self.shared.subscription_linger;
            self.recently_updated
                .retain(|_, at| now.saturating_duration_since(*at) < linger);
            self.shrink_idle_memory();
            self.next_pool_sweep = now + POOL_SWEEP_EVERY;
        }
        if self.accept_paused && self.shared.conns.load(Ordering::Acquire) < self.shared.max_conns {
            self.accept_paused = false;
            for l in &mut self.listeners {
                l.pending = true;
            }
        }
    }

    /// Give memory back after a burst: tables that are mostly empty are shrunk (a slab only down to its
    /// highest key in use, which is everything once the connections are gone).
    fn shrink_idle_memory(&mut self) {
        if self.conns.capacity() > 2 * self.conns.len() + 64 {
            self.conns.shrink_to_fit();
        }
        if self.backend_slots.capacity() > 2 * self.backend_slots.len() + 64 {
            self.backend_slots.shrink_to_fit();
        }
        self.timers.shrink_if_empty();
        if self.work.capacity() > 4 * self.work.len() + 1024 {
            self.work.shrink_to_fit();
        }
        let fit = if self.burst_end.ended(self.conns.len()) {
            Fit::Exact
        } else {
            Fit::Loose
        };
        self.subs.shrink(fit);
        self.shared.shrink_tables(fit);
        if fit == Fit::Exact {
            self.recently_updated.shrink_to_fit();
            self.first_sub_updates.shrink_to_fit();
            self.accepted.shrink_to_fit();
            crate::buf::release_pool();
            crate::http1::release_header_pool();
            crate::memory::release_thread_cache();
        }
    }

    fn finished(&self, now: Instant) -> bool {
        match self.drain_deadline {
            Some(deadline) => self.conns.is_empty() || now >= deadline,
            None => false,
        }
    }

    fn poll_events(&mut self) -> io::Result<()> {
        let busy = !self.work.is_empty()
            || self.inbox_pending
            || !self.accepted.is_empty()
            || (!self.accept_paused
                && self.accept_resume_at.is_none()
                && self.listeners.iter().any(|l| l.pending));
        let timeout = if busy {
            Duration::ZERO
        } else {
            let max = if self
                .throttle
                .as_ref()
                .is_some_and(|t| !t.waiting.is_empty())
            {
                THROTTLE_TICK
            } else {
                POLL_TIMEOUT_MAX
            };
            self.timers.timeout().map_or(max, |t| t.min(max))
        };
        // Under load the next readiness usually comes within microseconds. Polling a few more times
        // (yielding the CPU between polls to the backend or client we are waiting on) before sleeping
        // saves this thread a sleep and a wake-up and its peer the cost of waking it: on 2 cores this
        // raised proxied requests/s by about 8 % and lowered CPU per request. An idle worker (whose
        // last poll returned nothing) goes straight to sleep.
        if !timeout.is_zero() && !self.events.is_empty() {
            for _ in 0..SPIN_POLLS {
                if self
                    .poll
                    .poll(&mut self.events, Some(Duration::ZERO))
                    .is_ok()
                    && !self.events.is_empty()
                {
                    return Ok(());
                }
                std::thread::yield_now();
            }
        }
        loop {
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {
                    self.poll_errors = 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.poll_errors += 1;
                    if self.poll_errors >= POLL_ERRORS_MAX {
                        return Err(e);
                    }
                    log::warn!("worker {}: poll failed: {e}", self.id);
                    return Ok(());
                }
            }
        }
    }

    fn dispatch_events(&mut self) {
        for event in self.events.iter() {
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed() || event.is_error();
            let read_closed = event.is_read_closed();
            match token::decode(event.token()) {
                TokenKind::Waker => self.inbox_pending = true,
                TokenKind::Listener(i) => {
                    if let Some(l) = self.listeners.get_mut(i) {
                        l.pending = true;
                    }
                }
                TokenKind::Conn {
                    key: slot_key,
                    generation: slot_generation,
                    side: Side::Backend,
                } => {
                    let Some(slot) = self.backend_slots.get_mut(slot_key) else {
                        continue;
                    };
                    if slot.generation != slot_generation {
                        continue; // an event for a socket that has since been closed
                    }
                    let Some((key, generation)) = slot.owner else {
                        // Pooled. A write edge means nothing; a read edge may be stale; a close is final.
                        if read_closed || event.is_error() {
                            slot.dead = true;
                        } else if event.is_readable() {
                            slot.suspect = true;
                        }
                        continue;
                    };
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue;
                    };
                    if conn.generation != generation {
                        continue;
                    }
                    if let ConnKind::Proxy(s) = &mut conn.kind {
                        s.set_backend_ready(readable, writable);
                        if read_closed {
                            s.set_backend_read_closed();
                        }
                    }
                    queue(&mut self.work, key, conn);
                }
                TokenKind::Conn {
                    key,
                    generation,
                    side: Side::Client,
                } => {
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue;
                    };
                    if conn.generation != generation {
                        continue; // an event for a previous occupant of this slot
                    }
                    match &mut conn.kind {
                        ConnKind::Proxy(s) => {
                            s.set_client_ready(readable, writable);
                            if read_closed {
                                s.set_client_read_closed();
                            }
                        }
                        ConnKind::Control(s) | ConnKind::Metrics(s) => {
                            s.set_ready(readable, writable)
                        }
                    }
                    queue(&mut self.work, key, conn);
                }
            }
        }
    }

    // ---- one connection ---------------------------------------------------------------------------------------

    fn run_session(&mut self, key: usize, now: Instant) {
        if let Some(Conn {
            kind: ConnKind::Control(_) | ConnKind::Metrics(_),
            ..
        }) = self.conns.get(key)
        {
            self.run_control(key, now);
            return;
        }
        for _ in 0..SESSION_CALLS_MAX {
            let Some(Conn {
                kind: ConnKind::Proxy(session),
                counted_as,
                held,
                ..
            }) = self.conns.get_mut(key)
            else {
                return;
            };
            let shared = &self.shared;
            let conflict = |ch: &str, prev: &str| shared.prev_id_conflict(ch, prev);
            let env = Env {
                cfg: &self.shared.cfg,
                router: &self.router,
                draining: self.drain_deadline.is_some(),
                prev_id_conflict: Some(&conflict),
            };
            let mut want = session.process(now, &env);
            self.local.add_counts(&want.counts);
            // Gauges follow the session's phase: a WebSocket handshake completing, a hold starting or ending.
            let ws_open = session.websocket_open();
            if *counted_as == Some(ConnType::Http) && ws_open {
                *counted_as = Some(ConnType::Ws);
                self.local.connection(ConnType::Http, -1);
                self.local.connection(ConnType::Ws, 1);
            }
            // A WebSocket-over-HTTP connection listens from its OPEN request on, but is held only once open.
            let listening = session
                .listening_as()
                .filter(|m| *m != Transport::WsMessage || ws_open);
            if *held != listening {
                if let Some(mode) = held.take() {
                    self.local.held(mode, -1);
                }
                if let Some(mode) = listening {
                    self.local.held(mode, 1);
                }
                *held = listening;
            }
            let released = if want.release_backend {
                session.take_backend()
            } else {
                None
            };
            let backend_gone = session.backend_socket().is_none();
            let mut pooling_slot = None;
            if backend_gone {
                if let Some(slot) = self.conns.get_mut(key).and_then(|c| c.backend_slot.take()) {
                    match released {
                        // Released to the pool below: the slot lives on.
                        Some(_) => pooling_slot = Some(slot),
                        // The session dropped (closed) its backend socket.
                        None => self.free_backend_slot(slot),
                    }
                }
            }
            if self.reporter.enabled() {
                self.report_changes(key, want.counts.requests);
            }
            if !want.subscribe.is_empty() || !want.unsubscribe.is_empty() {
                self.update_subscriptions(key, &mut want.subscribe, &want.unsubscribe);
            }
            for notice in want.gone.drain(..) {
                crate::proxy::gone::send(notice);
            }
            if want.close {
                self.close_conn(key);
                return;
            }
            if want.release_backend {
                if let (Some((sock, addr)), Some(slot)) = (released, pooling_slot) {
                    if let Some(b) = self.backend_slots.get_mut(slot) {
                        b.owner = None;
                        b.dead = false;
                        b.suspect = false;
                    }
                    if let Some(evicted) = self.pool.put(addr, sock, slot, now) {
                        self.free_backend_slot(evicted);
                    }
                }
                // A session may release one backend connection and at once ask for another (a next
                // link fetched right after the response that named it).
                if let Some(req) = want.connect {
                    self.open_backend(key, req.addr, req.pooled_ok, now);
                }
                continue;
            }
            if let Some(req) = want.connect {
                self.open_backend(key, req.addr, req.pooled_ok, now);
                continue;
            }
            self.set_timer(key, want.deadline);
            if want.again {
                if let Some(conn) = self.conns.get_mut(key) {
                    queue(&mut self.work, key, conn);
                }
            }
            return;
        }
        log::error!(
            "worker {}: session kept asking for work {SESSION_CALLS_MAX} times; closing it",
            self.id
        );
        self.close_conn(key);
    }

    /// A connection that became a WebSocket is reported again under its WebSocket identity.
    /// What stats must hear after a session ran: requests on a route with an explicit id (per-route
    /// `activity`), a connection that became a WebSocket (announced again under its WebSocket identity), or
    /// one whose latest request took another route (announced again with that `route`).
    fn report_changes(&mut self, key: usize, requests: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let ConnKind::Proxy(session) = &conn.kind else {
            return;
        };
        let Some(announced) = conn.reported.as_mut() else {
            return;
        };
        let route = session.stats_route();
        if let (Some(r), n @ 1..) = (route, requests) {
            self.reporter
                .activity(r, u32::try_from(n).unwrap_or(u32::MAX));
        }
        let peer = session.peer().ip();
        if !announced.ws {
            if let Some(ws_id) = session.websocket_id() {
                let name = conn_name(&self.shared.instance_id, conn.id, ws_id);
                self.reporter
                    .reannounce_as_ws(announced, name, peer, false, route);
                return;
            }
        }
        if announced.route.as_ref() != route {
            self.reporter.reroute(announced, peer, false, route);
        }
    }

    fn update_subscriptions(&mut self, key: usize, add: &mut Vec<String>, remove: &[String]) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let me = ConnRef {
            key,
            generation: conn.generation,
        };
        let mode = conn.listening_as().unwrap_or(Transport::HttpStream);
        for channel in remove {
            if self.subs.unsubscribe(channel, me) == Transition::Last {
                self.shared.channel_transition(channel, false);
            }
            if let Some(i) = conn.channels.iter().position(|(c, _)| c == channel) {
                let (_, was) = conn.channels.swap_remove(i);
                self.reporter.sub(was, channel, -1);
                self.local.subscription(was, -1);
            }
        }
        for channel in add.drain(..) {
            if conn.channels.iter().any(|(c, _)| *c == channel) {
                continue;
            }
            if self.subs.subscribe(&channel, me) == Transition::First {
                log::debug!("worker {}: first subscriber to channel {channel}", self.id);
                self.shared.channel_transition(&channel, true);
                let now = Instant::now();
                let linger = self.shared.subscription_linger;
                let lingering = self
                    .recently_updated
                    .get(&channel)
                    .is_some_and(|at| now.saturating_duration_since(*at) < linger);
                if self.shared.update_on_first_subscription && !lingering {
                    self.recently_updated.insert(channel.clone(), now);
                    self.first_sub_updates
                        .push_back((now + FIRST_SUBSCRIPTION_UPDATE_DELAY, channel.clone()));
                }
            }
            self.reporter.sub(mode, &channel, 1);
            self.local.subscription(mode, 1);
            conn.channels.push((channel, mode));
        }
    }

    fn run_control(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let (session, metrics) = match &mut conn.kind {
            ConnKind::Control(s) => (s, false),
            ConnKind::Metrics(s) => (s, true),
            ConnKind::Proxy(_) => return,
        };
        let mut want = session.process(now);
        if let Some(req) = want.request.take() {
            if metrics {
                log::debug!("metrics: {} {}", req.method, req.path);
                session.respond(control::metrics_response(&req, &self.shared));
            } else {
                log::debug!("control: {} {}", req.method, req.path);
                session.respond(control::handle(&req, &self.shared));
            }
            want = session.process(now);
        }
        if want.close {
            self.close_conn(key);
        } else {
            self.set_timer(key, want.deadline);
        }
    }

    fn open_backend(&mut self, key: usize, addr: SocketAddr, pooled_ok: bool, now: Instant) {
        let Some(Conn {
            kind: ConnKind::Proxy(session),
            generation,
            ..
        }) = self.conns.get_mut(key)
        else {
            return;
        };
        let generation = *generation;
        let env = Env {
            cfg: &self.shared.cfg,
            router: &self.router,
            draining: self.drain_deadline.is_some(),
            prev_id_conflict: None,
        };
        let mut freed = Vec::new();
        let pooled = if pooled_ok {
            let slots = &self.backend_slots;
            let health = |s: usize| match slots.get(s) {
                None => Health::Dead,
                Some(b) if b.dead => Health::Dead,
                Some(b) if b.suspect => Health::Suspect,
                Some(_) => Health::Good,
            };
            self.pool.take(addr, now, health, &mut freed)
        } else {
            None
        };
        let (sock, slot, reused) = match pooled {
            Some(p) => (p.sock, p.slot, true),
            None => match TcpStream::connect(addr) {
                Ok(sock) => {
                    let mut sock = CountedStream::backend(sock, Arc::clone(&self.io));
                    let _ = sock.set_nodelay(true);
                    self.next_backend_generation = self.next_backend_generation.wrapping_add(1);
                    let slot_generation = self.next_backend_generation;
                    let slot = self.backend_slots.insert(BackendSlot {
                        generation: slot_generation,
                        owner: None,
                        dead: false,
                        suspect: false,
                    });
                    let tok = token::conn(slot, slot_generation, Side::Backend);
                    if let Err(e) = self.poll.registry().register(
                        &mut sock,
                        tok,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        self.backend_slots.remove(slot);
                        session.backend_connect_failed(e, &env);
                        return;
                    }
                    (sock, slot, false)
                }
                Err(e) => {
                    session.backend_connect_failed(e, &env);
                    return;
                }
            },
        };
        if let Some(b) = self.backend_slots.get_mut(slot) {
            b.owner = Some((key, generation));
        }
        session.attach_backend(sock, addr, reused, now);
        if let Some(conn) = self.conns.get_mut(key) {
            conn.backend_slot = Some(slot);
        }
        for slot in freed {
            self.free_backend_slot(slot);
        }
    }

    /// Forget a backend slot whose socket has been (or is being) closed.
    fn free_backend_slot(&mut self, slot: usize) {
        if self.backend_slots.contains(slot) {
            self.backend_slots.remove(slot);
        }
    }

    fn set_timer(&mut self, key: usize, deadline: Option<Instant>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.timer.map(|(_, at)| Some(at)) == Some(deadline) {
            return;
        }
        if let Some((tk, _)) = conn.timer.take() {
            self.timers.remove(tk);
        }
        if let Some(at) = deadline {
            let user = ((conn.generation as u64) << 32) | key as u64;
            match self.timers.add(at, user) {
                Some(tk) => conn.timer = Some((tk, at)),
                None => log::error!(
                    "worker {}: timer wheel full; connection has no deadline",
                    self.id
                ),
            }
        }
    }

    fn close_conn(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let conn = self.conns.remove(key);
        if let Some((tk, _)) = conn.timer {
            self.timers.remove(tk);
        }
        if let Some(slot) = conn.backend_slot {
            self.free_backend_slot(slot);
        }
        let me = ConnRef {
            key,
            generation: conn.generation,
        };
        for (channel, mode) in &conn.channels {
            if self.subs.unsubscribe(channel, me) == Transition::Last {
                self.shared.channel_transition(channel, false);
            }
            self.reporter.sub(*mode, channel, -1);
            self.local.subscription(*mode, -1);
        }
        if let Some(t) = conn.counted_as {
            self.local.connection(t, -1);
        }
        if let Some(mode) = conn.held {
            self.local.held(mode, -1);
        }
        if let Some(announced) = conn.reported {
            // Under the id it was announced with: a finished WebSocket's session no longer knows it.
            self.reporter.withdraw(announced);
        }
        self.shared.conns.fetch_sub(1, Ordering::AcqRel);
        // Dropping the session closes its sockets, which also removes them from the poller.
    }
}

/// Hand one published item to one subscribed connection (if it still exists and its hold wants it), and
/// queue the connection to write it. Returns how it was delivered, if it was.
fn deliver_to(
    conns: &mut Slab<Conn>,
    work: &mut VecDeque<usize>,
    subs: &Subscriptions,
    member: ConnRef,
    item: &Arc<Item>,
) -> Option<Transport> {
    let conn = conns.get_mut(member.key)?;
    if conn.generation != member.generation {
        return None; // an old reference to a slot that now holds another connection
    }
    let ConnKind::Proxy(session) = &mut conn.kind else {
        return None;
    };
    let subscribed = |ch: &str| subs.is_subscribed(ch, member);
    let transport = session.deliver(item, &item.channel, &subscribed)?;
    queue(work, member.key, conn);
    Some(transport)
}

/// A connection's id in stats and commands: a WebSocket-over-HTTP connection's `Connection-Id`, otherwise
/// `<instance>:<number>` (Pushpin's HTTP ids have the same `<connmgr instance>:<request>` shape).
fn conn_name(instance: &str, id: u64, ws_id: Option<&str>) -> String {
    match ws_id {
        Some(cid) => cid.to_string(),
        None => format!("{instance}:{id}"),
    }
}

/// How a subscribed connection listens (for counting receivers before delivery).
fn listening_as(conns: &Slab<Conn>, member: ConnRef) -> Option<Transport> {
    let conn = conns.get(member.key)?;
    if conn.generation != member.generation {
        return None;
    }
    conn.listening_as()
}

fn queue(work: &mut VecDeque<usize>, key: usize, conn: &mut Conn) {
    if !conn.queued {
        conn.queued = true;
        work.push_back(key);
    }
}
