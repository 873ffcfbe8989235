//! Proves the `system_logs` column rules: defaults, trimming, UPPERCASE severity, length limits, numbers/booleans/JSON as String text, the field aliases of common shippers and their precedence, unknown fields ignored, and the 1 MiB row limit.

mod common;

use common::*;
use serde_json::{json, Value};

/// Ingests `rows` (asserting the counts) and returns recent_logs rows of `service`.
fn stored(d: &Daemon, rows: &[Value], ok: u64, bad: u64, service: &str) -> Vec<Value> {
    assert_eq!(d.ingest("system_logs", rows, true), (ok, bad), "{rows:?}");
    let v = d.pipe_json("recent_logs", &[("service", service), ("limit", "10000")]);
    v["data"].as_array().unwrap().clone()
}

#[test]
fn optional_columns_default_to_empty_and_unknown_fields_are_ignored() {
    let d = Daemon::start();
    let row = json!({
        "timestamp": "2023-06-01 14:30:00",
        "service": "defaults",
        "severity": "info",
        "message": "",
        "unknown": {"deep": [1, 2]},
        "another": 5,
    });
    let rows = stored(&d, &[row], 1, 0, "defaults");
    assert_eq!(
        rows,
        [json!({
            "timestamp": "2023-06-01 14:30:00",
            "server_id": "",
            "service": "defaults",
            "severity": "INFO",
            "message": "",
            "error_code": "",
            "resource_id": "",
            "metadata": "",
        })]
    );
    // null counts as absent.
    let row = json!({
        "timestamp": "2023-06-01 14:30:01", "service": "defaults", "severity": "INFO",
        "message": "n", "server_id": null, "error_code": null, "resource_id": null, "metadata": null,
    });
    let rows = stored(&d, &[row], 1, 0, "defaults");
    assert_eq!(rows[0]["server_id"], "");
    assert_eq!(rows[0]["metadata"], "");
    // A required column given as null is missing.
    let row = json!({"timestamp": "2023-06-01 14:30:01", "service": "defaults", "severity": null, "message": "n"});
    stored(&d, &[row], 0, 1, "defaults");
}

#[test]
fn severity_is_uppercased_and_keys_are_trimmed() {
    let d = Daemon::start();
    let rows = vec![
        log_row("2023-06-01 14:30:00", "  trim  ", " warning ", "a"),
        log_row("2023-06-01 14:30:01", "trim", "Error", "b"),
        log_row("2023-06-01 14:30:02", "trim", "ërror", "c"),
    ];
    let got = stored(&d, &rows, 3, 0, "trim");
    let sev: Vec<&str> = got
        .iter()
        .map(|r| r["severity"].as_str().unwrap())
        .collect();
    assert_eq!(sev, ["ËRROR", "ERROR", "WARNING"]);
    assert!(got.iter().all(|r| r["service"] == "trim"));
    // The severity filter upper-cases its parameter.
    let v = d.pipe_json("recent_logs", &[("service", "trim"), ("severity", "error")]);
    assert_eq!(messages(&v), ["b"]);
}

#[test]
fn length_limits_of_service_and_severity() {
    let d = Daemon::start();
    let s128 = "s".repeat(128);
    let rows = vec![
        log_row("2023-06-01 14:30:00", &s128, "INFO", "service 128"),
        log_row(
            "2023-06-01 14:30:00",
            &format!("  {s128}  "),
            "INFO",
            "padded 128",
        ),
        log_row(
            "2023-06-01 14:30:00",
            &"s".repeat(129),
            "INFO",
            "service 129",
        ),
        log_row("2023-06-01 14:30:00", "len", &"V".repeat(32), "severity 32"),
        log_row("2023-06-01 14:30:00", "len", &"V".repeat(33), "severity 33"),
        // 128 bytes, 64 characters.
        log_row(
            "2023-06-01 14:30:00",
            &"é".repeat(64),
            "INFO",
            "multibyte 128",
        ),
        log_row(
            "2023-06-01 14:30:00",
            &"é".repeat(65),
            "INFO",
            "multibyte 130",
        ),
        log_row("2023-06-01 14:30:00", "len", "", "empty severity"),
    ];
    assert_eq!(d.ingest("system_logs", &rows, true), (4, 4));
    let v = d.pipe_json("recent_logs", &[("service", &s128)]);
    assert_eq!(v["rows"], 2);
    let v = d.pipe_json("recent_logs", &[("service", "len")]);
    assert_eq!(messages(&v), ["severity 32"]);
    assert_eq!(d.row_count("system_logs_quarantine"), 4);
}

#[test]
fn numbers_booleans_and_json_are_stored_as_json_text() {
    let d = Daemon::start();
    // Raw text, to control the member order inside metadata.
    let row = r#"{"timestamp": "2023-06-01 14:30:00", "service": "types", "severity": "INFO",
        "message": 3.5, "server_id": 42, "error_code": 404, "resource_id": true,
        "metadata": {"ip": "10.0.0.1", "tags": [1, 2, {"k": "v w"}], "n": null}}"#;
    let r = d.post("/v0/events?name=system_logs&wait=true", row.as_bytes());
    assert_eq!(counts(&r.ok_json()), (1, 0));
    let v = d.pipe_json("recent_logs", &[("service", "types")]);
    let got = v["data"].as_array().unwrap();
    assert_eq!(got[0]["message"], "3.5");
    assert_eq!(got[0]["server_id"], "42");
    assert_eq!(got[0]["error_code"], "404");
    assert_eq!(got[0]["resource_id"], "true");
    assert_eq!(
        got[0]["metadata"],
        r#"{"ip":"10.0.0.1","tags":[1,2,{"k":"v w"}],"n":null}"#
    );
    // Pretty-printed metadata is compacted; an array too; a string is kept as is.
    let body = "{\"timestamp\":\"2023-06-01 14:30:01\",\"service\":\"types\",\"severity\":\"INFO\",\"message\":\"m\",\"metadata\":[ 1 , { \"a\" : \"b c\" } ]}\n\
                {\"timestamp\":\"2023-06-01 14:30:02\",\"service\":\"types\",\"severity\":\"INFO\",\"message\":\"m\",\"metadata\":\"{ \\\"kept\\\": 1 }\"}\n\
                {\"timestamp\":\"2023-06-01 14:30:03\",\"service\":7,\"severity\":\"INFO\",\"message\":\"numeric service\"}";
    let r = d.post("/v0/events?name=system_logs&wait=true", body.as_bytes());
    assert_eq!(counts(&r.ok_json()), (3, 0));
    let v = d.pipe_json("recent_logs", &[("service", "types")]);
    assert_eq!(v["data"][0]["metadata"], "{ \"kept\": 1 }");
    assert_eq!(v["data"][1]["metadata"], r#"[1,{"a":"b c"}]"#);
    let v = d.pipe_json("recent_logs", &[("service", "7")]);
    assert_eq!(messages(&v), ["numeric service"]);
}

#[test]
fn escapes_and_unicode_round_trip() {
    let d = Daemon::start();
    let msg = "quote \" backslash \\ newline \n tab \t unicode é 日本 \u{1F600} nul-free";
    let row = log_row("2023-06-01 14:30:00", "esc", "INFO", msg);
    let got = stored(&d, &[row], 1, 0, "esc");
    assert_eq!(got[0]["message"], msg);
}

#[test]
fn field_aliases_fill_absent_columns() {
    let d = Daemon::start();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"@timestamp": "2023-06-01T14:30:00.123Z", "service": "al", "severity": "INFO", "message": "at-timestamp"}),
            "timestamp",
        ),
        (
            json!({"time": "2023-06-01 14:30:00", "service": "al", "severity": "INFO", "message": "time"}),
            "timestamp",
        ),
        (
            json!({"ts": 1685629800, "service": "al", "severity": "INFO", "message": "ts"}),
            "timestamp",
        ),
        (
            json!({"created": 1685629800.75, "service": "al", "severity": "INFO", "message": "created"}),
            "timestamp",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service": "al", "levelname": "warning", "message": "levelname"}),
            "severity",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service": "al", "level": "debug", "message": "level"}),
            "severity",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service": "al", "log_level": "notice", "message": "log_level"}),
            "severity",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "app_name": "al", "severity": "INFO", "message": "app_name"}),
            "service",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "app": "al", "severity": "INFO", "message": "app"}),
            "service",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service_name": "al", "severity": "INFO", "message": "service_name"}),
            "service",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service": "al", "severity": "INFO", "message": "host", "host": "h-host"}),
            "server_id",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service": "al", "severity": "INFO", "message": "hostname", "hostname": "h-hostname"}),
            "server_id",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service": "al", "severity": "INFO", "msg": "msg"}),
            "message",
        ),
        (
            json!({"timestamp": "2023-06-01 14:30:00", "service": "al", "severity": "INFO", "formatted_message": "formatted_message"}),
            "message",
        ),
    ];
    let rows: Vec<Value> = cases.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(d.ingest("system_logs", &rows, true), (14, 0));
    let v = d.pipe_json("recent_logs", &[("service", "al")]);
    assert_eq!(v["rows"], 14);
    let by_msg = |m: &str| -> Value {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["message"] == m)
            .unwrap_or_else(|| panic!("no row {m}"))
            .clone()
    };
    for m in ["at-timestamp", "time", "ts", "created"] {
        assert_eq!(by_msg(m)["timestamp"], "2023-06-01 14:30:00", "{m}");
    }
    assert_eq!(by_msg("levelname")["severity"], "WARNING");
    assert_eq!(by_msg("level")["severity"], "DEBUG");
    assert_eq!(by_msg("log_level")["severity"], "NOTICE");
    assert_eq!(by_msg("host")["server_id"], "h-host");
    assert_eq!(by_msg("hostname")["server_id"], "h-hostname");
    by_msg("msg");
    by_msg("formatted_message");
}

#[test]
fn the_column_wins_over_its_aliases_and_aliases_go_in_documented_order() {
    let d = Daemon::start();
    let rows = vec![
        json!({"timestamp": "2023-06-01 14:30:00", "time": "2000-01-01", "@timestamp": "2001-01-01",
               "service": "prec", "app_name": "other", "severity": "error", "levelname": "INFO",
               "message": "column", "msg": "alias", "server_id": "col", "host": "alias"}),
        json!({"@timestamp": "2023-06-01 14:30:01", "time": "2000-01-01", "ts": 1, "created": 2,
               "app_name": "prec", "app": "x", "service_name": "y",
               "levelname": "WARNING", "level": 30, "log_level": "z",
               "msg": "aliases", "formatted_message": "WARNING aliases",
               "host": "h1", "hostname": "h2"}),
        json!({"time": "2023-06-01 14:30:02", "ts": 1, "app": "prec", "service_name": "y",
               "level": "notice", "log_level": "z", "formatted_message": "later aliases",
               "hostname": "h2"}),
    ];
    assert_eq!(d.ingest("system_logs", &rows, true), (3, 0));
    let v = d.pipe_json("recent_logs", &[("service", "prec")]);
    let got = v["data"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["timestamp"], "2023-06-01 14:30:00");
    assert_eq!(got[2]["severity"], "ERROR");
    assert_eq!(got[2]["message"], "column");
    assert_eq!(got[2]["server_id"], "col");
    assert_eq!(got[1]["timestamp"], "2023-06-01 14:30:01");
    assert_eq!(got[1]["severity"], "WARNING");
    assert_eq!(got[1]["message"], "aliases");
    assert_eq!(got[1]["server_id"], "h1");
    assert_eq!(got[0]["timestamp"], "2023-06-01 14:30:02");
    assert_eq!(got[0]["severity"], "NOTICE");
    assert_eq!(got[0]["message"], "later aliases");
    assert_eq!(got[0]["server_id"], "h2");
}

#[test]
fn python_logging_records_as_the_tinybird_sdk_sends_them() {
    let d = Daemon::start();
    // What tb.logger.TinybirdLoggingHandler posts for logger.error("boom %s", 7).
    let rec = json!({
        "name": "root", "level": 40, "levelname": "ERROR", "pathname": "/app/x.py",
        "filename": "x.py", "module": "x", "lineno": 12, "funcName": "main",
        "created": 1685629800.5251, "asctime": "2023-06-01T14:30:00.525100",
        "msecs": 525.1, "relativeCreated": 10.2, "thread": 1, "threadName": "MainThread",
        "process": 99, "processName": "MainProcess", "message": "boom 7",
        "args": [7], "formatted_message": "ERROR:root:boom 7", "app_name": "pyapp",
    });
    let got = stored(&d, &[rec], 1, 0, "pyapp");
    assert_eq!(got[0]["timestamp"], "2023-06-01 14:30:00");
    assert_eq!(got[0]["severity"], "ERROR");
    assert_eq!(got[0]["message"], "boom 7");
    assert_eq!(got[0]["server_id"], "");
}

#[test]
fn rows_over_one_mebibyte_are_invalid() {
    let d = Daemon::start();
    let rows = vec![
        log_row("2023-06-01 14:30:00", "huge", "INFO", &"a".repeat(900_000)),
        log_row(
            "2023-06-01 14:30:01",
            "huge",
            "INFO",
            &"b".repeat(1_100_000),
        ),
        json!({"timestamp": "2023-06-01 14:30:02", "service": "huge", "severity": "INFO",
               "message": "small", "metadata": "m".repeat(1 << 20)}),
        log_row("2023-06-01 14:30:03", "huge", "INFO", "tiny"),
    ];
    assert_eq!(d.ingest("system_logs", &rows, true), (2, 2));
    let v = d.pipe_json("recent_logs", &[("service", "huge")]);
    let got = v["data"].as_array().unwrap();
    assert_eq!(got[0]["message"], "tiny");
    assert_eq!(got[1]["message"].as_str().unwrap().len(), 900_000);
}
