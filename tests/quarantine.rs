//! Proves that rows breaking a rule go to `<datasource>_quarantine` and are counted in `quarantined_rows`, while the valid rows of the same request are stored, queryable and durable.

mod common;

use common::*;
use serde_json::{json, Value};

#[test]
fn bad_log_rows_are_quarantined_and_good_rows_of_the_same_request_stored() {
    let d = Daemon::start();
    let good1 = log_row("2023-06-01 10:00:00", "q", "ERROR", "good-1");
    let good2 = log_row("2023-06-01 10:00:01", "q", "INFO", "good-2");
    let body = [
        good1.to_string(),
        "this is not json".to_string(),
        json!({"timestamp": "2023-06-01 10:00:00", "service": "q", "message": "no severity"})
            .to_string(),
        json!({"service": "q", "severity": "INFO", "message": "no timestamp"}).to_string(),
        json!({"timestamp": "not a time", "service": "q", "severity": "INFO", "message": "m"})
            .to_string(),
        json!({"timestamp": "2106-01-01 00:00:00", "service": "q", "severity": "INFO", "message": "m"})
            .to_string(),
        json!({"timestamp": "2023-06-01 10:00:00", "service": "   ", "severity": "INFO", "message": "m"})
            .to_string(),
        json!({"timestamp": "2023-06-01 10:00:00", "service": "q", "severity": "INFO"}).to_string(),
        "[1, 2, 3]".to_string(),
        "{\"timestamp\": \"2023-06-01 10:00:00\", \"service\": \"q\",".to_string(),
        good2.to_string(),
    ]
    .join("\n");
    let r = d.post("/v0/events?name=system_logs&wait=true", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"successful_rows": 2, "quarantined_rows": 9})
    );
    assert_eq!(d.row_count("system_logs"), 2);
    assert_eq!(d.row_count("system_logs_quarantine"), 9);
    let v = d.pipe_json("recent_logs", &[("service", "q")]);
    assert_eq!(messages(&v), ["good-2", "good-1"]);
    // Quarantined rows never show up in pipes.
    let all = d.pipe_json("recent_logs", &[("limit", "10000")]);
    assert_eq!(all["rows"], 2);
    let dist = d.pipe_json("error_distribution", &[]);
    let total: u64 = dist["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 2);
}

#[test]
fn quarantine_datasource_describes_its_columns() {
    let d = Daemon::start();
    d.ingest("system_logs", &[json!({"nope": 1})], true);
    let v = d.get("/v0/datasources/system_logs_quarantine").ok_json();
    assert_eq!(v["name"], "system_logs_quarantine");
    assert_eq!(v["statistics"]["row_count"], 1);
    let names: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for col in [
        "c__error_column",
        "c__error",
        "c__import_id",
        "insertion_date",
        "c__raw",
    ] {
        assert!(
            names.contains(&col),
            "quarantine lacks column {col}: {names:?}"
        );
    }
}

#[test]
fn a_body_of_only_bad_rows_is_accepted_with_everything_quarantined() {
    let d = Daemon::start();
    let body = "garbage\n{\"x\":1}\n42\n\"str\"\nnull\n";
    let r = d.post("/v0/events?name=system_logs", body.as_bytes());
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(counts(&r.json()), (0, 5));
    assert_eq!(d.row_count("system_logs"), 0);
    assert_eq!(d.row_count("system_logs_quarantine"), 5);
}

#[test]
fn bad_threshold_rows_are_quarantined() {
    let d = Daemon::start();
    let ok = json!({"service": "s", "severity": "error", "threshold_per_minute": 2.5});
    let rows: Vec<Value> = vec![
        ok.clone(),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": 0}),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": -1}),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": "NaN"}),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": "inf"}),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": "ten"}),
        json!({"service": "s", "severity": "ERROR"}),
        json!({"severity": "ERROR", "threshold_per_minute": 1}),
        json!({"service": "", "severity": "ERROR", "threshold_per_minute": 1}),
        json!({"service": "s", "severity": " ", "threshold_per_minute": 1}),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": 1, "active": 2}),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": 1, "active": "yes"}),
        json!({"service": "s", "severity": "ERROR", "threshold_per_minute": 1, "updated_at": "soon"}),
        json!({"service": "s2", "severity": "WARN", "threshold_per_minute": "3", "active": true}),
        json!({"service": "s3", "severity": "WARN", "threshold_per_minute": 1e300, "active": "false"}),
    ];
    let (ok_rows, bad) = d.ingest("log_anomaly_thresholds", &rows, true);
    assert_eq!((ok_rows, bad), (3, 12));
    assert_eq!(d.row_count("log_anomaly_thresholds"), 3);
    assert_eq!(d.row_count("log_anomaly_thresholds_quarantine"), 12);
    assert_eq!(d.row_count("system_logs_quarantine"), 0);
}

#[test]
fn quarantined_rows_survive_restart_with_the_valid_ones() {
    let mut d = Daemon::start();
    let rows = vec![
        log_row("2023-06-01 10:00:00", "keep", "INFO", "a"),
        json!({"broken": true}),
        log_row("2023-06-01 10:00:01", "keep", "INFO", "b"),
    ];
    assert_eq!(d.ingest("system_logs", &rows, false), (2, 1));
    d.restart();
    assert_eq!(d.row_count("system_logs"), 2);
    assert_eq!(d.row_count("system_logs_quarantine"), 1);
    let v = d.pipe_json("recent_logs", &[("service", "keep")]);
    assert_eq!(messages(&v), ["b", "a"]);
}

#[test]
fn appending_to_a_quarantine_datasource_is_refused() {
    let d = Daemon::start();
    let r = d.post(
        "/v0/events?name=system_logs_quarantine",
        json!({"c__raw": "x"}).to_string().as_bytes(),
    );
    let msg = r.assert_json_error();
    assert_eq!(r.status, 400, "{msg}");
    assert_eq!(d.row_count("system_logs_quarantine"), 0);
}

#[test]
fn a_pretty_printed_object_keeps_its_row_when_bad_lines_follow() {
    let d = Daemon::start();
    let body = "{\n  \"timestamp\": \"2023-06-01 14:30:00\",\n  \"service\": \"pretty\",\n  \"severity\": \"ERROR\",\n  \"message\": \"kept\"\n}\n\
                garbage line\n\
                {\"timestamp\": \"2023-06-01 14:30:01\", \"service\": \"pretty\", \"severity\": \"INFO\", \"message\": \"also kept\"}\n";
    let r = d.post("/v0/events?name=system_logs&wait=true", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(counts(&r.json()), (2, 1));
    let v = d.pipe_json("recent_logs", &[("service", "pretty")]);
    assert_eq!(messages(&v), ["also kept", "kept"]);
    // A broken pretty-printed object: its lines are quarantined, the valid
    // NDJSON line after it is stored.
    let body = "{\n  \"timestamp\": \"2023-06-01 14:30:02\",\n  oops\n}\n\
                {\"timestamp\": \"2023-06-01 14:30:03\", \"service\": \"pretty\", \"severity\": \"INFO\", \"message\": \"after broken\"}\n";
    let r = d.post("/v0/events?name=system_logs&wait=true", body.as_bytes());
    let (ok, bad) = counts(&r.ok_json());
    assert_eq!(ok, 1);
    assert!(bad >= 1);
    let v = d.pipe_json("recent_logs", &[("service", "pretty")]);
    assert_eq!(messages(&v), ["after broken", "also kept", "kept"]);
}
