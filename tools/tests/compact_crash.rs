//! `kill -9` of the real `logpulse-compact` binary at random moments (slowed down between the steps of its file swap by `LP_COMPACT_SLOW_MS`) never loses or duplicates a row: after each kill the data dir opens with exactly the rows, seqs and answers it had, and a later run completes the compaction.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use logpulse_engine::{DataSource, Engine, EngineConfig};

const HOURS: u32 = 4;
/// Kills at least; more (up to RUNS_MAX) until one landed in the middle of a
/// swap (a compact segment beside the hot segments it replaces).
const RUNS: usize = 6;
const RUNS_MAX: usize = 30;

fn build_template(dir: &Path) {
    let mut c = EngineConfig::new(dir);
    c.segment_bytes_max = 32 << 10;
    let e = Engine::open(c).unwrap();
    append_like_api(&e, DataSource::Thresholds, &threshold_lines(BASE), 6);
    for step in 0..3 {
        append_like_api(
            &e,
            DataSource::SystemLogs,
            &log_lines(600, BASE, HOURS, 50 + step),
            150,
        );
    }
    e.close().unwrap();
}

fn compact_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(compact_bin());
    cmd.args([
        "--data-dir",
        path_str(dir),
        "--threads",
        "1",
        "--block-rows",
        "50",
    ])
    .env("LP_COMPACT_SLOW_MS", "15")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

#[test]
fn kill_minus_nine_never_loses_or_duplicates_a_row() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    build_template(&template);
    let (want_rows, want_snap) = {
        let e = open(&template);
        (all_rows(&e), snapshot(&e, BASE, HOURS))
    };
    let total: u64 = DataSource::ALL
        .iter()
        .map(|ds| open(&template).datasource_stats(*ds).rows)
        .sum();

    // How long an uninterrupted run takes, to spread the kills over it.
    let probe = tmp.path().join("probe");
    copy_tree(&template, &probe);
    let t0 = Instant::now();
    assert!(compact_cmd(&probe).status().unwrap().success());
    let full = t0.elapsed();

    let mut rng = Rng(std::process::id() as u64 * 2_654_435_761 + 17);
    let mut mid_swap = 0;
    let mut runs = 0;
    for run_no in 0..RUNS_MAX {
        if run_no >= RUNS && mid_swap > 0 {
            break;
        }
        runs += 1;
        let dir = tmp.path().join(format!("run{run_no}"));
        copy_tree(&template, &dir);
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64));
        let mut child = compact_cmd(&dir).spawn().unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let what = format!("run {run_no}, killed after {delay:?} of {full:?}");
        let (compacting, both) = phase(&dir);
        eprintln!(
            "{what}: {compacting} .compacting files, {both} hours with a compact segment beside hot ones"
        );
        if both > 0 {
            mid_swap += 1;
        }
        {
            let e = open(&dir);
            assert!(all_rows(&e) == want_rows, "{what}: rows or seqs differ");
            assert_same(&snapshot(&e, BASE, HOURS), &want_snap, &what);
            let n: u64 = DataSource::ALL
                .iter()
                .map(|ds| e.datasource_stats(*ds).rows)
                .sum();
            assert_eq!(n, total, "{what}");
            e.close().unwrap();
        }
        // A later run finishes the job.
        assert!(compact_cmd(&dir).status().unwrap().success(), "{what}");
        let e = open(&dir);
        assert!(
            all_rows(&e) == want_rows,
            "{what}: rows or seqs differ after completion"
        );
        assert_same(&snapshot(&e, BASE, HOURS), &want_snap, &what);
        let segs = e.segment_infos();
        assert!(segs.iter().all(|s| s.compact), "{what}: {segs:?}");
        let leftovers: Vec<_> = tree(&dir)
            .into_iter()
            .filter(|(p, _)| p.to_string_lossy().ends_with(".compacting"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    }
    assert!(
        mid_swap > 0,
        "none of {runs} kills landed in the middle of a swap: the swap's recovery went untested"
    );
}

/// Where a kill landed, from the files left: an unfinished `.compacting`
/// file, an hour with both a compact segment and segments it replaces, or
/// neither: (`.compacting` files, hours with both).
fn phase(dir: &Path) -> (usize, usize) {
    let files: Vec<String> = tree(dir)
        .into_iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    let compacting = files.iter().filter(|f| f.ends_with(".compacting")).count();
    let mut both = 0;
    for ds in DataSource::ALL {
        let d = dir.join(ds.name());
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut by_hour: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for e in rd {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "seg") {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let compact = logpulse_engine::segment::compact::peek_info(&p)
                    .ok()
                    .flatten()
                    .is_some();
                let slot = by_hour.entry(name[..10].to_string()).or_default();
                if compact {
                    slot.0 += 1
                } else {
                    slot.1 += 1
                }
            }
        }
        both += by_hour.values().filter(|(c, h)| *c > 0 && *h > 0).count();
    }
    (compacting, both)
}
