//! Proves the Data Sources API and workspace: the list (quarantines included), show with exact columns and statistics, truncate (admin only, durable, ingestion continues after it), and `GET /v0/workspace` with a stable id.

mod common;

use common::*;
use serde_json::{json, Value};

fn columns(v: &Value) -> Vec<(String, String)> {
    v["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("no columns in {v}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn list_shows_every_datasource_with_statistics() {
    let d = Daemon::start();
    d.ingest(
        "system_logs",
        &[
            log_row("2023-06-01 14:30:00", "s", "INFO", "x"),
            json!({"bad": 1}),
        ],
        true,
    );
    let r = d.get("/v0/datasources");
    assert!(r.content_type().starts_with("application/json"));
    let v = r.ok_json();
    let list = v["datasources"].as_array().unwrap_or_else(|| panic!("{v}"));
    let mut names: Vec<&str> = list.iter().map(|x| x["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "log_anomaly_thresholds",
            "log_anomaly_thresholds_quarantine",
            "system_logs",
            "system_logs_quarantine"
        ]
    );
    for ds in list {
        assert!(
            ds["columns"].as_array().is_some_and(|c| !c.is_empty()),
            "{ds}"
        );
        assert!(ds["statistics"]["row_count"].is_u64(), "{ds}");
        assert!(ds["statistics"]["bytes"].is_u64(), "{ds}");
        let shown = d
            .get(&format!("/v0/datasources/{}", ds["name"].as_str().unwrap()))
            .ok_json();
        assert_eq!(shown["statistics"], ds["statistics"]);
        assert_eq!(shown["columns"], ds["columns"]);
    }
    let by = |n: &str| {
        list.iter().find(|x| x["name"] == n).unwrap()["statistics"]["row_count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(by("system_logs"), 1);
    assert_eq!(by("system_logs_quarantine"), 1);
    assert_eq!(by("log_anomaly_thresholds"), 0);
}

#[test]
fn show_has_exact_columns_and_counts_rows_and_bytes() {
    let d = Daemon::start();
    let v = d.get("/v0/datasources/system_logs").ok_json();
    assert_eq!(v["name"], "system_logs");
    assert_eq!(
        columns(&v),
        pairs(&[
            ("timestamp", "DateTime"),
            ("server_id", "String"),
            ("service", "LowCardinality(String)"),
            ("severity", "LowCardinality(String)"),
            ("message", "String"),
            ("error_code", "String"),
            ("resource_id", "String"),
            ("metadata", "String"),
        ])
    );
    assert_eq!(v["statistics"]["row_count"], 0);
    let v = d.get("/v0/datasources/log_anomaly_thresholds").ok_json();
    assert_eq!(
        columns(&v),
        pairs(&[
            ("service", "String"),
            ("severity", "String"),
            ("threshold_per_minute", "Float64"),
            ("active", "UInt8"),
            ("updated_at", "DateTime"),
        ])
    );
    let rows: Vec<Value> = (0..25)
        .map(|i| log_row("2023-06-01 14:30:00", "s", "INFO", &format!("{i}")))
        .collect();
    d.ingest("system_logs", &rows, false);
    let v = d.get("/v0/datasources/system_logs").ok_json();
    assert_eq!(v["statistics"]["row_count"], 25);
    let b1 = v["statistics"]["bytes"].as_u64().unwrap();
    assert!(b1 > 0);
    d.ingest("system_logs", &rows, false);
    let b2 = d.get("/v0/datasources/system_logs").ok_json()["statistics"]["bytes"]
        .as_u64()
        .unwrap();
    assert!(b2 > b1, "bytes did not grow: {b1} -> {b2}");
    d.get("/v0/datasources/nope").assert_error(404);
    // truncate is POST only.
    d.get("/v0/datasources/nope/truncate").assert_error(405);
}

#[test]
fn truncate_is_admin_only_and_removes_all_rows_durably() {
    let mut d = Daemon::start();
    let rows: Vec<Value> = (0..30)
        .map(|i| log_row(&fmt_ts(SEED_TS + i * 600), "t", "ERROR", &format!("{i}")))
        .collect();
    d.ingest("system_logs", &rows, true);
    d.ingest(
        "log_anomaly_thresholds",
        &[json!({"service": "t", "severity": "ERROR", "threshold_per_minute": 0.5, "updated_at": "2023-06-01 00:00:00"})],
        true,
    );
    let end = fmt_ts(SEED_TS + 3600);
    assert_eq!(
        d.pipe_json("log_anomalies", &[("end_time", &end)])["rows"],
        6
    );

    let scoped = d.create_token(
        "w",
        &[
            "DATASOURCES:APPEND:system_logs",
            "DATASOURCES:READ:system_logs",
        ],
    );
    d.post_as("/v0/datasources/system_logs/truncate", Some(&scoped), b"")
        .assert_error(403);
    d.post_as("/v0/datasources/system_logs/truncate", None, b"")
        .assert_error(401);
    assert_eq!(d.row_count("system_logs"), 30);
    d.post("/v0/datasources/nope/truncate", b"")
        .assert_error(404);
    d.request(
        "GET",
        "/v0/datasources/system_logs/truncate",
        Some(&d.token),
        &[],
        None,
    )
    .assert_error(405);

    let r = d.post("/v0/datasources/system_logs/truncate", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json();
    assert_eq!(d.row_count("system_logs"), 0);
    let v = d.pipe_json("recent_logs", &[]);
    assert_eq!(v["rows"], 0);
    assert_eq!(v["rows_before_limit_at_least"], 0);
    assert_eq!(d.pipe_json("error_distribution", &[])["rows"], 0);
    assert_eq!(
        d.pipe_json("log_anomalies", &[("end_time", &end)])["rows"],
        0
    );
    // Thresholds are another data source: still there.
    assert_eq!(d.row_count("log_anomaly_thresholds"), 1);

    // Ingestion continues; a restart and a crash bring nothing back.
    d.ingest(
        "system_logs",
        &[log_row(&fmt_ts(SEED_TS), "t", "ERROR", "after")],
        true,
    );
    d.restart();
    assert_eq!(messages(&d.pipe_json("recent_logs", &[])), ["after"]);
    d.crash_restart();
    assert_eq!(messages(&d.pipe_json("recent_logs", &[])), ["after"]);
    assert_eq!(d.row_count("system_logs"), 1);

    // Truncating thresholds removes the anomalies.
    d.ingest("system_logs", &rows, true);
    assert!(
        d.pipe_json("log_anomalies", &[("end_time", &end)])["rows"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        d.post("/v0/datasources/log_anomaly_thresholds/truncate", b"")
            .status,
        200
    );
    assert_eq!(
        d.pipe_json("log_anomalies", &[("end_time", &end)])["rows"],
        0
    );
    assert_eq!(d.row_count("log_anomaly_thresholds"), 0);
    // Quarantines can be truncated too.
    d.ingest("system_logs", &[json!({"x": 1})], true);
    assert_eq!(
        d.post("/v0/datasources/system_logs_quarantine/truncate", b"")
            .status,
        200
    );
    assert_eq!(d.row_count("system_logs_quarantine"), 0);
}

#[test]
fn workspace_has_a_stable_id_and_a_name() {
    let mut d = Daemon::start();
    let r = d.get("/v0/workspace");
    let v = r.ok_json();
    let id = v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_string();
    assert!(!id.is_empty());
    assert!(v["name"].as_str().is_some_and(|n| !n.is_empty()), "{v}");
    d.get_as("/v0/workspace", None).assert_error(401);
    d.restart();
    assert_eq!(d.get("/v0/workspace").ok_json()["id"], id.as_str());
}
