//! Counters and latency histograms, rendered in Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use logpulse_model::DataSource;
use logpulse_model::Storage;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    sum_secs: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    pub rows_ingested: AtomicU64,
    pub rows_quarantined: AtomicU64,
    pub ingest_rejected: AtomicU64,
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
}

impl Metrics {
    pub fn observe(&self, route: &'static str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut routes = self.routes.lock();
        let r = routes.entry(route).or_default();
        *r.by_status.entry(status).or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                r.buckets[i] += 1;
            }
        }
        r.sum_secs += secs;
        r.count += 1;
    }

    pub fn render(&self, storage: &dyn Storage) -> String {
        let mut out = String::new();
        let c = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        c(
            &mut out,
            "logpulse_rows_ingested_total",
            "Rows stored through the Events API.",
            self.rows_ingested.load(Ordering::Relaxed),
        );
        c(
            &mut out,
            "logpulse_rows_quarantined_total",
            "Rows sent to quarantine.",
            self.rows_quarantined.load(Ordering::Relaxed),
        );
        c(
            &mut out,
            "logpulse_ingest_rejected_total",
            "Event requests refused (429/503).",
            self.ingest_rejected.load(Ordering::Relaxed),
        );
        for m in storage.backend_metrics() {
            let kind = if m.counter { "counter" } else { "gauge" };
            let _ = writeln!(
                out,
                "# HELP {n} {h}\n# TYPE {n} {kind}\n{n} {v}",
                n = m.name,
                h = m.help,
                v = m.value
            );
        }
        let _ = writeln!(out, "# HELP logpulse_datasource_rows Rows per data source.\n# TYPE logpulse_datasource_rows gauge");
        for ds in DataSource::ALL {
            // A backend that cannot say leaves the sample out rather than
            // reporting a false 0.
            if let Ok(s) = storage.datasource_stats(ds) {
                let _ = writeln!(
                    out,
                    "logpulse_datasource_rows{{datasource=\"{}\"}} {}",
                    ds.name(),
                    s.rows
                );
            }
        }
        let routes = self.routes.lock();
        let _ = writeln!(out, "# HELP logpulse_http_requests_total HTTP requests by route and status.\n# TYPE logpulse_http_requests_total counter");
        for (route, r) in routes.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "logpulse_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP logpulse_http_request_duration_seconds HTTP request latency by route.\n# TYPE logpulse_http_request_duration_seconds histogram");
        for (route, r) in routes.iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "logpulse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}", r.buckets[i]);
            }
            let _ = writeln!(
                out,
                "logpulse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                out,
                "logpulse_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                r.sum_secs
            );
            let _ = writeln!(
                out,
                "logpulse_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                r.count
            );
        }
        out
    }
}
