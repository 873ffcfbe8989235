#!/usr/bin/env bash
# logpulsed under ../shared/bench/compare.sh, with the daemon's CPU time per
# million ingested rows measured from /proc (issue 13):
#
#   LOGPULSED=benches/cpu_daemon.sh LP_REAL_LOGPULSED=target/release/logpulsed \
#       bash ../shared/bench/compare.sh
#
# It runs the real daemon with compare.sh's arguments and environment, and a
# sampler beside it that reads /proc/<pid>/stat (utime + stime) and the
# daemon's logpulse_rows_ingested_total (GET /metrics, every 20 ms, one
# keep-alive connection; its own cost is in the figure). The ingest window
# runs from the last sample at <= 1% of the final row count to the first
# sample at the final count; the CPU-seconds in it over the rows are the figure.
# SIGTERM and SIGINT are passed on; at the daemon's exit the sampler prints
# one JSON line to stderr (compare.sh's results dir, logpulsed.log) and
# writes it to $LP_CPU_OUT (default /tmp/lp-bench/cpu-<UTC time>.json).
set -euo pipefail
BIN=${LP_REAL_LOGPULSED:-target/release/logpulsed}
: "${LOGPULSE_LISTEN:?run me from compare.sh}" "${LOGPULSE_ADMIN_TOKEN:?run me from compare.sh}"
OUT=${LP_CPU_OUT:-/tmp/lp-bench/cpu-$(date -u +%Y%m%dT%H%M%S).json}

"$BIN" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT

python3 - "$pid" "$LOGPULSE_LISTEN" "$LOGPULSE_ADMIN_TOKEN" "$OUT" <<'EOF' &
import http.client, json, os, sys, time
pid, addr, token, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host, port = addr.rsplit(":", 1)
tick = os.sysconf("SC_CLK_TCK")

def cpu():
    """utime + stime of the daemon in seconds, None once it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / tick

conn = None
def rows():
    global conn
    try:
        if conn is None:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        body = r.read().decode()
    except (OSError, http.client.HTTPException):
        conn = None
        return None
    for line in body.splitlines():
        if line.startswith("logpulse_rows_ingested_total"):
            return int(float(line.split()[-1]))
    return None

samples = []  # (wall s, cpu s, rows or None)
t0 = time.monotonic()
while True:
    c = cpu()
    if c is None:
        break
    samples.append((time.monotonic() - t0, c, rows()))
    time.sleep(0.02)

seen = [(t, c, r) for t, c, r in samples if r is not None]
final = max((r for _, _, r in seen), default=0)
res = {"rows": final, "daemon_cpu_s_total": samples[-1][1] if samples else None,
       "samples": len(samples)}
if final > 0:
    # The bulk load starts after the last sample at <= 1% of the rows (load.py
    # posts its few threshold rows first, then reads its data file).
    low = [i for i, s in enumerate(seen) if s[2] <= final // 100]
    start = low[-1] if low else 0
    end = next(i for i, s in enumerate(seen) if s[2] == final)
    (t_a, c_a, _), (t_b, c_b, _) = seen[start], seen[end]
    res.update({
        "ingest_window_s": round(t_b - t_a, 3),
        "ingest_cpu_s": round(c_b - c_a, 3),
        "cpu_s_per_million_rows": round((c_b - c_a) / final * 1e6, 3),
        "cpu_cores_busy": round((c_b - c_a) / max(t_b - t_a, 1e-9), 2),
    })
line = json.dumps(res)
print(f"cpu_daemon: {line}", file=sys.stderr, flush=True)
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
with open(out, "w") as f:
    f.write(line + "\n")
EOF
sampler=$!

while :; do
    rc=0
    wait "$pid" || rc=$?
    kill -0 "$pid" 2>/dev/null || break
done
wait "$sampler" || true
exit "$rc"
