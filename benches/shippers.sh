#!/usr/bin/env bash
# The shipper endpoints' throughput (issue 10) against a release logpulsed on
# a fresh data dir: starts the daemon with a syslog TCP listener, runs
# benches/shippers.py (OTLP protobuf, the Events API and _bulk with the same
# rows, syslog over TCP), stops the daemon.
#
#   LOGPULSED=target/release/logpulsed LP_VENV=/tmp/lp-venv bash benches/shippers.sh [ROUNDS]
#
# LP_VENV is a virtualenv with opentelemetry-proto; LP_ONLY=otlp,bulk,syslog
# picks some of the paths; LP_PERF=1 records the
# daemon with `perf record -g` into $TMPDIR/shippers.perf.data.
set -euo pipefail
BIN=${LOGPULSED:-target/release/logpulsed}
PY=${LP_VENV:-/tmp/lp-venv}/bin/python
ROUNDS=${1:-10}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=p.bench$RANDOM$RANDOM$RANDOM
LOGPULSE_ADMIN_TOKEN=$token "$BIN" --listen "127.0.0.1:$port" --data-dir "$dir/data" \
    --syslog-tcp-listen "127.0.0.1:$sport" --alert-eval-interval-secs 0 --log warn &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v0/health" >/dev/null 2>&1 && break
    sleep 0.1
done
if [ "${LP_PERF:-0}" = 1 ]; then
    perf record -g -p "$pid" -o "${TMPDIR:-/tmp}/shippers.perf.data" 2>/dev/null &
    perfpid=$!
fi
"$PY" "$(dirname "$0")/shippers.py" "http://127.0.0.1:$port" "$token" "$sport" "$ROUNDS"
if [ -n "${perfpid:-}" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; fi
