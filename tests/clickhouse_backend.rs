//! The ClickHouse backend against the embedded engine and against faults,
//! over the real `logpulsed` and a real two-shard ClickHouse cluster on
//! loopback (`tests/clickhouse/cluster.sh`). Runs with
//! `LP_TEST_BACKEND=clickhouse` (as `.ci/run`'s second pass does); the rest
//! of the suite runs on that backend too in that pass.
//!
//! - both backends give the same answers, byte for byte, on the same rows;
//! - two `logpulsed` nodes on one cluster answer alike and share tokens;
//! - `kill -9` under `wait=true` load loses no acknowledged row;
//! - a ClickHouse node stopped: 503s quickly, nothing acknowledged is lost,
//!   full service once it is back.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::clickhouse;
use common::*;
use serde_json::{json, Value};

fn clickhouse_run() -> bool {
    if !clickhouse::enabled() {
        println!("runs with LP_TEST_BACKEND=clickhouse (.ci/run's second pass)");
    }
    clickhouse::enabled()
}

/// Rows with ties on timestamps, many keys and minutes, over three hours.
fn sample_rows() -> Vec<Value> {
    let base = 1_764_669_600i64; // 2025-12-02 10:00:00
    let services = ["api", "auth", "db", "api-gateway-7f9c2", "cache"];
    let severities = ["ERROR", "warn", "INFO", "Critical"];
    let mut rows = Vec::new();
    for i in 0..1500i64 {
        let svc = services[(i * 7 % 5) as usize];
        let sev = severities[(i * 3 % 4) as usize];
        // bursts at 10:30 (in the baseline) and 12:30 (in the window)
        let ts = if i % 9 == 0 {
            base + 30 * 60 + (i % 50)
        } else if i % 13 == 0 {
            base + 150 * 60 + (i % 40)
        } else {
            base + (i * 37) % (3 * 3600)
        };
        rows.push(json!({
            "timestamp": fmt_ts(ts),
            "server_id": format!("srv-{}", i % 3),
            "service": svc,
            "severity": sev,
            "message": format!("event {i}: Timeout talking to upstream {}", i % 11),
            "error_code": if i % 4 == 0 { "E42" } else { "" },
            "metadata": {"i": i, "path": "/söme"},
        }));
    }
    rows
}

fn thresholds() -> Vec<Value> {
    vec![
        json!({"service": "api", "severity": "error", "threshold_per_minute": 5, "updated_at": "2025-12-01 00:00:00"}),
        // the same updated_at: the one ingested last is in force
        json!({"service": "api", "severity": "error", "threshold_per_minute": 2.5, "updated_at": "2025-12-01 00:00:00"}),
        json!({"service": "db", "severity": "warn", "threshold_per_minute": 1, "updated_at": "2025-12-01 00:00:00"}),
        // switched off by a later row
        json!({"service": "cache", "severity": "info", "threshold_per_minute": 1, "updated_at": "2025-12-01 00:00:00"}),
        json!({"service": "cache", "severity": "info", "threshold_per_minute": 1, "active": 0, "updated_at": "2025-12-01 01:00:00"}),
    ]
}

/// Every pipe with a spread of parameters, in every format.
fn pipe_calls() -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let mut out = Vec::new();
    let win = [
        ("start_time", "2025-12-02 10:20:00"),
        ("end_time", "2025-12-02 11:40:00"),
    ];
    for fmt in ["json", "csv", "ndjson"] {
        out.push((format!("recent_logs.{fmt}"), vec![("limit", "50")]));
        out.push((
            format!("recent_logs.{fmt}"),
            vec![win[0], win[1], ("service", "api"), ("severity", "error")],
        ));
        out.push((
            format!("recent_logs.{fmt}"),
            vec![
                ("contains", "TIMEOUT talking to upstream 7"),
                ("limit", "20"),
            ],
        ));
        out.push((format!("error_distribution.{fmt}"), vec![]));
        out.push((
            format!("error_distribution.{fmt}"),
            vec![win[0], win[1], ("limit", "3")],
        ));
        out.push((
            format!("log_anomalies.{fmt}"),
            vec![
                ("end_time", "2025-12-02 13:00:00"),
                ("time_window_minutes", "240"),
            ],
        ));
        out.push((
            format!("log_baseline_anomalies.{fmt}"),
            vec![
                ("end_time", "2025-12-02 13:00:00"),
                ("time_window_minutes", "90"),
                ("baseline_hours", "2"),
                ("z", "1"),
                ("min_count", "2"),
            ],
        ));
        out.push((
            format!("log_timeseries.{fmt}"),
            vec![win[0], win[1], ("step_minutes", "7"), ("limit", "40")],
        ));
        out.push((format!("anomaly_thresholds.{fmt}"), vec![]));
    }
    out
}

/// A pipe's answer without what differs by nature (timings, bytes read).
fn comparable(d: &Daemon, file: &str, params: &[(&str, &str)]) -> String {
    let r = d.pipe(file, params);
    assert_eq!(r.status, 200, "{file} {params:?}: {}", r.text());
    if file.ends_with(".json") {
        let mut v = r.json();
        v.as_object_mut().unwrap().remove("statistics");
        v.to_string()
    } else {
        r.text()
    }
}

#[test]
fn both_backends_answer_alike_on_the_same_rows() {
    if !clickhouse_run() {
        return;
    }
    let embedded = Daemon::options().embedded().start();
    let ch = Daemon::start();
    let rows = sample_rows();
    for d in [&embedded, &ch] {
        for chunk in rows.chunks(500) {
            d.ingest("system_logs", chunk, true);
        }
        for t in thresholds() {
            d.ingest("log_anomaly_thresholds", &[t], true);
        }
        d.post(
            "/v0/events?name=system_logs&wait=true",
            b"{\"service\":\"x\"}\n",
        );
    }
    let mut compared = 0;
    for (file, params) in pipe_calls() {
        let a = comparable(&embedded, &file, &params);
        let b = comparable(&ch, &file, &params);
        assert_eq!(a, b, "{file} {params:?} differs between the backends");
        compared += 1;
    }
    // The comparison is worth something only if the answers have rows.
    for (pipe, params) in pipe_calls()
        .into_iter()
        .filter(|(f, _)| f.ends_with(".json"))
    {
        let v: Value = serde_json::from_str(&comparable(&ch, &pipe, &params)).unwrap();
        assert!(
            v["rows"].as_u64().unwrap() > 0,
            "{pipe} {params:?} answered no row"
        );
    }
    assert_eq!(ch.row_count("system_logs"), 1500);
    assert_eq!(ch.row_count("system_logs_quarantine"), 1);
    for sql in [
        "SELECT service, count() AS c FROM system_logs GROUP BY service ORDER BY service",
        "SELECT c__error_column FROM system_logs_quarantine",
    ] {
        let q = format!("/v0/sql?q={}", enc(&format!("{sql} FORMAT JSONEachRow")));
        assert_eq!(embedded.get(&q).text(), ch.get(&q).text(), "{sql}");
    }
    println!("{compared} pipe answers identical on both backends");
}

#[test]
fn two_nodes_on_one_cluster_answer_alike_and_share_tokens() {
    if !clickhouse_run() {
        return;
    }
    let target = ClickHouseTarget::fresh();
    let a = Daemon::options().clickhouse(target.clone()).start();
    let mut opts = Daemon::options().clickhouse(target.shared());
    opts.admin_token = Some(a.token.clone());
    let b = opts.start();
    let rows = sample_rows();
    // Many requests: each goes to one shard.
    for chunk in rows[..700].chunks(50) {
        a.ingest("system_logs", chunk, false);
    }
    for chunk in rows[700..].chunks(50) {
        b.ingest("system_logs", chunk, true);
    }
    for t in thresholds() {
        a.ingest("log_anomaly_thresholds", &[t], true);
    }
    for (file, params) in pipe_calls() {
        assert_eq!(
            comparable(&a, &file, &params),
            comparable(&b, &file, &params),
            "{file} {params:?}"
        );
    }
    assert_eq!(a.row_count("system_logs"), 1500);
    // Rows live on both shards.
    let per_shard: Vec<u64> = [1u32, 2]
        .iter()
        .map(|n| {
            ureq::post(&format!("http://127.0.0.1:1812{n}/"))
                .send_string(&format!(
                    "SELECT count() FROM `{}`.system_logs_local",
                    target.database
                ))
                .unwrap()
                .into_string()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(per_shard.iter().all(|c| *c > 300), "{per_shard:?}");
    assert_eq!(per_shard.iter().sum::<u64>(), 1500);
    // A token created on one node works on the other; deleted, it stops.
    let tok = a.create_token("reader", &["PIPES:READ:recent_logs"]);
    let path = "/v0/pipes/recent_logs.json?limit=1";
    wait_for(
        || b.get_as(path, Some(&tok)).status == 200,
        "token on node b",
    );
    assert_eq!(
        b.get_as("/v0/pipes/error_distribution.json", Some(&tok))
            .status,
        403
    );
    assert_eq!(
        a.get("/v0/workspace").json()["id"],
        b.get("/v0/workspace").json()["id"]
    );
    let r = b.request("DELETE", "/v0/tokens/reader", Some(&b.token), &[], None);
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    wait_for(
        || a.get_as(path, Some(&tok)).status == 403,
        "deletion on node a",
    );
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Posts batches of numbered rows with wait=true from `threads` writers
/// until `stop`; returns the numbers acknowledged.
fn load(
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    threads: usize,
) -> Vec<std::thread::JoinHandle<Vec<u64>>> {
    (0..threads)
        .map(|t| {
            let (base, token, stop) = (base.clone(), token.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(20))
                    .build();
                let mut acked = Vec::new();
                let mut n = (t as u64) << 32;
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<u64> = (n..n + 20).collect();
                    n += 20;
                    let body: String = ids
                        .iter()
                        .map(|i| {
                            format!(
                                "{{\"timestamp\":\"2026-01-01 00:00:00\",\"service\":\"load\",\"severity\":\"INFO\",\"message\":\"row {i}\"}}\n"
                            )
                        })
                        .collect();
                    let r = agent
                        .post(&format!("{base}/v0/events?name=system_logs&wait=true"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .send_string(&body);
                    match r {
                        Ok(resp) if resp.status() == 200 => acked.extend(ids),
                        Ok(_) | Err(ureq::Error::Status(..)) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                acked
            })
        })
        .collect()
}

/// The numbers of the `row N` messages stored, read straight from ClickHouse.
fn stored_ids(target: &ClickHouseTarget) -> std::collections::HashSet<u64> {
    clickhouse::query(
        &target.urls,
        &format!(
            "SELECT message FROM `{}`.system_logs WHERE service = 'load' FORMAT TSV",
            target.database
        ),
    )
    .lines()
    .filter_map(|l| l.strip_prefix("row ")?.parse().ok())
    .collect()
}

#[test]
fn kill_9_under_wait_load_loses_no_acknowledged_row() {
    if !clickhouse_run() {
        return;
    }
    let target = ClickHouseTarget::fresh();
    let mut d = Daemon::options().clickhouse(target.clone()).start();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = load(d.base.clone(), d.token.clone(), stop.clone(), 3);
    std::thread::sleep(Duration::from_millis(1500));
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<u64> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(acked.len() >= 100, "only {} rows acknowledged", acked.len());
    d.start_again();
    let stored = stored_ids(&target);
    let lost: Vec<&u64> = acked.iter().filter(|i| !stored.contains(i)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged rows lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // The restarted node serves them, and seqs keep increasing.
    let before = d.row_count("system_logs");
    assert!(before >= acked.len() as u64);
    d.ingest(
        "system_logs",
        &[log_row(
            "2026-01-01 00:00:01",
            "after",
            "INFO",
            "after restart",
        )],
        true,
    );
    let newest = d.pipe_json("recent_logs", &[("service", "after")]);
    assert_eq!(messages(&newest), ["after restart"]);
}

#[test]
fn a_clickhouse_node_stopped_gives_503_then_service_resumes_with_nothing_lost() {
    if !clickhouse_run() {
        return;
    }
    // Nodes 3 and 4 form a cluster of their own, so stopping one does not
    // disturb the tests running beside this one on nodes 1 and 2.
    clickhouse::ensure_nodes(&[3, 4]);
    let target = ClickHouseTarget {
        urls: "http://127.0.0.1:18123,http://127.0.0.1:18124".into(),
        cluster: "logpulse_b".into(),
        database: clickhouse::fresh_database(),
        owner: true,
    };
    let d = Daemon::options().clickhouse(target.clone()).start();
    d.ingest(
        "system_logs",
        &[log_row("2026-01-01 00:00:00", "load", "INFO", "row 1")],
        true,
    );

    clickhouse::stop_nodes(&["4".into()]);
    // A request's rows go to one shard (by a hash of its first seq): those
    // bound for the stopped one are refused with 503, quickly; those bound
    // for the other are stored and acknowledged.
    let mut acked = vec![1u64];
    let mut refused = 0;
    for i in 10..40u64 {
        let t0 = Instant::now();
        let r = d.post(
            "/v0/events?name=system_logs&wait=true",
            ndjson(&[log_row(
                "2026-01-01 00:00:00",
                "load",
                "INFO",
                &format!("row {i}"),
            )])
            .as_bytes(),
        );
        let took = t0.elapsed();
        match r.status {
            200 => acked.push(i),
            503 => {
                r.assert_json_error();
                assert!(took < Duration::from_secs(12), "the 503 took {took:?}");
                refused += 1;
            }
            s => panic!("ingest with a shard down: {s} {}", r.text()),
        }
    }
    assert!(refused > 0, "no request was bound for the stopped shard");
    let q = d.pipe("recent_logs.json", &[]);
    assert_eq!(q.status, 503, "a query with a shard down: {}", q.text());
    q.assert_json_error();
    assert_eq!(
        d.get("/v0/health").status,
        200,
        "the daemon itself stays up"
    );

    clickhouse::start_nodes(&["4".into()]);
    let t0 = Instant::now();
    loop {
        let r = d.post(
            "/v0/events?name=system_logs&wait=true",
            ndjson(&[log_row("2026-01-01 00:00:00", "load", "INFO", "row 3")]).as_bytes(),
        );
        if r.status == 200 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no service after the node came back: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    acked.push(3);
    let stored = stored_ids(&target);
    let lost: Vec<_> = acked.iter().filter(|i| !stored.contains(i)).collect();
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");
    let v = d.pipe_json("recent_logs", &[("service", "load")]);
    assert!(messages(&v).contains(&"row 3".to_string()));
}
