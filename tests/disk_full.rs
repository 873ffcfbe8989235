//! Proves the disk-full promise on a real full filesystem (a 16 MiB tmpfs,
//! so the test needs root; it prints SKIPPED otherwise, and fails under CI=true): ingestion is
//! answered 503 `{"error"}` once the disk is full, nothing of a refused
//! request becomes visible (counts equal the acknowledged rows exactly),
//! queries keep working, ingestion resumes once space is freed, and every
//! acknowledged row survives `kill -9` and a clean restart.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use common::tmpfs::Tmpfs;
use common::*;
use serde_json::Value;

fn request(tag: &str, rows: usize, hour: i64) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    let mut body = String::new();
    for i in 0..rows {
        let id = format!("{tag}-{i}");
        // Every request spans two hours (two segment files): a reservation
        // that fails for the second must not leave the first visible.
        let ts = SEED_TS + (hour + i as i64 % 2) * 3600 + (i as i64 % 3600);
        body.push_str(&tagged_row(&id, ts).to_string());
        body.push('\n');
        ids.push(id);
    }
    (ids, body)
}

const HOURS: i64 = 24;

/// Every row the daemon serves (hour by hour), checked column by column.
fn served(d: &Daemon) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for h in 0..HOURS + 2 {
        let v = d.pipe_json(
            "recent_logs",
            &[
                ("start_time", &fmt_ts(SEED_TS / 3600 * 3600 + h * 3600)),
                ("end_time", &fmt_ts(SEED_TS / 3600 * 3600 + (h + 1) * 3600)),
                ("limit", "10000"),
            ],
        );
        let data = v["data"].as_array().unwrap();
        assert_eq!(
            v["rows_before_limit_at_least"].as_u64(),
            Some(data.len() as u64)
        );
        for r in data {
            assert!(out.insert(check_tagged(r).0), "row served twice: {r}");
        }
    }
    assert_eq!(d.row_count("system_logs"), out.len() as u64);
    let dist = d.pipe_json("error_distribution", &[("limit", "100")]);
    let total: u64 = dist["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, out.len() as u64, "error_distribution total");
    out
}

fn post(d: &Daemon, body: &str, wait: bool) -> Resp {
    let path = if wait {
        "/v0/events?name=system_logs&wait=true"
    } else {
        "/v0/events?name=system_logs"
    };
    d.post(path, body.as_bytes())
}

fn fill_until_503(d: &Daemon, acked: &mut BTreeSet<String>, round: &str) -> u64 {
    let mut refused = 0;
    let mut consecutive = 0;
    for n in 0..5000 {
        // Many hours: new segment files (each reserving its first 256 KiB)
        // as well as growth of existing ones.
        let (ids, body) = request(&format!("{round}-r{n}"), 150, n % HOURS);
        let wait = n & 1 == 0;
        let r = post(d, &body, wait);
        match r.status {
            200 | 202 => {
                assert_eq!(counts(&r.json()), (ids.len() as u64, 0));
                acked.extend(ids);
                consecutive = 0;
            }
            503 => {
                let msg = r.assert_error(503);
                assert!(msg.contains("disk full"), "503 for another reason: {msg}");
                refused += 1;
                consecutive += 1;
                if consecutive == 5 {
                    return refused;
                }
            }
            s => panic!("unexpected answer {s} while filling the disk: {}", r.text()),
        }
    }
    panic!("the 16 MiB disk never filled up");
}

#[test]
fn full_disk_answers_503_stores_nothing_partial_and_recovers() {
    if common::clickhouse::embedded_only("the data dir on a full filesystem") {
        return;
    }
    let fs = match Tmpfs::mount("16m") {
        Ok(fs) => fs,
        Err(e) => {
            skip(&format!(
                "cannot mount tmpfs ({e}); run as root for the disk-full test"
            ));
            return;
        }
    };
    let t0 = Instant::now();
    // Space to free later.
    let filler = fs.path.join("filler");
    std::fs::write(&filler, vec![0x55u8; 3 << 20]).unwrap();
    let data: &Path = &fs.path.join("data");
    let mut d = Daemon::options()
        .data_dir(data)
        .arg("--min-free-disk-bytes")
        .arg("0")
        .start();
    let mut acked = BTreeSet::new();
    let refused = fill_until_503(&d, &mut acked, "a");
    // Queries keep working and show exactly the acknowledged rows.
    assert_eq!(served(&d), acked, "rows visible after disk full");
    let h = d.get("/v0/health");
    assert_eq!(h.status, 200);
    let v: Value = d.pipe_json("log_anomalies", &[("time_window_minutes", "60")]);
    assert!(v["data"].is_array());
    // Thresholds are refused too, and do not appear.
    let th = d.post(
        "/v0/events?name=log_anomaly_thresholds&wait=true",
        br#"{"service":"auth","severity":"ERROR","threshold_per_minute":1}"#,
    );
    if th.status == 503 {
        th.assert_error(503);
        assert_eq!(d.row_count("log_anomaly_thresholds"), 0);
    }
    // Free space: ingestion resumes.
    std::fs::remove_file(&filler).unwrap();
    let (ids, body) = request("resumed", 100, 1);
    let r = post(&d, &body, true);
    assert_eq!(r.status, 200, "after freeing space: {}", r.text());
    acked.extend(ids);
    assert_eq!(served(&d), acked);
    // Everything acknowledged survives kill -9 and a clean restart.
    d.crash_restart();
    assert_eq!(served(&d), acked, "after kill -9");
    // Fill it again, then restart on the full disk.
    let refused2 = fill_until_503(&d, &mut acked, "b");
    assert_eq!(served(&d), acked, "rows visible after the second disk full");
    d.crash_restart();
    assert_eq!(served(&d), acked, "after kill -9 on a full disk");
    d.restart();
    assert_eq!(served(&d), acked, "after a clean restart on a full disk");
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
    println!(
        "disk_full: {} acknowledged rows all present, {refused} + {refused2} requests refused with 503 and invisible, resumed after freeing 3 MiB, in {:?}",
        acked.len(),
        t0.elapsed()
    );
    if std::env::var_os("LP_SHOW_LOG").is_some() {
        println!("{log}");
    }
    drop(d);
}
