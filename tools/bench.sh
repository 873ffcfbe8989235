#!/usr/bin/env bash
# Measures the offline tools on the peer benchmark's data (shared/bench/gen.py):
#   - logpulse-replay offline: rows/s from the NDJSON file into a fresh data dir
#     (the tool's own figure: parse to visible; and wall time including open
#     and the final fsync of everything);
#   - logpulse-compact: MB/s of segment data compacted;
#   - bytes per row on disk before and after compaction (segment files, and the
#     whole data dir including the sled index).
# Knobs: LP_ROWS (1000000), LP_RUNS (3 replays, best kept), LP_BENCH_DIR
# (/tmp/lp-bench), LP_GEN (path of gen.py), LP_KEEP=1 keeps the data dirs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rows=${LP_ROWS:-1000000}
runs=${LP_RUNS:-3}
bench_dir=${LP_BENCH_DIR:-/tmp/lp-bench}
gen=${LP_GEN:-}
for g in "$gen" "$root/shared/bench/gen.py" "$root/../shared/bench/gen.py"; do
    if [ -n "$g" ] && [ -f "$g" ]; then gen=$g; break; fi
done
[ -f "$gen" ] || { echo "gen.py not found: set LP_GEN" >&2; exit 1; }

(cd "$root" && cargo build --release -q -p logpulse-tools)
replay=$root/target/release/logpulse-replay
compact=$root/target/release/logpulse-compact

data=$(python3 "$gen" --rows "$rows" --dir "$bench_dir")
thresholds=${data/system_logs-/thresholds-}
size=$(stat -c %s "$data")
work=$(mktemp -d /tmp/lp-tools-bench.XXXXXX)
[ "${LP_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
seg_bytes() { find "$1" -name '*.seg' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
disk_bytes() { du -sB1 "$1" | cut -f1; }

echo "data: $data ($rows rows, $size bytes)"
best=
for i in $(seq 1 "$runs"); do
    dir=$work/replay-$i
    t0=$(now)
    out=$("$replay" --quiet --data-dir "$dir" --datasource system_logs "$data")
    t1=$(now)
    wall=$(echo "$t1 - $t0" | bc -l)
    echo "replay run $i: $out; wall incl. open and final fsync ${wall} s = $(echo "$rows / $wall" | bc) rows/s"
    if [ -z "$best" ] || [ "$(echo "$wall < $best_wall" | bc)" = 1 ]; then
        best=$dir; best_wall=$wall
    fi
done
for i in $(seq 1 "$runs"); do [ "$work/replay-$i" = "$best" ] || rm -rf "$work/replay-$i"; done
"$replay" --quiet --data-dir "$best" --datasource log_anomaly_thresholds "$thresholds" >/dev/null

files_before=$(seg_bytes "$best"); disk_before=$(disk_bytes "$best")
report=$("$compact" --data-dir "$best")
echo "$report" | sed 's/^/  /'
files_after=$(seg_bytes "$best"); disk_after=$(disk_bytes "$best")
"$compact" --data-dir "$best" --verify-only | sed 's/^/  /'
# "compaction: compacted H hours: S segments, X MB -> S' segments, Y MB (R rows, a -> b bytes/row)"
line=$(echo "$report" | grep 'compaction:')
mb_in=$(echo "$line" | sed -E 's/.*segments, ([0-9.]+) MB ->.*/\1/')
per_row=$(echo "$line" | sed -E 's/.*rows, ([0-9.]+ -> [0-9.]+) bytes\/row.*/\1/')
speed=$(echo "$report" | sed -nE 's/.*\(compaction ([0-9.]+) MB\/s.*/\1/p')

printf '\n%-52s %s\n' "offline replay, best wall incl. final fsync (rows/s)" "$(echo "$rows / $best_wall" | bc)"
printf '%-52s %s (of %s MB)\n' "compaction (MB/s of committed segment data)" "$speed" "$mb_in"
printf '%-52s %s\n' "committed segment bytes/row before -> after" "$per_row"
printf '%-52s %.1f -> %.1f\n' "segment file sizes bytes/row before -> after" \
    "$(echo "$files_before / $rows" | bc -l)" "$(echo "$files_after / $rows" | bc -l)"
printf '%-52s %.1f -> %.1f\n' "data dir on disk (du, index included) bytes/row" \
    "$(echo "$disk_before / $rows" | bc -l)" "$(echo "$disk_after / $rows" | bc -l)"
