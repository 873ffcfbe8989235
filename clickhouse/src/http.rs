//! A small blocking ClickHouse HTTP client: SQL in the body, settings in the
//! URL, JSON back. Several endpoints are tried in turn: a request goes to the
//! last one that answered and fails over to the next on a connection error,
//! each try bounded by a timeout, so an unreachable cluster is an error in
//! about a second, never a hang.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use base64::Engine as _;
use logpulse_model::ReadStats;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};

/// How long connecting to one endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Requests one `logpulsed` has in flight to ClickHouse at most; more wait
/// their turn (a server refuses queries past `max_concurrent_queries`,
/// 100 by default, and several nodes share it).
pub const IN_FLIGHT_MAX: usize = 16;

/// A counting semaphore over the requests in flight.
struct Gate {
    busy: Mutex<usize>,
    freed: Condvar,
}

/// A request's turn; ends when dropped.
struct Permit(Arc<Gate>);

impl Gate {
    fn enter(self: &Arc<Self>, timeout: Duration) -> Result<Permit> {
        let deadline = Instant::now() + timeout;
        let mut busy = self.busy.lock();
        while *busy >= IN_FLIGHT_MAX {
            if self.freed.wait_until(&mut busy, deadline).timed_out() {
                return Err(Error::Server {
                    endpoint: "logpulsed".into(),
                    code: 202,
                    message: format!(
                        "{IN_FLIGHT_MAX} requests to ClickHouse in flight for {timeout:?}"
                    ),
                });
            }
        }
        *busy += 1;
        Ok(Permit(self.clone()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *self.0.busy.lock() -= 1;
        self.0.freed.notify_one();
    }
}

/// An answer being read, holding its request's turn until dropped.
struct Answer {
    reader: Box<dyn Read + Send>,
    _permit: Permit,
}

impl Read for Answer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

/// Where and as whom to connect.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Base URLs, e.g. `http://127.0.0.1:8123`.
    pub urls: Vec<String>,
    pub user: String,
    pub password: String,
    /// How long one request may take in all.
    pub timeout: Duration,
}

pub struct Client {
    urls: Vec<String>,
    auth: Option<String>,
    agent: ureq::Agent,
    preferred: AtomicUsize,
    gate: Arc<Gate>,
    timeout: Duration,
}

/// A `FORMAT JSON` answer.
#[derive(Deserialize)]
struct JsonAnswer<T> {
    data: Vec<T>,
    #[serde(default)]
    statistics: Option<Statistics>,
}

#[derive(Deserialize, Default)]
struct Statistics {
    #[serde(default)]
    rows_read: u64,
    #[serde(default)]
    bytes_read: u64,
}

/// Settings every request carries: 64-bit integers unquoted in JSON.
const BASE_SETTINGS: &[(&str, &str)] = &[("output_format_json_quote_64bit_integers", "0")];

impl Client {
    pub fn new(ep: &Endpoints) -> Client {
        let auth = (!ep.user.is_empty()).then(|| {
            let raw = format!("{}:{}", ep.user, ep.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        });
        Client {
            urls: ep
                .urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            auth,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout(ep.timeout)
                .max_idle_connections(32)
                .max_idle_connections_per_host(16)
                .build(),
            preferred: AtomicUsize::new(0),
            gate: Arc::new(Gate {
                busy: Mutex::new(0),
                freed: Condvar::new(),
            }),
            timeout: ep.timeout,
        }
    }

    pub fn endpoints(&self) -> usize {
        self.urls.len()
    }

    /// Runs a statement that answers nothing of interest (DDL, ALTER).
    pub fn execute(&self, sql: &str, settings: &[(&str, &str)]) -> Result<()> {
        self.with_failover(|i| self.send(i, sql.as_bytes(), None, settings).map(drop))
    }

    /// Runs a statement on endpoint `i` only (schema, TRUNCATE on every node).
    pub fn execute_on(&self, i: usize, sql: &str, settings: &[(&str, &str)]) -> Result<()> {
        self.send(i, sql.as_bytes(), None, settings).map(drop)
    }

    /// `SELECT ... FORMAT JSON`: the rows and what the query read.
    pub fn select<T: DeserializeOwned>(&self, sql: &str) -> Result<(Vec<T>, ReadStats)> {
        self.select_with(sql, &[])
    }

    pub fn select_with<T: DeserializeOwned>(
        &self,
        sql: &str,
        settings: &[(&str, &str)],
    ) -> Result<(Vec<T>, ReadStats)> {
        let sql = format!("{sql}\nFORMAT JSON");
        self.with_failover(|i| {
            let reader = self.send(i, sql.as_bytes(), None, settings)?;
            let answer: JsonAnswer<T> = serde_json::from_reader(reader)
                .map_err(|e| Error::Decode(format!("{e} in the answer to: {}", head(&sql))))?;
            let s = answer.statistics.unwrap_or_default();
            let stats = ReadStats {
                rows_read: s.rows_read,
                bytes_read: s.bytes_read,
            };
            Ok((answer.data, stats))
        })
    }

    /// `SELECT ... FORMAT JSON` on endpoint `i` only.
    pub fn select_on<T: DeserializeOwned>(&self, i: usize, sql: &str) -> Result<Vec<T>> {
        let sql = format!("{sql}\nFORMAT JSON");
        let reader = self.send(i, sql.as_bytes(), None, &[])?;
        let answer: JsonAnswer<T> =
            serde_json::from_reader(reader).map_err(|e| Error::Decode(e.to_string()))?;
        Ok(answer.data)
    }

    /// A `SELECT` whose answer is read as it arrives (scans).
    pub fn stream(&self, sql: &str) -> Result<Box<dyn Read + Send>> {
        self.with_failover(|i| self.send(i, sql.as_bytes(), None, &[]))
    }

    /// `INSERT INTO table FORMAT JSONEachRow` with `body` as the rows.
    pub fn insert(&self, table: &str, body: &[u8], settings: &[(&str, &str)]) -> Result<()> {
        let query = format!("INSERT INTO {table} FORMAT JSONEachRow");
        self.with_failover(|i| self.send(i, body, Some(&query), settings).map(drop))
    }

    /// Tries `f` on each endpoint from the preferred one while they are
    /// unreachable. A request that reached a server is not retried: it may
    /// have taken effect.
    fn with_failover<T>(&self, mut f: impl FnMut(usize) -> Result<T>) -> Result<T> {
        let n = self.urls.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last = Error::Closed;
        for k in 0..n {
            let i = (first + k) % n;
            match f(i) {
                Err(e @ Error::Unreachable { .. }) => last = e,
                other => {
                    if k > 0 {
                        self.preferred.store(i, Ordering::Relaxed);
                    }
                    return other;
                }
            }
        }
        Err(last)
    }

    fn send(
        &self,
        i: usize,
        body: &[u8],
        query: Option<&str>,
        settings: &[(&str, &str)],
    ) -> Result<Box<dyn Read + Send>> {
        let permit = self.gate.enter(self.timeout)?;
        let endpoint = &self.urls[i];
        let base = format!("{endpoint}/?");
        let start = base.len();
        let mut url = form_urlencoded::Serializer::for_suffix(base, start);
        if let Some(q) = query {
            url.append_pair("query", q);
        }
        for (k, v) in BASE_SETTINGS.iter().chain(settings) {
            url.append_pair(k, v);
        }
        let mut req = self.agent.post(&url.finish());
        if let Some(a) = &self.auth {
            req = req.set("Authorization", a);
        }
        match req.send_bytes(body) {
            Ok(resp) => Ok(Box::new(Answer {
                reader: resp.into_reader(),
                _permit: permit,
            })),
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                Err(Error::Server {
                    endpoint: endpoint.clone(),
                    code: exception_code(&text).unwrap_or(status as u32 + 100_000),
                    message: text.trim().chars().take(2000).collect(),
                })
            }
            Err(ureq::Error::Transport(t)) => Err(Error::Unreachable {
                endpoint: endpoint.clone(),
                detail: t.to_string(),
            }),
        }
    }
}

/// `Code: 279, e.displayText() = ...` → 279.
fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + 6..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn head(sql: &str) -> String {
    sql.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::exception_code;

    #[test]
    fn reads_the_exception_code() {
        assert_eq!(
            exception_code("Code: 279, e.displayText() = DB::NetException: All connection"),
            Some(279)
        );
        assert_eq!(exception_code("Code: 60. DB::Exception: Table"), Some(60));
        assert_eq!(exception_code("bad gateway"), None);
    }
}
