"""Cost of one alert evaluation with many watched keys, against a running
logpulsed (a release build) started with `--alert-eval-interval-secs 1`.

Posts KEYS thresholds (service `bench-svc-NNNNN`, severity ERROR, 5 a minute),
then rows in the current minute for every key: 3 rows for odd keys (quiet),
8 for every EVERY-th key (above the threshold: with EVERY=2, half the keys fire). Reads
`logpulse_alert_evaluation_seconds` (the last evaluation's duration) from
/metrics once per evaluation and prints its median and maximum: first while
the alerts are being raised, then in the steady state (all firing, re-sent
every evaluation).

usage: alerts_eval.py BASE TOKEN [KEYS] [SAMPLES] [EVERY]
(EVERY: one key in EVERY goes above its threshold; default 2)
"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse
from datetime import datetime, timezone

BASE, TOKEN = sys.argv[1], sys.argv[2]
KEYS = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
SAMPLES = int(sys.argv[4]) if len(sys.argv) > 4 else 20
EVERY = int(sys.argv[5]) if len(sys.argv) > 5 else 2
URL = urllib.parse.urlparse(BASE)


def request(method, path, body=None):
    c = http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)
    c.request(method, path, body=body, headers={"Authorization": f"Bearer {TOKEN}"})
    r = c.getresponse()
    data = r.read()
    assert r.status < 300, (r.status, data[:300])
    return data


def metric(name):
    for line in request("GET", "/metrics").decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise SystemExit(f"{name} not in /metrics")


def post(ds, lines):
    request("POST", f"/v0/events?name={ds}&wait=true", "\n".join(lines).encode())


def samples(n):
    """One reading per evaluation (waits for the counter to move)."""
    out, seen = [], metric("logpulse_alert_evaluations_total")
    while len(out) < n:
        time.sleep(0.2)
        now = metric("logpulse_alert_evaluations_total")
        if now != seen:
            seen = now
            out.append(metric("logpulse_alert_evaluation_seconds") * 1000)
    return out


def report(label, xs):
    print(f"{label}: median {statistics.median(xs):.2f} ms, max {max(xs):.2f} ms over {len(xs)} evaluations")


def main():
    post("log_anomaly_thresholds", [
        json.dumps({"service": f"bench-svc-{i:05}", "severity": "ERROR", "threshold_per_minute": 5,
                    "active": 1, "updated_at": "2024-01-01 00:00:00"})
        for i in range(KEYS)])
    report(f"{KEYS} thresholds, no rows", samples(SAMPLES))
    # Rows in the minute now (the alert engine looks at the current minute),
    # posted early in a minute so they stay in the evaluated window.
    while datetime.now(timezone.utc).second > 20:
        time.sleep(1)
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for i in range(KEYS):
        for j in range(8 if i % EVERY == 0 else 3):
            rows.append(json.dumps({"timestamp": ts, "server_id": "bench-1", "service": f"bench-svc-{i:05}",
                                    "severity": "ERROR", "message": f"bench error {j}", "error_code": "E_BENCH",
                                    "resource_id": "r", "metadata": "{}"}))
    for k in range(0, len(rows), 20000):
        post("system_logs", rows[k:k + 20000])
    firing = len(range(0, KEYS, EVERY))
    report(f"{KEYS} keys with rows, {firing} raising alerts", samples(3))
    report(f"{KEYS} keys with rows, {firing} firing (steady)", samples(SAMPLES))
    firing = metric('logpulse_alerts{state="firing"}')
    print(f"alerts firing: {firing:.0f}")


main()
