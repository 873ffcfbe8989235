//! `logpulse-compact --retention-days N` drops exactly the hours that ended more than N days before now, of `system_logs` and both quarantines, with their minute counts and index entries, keeps the threshold rows in force (and drops superseded ones in old hours), and leaves every other row and answer as a data dir that never held the dropped rows.

mod common;

use std::path::Path;

use common::*;
use logpulse_engine::{DataSource, Durability, Engine};
use logpulse_model::ingest::{parse_body, Import};

const DAYS: u32 = 3;

/// Rows every 10 minutes over three days (one batch per 6 hours), their
/// quarantine rows stamped with the batch's time, and thresholds of which
/// some in force are old.
fn feed(e: &Engine, keep_from: Option<u32>) {
    let keep = |ts: u32| keep_from.is_none_or(|k| ts >= k);
    let lines = log_lines(DAYS as usize * 144, BASE, DAYS * 24, 3);
    for (b, chunk) in lines.chunks(36).enumerate() {
        let now = BASE + b as u32 * 6 * 3600 + 1800;
        let body = chunk.join("\n");
        let parsed = parse_body(
            DataSource::SystemLogs,
            body.as_bytes(),
            &Import { id: "t", now },
        );
        let rows: Vec<_> = parsed
            .rows
            .into_iter()
            .filter(|r| keep(r.partition_time()))
            .collect();
        e.append(&rows, Durability::Visible).unwrap();
    }
    let th = [
        // (service, severity, per minute, updated_at): auth/ERROR set long ago
        // and still in force; db/WARN superseded by a newer row.
        ("auth", "ERROR", 2.0, BASE + 3600),
        ("db", "WARN", 5.0, BASE + 2 * 3600),
        ("db", "WARN", 1.0, BASE + 2 * 86_400),
    ];
    for (s, v, t, at) in th {
        let line = format!(
            "{{\"service\":\"{s}\",\"severity\":\"{v}\",\"threshold_per_minute\":{t},\"updated_at\":{at}}}"
        );
        if at >= keep_from.unwrap_or(0) || (s, v) == ("auth", "ERROR") {
            let p = parse_body(
                DataSource::Thresholds,
                line.as_bytes(),
                &Import { id: "t", now: at },
            );
            e.append(&p.rows, Durability::Visible).unwrap();
        }
    }
}

fn hours_of(dir: &Path, ds: DataSource) -> Vec<u32> {
    let e = open(dir);
    let mut h: Vec<u32> = e
        .segment_infos()
        .into_iter()
        .filter(|s| s.ds == ds)
        .map(|s| s.id.hour)
        .collect();
    h.dedup();
    h
}

#[test]
fn retention_drops_exactly_the_old_hours() {
    let tmp = tempfile::tempdir().unwrap();
    let subject = tmp.path().join("subject");
    {
        let e = open(&subject);
        feed(&e, None);
        e.close().unwrap();
    }
    // Now is two days and 30 minutes after BASE: with one day of retention,
    // hours ending at or before BASE + 1 day + 30 min go, i.e. hours before
    // BASE/3600 + 24.
    let now = BASE + 2 * 86_400 + 1800;
    let cutoff_hour = BASE / 3600 + 24;
    let all_hours = hours_of(&subject, DataSource::SystemLogs);
    assert!(
        all_hours.iter().any(|h| *h < cutoff_hour) && all_hours.iter().any(|h| *h >= cutoff_hour)
    );

    let now_s = logpulse_model::time::format_datetime(now);
    let dry = stdout(&run(
        compact_bin(),
        &[
            "--data-dir",
            path_str(&subject),
            "--retention-days",
            "1",
            "--now",
            &now_s,
            "--dry-run",
        ],
        0,
    ));
    let out = stdout(&run(
        compact_bin(),
        &[
            "--data-dir",
            path_str(&subject),
            "--retention-days",
            "1",
            "--now",
            &now_s,
        ],
        0,
    ));
    assert!(index_agrees(&subject), "index disagrees after retention");
    let dropped_line = |s: &str| {
        s.lines()
            .find(|l| l.contains("retention"))
            .unwrap()
            .to_string()
    };
    assert!(dropped_line(&out).contains("dropped"), "{out}");

    for ds in [DataSource::SystemLogs, DataSource::SystemLogsQuarantine] {
        let kept = hours_of(&subject, ds);
        let want: Vec<u32> = all_hours
            .iter()
            .copied()
            .filter(|h| *h >= cutoff_hour)
            .collect();
        if ds == DataSource::SystemLogs {
            assert_eq!(kept, want, "{}", ds.name());
        } else {
            assert!(
                kept.iter().all(|h| *h >= cutoff_hour),
                "{}: {kept:?}",
                ds.name()
            );
        }
    }
    // The old hour of the threshold in force stays, the superseded one goes.
    assert_eq!(
        hours_of(&subject, DataSource::Thresholds),
        vec![BASE / 3600 + 1, BASE / 3600 + 48]
    );

    // Everything else as in a data dir that never held the dropped rows.
    let control = tmp.path().join("control");
    {
        let e = open(&control);
        feed(&e, Some(cutoff_hour * 3600));
        e.close().unwrap();
    }
    let (s, c) = (open(&subject), open(&control));
    let rows = |e: &Engine| all_rows(e).0.into_iter().map(|r| r.1).collect::<Vec<_>>();
    assert!(rows(&s) == rows(&c), "surviving rows differ");
    let ths = |e: &Engine| all_rows(e).1.into_iter().map(|r| r.1).collect::<Vec<_>>();
    assert!(ths(&s) == ths(&c), "threshold rows differ");
    for ds in DataSource::ALL {
        assert_eq!(
            s.datasource_stats(ds).rows,
            c.datasource_stats(ds).rows,
            "{}",
            ds.name()
        );
    }
    assert_same(
        &snapshot(&s, BASE, DAYS * 24),
        &snapshot(&c, BASE, DAYS * 24),
        "after retention",
    );
    assert!(dry.contains("would drop"), "{dry}");
    let n = |s: &str| -> u64 {
        let l = dropped_line(s);
        let after = l.split(" segments, ").nth(1).unwrap();
        after.split(' ').next().unwrap().parse().unwrap()
    };
    // The real run also dropped the superseded threshold row; the dry run
    // does not decode thresholds and counts their hours as kept.
    assert_eq!(n(&out), n(&dry) + 1, "{dry}\n{out}");
}
