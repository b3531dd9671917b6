"""The ZeroMQ bridge over real ZeroMQ sockets, beyond the conformance file test_zmq.py: legacy and malformed
PULL input, SUB framing and connect mode, the subscription linger as an XPUB publisher sees it, every
command-socket method with its failure answers, and what the stats socket reports.

Each stream client also listens on a private channel of its own; the stats `sub` event for that channel
says the client's subscriptions are live (a worker subscribes all of a hold's channels at once and reports
at the end of that loop), so no test races a publish against a subscription."""

import contextlib
import http.server
import json
import threading
import time
import urllib.request
import uuid

import gripcontrol
import pytest
import zmq
from holdfast_stack import Stack
from websockets.sync.client import connect as ws_connect
from zmq_helpers import (StatsCollector, StreamClient, Xpub, call, call_raw, connect_ready, decode_stats_frame,
                         new_socket, tnet_dumps, tnet_loads)

LINGER = 2  # subscription_linger in every stack here, seconds


class Backend(http.server.BaseHTTPRequestHandler):
    """`GET /stream/a,b` holds a stream on channels a and b; `GET /poll/a` holds a long-poll on a; `GET /plain`
    answers at once. WebSocket-over-HTTP requests (`POST`) to `/ws/<channel>` are answered with OPEN plus a
    subscription to that channel, and recorded in `woh` as (Connection-Id, path, event types)."""

    protocol_version = "HTTP/1.1"
    woh = []
    woh_lock = threading.Lock()

    def do_GET(self):
        kind, _, arg = self.path.lstrip("/").partition("/")
        if kind == "stream":
            headers, body = {"Grip-Hold": "stream", "Grip-Channel": arg.replace(",", ", ")}, b"open\n"
        elif kind == "poll":
            headers = {"Grip-Hold": "response", "Grip-Channel": arg, "Grip-Timeout": "30"}
            body = b"timed out\n"
        else:
            headers, body = {}, b"plain\n"
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        events = gripcontrol.decode_websocket_events(body) if body else []
        with Backend.woh_lock:
            Backend.woh.append((self.headers.get("Connection-Id"), self.path, [e.type for e in events]))
        out = []
        for ev in events:
            if ev.type == "OPEN":
                out.append(gripcontrol.WebSocketEvent("OPEN"))
                channel = self.path.rsplit("/", 1)[-1]
                sub = gripcontrol.websocket_control_message("subscribe", {"channel": channel})
                out.append(gripcontrol.WebSocketEvent("TEXT", "c:" + sub))
            elif ev.type == "CLOSE":
                out.append(gripcontrol.WebSocketEvent("CLOSE", ev.content))
        reply = gripcontrol.encode_websocket_events(out) if out else b""
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


def woh_requests(cid):
    with Backend.woh_lock:
        return [r for r in Backend.woh if r[0] == cid]


def wait_woh(pred, timeout=5.0, what="WebSocket-over-HTTP request"):
    """The backend's recorded requests matching `pred`, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        with Backend.woh_lock:
            hits = [r for r in Backend.woh if pred(r)]
        if hits:
            return hits
        assert time.monotonic() < deadline, "backend never got a %s; got %r" % (what, Backend.woh[-10:])
        time.sleep(0.02)


def wait_woh_count(cid, more_than, what):
    """Wait until the backend has had more than `more_than` requests from connection `cid`."""
    deadline = time.monotonic() + 5
    while len(woh_requests(cid)) <= more_than:
        assert time.monotonic() < deadline, "backend never got a %s; got %r" % (what, woh_requests(cid))
        time.sleep(0.02)


def unique(prefix):
    """Channel names in these tests never prefix one another (ZeroMQ subscriptions match by prefix)."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class Bridge:
    """One holdfast with every ZeroMQ socket, a stats collector and an XPUB connected to its SUB."""

    def __init__(self, stack, xpub=None):
        self.stack = stack
        self.stats = StatsCollector(stack.stats_spec)
        self.xpub = xpub
        self.push = None
        if stack.push_in_spec:
            self.push = connect_ready(new_socket(zmq.PUSH), stack.push_in_spec)
        # A bad message is logged once per second per input at most: remember when each input last
        # complained, so a test naming its reason does not fall into the previous one's second.
        self.last_complaint = {}

    def stream(self, *channels):
        """A stream client on `channels` (and a private channel, its `private`) whose subscriptions are live."""
        private = unique("own")
        mark = self.stats.mark()
        client = StreamClient(self.stack.http_port, "/stream/" + ",".join(channels + (private,)))
        self.stats.wait(lambda t, f: t == "sub" and f.get("channel") == private and not f.get("unavailable"),
                        since=mark, what="subscription of a new stream client")
        client.private = private
        return client

    def close_stream(self, client):
        """Close a stream client and wait until holdfast has dropped its subscriptions."""
        mark = self.stats.mark()
        client.close()
        self.stats.wait(lambda t, f: t == "sub" and f.get("channel") == client.private and f.get("unavailable"),
                        since=mark, what="removal of a closed stream client's subscriptions")

    def push_item(self, channel, content, **extra):
        item = {"channel": channel, "formats": {"http-stream": {"content": content}}}
        item.update(extra)
        self.push.send(b"J" + json.dumps(item).encode())

    def complaint_window(self, input_name):
        """Sleep until this input's log rate limit (one line a second) has passed since its last complaint."""
        last = self.last_complaint.get(input_name)
        if last is not None:
            time.sleep(max(0.0, last + 1.2 - time.monotonic()))

    def expect_complaint(self, input_name, reason, log_from):
        line = self.stack.wait_for_log("zmq: %s: dropped a bad message: " % input_name, since=log_from)
        self.last_complaint[input_name] = time.monotonic()
        assert reason in line, line
        return line

    def close(self):
        self.stats.close()
        if self.push is not None:
            self.push.close(linger=0)
        if self.xpub is not None:
            self.xpub.close()
        self.stack.close()


@pytest.fixture(scope="module")
def hf():
    st = Stack(Backend, target_options=",over_http", handler_ini="message_wait=3000",
               push_in_spec=True, push_in_sub_specs=True, command_spec=True, stats_spec=True,
               subscription_linger=LINGER, stats_report_interval=1,
               routes_before=["*,path_beg=/api/,id=api 127.0.0.1:{backend}"])
    xpub = Xpub(verbose=True).connect(st.push_in_sub_specs[0])
    bridge = Bridge(st, xpub)
    yield bridge
    bridge.close()


# --- PULL ---------------------------------------------------------------------------------------------------


def test_pull_accepts_bare_tnetstring_and_legacy_items_without_formats(hf):
    chan = unique("legacy")
    client = hf.stream(chan)
    # Unprefixed tnetstring with `formats`, then the old top-level format shape in every encoding.
    hf.push.send(tnet_dumps({"channel": chan, "formats": {"http-stream": {"content": "bare\n"}}}))
    hf.push.send(tnet_dumps({"channel": chan, "http-stream": {"content": "bare legacy\n"}}))
    hf.push.send(b"T" + tnet_dumps({"channel": chan, "http-stream": {"content": "T legacy\n"}}))
    hf.push.send(b"J" + json.dumps({"channel": chan, "http-stream": {"content": "J legacy\n"}}).encode())
    body = client.read_until(b"J legacy\n")
    assert body == b"open\nbare\nbare legacy\nT legacy\nJ legacy\n"
    hf.close_stream(client)


BAD_PULL = {
    # Frame 1 alone would be a good item: nothing of a multi-part message may be delivered.
    "multipart": (lambda ch: [b"J" + json.dumps({"channel": ch, "formats": {"http-stream": {
        "content": "part of a multi-part message\n"}}}).encode(), b"second part"],
        "message has 2 parts, not 1"),
    # More frames than holdfast keeps for a handler (16): the rest are received and counted, not stored.
    "forty parts": (lambda ch: [b"J" + json.dumps({"channel": ch, "formats": {"http-stream": {
        "content": "part of a forty-part message\n"}}}).encode()] + [b"x" * 1000] * 39,
        "message has 40 parts, not 1"),
    "J not JSON": (lambda ch: [b'J{"channel": "%s", "formats": ' % ch.encode()], "json parse failed"),
    # Declares 99999 bytes, carries far fewer: must not read past the frame.
    "T length past payload": (lambda ch: [b"T99999:" + tnet_dumps({"channel": ch, "formats": {
        "http-stream": {"content": "truncated\n"}}}).split(b":", 1)[1]], "tnetstring parse failed"),
    # A send without content; well-formed JSON, but not an item.
    "invalid item": (lambda ch: [b"J" + json.dumps({"channel": ch, "formats": {"http-stream": {
        "content-type": "text/plain"}}}).encode()], "invalid format: 'http-stream' does not contain 'content'"),
}


@pytest.mark.parametrize("case", list(BAD_PULL))
def test_pull_drops_a_bad_message_logs_why_and_keeps_serving(hf, case):
    make, reason = BAD_PULL[case]
    chan = unique("badpull")
    client = hf.stream(chan)
    hf.complaint_window("zmq-pull")
    log_from = hf.stack.log_size()
    hf.push.send_multipart(make(chan))
    hf.push_item(chan, "good after bad\n")
    assert client.read_until(b"good after bad\n") == b"open\ngood after bad\n"
    hf.expect_complaint("zmq-pull", reason, log_from)
    hf.close_stream(client)


# --- SUB (holdfast binds; the test's XPUB connects) ----------------------------------------------------------


def test_sub_drops_messages_without_exactly_two_frames(hf):
    chan = unique("subframes")
    client = hf.stream(chan)
    hf.xpub.wait_frame(b"\x01" + chan.encode())
    good = b"J" + json.dumps({"formats": {"http-stream": {"content": "two frames\n"}}}).encode()
    hf.complaint_window("zmq-sub")
    log_from = hf.stack.log_size()
    # Starts with the channel, so the XPUB's prefix filter passes it to holdfast's SUB. The three-frame
    # message after it falls in the same second of the log's rate limit: only its non-delivery is checked.
    hf.xpub.send(chan.encode())
    hf.xpub.send(chan.encode(), b"J" + json.dumps({"formats": {"http-stream": {"content": "three\n"}}}).encode(),
                 b"extra")
    hf.xpub.send(chan.encode(), good)
    assert client.read_until(b"two frames\n") == b"open\ntwo frames\n"
    hf.expect_complaint("zmq-sub", "message has 1 parts, not 2", log_from)
    hf.close_stream(client)


def test_sub_channel_frame_overrides_the_payload_channel(hf):
    chan_a, chan_b = unique("over-a"), unique("over-b")
    a, b = hf.stream(chan_a), hf.stream(chan_b)
    hf.xpub.wait_frame(b"\x01" + chan_a.encode())
    hf.xpub.wait_frame(b"\x01" + chan_b.encode())
    payload = {"channel": chan_b, "formats": {"http-stream": {"content": "meant for a\n"}}}
    hf.xpub.send(chan_a.encode(), b"J" + json.dumps(payload).encode())
    hf.xpub.send(chan_b.encode(), b"T" + tnet_dumps({"formats": {"http-stream": {"content": "marker b\n"}}}))
    assert a.read_until(b"meant for a\n") == b"open\nmeant for a\n"
    # Items are fanned out in order: had the first gone to b, it would be ahead of the marker.
    assert b.read_until(b"marker b\n") == b"open\nmarker b\n"
    hf.close_stream(a)
    hf.close_stream(b)


# --- subscription forwarding and its linger -------------------------------------------------------------------


def test_linger_two_clients_subscribe_once_and_a_quick_return_does_not_flap(hf):
    chan = unique("flap")
    sub, unsub = b"\x01" + chan.encode(), b"\x00" + chan.encode()
    first, second = hf.stream(chan), hf.stream(chan)
    hf.xpub.wait_frame(sub)
    # Both leave; a newcomer arrives well within the linger.
    hf.close_stream(first)
    hf.close_stream(second)
    left_at = time.monotonic()
    third = hf.stream(chan)
    assert time.monotonic() - left_at < LINGER - 0.5, "the newcomer took too long to test the linger"
    # Past the point where the emptied channel's linger would have ended.
    hf.xpub.drain(max(0.0, left_at + LINGER + 1.0 - time.monotonic()))
    assert hf.xpub.count(sub) == 1, "XPUB_VERBOSE shows every subscribe: %r" % hf.xpub.frames[-10:]
    assert hf.xpub.count(unsub) == 0, "the channel flapped although a listener came back within the linger"
    mark = len(hf.xpub.frames)
    hf.close_stream(third)
    hf.xpub.wait_frame(unsub, timeout=LINGER + 4, since=mark)
    assert hf.xpub.count(sub) == 1


def test_unsubscribe_reaches_the_publisher_after_the_linger(hf):
    chan = unique("linger")
    client = hf.stream(chan)
    hf.xpub.wait_frame(b"\x01" + chan.encode())
    mark = len(hf.xpub.frames)
    hf.close_stream(client)
    gone_at = time.monotonic()
    at = hf.xpub.wait_frame(b"\x00" + chan.encode(), timeout=6, since=mark)
    assert LINGER - 0.5 <= at - gone_at <= LINGER + 3, "unsubscribed %.2f s after the last client left" % (
        at - gone_at)


# --- command socket ---------------------------------------------------------------------------------------------


def test_conncheck_returns_only_live_connection_ids(hf):
    mark = hf.stats.mark()
    client = hf.stream(unique("cc"))
    _, _, conn = hf.stats.wait(lambda t, f: t == "conn" and f.get("type") == "http" and not f.get("unavailable"),
                               since=mark, what="conn event of the stream client")
    cid = conn["id"]
    unknown = cid + "-not-a-connection"
    reply = call(hf.stack.command_spec, "conncheck", {"ids": [cid, unknown]})
    assert reply == {"id": "t-1", "success": True, "value": [cid]}
    mark = hf.stats.mark()
    hf.close_stream(client)
    hf.stats.wait(lambda t, f: t == "conn" and f.get("id") == cid and f.get("unavailable"), since=mark,
                  what="conn removal")
    assert call(hf.stack.command_spec, "conncheck", {"ids": [cid]})["value"] == []


def test_recover_forgets_last_ids_so_an_item_with_any_prev_id_goes_out(hf):
    chan = unique("recover")
    client = hf.stream(chan)
    hf.push_item(chan, "one\n", id="1")
    client.read_until(b"one\n")
    # A gap (prev-id 2 was never published) is parked for message_wait (3 s).
    hf.push_item(chan, "three\n", id="3", **{"prev-id": "2"})
    time.sleep(0.5)
    assert b"three" not in client.body, "the sequencer did not park an item whose predecessor is missing"
    reply = call(hf.stack.command_spec, "recover")
    assert reply["success"] is True and reply["value"] is None
    hf.push_item(chan, "five\n", id="5", **{"prev-id": "4"})
    client.read_until(b"five\n", timeout=1.5)
    assert b"three" not in client.body
    hf.close_stream(client)


@contextlib.contextmanager
def open_ws(hf, chan):
    """A WebSocket-over-HTTP client subscribed (by its backend) to `chan`: (socket, Connection-Id)."""
    mark = hf.stats.mark()
    with ws_connect("ws://127.0.0.1:%d/ws/%s" % (hf.stack.http_port, chan), open_timeout=5) as ws:
        hf.stats.wait(lambda t, f: t == "sub" and f.get("channel") == chan and f.get("mode") == "ws",
                      since=mark, what="ws subscription on %s" % chan)
        cid = wait_woh(lambda r: r[1] == "/ws/" + chan and "OPEN" in r[2])[0][0]
        assert cid
        yield ws, cid


def test_refresh_by_channel_makes_its_connections_ask_their_backend(hf):
    chan_a, chan_b = unique("refresh-a"), unique("refresh-b")
    with open_ws(hf, chan_a) as (_, cid_a), open_ws(hf, chan_b) as (_, cid_b):
        before_a, before_b = len(woh_requests(cid_a)), len(woh_requests(cid_b))
        reply = call(hf.stack.command_spec, "refresh", {"channel": chan_a})
        assert reply["success"] is True and reply["value"] is None
        wait_woh_count(cid_a, before_a, "refresh request for the channel's connection")
        time.sleep(0.3)  # a refresh meant for b would have come with a's
        assert len(woh_requests(cid_b)) == before_b, "a connection on another channel was refreshed"


def test_refresh_by_connection_id(hf):
    with open_ws(hf, unique("refresh-cid")) as (_, cid):
        before = len(woh_requests(cid))
        reply = call(hf.stack.command_spec, "refresh", {"cid": cid}, req_id="cid-1")
        assert reply == {"id": "cid-1", "success": True, "value": None}
        wait_woh_count(cid, before, "refresh request for %s" % cid)
        reply = call(hf.stack.command_spec, "refresh", {"cid": str(uuid.uuid4())}, req_id="cid-2")
        assert reply == {"id": "cid-2", "success": False, "condition": "item-not-found"}


def test_refresh_without_cid_or_channel_is_a_bad_request(hf):
    reply = call(hf.stack.command_spec, "refresh", {}, req_id="r-none")
    assert reply["id"] == "r-none"
    assert reply["success"] is False and reply["condition"] == "bad-request"


def test_publish_of_an_invalid_item_is_a_bad_request_saying_invalid_format(hf):
    item = {"channel": "x", "formats": {"http-stream": {"action": "explode"}}}
    reply = call(hf.stack.command_spec, "publish", {"items": [item]}, req_id="p-bad")
    assert reply["success"] is False and reply["condition"] == "bad-request", reply
    assert reply["id"] == "p-bad"
    assert reply["value"].startswith("Invalid format"), reply


def test_request_with_a_length_past_its_payload_gets_an_answer_and_the_server_survives(hf):
    # This exact frame takes Pushpin 1.36's handler down.
    reply = call_raw(hf.stack.command_spec, b"99999:{6:method,7:recover,}")
    assert reply["success"] is False and reply["condition"] == "bad-request", reply
    assert call(hf.stack.command_spec, "get-zmq-uris")["success"] is True
    with urllib.request.urlopen("http://127.0.0.1:%d/plain" % hf.stack.http_port, timeout=5) as resp:
        assert resp.read() == b"plain\n"
    assert hf.stack.proc.poll() is None


def test_dealer_without_an_empty_delimiter_gets_its_answer(hf):
    dealer = connect_ready(new_socket(zmq.DEALER), hf.stack.command_spec)
    try:
        dealer.send(tnet_dumps({"id": "d-1", "method": "get-zmq-uris"}))
        assert dealer.poll(5000), "no answer to a DEALER request"
        frames = dealer.recv_multipart()
        assert len(frames) == 1, frames
        reply = tnet_loads(frames[0])
        assert reply["id"] == "d-1" and reply["success"] is True
        assert reply["value"]["command"] == hf.stack.command_spec
    finally:
        dealer.close(linger=0)


# --- stats socket -------------------------------------------------------------------------------------------------


def test_websocket_connection_is_reported_with_type_ws_and_withdrawn_when_it_closes(hf):
    chan = unique("wsconn")
    mark = hf.stats.mark()
    with open_ws(hf, chan) as (ws, cid):
        _, _, conn = hf.stats.wait(lambda t, f: t == "conn" and f.get("id") == cid
                                   and not f.get("unavailable"), since=mark, what="conn event for the WebSocket")
        assert conn["type"] == "ws"
        assert conn["peer-address"] == "127.0.0.1"
        assert call(hf.stack.command_spec, "conncheck", {"ids": [cid]})["value"] == [cid]
        mark = hf.stats.mark()
        ws.close()
    # Withdrawn under the id it was announced with (its HTTP id was withdrawn at the upgrade).
    hf.stats.wait(lambda t, f: t == "conn" and f.get("id") == cid and f.get("unavailable"), since=mark,
                  what="conn removal of the WebSocket")
    # conncheck is answered from the same table, after the event above left it.
    assert call(hf.stack.command_spec, "conncheck", {"ids": [cid]})["value"] == [], \
        "conncheck still reports a closed WebSocket as connected"


def test_report_counts_what_was_received_and_sent_in_its_interval(hf):
    chan = unique("report")
    a, b = hf.stream(chan), hf.stream(chan)
    # Everything above is counted in reports sent up to now; start from the next one.
    _, _, _ = hf.stats.wait(lambda t, f: t == "report", since=hf.stats.mark(), timeout=3, what="report")
    mark = hf.stats.mark()
    for n in range(3):
        hf.push_item(chan, "counted %d\n" % n)
    a.read_until(b"counted 2\n")
    b.read_until(b"counted 2\n")
    done = hf.stats.mark()
    # One report sent after both clients had everything, and one more in case a delivery was counted late.
    hf.stats.wait(lambda t, f: t == "report", since=done, timeout=3, what="report after the publish")
    hf.stats.wait(lambda t, f: t == "report", since=hf.stats.mark(), timeout=3, what="second report")
    reports = [f for _, _, f in hf.stats.since(mark, "report")]
    for r in reports:
        for key in ("connections", "minutes", "received", "sent", "duration"):
            assert isinstance(r.get(key), int), (key, r)
        assert 500 <= r["duration"] <= 3000, r
    assert sum(r["received"] for r in reports) == 3, reports
    assert sum(r["sent"] for r in reports) == 6, reports
    with_publish = [r for r in reports if r["received"]]
    assert all(r["sent"] >= 1 for r in with_publish) and all(r["connections"] >= 2 for r in with_publish), reports
    hf.close_stream(a)
    hf.close_stream(b)


def test_activity_events_count_requests(hf):
    hf.stats.wait_quiet("activity", 0.3)
    mark = hf.stats.mark()
    for _ in range(3):
        with urllib.request.urlopen("http://127.0.0.1:%d/plain" % hf.stack.http_port, timeout=5) as resp:
            assert resp.status == 200

    def total():
        return sum(f["count"] for _, _, f in hf.stats.since(mark, "activity"))

    hf.stats.wait(lambda t, f: t == "activity" and total() >= 3, since=mark, what="activity for 3 requests")
    time.sleep(0.3)  # activity is batched every 100 ms: a wrongly doubled count would show by now
    assert total() == 3, hf.stats.since(mark, "activity")


def test_a_route_with_an_id_names_its_connections_and_gets_its_own_activity(hf):
    hf.stats.wait_quiet("activity", 0.3)
    mark = hf.stats.mark()
    for path in ("/api/one", "/api/two", "/plain"):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (hf.stack.http_port, path), timeout=5) as resp:
            assert resp.status == 200

    def total(routed):
        return sum(f["count"] for _, _, f in hf.stats.since(mark, "activity") if ("route" in f) == routed)

    hf.stats.wait(lambda t, f: t == "conn" and f.get("route") == "api" and not f.get("unavailable"),
                  since=mark, what="conn event naming route api")
    hf.stats.wait(lambda t, f: t == "activity" and total(True) >= 2 and total(False) >= 1, since=mark,
                  what="activity for 2 requests on api and 1 elsewhere")
    time.sleep(0.3)
    routed = [f for _, _, f in hf.stats.since(mark, "activity") if "route" in f]
    assert {f["route"] for f in routed} == {"api"}
    assert (total(True), total(False)) == (2, 1), hf.stats.since(mark, "activity")
    conns = [f for _, _, f in hf.stats.since(mark, "conn") if not f.get("unavailable")]
    assert all(f.get("route") in (None, "api") for f in conns), conns


def test_response_mode_sub_removal_lingers_and_stream_mode_removal_is_prompt(hf):
    poll_chan, stream_chan = unique("lp"), unique("st")
    mark = hf.stats.mark()
    poller = StreamClient(hf.stack.http_port, "/poll/" + poll_chan, first=b"")
    hf.stats.wait(lambda t, f: t == "sub" and f.get("channel") == poll_chan and f.get("mode") == "response",
                  since=mark, what="response-mode sub")
    streamer = hf.stream(stream_chan)
    mark = hf.stats.mark()
    poller.close()
    streamer.close()
    closed = time.monotonic()
    stream_gone, _, _ = hf.stats.wait(lambda t, f: t == "sub" and f.get("channel") == stream_chan
                                      and f.get("unavailable"), since=mark, what="stream sub removal")
    poll_gone, _, sub = hf.stats.wait(lambda t, f: t == "sub" and f.get("channel") == poll_chan
                                      and f.get("unavailable"), since=mark, timeout=LINGER + 4,
                                      what="response sub removal")
    assert sub["mode"] == "response"
    assert stream_gone - closed < 1.0, "stream-mode removal took %.2f s" % (stream_gone - closed)
    assert LINGER - 0.5 <= poll_gone - closed <= LINGER + 3, "response-mode removal after %.2f s" % (
        poll_gone - closed)


def test_message_event_counts_the_receivers_of_its_channel(hf):
    chan, other = unique("count"), unique("count-other")
    clients = [hf.stream(chan), hf.stream(chan), hf.stream(other)]
    mark = hf.stats.mark()
    hf.push_item(chan, "to two\n", id="m-1")
    for c in clients[:2]:
        c.read_until(b"to two\n")
    _, _, m = hf.stats.wait(lambda t, f: t == "message" and f.get("channel") == chan, since=mark,
                            what="message event")
    assert m["count"] == 2 and m["transport"] == "http-stream" and m["item-id"] == "m-1", m
    for c in clients:
        hf.close_stream(c)


# --- connect mode and JSON stats (stacks of their own) --------------------------------------------------------------


@pytest.fixture(scope="module")
def connecting():
    """holdfast's SUB connects to an XPUB the test bound first, as a publisher in front of several instances."""
    xpub = Xpub(verbose=True).bind()
    st = Stack(Backend, push_in_sub_specs=[xpub.endpoint], push_in_sub_connect=True, push_in_spec=True,
               command_spec=True, stats_spec=True, subscription_linger=LINGER, stats_report_interval=1)
    bridge = Bridge(st, xpub)
    yield bridge
    bridge.close()


def test_connecting_sub_forwards_subscriptions_and_receives(connecting):
    hf = connecting
    chan = unique("connect")
    client = hf.stream(chan)
    hf.xpub.wait_frame(b"\x01" + chan.encode())
    hf.xpub.send(chan.encode(), b"J" + json.dumps({"formats": {"http-stream": {"content": "from xpub\n"}}}).encode())
    assert client.read_until(b"from xpub\n") == b"open\nfrom xpub\n"
    hf.close_stream(client)
    hf.xpub.wait_frame(b"\x00" + chan.encode(), timeout=LINGER + 4)


def test_get_zmq_uris_has_no_publish_sub_when_the_sub_connects(connecting):
    reply = call(connecting.stack.command_spec, "get-zmq-uris")
    assert reply["success"] is True
    assert reply["value"] == {"command": connecting.stack.command_spec,
                              "publish-pull": connecting.stack.push_in_spec}


def test_stats_format_json_frames_are_type_space_J_json():
    st = Stack(Backend, stats_spec=True, stats_format="json", stats_report_interval=1)
    sub = new_socket(zmq.SUB)
    try:
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        connect_ready(sub, st.stats_spec)
        kinds, frames = set(), []
        deadline = time.monotonic() + 8
        requested = False
        while not {"report", "conn", "activity"} <= kinds:
            left = deadline - time.monotonic()
            assert left > 0 and sub.poll(int(left * 1000)), "missing stats types; got %r" % sorted(kinds)
            raw = sub.recv()
            frames.append(raw)
            kind, rest = raw.split(b" ", 1)
            assert rest[:1] == b"J", raw[:80]
            fields = json.loads(rest[1:])
            assert decode_stats_frame(raw) == (kind.decode(), fields)
            assert fields["from"].startswith("holdfast"), fields
            kinds.add(kind.decode())
            if not requested:
                # Our subscription is live (an event reached us): make a request to be reported.
                requested = True
                with urllib.request.urlopen("http://127.0.0.1:%d/plain" % st.http_port, timeout=5) as resp:
                    resp.read()
        conns = [json.loads(f.split(b" ", 1)[1][1:]) for f in frames if f.startswith(b"conn ")]
        assert conns[0]["type"] == "http" and conns[0]["peer-address"] == "127.0.0.1"
        reports = [json.loads(f.split(b" ", 1)[1][1:]) for f in frames if f.startswith(b"report ")]
        assert isinstance(reports[0]["duration"], int)
    finally:
        sub.close(linger=0)
        st.close()
