//! Proves durability: a SIGTERM/SIGINT stop exits 0 and keeps every acknowledged row (with or without wait=true), and after `kill -9` every row acknowledged with wait=true by several concurrent clients is present exactly once, each request all-or-nothing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Every message of `service`, with multiplicity.
fn message_counts(d: &Daemon, service: &str) -> HashMap<String, u32> {
    let v = d.pipe_json("recent_logs", &[("service", service), ("limit", "10000")]);
    let total = v["rows_before_limit_at_least"].as_u64().unwrap();
    assert!(total <= 10_000, "too many rows for one page: {total}");
    let mut m = HashMap::new();
    for msg in messages(&v) {
        *m.entry(msg).or_insert(0) += 1;
    }
    m
}

#[test]
fn sigterm_stop_exits_0_and_keeps_every_acknowledged_row() {
    let mut d = Daemon::options()
        .arg("--sync-interval-ms")
        .arg("60000")
        .start();
    // Rows acknowledged without wait: only a clean stop makes them durable
    // (the background sync is an hour away).
    let rows: Vec<Value> = (0..300)
        .map(|i| log_row(&fmt_ts(SEED_TS + i * 20), "term", "ERROR", &format!("n{i}")))
        .collect();
    for chunk in rows.chunks(50) {
        assert_eq!(d.ingest("system_logs", chunk, false), (50, 0));
    }
    assert_eq!(
        d.ingest("system_logs", &[json!({"broken": 1})], false),
        (0, 1)
    );
    d.ingest(
        "log_anomaly_thresholds",
        &[json!({"service": "term", "severity": "ERROR", "threshold_per_minute": 0.5, "updated_at": "2023-06-01 00:00:00"})],
        false,
    );
    let before_dist = d.pipe_json("error_distribution", &[]);
    let end = fmt_ts(SEED_TS + 7200);
    let before_anom = d.pipe_json("log_anomalies", &[("end_time", &end)]);
    assert!(before_anom["rows"].as_u64().unwrap() > 0);
    d.restart(); // asserts exit code 0
    let m = message_counts(&d, "term");
    assert_eq!(m.len(), 300);
    assert!(m.values().all(|c| *c == 1));
    assert_eq!(d.row_count("system_logs_quarantine"), 1);
    assert_eq!(d.row_count("log_anomaly_thresholds"), 1);
    let mut after = d.pipe_json("error_distribution", &[]);
    let mut before = before_dist.clone();
    after["statistics"] = Value::Null;
    before["statistics"] = Value::Null;
    assert_eq!(after, before);
    let mut a = d.pipe_json("log_anomalies", &[("end_time", &end)]);
    let mut b = before_anom;
    a["statistics"] = Value::Null;
    b["statistics"] = Value::Null;
    assert_eq!(a, b);
    // Ingest more, stop with SIGINT this time.
    d.ingest(
        "system_logs",
        &[log_row(&fmt_ts(SEED_TS), "term", "ERROR", "late")],
        false,
    );
    d.signal(libc::SIGINT);
    let st = d.wait_exit(Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "SIGINT exit status {st}");
    d.start_again();
    assert_eq!(message_counts(&d, "term").len(), 301);
}

#[test]
fn wait_true_rows_survive_kill_9_exactly_once() {
    let mut d = Daemon::options()
        .arg("--sync-interval-ms")
        .arg("60000")
        .start();
    const CLIENTS: usize = 4;
    const ROWS_PER_REQUEST: usize = 20;
    let stop = AtomicBool::new(false);
    let acked: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    let attempted: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (d, stop, acked, attempted) = (&d, &stop, &acked, &attempted);
            s.spawn(move || {
                let mut req = 0;
                while !stop.load(Ordering::Relaxed) {
                    let rows: Vec<Value> = (0..ROWS_PER_REQUEST)
                        .map(|i| {
                            // Spread over several hours: several segment files.
                            let ts = SEED_TS + ((req * 7 + i) % 5) as i64 * 3600 + c as i64;
                            log_row(&fmt_ts(ts), "crash", "INFO", &format!("c{c}-r{req}-i{i}"))
                        })
                        .collect();
                    attempted.lock().unwrap().push((c, req));
                    let body = ndjson(&rows);
                    match d.try_request(
                        "POST",
                        "/v0/events?name=system_logs&wait=true",
                        Some(&d.token),
                        Some(body.as_bytes()),
                    ) {
                        Ok(r) if r.status == 200 => {
                            assert_eq!(counts(&r.json()), (ROWS_PER_REQUEST as u64, 0));
                            acked.lock().unwrap().push((c, req));
                        }
                        // A full writer queue is the one refusal the
                        // contract allows here (no disk full, no shutdown).
                        Ok(r) => {
                            assert_eq!(r.status, 429, "unexpected answer {}", r.text());
                            assert!(r.header("retry-after").is_some());
                        }
                        Err(_) => break, // the daemon is gone
                    }
                    req += 1;
                }
            });
        }
        // Let the clients get a good number of acknowledgements, then crash
        // the daemon under them.
        let t0 = std::time::Instant::now();
        while acked.lock().unwrap().len() < 40 && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        d.signal(libc::SIGKILL);
        stop.store(true, Ordering::Relaxed);
    });
    let st = d.wait_exit(Duration::from_secs(10));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(libc::SIGKILL),
        "died of our SIGKILL: {st}"
    );
    let acked = acked.into_inner().unwrap();
    let attempted = attempted.into_inner().unwrap();
    assert!(
        acked.len() >= 40,
        "only {} requests acknowledged",
        acked.len()
    );

    d.start_again();
    let m = message_counts(&d, "crash");
    for (c, r) in &acked {
        for i in 0..ROWS_PER_REQUEST {
            let k = format!("c{c}-r{r}-i{i}");
            assert_eq!(
                m.get(&k),
                Some(&1),
                "acknowledged row {k} present {:?} times",
                m.get(&k)
            );
        }
    }
    // Unacknowledged requests: all rows or none, never duplicated.
    for (c, r) in &attempted {
        let n: Vec<u32> = (0..ROWS_PER_REQUEST)
            .map(|i| *m.get(&format!("c{c}-r{r}-i{i}")).unwrap_or(&0))
            .collect();
        assert!(
            n.iter().all(|x| *x == n[0]) && n[0] <= 1,
            "request c{c}-r{r} recovered partially: {n:?}"
        );
    }
    let total: u32 = m.values().sum();
    assert_eq!(total as usize % ROWS_PER_REQUEST, 0);

    // The recovered store accepts writes and survives another crash.
    let extra: Vec<Value> = (0..10)
        .map(|i| log_row(&fmt_ts(SEED_TS), "crash", "INFO", &format!("extra{i}")))
        .collect();
    d.ingest("system_logs", &extra, true);
    d.crash_restart();
    let m2 = message_counts(&d, "crash");
    for (k, v) in &m {
        assert_eq!(m2.get(k), Some(v), "{k} changed across the second crash");
    }
    assert!((0..10).all(|i| m2.get(&format!("extra{i}")) == Some(&1)));
    assert_eq!(d.row_count("system_logs"), m2.values().sum::<u32>() as u64);
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let mut d = Daemon::start();
    let acked: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for c in 0..3 {
            let (d, acked, stop) = (&d, &acked, &stop);
            s.spawn(move || {
                let mut req = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = c * 1_000_000 + req;
                    let rows: Vec<Value> = (0..50)
                        .map(|i| {
                            log_row(&fmt_ts(SEED_TS + i), "drain", "INFO", &format!("{id}-{i}"))
                        })
                        .collect();
                    match d.try_request(
                        "POST",
                        "/v0/events?name=system_logs",
                        Some(&d.token),
                        Some(ndjson(&rows).as_bytes()),
                    ) {
                        Ok(r) if r.status == 202 => acked.lock().unwrap().push(id),
                        Ok(r) => {
                            assert_eq!(r.status, 503, "{}", r.text());
                            r.assert_json_error();
                            break;
                        }
                        Err(_) => break,
                    }
                    req += 1;
                }
            });
        }
        let t0 = std::time::Instant::now();
        while acked.lock().unwrap().len() < 15 && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(2));
        }
        // The clients keep sending until the daemon refuses or is gone.
        d.signal(libc::SIGTERM);
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
    });
    let st = d.wait_exit(Duration::from_secs(30));
    assert_eq!(
        st.code(),
        Some(0),
        "exit status after SIGTERM under load: {st}"
    );
    d.start_again();
    let m = message_counts(&d, "drain");
    for id in acked.into_inner().unwrap() {
        for i in 0..50 {
            assert_eq!(
                m.get(&format!("{id}-{i}")),
                Some(&1),
                "acknowledged row {id}-{i}"
            );
        }
    }
}

#[test]
fn rows_without_wait_are_synced_within_the_interval() {
    let mut d = Daemon::options()
        .arg("--sync-interval-ms")
        .arg("100")
        .start();
    let rows: Vec<Value> = (0..100)
        .map(|i| log_row(&fmt_ts(SEED_TS + i), "bg", "INFO", &format!("bg{i}")))
        .collect();
    assert_eq!(d.ingest("system_logs", &rows, false), (100, 0));
    // Well past the 100 ms interval: a crash may no longer lose them.
    std::thread::sleep(Duration::from_millis(800));
    d.crash_restart();
    let m = message_counts(&d, "bg");
    assert_eq!(
        m.len(),
        100,
        "rows acknowledged 800 ms before kill -9 were lost"
    );
    assert!(m.values().all(|c| *c == 1));
}
