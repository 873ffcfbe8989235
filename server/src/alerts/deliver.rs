//! Delivery: one thread and one bounded queue per receiver, so that a slow
//! or failing receiver delays nobody else, and ingestion and queries never
//! wait for any. Failed posts are retried with exponential backoff and
//! jitter until they succeed or fall off the end of the queue.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver as Rx, RecvTimeoutError, Sender, TrySendError};
use rand::Rng;
use tracing::{debug, warn};

use super::payload::{signature, SIGNATURE_HEADER};

/// Payloads a receiver may have waiting; past this the oldest are dropped.
const QUEUE_MAX: usize = 256;
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Each payload is the whole current state: only the newest matters.
    Alertmanager,
    /// Each payload is a notification: all are delivered, in order.
    Webhook,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Alertmanager => "alertmanager",
            Kind::Webhook => "webhook",
        }
    }
}

#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub queued: AtomicU64,
}

/// A receiver's end in the evaluator.
pub struct Receiver {
    /// The URL without credentials or query, for metrics and logs.
    pub label: String,
    pub kind: Kind,
    tx: Sender<Vec<u8>>,
    pub counters: Arc<Counters>,
}

/// `scheme://host[:port]/path` of a URL: no user info, no query.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}{path}")
}

impl Receiver {
    /// Starts the thread that posts to `url`.
    pub fn start(
        url: &str,
        kind: Kind,
        timeout: Duration,
        secret: Option<String>,
    ) -> std::io::Result<Receiver> {
        let (tx, rx) = bounded::<Vec<u8>>(QUEUE_MAX);
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            url: url.to_string(),
            label: redact(url),
            kind,
            secret,
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            counters: counters.clone(),
            pending: VecDeque::new(),
        };
        std::thread::Builder::new()
            .name(format!("alerts-{}", kind.name()))
            .spawn(move || worker.run(rx))?;
        Ok(Receiver {
            label: redact(url),
            kind,
            tx,
            counters,
        })
    }

    /// Queues a payload without waiting; a full queue drops it (counted).
    pub fn offer(&self, body: Vec<u8>) {
        match self.tx.try_send(body) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn render_metrics(&self, out: &mut String) {
        let c = &self.counters;
        let label = self.label.replace('\\', "\\\\").replace('"', "\\\"");
        for (result, n) in [
            ("sent", &c.sent),
            ("failed", &c.failed),
            ("dropped", &c.dropped),
        ] {
            let _ = writeln!(
                out,
                "logpulse_alert_notifications_total{{receiver=\"{label}\",kind=\"{}\",result=\"{result}\"}} {}",
                self.kind.name(),
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "logpulse_alert_queue_length{{receiver=\"{label}\",kind=\"{}\"}} {}",
            self.kind.name(),
            c.queued.load(Ordering::Relaxed)
        );
    }
}

struct Worker {
    url: String,
    label: String,
    kind: Kind,
    secret: Option<String>,
    agent: ureq::Agent,
    counters: Arc<Counters>,
    pending: VecDeque<Vec<u8>>,
}

impl Worker {
    fn run(mut self, rx: Rx<Vec<u8>>) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            if self.pending.is_empty() {
                match rx.recv() {
                    Ok(b) => self.push(b),
                    Err(_) => return,
                }
            }
            while let Ok(b) = rx.try_recv() {
                self.push(b);
            }
            let Some(body) = self.pending.front() else {
                continue;
            };
            match self.post(body) {
                Ok(()) => {
                    self.pending.pop_front();
                    self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    backoff = BACKOFF_FIRST;
                }
                Err(e) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(receiver = %self.label, error = %e, retry_in_ms = backoff.as_millis() as u64, "alert delivery failed");
                    let jitter = rand::thread_rng().gen_range(0.5..1.5);
                    if !self.wait(&rx, backoff.mul_f64(jitter)) {
                        return;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Sleeps for `d` while still taking payloads in; false once the
    /// evaluator is gone.
    fn wait(&mut self, rx: &Rx<Vec<u8>>, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            match rx.recv_timeout(left) {
                Ok(b) => self.push(b),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn push(&mut self, body: Vec<u8>) {
        let superseded = match self.kind {
            Kind::Alertmanager => self.pending.len(),
            Kind::Webhook => self.pending.len().saturating_sub(QUEUE_MAX - 1),
        };
        for _ in 0..superseded {
            self.pending.pop_front();
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            if self.kind == Kind::Webhook {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.pending.push_back(body);
    }

    fn post(&self, body: &[u8]) -> Result<(), String> {
        let mut req = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .set(
                "User-Agent",
                concat!("logpulse/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(secret) = &self.secret {
            req = req.set(SIGNATURE_HEADER, &signature(secret, body));
        }
        match req.send_bytes(body) {
            Ok(resp) => {
                debug!(receiver = %self.label, status = resp.status(), "alert delivered");
                Ok(())
            }
            Err(ureq::Error::Status(code, _)) => Err(format!("answered {code}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_drops_credentials_and_query() {
        assert_eq!(
            redact("https://u:p@hooks.example:8443/a/b?token=x#f"),
            "https://hooks.example:8443/a/b"
        );
        assert_eq!(redact("http://am:9093"), "http://am:9093");
    }
}
