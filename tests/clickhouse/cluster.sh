#!/usr/bin/env bash
# A ClickHouse cluster on loopback for the tests of the ClickHouse backend (LP_TEST_BACKEND=clickhouse):
# Debian's clickhouse-server (18.16) or a newer one, no systemd. logpulsed creates its own schema.
#   cluster.sh install          apt-get install clickhouse-server if it is missing (root)
#   cluster.sh start 1 2        node N: HTTP 1812N, native 1900N, interserver 1901N, data $CH_RUN/sN
#   cluster.sh stop 1 2         stop the nodes by their recorded pid
# Cluster `logpulse` (remote_servers.xml.snippet): 2 shards, nodes 1 and 2.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CH_RUN=${CH_RUN:-/tmp/ch-run}
BIN=${CLICKHOUSE_SERVER:-/usr/sbin/clickhouse-server}
cmd=${1:-}; shift || true

config() {  # writes $CH_RUN/sN/config.xml
  local n=$1 d=$CH_RUN/s$1
  mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas" "$d/log"
  cat >"$d/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger><level>information</level><log>$d/log/server.log</log><errorlog>$d/log/server.err.log</errorlog><size>100M</size><count>2</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>1812$n</http_port>
    <tcp_port>1900$n</tcp_port>
    <interserver_http_port>1901$n</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>200</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$d/data/</path>
    <tmp_path>$d/tmp/</tmp_path>
    <user_files_path>$d/user_files/</user_files_path>
    <format_schema_path>$d/format_schemas/</format_schema_path>
    <users_config>$HERE/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
$(cat "$HERE/remote_servers.xml.snippet")
</yandex>
XML
}

case $cmd in
  install)
    [ -x "$BIN" ] || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client; }
    # the package enables a system unit; the tests run their own processes instead
    command -v systemctl >/dev/null && systemctl disable --now clickhouse-server >/dev/null 2>&1 || true ;;
  start)
    for n in "$@"; do
      config "$n"
      nohup "$BIN" --config-file="$CH_RUN/s$n/config.xml" >"$CH_RUN/s$n/log/stdout.log" 2>&1 &
      echo $! >"$CH_RUN/s$n/pid"
      for _ in $(seq 300); do curl -fs -m 1 "http://127.0.0.1:1812$n/ping" >/dev/null 2>&1 && break; sleep 0.1; done
      curl -fs -m 1 "http://127.0.0.1:1812$n/ping" >/dev/null || { echo "node $n did not start; see $CH_RUN/s$n/log" >&2; exit 1; }
      echo "node $n: pid $(cat "$CH_RUN/s$n/pid"), http://127.0.0.1:1812$n"
    done ;;
  stop)
    for n in "$@"; do
      f=$CH_RUN/s$n/pid; [ -f "$f" ] || continue; p=$(cat "$f")
      kill "$p" 2>/dev/null && for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$p" 2>/dev/null && kill -9 "$p"
      rm -f "$f"; echo "node $n stopped"
    done ;;
  *) sed -n '2,7p' "$0" >&2; exit 2 ;;
esac
