//! `logpulse-compact` changes no answer: after compacting the closed hours of every data source (several files per hour, late rows, thresholds, quarantine), and again after late rows arrive in compacted hours and those are compacted once more, every row keeps its seq, every query, row count, minute count and threshold equals that of an identical data dir that was never compacted, the open hour stays hot, the sled index agrees with the segments, and `--verify-only` finds no damage.

mod common;

use std::path::Path;

use common::*;
use logpulse_engine::{DataSource, Engine, EngineConfig};

const HOURS: u32 = 5;

fn small_segments(dir: &Path) -> Engine {
    let mut c = EngineConfig::new(dir);
    c.segment_bytes_max = 48 << 10;
    Engine::open(c).unwrap()
}

/// Appends the same batches to both data dirs.
fn feed(dirs: [&Path; 2], step: u32) {
    for d in dirs {
        let e = small_segments(d);
        let logs = log_lines(1500, BASE, HOURS, 100 + step as u64);
        append_like_api(&e, DataSource::SystemLogs, &logs, 211);
        if step == 0 {
            append_like_api(&e, DataSource::Thresholds, &threshold_lines(BASE), 5);
        }
        e.close().unwrap();
    }
}

fn compact(dir: &Path) -> String {
    let now = logpulse_model::time::format_datetime(BASE + (HOURS - 1) * 3600 + 10);
    stdout(&run(
        compact_bin(),
        &[
            "--data-dir",
            path_str(dir),
            "--now",
            &now,
            "--block-rows",
            "97",
            "--threads",
            "2",
        ],
        0,
    ))
}

fn assert_equal(subject: &Path, control: &Path, what: &str) {
    let (s, c) = (open(subject), open(control));
    assert!(all_rows(&s) == all_rows(&c), "{what}: rows or seqs differ");
    assert_same(&snapshot(&s, BASE, HOURS), &snapshot(&c, BASE, HOURS), what);
    for ds in DataSource::ALL {
        assert_eq!(
            s.datasource_stats(ds).rows,
            c.datasource_stats(ds).rows,
            "{what}"
        );
    }
}

#[test]
fn compaction_and_recompaction_change_no_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (subject, control) = (tmp.path().join("subject"), tmp.path().join("control"));
    feed([&subject, &control], 0);
    let before: Vec<_> = open(&subject).segment_infos();
    assert!(
        before.len() > HOURS as usize * 2,
        "several files per hour expected: {}",
        before.len()
    );

    let out = compact(&subject);
    assert!(
        out.contains("compacted") && out.contains("bytes/row"),
        "{out}"
    );
    assert!(index_agrees(&subject), "index disagrees after compaction");
    {
        let e = open(&subject);
        let open_hour = BASE / 3600 + HOURS - 1;
        for s in e.segment_infos() {
            assert_eq!(s.compact, s.id.hour < open_hour, "{s:?}");
        }
        let closed: Vec<_> = e
            .segment_infos()
            .into_iter()
            .filter(|s| s.compact)
            .collect();
        let mut hours: Vec<_> = closed.iter().map(|s| (s.ds, s.id.hour)).collect();
        hours.dedup();
        assert_eq!(
            hours.len(),
            closed.len(),
            "one compact segment per closed hour"
        );
    }
    assert_equal(&subject, &control, "after compaction");

    // Late rows into compacted hours go to new hot files; compacting again
    // merges them with the compact segment.
    feed([&subject, &control], 1);
    assert!(open(&subject)
        .segment_infos()
        .iter()
        .any(|s| !s.compact && s.id.hour < BASE / 3600 + 2));
    assert_equal(&subject, &control, "late rows after compaction");
    compact(&subject);
    assert!(index_agrees(&subject), "index disagrees after recompaction");
    assert_equal(&subject, &control, "after recompaction");

    // Nothing left to do: a second run changes nothing.
    let files = tree(&subject.join("system_logs"));
    let out = compact(&subject);
    assert!(out.contains("compacted 0 hours"), "{out}");
    assert_eq!(tree(&subject.join("system_logs")), files);

    let out = run(
        compact_bin(),
        &["--data-dir", path_str(&subject), "--verify-only"],
        0,
    );
    assert!(stdout(&out).contains("no damage"), "{}", stdout(&out));
}

#[test]
fn dry_run_reports_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (subject, control) = (tmp.path().join("subject"), tmp.path().join("control"));
    feed([&subject, &control], 0);
    let files = tree(&subject);
    let now = logpulse_model::time::format_datetime(BASE + (HOURS - 1) * 3600 + 10);
    let out = stdout(&run(
        compact_bin(),
        &["--data-dir", path_str(&subject), "--now", &now, "--dry-run"],
        0,
    ));
    // Four closed hours of system_logs and its quarantine, and the hours of
    // the thresholds rows (a day back, one a day).
    assert!(out.contains("would compact"), "{out}");
    assert!(!out.contains("would compact 0 hours"), "{out}");
    let mut after = tree(&subject);
    // The lock file records the last holder: the dry run itself.
    after.retain(|(p, _)| !p.ends_with("LOCK"));
    let mut files = files;
    files.retain(|(p, _)| !p.ends_with("LOCK"));
    assert_eq!(after, files);
}
