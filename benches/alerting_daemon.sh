#!/usr/bin/env bash
# logpulsed with alerting on, for ../shared/bench/compare.sh's ingest figure
# (issue 11: ingest with 1,000 thresholds and alerting on, against it off):
#
#   LOGPULSED=benches/alerting_daemon.sh LP_REAL_LOGPULSED=target/release/logpulsed \
#       bash ../shared/bench/compare.sh
#
# Before exec'ing the real daemon on compare.sh's data dir it starts it once
# on a side port, posts 1,000 active thresholds (the benchmark's 8 services
# and 5 severities among them, so its rows are counted against them) with
# wait=true and stops it. The real run then evaluates every second and
# delivers to a webhook receiver (a small HTTP sink started here).
set -euo pipefail
BIN=${LP_REAL_LOGPULSED:-target/release/logpulsed}
: "${LOGPULSE_DATA_DIR:?run me from compare.sh}" "${LOGPULSE_ADMIN_TOKEN:?run me from compare.sh}"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SEED=127.0.0.1:$(free_port)
SINK=$(free_port)

python3 - "$SINK" <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF

LOGPULSE_LISTEN=$SEED "$BIN" --listen "$SEED" --data-dir "$LOGPULSE_DATA_DIR" >/dev/null 2>&1 &
seed_pid=$!
python3 - "$SEED" "$LOGPULSE_ADMIN_TOKEN" <<'EOF'
import http.client, json, sys, time
host, port = sys.argv[1].rsplit(":", 1)
for _ in range(600):
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=2); c.request("GET", "/v0/health")
        if c.getresponse().status == 200:
            break
    except OSError:
        time.sleep(0.1)
services = ["api-gateway", "auth-service", "user-service", "payment-service", "order-service",
            "inventory-service", "notification-service", "search-service"]
severities = ["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"]
keys = [(s, v) for s in services for v in severities]
keys += [(f"quiet-service-{i:04}", "ERROR") for i in range(1000 - len(keys))]
body = "\n".join(json.dumps({"service": s, "severity": v, "threshold_per_minute": 1000, "active": 1,
                             "updated_at": "2024-01-01 00:00:00"}) for s, v in keys)
c = http.client.HTTPConnection(host, int(port), timeout=60)
c.request("POST", "/v0/events?name=log_anomaly_thresholds&wait=true", body=body,
          headers={"Authorization": f"Bearer {sys.argv[2]}"})
r = c.getresponse(); print(r.status, r.read().decode(), file=sys.stderr)
assert r.status == 200
EOF
kill -TERM "$seed_pid" && wait "$seed_pid" || true

exec "$BIN" "$@" --alert-eval-interval-secs 1 --alert-webhook-url "http://127.0.0.1:$SINK/"
