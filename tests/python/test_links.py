"""Next links and gone links (Grip-Link rel=next / rel=gone) over real sockets: chaining, the next-link
request's headers, refresh after inactivity, hints, retries after failures, wrong hold kinds, and the
gone notice when the client leaves. Also stream holds whose initial body is larger than a GRIP response
may be buffered, and backend connection reuse by held streams."""

import http.server
import json
import socket
import threading
import time
import urllib.request

import pytest
from holdfast_stack import Stack


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    requests = []  # (method, path, headers dict of lists, body)

    def record(self, body=b""):
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        headers["x-peer-port"] = [str(self.client_address[1])]
        with Backend.lock:
            Backend.requests.append((self.command, self.path, headers, body))
            return sum(1 for r in Backend.requests if r[1] == self.path)

    def reply(self, headers, body, code=200):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.record(self.rfile.read(length))
        self.reply({}, b"")

    def do_GET(self):
        hits = self.record()
        p = self.path.split("?")[0]
        if p == "/next1":
            self.reply({"Grip-Link": "</next2>; rel=next", "X-First": "1"}, b"part1\n")
        elif p == "/next2":
            self.reply({"Grip-Hold": "stream", "Grip-Channel": "nl"}, b"part2\n")
        elif p == "/plain1":
            self.reply({"Grip-Link": "<plain2>; rel=next"}, b"a\n")
        elif p == "/plain2":
            self.reply({"Content-Type": "text/plain"}, b"b\n")
        elif p == "/refresh":
            self.reply(
                {
                    "Grip-Hold": "stream",
                    "Grip-Channel": "rf; prev-id=7",
                    "Grip-Link": "</refresh-next>; rel=next; timeout=1",
                },
                b"start\n",
            )
        elif p == "/refresh-next":
            self.reply({"Grip-Hold": "stream", "Grip-Channel": "rf2"}, b"refreshed\n")
        elif p == "/hintstream":
            self.reply(
                {"Grip-Hold": "stream", "Grip-Channel": "hs", "Grip-Link": "</hint-next>; rel=next"},
                b"s\n",
            )
        elif p == "/hint-next":
            self.reply({}, b"after hint\n")
        elif p == "/flaky":
            self.reply({"Grip-Link": "</flaky-next>; rel=next"}, b"f1\n")
        elif p == "/flaky-next" and hits == 1:
            self.reply({}, b"not yet\n", code=503)
        elif p == "/flaky-next":
            self.reply({}, b"f2\n")
        elif p == "/badnext":
            self.reply({"Grip-Link": "</resphold>; rel=next"}, b"x\n")
        elif p == "/resphold":
            self.reply({"Grip-Hold": "response", "Grip-Channel": "never"}, b"held\n")
        elif p == "/gone":
            self.reply(
                {"Grip-Hold": "stream", "Grip-Channel": "gn", "Grip-Link": "</gone-notice?s=1>; rel=gone"},
                b"open\n",
            )
        elif p == "/big":
            body = b"".join(b"%06d\n" % i for i in range(150001 // 7 + 1))[:150001]
            self.reply({"Grip-Hold": "stream", "Grip-Channel": "big"}, body)
        elif p == "/previd-no-link":
            self.reply({"Grip-Hold": "stream", "Grip-Channel": "pv; prev-id=3"}, b"no\n")
        else:
            self.reply({}, b"unknown\n", code=404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack():
    st = Stack(Backend, proxy_ini="sig_key=link-secret\nsig_iss=pushpin", args=("--workers", "1"))
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


class Stream:
    """A raw HTTP/1.1 client that decodes a chunked response as it arrives."""

    def __init__(self, http_port, path, extra=""):
        self.sock = socket.create_connection(("127.0.0.1", http_port))
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path, extra)).encode())
        self.raw = b""
        self.head = None
        self.body = b""
        self.ended = False

    def _parse(self):
        if self.head is None:
            if b"\r\n\r\n" not in self.raw:
                return
            self.head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        while not self.ended:
            line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            size = int(line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            if size == 0:
                self.ended = True
            self.body += rest[:size]
            self.raw = rest[size + 2 :]

    def read_until(self, pred, timeout=5.0):
        end = time.monotonic() + timeout
        self.sock.settimeout(0.05)
        while not pred(self) and time.monotonic() < end:
            try:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.raw += data
                self._parse()
            except socket.timeout:
                pass
        return pred(self)

    def close(self):
        self.sock.close()


def requests_to(path):
    with Backend.lock:
        return [r for r in Backend.requests if r[1].split("?")[0] == path]


def wait_requests(path, n, timeout=5.0):
    end = time.monotonic() + timeout
    while len(requests_to(path)) < n and time.monotonic() < end:
        time.sleep(0.02)
    return requests_to(path)


def test_no_hold_response_chains_into_a_stream_hold(stack):
    http_port, control_port = stack
    s = Stream(http_port, "/next1", "X-Client: secret\r\n")
    assert s.read_until(lambda s: s.body == b"part1\npart2\n"), (s.head, s.body)
    head = s.head.decode().lower()
    assert head.startswith("http/1.1 200"), head
    assert "transfer-encoding: chunked" in head and "x-first: 1" in head and "grip-" not in head
    # The next link's request carries no client headers, only Grip-Last/Grip-Sig style ones.
    (method, _, headers, _), = requests_to("/next2")
    assert method == "GET"
    assert "x-client" not in headers and "grip-sig" in headers, headers
    time.sleep(0.1)
    publish(control_port, {"channel": "nl", "formats": {"http-stream": {"content": "pushed\n"}}})
    assert s.read_until(lambda s: s.body.endswith(b"pushed\n")), s.body
    s.close()


def test_plain_next_response_ends_the_stream_and_the_connection_stays_usable(stack):
    http_port, _ = stack
    s = Stream(http_port, "/plain1")
    assert s.read_until(lambda s: s.ended), (s.head, s.body)
    assert s.body == b"a\nb\n"
    # Keep-alive: a second request on the same connection works.
    s.sock.sendall(b"GET /plain2 HTTP/1.1\r\nHost: t\r\n\r\n")
    s.sock.settimeout(5)
    data = s.raw
    while b"b\n" not in data:
        data += s.sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200"), data
    s.close()


def test_idle_stream_refreshes_from_its_next_link_with_grip_last(stack):
    http_port, control_port = stack
    s = Stream(http_port, "/refresh")
    assert s.read_until(lambda s: s.body == b"start\n")
    assert requests_to("/refresh-next") == []
    # No message within timeout=1: the next link is fetched, asking for what came after id 7.
    reqs = wait_requests("/refresh-next", 1, timeout=4)
    assert len(reqs) == 1
    assert reqs[0][2].get("grip-last") == ["rf; last-id=7"], reqs[0][2]
    assert s.read_until(lambda s: s.body == b"start\nrefreshed\n"), s.body
    # The new instructions replace the old: rf2 is subscribed, rf is not.
    time.sleep(0.1)
    publish(control_port, {"channel": "rf", "formats": {"http-stream": {"content": "old\n"}}})
    publish(control_port, {"channel": "rf2", "formats": {"http-stream": {"content": "new\n"}}})
    assert s.read_until(lambda s: s.body.endswith(b"new\n")), s.body
    assert b"old" not in s.body
    s.close()


def test_hint_on_a_stream_fetches_the_next_link(stack):
    http_port, control_port = stack
    s = Stream(http_port, "/hintstream")
    assert s.read_until(lambda s: s.body == b"s\n")
    time.sleep(0.1)
    publish(control_port, {"channel": "hs", "formats": {"http-stream": {"action": "hint"}}})
    assert s.read_until(lambda s: s.ended), s.body
    assert s.body == b"s\nafter hint\n"
    s.close()


def test_failed_next_link_is_retried_after_a_backoff(stack):
    http_port, _ = stack
    s = Stream(http_port, "/flaky")
    assert s.read_until(lambda s: s.body == b"f1\n")
    started = time.monotonic()
    assert s.read_until(lambda s: s.ended, timeout=5), s.body
    assert s.body == b"f1\nf2\n"
    # First retry waits 1 s plus up to 1 s of jitter.
    assert 0.9 <= time.monotonic() - started <= 3.0
    assert len(requests_to("/flaky-next")) == 2
    s.close()


def test_next_link_with_a_response_hold_ends_the_stream(stack):
    http_port, _ = stack
    s = Stream(http_port, "/badnext")
    assert s.read_until(lambda s: s.ended), s.body
    assert s.body == b"x\n"
    s.close()


def test_stream_prev_id_without_next_link_is_an_error(stack):
    http_port, _ = stack
    s = Stream(http_port, "/previd-no-link")
    assert s.read_until(lambda s: s.head is not None)
    assert s.head.startswith(b"HTTP/1.1 502"), s.head
    s.close()


def test_gone_link_is_posted_when_the_client_leaves(stack):
    http_port, _ = stack
    s = Stream(http_port, "/gone")
    assert s.read_until(lambda s: s.body == b"open\n")
    assert requests_to("/gone-notice") == []
    s.close()
    reqs = wait_requests("/gone-notice", 1)
    assert len(reqs) == 1, Backend.requests[-3:]
    method, path, headers, body = reqs[0]
    assert (method, path, body) == ("POST", "/gone-notice?s=1", b"")
    assert "grip-sig" in headers


def test_held_streams_give_their_backend_connection_back_to_the_pool(stack):
    http_port, _ = stack
    first = Stream(http_port, "/next2?one")
    assert first.read_until(lambda s: s.body == b"part2\n")
    second = Stream(http_port, "/next2?two")
    assert second.read_until(lambda s: s.body == b"part2\n")
    ports = {r[2]["x-peer-port"][0] for r in requests_to("/next2") if r[1] != "/next2"}
    assert len(ports) == 1, "both holds' requests went over one pooled backend connection: %s" % ports
    first.close()
    second.close()


def test_stream_hold_with_an_initial_body_over_100_kb_is_relayed_then_held(stack):
    http_port, control_port = stack
    want = b"".join(b"%06d\n" % i for i in range(150001 // 7 + 1))[:150001]
    s = Stream(http_port, "/big")
    assert s.read_until(lambda s: len(s.body) >= len(want), timeout=10), len(s.body)
    assert s.body == want
    head = s.head.decode().lower()
    assert head.startswith("http/1.1 200") and "content-length" not in head and "grip-" not in head
    publish(control_port, {"channel": "big", "formats": {"http-stream": {"content": "after\n"}}})
    assert s.read_until(lambda s: s.body.endswith(b"after\n")), s.body[-20:]
    s.close()
