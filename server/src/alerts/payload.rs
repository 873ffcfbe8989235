//! What receivers get: Alertmanager's API v2 alert list (`POST
//! /api/v2/alerts`, as Prometheus sends it) and Alertmanager's webhook
//! payload version 4, optionally signed with HMAC-SHA256.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use logpulse_model::query::round2;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::book::{Alert, Detail, Status};

/// The header that carries `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Logpulse-Signature";
/// How many sample messages an alert carries.
pub const SAMPLES: usize = 3;

pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn minute_text(secs: u32) -> String {
    let mut s = String::new();
    logpulse_model::time::write_datetime(&mut s, secs);
    s
}

pub fn labels(a: &Alert) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("alertname", a.alertname.clone()),
        ("service", a.service.clone()),
        ("log_severity", a.severity.clone()),
    ])
}

pub fn annotations(a: &Alert) -> BTreeMap<String, String> {
    let (svc, sev, n) = (&a.service, &a.severity, a.last.log_count);
    let minute = minute_text(a.last.minute);
    let mut out = BTreeMap::new();
    match &a.last.detail {
        Detail::Threshold {
            threshold_per_minute: t,
        } => {
            let ratio = round2(n as f64 / t);
            out.insert(
                "summary".into(),
                format!("{svc} logged {n} {sev} rows in a minute, over its threshold of {t}"),
            );
            out.insert("description".into(), format!(
                "In the minute starting {minute} UTC, {svc} logged {n} rows of severity {sev}: {ratio} times its threshold of {t} per minute."
            ));
            out.insert("threshold_per_minute".into(), t.to_string());
            out.insert("excess_ratio".into(), ratio.to_string());
        }
        Detail::Baseline {
            baseline_mean: mean,
            baseline_stddev: sd,
            z_score: z,
        } => {
            let z = if z.is_finite() {
                z.to_string()
            } else {
                "inf".into()
            };
            out.insert(
                "summary".into(),
                format!("{svc} logged {n} {sev} rows in a minute, far above its baseline"),
            );
            out.insert("description".into(), format!(
                "In the minute starting {minute} UTC, {svc} logged {n} rows of severity {sev}; its per-minute baseline is {:.2} ± {:.2} (z-score {z}).",
                mean, sd
            ));
            out.insert("baseline_mean".into(), mean.to_string());
            out.insert("baseline_stddev".into(), sd.to_string());
            out.insert("z_score".into(), z);
        }
    }
    out.insert("log_count".into(), n.to_string());
    out.insert("minute".into(), minute);
    for (i, m) in a.samples.iter().take(SAMPLES).enumerate() {
        out.insert(format!("sample_message_{}", i + 1), m.clone());
    }
    out
}

pub fn fingerprint(a: &Alert) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels(a) {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One alert as Alertmanager's `POST /api/v2/alerts` wants it: firing ones
/// with `endsAt` = `firing_ends_ms`, resolved ones with their resolve time.
pub fn am_alert(a: &Alert, firing_ends_ms: i64) -> Value {
    let ends = match a.status {
        Status::Resolved => a.resolved_at_ms.unwrap_or(firing_ends_ms),
        _ => firing_ends_ms,
    };
    json!({
        "labels": labels(a),
        "annotations": annotations(a),
        "startsAt": rfc3339(a.starts_at_ms),
        "endsAt": rfc3339(ends),
    })
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Resolved => "resolved",
        _ => "firing",
    }
}

/// The pairs every map in `maps` shares.
fn common(maps: &[Map<String, Value>]) -> Map<String, Value> {
    let Some(first) = maps.first() else {
        return Map::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Alertmanager's webhook payload (version 4) for alerts of one alertname.
pub fn webhook(alertname: &str, alerts: &[Alert]) -> Value {
    let status = if alerts.iter().any(|a| a.status != Status::Resolved) {
        "firing"
    } else {
        "resolved"
    };
    let items: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "status": status_word(a.status),
                "labels": labels(a),
                "annotations": annotations(a),
                "startsAt": rfc3339(a.starts_at_ms),
                "endsAt": a.resolved_at_ms.map_or("0001-01-01T00:00:00Z".into(), rfc3339),
                "generatorURL": "",
                "fingerprint": fingerprint(a),
            })
        })
        .collect();
    let label_maps: Vec<Map<String, Value>> = items
        .iter()
        .filter_map(|i| i["labels"].as_object().cloned())
        .collect();
    let annotation_maps: Vec<Map<String, Value>> = items
        .iter()
        .filter_map(|i| i["annotations"].as_object().cloned())
        .collect();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "logpulse",
        "groupLabels": {"alertname": alertname},
        "commonLabels": common(&label_maps),
        "commonAnnotations": common(&annotation_maps),
        "externalURL": "",
        "alerts": items,
    })
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
