//! Replay into a running daemon: `POST /v0/events?name=NAME`, one batch of
//! lines at a time, in input order.
//!
//! Retry rules (at-least-once delivery):
//! - 2xx: the batch is stored; the next one goes.
//! - 429 and 503 (rate limited, shutting down, disk full): the daemon stored
//!   nothing; the same batch goes again after `Retry-After` seconds.
//! - No answer at all (connection refused or reset, timeout): the batch goes
//!   again, whole, after a short backoff. **Caveat:** if the daemon had
//!   stored the batch and only its answer was lost, its rows are stored
//!   twice. Nothing on the wire identifies a batch, so this cannot be told
//!   apart from a batch that never arrived.
//! - Any other answer (400, 401, 403, 404, 413, 500...): the replay stops
//!   and prints the line to resume from with `--from-line`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use logpulse_engine::DataSource;

use super::{Progress, Summary};
use crate::input::{read_chunks, Chunk, Source};

/// Settings of a replay over HTTP.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Base URL of the daemon (`http://host:port`).
    pub url: String,
    pub token: String,
    pub datasource: DataSource,
    pub lines_per_batch: usize,
    pub from_line: u64,
    /// Attempts per batch (first one included).
    pub attempts: u32,
    /// Timeout of one request (connect, send, answer).
    pub timeout: Duration,
    /// Longest wait honoured from `Retry-After`.
    pub retry_after_max: Duration,
    /// First backoff after no answer; doubles up to 5 s.
    pub backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            url: String::new(),
            token: String::new(),
            datasource: DataSource::SystemLogs,
            lines_per_batch: 5000,
            from_line: 0,
            attempts: 20,
            timeout: Duration::from_secs(60),
            retry_after_max: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
        }
    }
}

/// What one batch's delivery ended with.
enum Outcome {
    Stored {
        successful: u64,
        quarantined: u64,
    },
    /// Accepted (2xx), but the counts could not be read: the replay stops
    /// after this batch.
    StoredUncounted(anyhow::Error),
    /// Refused for good, or no answer after every attempt: not stored (or
    /// unknown, after no answer).
    Failed(anyhow::Error),
}

/// Replays `sources` into the daemon at `opts.url`.
pub fn replay_files(
    sources: &[Source],
    opts: &HttpOptions,
    progress: &Progress,
) -> Result<Summary> {
    let t0 = Instant::now();
    let agent = ureq::AgentBuilder::new()
        .timeout(opts.timeout)
        .user_agent(concat!("logpulse-replay/", env!("CARGO_PKG_VERSION")))
        .build();
    let url = format!(
        "{}/v0/events?name={}",
        opts.url.trim_end_matches('/'),
        opts.datasource.name()
    );
    let auth = format!("Bearer {}", opts.token);
    let mut summary = Summary {
        next_line: opts.from_line,
        ..Default::default()
    };
    let mut failure = None;
    let lines = read_chunks(
        sources,
        opts.lines_per_batch,
        opts.from_line,
        progress.consumed(),
        Vec::new,
        |chunk| match deliver(&agent, &url, &auth, &chunk, opts, &mut summary) {
            Outcome::Stored {
                successful,
                quarantined,
            } => {
                summary.stored += successful;
                summary.quarantined += quarantined;
                summary.next_line = chunk.first_line + chunk.lines;
                progress.rows(summary.stored + summary.quarantined);
                true
            }
            Outcome::StoredUncounted(e) => {
                summary.next_line = chunk.first_line + chunk.lines;
                failure = Some(e);
                false
            }
            Outcome::Failed(e) => {
                failure = Some(e);
                false
            }
        },
    );
    summary.elapsed = t0.elapsed();
    let resume = summary.next_line;
    if let Some(e) = failure {
        return Err(e.context(format!(
            "replay stopped after {summary}; lines before {resume} are stored, resume with --from-line {resume}"
        )));
    }
    let lines = lines.map_err(|e| e.context(format!("resume with --from-line {resume}")))?;
    summary.next_line = summary.next_line.max(lines);
    Ok(summary)
}

fn deliver(
    agent: &ureq::Agent,
    url: &str,
    auth: &str,
    chunk: &Chunk,
    opts: &HttpOptions,
    summary: &mut Summary,
) -> Outcome {
    let span = format!(
        "lines {}..{}",
        chunk.first_line,
        chunk.first_line + chunk.lines
    );
    if chunk.data.iter().all(|b| b.is_ascii_whitespace()) {
        return Outcome::Stored {
            successful: 0,
            quarantined: 0,
        };
    }
    let mut backoff = opts.backoff;
    let mut last = String::new();
    let mut no_answer = false;
    for attempt in 1..=opts.attempts.max(1) {
        if no_answer {
            summary.resent_batches += 1;
            tracing::debug!(attempt, %span, "sending batch again");
        }
        match agent
            .post(url)
            .set("Authorization", auth)
            .set("Content-Type", "application/x-ndjson")
            .send_bytes(&chunk.data)
        {
            Ok(resp) => {
                return match answer_counts(resp) {
                    Ok((successful, quarantined)) => Outcome::Stored {
                        successful,
                        quarantined,
                    },
                    Err(e) => Outcome::StoredUncounted(anyhow!(
                        "batch of {span} was accepted but its answer is unreadable: {e}"
                    )),
                }
            }
            Err(ureq::Error::Status(code @ (429 | 503), resp)) => {
                no_answer = false;
                let wait = retry_after(&resp).min(opts.retry_after_max);
                last = format!("{code} {}", error_text(resp));
                tracing::info!(status = code, wait_s = wait.as_secs_f64(), %span, "daemon asked to wait");
                std::thread::sleep(wait);
            }
            Err(ureq::Error::Status(code, resp)) => {
                return Outcome::Failed(anyhow!(
                    "daemon refused batch of {span}: {code} {}",
                    error_text(resp)
                ));
            }
            Err(ureq::Error::Transport(t)) => {
                // No answer: the batch may or may not be stored. Send it again
                // whole (at-least-once).
                last = t.to_string();
                no_answer = true;
                tracing::warn!(error = %t, %span, "no answer from the daemon; will send the batch again");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    Outcome::Failed(anyhow!(
        "batch of {span} not delivered after {} attempts (last: {last})",
        opts.attempts.max(1)
    ))
}

fn answer_counts(resp: ureq::Response) -> Result<(u64, u64)> {
    let v: serde_json::Value = resp.into_json()?;
    let get = |k: &str| v.get(k).and_then(|n| n.as_u64());
    match (get("successful_rows"), get("quarantined_rows")) {
        (Some(s), Some(q)) => Ok((s, q)),
        _ => bail!("no successful_rows/quarantined_rows in {v}"),
    }
}

/// `Retry-After` in seconds (integer, as the contract promises); 1 s if absent.
fn retry_after(resp: &ureq::Response) -> Duration {
    resp.header("Retry-After")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(1), Duration::from_secs_f64)
}

/// The `error` field of a JSON error answer, or its raw text.
fn error_text(resp: ureq::Response) -> String {
    let text = resp.into_string().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or(text)
}
