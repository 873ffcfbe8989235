#!/usr/bin/env python3
"""The SQL battery's latency: logpulse's /v0/sql over HTTP against chdb
(ClickHouse in-process) on the same data, plus the memory of the largest
query and the ingest rate while SQL runs.

Usage (a release build; the data from ../shared/bench/gen.py; a venv with
chdb, e.g. the /tmp/lp-venv that ../shared/bench/compare.sh makes):

  python ../shared/bench/gen.py --rows 1000000 --dir /tmp/lp-bench
  /tmp/lp-venv/bin/python benches/sql_battery.py --binary target/release/logpulsed \\
      --data /tmp/lp-bench/system_logs-n1000000-d7-s42-t20240601T000000-v1.ndjson

Starts logpulsed on a free port over a temp data dir, loads the data with
../shared/bench/load.py and waits for the daemon's background compaction of
the closed hours to finish (the state it reaches by itself), loads the same
file into chdb, then for every query of tests/py/sql_battery.py: one
warm-up run each side, then --runs measured runs each (the median is
kept). Prints per query logpulse's and chdb's median, the ratio chdb / logpulse (> 1: logpulse is faster), whether the
answers agree (at this size ClickHouse's `quantile` and `uniq` are
approximations, so a few may not), the peak RssAnon of logpulsed during the
query; then the median ratio, the largest query's RssAnon, and the ingest
rate of --ingest-rows rows with and without a client running the battery
in a loop.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "py"))
import sql_battery as battery  # noqa: E402

BENCH = os.path.join(HERE, "..", "..", "shared", "bench")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


class Peak:
    """Samples a process's RssAnon every 5 ms while in use."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def __enter__(self):
        self.peak = rss_anon_kib(self.pid)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self):
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, rss_anon_kib(self.pid))

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def ingest_rate(base, token, data, rows):
    """Rows per second of `rows` rows of `data` POSTed in 5,000-row batches
    (wait=false: as shippers send), timestamps as in the file."""
    with open(data) as f:
        lines = [next(f) for _ in range(rows)]
    bodies = ["".join(lines[i:i + 5000]).encode() for i in range(0, rows, 5000)]
    t0 = time.perf_counter()
    for b in bodies:
        status, text = battery.http(base, token, "/v0/events?name=system_logs", b)
        if status not in (200, 202):
            raise SystemExit(f"ingest: {status} {text[:200]!r}")
    return rows / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="a release logpulsed")
    ap.add_argument("--data", required=True, help="system_logs NDJSON written by gen.py")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ingest-rows", type=int, default=200_000)
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()
    meta = json.load(open(args.data + ".meta.json"))
    work = tempfile.mkdtemp(prefix="lp-sql-bench-")
    token = os.urandom(16).hex()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Closed hours compacted a second after ingest, as compare.sh runs it.
    env = dict(os.environ, LOGPULSE_ADMIN_TOKEN=token, LOGPULSE_COMPACTION_DELAY_SECS="1")
    log = open(os.path.join(work, "logpulsed.log"), "w")
    daemon = subprocess.Popen([args.binary, "--listen", f"127.0.0.1:{port}", "--data-dir",
                               os.path.join(work, "data")], env=env, stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/v0/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([sys.executable, os.path.join(BENCH, "load.py"), "--url", base, "--token",
                        token, "--data", args.data, "--out", os.path.join(work, "load.json"),
                        "--runs", "1", "--query-seconds", "0.2", "--settle-seconds", "300",
                        "--data-dir", os.path.join(work, "data")], check=True,
                       stdout=subprocess.DEVNULL)
        load = json.load(open(os.path.join(work, "load.json")))
        print(f"loaded {meta['rows']} rows into logpulsed: "
              f"{json.dumps(load.get('ingest', {}).get('rows_per_s', load.get('ingest')))} rows/s")
        t, s = timed(lambda: battery.chdb_session(os.path.join(work, "chdb"), args.data,
                                                  meta["thresholds"]))
        print(f"loaded the same file into chdb in {t:.1f}s")
        results = run_battery(base, token, s, daemon.pid, args.runs)
        ratios = [r["ratio"] for r in results if r["ratio"]]
        largest = max(results, key=lambda r: r["rss_kib"])
        idle = rss_anon_kib(daemon.pid)
        print(f"\n{len(results)} queries, median ratio chdb/logpulse {statistics.median(ratios):.2f} "
              f"(> 1: logpulse faster); {sum(r['agree'] for r in results)} answers agree")
        print(f"logpulse median latency {statistics.median(r['lp_ms'] for r in results):.1f} ms, "
              f"chdb {statistics.median(r['ch_ms'] for r in results):.1f} ms")
        print(f"largest query by RssAnon: {largest['name']} {largest['rss_kib'] / 1024:.0f} MiB "
              f"(idle after the battery: {idle / 1024:.0f} MiB)")
        alone = ingest_rate(base, token, args.data, args.ingest_rows)
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                for _, sql, _ in battery.QUERIES:
                    if stop.is_set():
                        break
                    battery.logpulse(base, token, sql)
        q = threading.Thread(target=loop, daemon=True)
        q.start()
        busy = ingest_rate(base, token, args.data, args.ingest_rows)
        stop.set()
        q.join()
        print(f"ingest {args.ingest_rows} rows: {alone:,.0f} rows/s alone, {busy:,.0f} rows/s "
              f"while a client runs the battery in a loop ({busy / alone:.2f}x)")
        s.close()
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"rows": meta["rows"], "queries": results, "ingest_alone": alone,
                           "ingest_with_sql": busy}, f, indent=1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)


def run_battery(base, token, s, pid, runs):
    print(f"{'query':34} {'logpulse ms':>11} {'chdb ms':>9} {'ratio':>6} agree {'RssAnon MiB':>11}")
    results = []
    for name, sql, ch_sql in battery.QUERIES:
        ch_sql = ch_sql or sql
        try:
            lp = battery.logpulse(base, token, sql)
        except RuntimeError as e:
            print(f"{name:34} error: {e}")
            continue
        ch = battery.chdb_query(s, ch_sql)
        lp_t, ch_t = [], []
        with Peak(pid) as peak:
            for _ in range(runs):
                lp_t.append(timed(lambda: battery.logpulse(base, token, sql))[0])
        for _ in range(runs):
            ch_t.append(timed(lambda: battery.chdb_query(s, ch_sql))[0])
        lp_ms, ch_ms = statistics.median(lp_t) * 1e3, statistics.median(ch_t) * 1e3
        r = {"name": name, "lp_ms": lp_ms, "ch_ms": ch_ms, "ratio": ch_ms / lp_ms if lp_ms else None,
             "agree": battery.compare(lp, ch) is None, "rss_kib": peak.peak}
        print(f"{name:34} {lp_ms:11.1f} {ch_ms:9.1f} {r['ratio']:6.2f} {'yes' if r['agree'] else 'no':5} "
              f"{peak.peak / 1024:11.0f}")
        results.append(r)
    return results


if __name__ == "__main__":
    main()
