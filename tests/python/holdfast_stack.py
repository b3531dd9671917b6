"""Start holdfast in front of an in-test Python backend, for the tests in this folder."""

import http.server
import os
import socket
import subprocess
import tempfile
import threading
import time

HOLDFAST = os.environ.get(
    "HOLDFAST_BIN",
    os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "holdfast"),
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_spec():
    return "tcp://127.0.0.1:%d" % free_port()


def _spec(value):
    """`True` asks for a fresh loopback TCP endpoint; a string is used as given; None/False means off."""
    if value is True:
        return free_tcp_spec()
    return value or None


class Stack:
    """A backend (serving `handler`, a BaseHTTPRequestHandler class) and holdfast routing `*` to it.

    `proxy_ini` and `handler_ini` are extra lines for the [proxy] and [handler] sections; `target_options`
    is appended to the route's target (e.g. ",over_http").

    ZeroMQ (all off unless asked for): `push_in_spec`, `command_spec` and `stats_spec` take `True` (a free
    loopback TCP port) or a spec string; `push_in_sub_specs` takes `True` (one free port) or a list of specs;
    `push_in_sub_connect`, `stats_format`, `subscription_linger` and `stats_report_interval` become the
    [handler] keys of the same names. The chosen specs are attributes of the same names (None when off).

    `stop()` and `start()` restart holdfast with the same configuration and ports; `close()` ends it all."""

    def __init__(self, handler, proxy_ini="", handler_ini="", args=(), target_options="", *,
                 push_in_spec=None, push_in_sub_specs=None, push_in_sub_connect=False, command_spec=None,
                 stats_spec=None, stats_format=None, subscription_linger=None, stats_report_interval=None,
                 routes_before=()):
        self.backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.backend.serve_forever, daemon=True).start()
        self.http_port, self.control_port = free_port(), free_port()
        self.push_in_spec = _spec(push_in_spec)
        if push_in_sub_specs is True:
            push_in_sub_specs = [free_tcp_spec()]
        self.push_in_sub_specs = list(push_in_sub_specs or [])
        self.push_in_sub_connect = push_in_sub_connect
        self.command_spec = _spec(command_spec)
        self.stats_spec = _spec(stats_spec)
        zmq_ini = []
        if self.push_in_spec:
            zmq_ini.append("push_in_spec=" + self.push_in_spec)
        if self.push_in_sub_specs:
            zmq_ini.append("push_in_sub_specs=" + ",".join(self.push_in_sub_specs))
            zmq_ini.append("push_in_sub_connect=" + ("true" if push_in_sub_connect else "false"))
        if self.command_spec:
            zmq_ini.append("command_spec=" + self.command_spec)
        if self.stats_spec:
            zmq_ini.append("stats_spec=" + self.stats_spec)
        for key, value in (("stats_format", stats_format), ("subscription_linger", subscription_linger),
                           ("stats_report_interval", stats_report_interval)):
            if value is not None:
                zmq_ini.append("%s=%s" % (key, value))
        work = tempfile.mkdtemp(prefix="holdfast-pytest-")
        self.conf = os.path.join(work, "pushpin.conf")
        with open(self.conf, "w") as f:
            f.write(
                "[runner]\nhttp_port=127.0.0.1:%d\n[proxy]\nroutesfile=routes\n%s\n"
                "[handler]\npush_in_http_addr=127.0.0.1\npush_in_http_port=%d\n%s\n%s\n"
                % (self.http_port, proxy_ini, self.control_port, "\n".join(zmq_ini), handler_ini)
            )
        with open(os.path.join(work, "routes"), "w") as f:
            # Extra route lines (with `{backend}` for the backend's port) go before the catch-all.
            for line in routes_before:
                f.write(line.format(backend=self.backend.server_address[1]) + "\n")
            f.write("* 127.0.0.1:%d%s\n" % (self.backend.server_address[1], target_options))
        self.log_path = os.path.join(work, "holdfast.log")
        self.args = list(args)
        self.proc = None
        self.start()

    def _bound_zmq_ports(self):
        """Loopback TCP ports holdfast binds for ZeroMQ: they accept connections once the bridge is up."""
        specs = [self.push_in_spec, self.command_spec, self.stats_spec]
        if not self.push_in_sub_connect:
            specs += self.push_in_sub_specs
        return [int(s.rsplit(":", 1)[1]) for s in specs if s and s.startswith("tcp://127.0.0.1:")]

    def start(self):
        """Start holdfast and wait until every port it listens on (HTTP, control, bound ZeroMQ) accepts."""
        assert self.proc is None or self.proc.poll() is not None, "holdfast is already running"
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([HOLDFAST, "--config", self.conf, *self.args], stdout=log,
                                         stderr=subprocess.STDOUT)
        finally:
            log.close()  # the child has its own descriptor
        # The HTTP listeners are bound before the ZeroMQ bridge: wait for the bridge's ports as well.
        deadline = time.monotonic() + 10
        for port in (self.control_port, self.http_port, *self._bound_zmq_ports()):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert self.proc.poll() is None, "holdfast exited during start-up:\n" + self.log_text()
                    assert time.monotonic() < deadline, "holdfast did not start"
                    time.sleep(0.05)

    def stop(self):
        """SIGTERM, as an operator or a service manager would, and wait for the exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError("holdfast did not stop within 10 s of SIGTERM")

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_size(self):
        """Where the log ends now: pass it to `wait_for_log` to look only at what comes after."""
        return len(self.log_text())

    def wait_for_log(self, text, since=0, timeout=3.0):
        """The first line containing `text` logged after `since` (holdfast flushes its log every few ms)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text()[since:].splitlines():
                if text in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError("holdfast never logged %r; log tail:\n%s" % (text, self.log_text()[-3000:]))
            time.sleep(0.05)

    def close(self):
        self.stop()
        self.backend.shutdown()
