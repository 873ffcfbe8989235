//! Proves the alert engine end to end against real receivers: a burst over
//! a threshold reaches Debian's Alertmanager within 3 s of being
//! acknowledged, with its labels and sample messages; it resolves after the
//! quiet time; a restart keeps `startsAt` and announces nothing new.
//! Webhooks get Alertmanager's v4 payloads, signed; a receiver that is down
//! or slow does not slow ingestion and gets the alert once back.
//! `GET /v0/alerts` needs `PIPES:READ:log_anomalies` or the admin token.
//!
//! Short settings: evaluations every 0.5 s and a quiet time of 0.1 minute,
//! so each test waits at most about a minute for the minute of its burst to
//! end. Under CI=true a missing Alertmanager fails the test.

mod alerting;
mod common;

use std::time::{Duration, Instant};

use alerting::*;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

const SECRET: &str = "s3cret-for-hmac";

/// Waits until the second of the minute leaves room for the test's steps
/// before the burst's minute ends (at most 20 s).
fn early_in_a_minute() -> i64 {
    while now_secs() % 60 > 40 {
        std::thread::sleep(Duration::from_millis(200));
    }
    now_secs()
}

fn daemon(receivers: &[String]) -> Daemon {
    let mut o = Daemon::options()
        .arg("--alert-eval-interval-secs")
        .arg("0.5")
        .arg("--alert-resolve-minutes")
        .arg("0.1")
        .arg("--alert-webhook-secret")
        .arg(SECRET);
    for r in receivers {
        o = o.arg(r.clone());
    }
    o.start()
}

fn threshold(d: &Daemon, service: &str, per_minute: f64) {
    d.ingest(
        "log_anomaly_thresholds",
        &[json!({"service": service, "severity": "error", "threshold_per_minute": per_minute})],
        true,
    );
}

/// `n` ERROR rows of `service` at `ts`, acknowledged durable.
fn burst(d: &Daemon, service: &str, ts: i64, n: usize) -> Instant {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            log_row(
                &fmt_ts(ts),
                service,
                "error",
                &format!("payment failed #{i}"),
            )
        })
        .collect();
    d.ingest("system_logs", &rows, true);
    Instant::now()
}

fn our_alerts(d: &Daemon, service: &str) -> Vec<Value> {
    let v = d.get("/v0/alerts").ok_json();
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["service"] == service)
        .cloned()
        .collect()
}

fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn alertmanager_gets_the_burst_keeps_starts_at_over_a_restart_and_sees_it_resolve() {
    let Some(am) = Alertmanager::start() else {
        return;
    };
    let mut d = daemon(&["--alertmanager-url".into(), am.base.clone()]);
    threshold(&d, "checkout", 5.0);
    let ts = early_in_a_minute();
    let acked = burst(&d, "checkout", ts, 12);
    let a =
        wait_until(Duration::from_secs(3), || am.alerts("checkout").pop()).unwrap_or_else(|| {
            panic!(
                "no alert in Alertmanager 3 s after the ack; log: {}",
                d.log()
            )
        });
    println!(
        "visible in Alertmanager {} ms after the ack",
        acked.elapsed().as_millis()
    );
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "LogAnomaly", "{a}");
    assert_eq!(labels["service"], "checkout");
    assert_eq!(labels["log_severity"], "ERROR");
    assert!(labels.get("severity").is_none(), "severity stays free: {a}");
    let ann = &a["annotations"];
    assert_eq!(ann["log_count"], "12", "{a}");
    assert_eq!(ann["threshold_per_minute"], "5");
    assert_eq!(ann["excess_ratio"], "2.4");
    assert_eq!(ann["minute"], fmt_ts(ts / 60 * 60));
    assert!(ann["summary"].as_str().unwrap().contains("checkout"));
    assert!(ann["description"].as_str().is_some());
    // Samples are read right after the first firing; Alertmanager gets them
    // with the next re-send.
    let a = wait_until(Duration::from_secs(3), || {
        am.alerts("checkout")
            .pop()
            .filter(|a| a["annotations"].get("sample_message_3").is_some())
    })
    .expect("sample messages reach Alertmanager");
    assert!(a["annotations"]["sample_message_1"]
        .as_str()
        .unwrap()
        .starts_with("payment failed #"));
    assert_eq!(a["status"]["state"], "active");
    let starts = a["startsAt"].as_str().unwrap().to_string();
    let ours = our_alerts(&d, "checkout");
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["status"], "firing");
    let our_starts = ours[0]["startsAt"].as_str().unwrap().to_string();

    d.restart();
    std::thread::sleep(Duration::from_millis(1500));
    let ours = our_alerts(&d, "checkout");
    assert_eq!(ours[0]["status"], "firing", "{ours:?}");
    assert_eq!(
        ours[0]["startsAt"],
        our_starts.as_str(),
        "startsAt kept over the restart"
    );
    let a = am
        .alerts("checkout")
        .pop()
        .expect("still firing in Alertmanager");
    assert_eq!(a["startsAt"], starts.as_str());

    // The minute ends, then 0.1 minute of quiet: resolved in both places.
    let resolved = wait_until(Duration::from_secs(90), || {
        am.alerts("checkout").is_empty().then_some(())
    });
    assert!(resolved.is_some(), "never resolved in Alertmanager");
    let quiet_from = (ts / 60 + 1) * 60 + 6;
    assert!(now_secs() >= quiet_from, "resolved before its quiet time");
    let ours = our_alerts(&d, "checkout");
    assert_eq!(ours[0]["status"], "resolved", "{ours:?}");
    assert!(ours[0]["endsAt"].is_string());
}

fn check_signature(h: &Hook) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&h.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        h.signature.as_deref(),
        Some(format!("sha256={want}").as_str())
    );
}

/// Median and max latency of `n` acknowledged ingest requests of 200 rows.
fn ingest_latency(d: &Daemon, n: usize) -> (Duration, Duration) {
    let ts = fmt_ts(now_secs() - 7200);
    let rows: Vec<Value> = (0..200)
        .map(|i| log_row(&ts, "steady", "info", &format!("r{i}")))
        .collect();
    let mut lat: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            d.ingest("system_logs", &rows, false);
            t.elapsed()
        })
        .collect();
    lat.sort();
    (lat[n / 2], lat[n - 1])
}

#[test]
fn webhooks_get_firing_and_resolved_and_a_down_or_slow_receiver_delays_nothing() {
    let good = WebhookServer::start(0, Duration::ZERO);
    let slow = WebhookServer::start(0, Duration::from_millis(1500));
    let down_port = free_port();
    let down_url = format!("http://127.0.0.1:{down_port}/hook");
    let d = daemon(&[
        "--alert-webhook-url".into(),
        format!("{},{},{down_url}", good.url, slow.url),
    ]);
    threshold(&d, "billing", 3.0);
    let (before_med, before_max) = ingest_latency(&d, 30);

    let ts = early_in_a_minute();
    burst(&d, "billing", ts, 8);
    let fired = good
        .wait_for("firing", "billing", Duration::from_secs(3))
        .expect("firing payload within 3 s");
    check_signature(&fired);
    let v = fired.json();
    assert_eq!(v["version"], "4");
    assert_eq!(v["groupLabels"], json!({"alertname": "LogAnomaly"}));
    assert_eq!(v["commonLabels"]["service"], "billing");
    let alert = &v["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["log_severity"], "ERROR");
    assert_eq!(alert["annotations"]["log_count"], "8");
    assert!(alert["fingerprint"].as_str().is_some_and(|f| !f.is_empty()));

    // With one receiver down and one slow, ingestion is as fast as before.
    let (during_med, during_max) = ingest_latency(&d, 30);
    println!(
        "ingest of 200 rows: median {before_med:?} max {before_max:?} before; \
         median {during_med:?} max {during_max:?} with a receiver down and one slow"
    );
    assert!(
        during_med <= before_med * 3 + Duration::from_millis(20),
        "ingestion slowed down: {before_med:?} -> {during_med:?}"
    );
    let m = d.get("/metrics").text();
    let failed = m
        .lines()
        .find(|l| {
            l.contains(&format!("127.0.0.1:{down_port}/hook")) && l.contains("result=\"failed\"")
        })
        .expect("failed counter of the down receiver");
    assert!(!failed.ends_with(" 0"), "{failed}");

    // The down receiver comes back and gets the alert; the slow one got it.
    let back = WebhookServer::start(down_port, Duration::ZERO);
    back.wait_for("firing", "billing", Duration::from_secs(20))
        .expect("the receiver that was down gets the alert once back");
    slow.wait_for("firing", "billing", Duration::from_secs(10))
        .expect("the slow receiver gets the alert");

    let resolved = good
        .wait_for("resolved", "billing", Duration::from_secs(90))
        .expect("resolved payload");
    check_signature(&resolved);
    let v = resolved.json();
    assert_eq!(v["alerts"][0]["status"], "resolved");
    assert!(
        v["alerts"][0]["endsAt"].as_str().unwrap() > v["alerts"][0]["startsAt"].as_str().unwrap()
    );
    let fired_count = good
        .hooks()
        .iter()
        .filter(|h| h.json()["status"] == "firing")
        .count();
    assert_eq!(fired_count, 1, "one firing notification per alert");
    let m = d.get("/metrics").text();
    assert!(m.contains("logpulse_alerts{state=\"resolved\"} 1"), "{m}");
}

#[test]
fn alerts_route_needs_the_log_anomalies_scope_and_baselines_alert_when_on() {
    let d = Daemon::options()
        .arg("--alert-eval-interval-secs")
        .arg("0.5")
        .arg("--alert-baseline-z")
        .arg("3")
        .arg("--alert-baseline-hours")
        .arg("1")
        .start();
    let reader = d.create_token("reader", &["PIPES:READ:log_anomalies"]);
    let other = d.create_token("other", &["PIPES:READ:recent_logs"]);
    assert_eq!(
        d.get_as("/v0/alerts", Some(&reader)).ok_json()["alerts"],
        json!([])
    );
    d.get_as("/v0/alerts", Some(&other)).assert_error(403);
    d.get_as("/v0/alerts", None).assert_error(401);

    // A steady 2 rows every other minute for the hour before, then a burst.
    let now = now_secs();
    let cur = now / 60 * 60;
    let mut rows: Vec<Value> = Vec::new();
    for m in (2..=64).step_by(2) {
        for i in 0..2 {
            rows.push(log_row(
                &fmt_ts(cur - m * 60 + 1),
                "search",
                "warn",
                &format!("slow {m}.{i}"),
            ));
        }
    }
    rows.extend((0..40).map(|i| log_row(&fmt_ts(now), "search", "warn", &format!("timeout {i}"))));
    d.ingest("system_logs", &rows, true);
    let a = wait_until(Duration::from_secs(3), || {
        our_alerts(&d, "search")
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "LogBaselineAnomaly")
    })
    .expect("a LogBaselineAnomaly alert");
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["log_severity"], "WARN");
    assert_eq!(a["annotations"]["log_count"], "40");
    assert!(
        a["annotations"]["z_score"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 3.0
    );
}
