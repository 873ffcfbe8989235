//! `logpulse-replay`: NDJSON files into a data dir (offline) or into a
//! running daemon (over HTTP), and a data dir's rows into another data dir.

pub mod datadir;
pub mod http;
pub mod offline;

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use logpulse_model::ingest::Parsed;

/// How many quarantine reasons a summary keeps.
pub const REASONS_MAX: usize = 5;

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub stored: u64,
    pub quarantined: u64,
    /// The first few quarantine reasons, each prefixed with its batch's first line.
    pub reasons: Vec<String>,
    /// Line number after the last line handled: where `--from-line` resumes.
    pub next_line: u64,
    /// Batches sent again after no answer was received (HTTP only).
    pub resent_batches: u64,
    pub elapsed: Duration,
}

impl Summary {
    /// Counts one batch that ended before line `next_line`.
    pub fn add(&mut self, parsed: &Parsed<'_>, next_line: u64) {
        self.add_counts(
            parsed.successful,
            parsed.quarantined,
            &parsed.reasons,
            next_line,
        );
    }

    /// [`Self::add`] from the counts of a batch.
    pub fn add_counts(
        &mut self,
        stored: u64,
        quarantined: u64,
        reasons: &[String],
        next_line: u64,
    ) {
        self.stored += stored;
        self.quarantined += quarantined;
        for r in reasons {
            if self.reasons.len() < REASONS_MAX {
                self.reasons.push(r.clone());
            }
        }
        self.next_line = self.next_line.max(next_line);
    }

    pub fn rows_per_sec(&self) -> f64 {
        (self.stored + self.quarantined) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows stored, {} quarantined, {:.2} s, {:.0} rows/s",
            self.stored,
            self.quarantined,
            self.elapsed.as_secs_f64(),
            self.rows_per_sec()
        )?;
        if self.resent_batches > 0 {
            write!(f, ", {} batches resent", self.resent_batches)?;
        }
        if !self.reasons.is_empty() {
            write!(
                f,
                "; first quarantine reasons: {}",
                self.reasons.join(" | ")
            )?;
        }
        Ok(())
    }
}

/// A progress bar on a terminal (stderr), nothing otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    consumed: Arc<AtomicU64>,
}

impl Progress {
    /// A bar over `total_bytes` of input (a spinner when unknown), shown only
    /// when stderr is a terminal and `enabled`.
    pub fn new(total_bytes: Option<u64>, enabled: bool) -> Progress {
        let consumed = Arc::new(AtomicU64::new(0));
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                consumed,
            };
        }
        let bar = match total_bytes {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{bar:40} {bytes}/{total_bytes} {msg} ({elapsed}, eta {eta})",
                    )
                    .expect("valid template"),
                ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {bytes} {msg} ({elapsed})")
                    .expect("valid template"),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            consumed,
        }
    }

    /// Counter of input bytes read, for the readers to bump.
    pub fn consumed(&self) -> Arc<AtomicU64> {
        self.consumed.clone()
    }

    /// Reports rows handled so far.
    pub fn rows(&self, rows: u64) {
        if let Some(b) = &self.bar {
            b.set_position(self.consumed.load(Ordering::Relaxed));
            b.set_message(format!("{rows} rows"));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
