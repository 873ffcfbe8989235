//! A bounded soak: mixed ingestion (with and without wait=true) and queries
//! (the three pipes and data source statistics) from several threads against
//! one daemon, sampling its anonymous memory (RssAnon). Proves memory stays
//! flat (the last third's peak within 1.5x of the first third's, with a
//! 32 MiB floor), query latency stays bounded (p99 under 1 s: what separates working from broken on a loaded machine),
//! and every acknowledged row is there at the end.
//!
//! Duration: `LP_SOAK_SECS` (default 10; e.g. 60 or more on demand).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};

const INGESTERS: usize = 2;
const QUERIERS: usize = 2;
const ROWS_PER_REQUEST: usize = 50;
/// RssAnon below this never counts as growth.
const RSS_FLOOR_KB: u64 = 32 * 1024;
/// Query p99 above this means broken (queries waiting on ingestion, or a
/// scan per query), not slow: a loaded 2-core debug run stays far below it.
/// Latency figures belong to the benches (README, Benchmarks).
const P99_MAX: Duration = Duration::from_secs(1);

#[test]
fn memory_stays_flat_and_queries_stay_fast_under_mixed_load() {
    let secs: u64 = env_knob("LP_SOAK_SECS", 10);
    let seed = seed();
    let d = Daemon::start();
    let pid = d.pid();
    let stop = AtomicBool::new(false);
    let acked = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let latencies: Mutex<Vec<(Duration, &'static str)>> = Mutex::new(Vec::new());
    let rss: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let day = SEED_TS / 86_400 * 86_400;
    std::thread::scope(|s| {
        for t in 0..INGESTERS {
            let (d, stop, acked, refused) = (&d, &stop, &acked, &refused);
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut body = String::new();
                    for i in 0..ROWS_PER_REQUEST {
                        let k = n * ROWS_PER_REQUEST as u64 + i as u64;
                        let ts = day + (k * 7919 % 86_400) as i64;
                        body.push_str(&tagged_row(&format!("s{t}-{n}-{i}"), ts).to_string());
                        body.push('\n');
                    }
                    let path = if n & 1 == 0 {
                        "/v0/events?name=system_logs&wait=true"
                    } else {
                        "/v0/events?name=system_logs"
                    };
                    let r = d.post(path, body.as_bytes());
                    match r.status {
                        200 | 202 => {
                            assert_eq!(counts(&r.json()), (ROWS_PER_REQUEST as u64, 0));
                            acked.fetch_add(ROWS_PER_REQUEST as u64, Ordering::Relaxed);
                        }
                        429 => {
                            r.assert_json_error();
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        s => panic!("ingest answered {s}: {}", r.text()),
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
        for q in 0..QUERIERS {
            let (d, stop, latencies) = (&d, &stop, &latencies);
            s.spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ q as u64);
                let services = ["auth", "db", "api", "cache"];
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let service = services[rng.gen_range(0..4)];
                    let from = day + rng.gen_range(0..86_400);
                    let to = from + rng.gen_range(60..86_400);
                    let (start, end) = (fmt_ts(from), fmt_ts(to));
                    let t0 = Instant::now();
                    let (name, r) = match rng.gen_range(0..5) {
                        0 => (
                            "recent_logs",
                            d.pipe("recent_logs.json", &[("limit", "100")]),
                        ),
                        1 => (
                            "recent_logs (filtered)",
                            d.pipe(
                                "recent_logs.json",
                                &[
                                    ("service", service),
                                    ("start_time", &start),
                                    ("end_time", &end),
                                ],
                            ),
                        ),
                        2 => (
                            "error_distribution",
                            d.pipe(
                                "error_distribution.json",
                                &[("start_time", &start), ("end_time", &end)],
                            ),
                        ),
                        3 => (
                            "log_anomalies",
                            d.pipe(
                                "log_anomalies.json",
                                &[
                                    ("end_time", &fmt_ts(day + 86_400)),
                                    ("time_window_minutes", "1440"),
                                ],
                            ),
                        ),
                        _ => ("datasources", d.get("/v0/datasources/system_logs")),
                    };
                    let el = t0.elapsed();
                    assert_eq!(r.status, 200, "{name}: {}", r.text());
                    mine.push((el, name));
                    std::thread::sleep(Duration::from_millis(5));
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
        {
            let (stop, rss) = (&stop, &rss);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = proc_status_kb(pid, "RssAnon") {
                        rss.lock().unwrap().push(kb);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let acked = acked.into_inner();
    let rss = rss.into_inner().unwrap();
    let mut lat = latencies.into_inner().unwrap();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].0;
    let (p50, p99, max) = (pct(0.50), pct(0.99), lat.last().unwrap().0);
    let third = rss.len() / 3;
    let first = *rss[..third].iter().max().unwrap();
    let last = *rss[rss.len() - third..].iter().max().unwrap();
    let stored = d.row_count("system_logs");
    println!(
        "soak: seed {seed}, {secs} s, {acked} rows acknowledged ({} requests refused with 429), {stored} stored; {} queries: p50 {p50:?}, p99 {p99:?}, max {max:?} (slowest: {}); RssAnon first third max {first} kB, last third max {last} kB, {} samples",
        refused.into_inner(),
        lat.len(),
        lat.last().unwrap().1,
        rss.len()
    );
    assert_eq!(stored, acked, "acknowledged rows lost or extra rows stored");
    assert!(
        (last as f64) <= 1.5 * first.max(RSS_FLOOR_KB) as f64,
        "RssAnon grew from {first} kB to {last} kB"
    );
    assert!(p99 < P99_MAX, "query p99 {p99:?} over {P99_MAX:?}");
    assert!(!d.log().contains("panicked"));
}
