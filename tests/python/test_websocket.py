"""WebSockets through holdfast with third-party code on both ends: the Python `websockets` client library,
and a WebSocket-over-HTTP backend written with `gripcontrol`'s event codec and control messages, which also
publishes `ws-message` items through holdfast's control API."""

import http.server
import gripcontrol
import pytest
from holdfast_stack import Stack
from pubcontrol import Item
from websockets.sync.client import connect

CHANNEL = "py-ws-room"


class WohBackend(http.server.BaseHTTPRequestHandler):
    """Answers OPEN by subscribing the connection, echoes text with the GRIP prefix, PING with PONG, CLOSE
    with CLOSE."""

    protocol_version = "HTTP/1.1"
    connection_ids = set()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        WohBackend.connection_ids.add(self.headers.get("Connection-Id"))
        out = []
        for ev in gripcontrol.decode_websocket_events(body):
            if ev.type == "OPEN":
                out.append(gripcontrol.WebSocketEvent("OPEN"))
                sub = gripcontrol.websocket_control_message("subscribe", {"channel": CHANNEL})
                out.append(gripcontrol.WebSocketEvent("TEXT", "c:" + sub))
            elif ev.type == "TEXT":
                out.append(gripcontrol.WebSocketEvent("TEXT", "m:" + ev.content.decode()))
            elif ev.type == "PING":
                out.append(gripcontrol.WebSocketEvent("PONG", ev.content))
            elif ev.type == "CLOSE":
                out.append(gripcontrol.WebSocketEvent("CLOSE", ev.content))
        reply = gripcontrol.encode_websocket_events(out)
        if isinstance(reply, str):
            reply = reply.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/websocket-events")
        self.send_header("Sec-WebSocket-Extensions", "grip")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack():
    st = Stack(WohBackend, target_options=",over_http")
    pub = gripcontrol.GripPubControl({"control_uri": "http://127.0.0.1:%d" % st.control_port})
    yield st, pub
    st.close()


def publish_until_received(ws, pub, text):
    """The subscription is live a moment after the OPEN answer: publish until the client has the message."""
    for _ in range(50):
        pub.publish(CHANNEL, Item(gripcontrol.WebSocketMessageFormat(text)), blocking=True)
        try:
            return ws.recv(timeout=0.2)
        except TimeoutError:
            continue
    pytest.fail("publish never arrived")


def test_websockets_client_talks_to_a_gripcontrol_backend_over_http(stack):
    st, pub = stack
    with connect("ws://127.0.0.1:%d/chat" % st.http_port, open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        pong = ws.ping(b"are you there")
        assert pong.wait(timeout=5), "no pong: holdfast must relay the backend's PONG event"
        assert publish_until_received(ws, pub, "pushed by gripcontrol") == "pushed by gripcontrol"
    assert len(WohBackend.connection_ids) == 1


def test_binary_publish_and_close_action_reach_the_websockets_client(stack):
    st, pub = stack
    with connect("ws://127.0.0.1:%d/chat" % st.http_port, open_timeout=5) as ws:
        publish_until_received(ws, pub, "probe")
        pub.publish(CHANNEL, Item(gripcontrol.WebSocketMessageFormat(b"\x00\x01\xff", binary=True)), blocking=True)
        assert ws.recv(timeout=5) == b"\x00\x01\xff"
        pub.publish(CHANNEL, Item(gripcontrol.WebSocketMessageFormat(action="close", code=4321)), blocking=True)
        with pytest.raises(Exception) as info:
            ws.recv(timeout=5)
        assert "4321" in str(info.value), info.value
