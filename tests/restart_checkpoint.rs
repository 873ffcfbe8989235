//! The hot checkpoint over the real daemon: after SIGTERM, `logpulsed`
//! reopens without decoding any hot record; after `kill -9` it decodes only
//! what was written since the last checkpoint (taken every 5 s); every
//! acknowledged row is there either way, and the pipes answer the same.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// A metric's value from `/metrics`.
fn metric(d: &Daemon, name: &str) -> f64 {
    let text = d.get("/metrics").text();
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// (hot records the last open took from the checkpoint, decoded).
fn recovery(d: &Daemon) -> (f64, f64) {
    (
        metric(d, "logpulse_recovery_rows_from_checkpoint"),
        metric(d, "logpulse_recovery_rows_scanned"),
    )
}

fn rows(tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| tagged_row(&format!("{tag}-{i}"), SEED_TS + (i as i64 * 37) % 7200))
        .collect()
}

fn answers(d: &Daemon) -> Vec<Value> {
    let window = [
        ("start_time", "2023-06-01 00:00:00"),
        ("end_time", "2023-06-02 00:00:00"),
    ];
    ["recent_logs", "error_distribution"]
        .iter()
        .map(|p| {
            let mut v = d.pipe_json(p, &[&window[..], &[("limit", "10000")]].concat());
            v.as_object_mut().unwrap().remove("statistics");
            v
        })
        .collect()
}

#[test]
fn restarts_decode_only_what_the_checkpoint_does_not_cover() {
    if common::clickhouse::embedded_only("the restart checkpoint of segment files") {
        return;
    }
    // Background compaction off: every row stays in hot segments.
    let mut d = Daemon::options()
        .args(["--compaction-delay-secs".to_string(), "0".to_string()])
        .start();
    d.ingest("system_logs", &rows("a", 3000), true);
    assert_eq!(recovery(&d), (0.0, 0.0));

    // SIGTERM: the clean stop checkpoints everything.
    d.restart();
    assert_eq!(d.row_count("system_logs"), 3000);
    assert_eq!(recovery(&d), (3000.0, 0.0), "{}", d.log());
    let before = answers(&d);

    // Rows after the last checkpoint, then kill -9 before the next one.
    std::thread::sleep(Duration::from_secs(6));
    d.ingest("system_logs", &rows("b", 400), true);
    d.kill9();
    d.start_again();
    assert_eq!(d.row_count("system_logs"), 3400);
    let (from_checkpoint, decoded) = recovery(&d);
    assert!(
        from_checkpoint >= 3000.0 && decoded <= 400.0 && from_checkpoint + decoded == 3400.0,
        "checkpoint {from_checkpoint}, decoded {decoded}\n{}",
        d.log()
    );

    // Without the checkpoint, the same rows decoded: the same answers.
    d.ingest("system_logs", &rows("c", 10), true);
    let with_checkpoint = answers(&d);
    d.stop();
    std::fs::remove_dir_all(d.data_dir.join("checkpoint")).unwrap();
    d.start_again();
    assert_eq!(recovery(&d), (0.0, 3410.0));
    assert_eq!(answers(&d), with_checkpoint);
    assert_ne!(
        before, with_checkpoint,
        "the later rows changed the answers"
    );
}
