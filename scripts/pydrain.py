#!/usr/bin/env python3
"""Drains a backlog with the Python client's Worker (clients/python), one
job at a time, each acked, over HTTP or the native protocol, and prints
{"jobs","seconds","jobs_per_s"} as one JSON line: issue 17's "Python
worker within 0.5 of the Go one" (docs/BENCHMARKS.md).

    scripts/pydrain.py ADDR QUEUE COUNT [WORKERS]

ADDR is http://HOST:PORT or a native address (unix:///path,
native://HOST:PORT). The run ends once COUNT jobs were handled."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import edgeq  # noqa: E402


def main():
    addr, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    native = not addr.startswith("http")
    done = [0]
    mu = threading.Lock()
    finished = threading.Event()

    def handle(job):
        with mu:
            done[0] += 1
            if done[0] >= count:
                finished.set()

    ws = []
    for _ in range(workers):
        c = edgeq.NativeClient(addr, token="") if native else edgeq.Client(addr, token="")
        ws.append(edgeq.Worker(c, queue, handle, wait=1, grace=5))
    t0 = time.monotonic()
    ts = [threading.Thread(target=w.run, kwargs={"install_signals": False}) for w in ws]
    for t in ts:
        t.start()
    finished.wait(600)
    secs = time.monotonic() - t0
    for w in ws:
        w.stop()
    for t in ts:
        t.join(30)
    print(json.dumps({"jobs": done[0], "seconds": round(secs, 2), "jobs_per_s": round(done[0] / secs)}))


if __name__ == "__main__":
    main()
