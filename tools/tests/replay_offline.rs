//! An offline `logpulse-replay` stores exactly what the Events API path (`parse_body` + `Engine::append` in batches) stores: the same rows with the same seqs, and the same answer to every query, row count, minute count and threshold; also from several files, `.gz` and stdin, resumed with `--from-line`, and when copying a data dir with `--from-data-dir`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use logpulse_engine::DataSource;

const HOURS: u32 = 5;

#[test]
fn replay_equals_the_events_api_path() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = log_lines(4000, BASE, HOURS, 7);
    let thresholds = threshold_lines(BASE);
    let (a, b) = (
        logs.split_at(1500).0.to_vec(),
        logs.split_at(1500).1.to_vec(),
    );
    let f1 = tmp.path().join("part1.ndjson");
    write_lines(&f1, &a);
    // The second part gzipped, and its last line without a newline.
    let f2 = tmp.path().join("part2.ndjson.gz");
    {
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&f2).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b.join("\n").as_bytes()).unwrap();
        gz.finish().unwrap();
    }
    let ft = tmp.path().join("thresholds.ndjson");
    write_lines(&ft, &thresholds);

    let replayed = tmp.path().join("replayed");
    let d = path_str(&replayed);
    let out = run(
        replay_bin(),
        &[
            "--data-dir",
            d,
            "--datasource",
            "log_anomaly_thresholds",
            "--batch-rows",
            "7",
            path_str(&ft),
        ],
        0,
    );
    assert!(stdout(&out).contains(" 1 quarantined"), "{}", stdout(&out));
    let out = run(
        replay_bin(),
        &[
            "--data-dir",
            d,
            "--datasource",
            "system_logs",
            "--batch-rows",
            "300",
            path_str(&f1),
            path_str(&f2),
        ],
        0,
    );
    let summary = stdout(&out);
    assert!(
        summary.contains("quarantined") && summary.contains("rows/s"),
        "{summary}"
    );
    assert!(summary.contains("first quarantine reasons: "), "{summary}");

    let direct = tmp.path().join("direct");
    {
        let e = open(&direct);
        append_like_api(&e, DataSource::Thresholds, &thresholds, 7);
        append_like_api(&e, DataSource::SystemLogs, &logs, 300);
        e.close().unwrap();
    }
    let (e1, e2) = (open(&replayed), open(&direct));
    assert!(all_rows(&e1) == all_rows(&e2), "rows and seqs differ");
    assert_same(
        &snapshot(&e1, BASE, HOURS),
        &snapshot(&e2, BASE, HOURS),
        "replayed vs direct",
    );
    let stored = e1.datasource_stats(DataSource::SystemLogs).rows;
    let quarantined = e1.datasource_stats(DataSource::SystemLogsQuarantine).rows;
    assert!(stored > 3500 && quarantined > 50, "{stored} {quarantined}");
    assert_eq!(
        stored + quarantined,
        logs.iter().filter(|l| !l.is_empty()).count() as u64
    );
    assert!(
        summary.contains(&format!("{stored} rows stored, {quarantined} quarantined")),
        "{summary}"
    );
}

#[test]
fn stdin_and_from_line_resume_where_a_replay_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = log_lines(1200, BASE, 2, 11);
    let f = tmp.path().join("all.ndjson");
    write_lines(&f, &logs);

    // Lines 0..500 from stdin, then the rest by --from-line.
    let resumed = tmp.path().join("resumed");
    let mut child = Command::new(replay_bin())
        .args([
            "--data-dir",
            path_str(&resumed),
            "--datasource",
            "system_logs",
            "--batch-rows",
            "64",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = logs[..500].join("\n");
    head.push('\n');
    child
        .stdin
        .take()
        .unwrap()
        .write_all(head.as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    run(
        replay_bin(),
        &[
            "--data-dir",
            path_str(&resumed),
            "--datasource",
            "system_logs",
            "--from-line",
            "500",
            path_str(&f),
        ],
        0,
    );
    let whole = tmp.path().join("whole");
    run(
        replay_bin(),
        &[
            "--data-dir",
            path_str(&whole),
            "--datasource",
            "system_logs",
            path_str(&f),
        ],
        0,
    );
    let (e1, e2) = (open(&resumed), open(&whole));
    // Batches differ (quarantine rows come first in a batch), so seqs may
    // differ; the rows and their order may not.
    let rows = |e| all_rows(e).0.into_iter().map(|r| r.1).collect::<Vec<_>>();
    assert!(rows(&e1) == rows(&e2), "rows differ");
    assert_same(
        &snapshot(&e1, BASE, 2),
        &snapshot(&e2, BASE, 2),
        "resumed vs whole",
    );
}

#[test]
fn from_data_dir_copies_rows_in_ingestion_order() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    {
        let e = open(&src);
        let logs = log_lines(2500, BASE, 3, 5);
        let th = threshold_lines(BASE);
        // Thresholds interleaved with logs, so their relative order matters.
        append_like_api(&e, DataSource::Thresholds, &th[..10], 4);
        append_like_api(&e, DataSource::SystemLogs, &logs[..1000], 250);
        append_like_api(&e, DataSource::Thresholds, &th[10..], 4);
        append_like_api(&e, DataSource::SystemLogs, &logs[1000..], 250);
        e.close().unwrap();
    }
    let dst = tmp.path().join("dst");
    let out = run(
        replay_bin(),
        &[
            "--data-dir",
            path_str(&dst),
            "--from-data-dir",
            path_str(&src),
            "--batch-rows",
            "333",
        ],
        0,
    );
    assert!(stdout(&out).contains("rows stored"), "{}", stdout(&out));
    let (e1, e2) = (open(&src), open(&dst));
    let ((l1, t1), (l2, t2)) = (all_rows(&e1), all_rows(&e2));
    let strip = |v: Vec<(u64, logpulse_engine::LogRow<'static>)>| {
        v.into_iter().map(|r| r.1).collect::<Vec<_>>()
    };
    assert!(strip(l1) == strip(l2), "log rows differ");
    assert!(
        t1.into_iter().map(|t| t.1).collect::<Vec<_>>()
            == t2.into_iter().map(|t| t.1).collect::<Vec<_>>(),
        "threshold rows differ"
    );
    // Quarantines are not copied; everything else answers alike.
    let s1: String = snapshot(&e1, BASE, 3)
        .lines()
        .filter(|l| !l.contains("quarantine"))
        .collect();
    let s2: String = snapshot(&e2, BASE, 3)
        .lines()
        .filter(|l| !l.contains("quarantine"))
        .collect();
    assert_same(&s1, &s2, "copy vs source");
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    let out = run(
        replay_bin(),
        &["--data-dir", path_str(&d), "--datasource", "nope", "x"],
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown data source"));
    let out = run(
        replay_bin(),
        &[
            "--data-dir",
            path_str(&d),
            "--datasource",
            "system_logs_quarantine",
            "x",
        ],
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("quarantine"));
    let out = run(
        replay_bin(),
        &[
            "--data-dir",
            path_str(&d),
            "--datasource",
            "system_logs",
            "/no/such/file",
        ],
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file"));
}
