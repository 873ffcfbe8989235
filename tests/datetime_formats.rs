//! Proves every accepted DateTime input form (in rows and in query parameters) maps to the documented UTC second, that fractions truncate, that output is `YYYY-MM-DD HH:MM:SS`, and that values outside 1970-01-01 00:00:00..=2105-12-31 23:59:59 or malformed are rejected (quarantine in rows, 400 naming the parameter in queries).

mod common;

use common::*;
use serde_json::{json, Value};

/// JSON values that all mean 2023-06-01 14:30:00 UTC.
fn seed_forms() -> Vec<Value> {
    vec![
        json!("2023-06-01 14:30:00"),
        json!("2023-06-01T14:30:00"),
        json!("2023-06-01T14:30:00Z"),
        json!("2023-06-01T14:30:00.987Z"),
        json!("2023-06-01T14:30:00.123456789Z"),
        json!("2023-06-01 14:30:00.999"),
        json!("2023-06-01T14:30:00.5"),
        json!("2023-06-01T16:30:00+02:00"),
        json!("2023-06-01T12:30:00-02:00"),
        json!("2023-06-01T20:00:00.75+05:30"),
        json!("2023-06-01T14:30:00+00:00"),
        json!("1685629800"),
        json!("1685629800.9"),
        json!(1685629800),
        json!(1685629800.9),
        json!(1685629800.0001),
    ]
}

#[test]
fn every_accepted_form_in_rows_is_the_same_utc_second() {
    let d = Daemon::start();
    let forms = seed_forms();
    let rows: Vec<Value> = forms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"timestamp": t, "service": "dt", "severity": "INFO", "message": format!("{i}")})
        })
        .collect();
    assert_eq!(
        d.ingest("system_logs", &rows, true),
        (forms.len() as u64, 0)
    );
    let v = d.pipe_json("recent_logs", &[("service", "dt")]);
    let got = v["data"].as_array().unwrap();
    assert_eq!(got.len(), forms.len());
    for r in got {
        let i: usize = r["message"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            r["timestamp"], "2023-06-01 14:30:00",
            "form {} was stored as {}",
            forms[i], r["timestamp"]
        );
    }
    // Same second: ordered by ingestion, newest first.
    let order: Vec<String> = (0..forms.len()).rev().map(|i| i.to_string()).collect();
    assert_eq!(messages(&v), order);
}

#[test]
fn date_only_means_midnight_and_bounds_are_inclusive() {
    let d = Daemon::start();
    let rows = vec![
        json!({"timestamp": "2023-06-01", "service": "b", "severity": "INFO", "message": "date"}),
        json!({"timestamp": "1970-01-01 00:00:00", "service": "b", "severity": "INFO", "message": "min"}),
        json!({"timestamp": 0, "service": "b", "severity": "INFO", "message": "zero"}),
        json!({"timestamp": "2105-12-31 23:59:59", "service": "b", "severity": "INFO", "message": "max"}),
        json!({"timestamp": 4291747199u64, "service": "b", "severity": "INFO", "message": "max-unix"}),
        json!({"timestamp": "2105-12-31T23:59:59.999Z", "service": "b", "severity": "INFO", "message": "max-frac"}),
        json!({"timestamp": "2024-02-29 12:00:00", "service": "b", "severity": "INFO", "message": "leap"}),
    ];
    assert_eq!(d.ingest("system_logs", &rows, true), (7, 0));
    let v = d.pipe_json("recent_logs", &[("service", "b")]);
    let ts_of = |m: &str| -> String {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["message"] == m)
            .unwrap()["timestamp"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(ts_of("date"), "2023-06-01 00:00:00");
    assert_eq!(ts_of("min"), "1970-01-01 00:00:00");
    assert_eq!(ts_of("zero"), "1970-01-01 00:00:00");
    assert_eq!(ts_of("max"), "2105-12-31 23:59:59");
    assert_eq!(ts_of("max-unix"), "2105-12-31 23:59:59");
    assert_eq!(ts_of("max-frac"), "2105-12-31 23:59:59");
    assert_eq!(ts_of("leap"), "2024-02-29 12:00:00");
    // Output format of every DateTime: exactly YYYY-MM-DD HH:MM:SS.
    for r in v["data"].as_array().unwrap() {
        let t = r["timestamp"].as_str().unwrap();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], " ");
    }
}

#[test]
fn out_of_range_and_malformed_datetimes_are_quarantined() {
    let d = Daemon::start();
    let bad: Vec<Value> = vec![
        json!("2106-01-01 00:00:00"),
        json!("1969-12-31 23:59:59"),
        json!(-1),
        json!("-1"),
        json!(4291747200u64),
        json!("4291747200"),
        json!(1e12),
        json!("2105-12-31T23:30:00-01:00"),
        json!("1970-01-01T00:30:00+01:00"),
        json!("2023-02-29 00:00:00"),
        json!("2023-13-01"),
        json!("2023-06-01 24:00:00"),
        json!("2023-06-01 14:30"),
        json!("2023-06-01T14:30:00+25:00"),
        json!("2023-06-01T14:30:00 garbage"),
        json!("2023/06/01 14:30:00"),
        json!("yesterday"),
        json!(""),
        json!(true),
        json!({"t": 1}),
        json!([1685629800]),
        // Multi-byte characters where digits are expected (byte 19 inside a character).
        json!("2023-06-01 14:30:0é"),
        json!("2023-06-01 14:30:00é"),
        json!("２０２３-06-01 14:30:00"),
    ];
    let mut rows: Vec<Value> = bad
        .iter()
        .map(|t| json!({"timestamp": t, "service": "bad", "severity": "INFO", "message": t.to_string()}))
        .collect();
    rows.push(log_row(
        "2023-06-01 14:30:00",
        "bad",
        "INFO",
        "the good one",
    ));
    let r = d.post(
        "/v0/events?name=system_logs&wait=true",
        ndjson(&rows).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(counts(&r.json()), (1, bad.len() as u64));
    let v = d.pipe_json("recent_logs", &[("service", "bad")]);
    assert_eq!(messages(&v), ["the good one"]);
    // Also threshold updated_at.
    let rows: Vec<Value> = [
        "2106-01-01 00:00:00",
        "1969-12-31 23:59:59",
        "2023-06-01 14:30:0é",
    ]
    .iter()
    .map(|t| json!({"service": "s", "severity": "E", "threshold_per_minute": 1, "updated_at": t}))
    .collect();
    assert_eq!(d.ingest("log_anomaly_thresholds", &rows, true), (0, 3));
}

/// Rows at 14:29:59, 14:30:00 and 14:30:01 on 2023-06-01.
fn three_rows(d: &Daemon) {
    let rows: Vec<Value> = [-1i64, 0, 1]
        .iter()
        .map(|o| log_row(&fmt_ts(SEED_TS + o), "p", "INFO", &format!("{o}")))
        .collect();
    assert_eq!(d.ingest("system_logs", &rows, true), (3, 0));
}

#[test]
fn every_accepted_form_works_as_a_query_parameter() {
    let d = Daemon::start();
    three_rows(&d);
    // [start, end) selecting exactly the 14:30:00 row.
    let pairs = [
        ("2023-06-01 14:30:00", "2023-06-01 14:30:01"),
        ("2023-06-01T14:30:00", "2023-06-01T14:30:01"),
        ("2023-06-01T14:30:00Z", "2023-06-01T14:30:01Z"),
        ("2023-06-01T14:30:00.999Z", "2023-06-01T14:30:01.999Z"),
        ("2023-06-01 14:30:00.5", "2023-06-01 14:30:01.5"),
        ("2023-06-01T16:30:00+02:00", "2023-06-01T12:30:01-02:00"),
        ("2023-06-01T20:00:00+05:30", "2023-06-01T20:00:01.1+05:30"),
        ("1685629800", "1685629801"),
        ("1685629800.9", "1685629801.2"),
    ];
    for (start, end) in pairs {
        let v = d.pipe_json(
            "recent_logs",
            &[("service", "p"), ("start_time", start), ("end_time", end)],
        );
        assert_eq!(messages(&v), ["0"], "start {start:?} end {end:?}");
        let v = d.pipe_json(
            "error_distribution",
            &[("service", "p"), ("start_time", start), ("end_time", end)],
        );
        assert_eq!(v["data"][0]["error_count"], 1, "{start} {end}");
    }
    // Date only: midnight.
    let v = d.pipe_json(
        "recent_logs",
        &[("start_time", "2023-06-01"), ("end_time", "2023-06-02")],
    );
    assert_eq!(v["rows"], 3);
    let v = d.pipe_json("recent_logs", &[("end_time", "2023-06-01")]);
    assert_eq!(v["rows"], 0);
    // The bounds of the range are valid parameters.
    let v = d.pipe_json(
        "recent_logs",
        &[
            ("start_time", "1970-01-01 00:00:00"),
            ("end_time", "2105-12-31 23:59:59"),
        ],
    );
    assert_eq!(v["rows"], 3);
    // log_anomalies' end_time accepts the forms too.
    for end in [
        "2023-06-01T14:31:00Z",
        "1685629860",
        "2023-06-01 16:31:00+02:00",
    ] {
        let v = d.pipe_json("log_anomalies", &[("end_time", end)]);
        assert_eq!(v["rows"], 0, "{end}");
    }
}

#[test]
fn bad_datetime_parameters_are_400_naming_the_parameter() {
    let d = Daemon::start();
    three_rows(&d);
    let bad = [
        "2106-01-01 00:00:00",
        "1969-12-31 23:59:59",
        "-1",
        "4291747200",
        "2023-02-30",
        "2023-06-01 25:00:00",
        "not a date",
        "2023-06-01 14:30:0é",
        "2023-06-01T14:30:00+2:00x",
    ];
    for pipe in ["recent_logs", "error_distribution"] {
        for param in ["start_time", "end_time"] {
            for v in bad {
                let r = d.pipe(&format!("{pipe}.json"), &[(param, v)]);
                let msg = r.assert_error(400);
                assert!(msg.contains(param), "{pipe} {param}={v:?}: {msg}");
            }
        }
    }
    for v in bad {
        let r = d.pipe("log_anomalies.json", &[("end_time", v)]);
        let msg = r.assert_error(400);
        assert!(msg.contains("end_time"), "end_time={v:?}: {msg}");
    }
    // The daemon is still healthy after all of them.
    assert_eq!(d.get("/v0/health").status, 200);
}
