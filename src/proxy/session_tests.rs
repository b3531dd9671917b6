//! `Session` driven without sockets: in-memory `FakeSock`s stand in for the client and backend connections and
//! a hand-advanced clock stands in for time. Every assertion is on something a peer or the reactor would notice:
//! the exact bytes each side receives, and the fields of the returned `Want`.
//!
//! The harness delivers readiness the way mio does (edge-triggered): a socket reports readable only when new
//! input or an end of stream arrived since the last `process`, and writable only when write room was granted or
//! a connect finished. A session that loses an edge therefore stalls here as it would in production.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{Settings, XffRule, XfpMode};
use crate::routes::RouteTable;

// ---- fake socket -------------------------------------------------------------------------------------------------

enum ConnectState {
    /// `connect_result` answers `None`.
    Pending,
    Done(Result<(), ErrorKind>),
}

struct SockState {
    input: VecDeque<u8>,
    input_closed: bool,
    /// Both directions fail with this error (a reset connection).
    broken: Option<ErrorKind>,
    /// Bytes `write` may still accept before it answers `WouldBlock`.
    allowance: usize,
    written: Vec<u8>,
    connect: ConnectState,
    shut_write: bool,
    /// Readiness edges not yet delivered to the session.
    readable_edge: bool,
    writable_edge: bool,
}

/// An in-memory socket. The session owns one handle; the test keeps a clone to feed it and look inside.
#[derive(Clone)]
struct FakeSock(Rc<RefCell<SockState>>);

impl FakeSock {
    /// Connected, nothing to read, no write room.
    fn new() -> FakeSock {
        FakeSock(Rc::new(RefCell::new(SockState {
            input: VecDeque::new(),
            input_closed: false,
            broken: None,
            allowance: 0,
            written: Vec::new(),
            connect: ConnectState::Done(Ok(())),
            shut_write: false,
            readable_edge: false,
            writable_edge: false,
        })))
    }

    /// Connected, and writes never block.
    fn open() -> FakeSock {
        let s = FakeSock::new();
        s.allow_write(usize::MAX);
        s
    }

    /// A fresh non-blocking connect still in progress; writes never block once it finishes.
    fn connecting() -> FakeSock {
        let s = FakeSock::open();
        s.0.borrow_mut().connect = ConnectState::Pending;
        s
    }

    fn finish_connect(&self, result: Result<(), ErrorKind>) {
        let mut s = self.0.borrow_mut();
        s.connect = ConnectState::Done(result);
        s.writable_edge = true;
    }

    fn feed(&self, bytes: &[u8]) {
        let mut s = self.0.borrow_mut();
        s.input.extend(bytes.iter().copied());
        s.readable_edge = true;
    }

    fn close_input(&self) {
        let mut s = self.0.borrow_mut();
        s.input_closed = true;
        s.readable_edge = true;
    }

    fn break_with(&self, kind: ErrorKind) {
        let mut s = self.0.borrow_mut();
        s.broken = Some(kind);
        s.readable_edge = true;
        s.writable_edge = true;
    }

    fn allow_write(&self, n: usize) {
        let mut s = self.0.borrow_mut();
        s.allowance = s.allowance.saturating_add(n);
        if n > 0 {
            s.writable_edge = true;
        }
    }

    /// Take back any write room not used yet.
    fn block_writes(&self) {
        self.0.borrow_mut().allowance = 0;
    }

    /// Everything written so far, draining it.
    fn take_written(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut().written)
    }

    fn written_len(&self) -> usize {
        self.0.borrow().written.len()
    }

    fn unread(&self) -> usize {
        self.0.borrow().input.len()
    }

    fn is_shut(&self) -> bool {
        self.0.borrow().shut_write
    }

    /// Whether anyone besides the test still holds this socket (the session, or the reactor's pool).
    fn held_elsewhere(&self) -> bool {
        Rc::strong_count(&self.0) > 1
    }

    fn take_edges(&self) -> (bool, bool) {
        let mut s = self.0.borrow_mut();
        let edges = (s.readable_edge, s.writable_edge);
        s.readable_edge = false;
        s.writable_edge = false;
        edges
    }
}

impl Read for FakeSock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.0.borrow_mut();
        if let Some(kind) = s.broken {
            return Err(kind.into());
        }
        if s.input.is_empty() {
            return if s.input_closed {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(s.input.len());
        for (slot, byte) in buf.iter_mut().zip(s.input.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for FakeSock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.0.borrow_mut();
        if let Some(kind) = s.broken {
            return Err(kind.into());
        }
        if s.shut_write {
            return Err(ErrorKind::BrokenPipe.into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if s.allowance == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(s.allowance);
        s.allowance -= n;
        s.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for FakeSock {
    fn connect_result(&mut self) -> Option<io::Result<()>> {
        match &self.0.borrow().connect {
            ConnectState::Pending => None,
            ConnectState::Done(Ok(())) => Some(Ok(())),
            ConnectState::Done(Err(kind)) => Some(Err((*kind).into())),
        }
    }

    fn shutdown_write(&mut self) {
        self.0.borrow_mut().shut_write = true;
    }
}

// ---- harness -----------------------------------------------------------------------------------------------------

const PEER: &str = "10.1.2.3:40000";
const ROUTES: &str = "* 127.0.0.1:9999\n";
const ROUTES_FAILOVER: &str = "* 127.0.0.1:9999 127.0.0.1:9998\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn target() -> SocketAddr {
    addr("127.0.0.1:9999")
}

fn second_target() -> SocketAddr {
    addr("127.0.0.1:9998")
}

/// Defaults with every rewriting option that the shipped config might turn on pinned off, so expected bytes
/// do not depend on it.
fn base_cfg() -> ProxyConfig {
    let mut cfg = ProxyConfig::from_settings(&Settings::defaults()).unwrap();
    cfg.debug = false;
    cfg.accept_x_forwarded_protocol = false;
    cfg.set_x_forwarded_protocol = XfpMode::None;
    cfg.x_forwarded_for = Vec::new();
    cfg.accept_pushpin_route = false;
    cfg.cdn_loop = None;
    cfg.sig = None;
    cfg.upstream_key = None;
    cfg.client_max_body = None;
    cfg.client_idle_timeout = Duration::from_secs(60);
    cfg.client_request_timeout = Duration::from_secs(30);
    cfg.backend_connect_timeout = Duration::from_secs(10);
    cfg.backend_response_timeout = Duration::from_secs(20);
    cfg.backend_idle_timeout = Duration::from_secs(40);
    cfg
}

fn router(routes: &str) -> Arc<Router> {
    let (table, warnings) = RouteTable::parse(routes, "t").expect("test routes parse");
    assert!(warnings.is_empty(), "{warnings:?}");
    Arc::new(Router::new(table).unwrap().0)
}

struct Harness {
    cfg: ProxyConfig,
    router: Arc<Router>,
    draining: bool,
    base: Instant,
    now: Instant,
    client: FakeSock,
    session: Session<FakeSock>,
    /// The backend the session was last handed, so its readiness edges can be delivered. Weak, so that
    /// `held_elsewhere` sees only the session's (or the pool's) handle.
    backend: Option<Weak<RefCell<SockState>>>,
    /// Every `Want::counts` so far, summed as the reactor does.
    counts: ConnCounts,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(ROUTES, base_cfg())
    }

    fn with(routes: &str, cfg: ProxyConfig) -> Harness {
        let base = Instant::now();
        let client = FakeSock::open();
        let session = Session::new(client.clone(), addr(PEER), false, &cfg, base, 1);
        Harness {
            cfg,
            router: router(routes),
            draining: false,
            base,
            now: base,
            client,
            session,
            backend: None,
            counts: ConnCounts::default(),
        }
    }

    fn process(&mut self) -> Want {
        let (r, w) = self.client.take_edges();
        self.session.set_client_ready(r, w);
        if r && self.client.0.borrow().input_closed {
            self.session.set_client_read_closed();
        }
        if let Some(b) = self.backend.as_ref().and_then(Weak::upgrade) {
            let sock = FakeSock(b);
            let (r, w) = sock.take_edges();
            self.session.set_backend_ready(r, w);
            if r && sock.0.borrow().input_closed {
                self.session.set_backend_read_closed();
            }
        }
        let env = Env {
            cfg: &self.cfg,
            router: &self.router,
            draining: self.draining,
            prev_id_conflict: None,
        };
        let want = self.session.process(self.now, &env);
        self.counts.add(&want.counts);
        want
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn set_time(&mut self, at: Instant) {
        assert!(at >= self.now, "the clock only moves forward");
        self.now = at;
    }

    fn attach(&mut self, sock: &FakeSock, at: SocketAddr, reused: bool) {
        self.session
            .attach_backend(sock.clone(), at, reused, self.now);
        self.backend = Some(Rc::downgrade(&sock.0));
    }

    fn connect_failed(&mut self, kind: ErrorKind) {
        let env = Env {
            cfg: &self.cfg,
            router: &self.router,
            draining: self.draining,
            prev_id_conflict: None,
        };
        self.session.backend_connect_failed(kind.into(), &env);
        self.backend = None;
    }

    /// What the reactor does on `Want::release_backend`.
    fn take_backend(&mut self) -> (FakeSock, SocketAddr) {
        let taken = self
            .session
            .take_backend()
            .expect("an idle backend to take");
        self.backend = None;
        taken
    }

    /// Feed a request, expect a connect to `to`, and answer it with a fresh connection that completes.
    fn send_to_backend(&mut self, request: &[u8], to: SocketAddr) -> FakeSock {
        self.client.feed(request);
        let want = self.process();
        assert_eq!(
            want.connect,
            Some(ConnectRequest {
                addr: to,
                pooled_ok: true
            })
        );
        let be = FakeSock::open();
        self.attach(&be, to, false);
        let want = self.process();
        assert_eq!(want.connect, None);
        assert!(!want.close);
        be
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A response holdfast makes itself: one line of text/plain.
fn local(status_line: &str, body: &str, close: bool) -> String {
    format!(
        "HTTP/1.1 {status_line}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}\n",
        body.len() + 1,
        if close { "Connection: close\r\n" } else { "" }
    )
}

const ORIGIN_ERROR_TEXT: &str = "Error while proxying to origin.";

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
        .collect()
}

/// Decode a chunked body with the crate's own decoder: for arrival patterns that change chunk boundaries.
fn dechunk(wire: &[u8]) -> (Vec<u8>, bool) {
    let mut dec = BodyDecoder::new(BodyKind::Chunked, ChunkLimits::default());
    let mut out = Vec::new();
    let mut rest = wire;
    while let Ok(step) = dec.decode(rest) {
        out.extend_from_slice(&rest[step.data.clone()]);
        rest = &rest[step.consumed..];
        if step.consumed == 0 || step.done {
            break;
        }
    }
    (out, dec.is_done() && rest.is_empty())
}

// ---- a plain exchange --------------------------------------------------------------------------------------------

#[test]
fn simple_get_is_rewritten_relayed_and_the_backend_pooled() {
    let mut cfg = base_cfg();
    cfg.x_forwarded_for = vec![XffRule::Append];
    let mut h = Harness::with(ROUTES, cfg);

    h.client.feed(
        b"GET /path?q=1 HTTP/1.1\r\n\
          Host: example.test\r\n\
          Connection: keep-alive, X-Secret\r\n\
          X-Secret: s\r\n\
          Keep-Alive: timeout=5\r\n\
          TE: trailers\r\n\
          Proxy-Connection: keep-alive\r\n\
          Upgrade: h2c\r\n\
          X-Forwarded-For: 192.0.2.1\r\n\
          Accept: */*\r\n\r\n",
    );
    let want = h.process();
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: target(),
            pooled_ok: true
        })
    );
    assert!(!want.close && !want.release_backend);
    assert_eq!(h.client.written_len(), 0);

    // A fresh connection: nothing may be written before the connect completes.
    h.advance(Duration::from_millis(5));
    let be = FakeSock::connecting();
    h.attach(&be, target(), false);
    let want = h.process();
    assert_eq!(want.connect, None);
    assert_eq!(
        want.deadline,
        Some(h.now + h.cfg.backend_connect_timeout),
        "a pending connect is bounded by the connect timeout"
    );
    assert_eq!(be.written_len(), 0);

    h.advance(Duration::from_millis(5));
    be.finish_connect(Ok(()));
    let want = h.process();
    assert_eq!(
        text(&be.take_written()),
        "GET /path?q=1 HTTP/1.1\r\n\
         Host: example.test\r\n\
         X-Forwarded-For: 192.0.2.1, 10.1.2.3\r\n\
         Accept: */*\r\n\r\n"
    );
    assert_eq!(
        want.deadline,
        Some(h.now + h.cfg.backend_response_timeout),
        "waiting for the response head is bounded by the response timeout"
    );

    be.feed(
        b"HTTP/1.1 200 OK\r\n\
          Content-Length: 5\r\n\
          Connection: keep-alive, X-Hop\r\n\
          X-Hop: 1\r\n\
          Keep-Alive: timeout=5\r\n\
          X-Backend: b1\r\n\r\nhello",
    );
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Backend: b1\r\n\r\nhello"
    );
    assert!(
        want.release_backend,
        "a complete keep-alive response frees the backend"
    );
    assert!(!want.close);
    let (pooled, at) = h.take_backend();
    assert_eq!(at, target());
    assert!(Rc::ptr_eq(&pooled.0, &be.0));
    drop(pooled);

    let want = h.process();
    assert_eq!(want.connect, None);
    assert!(!want.close && !want.release_backend);
    assert_eq!(
        want.deadline,
        Some(h.now + h.cfg.client_idle_timeout),
        "back to waiting for the next request"
    );
    assert!(!h.client.is_shut());

    // The next request on the same client connection goes out on the pooled backend.
    h.client
        .feed(b"GET /two HTTP/1.1\r\nHost: example.test\r\n\r\n");
    let want = h.process();
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: target(),
            pooled_ok: true
        })
    );
    h.attach(&be, target(), true);
    h.process();
    assert_eq!(
        text(&be.take_written()),
        "GET /two HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n"
    );
    be.feed(b"HTTP/1.1 204 No Content\r\n\r\n");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 204 No Content\r\n\r\n"
    );
    assert!(want.release_backend);
}

#[test]
fn host_is_filled_in_for_an_http10_request_without_one() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET /old HTTP/1.0\r\n\r\n", target());
    assert_eq!(
        text(&be.take_written()),
        "GET /old HTTP/1.1\r\nHost: 127.0.0.1:9999\r\n\r\n"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        target(),
    );
    assert_eq!(
        text(&be.take_written()),
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        "only the first request goes out while its response is pending"
    );

    // Part of the first response: still nothing of the second request may reach any backend.
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA");
    let want = h.process();
    assert_eq!(want.connect, None);
    assert!(!want.release_backend);
    assert_eq!(be.written_len(), 0);

    be.feed(b"a");
    let want = h.process();
    assert!(want.release_backend);
    assert_eq!(
        want.connect, None,
        "the next request waits for the backend hand-back"
    );
    h.take_backend();
    let want = h.process();
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: target(),
            pooled_ok: true
        })
    );
    h.attach(&be, target(), true);
    h.process();
    assert_eq!(
        text(&be.take_written()),
        "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    );
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB");
    let want = h.process();
    assert!(want.release_backend);
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nAa\
         HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB"
    );
}

#[test]
fn every_parsed_request_head_is_counted_once_for_stats_activity() {
    let mut h = Harness::new();
    h.client
        .feed(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut counted = h.process().counts.requests;
    assert_eq!(
        counted, 1,
        "the second request waits for the first response"
    );
    let be = FakeSock::open();
    h.attach(&be, target(), false);
    counted += h.process().counts.requests;
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA");
    assert!(h.process().release_backend);
    h.take_backend();
    counted += h.process().counts.requests;
    assert_eq!(counted, 2);
    // Half a head is not a request yet; the call that completes it counts it.
    h.attach(&be, target(), true);
    h.process();
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB");
    assert!(h.process().release_backend);
    h.take_backend();
    h.client.feed(b"GET /c HTTP/1.1\r\n");
    assert_eq!(h.process().counts.requests, 0);
    h.client.feed(b"Host: h\r\n\r\n");
    assert_eq!(h.process().counts.requests, 1);
}

// ---- body framing ------------------------------------------------------------------------------------------------

#[test]
fn chunked_request_body_is_reencoded_for_the_backend() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          0005;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        target(),
    );
    assert_eq!(
        text(&be.take_written()),
        "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    be.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(want.release_backend);
}

#[test]
fn content_length_request_body_is_forwarded_as_it_arrives() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123",
        target(),
    );
    assert_eq!(
        text(&be.take_written()),
        "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123"
    );
    h.client.feed(b"456789");
    h.process();
    assert_eq!(text(&be.take_written()), "456789");
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let want = h.process();
    assert!(want.release_backend);
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    );
}

#[test]
fn chunked_response_stays_chunked_for_an_http11_client() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    );
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    );
    assert!(want.release_backend);
}

#[test]
fn close_delimited_response_is_chunked_for_an_http11_client() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc");
    let want = h.process();
    assert!(!want.release_backend);
    be.feed(b"defg");
    let want = h.process();
    assert!(!want.release_backend);
    // The end of the body arrives on an edge of its own (the `eof_arriving_with_*` tests cover the
    // case where it comes with the last bytes).
    be.close_input();
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    );
    assert!(
        !want.release_backend,
        "a backend that ended the body by closing is not reusable"
    );
    assert!(!want.close);
    assert!(!be.held_elsewhere(), "the closed backend is dropped");
    assert!(!h.client.is_shut(), "the client keeps its connection");
    assert_eq!(want.deadline, Some(h.now + h.cfg.client_idle_timeout));
}

#[test]
fn close_delimited_response_to_an_http10_client_ends_with_the_connection() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
        target(),
    );
    assert_eq!(
        text(&be.take_written()),
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    );
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc");
    let want = h.process();
    assert!(!want.close);
    assert!(!h.client.is_shut());
    be.close_input();
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nabc"
    );
    assert!(
        h.client.is_shut(),
        "the end of the body is the end of the stream"
    );
    assert!(!want.close, "the session lingers for the client's close");
    h.client.close_input();
    assert!(h.process().close);
}

#[test]
fn http10_client_keeps_alive_on_a_sized_response() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
        target(),
    );
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
    );
    assert!(want.release_backend);
}

#[test]
fn head_response_keeps_its_content_length_and_has_no_body() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n", target());
    assert_eq!(
        text(&be.take_written()),
        "HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n"
    );
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    );
    assert!(
        want.release_backend,
        "no body was expected, so the backend is idle"
    );
}

#[test]
fn responses_without_a_body() {
    let cases: &[(&str, &str)] = &[
        (
            "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
        ),
        (
            "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n",
        ),
    ];
    for (from_backend, to_client) in cases {
        let mut h = Harness::new();
        let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
        be.feed(from_backend.as_bytes());
        let want = h.process();
        assert_eq!(text(&h.client.take_written()), *to_client);
        assert!(want.release_backend, "{from_backend:?}");
        h.take_backend();
        let want = h.process();
        assert!(!want.close);
        assert_eq!(want.deadline, Some(h.now + h.cfg.client_idle_timeout));
    }
}

#[test]
fn body_longer_than_declared_is_cut_and_the_backend_not_pooled() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    );
    assert!(!want.release_backend);
    assert!(!be.held_elsewhere());
    assert!(!want.close);
}

#[test]
fn interim_responses_from_the_backend_are_not_relayed() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    );
    assert!(want.release_backend);
}

#[test]
fn byte_at_a_time_in_both_directions() {
    let request = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n";
    let mut h = Harness::new();
    let mut fed = 0;
    let mut want = Want::default();
    while fed < request.len() && want.connect.is_none() {
        h.client.feed(&request[fed..fed + 1]);
        fed += 1;
        want = h.process();
        assert!(!want.close);
    }
    let head_len = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    assert_eq!(
        Some(fed),
        head_len,
        "connect as soon as the head is complete"
    );
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: target(),
            pooled_ok: true
        })
    );
    let be = FakeSock::open();
    h.attach(&be, target(), false);
    h.process();
    for &b in &request[fed..] {
        h.client.feed(&[b]);
        let want = h.process();
        assert_eq!(want.connect, None);
        assert!(!want.close);
    }
    let to_backend = be.take_written();
    let head = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(text(&to_backend[..head.len()]), text(head));
    assert_eq!(
        dechunk(&to_backend[head.len()..]),
        (b"hello world".to_vec(), true)
    );

    let mut last = Want::default();
    for &b in response.iter() {
        be.feed(&[b]);
        last = h.process();
        assert!(!last.close);
    }
    assert!(last.release_backend);
    let to_client = h.client.take_written();
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(text(&to_client[..head.len()]), text(head));
    assert_eq!(
        dechunk(&to_client[head.len()..]),
        (b"abcdef".to_vec(), true)
    );
}

// ---- flow control ------------------------------------------------------------------------------------------------

#[test]
fn partial_client_writes_lose_no_bytes() {
    for grant in [1usize, 7] {
        let mut h = Harness::new();
        h.client.block_writes();
        let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
        let body = pattern(3000);
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n".to_vec();
        response.extend_from_slice(&body);
        be.feed(&response);
        let mut released = false;
        for _ in 0..10_000 {
            if h.client.written_len() == response.len() && released {
                break;
            }
            h.client.allow_write(grant);
            let want = h.process();
            assert!(!want.close);
            assert_eq!(want.connect, None);
            if want.release_backend {
                h.take_backend();
                released = true;
            }
        }
        assert!(released, "grant {grant}");
        assert_eq!(h.client.take_written(), response, "grant {grant}");
        let want = h.process();
        assert_eq!(want.deadline, Some(h.now + h.cfg.client_idle_timeout));
    }
}

#[test]
fn slow_client_stops_the_backend_reads_then_resumes() {
    const BODY: usize = 1 << 20;
    let body = pattern(BODY);
    let mut chunked_wire = Vec::new();
    for piece in body.chunks(4000) {
        chunked_wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked_wire.extend_from_slice(piece);
        chunked_wire.extend_from_slice(b"\r\n");
    }
    chunked_wire.extend_from_slice(b"0\r\n\r\n");
    let mut sized_wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".to_vec();
    sized_wire.extend_from_slice(&body);
    let mut chunked_response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked_response.extend_from_slice(&chunked_wire);
    // (from the backend, head the client gets, body re-chunked)
    let cases: [(&[u8], &str, bool); 2] = [
        (
            &sized_wire,
            "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n",
            false,
        ),
        (
            &chunked_response,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        ),
    ];
    for (from_backend, client_head, chunked) in cases {
        let mut h = Harness::new();
        h.client.block_writes();
        let be = h.send_to_backend(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", target());
        be.feed(from_backend);
        let mut unread = be.unread();
        for round in 0..5 {
            let want = h.process();
            assert!(!want.close && !want.release_backend);
            let now_unread = be.unread();
            assert!(
                now_unread > 0,
                "round {round}: the backend was read to the end"
            );
            let queued = h.session.client_out.len();
            assert!(
                (OUT_QUEUE_MAX..=OUT_QUEUE_MAX + BODY_BUF_SIZE).contains(&queued),
                "round {round}: {queued} bytes queued for the client"
            );
            if round > 0 {
                assert_eq!(now_unread, unread, "round {round}: reading went on");
            }
            unread = now_unread;
            // A new edge from the backend must not make the session read past its bound either.
            be.feed(b"");
        }
        assert_eq!(h.client.written_len(), 0);

        h.client.allow_write(usize::MAX);
        let mut released = false;
        for _ in 0..1000 {
            let want = h.process();
            assert!(!want.close);
            if want.release_backend {
                h.take_backend();
                released = true;
            }
            if released && h.session.client_out.is_empty() {
                break;
            }
        }
        assert!(released, "chunked={chunked}");
        assert_eq!(be.unread(), 0, "chunked={chunked}");
        let got = h.client.take_written();
        assert_eq!(text(&got[..client_head.len()]), client_head);
        let got_body = &got[client_head.len()..];
        if chunked {
            let (payload, complete) = dechunk(got_body);
            assert!(complete, "the chunked body is terminated");
            assert!(payload == body, "payload differs ({} bytes)", payload.len());
        } else {
            assert!(
                got_body == &body[..],
                "body differs ({} bytes)",
                got_body.len()
            );
        }
    }
}

#[test]
fn slow_backend_stops_the_client_reads_then_resumes() {
    const BODY: usize = 1 << 20;
    let body = pattern(BODY);
    let head = b"PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n";
    let mut h = Harness::new();
    h.client.feed(head);
    h.client.feed(&body);
    let want = h.process();
    assert!(want.connect.is_some());
    let be = FakeSock::new();
    h.attach(&be, target(), false);
    let mut unread = h.client.unread();
    for round in 0..5 {
        let want = h.process();
        assert!(!want.close);
        let now_unread = h.client.unread();
        assert!(
            now_unread > 0,
            "round {round}: the client was read to the end"
        );
        let queued = h
            .session
            .backend
            .as_ref()
            .map(|b| b.output.len())
            .unwrap_or(0);
        assert!(
            queued <= OUT_QUEUE_MAX + BODY_BUF_SIZE + head.len(),
            "round {round}: {queued} bytes queued for the backend"
        );
        assert!(h.session.client_in.len() <= h.session.client_in.capacity());
        if round > 0 {
            assert_eq!(now_unread, unread, "round {round}: reading went on");
        }
        unread = now_unread;
        h.client.feed(b"");
    }
    assert_eq!(be.written_len(), 0);

    be.allow_write(usize::MAX);
    for _ in 0..1000 {
        h.process();
        if h.client.unread() == 0
            && h.session.backend.as_ref().map(|b| b.output.is_empty()) == Some(true)
        {
            break;
        }
    }
    let got = be.take_written();
    assert_eq!(text(&got[..head.len()]), text(head));
    assert!(
        got[head.len()..] == body[..],
        "body differs ({} bytes)",
        got.len() - head.len()
    );
    be.feed(b"HTTP/1.1 204 No Content\r\n\r\n");
    let want = h.process();
    assert!(want.release_backend);
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 204 No Content\r\n\r\n"
    );
}

// ---- errors answered locally ---------------------------------------------------------------------------------

#[test]
fn bad_requests_are_answered_and_the_connection_closed() {
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n",
        "v".repeat(9000)
    );
    let mut max_body = base_cfg();
    max_body.client_max_body = Some(4);
    let cases: Vec<(&str, Vec<u8>, ProxyConfig, String)> = vec![
        (
            "head over the limit",
            huge.into_bytes(),
            base_cfg(),
            local(
                "431 Request Header Fields Too Large",
                "header block exceeds the size limit",
                true,
            ),
        ),
        (
            "Content-Length and Transfer-Encoding",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            base_cfg(),
            local(
                "400 Bad Request",
                "both Content-Length and Transfer-Encoding present",
                true,
            ),
        ),
        (
            "unsupported transfer coding",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            base_cfg(),
            local("501 Not Implemented", "unsupported transfer coding", true),
        ),
        (
            "HTTP/1.1 without Host",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            base_cfg(),
            local(
                "400 Bad Request",
                "HTTP/1.1 request without a Host header",
                true,
            ),
        ),
        (
            "declared body over the limit",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            max_body,
            local("413 Content Too Large", "request body exceeds 4 bytes", true),
        ),
    ];
    for (what, request, cfg, response) in cases {
        let mut h = Harness::with(ROUTES, cfg);
        h.client.feed(&request);
        let want = h.process();
        assert_eq!(want.connect, None, "{what}");
        assert_eq!(text(&h.client.take_written()), response, "{what}");
        assert!(
            h.client.is_shut(),
            "{what}: the response ends the connection"
        );
        assert!(!want.close, "{what}: lingers for the client's close");
        h.client.close_input();
        assert!(h.process().close, "{what}");
    }
}

#[test]
fn lingering_close_gives_up_after_its_deadline() {
    let mut h = Harness::new();
    h.client.feed(b"GET / HTTP/1.1\r\n\r\n");
    let want = h.process();
    assert!(h.client.is_shut());
    let deadline = want.deadline.expect("a linger deadline");
    assert!(deadline > h.now);
    h.set_time(deadline);
    assert!(h.process().close);
}

#[test]
fn bad_chunk_size_in_the_request_body_is_a_400() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        target(),
    );
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        local("400 Bad Request", "invalid chunk size", true)
    );
    assert!(!want.release_backend);
    assert!(
        !be.held_elsewhere(),
        "a backend that got half a request is closed, not pooled"
    );
    assert!(h.client.is_shut());
}

// Failures (routes, backends, timeouts), the connection lifecycle, draining and the counts sessions report.
#[path = "session_tests/failures_and_lifecycle.rs"]
mod failures_and_lifecycle;
