//! Proves the shippers' endpoints (OTLP/HTTP logs, Loki push, Elasticsearch `_bulk`) store every mapped column with the real clients (tests/py/shippers.py: OpenTelemetry SDK, python-logging-loki, elasticsearch-py, SysLogHandler), a Loki protobuf+snappy push encoded from Loki's push.proto, the OTLP JSON mapping, quarantine of bad records beside the good ones, and the Events API's token scopes and limits on every new route.

mod common;

use std::io::Write;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// Rows of a service, newest first, over all time.
fn rows(d: &Daemon, service: &str) -> Vec<Value> {
    let v = d.pipe_json(
        "recent_logs",
        &[
            ("service", service),
            ("start_time", "1970-01-01 00:00:00"),
            ("limit", "1000"),
        ],
    );
    v["data"].as_array().unwrap().clone()
}

#[test]
fn the_shippers_python_clients_store_every_mapped_column() {
    let py =
        match python_with("opentelemetry.exporter.otlp.proto.http, logging_loki, elasticsearch") {
            Ok(py) => py,
            Err(why) => return skip(&why),
        };
    let (tcp, udp) = (free_port(), free_port());
    let d = Daemon::options()
        .arg("--syslog-tcp-listen")
        .arg(format!("127.0.0.1:{tcp}"))
        .arg("--syslog-udp-listen")
        .arg(format!("127.0.0.1:{udp}"))
        .start();
    let append = d.create_token("shipper", &["DATASOURCES:APPEND:system_logs"]);
    let script = tests_dir().join("py").join("shippers.py");
    run_script(
        Command::new(&py)
            .arg(&script)
            .args([
                &d.base,
                &d.token,
                &append,
                &tcp.to_string(),
                &udp.to_string(),
            ])
            .env("OTEL_SDK_DISABLED", "false"),
        "shippers: all checks passed",
    );
}

/// Loki's `pkg/push/push.proto`, written out for this test from the .proto
/// (independently of the server's copy).
mod push {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

#[test]
fn a_loki_protobuf_snappy_push_maps_labels_and_structured_metadata() {
    use prost::Message;
    let d = Daemon::start();
    let ts = |s| {
        Some(push::Timestamp {
            seconds: s,
            nanos: 5,
        })
    };
    let pair = |n: &str, v: &str| push::LabelPairAdapter {
        name: n.into(),
        value: v.into(),
    };
    let req = push::PushRequest {
        streams: vec![
            push::StreamAdapter {
                labels: r#"{job="varlogs", service_name="proto-svc", instance="node-1:9100", env="prod"}"#.into(),
                entries: vec![
                    push::EntryAdapter { timestamp: ts(1_700_000_000), line: "first".into(), structured_metadata: vec![pair("detected_level", "warning"), pair("trace_id", "abc")] },
                    push::EntryAdapter { timestamp: ts(1_700_000_001), line: "second".into(), structured_metadata: vec![pair("level", "fatal"), pair("error.type", "OOM"), pair("resource.id", "pod-7")] },
                ],
                hash: 0,
            },
            push::StreamAdapter {
                labels: r#"{env="prod"}"#.into(),
                entries: vec![push::EntryAdapter { timestamp: ts(1_700_000_002), line: "no service".into(), structured_metadata: vec![] }],
                hash: 0,
            },
        ],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let r = d.request(
        "POST",
        "/loki/api/v1/push",
        Some(&d.token),
        &[("Content-Type", "application/x-protobuf")],
        Some(&body),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let got = rows(&d, "proto-svc");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["timestamp"], "2023-11-14 22:13:20");
    assert_eq!(got[1]["severity"], "WARN");
    assert_eq!(got[1]["server_id"], "node-1:9100");
    assert_eq!(got[1]["message"], "first");
    let meta: Value = serde_json::from_str(got[1]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(
        meta,
        json!({"job": "varlogs", "env": "prod", "trace_id": "abc"})
    );
    assert_eq!(got[0]["severity"], "CRITICAL");
    assert_eq!(got[0]["error_code"], "OOM");
    assert_eq!(got[0]["resource_id"], "pod-7");
    assert_eq!(d.row_count("system_logs_quarantine"), 1);
    // Not snappy: 400, nothing stored.
    let r = d.request(
        "POST",
        "/loki/api/v1/push",
        Some(&d.token),
        &[("Content-Type", "application/x-protobuf")],
        Some(&req.encode_to_vec()),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn loki_json_with_gzip_and_a_bad_entry_stores_the_good_ones() {
    let d = Daemon::start();
    let body = json!({"streams": [{
        "stream": {"app": "json-svc", "hostname": "h9", "level": "err"},
        "values": [["1700000000000000000", "one"], ["1700000001000000000", "two", {"severity": "notice", "user": "u1"}],
                   ["yesterday", "bad time"], ["1700000002000000000"]]
    }]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.to_string().as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let r = d.request(
        "POST",
        "/loki/api/v1/push",
        Some(&d.token),
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        Some(&gz),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let got = rows(&d, "json-svc");
    assert_eq!(got.len(), 2);
    assert_eq!(
        (
            &got[0]["message"],
            &got[0]["severity"],
            &got[0]["server_id"]
        ),
        (&json!("two"), &json!("INFO"), &json!("h9"))
    );
    assert_eq!(
        serde_json::from_str::<Value>(got[0]["metadata"].as_str().unwrap()).unwrap(),
        json!({"level": "err", "user": "u1"})
    );
    assert_eq!(
        (&got[1]["message"], &got[1]["severity"]),
        (&json!("one"), &json!("ERROR"))
    );
    assert_eq!(d.row_count("system_logs_quarantine"), 2);
}

#[test]
fn otlp_json_follows_the_spec_mapping() {
    let d = Daemon::start();
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "json-otlp"}},
            {"key": "host.name", "value": {"stringValue": "vm-3"}},
            {"key": "k8s.pod.uid", "value": {"stringValue": "p-1"}}]},
        "scopeLogs": [{"scope": {"name": "my.lib", "version": "2.0"}, "logRecords": [
            {"timeUnixNano": "1700000000500000000", "severityNumber": 17, "severityText": "Error",
             "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "hi"}}, {"key": "n", "value": {"intValue": "3"}}]}},
             "attributes": [{"key": "exception.type", "value": {"stringValue": "IOError"}}, {"key": "retries", "value": {"intValue": "2"}}]},
            {"observedTimeUnixNano": "1700000001000000000", "severityText": "notice", "body": {"stringValue": "observed only"}},
            {"severityNumber": 9, "body": {"stringValue": "no time"}}
        ]}]
    }]});
    let r = d.request(
        "POST",
        "/v1/logs",
        Some(&d.token),
        &[("Content-Type", "application/json")],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type(), "application/json");
    let answer = r.json();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"]
            .as_i64()
            .or_else(|| answer["partialSuccess"]["rejectedLogRecords"]
                .as_str()
                .and_then(|s| s.parse().ok())),
        Some(1),
        "{answer}"
    );
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("timestamp"),
        "{answer}"
    );
    let got = rows(&d, "json-otlp");
    assert_eq!(got.len(), 2);
    let first = &got[1];
    assert_eq!(first["timestamp"], "2023-11-14 22:13:20");
    assert_eq!(first["severity"], "ERROR");
    assert_eq!(first["server_id"], "vm-3");
    assert_eq!(first["error_code"], "IOError");
    assert_eq!(
        serde_json::from_str::<Value>(first["message"].as_str().unwrap()).unwrap(),
        json!({"msg": "hi", "n": 3})
    );
    let meta: Value = serde_json::from_str(first["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(
        meta,
        json!({"retries": 2, "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
        "scope": "my.lib", "scope_version": "2.0", "resource": {"k8s.pod.uid": "p-1"}})
    );
    assert_eq!(
        (
            &got[0]["timestamp"],
            &got[0]["severity"],
            &got[0]["message"]
        ),
        (
            &json!("2023-11-14 22:13:21"),
            &json!("INFO"),
            &json!("observed only")
        )
    );
}

#[test]
fn every_shipper_route_checks_the_token_scope_and_the_limits() {
    let d = Daemon::options()
        .arg("--max-body-bytes")
        .arg("2000")
        .start();
    let reader = d.create_token("reader", &["DATASOURCES:READ:system_logs"]);
    let appender = d.create_token("appender", &["DATASOURCES:APPEND:system_logs"]);
    let doc = format!(
        "{{\"index\":{{}}}}\n{}\n",
        json!({"@timestamp": "2023-06-01T00:00:00Z", "service": "auth-es", "message": "m"})
    );
    let loki = json!({"streams": [{"stream": {"job": "auth-loki"}, "values": [["1700000000000000000", "x"]]}]}).to_string();
    let otlp = json!({"resourceLogs": []}).to_string();
    let routes = [
        ("/es/_bulk", doc.as_str(), "application/x-ndjson"),
        ("/loki/api/v1/push", loki.as_str(), "application/json"),
        ("/v1/logs", otlp.as_str(), "application/json"),
    ];
    for (path, body, ct) in routes {
        let ct = [("Content-Type", ct)];
        assert_eq!(
            d.request("POST", path, None, &ct, Some(body.as_bytes()))
                .status,
            401,
            "{path}"
        );
        assert_eq!(
            d.request("POST", path, Some("nope"), &ct, Some(body.as_bytes()))
                .status,
            403,
            "{path}"
        );
        assert_eq!(
            d.request("POST", path, Some(&reader), &ct, Some(body.as_bytes()))
                .status,
            403,
            "{path}"
        );
        let basic = format!("Basic {}", b64(&format!("anyone:{appender}")));
        let r = d.request(
            "POST",
            path,
            None,
            &[ct[0], ("Authorization", &basic)],
            Some(body.as_bytes()),
        );
        assert!(
            r.status < 300,
            "{path} with Basic: {} {}",
            r.status,
            r.text()
        );
        let big = vec![b' '; 3000];
        assert_eq!(
            d.request("POST", path, Some(&appender), &ct, Some(&big))
                .status,
            413,
            "{path}"
        );
    }
    assert_eq!(rows(&d, "auth-es").len(), 1);
    assert_eq!(rows(&d, "auth-loki").len(), 1);
}

fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn elasticsearch_routes_answer_as_elasticsearch() {
    let d = Daemon::start();
    for path in ["/es/", "/es"] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-elastic-product"), Some("Elasticsearch"));
        assert!(r.json()["version"]["number"]
            .as_str()
            .unwrap()
            .starts_with("8."));
    }
    let r = d.request("HEAD", "/es/", Some(&d.token), &[], None);
    assert_eq!(
        (r.status, r.header("x-elastic-product")),
        (200, Some("Elasticsearch"))
    );
    let r = d.get("/es/_license");
    assert_eq!(
        (r.status, r.header("x-elastic-product")),
        (404, Some("Elasticsearch"))
    );
    assert_eq!(
        d.get_as("/es/", None).header("x-elastic-product"),
        Some("Elasticsearch")
    );
    let body = [
        json!({"create": {"_index": "idx", "_id": "a1"}}).to_string(),
        json!({"timestamp": "2023-06-01 10:00:00", "service": "bulk-svc", "severity": "warning", "message": "ok"}).to_string(),
        json!({"delete": {"_id": "x"}}).to_string(),
        json!({"index": {}}).to_string(),
        json!({"service": "bulk-svc", "message": "no time"}).to_string(),
    ]
    .join("\n");
    let r = d.post("/es/myindex/_bulk", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["errors"], true);
    assert_eq!(v["items"][0]["create"]["status"], 201);
    assert_eq!(v["items"][0]["create"]["_id"], "a1");
    assert_eq!(v["items"][0]["create"]["_index"], "idx");
    assert_eq!(v["items"][1]["delete"]["status"], 400);
    assert_eq!(v["items"][2]["index"]["status"], 400);
    assert_eq!(v["items"][2]["index"]["_index"], "myindex");
    assert!(v["items"][2]["index"]["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("timestamp"));
    let got = rows(&d, "bulk-svc");
    assert_eq!(
        (&got[0]["severity"], &got[0]["message"]),
        (&json!("WARN"), &json!("ok"))
    );
    assert_eq!(d.row_count("system_logs_quarantine"), 1);
    // An unknown action refuses the whole request: nothing more is stored.
    let bad = format!(
        "{}\n{}\n{{\"frobnicate\":{{}}}}\n",
        json!({"index": {}}),
        json!({"timestamp": "2023-06-01 10:00:00", "service": "bulk-svc", "message": "x"})
    );
    assert_eq!(d.post("/es/_bulk", bad.as_bytes()).status, 400);
    assert_eq!(rows(&d, "bulk-svc").len(), 1);
}
