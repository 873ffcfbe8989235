"""Restart of a release logpulsed whose rows are all hot (background
compaction off), with and without the hot checkpoint.

Ingests ROWS rows of gen.py's NDJSON into a fresh data dir, then times the
start to the first `GET /v0/health` 200 (median of 3) in three cases:
after SIGTERM (the checkpoint covers every record); after `kill -9` with
KILL_ROWS rows sent after the last checkpoint; and after SIGTERM with the
checkpoint files removed (every record decoded, as before the checkpoint). Prints
what `/metrics` says the open read from the checkpoint and decoded.

usage: restart_hot.py LOGPULSED NDJSON [ROWS] [KILL_ROWS]
"""
import http.client
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

import daemon

BIN, NDJSON = sys.argv[1], sys.argv[2]
ROWS = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
KILL_ROWS = int(sys.argv[4]) if len(sys.argv) > 4 else 50_000
TOKEN = "restart-hot-bench-token-0123456789"
PORT = 7394
DATA = tempfile.mkdtemp(prefix="lp-restart-hot-")
LOG = DATA + ".log"


def start():
    return daemon.start(BIN, PORT, DATA, TOKEN, 0, stderr=open(LOG, "w"))


def recovery_ms():
    """elapsed_ms of the daemon's "recovered data dir" log line."""
    for line in open(LOG):
        if "recovered data dir" in line and "elapsed_ms=" in line:
            return int(line.split("elapsed_ms=")[1].split()[0])
    return None


def metric(name):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    c.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    for line in c.getresponse().read().decode().splitlines():
        if line.split(" ")[0] == name:
            return int(float(line.split()[1]))
    return None


def post(lines):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300)
    for i in range(0, len(lines), 20_000):
        body = "".join(lines[i:i + 20_000]).encode()
        c.request("POST", "/v0/events?name=system_logs&wait=true", body=body,
                  headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        r.read()
        assert r.status in (200, 202), r.status


def stop(p, sig=signal.SIGTERM):
    p.send_signal(sig)
    p.wait(120)


with open(NDJSON) as f:
    lines = [line for _, line in zip(range(ROWS + KILL_ROWS), f)]
ROWS = min(ROWS, len(lines) - KILL_ROWS)
p, _ = start()
post(lines[:ROWS])
stop(p)


def case(label, before_each=None, runs=3):
    times, opens = [], []
    for _ in range(runs):
        if before_each:
            before_each()
        p, ms = start()
        times.append(ms)
        opens.append(recovery_ms())
        seen = (metric("logpulse_recovery_rows_from_checkpoint"), metric("logpulse_recovery_rows_scanned"))
        stop(p)
    print(f"{label}: healthy after {statistics.median(times):.0f} ms (median of {runs}: "
          f"{', '.join(f'{t:.0f}' for t in times)}); engine open {opens} ms; "
          f"from checkpoint {seen[0]}, decoded {seen[1]}")


case("after SIGTERM, checkpoint")
case("after SIGTERM, no checkpoint (every record decoded)",
     lambda: shutil.rmtree(os.path.join(DATA, "checkpoint"), ignore_errors=True))
# kill -9 with KILL_ROWS rows after the last checkpoint (taken every 5 s).
p, _ = start()
time.sleep(6)
post(lines[ROWS:ROWS + KILL_ROWS])
stop(p, signal.SIGKILL)
case("after kill -9, rows since the checkpoint decoded", runs=1)
shutil.rmtree(DATA)
os.remove(LOG)
