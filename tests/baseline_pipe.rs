//! Proves the `log_baseline_anomalies` pipe over HTTP: meta, data and order
//! in JSON, the same rows in CSV and NDJSON, a z-score of a zero-stddev
//! baseline as null, parameters z / min_count / baseline_hours / filters,
//! 400 naming a bad parameter, and its own PIPES:READ scope.

mod common;

use common::*;
use serde_json::{json, Value};

/// 2023-06-01 14:00:00 UTC.
const H: i64 = 1_685_628_000;

fn seed(d: &Daemon) {
    let mut rows: Vec<Value> = Vec::new();
    for m in 0..60 {
        // api/ERROR: 2 rows every other minute of the baseline hour (mean 1, stddev 1).
        if m % 2 == 0 {
            for i in 0..2 {
                rows.push(log_row(
                    &fmt_ts(H - 3600 + m * 60 + 7),
                    "api",
                    "error",
                    &format!("b{m}.{i}"),
                ));
            }
        }
        // db/WARN: 1 row every minute (mean 1, stddev 0).
        rows.push(log_row(
            &fmt_ts(H - 3600 + m * 60 + 30),
            "db",
            "warn",
            "steady",
        ));
    }
    let burst = |n: usize, ts: i64, svc: &str, sev: &str| -> Vec<Value> {
        (0..n)
            .map(|i| log_row(&fmt_ts(ts), svc, sev, &format!("w{i}")))
            .collect()
    };
    rows.extend(burst(40, H + 120 + 5, "api", "error"));
    rows.extend(burst(3, H + 180 + 5, "api", "error"));
    rows.extend(burst(12, H + 60 + 59, "db", "warn"));
    rows.extend(burst(15, H + 240, "new", "error"));
    d.ingest("system_logs", &rows, true);
}

const WINDOW: [(&str, &str); 3] = [
    ("end_time", "2023-06-01 14:05:00"),
    ("time_window_minutes", "5"),
    ("baseline_hours", "1"),
];

#[test]
fn json_csv_and_ndjson_agree_with_hand_computed_baselines() {
    let d = Daemon::start();
    seed(&d);
    let v = d.pipe_json("log_baseline_anomalies", &WINDOW);
    let meta: Vec<(String, String)> = v["meta"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want_meta = [
        ("minute", "DateTime"),
        ("service", "LowCardinality(String)"),
        ("severity", "LowCardinality(String)"),
        ("log_count", "UInt64"),
        ("baseline_mean", "Float64"),
        ("baseline_stddev", "Float64"),
        ("z_score", "Float64"),
    ];
    assert_eq!(
        meta,
        want_meta
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .to_vec()
    );
    let want = json!([
        {"minute": "2023-06-01 14:04:00", "service": "new", "severity": "ERROR", "log_count": 15,
         "baseline_mean": 0, "baseline_stddev": 0, "z_score": null},
        {"minute": "2023-06-01 14:02:00", "service": "api", "severity": "ERROR", "log_count": 40,
         "baseline_mean": 1, "baseline_stddev": 1, "z_score": 39},
        {"minute": "2023-06-01 14:01:00", "service": "db", "severity": "WARN", "log_count": 12,
         "baseline_mean": 1, "baseline_stddev": 0, "z_score": null},
    ]);
    assert_eq!(v["data"], want, "{v}");
    assert_eq!(v["rows"], 3);
    assert_eq!(v["rows_before_limit_at_least"], 3);

    let nd = d.pipe("log_baseline_anomalies.ndjson", &WINDOW);
    assert_eq!(nd.status, 200);
    let lines: Vec<Value> = nd
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(Value::Array(lines), want);

    let csv = d.pipe("log_baseline_anomalies.csv", &WINDOW);
    assert_eq!(csv.status, 200);
    assert!(csv.content_type().starts_with("text/csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "\"minute\",\"service\",\"severity\",\"log_count\",\"baseline_mean\",\"baseline_stddev\",\"z_score\"",
            "\"2023-06-01 14:04:00\",\"new\",\"ERROR\",15,0,0,null",
            "\"2023-06-01 14:02:00\",\"api\",\"ERROR\",40,1,1,39",
            "\"2023-06-01 14:01:00\",\"db\",\"WARN\",12,1,0,null",
        ]
    );
}

#[test]
fn parameters_filters_errors_and_scope() {
    let d = Daemon::start();
    seed(&d);
    let rows = |extra: &[(&str, &str)]| -> Value {
        let mut p = WINDOW.to_vec();
        p.extend_from_slice(extra);
        d.pipe_json("log_baseline_anomalies", &p)["data"].clone()
    };
    // The small minute shows once min_count and z allow it: (3 - 1) / 1 = 2.
    let v = rows(&[
        ("min_count", "1"),
        ("z", "1.5"),
        ("service", "api"),
        ("severity", "error"),
    ]);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v[0]["log_count"], 3, "newest minute first");
    assert_eq!(v[0]["z_score"], 2);
    assert_eq!(rows(&[("z", "39.5"), ("service", "api")]), json!([]));
    assert_eq!(rows(&[("limit", "1")]).as_array().unwrap().len(), 1);
    // A 2-hour baseline halves the mean of api/ERROR.
    let v = d.pipe_json(
        "log_baseline_anomalies",
        &[
            ("end_time", "2023-06-01 14:05:00"),
            ("time_window_minutes", "5"),
            ("baseline_hours", "2"),
            ("service", "api"),
        ],
    )["data"]
        .clone();
    assert_eq!(v[0]["baseline_mean"], 0.5, "{v}");

    for (name, value) in [
        ("z", "abc"),
        ("z", "-1"),
        ("baseline_hours", "0"),
        ("baseline_hours", "169"),
        ("min_count", "-1"),
        ("time_window_minutes", "0"),
    ] {
        let r = d.pipe("log_baseline_anomalies.json", &[(name, value)]);
        let msg = r.assert_error(400);
        assert!(msg.contains(name), "{msg}");
    }
    let own = d.create_token("b", &["PIPES:READ:log_baseline_anomalies"]);
    let anomalies_only = d.create_token("a", &["PIPES:READ:log_anomalies"]);
    let path = format!("/v0/pipes/log_baseline_anomalies.json?{}", qs(&WINDOW));
    assert_eq!(d.get_as(&path, Some(&own)).status, 200);
    d.get_as(&path, Some(&anomalies_only)).assert_error(403);
}
