"""Scale-out (issue 5, item 9): two holdfast instances on loopback connect their SUB sockets to one XPUB
publisher. The publisher learns each instance's subscriptions from the XPUB, publishes only channels that
have listeners, and clients on both instances receive every message in order; an instance restarted
mid-test subscribes again and receives again.

Bookkeeping, and why it is right: the XPUB counts subscribers per channel itself. It passes `\\x00chan` up
only when the last subscriber of `chan` is gone (an instance unsubscribing or disconnecting), so "listening"
is simply the set of channels whose latest frame was `\\x01`. Without XPUB_VERBOSE it would also pass
`\\x01chan` only for the first subscriber: the second instance subscribing, or a restarted instance
subscribing again while the other still listens, would be invisible. With XPUB_VERBOSE every subscribe
arrives, so the test can count them per channel (one per instance) and see a resubscription. XPUB_VERBOSER
(every unsubscribe too) is not set: a set would then be wrong, since one instance leaving would remove a
channel the other still listens to."""

import collections
import http.server
import json
import time
import uuid

import pytest
from holdfast_stack import Stack
from zmq_helpers import StreamClient, Xpub


class Backend(http.server.BaseHTTPRequestHandler):
    """`GET /stream/a,b` holds a stream on channels a and b."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        channels = self.path.rsplit("/", 1)[-1].replace(",", ", ")
        body = b"open\n"
        self.send_response(200)
        self.send_header("Grip-Hold", "stream")
        self.send_header("Grip-Channel", channels)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Publisher:
    """A publisher that keeps, from the XPUB's subscription frames, the channels someone listens to."""

    def __init__(self):
        self.xpub = Xpub(verbose=True).bind()
        self.listening = set()
        self.subscribes = collections.Counter()
        self.unsubscribes = collections.Counter()
        self.sent = collections.defaultdict(list)  # channel -> contents published to it
        self.skipped = []  # (channel, content) not published: nobody listened

    def track(self, seconds=0.0):
        """Apply the subscription frames that arrived (waiting up to `seconds` for more)."""
        start = len(self.xpub.frames)
        self.xpub.drain(seconds)
        for _, frame in self.xpub.frames[start:]:
            self._apply(frame)

    def _apply(self, frame):
        channel = frame[1:].decode()
        if frame[:1] == b"\x01":
            self.listening.add(channel)
            self.subscribes[channel] += 1
        elif frame[:1] == b"\x00":
            self.listening.discard(channel)
            self.unsubscribes[channel] += 1

    def wait(self, pred, what, timeout=5.0):
        """Track frames until pred() holds."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            assert left > 0, "publisher never saw %s; frames %r" % (what, [f for _, f in self.xpub.frames[-20:]])
            self.track(min(left, 0.05))

    def publish(self, channel, content):
        self.track()
        if channel not in self.listening:
            self.skipped.append((channel, content))
            return
        item = {"formats": {"http-stream": {"content": content}}}
        self.xpub.send(channel.encode(), b"J" + json.dumps(item).encode())
        self.sent[channel].append(content)

    def close(self):
        self.xpub.close()


def name(prefix):
    # No channel here is a prefix of another: ZeroMQ subscriptions match by prefix.
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


@pytest.fixture
def publisher():
    p = Publisher()
    yield p
    p.close()


@pytest.fixture
def instances(publisher):
    started = []
    try:
        for _ in range(2):
            started.append(Stack(Backend, push_in_sub_specs=[publisher.xpub.endpoint], push_in_sub_connect=True))
        yield started
    finally:
        for st in started:
            st.close()


def test_two_instances_behind_one_xpub_publisher_with_a_restart(publisher, instances):
    a, b = instances
    shared, only_a, only_b, idle = name("shared"), name("only-a"), name("only-b"), name("idle")
    planned = [shared, only_a, only_b, idle]
    clients = []  # (client, instance, channels)

    def open_client(stack, *channels):
        # The private channel comes last: the XPUB seeing it means this instance's SUB already passed on
        # the client's other channels (one hold subscribes them in order), so the client is live.
        private = name("own")
        client = StreamClient(stack.http_port, "/stream/" + ",".join(channels + (private,)))
        publisher.wait(lambda: private in publisher.listening, "the subscription of %s" % private)
        clients.append((client, stack, channels))
        return client

    def truly_listening():
        """The planned channels that have a live client right now (the test's ground truth)."""
        return {ch for c, st, chans in clients if st.proc.poll() is None for ch in chans}

    def publish_round(label):
        publisher.track()
        assert publisher.listening & set(planned) == truly_listening(), (label, publisher.listening)
        for ch in planned:
            publisher.publish(ch, "%s %s\n" % (label, ch))

    # Two clients on the same channel of one instance, and the shared channel on both instances.
    open_client(a, shared)
    open_client(a, shared, only_a)
    open_client(b, shared)
    open_client(b, only_b)
    # Each instance subscribes once per channel, however many of its clients listen.
    publisher.wait(lambda: publisher.subscribes[shared] == 2, "both instances subscribing %s" % shared)
    publisher.track(0.3)
    assert publisher.subscribes[shared] == 2
    assert publisher.subscribes[only_a] == 1 and publisher.subscribes[only_b] == 1

    for r in range(3):
        publish_round("before-%d" % r)
    for client, _, channels in clients:
        expected = b"open\n" + b"".join(
            ("before-%d %s\n" % (r, ch)).encode() for r in range(3) for ch in planned if ch in channels)
        assert client.read_length(len(expected)) == expected

    # SIGTERM one instance. The XPUB drops its subscriptions: channels only it had are announced gone, the
    # shared one stays (the other instance still listens).
    a.stop()
    for client, st, _ in clients:
        if st is a:
            client.close()
    publisher.wait(lambda: only_a not in publisher.listening, "%s unsubscribed after its instance stopped" % only_a)
    publisher.track(0.3)
    assert shared in publisher.listening and publisher.unsubscribes[shared] == 0
    publish_round("down")

    # Start it again on the same ports; its clients come back.
    subscribed_before = publisher.subscribes[shared]
    a.start()
    clients[:] = [c for c in clients if c[1] is not a]
    open_client(a, shared, only_a)
    open_client(a, shared)
    # XPUB_VERBOSE lets the publisher see the restarted instance subscribe the shared channel again.
    publisher.wait(lambda: publisher.subscribes[shared] == subscribed_before + 1, "resubscription of %s" % shared)
    publisher.wait(lambda: only_a in publisher.listening, "resubscription of %s" % only_a)
    publisher.track(0.3)
    # Once per channel again, for its two clients on the shared channel too.
    assert publisher.subscribes[shared] == subscribed_before + 1
    assert publisher.subscribes[only_a] == 2

    for r in range(2):
        publish_round("after-%d" % r)
    for client, st, channels in clients:
        labels = (["before-0", "before-1", "before-2", "down"] if st is b else []) + ["after-0", "after-1"]
        expected = b"open\n" + b"".join(
            ("%s %s\n" % (label, ch)).encode() for label in labels for ch in planned if ch in channels)
        assert client.read_length(len(expected)) == expected

    # Nothing was published blind, and nothing without listeners was ever announced.
    assert publisher.subscribes[idle] == 0
    skipped = collections.Counter(ch for ch, _ in publisher.skipped)
    assert skipped == {idle: 6, only_a: 1}, skipped
    assert len(publisher.sent[shared]) == 6 and len(publisher.sent[only_b]) == 6
    for client, _, _ in clients:
        client.close()
