//! Per-connection and per-worker tallies: plain numbers, no atomics. A session adds to its `ConnCounts` as it
//! parses and writes; the worker sums what its sessions report into a `LocalStats` and adds that to the shared
//! `Metrics` once per loop, so the hot path never touches a cache line another thread writes.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Metrics, Transport};

/// Which side of the proxy bytes or messages crossed, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// From the client to holdfast.
    ClientReceived,
    /// From holdfast to the client.
    ClientSent,
    /// From a backend to holdfast.
    BackendReceived,
    /// From holdfast to a backend.
    BackendSent,
}

impl Flow {
    pub const ALL: [Flow; 4] = [
        Flow::ClientReceived,
        Flow::ClientSent,
        Flow::BackendReceived,
        Flow::BackendSent,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The `side` label.
    pub fn side(self) -> &'static str {
        match self {
            Flow::ClientReceived | Flow::ClientSent => "client",
            Flow::BackendReceived | Flow::BackendSent => "backend",
        }
    }

    /// The `direction` label, from holdfast's point of view.
    pub fn direction(self) -> &'static str {
        match self {
            Flow::ClientReceived | Flow::BackendReceived => "received",
            Flow::ClientSent | Flow::BackendSent => "sent",
        }
    }
}

/// Why an exchange with a backend failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendError {
    /// One connection attempt failed or timed out (each address tried counts once).
    Connect,
    /// The client got a 504: the backend did not answer in time.
    Timeout,
    /// The client got a 502 (or its response was cut) because of the backend: it closed early, sent
    /// something invalid, or none of the targets could be reached.
    BadGateway,
}

impl BackendError {
    pub const ALL: [BackendError; 3] = [
        BackendError::Connect,
        BackendError::Timeout,
        BackendError::BadGateway,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackendError::Connect => "connect",
            BackendError::Timeout => "timeout",
            BackendError::BadGateway => "bad_gateway",
        }
    }
}

/// What one connection did since its counts were last taken.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConnCounts {
    /// Request heads parsed from the client.
    pub requests: u64,
    /// Bytes of HTTP heads (request line or status line, fields, blank line) by `Flow::index`.
    pub header_bytes: [u64; 4],
    /// WebSocket data messages (not control frames) by `Flow::index`.
    pub ws_messages: [u64; 4],
    /// By `BackendError::index`.
    pub backend_errors: [u64; 3],
}

impl ConnCounts {
    pub fn header(&mut self, flow: Flow, bytes: u64) {
        self.header_bytes[flow.index()] += bytes;
    }

    pub fn message(&mut self, flow: Flow) {
        self.ws_messages[flow.index()] += 1;
    }

    pub fn backend_error(&mut self, e: BackendError) {
        self.backend_errors[e.index()] += 1;
    }

    pub fn add(&mut self, other: &ConnCounts) {
        self.requests += other.requests;
        for (a, b) in self.header_bytes.iter_mut().zip(&other.header_bytes) {
            *a += b;
        }
        for (a, b) in self.ws_messages.iter_mut().zip(&other.ws_messages) {
            *a += b;
        }
        for (a, b) in self.backend_errors.iter_mut().zip(&other.backend_errors) {
            *a += b;
        }
    }

    /// Hand over everything counted so far and start again from zero.
    pub fn take(&mut self) -> ConnCounts {
        std::mem::take(self)
    }

    pub fn is_empty(&self) -> bool {
        *self == ConnCounts::default()
    }
}

/// Bytes read and written on a worker's sockets, by `Flow::index`. Shared (`Arc`) between the worker and its
/// counting sockets only, so in practice one thread writes it; the worker moves it into `Metrics` per loop.
#[derive(Debug, Default)]
pub struct IoCounters {
    flows: [AtomicU64; 4],
}

impl IoCounters {
    pub fn add(&self, flow: Flow, bytes: usize) {
        self.flows[flow.index()].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The bytes counted since the last call, by `Flow::index`.
    pub fn take(&self) -> [u64; 4] {
        let mut out = [0; 4];
        for (o, c) in out.iter_mut().zip(&self.flows) {
            // Cheap read first: most loops move no bytes on most flows.
            if c.load(Ordering::Relaxed) != 0 {
                *o = c.swap(0, Ordering::Relaxed);
            }
        }
        out
    }
}

/// How a client connection counts in the `connections` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnType {
    Http,
    /// Counted as `ws` from the moment its WebSocket handshake completed.
    Ws,
}

impl ConnType {
    pub const ALL: [ConnType; 2] = [ConnType::Http, ConnType::Ws];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConnType::Http => "http",
            ConnType::Ws => "ws",
        }
    }
}

/// A worker's counts and gauge changes since its last flush.
#[derive(Debug, Default)]
pub struct LocalStats {
    pub counts: ConnCounts,
    /// Changes to the `connections` gauge by `ConnType::index`.
    pub connections: [i64; 2],
    /// Changes to the held-connections gauge by `Transport::index`.
    pub held: [i64; 3],
    /// Changes to the subscriptions gauge by `Transport::index` (its mode).
    pub subscriptions: [i64; 3],
    dirty: bool,
}

impl LocalStats {
    pub fn add_counts(&mut self, c: &ConnCounts) {
        if !c.is_empty() {
            self.counts.add(c);
            self.dirty = true;
        }
    }

    pub fn connection(&mut self, t: ConnType, delta: i64) {
        self.connections[t.index()] += delta;
        self.dirty = true;
    }

    pub fn held(&mut self, mode: Transport, delta: i64) {
        self.held[mode.index()] += delta;
        self.dirty = true;
    }

    pub fn subscription(&mut self, mode: Transport, delta: i64) {
        self.subscriptions[mode.index()] += delta;
        self.dirty = true;
    }

    /// Add everything to the shared metrics (with the bytes `io` counted) and start again.
    pub fn flush(&mut self, m: &Metrics, io: &IoCounters) {
        m.add_bytes(&io.take());
        if !self.dirty {
            return;
        }
        m.add_local(self);
        *self = LocalStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_field_by_field_and_take_resets() {
        let mut a = ConnCounts {
            requests: 2,
            ..ConnCounts::default()
        };
        a.header(Flow::ClientReceived, 10);
        a.message(Flow::BackendSent);
        a.backend_error(BackendError::Timeout);
        let mut b = a;
        b.add(&a);
        assert_eq!(b.requests, 4);
        assert_eq!(b.header_bytes, [20, 0, 0, 0]);
        assert_eq!(b.ws_messages, [0, 0, 0, 2]);
        assert_eq!(b.backend_errors, [0, 2, 0]);
        let taken = b.take();
        assert_eq!(taken.requests, 4);
        assert!(b.is_empty());
    }

    #[test]
    fn a_flush_moves_gauges_counts_and_bytes_into_the_metrics_once() {
        let m = Metrics::default();
        let io = IoCounters::default();
        let mut local = LocalStats::default();
        local.connection(ConnType::Http, 1);
        local.connection(ConnType::Http, 1);
        local.held(Transport::HttpStream, 1);
        local.subscription(Transport::WsMessage, 3);
        let mut c = ConnCounts {
            requests: 5,
            ..ConnCounts::default()
        };
        c.header(Flow::ClientSent, 7);
        local.add_counts(&c);
        io.add(Flow::BackendReceived, 100);
        local.flush(&m, &io);
        // A second flush with nothing new changes nothing.
        local.flush(&m, &io);
        let s = m.snapshot(0);
        assert_eq!(s.requests, 5);
        assert_eq!(s.connections, [2, 0]);
        assert_eq!(s.held, [0, 1, 0]);
        assert_eq!(s.subscriptions, [0, 0, 3]);
        assert_eq!(s.header_bytes[Flow::ClientSent.index()], 7);
        assert_eq!(s.bytes[Flow::BackendReceived.index()], 100);

        // A connection upgrading and then closing leaves the gauges where they started.
        local.connection(ConnType::Http, -1);
        local.connection(ConnType::Ws, 1);
        local.connection(ConnType::Ws, -1);
        local.held(Transport::HttpStream, -1);
        local.flush(&m, &io);
        let s = m.snapshot(0);
        assert_eq!(s.connections, [1, 0]);
        assert_eq!(s.held, [0, 0, 0]);
    }
}
