"""Restart time and memory of a release logpulsed on a data dir that
`../shared/bench/compare.sh` left (`LP_KEEP=1`, settled: every closed hour
compacted by the daemon itself).

Starts the daemon on the dir, times the start to the first `GET /v0/health`
200, runs the compare workload (each pipe RUNS times, the same parameter
sets as compare.sh), reads RssAnon from /proc, then times SIGTERM to exit;
then the same again (a second restart, with the OS page cache warm).

usage: restart_rss.py LOGPULSED DATA_DIR META_JSON [RUNS]
(META_JSON: the .meta.json next to gen.py's NDJSON)
"""
import http.client
import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
from workload import PIPES, param_sets  # noqa: E402

import daemon  # noqa: E402

BIN, DATA, META = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
RUNS = int(sys.argv[4]) if len(sys.argv) > 4 else 200
TOKEN = "restart-bench-token-0123456789abcdef"
PORT = 7393


def rss_anon_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return -1


def one_start(label):
    p, started_ms = daemon.start(BIN, PORT, DATA, TOKEN, 1)
    rss_start = rss_anon_kib(p.pid)
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    for pipe in PIPES:
        for params in param_sets(META, pipe, RUNS):
            c.request("GET", f"/v0/pipes/{pipe}.json?{urllib.parse.urlencode(params)}",
                      headers={"Authorization": f"Bearer {TOKEN}"})
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
    rss_after = rss_anon_kib(p.pid)
    t1 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    stopped = time.monotonic() - t1
    print(f"{label}: healthy after {started_ms:.0f} ms; RssAnon {rss_start / 1024:.1f} MiB at start, "
          f"{rss_after / 1024:.1f} MiB after {RUNS} queries of each pipe; SIGTERM to exit {stopped * 1000:.0f} ms")


one_start("restart 1")
one_start("restart 2")
