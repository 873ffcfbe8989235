//! Proves the seed README's five Tinybird curl examples (two Events API appends, three pipe queries) work against logpulsed with only the base URL and token changed, run through the real `curl` when it is installed (else through an HTTP client sending the same requests).

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

const TINYBIRD: &str = "https://api.europe-west2.gcp.tinybird.co";

const LOG_BODY: &str = r#"{
    "timestamp": "2023-06-01 14:30:00",
    "server_id": "srv-001",
    "service": "authentication",
    "severity": "ERROR",
    "message": "Failed login attempt",
    "error_code": "AUTH-401",
    "resource_id": "user-123",
    "metadata": "{\"ip\": \"192.168.1.1\", \"browser\": \"Chrome\"}"
  }"#;

const THRESHOLD_BODY: &str = r#"{
    "service": "authentication",
    "severity": "ERROR",
    "threshold_per_minute": 10.5,
    "active": 1,
    "updated_at": "2023-06-01 12:00:00"
  }"#;

const RECENT_URL: &str = "https://api.europe-west2.gcp.tinybird.co/v0/pipes/recent_logs.json?token=$TB_ADMIN_TOKEN&start_time=2023-06-01%2000:00:00&end_time=2023-06-02%2000:00:00&severity=ERROR&service=authentication&limit=50";
const DISTRIBUTION_URL: &str = "https://api.europe-west2.gcp.tinybird.co/v0/pipes/error_distribution.json?token=$TB_ADMIN_TOKEN&start_time=2023-06-01%2000:00:00&end_time=2023-06-02%2000:00:00&severity=ERROR&service=authentication&limit=50";
const ANOMALIES_URL: &str = "https://api.europe-west2.gcp.tinybird.co/v0/pipes/log_anomalies.json?token=$TB_ADMIN_TOKEN&time_window_minutes=60&service=authentication&severity=ERROR&limit=50";

/// Runs one example; `post` is `Some(body)` for the `-X POST ... -H ... -d`
/// form, `None` for `-X GET url`. Returns (status, body).
fn run(d: &Daemon, url: &str, post: Option<&str>) -> (u16, Value) {
    let url = url
        .replace(TINYBIRD, &d.base)
        .replace("$TB_ADMIN_TOKEN", &d.token);
    let curl_ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let (status, body) = if curl_ok {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-w", "\n%{http_code}"]);
        match post {
            Some(b) => {
                let auth = format!("Authorization: Bearer {}", d.token);
                cmd.args(["-X", "POST", &url, "-H", &auth, "-d", b]);
            }
            None => {
                cmd.args(["-X", "GET", &url]);
            }
        }
        let out = cmd.output().expect("run curl");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap(), body.to_string())
    } else {
        eprintln!("curl not installed: sending the same requests with ureq");
        let path = url.strip_prefix(&d.base).unwrap();
        let r = match post {
            // What curl -d sends: the body as is, form content type.
            Some(b) => d.request(
                "POST",
                path,
                Some(&d.token),
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(b.as_bytes()),
            ),
            None => d.get_as(path, None),
        };
        (r.status, r.text())
    };
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"));
    (status, v)
}

fn strip_statistics(mut v: Value) -> Value {
    assert!(v["statistics"]["elapsed"].is_number(), "{v}");
    v["statistics"] = Value::Null;
    v
}

#[test]
fn the_seed_curl_examples_work_unchanged() {
    let d = Daemon::start();
    let events = format!("{TINYBIRD}/v0/events?name=system_logs");
    let (status, v) = run(&d, &events, Some(LOG_BODY));
    assert_eq!(status, 202, "{v}");
    assert_eq!(v, json!({"successful_rows": 1, "quarantined_rows": 0}));

    let thresholds = format!("{TINYBIRD}/v0/events?name=log_anomaly_thresholds");
    let (status, v) = run(&d, &thresholds, Some(THRESHOLD_BODY));
    assert_eq!(status, 202, "{v}");
    assert_eq!(v, json!({"successful_rows": 1, "quarantined_rows": 0}));

    let (status, v) = run(&d, RECENT_URL, None);
    assert_eq!(status, 200, "{v}");
    let v = strip_statistics(v);
    assert_eq!(
        v,
        json!({
            "meta": [
                {"name": "timestamp", "type": "DateTime"},
                {"name": "server_id", "type": "String"},
                {"name": "service", "type": "LowCardinality(String)"},
                {"name": "severity", "type": "LowCardinality(String)"},
                {"name": "message", "type": "String"},
                {"name": "error_code", "type": "String"},
                {"name": "resource_id", "type": "String"},
                {"name": "metadata", "type": "String"}
            ],
            "data": [{
                "timestamp": "2023-06-01 14:30:00",
                "server_id": "srv-001",
                "service": "authentication",
                "severity": "ERROR",
                "message": "Failed login attempt",
                "error_code": "AUTH-401",
                "resource_id": "user-123",
                "metadata": "{\"ip\": \"192.168.1.1\", \"browser\": \"Chrome\"}"
            }],
            "rows": 1,
            "rows_before_limit_at_least": 1,
            "statistics": null
        })
    );

    let (status, v) = run(&d, DISTRIBUTION_URL, None);
    assert_eq!(status, 200, "{v}");
    let v = strip_statistics(v);
    let row = &v["data"][0];
    assert_eq!(v["rows"], 1);
    assert_eq!(v["rows_before_limit_at_least"], 1);
    assert_eq!(row["service"], "authentication");
    assert_eq!(row["severity"], "ERROR");
    assert_eq!(row["error_count"], 1);
    assert_eq!(row["percentage"].as_f64(), Some(100.0));
    assert_eq!(row["first_seen"], "2023-06-01 14:30:00");
    assert_eq!(row["last_seen"], "2023-06-01 14:30:00");

    // The anomalies example looks at the last hour: the 2023 row is not in
    // it, so the answer is empty...
    let (status, v) = run(&d, ANOMALIES_URL, None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["rows"], 0);
    // ...until 11 failed logins (> 10.5 per minute) happen in one recent minute.
    let minute = (now_secs() - 120).div_euclid(60) * 60;
    for i in 0..11 {
        let body = LOG_BODY.replace("2023-06-01 14:30:00", &fmt_ts(minute + i));
        let (status, _) = run(&d, &events, Some(&body));
        assert_eq!(status, 202);
    }
    let (status, v) = run(&d, ANOMALIES_URL, None);
    assert_eq!(status, 200, "{v}");
    let v = strip_statistics(v);
    assert_eq!(v["rows"], 1, "{v}");
    let a = &v["data"][0];
    assert_eq!(a["minute"], fmt_ts(minute).as_str());
    assert_eq!(a["service"], "authentication");
    assert_eq!(a["severity"], "ERROR");
    assert_eq!(a["log_count"], 11);
    assert_eq!(a["threshold_per_minute"].as_f64(), Some(10.5));
    assert_eq!(a["excess_ratio"].as_f64(), Some(1.05));
}
