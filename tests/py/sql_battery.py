"""The Query API (/v0/sql) against ClickHouse itself: every query of QUERIES
runs on a running logpulsed over HTTP and on chdb (ClickHouse in-process,
from PyPI) over the same rows, and the answers must agree row for row.

Usage: sql_battery.py BASE_URL ADMIN_TOKEN [--rows 20000]

Generates a deterministic data set (services, severities, servers, error
codes and metadata shaped as ../shared/bench/gen.py makes them, plus a few
other metadata shapes: nested objects, arrays, plain text, empty), ingests it
into logpulsed (POST /v0/events, wait=true) and into chdb, and compares.
Numbers are compared with a relative tolerance of 1e-9; every query orders
its result completely. A pipe queried as a table is compared with the pipe's
SQL of API.md / README run in chdb with the same defaults.

benches/sql_battery.py imports QUERIES and chdb_session() for its timings.

Prints 'sql battery: N queries agree' on success; exits non-zero after
listing every query whose answers differ.
"""

import json
import math
import os
import random
import sys
import tempfile
import time
import urllib.error
import urllib.request

SERVICES = ["api-gateway", "auth-service", "user-service", "order-service",
            "payment-service", "inventory-service", "search-service", "notification-service"]
SERVICE_WEIGHTS = [30, 16, 14, 11, 9, 8, 7, 5]
SEVERITIES = ["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"]
SEVERITY_WEIGHTS = [14, 62, 15, 7, 2]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1"]
SERVERS = [f"srv-{REGIONS[i % len(REGIONS)]}-{i:02d}" for i in range(50)]
PATHS = ["/api/v1/users", "/api/v1/orders", "/api/v1/search", "/api/v2/payments", "/healthz"]
MESSAGES = {
    "DEBUG": ["cache lookup key=user:{a} hit={b} ttl_remaining={c}s",
              "acquired connection from pool db-{d} in {c}ms"],
    "INFO": ["GET {p}/{a} completed status=200 in {c}ms bytes={e}",
             "user {a} logged in from 10.0.{d}.{b} via password",
             "order {a} created with {d} items total=${e}.{b}"],
    "WARN": ["slow request GET {p}/{a} took {c}ms (threshold 500ms)",
             "Retrying call to payment-provider attempt={d} after {c}ms backoff"],
    "ERROR": ["request POST {p} failed status=500: upstream timed out after {c}ms",
              "payment {a} declined by provider: insufficient_funds",
              "database query failed on db-{d}: Deadlock detected, transaction {a} rolled back",
              "request GET {p} failed status=503: \"service unavailable\""],
    "CRITICAL": ["database primary db-{d} unreachable, failing over (lag {c}ms)",
                 "out of memory: killed worker {a} (rss {e} MiB)"],
}
ERROR_CODES = {
    "WARN": ["W_SLOW_REQUEST", "W_RETRY"],
    "ERROR": ["E_UPSTREAM_TIMEOUT", "E_PAYMENT_DECLINED", "E_DB_DEADLOCK", "HTTP_500", "HTTP_503"],
    "CRITICAL": ["C_DB_FAILOVER", "C_OOM_KILL"],
}
RESOURCES = ["user", "order", "txn", "sku"]
START = 1717200000  # 2024-06-01 00:00:00 UTC
DAYS = 3


def metadata(rng):
    """One of several shapes, as shippers send them (stored as JSON text)."""
    shape = rng.random()
    if shape < 0.55:
        v = {"trace_id": f"{rng.getrandbits(48):012x}", "latency_ms": rng.randint(1, 3000),
             "region": rng.choice(REGIONS)}
    elif shape < 0.70:
        v = {"region": rng.choice(REGIONS), "http": {"method": rng.choice(["GET", "POST"]),
             "status": rng.choice([200, 201, 404, 500, 503])},
             "latency_ms": round(rng.uniform(0.5, 900.0), 3), "retry": rng.random() < 0.3}
    elif shape < 0.75:
        v = [rng.randint(0, 9), rng.choice(REGIONS)]
    elif shape < 0.78:
        return "not json: region=" + rng.choice(REGIONS)
    else:
        return ""
    return json.dumps(v, separators=(",", ":"))


def fill(template, rng):
    return template.format(a=f"{rng.getrandbits(24):06x}", b=rng.randint(0, 99),
                           c=rng.randint(1, 5000), d=rng.randint(1, 9),
                           e=rng.randint(100, 99999), p=rng.choice(PATHS))


def generate(rows, now, seed=15):
    """The rows as logpulse stores them, in ingestion order: `rows` spread
    over DAYS days from START, then a recent burst 20-40 minutes before
    `now` (what now()-relative queries and log_anomalies see)."""
    rng = random.Random(seed)
    out = []
    span = DAYS * 86400
    recent = max(rows // 50, 50)
    recent_start = (now // 60) * 60 - 40 * 60
    for i in range(rows + recent):
        if i < rows:
            ts = START + i * span // rows + rng.randrange(60)
            service = rng.choices(SERVICES, SERVICE_WEIGHTS)[0]
            severity = rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0]
        else:
            ts = recent_start + (i - rows) * 1200 // recent
            service = rng.choice(["payment-service", "api-gateway"])
            severity = rng.choice(["ERROR", "ERROR", "WARN"])
        codes = ERROR_CODES.get(severity)
        out.append({
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)),
            "server_id": rng.choice(SERVERS) if rng.random() < 0.95 else "",
            "service": service,
            "severity": severity,
            "message": fill(rng.choice(MESSAGES[severity]), rng),
            "error_code": rng.choice(codes) if codes else "",
            "resource_id": f"{rng.choice(RESOURCES)}-{rng.getrandbits(32):08x}"
            if rng.random() < 0.85 else "",
            "metadata": metadata(rng),
        })
    return out


def thresholds(now):
    old = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(START - 30 * 86400))
    new = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(START - 86400))
    rows = []
    for i, service in enumerate(SERVICES):
        for severity in ("WARN", "ERROR", "CRITICAL"):
            rows.append({"service": service, "severity": severity,
                         "threshold_per_minute": 4.0 + i, "active": 1, "updated_at": old})
            if i % 2 == 0:
                rows.append({"service": service, "severity": severity,
                             "threshold_per_minute": 2.0 + i / 2, "active": 1, "updated_at": new})
    rows.append({"service": "api-gateway", "severity": "WARN",
                 "threshold_per_minute": 1.0, "active": 0, "updated_at": new})
    return rows


# --------------------------------------------------------------------------
# The queries. Each is (name, logpulse SQL, chdb SQL or None for the same).
# Every one orders its result completely (ties broken down to unique rows).
# --------------------------------------------------------------------------

LOG = "timestamp, server_id, service, severity, message, error_code, resource_id, metadata"
ALL_ORDER = "timestamp, server_id, service, severity, message, error_code, resource_id, metadata"
LAT = "JSONExtractInt(metadata, 'latency_ms')"

QUERIES = [
    # aggregates
    ("count", "SELECT count() AS n FROM system_logs", None),
    ("count_by_service", "SELECT service, count() AS n FROM system_logs GROUP BY service ORDER BY service", None),
    ("count_by_service_severity",
     "SELECT service, severity, count() AS n FROM system_logs GROUP BY service, severity "
     "ORDER BY n DESC, service, severity", None),
    ("uniq_servers_by_severity",
     "SELECT severity, count() AS n, uniq(server_id) AS servers, uniqExact(resource_id) AS resources "
     "FROM system_logs GROUP BY severity ORDER BY severity", None),
    ("min_max_time", "SELECT min(timestamp) AS first, max(timestamp) AS last FROM system_logs", None),
    ("min_max_strings", "SELECT min(server_id) AS a, max(server_id) AS b, max(message) AS m FROM system_logs", None),
    ("latency_sum_avg",
     f"SELECT service, sum({LAT}) AS total, avg({LAT}) AS mean, min({LAT}) AS lo, max({LAT}) AS hi "
     "FROM system_logs GROUP BY service ORDER BY service", None),
    ("count_if",
     "SELECT countIf(severity = 'ERROR') AS errors, countIf(severity IN ('WARN', 'ERROR', 'CRITICAL')) AS problems, "
     "countIf(error_code != '') AS coded FROM system_logs", None),
    ("sum_avg_min_max_if",
     f"SELECT sumIf({LAT}, severity = 'ERROR') AS s, avgIf({LAT}, severity = 'WARN') AS a, "
     f"minIf(timestamp, severity = 'CRITICAL') AS first_crit, maxIf(timestamp, severity = 'CRITICAL') AS last_crit "
     "FROM system_logs", None),
    ("error_ratio_by_service",
     "SELECT service, round(100 * countIf(severity = 'ERROR') / count(), 2) AS error_pct "
     "FROM system_logs GROUP BY service ORDER BY service", None),
    ("quantiles_latency",
     f"SELECT service, quantile(0.5)({LAT}) AS p50, quantile(0.9)({LAT}) AS p90, median({LAT}) AS med "
     "FROM system_logs WHERE service IN ('search-service', 'notification-service') AND severity = 'WARN' "
     "GROUP BY service ORDER BY service", None),
    ("quantiles_array",
     f"SELECT quantiles(0.25, 0.5, 0.75)({LAT}) AS q FROM system_logs WHERE severity = 'CRITICAL'", None),
    ("having_busy_servers",
     "SELECT server_id, count() AS n FROM system_logs GROUP BY server_id "
     "HAVING count() > (SELECT count() FROM system_logs) / 50 ORDER BY n DESC, server_id", None),
    ("count_distinct", "SELECT count(DISTINCT server_id) AS servers, count(DISTINCT error_code) AS codes FROM system_logs", None),
    ("distinct_severities", "SELECT DISTINCT severity FROM system_logs ORDER BY severity", None),
    ("share_window",
     "SELECT service, count() AS n, round(100 * count() / sum(count()) OVER (), 2) AS pct "
     "FROM system_logs GROUP BY service ORDER BY n DESC, service", None),
    # time buckets
    ("per_hour", "SELECT toStartOfHour(timestamp) AS h, count() AS n FROM system_logs GROUP BY h ORDER BY h", None),
    ("per_day", "SELECT toStartOfDay(timestamp) AS d, count() AS n FROM system_logs GROUP BY d ORDER BY d", None),
    ("busiest_minutes",
     "SELECT toStartOfMinute(timestamp) AS m, count() AS n FROM system_logs "
     "WHERE timestamp >= '2024-06-02 00:00:00' AND timestamp < '2024-06-02 02:00:00' "
     "GROUP BY m ORDER BY n DESC, m LIMIT 10", None),
    ("interval_15m",
     "SELECT toStartOfInterval(timestamp, INTERVAL 15 MINUTE) AS b, count() AS n FROM system_logs "
     "WHERE severity = 'ERROR' GROUP BY b ORDER BY b LIMIT 50", None),
    ("interval_6h",
     "SELECT toStartOfInterval(timestamp, INTERVAL 6 HOUR) AS b, count() AS n FROM system_logs GROUP BY b ORDER BY b", None),
    ("interval_1d",
     "SELECT toStartOfInterval(timestamp, INTERVAL 1 DAY) AS b, service, count() AS n FROM system_logs "
     "GROUP BY b, service ORDER BY b, service", None),
    ("five_fifteen",
     "SELECT toStartOfFiveMinutes(timestamp) AS f, toStartOfFifteenMinutes(timestamp) AS q, count() AS n "
     "FROM system_logs WHERE timestamp < '2024-06-01 03:00:00' GROUP BY f, q ORDER BY f", None),
    ("per_date", "SELECT toDate(timestamp) AS d, count() AS n FROM system_logs GROUP BY d ORDER BY d", None),
    ("hour_of_day",
     "SELECT toHour(timestamp) AS hr, count() AS n FROM system_logs WHERE severity = 'ERROR' GROUP BY hr ORDER BY hr", None),
    ("date_parts",
     "SELECT toYear(timestamp) AS y, toMonth(timestamp) AS mo, toDayOfMonth(timestamp) AS dd, count() AS n "
     "FROM system_logs GROUP BY y, mo, dd ORDER BY y, mo, dd", None),
    ("minute_second_parts",
     "SELECT toMinute(timestamp) AS mi, toSecond(timestamp) AS s, count() AS n FROM system_logs "
     "WHERE severity = 'CRITICAL' GROUP BY mi, s ORDER BY n DESC, mi, s LIMIT 10", None),
    ("unix_timestamp", "SELECT toUnixTimestamp(max(timestamp)) AS t, toUnixTimestamp(min(timestamp)) AS f FROM system_logs", None),
    ("todatetime_range",
     "SELECT count() AS n FROM system_logs WHERE timestamp >= toDateTime('2024-06-02 00:00:00') "
     "AND timestamp < toDateTime('2024-06-02 06:00:00')", None),
    ("interval_arithmetic",
     "SELECT max(timestamp) - INTERVAL 1 DAY AS day_before, min(timestamp) + INTERVAL 90 MINUTE AS later "
     "FROM system_logs WHERE timestamp < '2024-06-04 00:00:00'", None),
    ("window_by_interval",
     "SELECT count() AS n FROM system_logs "
     "WHERE timestamp >= toDateTime('2024-06-03 12:00:00') - INTERVAL 3 HOUR AND timestamp < toDateTime('2024-06-03 12:00:00')", None),
    ("last_hour_now",
     "SELECT service, count() AS n FROM system_logs WHERE timestamp > now() - INTERVAL 1 HOUR "
     "GROUP BY service ORDER BY service", None),
    ("today", "SELECT count() AS n FROM system_logs WHERE toDate(timestamp) = today()", None),
    # filters on every column
    ("filter_server", "SELECT count() AS n, uniq(service) AS s FROM system_logs WHERE server_id = 'srv-eu-west-1-02'", None),
    ("filter_empty_server", "SELECT count() AS n FROM system_logs WHERE server_id = ''", None),
    ("filter_service_in",
     "SELECT severity, count() AS n FROM system_logs WHERE service IN ('auth-service', 'user-service') "
     "GROUP BY severity ORDER BY severity", None),
    ("filter_severity_not",
     "SELECT service, count() AS n FROM system_logs WHERE severity != 'INFO' AND severity != 'DEBUG' "
     "GROUP BY service ORDER BY service", None),
    ("filter_like", "SELECT count() AS n FROM system_logs WHERE message LIKE '%timed out%'", None),
    ("filter_not_like", "SELECT count() AS n FROM system_logs WHERE message NOT LIKE 'GET %'", None),
    ("filter_ilike", "SELECT service, count() AS n FROM system_logs WHERE message ILIKE '%deadlock%' GROUP BY service ORDER BY service", None),
    ("filter_position",
     "SELECT count() AS n, countIf(position(message, 'db-') > 3) AS later FROM system_logs WHERE position(message, 'db-') > 0", None),
    ("filter_position_ci",
     "SELECT positionCaseInsensitive(message, 'RETRYING') AS p, count() AS n FROM system_logs "
     "WHERE positionCaseInsensitive(message, 'retrying') > 0 GROUP BY p ORDER BY p", None),
    ("filter_match", "SELECT count() AS n FROM system_logs WHERE match(message, 'status=5[0-9][0-9]')", None),
    ("filter_match_anchored", "SELECT count() AS n FROM system_logs WHERE match(resource_id, '^txn-[0-9a-f]{8}$')", None),
    ("filter_error_code",
     "SELECT error_code, count() AS n FROM system_logs WHERE error_code LIKE 'HTTP_%' GROUP BY error_code ORDER BY error_code", None),
    ("filter_resource_prefix",
     "SELECT count() AS n FROM system_logs WHERE resource_id LIKE 'order-%' AND notEmpty(error_code)", None),
    ("filter_empty_fns",
     "SELECT empty(resource_id) AS no_resource, notEmpty(metadata) AS has_meta, count() AS n FROM system_logs "
     "GROUP BY no_resource, has_meta ORDER BY no_resource, has_meta", None),
    ("filter_lower_upper",
     "SELECT upper(service) AS s, lower(severity) AS v, count() AS n FROM system_logs "
     "WHERE lower(message) LIKE 'retrying%' GROUP BY s, v ORDER BY s, v", None),
    ("filter_length", "SELECT count() AS n, max(length(message)) AS longest FROM system_logs WHERE length(message) > 60", None),
    ("filter_metadata_text", "SELECT count() AS n FROM system_logs WHERE metadata LIKE 'not json%'", None),
    ("numbers_as_conditions",
     "SELECT count() AS n, countIf(JSONHas(metadata, 'http')) AS h, sum(if(JSONHas(metadata, 'trace_id'), 1, 0)) AS t "
     "FROM system_logs WHERE position(message, 'db-') AND NOT empty(server_id)", None),
    ("active_thresholds",
     "SELECT service, severity, threshold_per_minute FROM log_anomaly_thresholds WHERE active "
     "ORDER BY service, severity, threshold_per_minute", None),
    # JSON in metadata
    ("json_region",
     "SELECT JSONExtractString(metadata, 'region') AS region, count() AS n FROM system_logs "
     "GROUP BY region ORDER BY region", None),
    ("json_filter",
     "SELECT service, count() AS n FROM system_logs WHERE JSONExtractString(metadata, 'region') = 'eu-west-1' "
     "AND severity = 'ERROR' GROUP BY service ORDER BY service", None),
    ("json_int_filter", f"SELECT count() AS n FROM system_logs WHERE {LAT} > 2500", None),
    ("json_nested",
     "SELECT JSONExtractString(metadata, 'http', 'method') AS method, JSONExtractInt(metadata, 'http', 'status') AS status, "
     "count() AS n FROM system_logs GROUP BY method, status ORDER BY method, status", None),
    ("json_has",
     "SELECT JSONHas(metadata, 'trace_id') AS t, JSONHas(metadata, 'http') AS h, count() AS n FROM system_logs "
     "GROUP BY t, h ORDER BY t, h", None),
    ("json_float",
     "SELECT round(sum(JSONExtractFloat(metadata, 'latency_ms')), 3) AS s, count() AS n FROM system_logs "
     "WHERE JSONHas(metadata, 'http')", None),
    ("json_string_of_number",
     "SELECT JSONExtractString(metadata, 'latency_ms') AS s, count() AS n FROM system_logs GROUP BY s ORDER BY s LIMIT 3", None),
    ("json_bool", "SELECT JSONExtractBool(metadata, 'retry') AS r, count() AS n FROM system_logs GROUP BY r ORDER BY r", None),
    ("json_raw",
     "SELECT JSONExtractRaw(metadata, 'http') AS raw, count() AS n FROM system_logs "
     "WHERE JSONHas(metadata, 'http') GROUP BY raw ORDER BY n DESC, raw LIMIT 5", None),
    ("json_array_index",
     "SELECT JSONExtractString(metadata, 2) AS region, JSONExtractInt(metadata, 1) AS first, count() AS n "
     "FROM system_logs WHERE metadata LIKE '[%' GROUP BY region, first ORDER BY region, first LIMIT 20", None),
    # ORDER BY / LIMIT
    ("latest_critical",
     f"SELECT {LOG} FROM system_logs WHERE severity = 'CRITICAL' ORDER BY timestamp DESC, {ALL_ORDER} LIMIT 20", None),
    ("limit_offset",
     "SELECT timestamp, service, message FROM system_logs WHERE service = 'payment-service' AND severity = 'ERROR' "
     f"ORDER BY {ALL_ORDER} LIMIT 10 OFFSET 25", None),
    ("order_by_expression",
     f"SELECT resource_id, {LAT} AS lat FROM system_logs WHERE {LAT} > 0 ORDER BY lat DESC, resource_id LIMIT 15", None),
    ("top_error_codes",
     "SELECT if(error_code = '', '(none)', error_code) AS code, count() AS n FROM system_logs "
     "GROUP BY code ORDER BY n DESC, code LIMIT 5", None),
    # expressions
    ("multiif_buckets",
     f"SELECT multiIf({LAT} < 100, 'fast', {LAT} < 1000, 'ok', 'slow') AS bucket, count() AS n "
     "FROM system_logs WHERE JSONHas(metadata, 'trace_id') GROUP BY bucket ORDER BY bucket", None),
    ("int_div", f"SELECT intDiv({LAT}, 1000) AS k, count() AS n FROM system_logs GROUP BY k ORDER BY k", None),
    ("round_avg",
     f"SELECT severity, round(avg({LAT}), 1) AS a, round(avg({LAT})) AS a0 FROM system_logs GROUP BY severity ORDER BY severity", None),
    ("to_string_concat",
     "SELECT concat(service, ':', severity) AS k, toString(toDate(timestamp)) AS d, count() AS n FROM system_logs "
     "WHERE severity = 'CRITICAL' GROUP BY k, d ORDER BY k, d LIMIT 20", None),
    ("casts",
     f"SELECT toInt64(avg({LAT})) AS i, toFloat64(count()) AS f, toString(count()) AS s FROM system_logs", None),
    # subqueries, WITH, joins, unions
    ("with_cte",
     "WITH errs AS (SELECT service, count() AS n FROM system_logs WHERE severity = 'ERROR' GROUP BY service) "
     "SELECT service, n FROM errs WHERE n > (SELECT avg(n) FROM errs) ORDER BY service", None),
    ("in_subquery",
     "SELECT server_id, count() AS n FROM system_logs WHERE service IN "
     "(SELECT service FROM system_logs WHERE severity = 'CRITICAL' GROUP BY service HAVING count() > 10) "
     "GROUP BY server_id ORDER BY n DESC, server_id LIMIT 10", None),
    ("derived_table",
     "SELECT round(avg(n), 4) AS per_hour, max(n) AS peak FROM "
     "(SELECT toStartOfHour(timestamp) AS h, count() AS n FROM system_logs GROUP BY h)", None),
    ("scalar_subquery",
     "SELECT service, count() AS n, round(100 * count() / (SELECT count() FROM system_logs), 3) AS pct "
     "FROM system_logs GROUP BY service ORDER BY service", None),
    ("join_thresholds",
     "SELECT l.service AS service, l.severity AS severity, count() AS n, max(t.threshold_per_minute) AS thr "
     "FROM system_logs AS l INNER JOIN log_anomaly_thresholds AS t ON l.service = t.service AND l.severity = t.severity "
     "WHERE t.active = 1 GROUP BY l.service, l.severity ORDER BY service, severity", None),
    ("union_all",
     "SELECT kind, n FROM (SELECT 'errors' AS kind, count() AS n FROM system_logs WHERE severity = 'ERROR' "
     "UNION ALL SELECT 'warnings' AS kind, count() AS n FROM system_logs WHERE severity = 'WARN') ORDER BY kind", None),
    ("thresholds_table",
     "SELECT service, severity, threshold_per_minute, active, updated_at FROM log_anomaly_thresholds "
     "ORDER BY service, severity, updated_at, threshold_per_minute, active", None),
    # pipes as tables (in chdb: the pipe's SQL with its default parameters)
    ("pipe_recent_logs", f"SELECT {LOG} FROM recent_logs ORDER BY timestamp DESC, {ALL_ORDER}",
     f"SELECT {LOG} FROM (SELECT {LOG} FROM system_logs ORDER BY timestamp DESC, seq DESC LIMIT 100) "
     f"ORDER BY timestamp DESC, {ALL_ORDER}"),
    ("pipe_recent_logs_grouped",
     "SELECT service, severity, count() AS n FROM recent_logs GROUP BY service, severity ORDER BY service, severity",
     "SELECT service, severity, count() AS n FROM (SELECT * FROM system_logs ORDER BY timestamp DESC, seq DESC LIMIT 100) "
     "GROUP BY service, severity ORDER BY service, severity"),
    ("pipe_error_distribution",
     "SELECT service, severity, error_count, percentage, first_seen, last_seen FROM error_distribution "
     "ORDER BY error_count DESC, service, severity",
     "SELECT service, severity, error_count, percentage, first_seen, last_seen FROM ("
     "SELECT service, severity, count() AS error_count, round(100 * count() / sum(count()) OVER (), 2) AS percentage, "
     "min(timestamp) AS first_seen, max(timestamp) AS last_seen FROM system_logs GROUP BY service, severity "
     "ORDER BY error_count DESC, service ASC, severity ASC LIMIT 100) ORDER BY error_count DESC, service, severity"),
    ("pipe_error_distribution_filtered",
     "SELECT service, error_count FROM error_distribution WHERE severity = 'ERROR' ORDER BY service",
     "SELECT service, count() AS error_count FROM system_logs WHERE severity = 'ERROR' GROUP BY service ORDER BY service"),
    ("pipe_log_anomalies",
     "SELECT minute, service, severity, log_count, threshold_per_minute, excess_ratio FROM log_anomalies "
     "ORDER BY minute DESC, service, severity",
     "WITH thresholds AS (SELECT service, severity, threshold_per_minute FROM log_anomaly_thresholds_in_force "
     "WHERE active = 1) "
     "SELECT toStartOfMinute(l.timestamp) AS minute, l.service AS service, l.severity AS severity, count() AS log_count, "
     "t.threshold_per_minute AS threshold_per_minute, round(count() / t.threshold_per_minute, 2) AS excess_ratio "
     "FROM system_logs AS l INNER JOIN thresholds AS t USING (service, severity) "
     "WHERE l.timestamp >= now() - INTERVAL 60 MINUTE AND l.timestamp < now() "
     "GROUP BY minute, l.service, l.severity, t.threshold_per_minute HAVING log_count > t.threshold_per_minute "
     "ORDER BY minute DESC, service, severity LIMIT 100"),
    ("pipe_log_baseline_anomalies",
     "SELECT minute, service, severity, log_count, baseline_mean FROM log_baseline_anomalies "
     "ORDER BY minute DESC, service, severity",
     "SELECT toStartOfMinute(timestamp) AS minute, service, severity, count() AS log_count, 0. AS baseline_mean "
     "FROM system_logs WHERE timestamp >= now() - INTERVAL 60 MINUTE AND timestamp < now() "
     "GROUP BY minute, service, severity HAVING log_count >= 10 "
     "ORDER BY minute DESC, service, severity LIMIT 100"),
]


# --------------------------------------------------------------------------
# The two sides
# --------------------------------------------------------------------------

def http(base, token, path, body, content_type="text/plain"):
    req = urllib.request.Request(base + path, data=body, method="POST")
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ingest(base, token, ds, rows, chunk=5000):
    for i in range(0, len(rows), chunk):
        body = "".join(json.dumps(r) + "\n" for r in rows[i:i + chunk]).encode()
        status, text = http(base, token, f"/v0/events?name={ds}&wait=true", body)
        if status != 200 or json.loads(text)["quarantined_rows"] != 0:
            raise SystemExit(f"ingest into {ds}: {status} {text[:300]!r}")


def logpulse(base, token, sql):
    """(column names, rows) of a query, or raises with the error."""
    status, text = http(base, token, "/v0/sql", sql.encode())
    if status != 200:
        raise RuntimeError(f"logpulse {status}: {text[:500].decode(errors='replace')}")
    doc = json.loads(text)
    names = [m["name"] for m in doc["meta"]]
    return names, [[row[n] for n in names] for row in doc["data"]]


def chdb_session(path, rows_file, thresholds_file):
    """A chdb session over `path` with system_logs (and its seq: the
    ingestion order), log_anomaly_thresholds and the thresholds in force."""
    from chdb import session
    s = session.Session(path)

    def q(sql):
        r = s.query(sql, "CSV")
        if r.has_error():
            raise RuntimeError(f"chdb: {r.error_message()}\n{sql}")
    q("CREATE TABLE system_logs (timestamp DateTime('UTC'), server_id String, "
      "service LowCardinality(String), severity LowCardinality(String), message String, "
      "error_code String, resource_id String, metadata String, seq UInt64) "
      "ENGINE = MergeTree ORDER BY (service, severity, timestamp)")
    structure = ("timestamp DateTime(\\'UTC\\'), server_id String, service String, severity String, "
                 "message String, error_code String, resource_id String, metadata String")
    q(f"INSERT INTO system_logs SELECT timestamp, server_id, service, upper(severity), message, "
      f"error_code, resource_id, metadata, rowNumberInAllBlocks() "
      f"FROM file('{rows_file}', 'JSONEachRow', '{structure}') SETTINGS max_threads = 1")
    q("CREATE TABLE log_anomaly_thresholds (service String, severity String, "
      "threshold_per_minute Float64, active UInt8, updated_at DateTime('UTC'), seq UInt64) "
      "ENGINE = MergeTree ORDER BY (service, severity)")
    q(f"INSERT INTO log_anomaly_thresholds SELECT service, upper(severity), threshold_per_minute, "
      f"active, updated_at, rowNumberInAllBlocks() FROM file('{thresholds_file}', 'JSONEachRow', "
      f"'service String, severity String, threshold_per_minute Float64, active UInt8, "
      f"updated_at DateTime(\\'UTC\\')') SETTINGS max_threads = 1")
    q("CREATE VIEW log_anomaly_thresholds_in_force AS SELECT service, severity, "
      "argMax(threshold_per_minute, (updated_at, seq)) AS threshold_per_minute, "
      "argMax(active, (updated_at, seq)) AS active FROM log_anomaly_thresholds GROUP BY service, severity")
    return s


def chdb_query(s, sql):
    r = s.query(sql + " SETTINGS output_format_json_quote_64bit_integers = 0, "
                "output_format_json_quote_denormals = 0, session_timezone = 'UTC'", "JSON")
    if r.has_error():
        raise RuntimeError(f"chdb: {r.error_message()}")
    doc = json.loads(r.bytes())
    names = [m["name"] for m in doc["meta"]]
    return names, [[row[n] for n in names] for row in doc["data"]]


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def same(a, b):
    if isinstance(a, bool):
        a = int(a)
    if isinstance(b, bool):
        b = int(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
            return str(a) == str(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare(lp, ch):
    """None if the answers agree, else what differs."""
    (ln, lrows), (cn, crows) = lp, ch
    if ln != cn:
        return f"columns differ: logpulse {ln} vs clickhouse {cn}"
    if len(lrows) != len(crows):
        return f"{len(lrows)} rows vs clickhouse's {len(crows)}"
    for i, (a, b) in enumerate(zip(lrows, crows)):
        if not same(a, b):
            return f"row {i}: logpulse {a} vs clickhouse {b}"
    return None


def compaction_gauges(base, token):
    """The daemon's `logpulse_compaction_pending_hours` and
    `logpulse_compactions_total`, or None (a backend without background
    compaction)."""
    req = urllib.request.Request(base + "/metrics")
    req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        found = {}
        for line in r.read().decode().splitlines():
            name = line.split(" ")[0]
            if name in ("logpulse_compaction_pending_hours", "logpulse_compactions_total"):
                found[name] = float(line.split()[-1])
    if len(found) < 2:
        return None
    return found["logpulse_compaction_pending_hours"], found["logpulse_compactions_total"]


def settle(base, token, seconds=120):
    """Waits until some hour was compacted and none is left to compact, so
    that the queries read compact files (the state a daemon reaches by
    itself)."""
    deadline = time.time() + seconds
    while True:
        gauges = compaction_gauges(base, token)
        if gauges is None or (gauges[0] == 0 and gauges[1] > 0):
            print(f"settled: {gauges[1]:.0f} hours compacted" if gauges else "no compaction here")
            return
        if time.time() > deadline:
            raise SystemExit(f"compaction not settled after {seconds}s: {gauges}")
        time.sleep(0.2)


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("token")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--settle", action="store_true",
                    help="after ingest, wait until the daemon has compacted every closed hour")
    args = ap.parse_args()
    t0 = time.time()
    now = int(time.time())
    rows, thr = generate(args.rows, now), thresholds(now)
    work = tempfile.mkdtemp(prefix="lp-sql-battery-")
    rows_file = os.path.join(work, "rows.ndjson")
    thr_file = os.path.join(work, "thresholds.ndjson")
    for path, data in ((rows_file, rows), (thr_file, thr)):
        with open(path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in data)
    ingest(args.base, args.token, "system_logs", rows)
    ingest(args.base, args.token, "log_anomaly_thresholds", thr)
    if args.settle:
        settle(args.base, args.token)
    s = chdb_session(os.path.join(work, "chdb"), rows_file, thr_file)
    print(f"loaded {len(rows)} rows into both in {time.time() - t0:.1f}s")
    failures, empty = [], 0
    for name, sql, ch_sql in QUERIES:
        try:
            lp = logpulse(args.base, args.token, sql)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(f"{name}: {e}\n    {sql}")
            continue
        ch = chdb_query(s, ch_sql or sql)
        empty += not ch[1]
        diff = compare(lp, ch)
        status = "ok" if diff is None else "DIFFERS"
        print(f"{status:8} {name:34} {len(lp[1])} rows")
        if diff is not None:
            failures.append(f"{name}: {diff}\n    {sql}")
    s.close()
    print(f"{len(QUERIES)} queries in {time.time() - t0:.1f}s, {empty} with empty answers")
    if failures:
        print("\n".join(["FAILED:"] + failures))
        sys.exit(1)
    print(f"sql battery: {len(QUERIES)} queries agree")


if __name__ == "__main__":
    main()
