//! Alert states per (alertname, service, severity): pending → firing →
//! resolved, the rules that move them, and their file in the data dir.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub const LOG_ANOMALY: &str = "LogAnomaly";
pub const LOG_BASELINE_ANOMALY: &str = "LogBaselineAnomaly";
/// How long resolved alerts stay in the book (and in `GET /v0/alerts`).
const RESOLVED_KEEP_MS: i64 = 3_600_000;
const FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Firing,
    Resolved,
}

/// Why a minute was anomalous.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Detail {
    Threshold {
        threshold_per_minute: f64,
    },
    Baseline {
        baseline_mean: f64,
        baseline_stddev: f64,
        z_score: f64,
    },
}

/// An anomalous minute of a key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Minute {
    /// Start of the minute, Unix seconds.
    pub minute: u32,
    pub log_count: u64,
    pub detail: Detail,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Alert {
    pub alertname: String,
    pub service: String,
    pub severity: String,
    pub status: Status,
    /// When the alert became pending (Alertmanager's `startsAt`), Unix ms.
    pub starts_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    /// The latest anomalous minute seen.
    pub last: Minute,
    #[serde(default)]
    pub samples: Vec<String>,
    /// The minute `samples` were taken from.
    #[serde(default)]
    pub samples_minute: Option<u32>,
}

/// A key's anomalous minutes in this evaluation, oldest first (non-empty).
pub struct Observation {
    pub alertname: &'static str,
    pub service: Arc<str>,
    pub severity: Arc<str>,
    pub anomalous: Vec<Minute>,
}

#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub for_minutes: u32,
    /// Quiet time after the end of the last anomalous minute before resolving.
    pub resolve_ms: i64,
}

pub type Key = (String, String, String);

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Fired(Key),
    Resolved(Key),
}

#[derive(Default, Debug)]
pub struct Book {
    pub alerts: BTreeMap<Key, Alert>,
    /// Whether something worth persisting changed since the last save.
    pub dirty: bool,
}

/// Consecutive anomalous minutes ending at the last one.
fn run_length(minutes: &[Minute]) -> u32 {
    let mut run = 0;
    let mut next: Option<u32> = None;
    for m in minutes.iter().rev() {
        if next.is_some_and(|n| m.minute + 60 != n) {
            break;
        }
        run += 1;
        next = Some(m.minute);
    }
    run
}

fn quiet_since(m: &Minute, rules: &Rules) -> i64 {
    m.minute as i64 * 1000 + 60_000 + rules.resolve_ms
}

impl Book {
    /// Applies one evaluation at `now_ms`: `obs` are the keys with anomalous
    /// minutes in the evaluated window; `present` says whether a key may
    /// still alert at all (its threshold is active, baselines are on).
    pub fn step(
        &mut self,
        now_ms: i64,
        obs: Vec<Observation>,
        present: impl Fn(&Key) -> bool,
        rules: &Rules,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for o in obs {
            let key: Key = (
                o.alertname.into(),
                o.service.to_string(),
                o.severity.to_string(),
            );
            let Some(last) = o.anomalous.last().cloned() else {
                continue;
            };
            if now_ms >= quiet_since(&last, rules) || !present(&key) {
                continue;
            }
            let fires = run_length(&o.anomalous) >= rules.for_minutes;
            match self.alerts.get_mut(&key) {
                Some(a) if a.status != Status::Resolved || last.minute <= a.last.minute => {
                    if last.minute >= a.last.minute {
                        self.dirty |= last.minute != a.last.minute;
                        a.last = last;
                    }
                    if a.status == Status::Pending && fires {
                        a.status = Status::Firing;
                        self.dirty = true;
                        changes.push(Change::Fired(key));
                    }
                }
                _ => {
                    let status = if fires {
                        changes.push(Change::Fired(key.clone()));
                        Status::Firing
                    } else {
                        Status::Pending
                    };
                    self.dirty = true;
                    self.alerts.insert(
                        key.clone(),
                        Alert {
                            alertname: key.0,
                            service: key.1,
                            severity: key.2,
                            status,
                            starts_at_ms: now_ms,
                            resolved_at_ms: None,
                            last,
                            samples: Vec::new(),
                            samples_minute: None,
                        },
                    );
                }
            }
        }
        self.sweep(now_ms, present, rules, &mut changes);
        changes
    }

    /// Resolves quiet or unwatched firing alerts, drops broken pending runs
    /// and resolved alerts older than an hour.
    fn sweep(
        &mut self,
        now_ms: i64,
        present: impl Fn(&Key) -> bool,
        rules: &Rules,
        changes: &mut Vec<Change>,
    ) {
        let before = self.alerts.len();
        self.alerts.retain(|key, a| match a.status {
            Status::Firing => {
                if !present(key) || now_ms >= quiet_since(&a.last, rules) {
                    a.status = Status::Resolved;
                    a.resolved_at_ms = Some(now_ms);
                    changes.push(Change::Resolved(key.clone()));
                }
                true
            }
            // The minute after the last anomalous one ended without continuing the run.
            Status::Pending => present(key) && now_ms < (a.last.minute as i64 + 120) * 1000,
            Status::Resolved => a
                .resolved_at_ms
                .is_some_and(|t| now_ms - t < RESOLVED_KEEP_MS),
        });
        self.dirty |=
            before != self.alerts.len() || changes.iter().any(|c| matches!(c, Change::Resolved(_)));
    }

    /// Keys of a given alertname, for the `present` check of callers.
    pub fn keys_of<'a>(&'a self, alertname: &'a str) -> impl Iterator<Item = &'a Key> + 'a {
        self.alerts.keys().filter(move |k| k.0 == alertname)
    }

    /// Reads the book of a previous run; a missing file is an empty book.
    pub fn load(path: &Path) -> anyhow::Result<Book> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Book::default()),
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        };
        let file: BookFile = serde_json::from_slice(&text)
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
        if file.version != FILE_VERSION {
            anyhow::bail!("{}: unknown version {}", path.display(), file.version);
        }
        let alerts = file
            .alerts
            .into_iter()
            .map(|a| {
                (
                    (a.alertname.clone(), a.service.clone(), a.severity.clone()),
                    a,
                )
            })
            .collect();
        Ok(Book {
            alerts,
            dirty: false,
        })
    }

    /// Writes the book atomically (temp file, fsync, rename, fsync dir).
    pub fn save(&mut self, path: &Path) -> anyhow::Result<()> {
        let file = BookFile {
            version: FILE_VERSION,
            alerts: self.alerts.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file)?;
        logpulse_engine::durability::rewrite_atomic(path, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct BookFile {
    version: u32,
    alerts: Vec<Alert>,
}

/// Keys present in a set, as a `present` check.
pub fn in_set(set: &HashSet<Key>) -> impl Fn(&Key) -> bool + '_ {
    move |k| set.contains(k)
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
