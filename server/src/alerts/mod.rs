//! The alert engine: every `alert_eval_interval_secs` it reads the recent
//! per-minute counts of the keys with active thresholds (and, when
//! `alert_baseline_z` > 0, the `log_baseline_anomalies` of the last minutes)
//! through the [`Storage`] trait, moves alert states in the [`book::Book`],
//! keeps the book in `<data-dir>/alerts.json`, and hands payloads to the
//! delivery threads ([`deliver`]) without waiting for them.

pub mod book;
pub mod config;
pub mod deliver;
pub mod payload;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use logpulse_model::{BaselineQuery, LogFilter};
use parking_lot::Mutex;
use rustc_hash::FxHashSet;
use serde_json::{json, Value};
use tracing::{info, warn};

use self::book::{
    Alert, Book, Change, Detail, Key, Minute, Observation, Rules, Status, LOG_ANOMALY,
    LOG_BASELINE_ANOMALY,
};
pub use self::config::AlertConfig;
use self::deliver::{Kind, Receiver};
use logpulse_model::Storage;

/// The file of alert states in the data dir.
pub const BOOK_FILE: &str = "alerts.json";
/// How long Alertmanager keeps getting an alert after it resolved (as Prometheus).
const RESOLVED_RESEND_MS: i64 = 15 * 60_000;

pub struct Alerting {
    config: AlertConfig,
    storage: Arc<dyn Storage>,
    book: Mutex<Book>,
    path: PathBuf,
    receivers: Vec<Receiver>,
    evaluations: AtomicU64,
    failures: AtomicU64,
    last_eval_micros: AtomicU64,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Alerting {
    /// Loads the book of the previous run and starts the delivery threads.
    pub fn start(
        config: AlertConfig,
        storage: Arc<dyn Storage>,
        data_dir: &Path,
    ) -> anyhow::Result<Alerting> {
        let path = data_dir.join(BOOK_FILE);
        let book = Book::load(&path).unwrap_or_else(|e| {
            warn!(error = %e, "alert states unreadable; starting with none");
            Book::default()
        });
        let secret = config.webhook_secret.as_ref().map(|s| s.0.clone());
        let mut receivers = Vec::new();
        for base in &config.alertmanagers {
            let url = if base.ends_with("/api/v2/alerts") {
                base.clone()
            } else {
                format!("{base}/api/v2/alerts")
            };
            receivers.push(Receiver::start(
                &url,
                Kind::Alertmanager,
                config.delivery_timeout,
                None,
            )?);
        }
        for url in &config.webhooks {
            receivers.push(Receiver::start(
                url,
                Kind::Webhook,
                config.delivery_timeout,
                secret.clone(),
            )?);
        }
        info!(
            alerts = book.alerts.len(),
            receivers = receivers.len(),
            "alert engine started"
        );
        Ok(Alerting {
            config,
            storage,
            book: Mutex::new(book),
            path,
            receivers,
            evaluations: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_eval_micros: AtomicU64::new(0),
        })
    }

    fn rules(&self) -> Rules {
        Rules {
            for_minutes: self.config.for_minutes,
            resolve_ms: (self.config.resolve_minutes * 60_000.0) as i64,
        }
    }

    /// Minutes each evaluation looks at: enough for a run of
    /// `alert_for_minutes`, and the previous minute for late rows.
    fn window_minutes(&self) -> u32 {
        self.config.for_minutes + 1
    }

    /// One evaluation at `now_ms` (blocking: it reads storage and may fsync).
    pub fn evaluate(&self, now_ms: i64) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let cur_minute = (now_ms.max(0) / 60_000 * 60) as u32;
        let w = self.window_minutes();
        let first = cur_minute.saturating_sub((w - 1) * 60);
        let mut obs = Vec::new();
        let watched_keys = self.storage.threshold_minutes(first, w)?;
        // Borrowed names: no allocation per watched key and evaluation.
        let watched: FxHashSet<(&str, &str)> = (watched_keys.iter())
            .map(|k| (&*k.service, &*k.severity))
            .collect();
        for k in &watched_keys {
            let t = k.threshold_per_minute;
            let anomalous: Vec<Minute> = (k.counts.iter().enumerate())
                .filter(|(_, c)| **c as f64 > t)
                .map(|(i, c)| Minute {
                    minute: first + i as u32 * 60,
                    log_count: *c,
                    detail: Detail::Threshold {
                        threshold_per_minute: t,
                    },
                })
                .collect();
            if !anomalous.is_empty() {
                obs.push(Observation {
                    alertname: LOG_ANOMALY,
                    service: k.service.clone(),
                    severity: k.severity.clone(),
                    anomalous,
                });
            }
        }
        let baseline_on = self.config.baseline_z > 0.0;
        if baseline_on {
            obs.extend(self.baseline_observations(cur_minute + 60, w)?);
        }
        let present = |k: &Key| {
            if k.0 == LOG_ANOMALY {
                watched.contains(&(k.1.as_str(), k.2.as_str()))
            } else {
                baseline_on
            }
        };
        let changes = self.book.lock().step(now_ms, obs, present, &self.rules());
        self.take_samples();
        {
            let mut book = self.book.lock();
            if book.dirty {
                if let Err(e) = book.save(&self.path) {
                    warn!(error = %e, "could not save alert states");
                }
            }
        }
        self.deliver(now_ms, &changes);
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        self.last_eval_micros
            .store(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn baseline_observations(&self, end: u32, w: u32) -> anyhow::Result<Vec<Observation>> {
        let q = BaselineQuery {
            end,
            window_minutes: w,
            z: self.config.baseline_z,
            min_count: self.config.baseline_min_count,
            baseline_hours: self.config.baseline_hours,
            service: None,
            severity: None,
            limit: usize::MAX,
        };
        let mut by_key: BTreeMap<(Arc<str>, Arc<str>), Vec<Minute>> = BTreeMap::new();
        for r in self.storage.log_baseline_anomalies(&q)?.rows {
            by_key
                .entry((r.service.clone(), r.severity.clone()))
                .or_default()
                .push(Minute {
                    minute: r.minute,
                    log_count: r.log_count,
                    detail: Detail::Baseline {
                        baseline_mean: r.baseline_mean,
                        baseline_stddev: r.baseline_stddev,
                        z_score: r.z_score,
                    },
                });
        }
        Ok(by_key
            .into_iter()
            .map(|((service, severity), mut anomalous)| {
                anomalous.sort_by_key(|m| m.minute);
                Observation {
                    alertname: LOG_BASELINE_ANOMALY,
                    service,
                    severity,
                    anomalous,
                }
            })
            .collect())
    }

    /// Fills in up to 3 messages of the latest anomalous minute of firing
    /// alerts that lack them, reading storage outside the book's lock.
    fn take_samples(&self) {
        let wanted: Vec<(Key, u32)> = self
            .book
            .lock()
            .alerts
            .iter()
            .filter(|(_, a)| {
                a.status == Status::Firing
                    && (a.samples_minute != Some(a.last.minute)
                        || a.samples.len() < payload::SAMPLES)
            })
            .map(|(k, a)| (k.clone(), a.last.minute))
            .collect();
        for (key, minute) in wanted {
            let filter = LogFilter {
                start: Some(minute),
                end: Some(minute.saturating_add(60)),
                service: Some(key.1.clone()),
                severity: Some(key.2.clone()),
            };
            match self.storage.recent_logs(&filter, payload::SAMPLES) {
                Ok(r) => {
                    if let Some(a) = self.book.lock().alerts.get_mut(&key) {
                        a.samples = r.rows.iter().map(|l| l.message.to_string()).collect();
                        a.samples_minute = Some(minute);
                    }
                }
                Err(e) => warn!(error = %e, "could not read sample messages"),
            }
        }
    }

    fn deliver(&self, now_ms: i64, changes: &[Change]) {
        if self.receivers.is_empty() {
            return;
        }
        let book = self.book.lock();
        let interval_ms = self
            .config
            .eval_interval
            .map_or(60_000, |d| d.as_millis() as i64);
        let ends = now_ms + 4 * interval_ms.max(60_000);
        let am: Vec<Value> = book
            .alerts
            .values()
            .filter(|a| match a.status {
                Status::Firing => true,
                Status::Resolved => a
                    .resolved_at_ms
                    .is_some_and(|t| now_ms - t < RESOLVED_RESEND_MS),
                Status::Pending => false,
            })
            .map(|a| payload::am_alert(a, ends))
            .collect();
        let mut notes: BTreeMap<(&str, bool), Vec<Alert>> = BTreeMap::new();
        for c in changes {
            let (key, fired) = match c {
                Change::Fired(k) => (k, true),
                Change::Resolved(k) => (k, false),
            };
            if let Some(a) = book.alerts.get(key) {
                let name = if key.0 == LOG_ANOMALY {
                    LOG_ANOMALY
                } else {
                    LOG_BASELINE_ANOMALY
                };
                notes.entry((name, fired)).or_default().push(a.clone());
            }
        }
        drop(book);
        let am_body = (!am.is_empty()).then(|| serde_json::to_vec(&am).expect("json"));
        let hooks: Vec<Vec<u8>> = notes
            .iter()
            .map(|((name, _), alerts)| {
                serde_json::to_vec(&payload::webhook(name, alerts)).expect("json")
            })
            .collect();
        for r in &self.receivers {
            match r.kind {
                Kind::Alertmanager => {
                    if let Some(b) = &am_body {
                        r.offer(b.clone());
                    }
                }
                Kind::Webhook => hooks.iter().for_each(|b| r.offer(b.clone())),
            }
        }
    }

    /// `GET /v0/alerts`: pending and firing alerts, and those resolved in
    /// the last hour.
    pub fn snapshot(&self) -> Value {
        let book = self.book.lock();
        let alerts: Vec<Value> = book
            .alerts
            .values()
            .map(|a| {
                json!({
                    "status": match a.status {
                        Status::Pending => "pending",
                        Status::Firing => "firing",
                        Status::Resolved => "resolved",
                    },
                    "labels": payload::labels(a),
                    "annotations": payload::annotations(a),
                    "startsAt": payload::rfc3339(a.starts_at_ms),
                    "endsAt": a.resolved_at_ms.map(payload::rfc3339),
                    "fingerprint": payload::fingerprint(a),
                })
            })
            .collect();
        json!({ "alerts": alerts })
    }

    pub fn render_metrics(&self, out: &mut String) {
        let (mut pending, mut firing, mut resolved) = (0, 0, 0);
        for a in self.book.lock().alerts.values() {
            match a.status {
                Status::Pending => pending += 1,
                Status::Firing => firing += 1,
                Status::Resolved => resolved += 1,
            }
        }
        let _ = writeln!(
            out,
            "# HELP logpulse_alerts Alerts by state.\n# TYPE logpulse_alerts gauge"
        );
        for (s, n) in [
            ("pending", pending),
            ("firing", firing),
            ("resolved", resolved),
        ] {
            let _ = writeln!(out, "logpulse_alerts{{state=\"{s}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP logpulse_alert_evaluations_total Alert evaluations run.\n# TYPE logpulse_alert_evaluations_total counter\nlogpulse_alert_evaluations_total {}", self.evaluations.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP logpulse_alert_evaluation_failures_total Alert evaluations that failed.\n# TYPE logpulse_alert_evaluation_failures_total counter\nlogpulse_alert_evaluation_failures_total {}", self.failures.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP logpulse_alert_evaluation_seconds Duration of the last alert evaluation.\n# TYPE logpulse_alert_evaluation_seconds gauge\nlogpulse_alert_evaluation_seconds {}", self.last_eval_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "# HELP logpulse_alert_notifications_total Alert payloads per receiver: sent, failed attempts, dropped.\n# TYPE logpulse_alert_notifications_total counter");
        for r in &self.receivers {
            r.render_metrics(out);
        }
    }

    /// Evaluates every interval until the task is aborted.
    pub fn spawn(self: Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.config.eval_interval?;
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let me = self.clone();
                let res = tokio::task::spawn_blocking(move || me.evaluate(now_ms())).await;
                if let Ok(Err(e)) | Err(e) = res.map_err(anyhow::Error::from) {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "alert evaluation failed");
                }
            }
        }))
    }
}
