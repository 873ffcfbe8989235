//! The Query API (`/v0/sql`) over HTTP against the real daemon: formats,
//! the ClickHouse dialect, scopes taken from the plan (subqueries and CTEs
//! included), read-only, limits. `tb sql` is driven by tests/cli_api.rs.

mod common;

use common::*;
use serde_json::{json, Value};

fn sql(d: &Daemon, q: &str) -> Resp {
    d.get(&format!("/v0/sql?q={}", enc(q)))
}

fn sql_as(d: &Daemon, q: &str, token: &str) -> Resp {
    d.get_as(&format!("/v0/sql?q={}", enc(q)), Some(token))
}

fn some_rows(d: &Daemon) {
    let rows: Vec<Value> = (0..20)
        .map(|i| {
            let mut r = log_row(
                &format!("2024-06-01 10:{:02}:00", i),
                if i % 2 == 0 { "api" } else { "auth" },
                if i % 4 == 0 { "ERROR" } else { "INFO" },
                &format!("m{i}"),
            );
            r["metadata"] = json!({"region": if i < 10 { "eu" } else { "us" }, "n": i});
            r
        })
        .collect();
    d.ingest("system_logs", &rows, true);
    d.ingest(
        "log_anomaly_thresholds",
        &[json!({"service": "api", "severity": "ERROR", "threshold_per_minute": 2})],
        true,
    );
}

#[test]
fn formats_and_the_clickhouse_json_shape() {
    let d = Daemon::start();
    some_rows(&d);
    let v = sql(
        &d,
        "SELECT service, count() AS n FROM system_logs GROUP BY service ORDER BY service",
    )
    .ok_json();
    assert_eq!(
        v["data"],
        json!([{"service": "api", "n": 10}, {"service": "auth", "n": 10}])
    );
    assert_eq!(v["meta"][0], json!({"name": "service", "type": "String"}));
    assert_eq!(v["rows"], 2);
    // On ClickHouse, statistics are what ClickHouse read for the counts.
    if !clickhouse::enabled() {
        assert_eq!(v["statistics"]["rows_read"], 20);
    }
    assert!(v["statistics"]["elapsed"].as_f64().unwrap() >= 0.0);

    let q = "SELECT toStartOfHour(timestamp) AS h, JSONExtractString(metadata, 'region') AS r, count() AS n FROM system_logs GROUP BY h, r ORDER BY r";
    let each = sql(&d, &format!("{q} FORMAT JSONEachRow"));
    assert_eq!(each.status, 200);
    assert_eq!(
        each.text(),
        "{\"h\":\"2024-06-01 10:00:00\",\"r\":\"eu\",\"n\":10}\n{\"h\":\"2024-06-01 10:00:00\",\"r\":\"us\",\"n\":10}\n"
    );
    let csv = sql(&d, &format!("{q} FORMAT CSVWithNames")).text();
    assert_eq!(
        csv,
        "\"h\",\"r\",\"n\"\n\"2024-06-01 10:00:00\",\"eu\",10\n\"2024-06-01 10:00:00\",\"us\",10\n"
    );
    let csv = sql(&d, &format!("{q} FORMAT CSV")).text();
    assert!(
        csv.starts_with("\"2024-06-01 10:00:00\",\"eu\",10\n"),
        "{csv}"
    );
    let tsv = sql(&d, &format!("{q} FORMAT TSV")).text();
    assert_eq!(
        tsv,
        "2024-06-01 10:00:00\teu\t10\n2024-06-01 10:00:00\tus\t10\n"
    );

    // POST: the raw body (as the tb CLI sends long queries) and a form.
    let r = d.post(
        "/v0/sql",
        b"SELECT count() AS n FROM system_logs WHERE service = 'api'",
    );
    assert_eq!(r.ok_json()["data"], json!([{"n": 10}]));
    let r = d.request(
        "POST",
        "/v0/sql",
        Some(&d.token),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(format!("q={}", enc("SELECT 1 + 1 AS two")).as_bytes()),
    );
    assert_eq!(r.ok_json()["data"], json!([{"two": 2}]));
}

#[test]
fn bad_queries_are_400_naming_what_was_not_understood() {
    let d = Daemon::start();
    for (q, needle) in [
        ("SELECT nosuchfunction(1)", "nosuchfunction"),
        ("SELECT * FROM nosuchtable", "nosuchtable"),
        ("SELEC 1", "parse"),
        (
            "INSERT INTO system_logs (service) VALUES ('x')",
            "read-only",
        ),
        ("DROP TABLE system_logs", "read-only"),
        ("SELECT 1 FORMAT Parquet", "Parquet"),
        ("SELECT histogram(3)(1)", "histogram"),
    ] {
        let msg = sql(&d, q).assert_error(400);
        assert!(msg.contains(needle), "{q}: {msg}");
    }
    assert!(d.get("/v0/sql").assert_error(400).contains("q"));
    assert_eq!(d.get_as("/v0/sql?q=SELECT%201", None).status, 401);
}

#[test]
fn scopes_come_from_the_plan_subqueries_included() {
    let d = Daemon::start();
    some_rows(&d);
    let thresholds = d.create_token("t", &["DATASOURCES:READ:log_anomaly_thresholds"]);
    let pipe = d.create_token("p", &["PIPES:READ:recent_logs"]);
    let ok = sql_as(
        &d,
        "SELECT count() AS n FROM log_anomaly_thresholds",
        &thresholds,
    );
    assert_eq!(ok.ok_json()["data"], json!([{"n": 1}]));
    for q in [
        "SELECT count() FROM system_logs",
        "SELECT count() FROM log_anomaly_thresholds WHERE service IN (SELECT service FROM system_logs)",
        "SELECT * FROM (SELECT service FROM system_logs) AS s",
        "WITH x AS (SELECT service FROM system_logs) SELECT count() FROM x",
        "SELECT count() FROM log_anomaly_thresholds AS t JOIN system_logs AS l ON t.service = l.service",
        "SELECT EXISTS (SELECT 1 FROM system_logs_quarantine) AS e",
        "SELECT count() FROM recent_logs",
    ] {
        let msg = sql_as(&d, q, &thresholds).assert_error(403);
        assert!(msg.contains("DATASOURCES:READ:system_logs") || msg.contains("READ:"), "{q}: {msg}");
    }
    // A pipe token reads the pipe as a table, not the data source below it.
    let v = sql_as(&d, "SELECT count() AS n FROM recent_logs", &pipe).ok_json();
    assert_eq!(v["data"], json!([{"n": 20}]));
    let msg = sql_as(&d, "SELECT count() FROM system_logs", &pipe).assert_error(403);
    assert!(msg.contains("system_logs"), "{msg}");
    // A table named only in a string is not read.
    let v = sql_as(&d, "SELECT 'system_logs' AS s", &pipe).ok_json();
    assert_eq!(v["data"], json!([{"s": "system_logs"}]));
}

#[test]
fn limits_answer_400_and_408() {
    let d = Daemon::options()
        .arg("--sql-max-rows=5")
        .arg("--sql-memory-bytes=65536")
        .start();
    some_rows(&d);
    let msg = sql(&d, "SELECT * FROM system_logs").assert_error(400);
    assert!(msg.contains("sql_max_rows"), "{msg}");
    let msg = sql(
        &d,
        "SELECT count() FROM (SELECT DISTINCT a.message AS x, b.message AS y, c.message AS z FROM system_logs a, system_logs b, system_logs c)",
    )
    .assert_error(400);
    assert!(msg.contains("sql_memory_bytes"), "{msg}");
    assert_eq!(sql(&d, "SELECT count() FROM system_logs").status, 200);

    let d = Daemon::options().arg("--sql-timeout-ms=1").start();
    some_rows(&d);
    let q = "SELECT count() FROM system_logs a, system_logs b, system_logs c, system_logs d2, system_logs e WHERE a.message < e.message";
    let r = sql(&d, q);
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.assert_json_error().contains("sql_timeout_ms"));
    // The daemon still ingests and answers afterwards.
    d.ingest(
        "system_logs",
        &[log_row("2024-06-01 11:00:00", "api", "INFO", "after")],
        true,
    );
    assert_eq!(d.row_count("system_logs"), 21);
}

#[test]
fn the_clickhouse_dialect_people_write_against_logs() {
    let d = Daemon::start();
    some_rows(&d);
    let one = |q: &str| -> Value {
        let v = sql(&d, q).ok_json();
        assert_eq!(v["rows"], 1, "{q}: {v}");
        v["data"][0].clone()
    };
    let v = sql(
        &d,
        "SELECT count() AS n, uniq(service) AS s FROM system_logs",
    )
    .ok_json();
    assert_eq!(v["data"], json!([{"n": 20, "s": 2}]));
    assert_eq!(v["meta"][0], json!({"name": "n", "type": "UInt64"}));
    assert_eq!(
        one("SELECT countIf(severity = 'ERROR') AS e, min(timestamp) AS lo, max(timestamp) AS hi FROM system_logs"),
        json!({"e": 5, "lo": "2024-06-01 10:00:00", "hi": "2024-06-01 10:19:00"})
    );
    assert_eq!(
        one("SELECT quantile(0.5)(JSONExtractInt(metadata, 'n')) AS q, round(avg(JSONExtractInt(metadata, 'n')), 1) AS a FROM system_logs"),
        json!({"q": 9.5, "a": 9.5})
    );
    let v = sql(
        &d,
        "SELECT toStartOfInterval(timestamp, INTERVAL 5 MINUTE) AS b, count() AS n FROM system_logs \
         WHERE timestamp >= toDateTime('2024-06-01 10:00:00') + INTERVAL 5 MINUTE \
         GROUP BY b HAVING n > 0 ORDER BY b LIMIT 2",
    )
    .ok_json();
    assert_eq!(
        v["data"],
        json!([{"b": "2024-06-01 10:05:00", "n": 5}, {"b": "2024-06-01 10:10:00", "n": 5}])
    );
    assert_eq!(
        one("SELECT count() AS n FROM system_logs WHERE message LIKE 'm1%' AND lower(service) = 'api' AND match(message, '^m1[02468]$')"),
        json!({"n": 5})
    );
    assert_eq!(
        one("SELECT count() AS n FROM system_logs WHERE message ILIKE 'M1%' AND positionCaseInsensitive(service, 'API') = 1"),
        json!({"n": 5})
    );
    assert_eq!(
        one("SELECT multiIf(count() > 100, 'many', count() > 10, 'some', 'few') AS m, if(1 = 1, upper('x'), 'y') AS x, toDate(max(timestamp)) AS day FROM system_logs"),
        json!({"m": "some", "x": "X", "day": "2024-06-01"})
    );
    assert_eq!(
        one("WITH e AS (SELECT service, count() AS n FROM system_logs WHERE severity = 'ERROR' GROUP BY service) \
             SELECT service, n FROM e WHERE n = (SELECT max(n) FROM e)"),
        json!({"service": "api", "n": 5})
    );
    // now() and today() are the server's clock; the rows are from 2024.
    assert_eq!(
        one("SELECT count() AS n FROM system_logs WHERE timestamp > now() - INTERVAL 10 MINUTE OR toDate(timestamp) = today()"),
        json!({"n": 0})
    );
    // Each pipe is a table (its default parameters).
    let v = sql(
        &d,
        "SELECT service, severity, error_count FROM error_distribution ORDER BY service, severity",
    )
    .ok_json();
    assert_eq!(
        v["data"],
        json!([
            {"service": "api", "severity": "ERROR", "error_count": 5},
            {"service": "api", "severity": "INFO", "error_count": 5},
            {"service": "auth", "severity": "INFO", "error_count": 10}
        ])
    );
}

/// The battery: 70+ queries (aggregates, time buckets, filters on every
/// column, JSON in metadata, ORDER BY/LIMIT, subqueries, WITH, joins, pipes
/// as tables) answered by logpulse over HTTP and by ClickHouse itself
/// (chdb, in-process, from PyPI) over the same 20,000 rows, compared row for
/// row by tests/py/sql_battery.py.
#[test]
fn battery_agrees_with_clickhouse_row_for_row() {
    let py = match python_with("chdb") {
        Ok(py) => py,
        Err(why) => return skip(&why),
    };
    // Closed hours compacted a second after they close, and the queries
    // asked once none is left: most rows are read from compact files (as
    // columns), the current hour's from hot segments.
    let d = Daemon::options()
        .args(["--compaction-delay-secs".to_string(), "1".to_string()])
        .start();
    let script = tests_dir().join("py").join("sql_battery.py");
    run_script(
        std::process::Command::new(&py)
            .arg(&script)
            .arg(&d.base)
            .arg(&d.token)
            .arg("--settle"),
        "queries agree",
    );
}

#[test]
fn a_whole_table_count_comes_from_the_row_count_and_matches_the_rows() {
    let d = Daemon::start();
    // More rows than one scan batch (8,192), and one bad line quarantined.
    let rows: Vec<Value> = (0..20_000)
        .map(|i| {
            log_row(
                &format!("2024-06-01 {:02}:{:02}:00", 10 + i % 3, i % 60),
                "api",
                "INFO",
                &format!("m{i}"),
            )
        })
        .collect();
    d.ingest("system_logs", &rows, true);
    let mut bad = rows[0].clone();
    bad["timestamp"] = json!("not a time");
    d.ingest("system_logs", &[bad], true);
    let count = |q: &str| sql(&d, q).ok_json()["data"][0]["n"].as_u64().unwrap();
    assert_eq!(count("SELECT count() AS n FROM system_logs"), 20_000);
    assert_eq!(count("SELECT count() AS n FROM system_logs_quarantine"), 1);
    // The same figure as a scan of every row gives.
    assert_eq!(count("SELECT count(message) AS n FROM system_logs"), 20_000);
    let v = sql(&d, "SELECT count() AS n FROM system_logs").ok_json();
    if !clickhouse::enabled() {
        assert_eq!(v["statistics"]["rows_read"], 0, "{v}");
    }
    // Rows without columns still are rows.
    let v = sql(&d, "SELECT 1 AS one FROM system_logs LIMIT 3").ok_json();
    assert_eq!(v["rows"], 3);
    // Filtered on time, service or severity, grouped by service and
    // severity: from the per-key counts, no row body read; the same answer
    // as when a column forces a scan of the rows.
    let q = "SELECT service, severity, count() AS n FROM system_logs \
             WHERE timestamp >= '2024-06-01 11:00:00' AND timestamp < '2024-06-01 12:00:00' \
             AND severity = 'INFO' GROUP BY service, severity";
    let v = sql(&d, q).ok_json();
    assert_eq!(
        v["data"],
        json!([{"service": "api", "severity": "INFO", "n": 6667}])
    );
    if !clickhouse::enabled() {
        assert_eq!(v["statistics"]["bytes_read"], 0, "{v}");
    }
    let scanned = sql(&d, &q.replace("count()", "count(message)")).ok_json();
    assert_eq!(scanned["data"], v["data"]);
    assert!(scanned["statistics"]["bytes_read"].as_u64().unwrap() > 0);
    assert_eq!(
        count("SELECT count() AS n FROM system_logs WHERE timestamp >= '2024-06-01 11:00:00'"),
        13_333
    );
    // Bounds are exact to the second, fractions included.
    assert_eq!(
        count("SELECT count() AS n FROM system_logs WHERE timestamp > '2024-06-01 11:58:00'"),
        6_666
    );
    assert_eq!(
        count("SELECT count() AS n FROM system_logs WHERE timestamp >= '2024-06-01 11:57:59.5'"),
        6_666 + 333
    );
    assert_eq!(
        count("SELECT count() AS n FROM system_logs WHERE service = 'api' AND service = 'x'"),
        0
    );
}
