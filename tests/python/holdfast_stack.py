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


class Stack:
    """A backend (serving `handler`, a BaseHTTPRequestHandler class) and holdfast routing `*` to it.

    `proxy_ini` and `handler_ini` are extra lines for the [proxy] and [handler] sections; `target_options`
    is appended to the route's target (e.g. ",over_http")."""

    def __init__(self, handler, proxy_ini="", handler_ini="", args=(), target_options=""):
        self.backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.backend.serve_forever, daemon=True).start()
        self.http_port, self.control_port = free_port(), free_port()
        work = tempfile.mkdtemp(prefix="holdfast-pytest-")
        conf = os.path.join(work, "pushpin.conf")
        with open(conf, "w") as f:
            f.write(
                "[runner]\nhttp_port=127.0.0.1:%d\n[proxy]\nroutesfile=routes\n%s\n"
                "[handler]\npush_in_http_addr=127.0.0.1\npush_in_http_port=%d\n%s\n"
                % (self.http_port, proxy_ini, self.control_port, handler_ini)
            )
        with open(os.path.join(work, "routes"), "w") as f:
            f.write("* 127.0.0.1:%d%s\n" % (self.backend.server_address[1], target_options))
        self.log = open(os.path.join(work, "holdfast.log"), "wb")
        self.proc = subprocess.Popen([HOLDFAST, "--config", conf, *args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        for port in (self.control_port, self.http_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert self.proc.poll() is None, "holdfast exited during start-up"
                    assert time.monotonic() < deadline, "holdfast did not start"
                    time.sleep(0.05)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.backend.shutdown()
        self.log.close()
