"""ZeroMQ and HTTP client helpers for the ZeroMQ bridge tests: a tnetstring codec, connecting with a wait for
the ZMTP handshake, an XPUB that records subscription frames, a background stats collector, ZRPC calls, and
a raw HTTP stream client that decodes chunked bodies.

Every wait here has a deadline: a missing message fails the test with what was seen instead of hanging."""

import json
import re
import socket
import threading
import time

import zmq
import zmq.utils.monitor

# --- tnetstring (spec Appendix A) ---------------------------------------------------------------------------


def tnet_dumps(value):
    """Encode str (as UTF-8), bytes, int, float, bool, None, list and dict."""
    if value is None:
        body, tag = b"", b"~"
    elif isinstance(value, bool):  # before int: bool is an int in Python
        body, tag = (b"true" if value else b"false"), b"!"
    elif isinstance(value, int):
        body, tag = str(value).encode(), b"#"
    elif isinstance(value, float):
        body, tag = repr(value).encode(), b"^"
    elif isinstance(value, str):
        body, tag = value.encode(), b","
    elif isinstance(value, bytes):
        body, tag = value, b","
    elif isinstance(value, (list, tuple)):
        body, tag = b"".join(tnet_dumps(v) for v in value), b"]"
    elif isinstance(value, dict):
        body, tag = b"".join(tnet_dumps(k) + tnet_dumps(v) for k, v in value.items()), b"}"
    else:
        raise TypeError("no tnetstring form for %r" % type(value))
    return b"%d:%s%s" % (len(body), body, tag)


def _tnet_one(data, pos):
    colon = data.index(b":", pos)
    size = int(data[pos:colon])
    start, end = colon + 1, colon + 1 + size
    if end >= len(data):
        raise ValueError("tnetstring shorter than its declared length")
    body, tag = data[start:end], data[end:end + 1]
    if tag == b",":
        value = body.decode("utf-8", "surrogateescape")
    elif tag == b"#":
        value = int(body)
    elif tag == b"^":
        value = float(body)
    elif tag == b"!":
        value = {b"true": True, b"false": False}[body]
    elif tag == b"~":
        value = None
    elif tag in (b"]", b"}"):
        parts, p = [], 0
        while p < len(body):
            v, p = _tnet_one(body, p)
            parts.append(v)
        value = parts if tag == b"]" else dict(zip(parts[0::2], parts[1::2]))
    else:
        raise ValueError("unknown tnetstring tag %r" % tag)
    return value, end + 1


def tnet_loads(data):
    """Decode one tnetstring; byte strings come back as str (tests compare them with text)."""
    value, end = _tnet_one(bytes(data), 0)
    if end != len(data):
        raise ValueError("bytes after the tnetstring")
    return value


# --- sockets -------------------------------------------------------------------------------------------------


def context():
    return zmq.Context.instance()


def new_socket(kind):
    s = context().socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    return s


def connect_ready(sock, endpoint, timeout=5.0):
    """Connect and return once the ZMTP handshake with the peer is done, so a first send is not queued for a
    peer that may never come (and a SUB's subscription is on its way)."""
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    try:
        sock.connect(endpoint)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not monitor.poll(int(left * 1000)):
                raise AssertionError("no ZeroMQ handshake with %s within %.1f s" % (endpoint, timeout))
            event = zmq.utils.monitor.parse_monitor_message(monitor.recv_multipart())
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return sock
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)


class Xpub:
    """An XPUB socket that records the subscription frames it receives, with when they arrived.

    Frames are only read inside `wait_frame`/`drain`, on the caller's thread (a ZeroMQ socket must not be
    shared between threads, and the test also sends on this one)."""

    def __init__(self, verbose=True):
        self.sock = new_socket(zmq.XPUB)
        if verbose:
            # Every subscribe reaches us, even a repeated one: a test can then count them.
            self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.frames = []  # (monotonic time, frame)

    def bind(self):
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = "tcp://127.0.0.1:%d" % port
        return self

    def connect(self, endpoint):
        connect_ready(self.sock, endpoint)
        return self

    def drain(self, seconds=0.0):
        """Record what arrives within `seconds` (0: only what is already there)."""
        deadline = time.monotonic() + seconds
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not self.sock.poll(int(left * 1000)):
                return
            self.frames.append((time.monotonic(), self.sock.recv()))

    def wait_frame(self, frame, timeout=5.0, since=0):
        """Wait for `frame` among the frames recorded from index `since` on; returns its arrival time."""
        deadline = time.monotonic() + timeout
        while True:
            for at, f in self.frames[since:]:
                if f == frame:
                    return at
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise AssertionError("XPUB never got %r within %.1f s; got %r"
                                     % (frame, timeout, [f for _, f in self.frames[-20:]]))
            self.frames.append((time.monotonic(), self.sock.recv()))

    def count(self, frame):
        return sum(1 for _, f in self.frames if f == frame)

    def send(self, *frames):
        self.sock.send_multipart(list(frames))

    def close(self):
        self.sock.close(linger=0)


def decode_stats_frame(frame):
    """`<type> T<tnetstring>` or `<type> J<json>` → (type, fields)."""
    kind, sep, rest = frame.partition(b" ")
    assert sep, "stats frame without a type: %r" % frame[:80]
    if rest[:1] == b"T":
        return kind.decode(), tnet_loads(rest[1:])
    if rest[:1] == b"J":
        return kind.decode(), json.loads(rest[1:])
    raise AssertionError("stats frame in an unknown encoding: %r" % frame[:80])


class StatsCollector:
    """Subscribes to a stats PUB socket on a thread of its own and keeps every event as
    (monotonic time, type, fields, raw frame). Tests read `events`; `wait` blocks on a condition."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.events = []
        self.cond = threading.Condition()
        self.stopping = False
        self.error = None
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "stats collector could not connect: %r" % self.error
        # A PUB socket drops what it publishes before a subscription has reached it, and nothing tells the
        # subscriber when that happened: the first event (a report comes every interval) proves it did.
        self.wait(lambda t, f: True, timeout=5, what="a first stats event")

    def _run(self):
        sock = new_socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            connect_ready(sock, self.endpoint)
            self.connected.set()
            while not self.stopping:
                if not sock.poll(100):
                    continue
                raw = sock.recv()
                kind, fields = decode_stats_frame(raw)
                with self.cond:
                    self.events.append((time.monotonic(), kind, fields, raw))
                    self.cond.notify_all()
        except Exception as e:  # reported by the next wait, not lost on this thread
            self.error = e
            self.connected.set()
            with self.cond:
                self.cond.notify_all()
        finally:
            sock.close(linger=0)

    def mark(self):
        with self.cond:
            return len(self.events)

    def since(self, mark, kind=None):
        with self.cond:
            return [(at, k, f) for at, k, f, _ in self.events[mark:] if kind is None or k == kind]

    def wait(self, pred, since=0, timeout=5.0, what="stats event"):
        """The first (time, type, fields) from index `since` on with pred(type, fields) true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.events):
                    at, kind, fields, _ = self.events[i]
                    i += 1
                    if pred(kind, fields):
                        return at, kind, fields
                if self.error is not None:
                    raise AssertionError("stats collector failed: %r" % self.error)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1f s; last events: %r"
                                         % (what, timeout, [(k, f) for _, k, f, _ in self.events[-15:]]))
                self.cond.wait(left)

    def wait_quiet(self, kind, seconds, timeout=5.0):
        """Wait until no `kind` event came for `seconds` (so earlier activity is all accounted for)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.cond:
                last = max((at for at, k, _, _ in self.events if k == kind), default=0.0)
            if time.monotonic() - last >= seconds:
                return
            time.sleep(0.05)
        raise AssertionError("%s events never stopped for %.2f s" % (kind, seconds))

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)


def call(endpoint, method, args=None, req_id="t-1", timeout=5.0):
    """One ZRPC request over REQ (which adds the empty delimiter); the decoded reply."""
    request = {"id": req_id, "method": method}
    if args is not None:
        request["args"] = args
    return call_raw(endpoint, tnet_dumps(request), timeout)


def call_raw(endpoint, frame, timeout=5.0):
    sock = new_socket(zmq.REQ)
    try:
        connect_ready(sock, endpoint)
        sock.send(frame)
        if not sock.poll(int(timeout * 1000)):
            raise AssertionError("the command socket did not answer %r within %.1f s" % (frame[:60], timeout))
        return tnet_loads(sock.recv())
    finally:
        sock.close(linger=0)


# --- HTTP --------------------------------------------------------------------------------------------------


class StreamClient:
    """A raw HTTP/1.1 client for one held stream: reads the response head, then decodes the chunked body as it
    arrives so a test can compare exactly what was delivered."""

    def __init__(self, port, path, first=b"open\n", timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: holdfast-test\r\n\r\n" % path.encode())
        self.raw = b""
        self.body = b""
        self.head = None
        self.chunked = False
        self.read_until(first, timeout)

    def _take(self):
        """Move complete chunks (or everything, unchunked) from `raw` to `body`."""
        if self.head is None:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head, self.raw = self.raw[:end].decode("latin-1"), self.raw[end + 4:]
            assert self.head.startswith("HTTP/1.1 200"), self.head
            self.chunked = re.search(r"(?im)^transfer-encoding:\s*chunked", self.head) is not None
        if not self.chunked:
            self.body, self.raw = self.body + self.raw, b""
            return
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end].split(b";")[0], 16)
            if len(self.raw) < line_end + 2 + size + 2:
                return
            self.body += self.raw[line_end + 2:line_end + 2 + size]
            self.raw = self.raw[line_end + 2 + size + 2:]

    def read_until(self, data, timeout=5.0):
        """Wait until the body so far contains `data`; returns the body so far."""
        return self._read(lambda: data in self.body, repr(data), timeout)

    def read_length(self, n, timeout=5.0):
        """Wait until the body so far is at least `n` bytes long; returns the body so far."""
        return self._read(lambda: len(self.body) >= n, "%d bytes" % n, timeout)

    def _read(self, done, what, timeout):
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("stream never got %s within %.1f s; body %r" % (what, timeout, self.body))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError("stream closed before %s arrived; body %r" % (what, self.body))
            self.raw += chunk
            self._take()
        return self.body

    def close(self):
        self.sock.close()
