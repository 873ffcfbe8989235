//! Proves `GET /metrics` serves valid Prometheus text with the documented counters and gauges: rows ingested and quarantined, requests and latencies per route, segment count and bytes, and index lag.

mod common;

use common::*;
use serde_json::json;

/// (name with labels, value) of every sample line; asserts the text format.
fn samples(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "bad comment line {line:?}"
            );
            if let Some(t) = rest.strip_prefix("TYPE ") {
                let kind = t.split_whitespace().nth(1).unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "bad TYPE line {line:?}"
                );
            }
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let metric = name.split('{').next().unwrap();
        assert!(
            !metric.is_empty()
                && metric
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name.contains('{') {
            assert!(name.ends_with('}'), "bad labels in {line:?}");
        }
        out.push((name.to_string(), v));
    }
    out
}

fn value(s: &[(String, f64)], name: &str) -> f64 {
    s.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .1
}

#[test]
fn metrics_expose_the_documented_counters() {
    let d = Daemon::start();
    let rows = vec![
        log_row("2023-06-01 14:30:00", "m", "INFO", "a"),
        log_row("2023-06-01 15:30:00", "m", "INFO", "b"),
        log_row("2023-06-01 16:30:00", "m", "INFO", "c"),
        json!({"bad": true}),
    ];
    d.ingest("system_logs", &rows, true);
    d.ingest("system_logs", &rows[..1], false);
    d.pipe_json("recent_logs", &[]);
    d.pipe_json("error_distribution", &[]);
    d.get("/v0/pipes/nope.json");

    let r = d.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.content_type().starts_with("text/plain"),
        "{}",
        r.content_type()
    );
    let text = r.text();
    let s = samples(&text);

    assert_eq!(value(&s, "logpulse_rows_ingested_total"), 4.0);
    assert_eq!(value(&s, "logpulse_rows_quarantined_total"), 1.0);
    if clickhouse::enabled() {
        // The ClickHouse backend's own figures instead of segments.
        // 3 + 1 quarantined + 1
        assert_eq!(value(&s, "logpulse_clickhouse_rows_stored_total"), 5.0);
        assert_eq!(value(&s, "logpulse_clickhouse_appends_failed_total"), 0.0);
        assert_eq!(value(&s, "logpulse_clickhouse_endpoints"), 2.0);
    } else {
        assert!(
            value(&s, "logpulse_segments") >= 3.0,
            "three hours, three segments at least"
        );
        assert!(value(&s, "logpulse_segment_bytes") > 0.0);
        // The lag is rows not yet in the index: it is at most what was
        // ingested, and falls to zero once the indexer catches up.
        let lag = value(&s, "logpulse_index_lag_rows");
        assert!((0.0..=5.0).contains(&lag), "index lag {lag}");
    }
    let t0 = std::time::Instant::now();
    while !clickhouse::enabled() {
        let lag = value(
            &samples(&d.get("/metrics").text()),
            "logpulse_index_lag_rows",
        );
        if lag == 0.0 {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "the index lag stays at {lag}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        value(&s, "logpulse_datasource_rows{datasource=\"system_logs\"}"),
        4.0
    );
    assert_eq!(
        value(
            &s,
            "logpulse_datasource_rows{datasource=\"system_logs_quarantine\"}"
        ),
        1.0
    );

    // Requests per route and status.
    assert_eq!(
        value(
            &s,
            "logpulse_http_requests_total{route=\"events\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "logpulse_http_requests_total{route=\"events\",status=\"202\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "logpulse_http_requests_total{route=\"pipes\",status=\"200\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "logpulse_http_requests_total{route=\"pipes\",status=\"404\"}"
        ),
        1.0
    );
    // Latency histograms per route: cumulative buckets ending in +Inf = count.
    for route in ["events", "pipes"] {
        let buckets: Vec<f64> = s
            .iter()
            .filter(|(n, _)| {
                n.starts_with(&format!(
                    "logpulse_http_request_duration_seconds_bucket{{route=\"{route}\","
                ))
            })
            .map(|(_, v)| *v)
            .collect();
        assert!(buckets.len() >= 2, "no latency buckets for {route}");
        assert!(
            buckets.windows(2).all(|w| w[0] <= w[1]),
            "buckets not cumulative: {buckets:?}"
        );
        let count = value(
            &s,
            &format!("logpulse_http_request_duration_seconds_count{{route=\"{route}\"}}"),
        );
        let inf = value(
            &s,
            &format!(
                "logpulse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}}"
            ),
        );
        assert_eq!(*buckets.last().unwrap(), inf);
        assert_eq!(inf, count);
        assert!(
            value(
                &s,
                &format!("logpulse_http_request_duration_seconds_sum{{route=\"{route}\"}}")
            ) > 0.0
        );
    }
    assert!(text.contains("# TYPE logpulse_http_request_duration_seconds histogram"));

    // Counters only grow.
    d.ingest("system_logs", &rows[..2], true);
    let s2 = samples(&d.get("/metrics").text());
    assert_eq!(value(&s2, "logpulse_rows_ingested_total"), 6.0);
    assert_eq!(
        value(
            &s2,
            "logpulse_http_requests_total{route=\"events\",status=\"200\"}"
        ),
        2.0
    );
}

#[test]
fn metrics_need_a_token() {
    let d = Daemon::start();
    d.get_as("/metrics", None).assert_error(401);
    d.get_as("/metrics", Some("bad")).assert_error(403);
    assert_eq!(
        d.get_as(&format!("/metrics?token={}", d.token), None)
            .status,
        200
    );
}
