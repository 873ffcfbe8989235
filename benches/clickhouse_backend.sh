#!/usr/bin/env bash
# The ClickHouse backend beside the embedded engine on the same data, with
# ../shared/bench/compare.sh (ingest over HTTP, then p50/p99 of every pipe),
# one run each, chdb and DuckDB measured beside each as compare.sh does:
#
#   LOGPULSED=/path/to/release/logpulsed benches/clickhouse_backend.sh
#
# The ClickHouse side is a two-node, two-shard cluster on loopback
# (tests/clickhouse/cluster.sh, nodes 1 and 2; CH_RUN defaults to
# /tmp/lp-bench-clickhouse), queried through the Distributed tables.
# Environment: LP_ROWS (default 1000000), LP_VENV, LP_BENCH_DIR as for
# compare.sh; LP_SKIP_EMBEDDED=1 runs the ClickHouse side only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
COMPARE=${COMPARE:-$HERE/../shared/bench/compare.sh}
BIN=${LOGPULSED:?LOGPULSED: a release logpulsed}
export CH_RUN=${CH_RUN:-/tmp/lp-bench-clickhouse}
[ -x "$COMPARE" ] || [ -f "$COMPARE" ] || { echo "no compare.sh at $COMPARE (COMPARE=...)" >&2; exit 1; }
bash "$HERE/tests/clickhouse/cluster.sh" start 1 2
trap 'bash "$HERE/tests/clickhouse/cluster.sh" stop 1 2 >/dev/null' EXIT
db=bench_$(date -u +%Y%m%d%H%M%S)
if [ "${LP_SKIP_EMBEDDED:-}" != 1 ]; then
  echo "=== embedded engine ==="
  LOGPULSED=$BIN bash "$COMPARE"
fi
echo "=== ClickHouse backend (2 shards on loopback, database $db) ==="
# Nothing to compact on this backend: no settling wait.
LP_SETTLE_S=1 LOGPULSED=$BIN \
LOGPULSED_ARGS="--listen {addr} --data-dir {data_dir} --backend clickhouse --clickhouse-url http://127.0.0.1:18121,http://127.0.0.1:18122 --clickhouse-cluster logpulse --clickhouse-database $db" \
  bash "$COMPARE"
# What ClickHouse stores (the data dir above holds only the admin token copy).
for n in 1 2; do
  curl -s "http://127.0.0.1:1812$n/" --data-binary \
    "SELECT 'node $n', table, sum(rows), sum(bytes) FROM system.parts WHERE active AND database = '$db' GROUP BY table FORMAT TSV"
done
