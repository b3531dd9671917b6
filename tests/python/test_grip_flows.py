"""GRIP flows beyond the conformance suite, over real sockets: hint retries with Grip-Last, prev-id ordering,
id de-duplication, and message_rate throttling."""

import http.server
import json
import socket
import time
import urllib.request

import pytest
from holdfast_stack import Stack

class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = []

    bodies = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Backend.bodies.append((self.path, body))
        self.do_GET()

    def do_GET(self):
        Backend.requests.append((self.path, self.headers.get_all("Grip-Last") or []))
        hits = sum(1 for p, _ in Backend.requests if p == self.path)
        channel = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/upd/"):
            headers = {"Grip-Hold": "response", "Grip-Channel": channel}
            body = b"nothing yet\n"
        elif self.path.startswith("/hint/") and hits > 1:
            headers, body = {}, b"fresh data after hint\n"
        elif self.path.startswith("/hint/"):
            headers = {"Grip-Hold": "response", "Grip-Channel": "%s; prev-id=41" % channel}
            body = b"nothing yet\n"
        else:
            headers = {"Grip-Hold": "stream", "Grip-Channel": channel}
            body = b"open\n"
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack():
    st = Stack(
        Backend,
        handler_ini="id_cache_ttl=60\nmessage_wait=300\nmessage_rate=50\nmessage_hwm=100000",
        args=("--workers", "1"),
    )
    yield st.http_port, st.control_port
    st.close()


def publish(control_port, *items):
    req = urllib.request.Request(
        "http://127.0.0.1:%d/publish/" % control_port,
        data=json.dumps({"items": list(items)}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def open_stream(http_port, path):
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
    sock.settimeout(5)
    data = b""
    while b"open\n" not in data:
        data += sock.recv(65536)
    return sock


def read_for(sock, seconds):
    sock.settimeout(0.1)
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        except socket.timeout:
            pass
    return data


def test_hint_retries_the_request_with_grip_last(stack):
    http_port, control_port = stack
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"GET /hint/hc HTTP/1.1\r\nHost: t\r\n\r\n")
    deadline = time.monotonic() + 5
    while not any(p == "/hint/hc" for p, _ in Backend.requests):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)  # the instruct response is read and the hold starts
    publish(control_port, {"channel": "hc", "formats": {"http-response": {"action": "hint"}}})
    resp = read_for(sock, 1.5)
    assert resp.startswith(b"HTTP/1.1 200 OK\r\n"), resp
    assert resp.endswith(b"fresh data after hint\n"), resp
    retried = [h for p, h in Backend.requests if p == "/hint/hc"]
    assert len(retried) == 2
    assert retried[1] == ["hc; last-id=41"], retried
    sock.close()


def test_hint_retries_a_request_with_a_body_with_the_same_body(stack):
    http_port, control_port = stack
    body = b"x=1&y=" + b"z" * 5000
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"POST /hint/hb HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    deadline = time.monotonic() + 5
    while not any(p == "/hint/hb" for p, _ in Backend.requests):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    publish(control_port, {"channel": "hb", "formats": {"http-response": {"action": "hint"}}})
    resp = read_for(sock, 1.5)
    assert resp.endswith(b"fresh data after hint\n"), resp
    sent = [b for p, b in Backend.bodies if p == "/hint/hb"]
    assert sent == [body, body], [len(b) for b in sent]
    retried = [h for p, h in Backend.requests if p == "/hint/hb"]
    assert retried[1] == ["hb; last-id=41"], retried
    sock.close()


def test_grip_answer_to_a_request_body_too_large_to_keep_is_a_400(stack):
    http_port, _ = stack
    body = b"a" * 100001
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"POST /upd/big HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    resp = read_for(sock, 2)
    assert resp.startswith(b"HTTP/1.1 400 "), resp[:200]
    assert resp.endswith(b"Request too large to accept GRIP instruct.\n"), resp[-100:]
    sock.close()


def wait_backend(path, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while sum(1 for p, _ in Backend.requests if p == path) < n:
        assert time.monotonic() < deadline, "backend saw %s fewer than %d times" % (path, n)
        time.sleep(0.02)


def test_prev_id_behind_the_channel_retries_at_once_with_grip_last(stack):
    http_port, control_port = stack
    # Another listener keeps the channel active, and a publish with an id makes 50 its last id.
    watcher = open_stream(http_port, "/s/pc")
    publish(control_port, {"channel": "pc", "id": "50", "formats": {"http-stream": {"content": "x\n"}}})
    assert read_for(watcher, 0.5).endswith(b"x\n\r\n")
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"GET /hint/pc HTTP/1.1\r\nHost: t\r\n\r\n")
    # The backend said prev-id=41 while 50 was already published: no hold, an immediate retry (the
    # channel already had a listener, so no first-subscription update is involved).
    resp = read_for(sock, 0.8)
    assert resp.endswith(b"fresh data after hint\n"), resp
    asked = [h for p, h in Backend.requests if p == "/hint/pc"]
    assert asked == [[], ["pc; last-id=41"]], asked
    sock.close()
    watcher.close()


def test_publish_that_skips_ahead_of_a_holds_prev_id_retries_it(stack):
    http_port, control_port = stack
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"GET /hint/pm HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_backend("/hint/pm", 1)
    time.sleep(0.2)
    # The hold saw 41; this item follows 42, so the hold missed one: it asks the backend again.
    publish(control_port, {"channel": "pm", "id": "43", "prev-id": "42",
                           "formats": {"http-response": {"body": "skipped ahead\n"}}})
    resp = read_for(sock, 1.5)
    assert resp.endswith(b"fresh data after hint\n"), resp
    asked = [h for p, h in Backend.requests if p == "/hint/pm"]
    assert asked == [[], ["pm; last-id=41"]], asked
    sock.close()


def test_out_of_order_publishes_are_delivered_in_order_and_duplicates_dropped(stack):
    http_port, control_port = stack
    sock = open_stream(http_port, "/stream/seq")
    time.sleep(0.2)

    def item(i, prev, content):
        it = {"channel": "seq", "id": i, "formats": {"http-stream": {"content": content}}}
        if prev:
            it["prev-id"] = prev
        return it

    publish(control_port, item("1", None, "one\n"))
    publish(control_port, item("3", "2", "three\n"), item("2", "1", "two\n"), item("2", "1", "two again\n"))
    data = read_for(sock, 1.0)
    assert b"one\n" in data and b"two\n" in data and b"three\n" in data, data
    assert data.index(b"one\n") < data.index(b"two\n") < data.index(b"three\n"), data
    assert b"two again" not in data, "a duplicate id must be dropped"
    sock.close()


def test_a_missing_predecessor_is_given_up_after_message_wait(stack):
    http_port, control_port = stack
    sock = open_stream(http_port, "/stream/gap")
    time.sleep(0.2)
    publish(control_port, {"channel": "gap", "id": "a", "formats": {"http-stream": {"content": "A\n"}}})
    publish(control_port, {"channel": "gap", "id": "c", "prev-id": "b", "formats": {"http-stream": {"content": "C\n"}}})
    first = read_for(sock, 0.15)
    assert b"A\n" in first and b"C\n" not in first, first
    later = read_for(sock, 1.0)  # message_wait is 300 ms
    assert b"C\n" in later, later
    sock.close()


def test_message_rate_spreads_deliveries_over_time(stack):
    http_port, control_port = stack
    sock = open_stream(http_port, "/stream/rate")
    time.sleep(0.2)
    # message_rate=50/s with one burst-second of credit: 150 messages need about two seconds.
    items = [{"channel": "rate", "formats": {"http-stream": {"content": "m%d\n" % i}}} for i in range(150)]
    start = time.monotonic()
    publish(control_port, *items)
    data = b""
    while data.count(b"m") < 150 and time.monotonic() - start < 10:
        data += read_for(sock, 0.2)
    elapsed = time.monotonic() - start
    assert data.count(b"m") == 150, "nothing may be lost below message_hwm"
    assert elapsed >= 1.5, "150 deliveries at 50/s must take about 2 s, took %.2f s" % elapsed
    sock.close()


def test_message_hwm_drops_what_does_not_fit_behind_the_rate_and_says_so():
    """As Pushpin: a publish's deliveries all pass the rate limiter's queue, which holds at most message_hwm=30.
    Of 200 published at once exactly the first 30 arrive, in order (20 at once on message_rate=20's burst
    credit, 10 over the next half second), and the other 170 are dropped with a warning."""
    st = Stack(Backend, handler_ini="message_rate=20\nmessage_hwm=30", args=("--workers", "1"))
    try:
        sock = open_stream(st.http_port, "/stream/hwm")
        time.sleep(0.2)
        since = st.log_size()
        items = [{"channel": "hwm", "formats": {"http-stream": {"content": "m%d\n" % i}}} for i in range(200)]
        publish(st.control_port, *items)
        data = b""
        end = time.monotonic() + 6
        while data.count(b"m") < 30 and time.monotonic() < end:
            data += read_for(sock, 0.2)
        data += read_for(sock, 1.0)  # nothing more may follow
        got = [int(line[1:]) for line in data.split(b"\n") if line.startswith(b"m")]
        assert got == list(range(30)), got
        st.wait_for_log("exceeded publish hwm", since)
        sock.close()
    finally:
        st.close()


def test_first_subscription_updates_the_hold_once_after_a_second(stack):
    """Pushpin's update_on_first_subscription: ~1 s after a channel's first subscriber the held request is made
    again (closing the race with a publish that happened before the subscription); once, not every second."""
    http_port, control_port = stack
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"GET /upd/fresh HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(3.5)
    hits = [p for p, _ in Backend.requests if p == "/upd/fresh"]
    assert len(hits) == 2, "one request, then exactly one update: %r" % hits
    publish(control_port, {"channel": "fresh", "formats": {"http-response": {"body": "after update\n"}}})
    resp = read_for(sock, 1.0)
    assert resp.startswith(b"HTTP/1.1 200 OK\r\n") and resp.endswith(b"after update\n"), resp
    sock.close()
