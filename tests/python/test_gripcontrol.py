"""Holdfast with a real third-party GRIP library: Python `gripcontrol` builds the backend's instructions,
validates holdfast's Grip-Sig, and publishes through holdfast's control API."""

import http.server
import socket
import time

import gripcontrol
import pytest
from holdfast_stack import Stack

KEY = "gripcontrol-test-secret-of-32-bytes!"


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
    st = Stack(Backend, proxy_ini="sig_iss=pushpin\nsig_key=%s" % KEY)
    pub = gripcontrol.GripPubControl({"control_uri": "http://127.0.0.1:%d" % st.control_port})
    yield st.http_port, pub
    st.close()


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
