//! Failures of the write path, injected at the daemon's sync points
//! (`LOGPULSE_TEST_FAULTS`, see tests/common/power_cut.rs), over real HTTP:
//! a failed fsync poisons the writer (503 on every later append until a
//! restart, queries still served, nothing acknowledged lost), and a stalled
//! writer fills its queue (429 with `Retry-After` and `X-RateLimit-*`, the
//! stalled requests completing once it resumes).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::power_cut::Faults;
use common::*;

fn stored_messages(d: &Daemon) -> HashSet<String> {
    let v = d.pipe_json(
        "recent_logs",
        &[("limit", "10000"), ("start_time", "2000-01-01 00:00:00")],
    );
    messages(&v).into_iter().collect()
}

fn append(d: &Daemon, ids: &[String], ts: i64, wait: bool) -> Resp {
    let rows: Vec<_> = ids.iter().map(|id| tagged_row(id, ts)).collect();
    let path = if wait {
        "/v0/events?name=system_logs&wait=true"
    } else {
        "/v0/events?name=system_logs"
    };
    d.post(path, ndjson(&rows).as_bytes())
}

#[test]
fn a_failed_fsync_stops_every_append_until_restart_and_loses_nothing_acknowledged() {
    if common::clickhouse::embedded_only("the embedded writer's injected faults") {
        return;
    }
    let faults = Faults::new();
    let mut d = faults.options(Daemon::options(), None).start();
    let ts = now_secs() - 300;
    let mut acked = Vec::new();
    for i in 0..20 {
        let ids: Vec<String> = (0..5).map(|j| format!("ok{i}-{j}")).collect();
        let r = append(&d, &ids, ts, true);
        assert_eq!(r.status, 200, "{}", r.text());
        acked.extend(ids);
    }
    faults.fail_fsync(true);
    let r = append(&d, &["doomed".to_string()], ts, true);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("i/o error"));
    // The fault is gone, but a failed fsync is never retried: the writer
    // stays poisoned, for appends with and without wait.
    faults.fail_fsync(false);
    for wait in [true, false, true] {
        let r = append(&d, &["after".to_string()], ts, wait);
        assert_eq!(r.status, 503, "wait={wait}: {}", r.text());
        assert!(r.json()["error"].is_string());
    }
    // Queries keep working, on everything acknowledged.
    let stored = stored_messages(&d);
    assert!(acked.iter().all(|id| stored.contains(id)));
    assert!(!stored.contains("after"));
    assert_eq!(d.get("/v0/health").status, 200);
    // What survives is what was durable: cut the power and restart from it.
    faults.power_cut(&mut d);
    d.start_again();
    let stored = stored_messages(&d);
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");
    assert!(!stored.contains("after"));
    // After the restart appends work again.
    let r = append(&d, &["again".to_string()], ts, true);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_stalled_writer_fills_its_queue_and_answers_429_then_catches_up() {
    if common::clickhouse::embedded_only("the embedded writer's injected faults") {
        return;
    }
    let faults = Faults::new();
    let opts = Daemon::options()
        .arg("--queue-batches-max")
        .arg("2")
        .arg("--ingest-concurrency-max")
        .arg("64");
    let d = faults.options(opts, None).start();
    let ts = now_secs() - 300;
    faults.stall(true);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for c in 0..12 {
            let (d, results) = (&d, &results);
            s.spawn(move || {
                let id = format!("q{c}");
                let r = append(d, std::slice::from_ref(&id), ts, true);
                results.lock().unwrap().push((id, r));
            });
        }
        // The writer is stuck in the sync of its first group: the queue
        // fills behind it, and the requests that find it full are refused at
        // once while the others wait.
        let t0 = Instant::now();
        let mut last = (0, Instant::now());
        loop {
            let n = results.lock().unwrap().len();
            if n != last.0 {
                last = (n, Instant::now());
            } else if n > 0 && last.1.elapsed() > Duration::from_millis(500) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no 429 from a full queue"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let answered = results.lock().unwrap().len();
        assert!(
            answered <= 12 - 3,
            "only {} requests stalled",
            12 - answered
        );
        assert!(results.lock().unwrap().iter().all(|(_, r)| r.status == 429));
        faults.stall(false);
    });
    let results = results.into_inner().unwrap();
    let mut refused = 0;
    let mut ok = Vec::new();
    for (id, r) in &results {
        match r.status {
            200 => ok.push(id.clone()),
            429 => {
                refused += 1;
                assert!(
                    r.json()["error"]
                        .as_str()
                        .unwrap()
                        .contains("ingestion is behind"),
                    "a 429 not from the queue: {}",
                    r.text()
                );
                assert_eq!(r.header("retry-after"), Some("1"));
                for h in [
                    "x-ratelimit-limit",
                    "x-ratelimit-remaining",
                    "x-ratelimit-reset",
                ] {
                    assert!(r.header(h).is_some(), "429 without {h}");
                }
            }
            other => panic!("{id}: {other} {}", r.text()),
        }
    }
    assert!(
        refused >= 1 && ok.len() >= 3,
        "{refused} refused, {} stored",
        ok.len()
    );
    assert_eq!(refused + ok.len(), 12);
    let stored = stored_messages(&d);
    assert!(ok.iter().all(|id| stored.contains(id)));
    assert_eq!(stored.len(), ok.len());
}
