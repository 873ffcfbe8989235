//! Opening a data dir finishes or rolls back an interrupted compaction: a compact segment that has its `.seg` name replaces the segments of its hour it names (deleted, never counted twice), a `.seg.compacting` file is deleted and the segments it was built from stay; and a hot segment whose never-synced header was lost is restored from its name. Rows, seqs and answers stay the same in every case.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};

use logpulse_engine::compaction::CompactOptions;
use logpulse_engine::*;

/// 2023-06-01 12:00:00 UTC.
const BASE: u32 = 1_685_620_800;

fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.segment_bytes_max = 16 << 10;
    c
}

fn fill(dir: &Path) {
    let e = Engine::open(config(dir)).unwrap();
    for b in 0..6u32 {
        let rows: Vec<Row> = (0..200u32)
            .map(|i| {
                Row::Log(LogRow {
                    timestamp: BASE + (b * 200 + i) * 13 % 7200,
                    service: Cow::Owned(format!("s{}", i % 3)),
                    severity: Cow::Borrowed(if i % 4 == 0 { "ERROR" } else { "INFO" }),
                    message: Cow::Owned(format!("batch {b} row {i}")),
                    ..Default::default()
                })
            })
            .collect();
        e.append(&rows, Durability::Visible).unwrap();
    }
    e.close().unwrap();
}

type Rows = Vec<(u64, LogRow<'static>)>;

fn rows(dir: &Path) -> (Rows, u64, String) {
    let e = Engine::open(config(dir)).unwrap();
    let mut out = Vec::new();
    e.scan_logs(|seq, r| out.push((seq, r.into_owned())))
        .unwrap();
    let stats = e.datasource_stats(DataSource::SystemLogs).rows;
    let answer = format!(
        "{:?} {:?}",
        e.recent_logs(&LogFilter::default(), 50).unwrap().rows,
        e.error_distribution(&LogFilter::default(), 50)
            .unwrap()
            .rows
    );
    e.close().unwrap();
    (out, stats, answer)
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("system_logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Compacts the first hour; returns (files before, compact file).
fn compact_first_hour(dir: &Path) -> (Vec<PathBuf>, PathBuf) {
    let before = seg_files(dir);
    let e = Engine::open(config(dir)).unwrap();
    let c = e
        .compact_hour(
            DataSource::SystemLogs,
            BASE / 3600,
            &CompactOptions::default(),
        )
        .unwrap()
        .expect("something to compact");
    e.close().unwrap();
    assert!(c.inputs.len() > 1, "several inputs expected");
    let inputs: Vec<PathBuf> = c.inputs.iter().map(|i| i.path.clone()).collect();
    assert!(before.iter().filter(|p| inputs.contains(p)).count() == inputs.len());
    (inputs, c.output.path)
}

fn copy_aside(files: &[PathBuf], to: &Path) {
    fs::create_dir_all(to).unwrap();
    for f in files {
        fs::copy(f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn copy_back(files: &[PathBuf], from: &Path) {
    for f in files {
        fs::copy(from.join(f.file_name().unwrap()), f).unwrap();
    }
}

#[test]
fn a_named_compact_segment_replaces_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    fill(&dir);
    let want = rows(&dir);
    let aside = tmp.path().join("aside");
    let all_before = seg_files(&dir);
    copy_aside(&all_before, &aside);
    let (inputs, compact) = compact_first_hour(&dir);
    assert_eq!(rows(&dir), want);
    // A crash after the rename, before the inputs were unlinked.
    copy_back(&inputs, &aside);
    assert!(inputs.iter().all(|p| p.exists()) && compact.exists());
    assert_eq!(rows(&dir), want, "rows counted twice");
    assert!(
        inputs.iter().all(|p| !p.exists()),
        "replaced inputs not removed"
    );
    assert!(compact.exists());
}

#[test]
fn an_unnamed_compact_segment_is_rolled_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    fill(&dir);
    let want = rows(&dir);
    let aside = tmp.path().join("aside");
    copy_aside(&seg_files(&dir), &aside);
    let (inputs, compact) = compact_first_hour(&dir);
    // A crash before the rename: the complete (or partial) compact file is
    // still `.compacting`, the inputs all there.
    let tmp_name = PathBuf::from(format!("{}.compacting", compact.display()));
    fs::rename(&compact, &tmp_name).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&tmp_name).unwrap();
    f.set_len(fs::metadata(&tmp_name).unwrap().len() / 2)
        .unwrap();
    copy_back(&inputs, &aside);
    assert_eq!(rows(&dir), want);
    assert!(!tmp_name.exists(), "incomplete compact file not removed");
    assert!(inputs.iter().all(|p| p.exists()));
}

#[test]
fn a_lost_header_of_a_never_synced_segment_is_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    fill(&dir);
    let want = rows(&dir);
    let victim = seg_files(&dir)[1].clone();
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&victim).unwrap();
        f.write_all_at(&[0u8; 64], 0).unwrap();
    }
    // Every frame is intact, so every row is still found.
    assert_eq!(rows(&dir), want);
    let head = fs::read(&victim).unwrap();
    assert_eq!(&head[..8], b"LPSEG\0\r\n");
}
