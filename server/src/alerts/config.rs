//! The alert engine's settings, resolved from flags, environment and file.

use std::time::Duration;

use crate::config::{Args, FileConfig};

/// A string that `Debug` never shows.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

#[derive(Clone, Debug)]
pub struct AlertConfig {
    /// `None`: alerting is off.
    pub eval_interval: Option<Duration>,
    pub for_minutes: u32,
    pub resolve_minutes: f64,
    pub baseline_z: f64,
    pub baseline_min_count: u64,
    pub baseline_hours: u32,
    pub alertmanagers: Vec<String>,
    pub webhooks: Vec<String>,
    pub webhook_secret: Option<Secret>,
    pub delivery_timeout: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            eval_interval: Some(Duration::from_secs(15)),
            for_minutes: 1,
            resolve_minutes: 5.0,
            baseline_z: 0.0,
            baseline_min_count: 10,
            baseline_hours: 24,
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
            webhook_secret: None,
            delivery_timeout: Duration::from_millis(5000),
        }
    }
}

fn urls(v: Option<&String>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for u in v.map(|s| s.split(',')).into_iter().flatten() {
        let u = u.trim();
        if u.is_empty() {
            continue;
        }
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            anyhow::bail!("alert receiver {u:?} is not an http:// or https:// URL");
        }
        out.push(u.trim_end_matches('/').to_string());
    }
    Ok(out)
}

impl AlertConfig {
    pub fn resolve(args: &Args, file: &FileConfig) -> anyhow::Result<AlertConfig> {
        let d = AlertConfig::default();
        let interval = args
            .alert_eval_interval_secs
            .or(file.alert_eval_interval_secs)
            .unwrap_or(15.0);
        if !(interval.is_finite() && (interval == 0.0 || (0.1..=86_400.0).contains(&interval))) {
            anyhow::bail!("alert_eval_interval_secs must be 0 (off) or within 0.1..=86400");
        }
        let resolve = args
            .alert_resolve_minutes
            .or(file.alert_resolve_minutes)
            .unwrap_or(d.resolve_minutes);
        if !(resolve.is_finite() && resolve > 0.0 && resolve <= 10_080.0) {
            anyhow::bail!("alert_resolve_minutes must be > 0 and at most 10080");
        }
        let z = args
            .alert_baseline_z
            .or(file.alert_baseline_z)
            .unwrap_or(0.0);
        if !(z.is_finite() && z >= 0.0) {
            anyhow::bail!("alert_baseline_z must be a number >= 0");
        }
        let hours = args
            .alert_baseline_hours
            .or(file.alert_baseline_hours)
            .unwrap_or(d.baseline_hours);
        if !(1..=168).contains(&hours) {
            anyhow::bail!("alert_baseline_hours must be within 1..=168");
        }
        let for_minutes = args
            .alert_for_minutes
            .or(file.alert_for_minutes)
            .unwrap_or(1);
        if !(1..=1440).contains(&for_minutes) {
            anyhow::bail!("alert_for_minutes must be within 1..=1440");
        }
        Ok(AlertConfig {
            eval_interval: (interval > 0.0).then(|| Duration::from_secs_f64(interval)),
            for_minutes,
            resolve_minutes: resolve,
            baseline_z: z,
            baseline_min_count: args
                .alert_baseline_min_count
                .or(file.alert_baseline_min_count)
                .unwrap_or(d.baseline_min_count),
            baseline_hours: hours,
            alertmanagers: urls(
                args.alertmanager_url
                    .as_ref()
                    .or(file.alertmanager_url.as_ref()),
            )?,
            webhooks: urls(
                args.alert_webhook_url
                    .as_ref()
                    .or(file.alert_webhook_url.as_ref()),
            )?,
            webhook_secret: args
                .alert_webhook_secret
                .clone()
                .or(file.alert_webhook_secret.clone())
                .filter(|s| !s.is_empty())
                .map(Secret),
            delivery_timeout: Duration::from_millis(
                args.alert_delivery_timeout_ms
                    .or(file.alert_delivery_timeout_ms)
                    .unwrap_or(5000)
                    .max(1),
            ),
        })
    }
}
