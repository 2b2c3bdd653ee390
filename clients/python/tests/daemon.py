"""Runs the real edgeq binary for the tests: built once per test run with
`go build -o` into a temporary directory, served on 127.0.0.1 with a free
port and a temporary data directory, stopped by its PID."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TOKEN = "py-client-test-token"

_bin = None


def binary():
    """Builds ./edgeq of this repository once; answers its path."""
    global _bin
    if _bin is None:
        d = tempfile.mkdtemp(prefix="edgeq-pytest-bin-")
        atexit.register(shutil.rmtree, d, True)
        path = os.path.join(d, "edgeq")
        subprocess.run(["go", "build", "-o", path, "."], cwd=REPO, check=True, timeout=600)
        _bin = path
    return _bin


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`edgeq serve` with config (YAML text) and a token; url and token for
    clients; stop() ends it."""

    def __init__(self, config=""):
        self.dir = tempfile.mkdtemp(prefix="edgeq-pytest-")
        self.token = TOKEN
        tok = os.path.join(self.dir, "token")
        with open(tok, "w") as f:
            f.write(self.token)
        cfg = os.path.join(self.dir, "edgeq.yaml")
        with open(cfg, "w") as f:
            f.write(config)
        self.addr = "127.0.0.1:%d" % free_port()
        self.url = "http://" + self.addr
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [binary(), "serve", "--config", cfg, "--data-dir", os.path.join(self.dir, "data"),
             "--http-addr", self.addr, "--token-file", tok, "--shutdown-timeout", "5s"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("edgeq serve did not become healthy:\n" + self.output())
            time.sleep(0.05)

    def output(self):
        with open(os.path.join(self.dir, "log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, True)


# Queues of the test daemons. strict_queues lists them, so that any other
# name answers 404 unknown_queue. The governor's CPU threshold is at 100%
# so that a busy CI machine does not shed the tests' jobs.
QUEUES = ["q%02d" % i for i in range(40)]
CONFIG = """strict_queues: true
max_payload: 4KiB
governor:
  cpu: {enter: 100, exit: 99}
queues:
  tiny: {max_depth: 1}
""" + "".join("  %s: {}\n" % q for q in QUEUES)


class Queues:
    """Hands out a fresh queue name per test."""

    def __init__(self):
        self._next = 0

    def __call__(self):
        q = QUEUES[self._next]
        self._next += 1
        return q
