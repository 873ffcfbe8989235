//! In-process benchmark of the storage engine (no HTTP).
//!
//! ```text
//! cargo bench --bench engine
//! LP_BENCH_ROWS=5000000 LP_BENCH_QUERY_ROWS=10000000 cargo bench --bench engine
//! ```
//!
//! Measures, on `system_logs` rows of about 250 encoded bytes:
//! (a) append throughput, `LP_BENCH_ROWS` rows (default 1,000,000) in batches
//!     of 5,000 with `Durability::Visible`, from 2 threads;
//! (b) the same with `Durability::Synced`, batches of 10,000;
//! (c) after loading `LP_BENCH_QUERY_ROWS` rows (default 1,000,000) spread
//!     over 7 days, 8 services x 5 severities, and a few thresholds: p50/p99
//!     latency of `log_anomalies` (60-minute window, random end),
//!     `recent_logs` limit 50 filtered by service and severity (random 1-hour
//!     windows, and no time filter), and `error_distribution` (random 1-day
//!     windows);
//! (d) resident anonymous memory (`RssAnon`) after loading, and after a
//!     reopen, with the time the reopen (recovery) took.
//!
//! `LP_BENCH_DIR` picks where data dirs are made (default: the temp dir);
//! they are removed afterwards.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logpulse_engine::row::Encode;
use logpulse_engine::{
    AnomalyQuery, DataSource, Durability, Engine, EngineConfig, Error, LogFilter, LogRow, Row,
    ThresholdRow,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// 2024-01-01 00:00:00 UTC.
const T0: u32 = 1_704_067_200;
const WEEK: u32 = 7 * 86_400;
const SERVICES: [&str; 8] = [
    "auth-service",
    "payment-api",
    "user-service",
    "order-worker",
    "inventory-db",
    "search-index",
    "email-sender",
    "api-gateway",
];
const SEVERITIES: [&str; 5] = ["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Text fields shared by all rows (rows borrow them, so that building a
/// batch costs next to nothing and the figures are the engine's).
struct Pool {
    messages: Vec<String>,
    servers: Vec<String>,
    resources: Vec<String>,
    metadata: Vec<String>,
    codes: Vec<String>,
}

impl Pool {
    fn new() -> Pool {
        let mut rng = StdRng::seed_from_u64(1);
        let words = [
            "request",
            "failed",
            "timeout",
            "connection",
            "user",
            "retry",
            "upstream",
            "cache",
            "miss",
            "latency",
            "exceeded",
            "database",
            "query",
            "token",
            "expired",
            "handler",
        ];
        let messages = (0..1024)
            .map(|_| {
                let target = rng.gen_range(120..180);
                let mut m = String::new();
                while m.len() < target {
                    if !m.is_empty() {
                        m.push(' ');
                    }
                    m.push_str(words[rng.gen_range(0..words.len())]);
                }
                m
            })
            .collect();
        Pool {
            messages,
            servers: (0..64).map(|i| format!("srv-{i:04}")).collect(),
            resources: (0..256)
                .map(|i| format!("res-{:08x}-{i:04}", i * 2_654_435_761u32))
                .collect(),
            metadata: (0..64)
                .map(|i| format!("{{\"region\":\"eu-{}\",\"attempt\":{i}}}", i % 4))
                .collect(),
            codes: (0..100).map(|i| format!("E{:04}", 1000 + i * 7)).collect(),
        }
    }

    fn row(&self, ts: u32, key: usize, r: u64) -> Row<'_> {
        let r = r as usize;
        Row::Log(LogRow {
            timestamp: ts,
            service: Cow::Borrowed(SERVICES[key / SEVERITIES.len()]),
            severity: Cow::Borrowed(SEVERITIES[key % SEVERITIES.len()]),
            server_id: Cow::Borrowed(&self.servers[r % 64]),
            message: Cow::Borrowed(&self.messages[(r >> 6) % 1024]),
            error_code: Cow::Borrowed(&self.codes[(r >> 16) % 100]),
            resource_id: Cow::Borrowed(&self.resources[(r >> 23) % 256]),
            metadata: Cow::Borrowed(&self.metadata[(r >> 31) % 64]),
        })
    }
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// Returns freed heap memory to the kernel, so that `RssAnon` shows what is
/// live rather than what the allocator kept.
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

fn proc_status(field: &str) -> u64 {
    if field == "RssAnon:" {
        trim_heap();
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mib_kb(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                use std::os::unix::fs::MetadataExt;
                // Allocated bytes (segments are preallocated).
                e.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
            }
        })
        .sum()
}

fn append_retrying(e: &Engine, rows: &[Row<'_>], d: Durability) {
    loop {
        match e.append(rows, d) {
            Ok(_) => return,
            Err(Error::Busy) => std::thread::sleep(Duration::from_micros(200)),
            Err(err) => panic!("append failed: {err}"),
        }
    }
}

struct AppendResult {
    rows: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    segment_bytes: u64,
}

/// Appends `total` rows from `threads` threads in batches of `batch`, rows
/// `i` of the whole load having timestamp `ts(i)` and key `key(i)`.
#[allow(clippy::too_many_arguments)]
fn load(
    e: &Engine,
    pool: &Pool,
    total: usize,
    batch: usize,
    threads: usize,
    d: Durability,
    ts: impl Fn(u64) -> u32 + Sync,
    key: impl Fn(u64) -> usize + Sync,
) -> AppendResult {
    let next = AtomicU64::new(0);
    let batches = total.div_ceil(batch) as u64;
    let t0 = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut lat = Vec::new();
                    let mut rows = Vec::with_capacity(batch);
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= batches {
                            break;
                        }
                        let lo = b * batch as u64;
                        let hi = (lo + batch as u64).min(total as u64);
                        rows.clear();
                        rows.extend((lo..hi).map(|i| pool.row(ts(i), key(i), mix(i))));
                        let t = Instant::now();
                        append_retrying(e, &rows, d);
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = t0.elapsed();
    latencies.sort();
    AppendResult {
        rows: total as u64,
        elapsed,
        latencies,
        segment_bytes: e.datasource_stats(DataSource::SystemLogs).bytes,
    }
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var("LP_BENCH_DIR") {
        Ok(d) => {
            std::fs::create_dir_all(&d).unwrap();
            tempfile::tempdir_in(d).unwrap()
        }
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

fn print_append(name: &str, r: &AppendResult) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{name:<44} {:>12.0} rows/s {:>8.1} MB/s  batch p50 {:>8} ms  p99 {:>8} ms  ({} rows in {:.2} s)",
        r.rows as f64 / secs,
        r.segment_bytes as f64 / secs / 1e6,
        ms(percentile(&r.latencies, 0.50)),
        ms(percentile(&r.latencies, 0.99)),
        r.rows,
        secs,
    );
}

/// Runs `q` with random parameters until `max_iters` runs or `budget` time,
/// and prints its latency distribution.
fn bench_query<T>(
    name: &str,
    rng: &mut StdRng,
    max_iters: usize,
    budget: Duration,
    mut q: impl FnMut(&mut StdRng) -> T,
    mut rows: impl FnMut(&T) -> u64,
) {
    let mut lat = Vec::with_capacity(max_iters);
    let mut returned = 0u64;
    let t0 = Instant::now();
    while lat.len() < max_iters && (lat.len() < 20 || t0.elapsed() < budget) {
        let t = Instant::now();
        let out = std::hint::black_box(q(rng));
        lat.push(t.elapsed());
        returned += rows(&out);
    }
    lat.sort();
    let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
    println!(
        "{name:<58} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10.1}",
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(mean),
        ms(*lat.last().unwrap()),
        returned as f64 / lat.len() as f64,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let rows = env_usize("LP_BENCH_ROWS", 1_000_000);
    let query_rows = env_usize("LP_BENCH_QUERY_ROWS", 1_000_000);
    let pool = Pool::new();
    let mut sample = Vec::new();
    let n_sample = 10_000u64;
    for i in 0..n_sample {
        pool.row(T0, (i % 40) as usize, mix(i))
            .encode_into(&mut sample);
    }
    println!("logpulse engine benchmark");
    println!(
        "  cpus {}, rows encoded {:.1} bytes on average (+20 bytes frame header)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sample.len() as f64 / n_sample as f64
    );
    println!();
    println!("== append ({rows} rows, 2 threads) ==");

    // (a) Visible, batches of 5,000.
    {
        let dir = bench_dir();
        let e = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let r = load(
            &e,
            &pool,
            rows,
            5_000,
            2,
            Durability::Visible,
            |i| T0 + (i * 86_400 / rows as u64) as u32,
            |i| (mix(i ^ 0xABCD) % 40) as usize,
        );
        print_append("(a) Visible, 5,000-row batches", &r);
        let t = Instant::now();
        e.close().unwrap();
        println!("    close (final sync) {} ms", ms(t.elapsed()));
    }
    // (b) Synced, batches of 10,000.
    {
        let dir = bench_dir();
        let e = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let r = load(
            &e,
            &pool,
            rows,
            10_000,
            2,
            Durability::Synced,
            |i| T0 + (i * 86_400 / rows as u64) as u32,
            |i| (mix(i ^ 0xABCD) % 40) as usize,
        );
        print_append("(b) Synced, 10,000-row batches", &r);
        e.close().unwrap();
    }

    // (c) Queries over a week of data.
    println!();
    println!("== queries ({query_rows} rows over 7 days, 8 services x 5 severities) ==");
    let dir = bench_dir();
    let rss_before = proc_status("RssAnon:");
    let e = Engine::open(EngineConfig::new(dir.path())).unwrap();
    // Keys are skewed a little, as real logs are (INFO and DEBUG dominate).
    let weights = [30u64, 40, 15, 12, 3];
    let key_of = |i: u64| {
        let h = mix(i ^ 0x5555);
        let svc = (h % 8) as usize;
        let mut x = (h >> 8) % 100;
        let mut sev = 0;
        while x >= weights[sev] {
            x -= weights[sev];
            sev += 1;
        }
        svc * SEVERITIES.len() + sev
    };
    let qn = query_rows as u64;
    let r = load(
        &e,
        &pool,
        query_rows,
        5_000,
        2,
        Durability::Visible,
        |i| T0 + (i * WEEK as u64 / qn) as u32 + (mix(i) % 120) as u32,
        key_of,
    );
    print_append("load: Visible, 5,000-row batches", &r);
    // Thresholds near the mean per-minute rate of a few keys, so that some
    // minutes are anomalies.
    let per_key_minute = |sev: usize, svc_share: f64| {
        qn as f64 / (WEEK as f64 / 60.0) * svc_share * weights[sev] as f64 / 100.0
    };
    let mut thresholds = Vec::new();
    for (svc, sev, factor) in [
        (0, 3, 1.3),
        (1, 3, 1.5),
        (2, 4, 2.0),
        (3, 2, 1.2),
        (4, 1, 1.1),
        (7, 3, 1.4),
    ] {
        thresholds.push(Row::Threshold(ThresholdRow {
            service: SERVICES[svc].into(),
            severity: SEVERITIES[sev].into(),
            threshold_per_minute: (per_key_minute(sev, 1.0 / 8.0) * factor).max(0.5),
            active: 1,
            updated_at: T0,
        }));
    }
    e.append(&thresholds, Durability::Synced).unwrap();
    let rss_loaded = proc_status("RssAnon:");
    let stats = e.datasource_stats(DataSource::SystemLogs);

    println!();
    println!(
        "{:<58} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "query (ms)", "runs", "p50", "p99", "mean", "max", "rows/run"
    );
    let mut rng = StdRng::seed_from_u64(42);
    let budget = Duration::from_secs(6);
    let rand_end = |rng: &mut StdRng| T0 + rng.gen_range(3600..WEEK);
    bench_query(
        "log_anomalies, 60-min window, random end",
        &mut rng,
        2_000,
        budget,
        |rng| {
            e.log_anomalies(&AnomalyQuery {
                end: rand_end(rng),
                window_minutes: 60,
                service: None,
                severity: None,
                limit: 100,
            })
            .unwrap()
        },
        |a| a.rows.len() as u64,
    );
    let key_filter = |rng: &mut StdRng, start: Option<u32>, end: Option<u32>| LogFilter {
        start,
        end,
        service: Some(SERVICES[rng.gen_range(0..8)].into()),
        severity: Some(SEVERITIES[rng.gen_range(0..5)].into()),
    };
    bench_query(
        "recent_logs 50, service+severity, random 1-hour window",
        &mut rng,
        2_000,
        budget,
        |rng| {
            let end = rand_end(rng);
            let f = key_filter(rng, Some(end - 3600), Some(end));
            e.recent_logs(&f, 50).unwrap()
        },
        |r| r.rows.len() as u64,
    );
    bench_query(
        "recent_logs 50, service+severity, no time filter",
        &mut rng,
        2_000,
        budget,
        |rng| {
            let f = key_filter(rng, None, None);
            e.recent_logs(&f, 50).unwrap()
        },
        |r| r.rows.len() as u64,
    );
    bench_query(
        "recent_logs 50, no filter at all",
        &mut rng,
        2_000,
        budget,
        |_| e.recent_logs(&LogFilter::default(), 50).unwrap(),
        |r| r.rows.len() as u64,
    );
    bench_query(
        "error_distribution, random 1-day window",
        &mut rng,
        2_000,
        budget,
        |rng| {
            let start = T0 + rng.gen_range(0..WEEK - 86_400);
            e.error_distribution(
                &LogFilter {
                    start: Some(start),
                    end: Some(start + 86_400),
                    ..Default::default()
                },
                100,
            )
            .unwrap()
        },
        |d| d.rows.len() as u64,
    );
    bench_query(
        "error_distribution, whole week",
        &mut rng,
        500,
        budget,
        |_| e.error_distribution(&LogFilter::default(), 100).unwrap(),
        |d| d.rows.len() as u64,
    );

    // (d) Memory.
    println!();
    println!("== memory and recovery ==");
    println!(
        "RssAnon after loading {} rows: {} (before opening: {}); RssFile {}",
        query_rows,
        mib_kb(rss_loaded),
        mib_kb(rss_before),
        mib_kb(proc_status("RssFile:")),
    );
    println!(
        "segments: {} files, {:.1} MiB of records; data dir on disk {:.1} MiB (index {:.1} MiB)",
        stats.segments,
        stats.bytes as f64 / (1 << 20) as f64,
        dir_bytes(dir.path()) as f64 / (1 << 20) as f64,
        dir_bytes(&dir.path().join("index")) as f64 / (1 << 20) as f64,
    );
    let t = Instant::now();
    e.close().unwrap();
    let close = t.elapsed();
    drop(e);
    let rss_closed = proc_status("RssAnon:");
    let t = Instant::now();
    let e = Engine::open(EngineConfig::new(dir.path())).unwrap();
    let reopen = t.elapsed();
    let rows_back = e.datasource_stats(DataSource::SystemLogs).rows;
    assert_eq!(rows_back, query_rows as u64);
    println!(
        "close {} ms; reopen (recover {} rows) {} ms; RssAnon after reopen {} (after close: {})",
        ms(close),
        rows_back,
        ms(reopen),
        mib_kb(proc_status("RssAnon:")),
        mib_kb(rss_closed),
    );
    e.close().unwrap();
}
