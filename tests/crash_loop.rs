//! Proves crash safety under load, over many crashes: several concurrent
//! clients ingest (mostly with wait=true, one without), the daemon is
//! `kill -9`ed at a random moment and restarted, again and again. After each
//! restart every acknowledged row is present exactly once with every column
//! intact, every request is all-or-nothing (its quarantined line included),
//! and the per-minute counts the pipes serve (error_distribution,
//! log_anomalies) equal a recount of the raw rows. At the end the data dir is
//! opened offline with `logpulse_engine::Engine` and `minute_counts()` is
//! compared with a recount from `scan_logs()`.
//!
//! Iterations: `LP_CRASH_ITERATIONS` (default 3; e.g. 50 on demand).
//! `LP_SEED` replays a run's random choices.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const CLIENTS: usize = 4;
/// Client that sends without wait=true: its 202s must survive kill -9 too
/// (the rows are in shared file mappings, README "What logpulse promises").
const NO_WAIT_CLIENT: usize = CLIENTS - 1;
/// Rows attempted per iteration at most (a safety net: the kill comes first).
const ROWS_PER_ITERATION_MAX: usize = 60_000;
/// Requests acknowledged in an iteration before its kill, at least.
const ACKED_BEFORE_KILL: usize = 40;
/// Hours of an iteration's day that its rows are spread over (one segment
/// file each); one recent_logs page (limit 10000) must hold an hour.
const HOURS: i64 = 8;
const SERVICES: [&str; 4] = ["auth", "db", "api", "cache"];
const SEVERITIES: [&str; 4] = ["ERROR", "WARN", "INFO", "DEBUG"];

/// One Events API request of the run.
#[derive(Clone, Debug)]
struct Req {
    /// `it{iter}-c{client}-r{n}`; its rows are `{tag}-i{i}`.
    tag: String,
    iter: usize,
    rows: usize,
    /// Lines that are quarantined (0 or 1).
    bad: u64,
    wait: bool,
    /// Some(true): acknowledged; Some(false): refused (429/503: nothing
    /// stored); None: no answer (the daemon died).
    outcome: Option<bool>,
}

fn day_start(iter: usize) -> i64 {
    // Whole days after the seed's day, one per iteration.
    (SEED_TS / 86_400 + 1 + iter as i64) * 86_400
}

fn row_ts(iter: usize, tag: &str, i: usize) -> i64 {
    day_start(iter) + (fnv(&format!("{tag}-{i}")) % (HOURS as u64 * 3600)) as i64
}

fn request_body(r: &Req) -> String {
    let mut body = String::new();
    if r.bad > 0 {
        body.push_str(&json!({"service": "x", "message": format!("{}-bad", r.tag)}).to_string());
        body.push('\n');
    }
    for i in 0..r.rows {
        let id = format!("{}-i{i}", r.tag);
        body.push_str(&tagged_row(&id, row_ts(r.iter, &r.tag, i)).to_string());
        body.push('\n');
    }
    body
}

/// Ingests until `stop` from several clients; returns every request sent.
fn run_clients(
    d: &Daemon,
    iter: usize,
    seed: u64,
    stop: &AtomicBool,
    killing: &AtomicBool,
    acked: &AtomicUsize,
) -> Vec<Req> {
    let sent: Mutex<Vec<Req>> = Mutex::new(Vec::new());
    let budget = AtomicUsize::new(ROWS_PER_ITERATION_MAX);
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (sent, budget) = (&sent, &budget);
            s.spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ ((c as u64 + 1) * 0x9e37));
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let rows = rng.gen_range(1..=30);
                    if budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                            b.checked_sub(rows)
                        })
                        .is_err()
                    {
                        break;
                    }
                    let mut r = Req {
                        // Every third request: nearly a service per row.
                        tag: if n % 3 == 2 {
                            format!("it{iter}-c{c}-r{n}{HIGH_CARDINALITY}")
                        } else {
                            format!("it{iter}-c{c}-r{n}")
                        },
                        iter,
                        rows,
                        bad: u64::from(rng.gen_ratio(1, 5)),
                        wait: c != NO_WAIT_CLIENT,
                        outcome: None,
                    };
                    let path = if r.wait {
                        "/v0/events?name=system_logs&wait=true"
                    } else {
                        "/v0/events?name=system_logs"
                    };
                    let res = d.try_request(
                        "POST",
                        path,
                        Some(&d.token),
                        Some(request_body(&r).as_bytes()),
                    );
                    match res {
                        Ok(resp) if resp.status == 200 || resp.status == 202 => {
                            assert_eq!(
                                resp.status,
                                if r.wait { 200 } else { 202 },
                                "{}",
                                resp.text()
                            );
                            assert_eq!(counts(&resp.json()), (r.rows as u64, r.bad), "{}", r.tag);
                            r.outcome = Some(true);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        // A full writer queue is the one refusal possible
                        // here (no disk full, no shutdown): 429, never 503.
                        Ok(resp) if resp.status == 429 => {
                            resp.assert_json_error();
                            assert!(resp.header("retry-after").is_some());
                            r.outcome = Some(false);
                        }
                        Ok(resp) => panic!(
                            "{}: unexpected answer {} {}",
                            r.tag,
                            resp.status,
                            resp.text()
                        ),
                        Err(e) => {
                            assert!(
                                killing.load(Ordering::SeqCst),
                                "{}: transport error before the kill: {e}",
                                r.tag
                            );
                            // The daemon is gone: the request may or may not
                            // have been applied (all or nothing).
                            sent.lock().unwrap().push(r);
                            break;
                        }
                    }
                    sent.lock().unwrap().push(r);
                }
            });
        }
    });
    sent.into_inner().unwrap()
}

/// Per (minute, service, severity) counts of a set of rows.
type Minutes = BTreeMap<(i64, String, String), u64>;

/// Checks one iteration's day over HTTP; returns how many rows of each
/// request are visible.
fn check_day(d: &Daemon, iter: usize) -> (HashMap<String, u64>, Minutes) {
    let start = fmt_ts(day_start(iter));
    let end = fmt_ts(day_start(iter) + 86_400);
    let mut data = Vec::new();
    for h in (0..HOURS).rev() {
        let from = fmt_ts(day_start(iter) + h * 3600);
        let to = fmt_ts(day_start(iter) + (h + 1) * 3600);
        let v = d.pipe_json(
            "recent_logs",
            &[("start_time", &from), ("end_time", &to), ("limit", "10000")],
        );
        let total = v["rows_before_limit_at_least"].as_u64().unwrap();
        let page = v["data"].as_array().unwrap();
        assert_eq!(
            total as usize,
            page.len(),
            "hour {h} of day {iter} does not fit one page"
        );
        data.extend(page.iter().cloned());
    }
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut minutes = Minutes::new();
    let mut per_key: BTreeMap<(String, String), (u64, i64, i64)> = BTreeMap::new();
    let mut prev: Option<i64> = None;
    for row in &data {
        let (id, ts, service, severity) = check_tagged(row);
        assert!(prev.is_none_or(|p| p >= ts), "recent_logs out of order");
        prev = Some(ts);
        *seen.entry(id).or_default() += 1;
        *minutes
            .entry((ts / 60 * 60, service.clone(), severity.clone()))
            .or_default() += 1;
        let e = per_key
            .entry((service, severity))
            .or_insert((0, i64::MAX, 0));
        e.0 += 1;
        e.1 = e.1.min(ts);
        e.2 = e.2.max(ts);
    }
    // error_distribution: counts and first/last seen equal a recount.
    let dist = d.pipe_json(
        "error_distribution",
        &[
            ("start_time", &start),
            ("end_time", &end),
            ("limit", "10000"),
        ],
    );
    let mut got = BTreeMap::new();
    for r in dist["data"].as_array().unwrap() {
        got.insert(
            (
                r["service"].as_str().unwrap().to_string(),
                r["severity"].as_str().unwrap().to_string(),
            ),
            (
                r["error_count"].as_u64().unwrap(),
                parse_ts(r["first_seen"].as_str().unwrap()).unwrap(),
                parse_ts(r["last_seen"].as_str().unwrap()).unwrap(),
            ),
        );
    }
    assert_eq!(
        got, per_key,
        "error_distribution of day {iter} differs from a recount of its rows"
    );
    // log_anomalies (every key has a tiny threshold, so every minute with a
    // row is an anomaly): per-minute counts equal a recount.
    let anomalies = d.pipe_json(
        "log_anomalies",
        &[
            ("end_time", &end),
            ("time_window_minutes", "1440"),
            ("limit", "10000"),
        ],
    );
    let mut got = Minutes::new();
    for r in anomalies["data"].as_array().unwrap() {
        let key = (
            parse_ts(r["minute"].as_str().unwrap()).unwrap(),
            r["service"].as_str().unwrap().to_string(),
            r["severity"].as_str().unwrap().to_string(),
        );
        assert!(got.insert(key, r["log_count"].as_u64().unwrap()).is_none());
    }
    // Thresholds exist for the 16 plain keys only: the instance-suffixed
    // services have none, so they are never anomalies.
    let plain: Minutes = minutes
        .iter()
        .filter(|((_, s, _), _)| !s.contains('-'))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(
        got, plain,
        "log_anomalies of day {iter} differ from a recount of its rows"
    );
    (seen, minutes)
}

/// Checks every request of every iteration so far: acknowledged ones are
/// complete, unanswered ones all-or-nothing, refused ones absent, nothing
/// duplicated or unknown. Returns (acknowledged rows checked, rows visible).
fn check_all(d: &Daemon, reqs: &[Req], iters: usize) -> (u64, u64) {
    let mut seen: HashMap<String, u64> = HashMap::new();
    for it in 0..iters {
        seen.extend(check_day(d, it).0);
    }
    let mut acked_rows = 0;
    let mut visible_rows = 0;
    let mut quarantined = 0;
    let mut known = 0;
    for r in reqs {
        let n: Vec<u64> = (0..r.rows)
            .map(|i| seen.get(&format!("{}-i{i}", r.tag)).copied().unwrap_or(0))
            .collect();
        known += r.rows;
        assert!(
            n.iter().all(|c| *c <= 1),
            "{}: duplicated rows {n:?}",
            r.tag
        );
        assert!(
            n.iter().all(|c| *c == n[0]),
            "{} is half visible: {n:?} ({r:?})",
            r.tag
        );
        match r.outcome {
            Some(true) => {
                assert_eq!(n[0], 1, "acknowledged request {} lost ({r:?})", r.tag);
                acked_rows += r.rows as u64;
            }
            Some(false) => assert_eq!(n[0], 0, "refused request {} is visible", r.tag),
            None => {}
        }
        if n[0] == 1 {
            visible_rows += r.rows as u64;
            quarantined += r.bad;
        }
    }
    assert_eq!(seen.len(), known.min(seen.len()));
    assert_eq!(
        seen.values().sum::<u64>(),
        visible_rows,
        "rows visible that no request of the run sent"
    );
    let thresholds = (SERVICES.len() * SEVERITIES.len()) as u64;
    assert_eq!(d.row_count("system_logs"), visible_rows);
    assert_eq!(
        d.row_count("system_logs_quarantine"),
        quarantined,
        "quarantined lines do not match the requests that are visible"
    );
    assert_eq!(d.row_count("log_anomaly_thresholds"), thresholds);
    (acked_rows, visible_rows)
}

#[test]
fn acknowledged_rows_survive_repeated_kill_9_exactly_once() {
    if common::clickhouse::embedded_only("segment files and their counts, opened offline") {
        return;
    }
    let iterations: usize = env_knob("LP_CRASH_ITERATIONS", 3);
    let seed = seed();
    println!("crash_loop: seed {seed} (LP_SEED to replay), {iterations} iterations");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut d = Daemon::options()
        .arg("--sync-interval-ms")
        .arg("60000")
        .start();
    // A tiny threshold for every key: every minute with a row is an anomaly.
    let thresholds: Vec<Value> = SERVICES
        .iter()
        .flat_map(|s| SEVERITIES.iter().map(move |v| (s, v)))
        .map(|(s, v)| json!({"service": s, "severity": v, "threshold_per_minute": 0.001, "updated_at": "2023-01-01 00:00:00"}))
        .collect();
    d.ingest("log_anomaly_thresholds", &thresholds, true);

    let mut all: Vec<Req> = Vec::new();
    let mut acked_checked = 0u64;
    let t_start = Instant::now();
    for iter in 0..iterations {
        let stop = AtomicBool::new(false);
        let killing = AtomicBool::new(false);
        let acked = AtomicUsize::new(0);
        let delay = Duration::from_millis(rng.gen_range(20..600));
        let client_seed = rng.gen();
        let reqs = std::thread::scope(|s| {
            let h = s.spawn(|| run_clients(&d, iter, client_seed, &stop, &killing, &acked));
            // Kill at a random moment after a real amount of acknowledged work.
            let t0 = Instant::now();
            while acked.load(Ordering::Relaxed) < ACKED_BEFORE_KILL
                && t0.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(delay);
            killing.store(true, Ordering::SeqCst);
            d.signal(libc::SIGKILL);
            stop.store(true, Ordering::Relaxed);
            h.join().unwrap()
        });
        let st = d.wait_exit(Duration::from_secs(10));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(libc::SIGKILL),
            "iteration {iter}: the daemon died of something else than our SIGKILL: {st}"
        );
        let acked_reqs = reqs.iter().filter(|r| r.outcome == Some(true)).count();
        let refused = reqs.iter().filter(|r| r.outcome == Some(false)).count();
        assert!(
            acked_reqs >= ACKED_BEFORE_KILL,
            "iteration {iter}: only {acked_reqs} requests acknowledged"
        );
        assert!(
            refused <= acked_reqs / 10,
            "iteration {iter}: {refused} requests refused for {acked_reqs} acknowledged"
        );
        assert!(
            reqs.iter().any(|r| r.outcome.is_none()),
            "iteration {iter}: the clients ran out of rows before the kill"
        );
        all.extend(reqs);
        d.start_again();
        let (acked_rows, visible) = check_all(&d, &all, iter + 1);
        acked_checked += acked_rows;
        println!(
            "crash_loop: iteration {iter}: killed after {delay:?}; {} requests sent, {acked_rows} acknowledged rows present exactly once, {visible} rows visible",
            all.iter().filter(|r| r.iter == iter).count()
        );
    }
    // One clean stop, then the data dir offline: the engine's per-minute
    // counts equal a recount of its raw rows.
    d.stop();
    let engine = logpulse_engine::Engine::open(logpulse_engine::EngineConfig::new(&d.data_dir))
        .expect("open the data dir offline");
    let mut recount: HashMap<(u32, String, String), u32> = HashMap::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut last_seq = 0;
    engine
        .scan_logs(|seq, row| {
            assert!(seq > last_seq, "seqs not increasing");
            last_seq = seq;
            *recount
                .entry((
                    row.timestamp / 60,
                    row.service.to_string(),
                    row.severity.to_string(),
                ))
                .or_default() += 1;
            *ids.entry(row.message.to_string()).or_default() += 1;
        })
        .unwrap();
    // Keys: (Unix minute, service, severity).
    let mut minutes = engine.minute_counts();
    minutes.retain(|_, c| *c > 0);
    assert_eq!(
        minutes, recount,
        "Engine::minute_counts differs from a recount of scan_logs"
    );
    let mut lost = 0;
    for r in all.iter().filter(|r| r.outcome == Some(true)) {
        for i in 0..r.rows {
            let n = ids.get(&format!("{}-i{i}", r.tag)).copied().unwrap_or(0);
            assert!(n <= 1, "offline: row {}-i{i} found {n} times", r.tag);
            lost += u64::from(n == 0);
        }
    }
    engine.close().unwrap();
    assert_eq!(lost, 0, "offline: acknowledged rows lost");
    let acked: Vec<&Req> = all.iter().filter(|r| r.outcome == Some(true)).collect();
    println!(
        "crash_loop: {iterations} kill -9 iterations in {:?}: {} acknowledged rows ({} requests) checked present exactly once after every later crash ({acked_checked} row checks) and offline; {} rows stored; lost {lost}",
        t_start.elapsed(),
        acked.iter().map(|r| r.rows).sum::<usize>(),
        acked.len(),
        ids.len()
    );
}
