//! Both tools refuse a data dir whose lock is held (here by an open `Engine`, as by a running daemon): a clear error naming the holder, a non-zero exit, and not one file of the data dir changed.

mod common;

use common::*;
use logpulse_engine::DataSource;

#[test]
fn a_locked_data_dir_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let input = tmp.path().join("in.ndjson");
    write_lines(&input, &log_lines(300, BASE, 2, 9));
    let held = open(&dir);
    append_like_api(
        &held,
        DataSource::SystemLogs,
        &log_lines(500, BASE, 3, 1),
        100,
    );
    held.sync().unwrap();
    // The holder's own index thread may still write its sled files, and its
    // writer its checkpoint files (derived state), while the tools run: what
    // the tools must not touch is everything else.
    let tools_view = |dir: &std::path::Path| -> Vec<_> {
        let (index, checkpoint) = (dir.join("index"), dir.join("checkpoint"));
        tree(dir)
            .into_iter()
            .filter(|(p, _)| !p.starts_with(&index) && !p.starts_with(&checkpoint))
            .collect()
    };
    let before = tools_view(&dir);
    let contents = segment_contents(&dir);
    let d = path_str(&dir);
    let holder = format!("pid {}", std::process::id());
    for args in [
        vec!["--data-dir", d],
        vec!["--data-dir", d, "--retention-days", "1"],
        vec!["--data-dir", d, "--dry-run"],
        vec!["--data-dir", d, "--verify-only"],
    ] {
        let out = run(compact_bin(), &args, 1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("locked") && err.contains(&holder),
            "{args:?}: {err}"
        );
    }
    let out = run(
        replay_bin(),
        &[
            "--data-dir",
            d,
            "--datasource",
            "system_logs",
            path_str(&input),
        ],
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked") && err.contains(&holder), "{err}");
    let other = tmp.path().join("other");
    let out = run(
        replay_bin(),
        &["--data-dir", path_str(&other), "--from-data-dir", d],
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked"));
    assert_eq!(tools_view(&dir), before, "files of the data dir changed");
    assert!(segment_contents(&dir) == contents, "segment bytes changed");
    held.close().unwrap();
}

#[test]
fn a_missing_data_dir_is_an_error_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nope");
    for extra in [&[][..], &["--dry-run"][..], &["--verify-only"][..]] {
        let mut args = vec!["--data-dir", path_str(&dir)];
        args.extend_from_slice(extra);
        let out = run(compact_bin(), &args, 1);
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    }
    assert!(!dir.exists());
}
