"""Holdfast with a real third-party GRIP library: Python `gripcontrol` builds the backend's instructions,
validates holdfast's Grip-Sig, and publishes through holdfast's control API."""

import http.server
import os
import socket
import subprocess
import tempfile
import threading
import time

import gripcontrol
import pytest

HOLDFAST = os.environ.get(
    "HOLDFAST_BIN",
    os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "holdfast"),
)
KEY = "gripcontrol-test-secret-of-32-bytes!"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_signatures = []

    def do_GET(self):
        token = self.headers.get("Grip-Sig")
        Backend.seen_signatures.append(bool(token) and gripcontrol.validate_sig(token, KEY))
        channel = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/stream/"):
            headers = {"Grip-Hold": "stream", "Grip-Channel": gripcontrol.create_grip_channel_header(channel)}
            body = b"stream open\n"
        else:
            headers = {"Grip-Hold": "response", "Grip-Channel": gripcontrol.create_grip_channel_header(channel)}
            body = b"timed out\n"
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack():
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http_port, control_port = free_port(), free_port()
    work = tempfile.mkdtemp(prefix="holdfast-gripcontrol-")
    conf = os.path.join(work, "pushpin.conf")
    with open(conf, "w") as f:
        f.write(
            "[runner]\nhttp_port=127.0.0.1:%d\n[proxy]\nroutesfile=routes\nsig_iss=pushpin\nsig_key=%s\n"
            "[handler]\npush_in_http_addr=127.0.0.1\npush_in_http_port=%d\n" % (http_port, KEY, control_port)
        )
    with open(os.path.join(work, "routes"), "w") as f:
        f.write("* 127.0.0.1:%d\n" % backend.server_address[1])
    log = open(os.path.join(work, "holdfast.log"), "wb")
    proc = subprocess.Popen([HOLDFAST, "--config", conf], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", control_port), timeout=0.2).close()
            socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "holdfast did not start"
            time.sleep(0.05)
    pub = gripcontrol.GripPubControl({"control_uri": "http://127.0.0.1:%d" % control_port})
    yield http_port, pub
    proc.terminate()
    proc.wait(timeout=10)
    backend.shutdown()
    log.close()


def read_until(sock, marker, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_stream_receives_what_gripcontrol_publishes(stack):
    http_port, pub = stack
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"GET /stream/gc-stream HTTP/1.1\r\nHost: test\r\n\r\n")
    head = read_until(sock, b"stream open\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Grip-" not in head
    pub.publish_http_stream("gc-stream", "from gripcontrol\n", blocking=True)
    assert b"from gripcontrol\n" in read_until(sock, b"from gripcontrol\n")
    sock.close()
    assert Backend.seen_signatures and all(Backend.seen_signatures), "Grip-Sig must validate with gripcontrol"


def test_long_poll_receives_a_gripcontrol_response(stack):
    http_port, pub = stack
    sock = socket.create_connection(("127.0.0.1", http_port))
    sock.sendall(b"GET /poll/gc-poll HTTP/1.1\r\nHost: test\r\n\r\n")
    # The hold starts once the backend has answered; publish until the held request is answered, so the test
    # does not depend on timing (only one publish can complete a response hold).
    sock.settimeout(0.1)
    resp = b""
    deadline = time.monotonic() + 5
    while b"published body\n" not in resp and time.monotonic() < deadline:
        pub.publish_http_response("gc-poll", gripcontrol.HttpResponseFormat(body="published body\n"), blocking=True)
        try:
            resp += sock.recv(65536)
        except socket.timeout:
            pass
    assert resp.startswith(b"HTTP/1.1 200 OK\r\n"), resp
    assert resp.endswith(b"\r\n\r\npublished body\n"), resp
    sock.close()
