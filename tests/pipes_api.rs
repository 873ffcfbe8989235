//! Proves the Pipes API: the three pipes' exact meta, data, ordering and tie-breaks (equal timestamps newest-ingested first), exact rows_before_limit_at_least, statistics, percentage rounding, anomalies with ReplacingMergeTree thresholds and active=0, end_time/time_window_minutes, .csv/.ndjson formats, POST bodies (form and JSON), 400 naming bad parameters and 404 for unknown pipes — checked against a reference model of the contract's SQL.

mod common;

use std::collections::HashMap;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const RECENT_META: [(&str, &str); 8] = [
    ("timestamp", "DateTime"),
    ("server_id", "String"),
    ("service", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("message", "String"),
    ("error_code", "String"),
    ("resource_id", "String"),
    ("metadata", "String"),
];

fn meta(v: &Value) -> Vec<(String, String)> {
    v["meta"]
        .as_array()
        .unwrap_or_else(|| panic!("no meta in {v}"))
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn meta_names(v: &Value) -> Vec<String> {
    meta(v).into_iter().map(|(n, _)| n).collect()
}

fn meta_type(v: &Value, col: &str) -> String {
    meta(v)
        .into_iter()
        .find(|(n, _)| n == col)
        .unwrap_or_else(|| panic!("no column {col} in meta"))
        .1
}

/// Asserts the response envelope and returns `data`.
fn check_envelope(v: &Value) -> Vec<Value> {
    let obj = v.as_object().unwrap();
    for k in [
        "meta",
        "data",
        "rows",
        "rows_before_limit_at_least",
        "statistics",
    ] {
        assert!(obj.contains_key(k), "pipe answer lacks {k}: {v}");
    }
    let data = v["data"].as_array().unwrap().clone();
    assert_eq!(
        v["rows"].as_u64(),
        Some(data.len() as u64),
        "rows != data.len()"
    );
    let st = &v["statistics"];
    assert!(
        st["elapsed"]
            .as_f64()
            .is_some_and(|e| (0.0..60.0).contains(&e)),
        "{st}"
    );
    assert!(st["rows_read"].is_u64(), "{st}");
    assert!(st["bytes_read"].is_u64(), "{st}");
    for row in &data {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), v["meta"].as_array().unwrap().len(), "{row}");
    }
    data
}

/// Numbers as f64, so that `100` and `100.0` compare equal (ClickHouse
/// prints a whole Float64 without a fraction).
fn norm(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), norm(v))).collect()),
        other => other.clone(),
    }
}

/// ClickHouse's round(x, 2) on Float64.
fn round2(x: f64) -> f64 {
    (x * 100.0).round_ties_even() / 100.0
}

#[derive(Clone, Debug)]
struct Row {
    ts: i64,
    service: &'static str,
    severity: &'static str,
    id: String,
}

#[derive(Default, Clone, Debug)]
struct Filter {
    start: Option<i64>,
    end: Option<i64>,
    service: Option<&'static str>,
    severity: Option<&'static str>,
}

impl Filter {
    fn matches(&self, r: &Row) -> bool {
        self.start.is_none_or(|s| r.ts >= s)
            && self.end.is_none_or(|e| r.ts < e)
            && self.service.is_none_or(|s| r.service == s)
            && self.severity.is_none_or(|s| r.severity == s.to_uppercase())
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(s) = self.start {
            p.push(("start_time", fmt_ts(s)));
        }
        if let Some(e) = self.end {
            p.push(("end_time", fmt_ts(e)));
        }
        if let Some(s) = self.service {
            p.push(("service", s.to_string()));
        }
        if let Some(s) = self.severity {
            p.push(("severity", s.to_string()));
        }
        p
    }
}

fn query(d: &Daemon, pipe: &str, f: &Filter, limit: Option<usize>) -> Value {
    let mut p = f.params();
    if let Some(l) = limit {
        p.push(("limit", l.to_string()));
    }
    let refs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    d.pipe_json(pipe, &refs)
}

/// 12:00:00 on 2023-06-01, an hour boundary.
const BASE: i64 = SEED_TS - 2 * 3600 - 1800;

/// Ingests a random but seeded data set over three hours, with many equal
/// timestamps, in several requests; returns the rows in ingestion order.
fn load_model_data(d: &Daemon) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(0x1095e);
    let services = ["api", "auth", "db", "web"];
    let severities = ["ERROR", "WARN", "INFO"];
    let mut all = Vec::new();
    for batch in 0..7 {
        let n = rng.gen_range(20..70);
        let mut rows = Vec::new();
        let mut body = Vec::new();
        for _ in 0..n {
            let r = Row {
                ts: BASE + rng.gen_range(0..400) * 27,
                service: services[rng.gen_range(0..services.len())],
                severity: severities[rng.gen_range(0..severities.len())],
                id: format!("id{}", all.len() + rows.len()),
            };
            // Severity sent in mixed case: stored UPPERCASE.
            let sent_sev = if rng.gen_bool(0.3) {
                r.severity.to_lowercase()
            } else {
                r.severity.to_string()
            };
            body.push(log_row(&fmt_ts(r.ts), r.service, &sent_sev, &r.id));
            rows.push(r);
        }
        let wait = batch % 2 == 0;
        assert_eq!(d.ingest("system_logs", &body, wait), (n as u64, 0));
        all.extend(rows);
    }
    all
}

fn model_recent(rows: &[Row], f: &Filter, limit: usize) -> (Vec<String>, u64) {
    let mut m: Vec<(usize, &Row)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| f.matches(r))
        .collect();
    m.sort_by(|(sa, a), (sb, b)| (b.ts, sb).cmp(&(a.ts, sa)));
    let total = m.len() as u64;
    (
        m.into_iter()
            .take(limit)
            .map(|(_, r)| r.id.clone())
            .collect(),
        total,
    )
}

fn model_distribution(rows: &[Row], f: &Filter, limit: usize) -> (Vec<Value>, u64) {
    let mut groups: HashMap<(&str, &str), (u64, i64, i64)> = HashMap::new();
    for r in rows.iter().filter(|r| f.matches(r)) {
        let g = groups
            .entry((r.service, r.severity))
            .or_insert((0, i64::MAX, i64::MIN));
        g.0 += 1;
        g.1 = g.1.min(r.ts);
        g.2 = g.2.max(r.ts);
    }
    let total: u64 = groups.values().map(|g| g.0).sum();
    let mut out: Vec<_> = groups.into_iter().collect();
    out.sort_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then(a.0 .0.cmp(b.0 .0))
            .then(a.0 .1.cmp(b.0 .1))
    });
    let n = out.len() as u64;
    let data = out
        .into_iter()
        .take(limit)
        .map(|((s, v), (c, first, last))| {
            json!({
                "service": s,
                "severity": v,
                "error_count": c,
                "percentage": round2(100.0 * c as f64 / total as f64),
                "first_seen": fmt_ts(first),
                "last_seen": fmt_ts(last),
            })
        })
        .collect();
    (data, n)
}

fn filters() -> Vec<Filter> {
    vec![
        Filter::default(),
        Filter {
            start: Some(BASE + 1234),
            ..Default::default()
        },
        Filter {
            end: Some(BASE + 7777),
            ..Default::default()
        },
        Filter {
            start: Some(BASE + 61),
            end: Some(BASE + 2 * 3600 + 59),
            ..Default::default()
        },
        Filter {
            start: Some(BASE + 3600),
            end: Some(BASE + 7200),
            ..Default::default()
        },
        Filter {
            start: Some(BASE + 3600 + 27),
            end: Some(BASE + 3600 + 28),
            ..Default::default()
        },
        Filter {
            severity: Some("error"),
            ..Default::default()
        },
        Filter {
            service: Some("auth"),
            ..Default::default()
        },
        Filter {
            service: Some("db"),
            severity: Some("WARN"),
            start: Some(BASE + 500),
            ..Default::default()
        },
        Filter {
            service: Some("nope"),
            ..Default::default()
        },
        Filter {
            severity: Some("Info"),
            end: Some(BASE + 5400),
            ..Default::default()
        },
        Filter {
            start: Some(BASE + 20_000),
            ..Default::default()
        },
        Filter {
            start: Some(BASE + 5000),
            end: Some(BASE + 4000),
            ..Default::default()
        },
    ]
}

#[test]
fn recent_logs_and_error_distribution_match_the_reference_model() {
    let mut d = Daemon::start();
    let rows = load_model_data(&d);
    check_model(&d, &rows);
    // The same answers after a restart (state rebuilt from disk).
    d.restart();
    check_model(&d, &rows);
}

#[test]
fn the_model_holds_with_many_small_segment_files() {
    if common::clickhouse::embedded_only("segment files") {
        return;
    }
    let mut d = Daemon::options()
        .arg("--segment-bytes-max")
        .arg("4096")
        .start();
    let rows = load_model_data(&d);
    check_model(&d, &rows);
    let segments = std::fs::read_dir(d.data_dir.join("system_logs"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert!(
        segments > 3,
        "expected many segment files, found {segments}"
    );
    d.restart();
    check_model(&d, &rows);
}

fn check_model(d: &Daemon, rows: &[Row]) {
    for f in filters() {
        for limit in [None, Some(1), Some(7), Some(10_000)] {
            let l = limit.unwrap_or(100);
            let v = query(d, "recent_logs", &f, limit);
            let data = check_envelope(&v);
            let (want, total) = model_recent(rows, &f, l);
            let got: Vec<String> = data
                .iter()
                .map(|r| r["message"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(got, want, "recent_logs {f:?} limit {limit:?}");
            assert_eq!(
                v["rows_before_limit_at_least"].as_u64(),
                Some(total),
                "recent_logs {f:?} limit {limit:?}"
            );

            let v = query(d, "error_distribution", &f, limit);
            let data = check_envelope(&v);
            let (want, groups) = model_distribution(rows, &f, l);
            assert_eq!(
                norm(&json!(data)),
                norm(&json!(want)),
                "error_distribution {f:?} limit {limit:?}"
            );
            assert_eq!(
                v["rows_before_limit_at_least"].as_u64(),
                Some(groups),
                "error_distribution {f:?}"
            );
        }
    }
}

#[test]
fn meta_names_and_types_are_exact() {
    let d = Daemon::start();
    d.ingest(
        "system_logs",
        &[log_row("2023-06-01 14:30:00", "m", "ERROR", "x")],
        true,
    );
    let v = d.pipe_json("recent_logs", &[]);
    let want: Vec<(String, String)> = RECENT_META
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(meta(&v), want);
    check_envelope(&v);

    let v = d.pipe_json("error_distribution", &[]);
    assert_eq!(
        meta_names(&v),
        [
            "service",
            "severity",
            "error_count",
            "percentage",
            "first_seen",
            "last_seen"
        ]
    );
    assert_eq!(meta_type(&v, "error_count"), "UInt64");
    assert_eq!(meta_type(&v, "percentage"), "Float64");
    assert_eq!(meta_type(&v, "first_seen"), "DateTime");
    assert_eq!(meta_type(&v, "last_seen"), "DateTime");
    assert_eq!(
        meta_type(&v, "service"),
        meta_type(&d.pipe_json("recent_logs", &[]), "service")
    );
    check_envelope(&v);
    assert_eq!(
        norm(&v["data"]),
        norm(
            &json!([{"service": "m", "severity": "ERROR", "error_count": 1, "percentage": 100.0,
                "first_seen": "2023-06-01 14:30:00", "last_seen": "2023-06-01 14:30:00"}])
        )
    );
    // 64-bit integers are unquoted JSON numbers.
    assert!(v["data"][0]["error_count"].is_u64());

    let v = d.pipe_json("log_anomalies", &[]);
    assert_eq!(
        meta_names(&v),
        [
            "minute",
            "service",
            "severity",
            "log_count",
            "threshold_per_minute",
            "excess_ratio"
        ]
    );
    assert_eq!(meta_type(&v, "minute"), "DateTime");
    assert_eq!(meta_type(&v, "log_count"), "UInt64");
    assert_eq!(meta_type(&v, "threshold_per_minute"), "Float64");
    assert_eq!(meta_type(&v, "excess_ratio"), "Float64");
    check_envelope(&v);
    // Empty results still carry meta and zero counts.
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["rows"], 0);
    assert_eq!(v["rows_before_limit_at_least"], 0);
}

#[test]
fn equal_timestamps_come_newest_ingested_first() {
    let d = Daemon::start();
    let t = "2023-06-01 14:30:00";
    d.ingest(
        "system_logs",
        &[
            log_row(t, "tie", "INFO", "r1"),
            log_row(t, "tie", "INFO", "r2"),
        ],
        true,
    );
    d.ingest("system_logs", &[log_row(t, "tie", "INFO", "r3")], false);
    d.ingest(
        "system_logs",
        &[
            log_row(t, "tie", "INFO", "r4"),
            log_row("2023-06-01 14:29:59", "tie", "INFO", "older"),
            log_row(t, "tie", "INFO", "r5"),
        ],
        true,
    );
    let v = d.pipe_json("recent_logs", &[("service", "tie")]);
    assert_eq!(messages(&v), ["r5", "r4", "r3", "r2", "r1", "older"]);
    let v = d.pipe_json("recent_logs", &[("service", "tie"), ("limit", "2")]);
    assert_eq!(messages(&v), ["r5", "r4"]);
    assert_eq!(v["rows_before_limit_at_least"], 6);
    let v = d.pipe_json("recent_logs", &[("service", "tie"), ("limit", "5")]);
    assert_eq!(messages(&v), ["r5", "r4", "r3", "r2", "r1"]);
}

#[test]
fn ingestion_order_still_breaks_ties_after_truncate_and_restart() {
    let mut d = Daemon::start();
    let t = "2023-06-01 14:30:00";
    d.ingest(
        "system_logs",
        &[
            log_row(t, "tr", "INFO", "old1"),
            log_row(t, "tr", "INFO", "old2"),
        ],
        true,
    );
    assert_eq!(
        d.post("/v0/datasources/system_logs/truncate", b"").status,
        200
    );
    d.ingest("system_logs", &[log_row(t, "tr", "INFO", "a")], true);
    d.restart();
    d.ingest("system_logs", &[log_row(t, "tr", "INFO", "b")], true);
    d.crash_restart();
    d.ingest("system_logs", &[log_row(t, "tr", "INFO", "c")], true);
    let v = d.pipe_json("recent_logs", &[("service", "tr")]);
    assert_eq!(messages(&v), ["c", "b", "a"]);
}

#[test]
fn rows_are_ordered_by_timestamp_whatever_the_ingestion_order() {
    let d = Daemon::start();
    let at = |h: i64, s: i64| fmt_ts(BASE + h * 3600 + s);
    d.ingest(
        "system_logs",
        &[
            log_row(&at(2, 5), "o", "INFO", "h2a"),
            log_row(&at(2, 1), "o", "INFO", "h2b"),
        ],
        true,
    );
    d.ingest(
        "system_logs",
        &[
            log_row(&at(0, 9), "o", "INFO", "h0"),
            log_row(&at(30, 0), "o", "INFO", "h30"),
        ],
        true,
    );
    d.ingest(
        "system_logs",
        &[
            log_row(&at(1, 3599), "o", "INFO", "h1"),
            log_row(&at(2, 1), "o", "INFO", "h2c"),
        ],
        true,
    );
    let v = d.pipe_json("recent_logs", &[("service", "o")]);
    assert_eq!(messages(&v), ["h30", "h2a", "h2c", "h2b", "h1", "h0"]);
    let v = d.pipe_json("recent_logs", &[("service", "o"), ("limit", "3")]);
    assert_eq!(messages(&v), ["h30", "h2a", "h2c"]);
    let v = d.pipe_json("recent_logs", &[("service", "o"), ("end_time", &at(2, 5))]);
    assert_eq!(messages(&v), ["h2c", "h2b", "h1", "h0"]);
}

#[test]
fn limit_defaults_to_100_and_rows_before_limit_is_exact() {
    let d = Daemon::start();
    let rows: Vec<Value> = (0..150)
        .map(|i| log_row(&fmt_ts(SEED_TS + i * 37), "lim", "ERROR", &format!("{i}")))
        .collect();
    d.ingest("system_logs", &rows, true);
    let v = d.pipe_json("recent_logs", &[]);
    assert_eq!(v["rows"], 100);
    assert_eq!(v["rows_before_limit_at_least"], 150);
    assert_eq!(v["data"][0]["message"], "149");
    let v = d.pipe_json("recent_logs", &[("limit", "10000")]);
    assert_eq!(v["rows"], 150);
    assert_eq!(v["rows_before_limit_at_least"], 150);
    let v = d.pipe_json(
        "recent_logs",
        &[("limit", "1"), ("start_time", &fmt_ts(SEED_TS + 37 * 100))],
    );
    assert_eq!(v["rows"], 1);
    assert_eq!(v["rows_before_limit_at_least"], 50);
}

#[test]
fn percentages_round_like_clickhouse() {
    let d = Daemon::start();
    let t = "2023-06-01 14:30:00";
    let mut rows = vec![log_row(t, "a", "ERROR", "x")];
    rows.extend((0..2).map(|_| log_row(t, "b", "ERROR", "x")));
    d.ingest("system_logs", &rows, true);
    let v = d.pipe_json("error_distribution", &[]);
    let pct: Vec<f64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["percentage"].as_f64().unwrap())
        .collect();
    assert_eq!(pct, [66.67, 33.33]);
    assert_eq!(v["data"][0]["service"], "b");

    // 1 of 800 is exactly 0.125 %: round half to even gives 0.12, and
    // 799 of 800 is 99.875 %, giving 99.88.
    let d = Daemon::start();
    let mut rows = vec![log_row(t, "one", "ERROR", "x")];
    rows.extend((0..799).map(|_| log_row(t, "many", "ERROR", "x")));
    d.ingest("system_logs", &rows, true);
    let v = d.pipe_json("error_distribution", &[]);
    assert_eq!(v["data"][0]["service"], "many");
    assert_eq!(v["data"][0]["percentage"].as_f64(), Some(99.88));
    assert_eq!(v["data"][1]["percentage"].as_f64(), Some(0.12));
    // The percentage is of all groups, also those cut by the limit.
    let v = d.pipe_json("error_distribution", &[("limit", "1")]);
    assert_eq!(v["data"][0]["percentage"].as_f64(), Some(99.88));
    assert_eq!(v["rows_before_limit_at_least"], 2);
}

#[test]
fn error_distribution_breaks_count_ties_by_service_then_severity() {
    let d = Daemon::start();
    let mut rows = Vec::new();
    let mut add = |svc: &str, sev: &str, n: usize, first: i64| {
        for i in 0..n {
            rows.push(log_row(
                &fmt_ts(SEED_TS + first + i as i64 * 10),
                svc,
                sev,
                "x",
            ));
        }
    };
    add("zeta", "ERROR", 3, 0);
    add("alpha", "WARN", 3, 5);
    add("alpha", "ERROR", 3, 100);
    add("beta", "INFO", 5, 7);
    add("alpha", "INFO", 1, 3);
    d.ingest("system_logs", &rows, true);
    let v = d.pipe_json("error_distribution", &[]);
    let got: Vec<(String, String, u64, f64, String, String)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().into(),
                r["severity"].as_str().unwrap().into(),
                r["error_count"].as_u64().unwrap(),
                r["percentage"].as_f64().unwrap(),
                r["first_seen"].as_str().unwrap().into(),
                r["last_seen"].as_str().unwrap().into(),
            )
        })
        .collect();
    let ts = |o: i64| fmt_ts(SEED_TS + o);
    assert_eq!(
        got,
        vec![
            ("beta".into(), "INFO".into(), 5, 33.33, ts(7), ts(47)),
            ("alpha".into(), "ERROR".into(), 3, 20.0, ts(100), ts(120)),
            ("alpha".into(), "WARN".into(), 3, 20.0, ts(5), ts(25)),
            ("zeta".into(), "ERROR".into(), 3, 20.0, ts(0), ts(20)),
            ("alpha".into(), "INFO".into(), 1, 6.67, ts(3), ts(3)),
        ]
    );
    assert_eq!(v["rows_before_limit_at_least"], 5);
    let v = d.pipe_json(
        "error_distribution",
        &[("limit", "2"), ("service", "alpha")],
    );
    assert_eq!(v["rows"], 2);
    assert_eq!(v["rows_before_limit_at_least"], 3);
    assert_eq!(v["data"][0]["percentage"].as_f64(), Some(42.86));
}

/// 2023-06-01 HH:MM:SS as Unix seconds.
fn hms(h: i64, m: i64, s: i64) -> i64 {
    SEED_TS - 14 * 3600 - 30 * 60 + h * 3600 + m * 60 + s
}

fn anomaly_fixture(d: &Daemon) {
    let mut rows = Vec::new();
    let mut add = |svc: &str, sev: &str, n: i64, h: i64, m: i64, sec: &dyn Fn(i64) -> i64| {
        for i in 0..n {
            rows.push(log_row(&fmt_ts(hms(h, m, sec(i))), svc, sev, "x"));
        }
    };
    add("auth", "ERROR", 12, 14, 50, &|i| i * 5); // seconds 0..55
    add("auth", "ERROR", 10, 14, 51, &|i| i);
    add("auth", "ERROR", 11, 14, 52, &|i| i);
    add("auth", "WARN", 30, 14, 50, &|i| i);
    add("api", "ERROR", 12, 14, 50, &|_| 1);
    add("api", "ERROR", 4, 14, 55, &|_| 0);
    add("tie", "ERROR", 9, 14, 50, &|_| 59);
    add("db", "ERROR", 50, 13, 59, &|i| i);
    add("nothr", "ERROR", 99, 14, 40, &|_| 0);
    add("late", "ERROR", 3, 14, 45, &|_| 0);
    d.ingest("system_logs", &rows, true);
    let th = |svc: &str, sev: &str, t: f64, active: Value, updated: &str| -> Value {
        let mut v =
            json!({"service": svc, "severity": sev, "threshold_per_minute": t, "active": active});
        if !updated.is_empty() {
            v["updated_at"] = json!(updated);
        }
        v
    };
    let thresholds = vec![
        // auth/ERROR: the later-ingested row has an older updated_at: 10.5 stays.
        th("auth", "ERROR", 10.5, json!(1), "2023-06-01 12:00:00"),
        th("auth", "ERROR", 100.0, json!(1), "2023-06-01 11:00:00"),
        // auth/WARN: equal updated_at, the last ingested (inactive) wins; an
        // older active row does not revive it.
        th("auth", "WARN", 5.0, json!(1), "2023-06-01 12:00:00"),
        th("auth", "WARN", 5.0, json!(0), "2023-06-01 12:00:00"),
        th("auth", "WARN", 1.0, json!("true"), "2023-06-01 11:59:59"),
        // api/ERROR, severity stored upper-case.
        th("api", "error", 4.0, json!(1), "2023-06-01 12:00:00"),
        // db/ERROR: the greater updated_at wins though ingested first.
        th("db", "ERROR", 49.5, json!(1), "2023-06-02 00:00:00"),
        th("tie", "ERROR", 8.0, json!(true), "2023-06-01 12:00:00"),
        // late/ERROR: a row without updated_at gets the ingestion time (now),
        // later than the explicit one before it.
        th("late", "ERROR", 1.0, json!(0), "2023-06-01 12:00:00"),
    ];
    assert_eq!(
        d.ingest("log_anomaly_thresholds", &thresholds, true),
        (9, 0)
    );
    let more = vec![
        th("db", "ERROR", 3.0, json!(1), "2023-06-01 10:00:00"),
        th("late", "ERROR", 2.0, json!(1), ""),
        // A key with no logs.
        th("ghost", "ERROR", 1.0, json!(1), "2023-06-01 10:00:00"),
    ];
    assert_eq!(d.ingest("log_anomaly_thresholds", &more, false), (3, 0));
}

fn anomaly_rows(v: &Value) -> Vec<(String, String, String, u64, f64, f64)> {
    check_envelope(v)
        .iter()
        .map(|r| {
            (
                r["minute"].as_str().unwrap().to_string(),
                r["service"].as_str().unwrap().to_string(),
                r["severity"].as_str().unwrap().to_string(),
                r["log_count"].as_u64().unwrap(),
                r["threshold_per_minute"].as_f64().unwrap(),
                r["excess_ratio"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn a(
    minute: (i64, i64),
    svc: &str,
    sev: &str,
    n: u64,
    t: f64,
    ratio: f64,
) -> (String, String, String, u64, f64, f64) {
    (
        fmt_ts(hms(minute.0, minute.1, 0)),
        svc.into(),
        sev.into(),
        n,
        t,
        ratio,
    )
}

#[test]
fn log_anomalies_follow_thresholds_in_force() {
    let d = Daemon::start();
    anomaly_fixture(&d);
    let end = fmt_ts(hms(15, 0, 0));
    let v = d.pipe_json("log_anomalies", &[("end_time", &end)]);
    let expected = vec![
        a((14, 52), "auth", "ERROR", 11, 10.5, 1.05),
        a((14, 50), "api", "ERROR", 12, 4.0, 3.0),
        a((14, 50), "auth", "ERROR", 12, 10.5, 1.14),
        a((14, 50), "tie", "ERROR", 9, 8.0, 1.12),
        a((14, 45), "late", "ERROR", 3, 2.0, 1.5),
    ];
    assert_eq!(anomaly_rows(&v), expected);
    assert_eq!(v["rows_before_limit_at_least"], 5);
    assert!(v["data"][0]["log_count"].is_u64());

    // The default window is 60 minutes: [end - 60 min, end).
    let v = d.pipe_json(
        "log_anomalies",
        &[("end_time", &end), ("time_window_minutes", "60")],
    );
    assert_eq!(anomaly_rows(&v), expected);
    let v = d.pipe_json(
        "log_anomalies",
        &[("end_time", &end), ("time_window_minutes", "61")],
    );
    let mut with_db = expected.clone();
    with_db.push(a((13, 59), "db", "ERROR", 50, 49.5, 1.01));
    assert_eq!(anomaly_rows(&v), with_db);

    // limit, and filters (severity upper-cased).
    let v = d.pipe_json("log_anomalies", &[("end_time", &end), ("limit", "2")]);
    assert_eq!(anomaly_rows(&v), expected[..2].to_vec());
    assert_eq!(v["rows_before_limit_at_least"], 5);
    let v = d.pipe_json("log_anomalies", &[("end_time", &end), ("service", "auth")]);
    assert_eq!(
        anomaly_rows(&v),
        vec![expected[0].clone(), expected[2].clone()]
    );
    let v = d.pipe_json(
        "log_anomalies",
        &[
            ("end_time", &end),
            ("severity", "error"),
            ("service", "api"),
        ],
    );
    assert_eq!(anomaly_rows(&v), vec![expected[1].clone()]);
    let v = d.pipe_json("log_anomalies", &[("end_time", &end), ("severity", "WARN")]);
    assert_eq!(anomaly_rows(&v), vec![]);

    // end_time is exclusive: [13:52, 14:52) drops the 14:52 minute and
    // takes in 13:59.
    let v = d.pipe_json("log_anomalies", &[("end_time", &fmt_ts(hms(14, 52, 0)))]);
    assert_eq!(anomaly_rows(&v), with_db[1..].to_vec());
    // A one-minute window.
    let v = d.pipe_json(
        "log_anomalies",
        &[
            ("end_time", &fmt_ts(hms(14, 51, 0))),
            ("time_window_minutes", "1"),
        ],
    );
    assert_eq!(anomaly_rows(&v), expected[1..4].to_vec());
    // A window edge inside a minute counts only the rows inside the window:
    // [14:49:30, 14:50:30) holds 6 auth/ERROR rows (not > 10.5), all 12
    // api/ERROR rows and none of tie/ERROR's.
    let v = d.pipe_json(
        "log_anomalies",
        &[
            ("end_time", &fmt_ts(hms(14, 50, 30))),
            ("time_window_minutes", "1"),
        ],
    );
    assert_eq!(
        anomaly_rows(&v),
        vec![a((14, 50), "api", "ERROR", 12, 4.0, 3.0)]
    );
    // Maximum window.
    let v = d.pipe_json(
        "log_anomalies",
        &[("end_time", &end), ("time_window_minutes", "10080")],
    );
    assert_eq!(anomaly_rows(&v), with_db);
}

#[test]
fn thresholds_changes_apply_to_later_queries_and_survive_restart() {
    let mut d = Daemon::start();
    anomaly_fixture(&d);
    let end = fmt_ts(hms(15, 0, 0));
    // Deactivate auth/ERROR with a newer row; reactivate auth/WARN at 2.
    d.ingest(
        "log_anomaly_thresholds",
        &[
            json!({"service": "auth", "severity": "ERROR", "threshold_per_minute": 10.5, "active": 0, "updated_at": "2023-06-01 13:00:00"}),
            json!({"service": "auth", "severity": "WARN", "threshold_per_minute": 2, "active": 1, "updated_at": "2023-06-01 13:00:00"}),
        ],
        true,
    );
    let want = vec![
        a((14, 50), "auth", "WARN", 30, 2.0, 15.0),
        a((14, 50), "api", "ERROR", 12, 4.0, 3.0),
        a((14, 50), "tie", "ERROR", 9, 8.0, 1.12),
        a((14, 45), "late", "ERROR", 3, 2.0, 1.5),
    ];
    let v = d.pipe_json("log_anomalies", &[("end_time", &end)]);
    assert_eq!(anomaly_rows(&v), want);
    d.restart();
    let v = d.pipe_json("log_anomalies", &[("end_time", &end)]);
    assert_eq!(anomaly_rows(&v), want);
}

#[test]
fn log_anomalies_end_time_defaults_to_now() {
    let d = Daemon::start();
    let minute = (now_secs() - 120).div_euclid(60) * 60;
    let rows: Vec<Value> = (0..6)
        .map(|i| log_row(&fmt_ts(minute + 10 + i), "live", "ERROR", "x"))
        .collect();
    d.ingest("system_logs", &rows, true);
    d.ingest(
        "log_anomaly_thresholds",
        &[json!({"service": "live", "severity": "ERROR", "threshold_per_minute": 5})],
        true,
    );
    let v = d.pipe_json("log_anomalies", &[]);
    assert_eq!(
        anomaly_rows(&v),
        vec![(fmt_ts(minute), "live".into(), "ERROR".into(), 6, 5.0, 1.2)]
    );
    let v = d.pipe_json("log_anomalies", &[("time_window_minutes", "1")]);
    assert_eq!(v["rows"], 0);
}

/// Splits CSV text into records of fields (RFC 4180 quoting).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => rec.push(std::mem::take(&mut field)),
                '\n' => {
                    rec.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut rec));
                }
                '\r' => {}
                _ => field.push(c),
            }
        }
    }
    if !field.is_empty() || !rec.is_empty() {
        rec.push(field);
        records.push(rec);
    }
    records
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn csv_and_ndjson_formats_carry_the_same_rows() {
    let d = Daemon::start();
    anomaly_fixture(&d);
    let tricky = json!({"timestamp": "2023-06-01 14:59:59", "service": "auth", "severity": "ERROR",
        "message": "comma, \"quote\"\nnewline", "metadata": {"k": "v,w"}});
    d.ingest("system_logs", &[tricky], true);
    let end = fmt_ts(hms(15, 0, 0));
    for pipe in ["recent_logs", "error_distribution", "log_anomalies"] {
        let params = [("end_time", end.as_str()), ("limit", "20")];
        let json_v = d.pipe_json(pipe, &params);
        let data = json_v["data"].as_array().unwrap();
        assert!(!data.is_empty(), "{pipe}");
        let names = meta_names(&json_v);

        let r = d.pipe(&format!("{pipe}.csv"), &params);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.content_type().starts_with("text/csv"),
            "{}",
            r.content_type()
        );
        let recs = parse_csv(&r.text());
        assert_eq!(recs[0], names, "{pipe} csv header");
        assert_eq!(recs.len(), data.len() + 1, "{pipe} csv rows");
        for (rec, row) in recs[1..].iter().zip(data) {
            let want: Vec<String> = names.iter().map(|n| cell_text(&row[n])).collect();
            assert_eq!(rec, &want, "{pipe} csv row");
        }

        let r = d.pipe(&format!("{pipe}.ndjson"), &params);
        assert_eq!(r.status, 200, "{}", r.text());
        let lines: Vec<Value> = r
            .text()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{pipe} ndjson line {l:?}: {e}"))
            })
            .collect();
        assert_eq!(&lines, data, "{pipe} ndjson");
    }
    // The row with quotes and a newline round-trips through CSV.
    let r = d.pipe("recent_logs.csv", &[("limit", "1"), ("end_time", &end)]);
    let recs = parse_csv(&r.text());
    assert_eq!(recs[1][4], "comma, \"quote\"\nnewline");
    assert_eq!(recs[1][7], r#"{"k":"v,w"}"#);
}

#[test]
fn post_with_form_or_json_body_equals_get() {
    let d = Daemon::start();
    anomaly_fixture(&d);
    let end = fmt_ts(hms(15, 0, 0));
    let params = [
        ("end_time", end.as_str()),
        ("service", "auth"),
        ("limit", "3"),
    ];
    for pipe in ["recent_logs", "error_distribution", "log_anomalies"] {
        let mut want = d.pipe_json(pipe, &params);
        want["statistics"] = Value::Null;
        let form = qs(&params);
        let json_body = json!({"end_time": end, "service": "auth", "limit": 3}).to_string();
        type Headers<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(Headers, &[u8])> = vec![
            (
                vec![("Content-Type", "application/x-www-form-urlencoded")],
                form.as_bytes(),
            ),
            (vec![], form.as_bytes()),
            (
                vec![("Content-Type", "application/json")],
                json_body.as_bytes(),
            ),
            (vec![], json_body.as_bytes()),
        ];
        for (headers, body) in cases {
            let r = d.request(
                "POST",
                &format!("/v0/pipes/{pipe}.json"),
                Some(&d.token),
                &headers,
                Some(body),
            );
            assert_eq!(r.status, 200, "{pipe} {headers:?}: {}", r.text());
            let mut got = r.json();
            got["statistics"] = Value::Null;
            assert_eq!(
                got,
                want,
                "{pipe} POST {headers:?} {}",
                String::from_utf8_lossy(body)
            );
        }
        // Token in the query string, parameters in the body.
        let r = d.request(
            "POST",
            &format!("/v0/pipes/{pipe}.json?token={}", d.token),
            None,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(form.as_bytes()),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A bad parameter in a POST body is a 400 naming it.
    let r = d.request(
        "POST",
        "/v0/pipes/recent_logs.json",
        Some(&d.token),
        &[("Content-Type", "application/json")],
        Some(br#"{"limit": 0}"#),
    );
    assert!(r.assert_error(400).contains("limit"));
    let r = d.post("/v0/pipes/recent_logs.json", b"start_time=yesterday");
    assert!(r.assert_error(400).contains("start_time"));
}

#[test]
fn unknown_parameters_are_ignored() {
    let d = Daemon::start();
    d.ingest(
        "system_logs",
        &[log_row("2023-06-01 14:30:00", "u", "INFO", "x")],
        true,
    );
    let v = d.pipe_json(
        "recent_logs",
        &[
            ("q", "SELECT 1"),
            ("format", "CSV"),
            ("from", "ui"),
            ("cli_version", "1.0"),
            ("pipeline", "x"),
        ],
    );
    assert_eq!(v["rows"], 1);
}

#[test]
fn bad_parameters_are_400_naming_the_parameter() {
    let d = Daemon::start();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("recent_logs", "limit", "0"),
        ("recent_logs", "limit", "10001"),
        ("recent_logs", "limit", "-5"),
        ("recent_logs", "limit", "abc"),
        ("recent_logs", "limit", "1.5"),
        ("recent_logs", "limit", "99999999999999999999999"),
        ("recent_logs", "start_time", "nope"),
        ("recent_logs", "end_time", "2023-06-01 14:30:61"),
        ("error_distribution", "limit", "0"),
        ("error_distribution", "start_time", "2023-6-1"),
        ("log_anomalies", "limit", "10001"),
        ("log_anomalies", "time_window_minutes", "0"),
        ("log_anomalies", "time_window_minutes", "10081"),
        ("log_anomalies", "time_window_minutes", "-1"),
        ("log_anomalies", "time_window_minutes", "sixty"),
        ("log_anomalies", "end_time", "later"),
    ];
    for (pipe, param, value) in cases {
        for ext in ["json", "csv", "ndjson"] {
            let r = d.pipe(&format!("{pipe}.{ext}"), &[(param, value)]);
            let msg = r.assert_error(400);
            assert!(msg.contains(param), "{pipe}.{ext} {param}={value:?}: {msg}");
        }
    }
    // The extremes of the ranges are fine.
    for (pipe, param, value) in [
        ("recent_logs", "limit", "1"),
        ("recent_logs", "limit", "10000"),
        ("log_anomalies", "time_window_minutes", "1"),
        ("log_anomalies", "time_window_minutes", "10080"),
    ] {
        d.pipe_json(pipe, &[(param, value)]);
    }
}

#[test]
fn unknown_pipe_is_404() {
    let d = Daemon::start();
    for path in [
        "/v0/pipes/nope.json",
        "/v0/pipes/nope.csv",
        "/v0/pipes/nope",
        "/v0/pipes/recent_logs_x.json",
        "/v0/pipes/system_logs.json",
    ] {
        let msg = d.get(path).assert_error(404);
        assert!(!msg.is_empty());
    }
    d.post("/v0/pipes/nope.json", b"limit=1").assert_error(404);
}
