//! Proves the Events API contract: NDJSON, single and pretty-printed bodies, blank lines, gzip, `wait` (200 vs 202), the exact response body, 413/404/400, and that one request's rows become visible together.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

fn all_recent(d: &Daemon, service: &str) -> Value {
    d.pipe_json("recent_logs", &[("service", service), ("limit", "10000")])
}

#[test]
fn ndjson_body_with_blank_lines_is_one_row_per_line() {
    let d = Daemon::start();
    let body = "\n{\"timestamp\":\"2023-06-01 10:00:00\",\"service\":\"nd\",\"severity\":\"INFO\",\"message\":\"one\"}\n\
                \n   \n\
                {\"timestamp\":\"2023-06-01 10:00:01\",\"service\":\"nd\",\"severity\":\"INFO\",\"message\":\"two\"}\r\n\
                \r\n\
                {\"timestamp\":\"2023-06-01 10:00:02\",\"service\":\"nd\",\"severity\":\"INFO\",\"message\":\"three\"}";
    let r = d.post("/v0/events?name=system_logs", body.as_bytes());
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.content_type().starts_with("application/json"));
    assert_eq!(
        r.json(),
        json!({"successful_rows": 3, "quarantined_rows": 0})
    );
    assert_eq!(counts(&r.json()), (3, 0));
    let v = all_recent(&d, "nd");
    assert_eq!(messages(&v), ["three", "two", "one"]);
}

#[test]
fn response_body_is_exactly_successful_and_quarantined_rows() {
    let d = Daemon::start();
    let body = ndjson(&[
        log_row("2023-06-01 10:00:00", "x", "INFO", "ok"),
        json!({"service": "x"}),
    ]);
    let r = d.post("/v0/events?name=system_logs&wait=true", body.as_bytes());
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v, json!({"successful_rows": 1, "quarantined_rows": 1}));
    // Integers, not strings or floats.
    assert!(v["successful_rows"].is_u64() && v["quarantined_rows"].is_u64());
    assert!(!r.text().contains("\"1\""), "{}", r.text());
}

#[test]
fn single_object_body_is_one_row() {
    let d = Daemon::start();
    let row = log_row("2023-06-01 10:00:00", "single", "WARN", "lonely");
    let r = d.post("/v0/events?name=system_logs", row.to_string().as_bytes());
    assert_eq!(
        r.json(),
        json!({"successful_rows": 1, "quarantined_rows": 0})
    );
    assert_eq!(messages(&all_recent(&d, "single")), ["lonely"]);
}

#[test]
fn pretty_printed_object_as_curl_d_sends_it_is_one_row() {
    let d = Daemon::start();
    // The seed's curl -d body, verbatim: a multi-line object.
    let body = r#"{
    "timestamp": "2023-06-01 14:30:00",
    "server_id": "srv-001",
    "service": "authentication",
    "severity": "ERROR",
    "message": "Failed login attempt",
    "error_code": "AUTH-401",
    "resource_id": "user-123",
    "metadata": "{\"ip\": \"192.168.1.1\", \"browser\": \"Chrome\"}"
  }"#;
    let r = d.request(
        "POST",
        "/v0/events?name=system_logs",
        Some(&d.token),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"successful_rows": 1, "quarantined_rows": 0})
    );
    let v = all_recent(&d, "authentication");
    assert_eq!(
        v["data"],
        json!([{
            "timestamp": "2023-06-01 14:30:00",
            "server_id": "srv-001",
            "service": "authentication",
            "severity": "ERROR",
            "message": "Failed login attempt",
            "error_code": "AUTH-401",
            "resource_id": "user-123",
            "metadata": "{\"ip\": \"192.168.1.1\", \"browser\": \"Chrome\"}"
        }])
    );
    assert_eq!(d.row_count("system_logs_quarantine"), 0);
}

#[test]
fn pretty_printed_threshold_object_is_one_row() {
    let d = Daemon::start();
    let body = "{\n    \"service\": \"authentication\",\n    \"severity\": \"ERROR\",\n    \"threshold_per_minute\": 10.5,\n    \"active\": 1,\n    \"updated_at\": \"2023-06-01 12:00:00\"\n  }";
    let r = d.post("/v0/events?name=log_anomaly_thresholds", body.as_bytes());
    assert_eq!(
        r.json(),
        json!({"successful_rows": 1, "quarantined_rows": 0})
    );
    assert_eq!(d.row_count("log_anomaly_thresholds"), 1);
}

#[test]
fn gzip_bodies_are_accepted() {
    let d = Daemon::start();
    let rows: Vec<Value> = (0..50)
        .map(|i| log_row("2023-06-01 10:00:00", "gz", "INFO", &format!("m{i}")))
        .collect();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(ndjson(&rows).as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let r = d.request(
        "POST",
        "/v0/events?name=system_logs&wait=true",
        Some(&d.token),
        &[("Content-Encoding", "gzip")],
        Some(&gz),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"successful_rows": 50, "quarantined_rows": 0})
    );
    let v = all_recent(&d, "gz");
    assert_eq!(v["rows"], 50);

    // A body that claims gzip but is not: 400 and nothing stored.
    let r = d.request(
        "POST",
        "/v0/events?name=system_logs",
        Some(&d.token),
        &[("Content-Encoding", "gzip")],
        Some(ndjson(&rows).as_bytes()),
    );
    r.assert_error(400);
    assert_eq!(d.row_count("system_logs"), 50);
}

#[test]
fn gzip_bomb_over_the_decompressed_limit_is_413() {
    let d = Daemon::options()
        .arg("--max-decompressed-bytes")
        .arg("100000")
        .start();
    let row = log_row("2023-06-01 10:00:00", "bomb", "INFO", &"z".repeat(1000));
    let body = ndjson(&vec![row; 200]); // ~220 KB, compresses to a few KB
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    assert!(gz.len() < 100_000);
    let r = d.request(
        "POST",
        "/v0/events?name=system_logs",
        Some(&d.token),
        &[("Content-Encoding", "gzip")],
        Some(&gz),
    );
    r.assert_error(413);
    assert_eq!(d.row_count("system_logs"), 0);
}

#[test]
fn wait_true_answers_200_and_otherwise_202() {
    let d = Daemon::start();
    let body = log_row("2023-06-01 10:00:00", "w", "INFO", "x").to_string();
    for (q, status) in [
        ("", 202),
        ("&wait=true", 200),
        ("&wait=1", 200),
        ("&wait=false", 202),
        ("&wait=0", 202),
    ] {
        let r = d.post(&format!("/v0/events?name=system_logs{q}"), body.as_bytes());
        assert_eq!(r.status, status, "wait param {q:?}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"successful_rows": 1, "quarantined_rows": 0})
        );
    }
    let msg = d
        .post("/v0/events?name=system_logs&wait=maybe", body.as_bytes())
        .assert_error(400);
    assert!(
        msg.contains("wait"),
        "error should name the parameter: {msg}"
    );
    assert_eq!(d.row_count("system_logs"), 5);
}

#[test]
fn rows_acknowledged_without_wait_are_immediately_visible() {
    let d = Daemon::start();
    for i in 0..20 {
        let row = log_row("2023-06-01 10:00:00", "vis", "INFO", &format!("v{i}"));
        let (ok, _) = d.ingest("system_logs", &[row], false);
        assert_eq!(ok, 1);
        let v = all_recent(&d, "vis");
        assert_eq!(v["rows"], i + 1, "row {i} not visible right after its 202");
    }
}

#[test]
fn unknown_query_parameters_and_any_content_type_are_accepted() {
    let d = Daemon::start();
    let body = log_row("2023-06-01 10:00:00", "ct", "INFO", "x").to_string();
    for ct in [
        None,
        Some("application/json"),
        Some("application/x-ndjson"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/octet-stream"),
    ] {
        let headers: Vec<(&str, &str)> = ct.iter().map(|c| ("Content-Type", *c)).collect();
        let r = d.request(
            "POST",
            "/v0/events?name=system_logs&mode=append&format=ndjson&from=cli&cli_version=5.0.0",
            Some(&d.token),
            &headers,
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 202, "content type {ct:?}: {}", r.text());
    }
    assert_eq!(d.row_count("system_logs"), 6);
}

#[test]
fn body_over_max_body_bytes_is_413_and_nothing_is_stored() {
    let d = Daemon::options()
        .arg("--max-body-bytes")
        .arg("1024")
        .start();
    let row = |msg_len: usize| {
        let mut r = log_row("2023-06-01 10:00:00", "big", "INFO", &"a".repeat(msg_len));
        r["server_id"] = json!("s");
        r.to_string()
    };
    // Exactly at the limit: accepted.
    let base = row(0).len();
    let exact = row(1024 - base);
    assert_eq!(exact.len(), 1024);
    let r = d.post("/v0/events?name=system_logs", exact.as_bytes());
    assert_eq!(r.status, 202, "{}", r.text());
    // One byte over, with Content-Length.
    let over = row(1025 - base);
    d.post("/v0/events?name=system_logs", over.as_bytes())
        .assert_error(413);
    // Well over, many rows, with Content-Length.
    let many = ndjson(&vec![
        log_row("2023-06-01 10:00:00", "big", "INFO", "m");
        40
    ]);
    assert!(many.len() > 2048);
    d.post("/v0/events?name=system_logs", many.as_bytes())
        .assert_error(413);
    // Over, without Content-Length (chunked).
    d.post_chunked("/v0/events?name=system_logs&wait=true", many.as_bytes())
        .assert_error(413);
    assert_eq!(d.row_count("system_logs"), 1);
    assert_eq!(d.row_count("system_logs_quarantine"), 0);
    // The daemon still serves.
    assert_eq!(all_recent(&d, "big")["rows"], 1);
}

#[test]
fn unknown_datasource_is_404_and_missing_name_is_400() {
    let d = Daemon::start();
    let body = log_row("2023-06-01 10:00:00", "a", "INFO", "x").to_string();
    let msg = d
        .post("/v0/events?name=no_such_ds", body.as_bytes())
        .assert_error(404);
    assert!(msg.contains("no_such_ds"), "{msg}");
    let msg = d.post("/v0/events", body.as_bytes()).assert_error(400);
    assert!(msg.contains("name"), "{msg}");
    d.post("/v0/events?name=", body.as_bytes())
        .assert_error(400);
    d.post("/v0/events?wait=true", body.as_bytes())
        .assert_error(400);
    assert_eq!(d.row_count("system_logs"), 0);
}

#[test]
fn empty_body_stores_nothing() {
    let d = Daemon::start();
    for body in ["", "\n", "\n\n  \n"] {
        let r = d.post("/v0/events?name=system_logs&wait=true", body.as_bytes());
        assert_eq!(r.status, 200, "{body:?}: {}", r.text());
        assert_eq!(counts(&r.json()), (0, 0));
    }
}

#[test]
fn rows_of_one_request_become_visible_together() {
    let d = Daemon::start();
    const BATCH: u64 = 250;
    const BATCHES: u64 = 16;
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let v = d.pipe_json("recent_logs", &[("service", "atomic"), ("limit", "1")]);
                let n = v["rows_before_limit_at_least"].as_u64().unwrap();
                seen.push(n);
            }
            seen
        });
        for b in 0..BATCHES {
            let rows: Vec<Value> = (0..BATCH)
                .map(|i| {
                    // Spread over two hours so a batch spans several segments.
                    let ts = SEED_TS + (i as i64 % 2) * 3600 + b as i64;
                    log_row(&fmt_ts(ts), "atomic", "INFO", &format!("{b}-{i}"))
                })
                .collect();
            assert_eq!(d.ingest("system_logs", &rows, false), (BATCH, 0));
        }
        done.store(true, Ordering::Relaxed);
        let seen = reader.join().unwrap();
        assert!(!seen.is_empty());
        for n in &seen {
            assert_eq!(n % BATCH, 0, "a query saw {n} rows: part of a request");
        }
    });
    assert_eq!(d.row_count("system_logs"), BATCH * BATCHES);
}
