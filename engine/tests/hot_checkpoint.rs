//! The restart checkpoint of hot segments (`<data_dir>/checkpoint/`): after a clean stop a reopen takes every hot record's entry from
//! it instead of decoding the record, with answers identical to a full
//! decode; records written after the last checkpoint are decoded; a
//! checkpoint that disagrees with the files is ignored; damage in
//! checkpointed records is still refused by file and offset.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use logpulse_engine::*;

fn rows_of(tag: &str, n: u32) -> Vec<Row<'static>> {
    let mut rows = batch(tag, n, BASE, 3);
    rows.push(threshold("auth", "ERROR", 2.0, BASE + 5));
    rows
}

/// (records taken from the checkpoint, records decoded) by the last open.
/// `log_anomaly_thresholds` records are always decoded (they are few, and
/// the thresholds in force are built from them): `rows_of` writes one.
fn recovery(e: &Engine) -> (u64, u64) {
    let s = e.lifecycle_stats();
    (s.recovery_rows_checkpoint, s.recovery_rows_scanned)
}

fn checkpoint_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("checkpoint")
}

#[test]
fn a_clean_stop_reopens_from_the_checkpoint_with_the_same_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let e = open(dir);
    e.append(&rows_of("a", 3000), Durability::Synced).unwrap();
    e.append(&batch("b", 2000, BASE + 600, 2), Durability::Visible)
        .unwrap();
    assert_eq!(recovery(&e), (0, 0));
    e.close().unwrap();
    drop(e);

    let e = open(dir);
    assert_eq!(scan(&e).len(), 5000);
    assert_eq!(
        recovery(&e),
        (5000, 1),
        "every log record from the checkpoint"
    );
    let from_checkpoint = answers(&e, BASE, 3);
    let rows = scan(&e);
    assert_counts_recount(&e, dir);
    e.close().unwrap();
    drop(e);

    // The same data dir with no checkpoint: every record decoded.
    fs::remove_dir_all(checkpoint_dir(dir)).unwrap();
    let e = open(dir);
    assert_eq!(recovery(&e), (0, 5001));
    assert_eq!(answers(&e, BASE, 3), from_checkpoint);
    assert_eq!(scan(&e), rows);
}

#[test]
fn records_written_after_the_last_checkpoint_are_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let e = open(dir);
    e.append(&rows_of("a", 2000), Durability::Synced).unwrap();
    e.close().unwrap();
    drop(e);
    // The checkpoint as it was then: the first 2,000 records.
    let old_checkpoint = tempfile::tempdir().unwrap();
    copy_dir(&checkpoint_dir(dir), old_checkpoint.path());

    let e = open(dir);
    e.append(&batch("b", 700, BASE + 60, 3), Durability::Synced)
        .unwrap();
    let expected = answers(&e, BASE, 3);
    e.close().unwrap();
    drop(e);
    // As after a kill -9 that came before the next checkpoint.
    fs::remove_dir_all(checkpoint_dir(dir)).unwrap();
    copy_dir(old_checkpoint.path(), &checkpoint_dir(dir));

    let e = open(dir);
    assert_eq!(recovery(&e), (2000, 701));
    assert_eq!(answers(&e, BASE, 3), expected);
    assert_counts_recount(&e, dir);
    e.close().unwrap();
    drop(e);
    // The clean stop checkpointed the rest.
    let e = open(dir);
    assert_eq!(recovery(&e), (2700, 1));
    assert_eq!(answers(&e, BASE, 3), expected);
}

#[test]
fn a_checkpoint_of_other_files_is_ignored() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, tag) in [(a.path(), "first"), (b.path(), "other")] {
        let e = open(dir);
        e.append(&batch(tag, 1500, BASE, 2), Durability::Synced)
            .unwrap();
        e.close().unwrap();
    }
    let expected = {
        let e = open(b.path());
        let s = scan(&e);
        e.close().unwrap();
        s
    };
    // a's checkpoint (of a's files) with b's files of the same names.
    let logs = a.path().join(DataSource::SystemLogs.name());
    for f in seg_files(b.path(), DataSource::SystemLogs) {
        fs::copy(&f, logs.join(f.file_name().unwrap())).unwrap();
    }
    let e = open(a.path());
    assert_eq!(recovery(&e), (0, 1500), "nothing taken from a's checkpoint");
    assert_eq!(scan(&e), expected);
    assert_counts_recount(&e, a.path());
}

#[test]
fn damage_inside_checkpointed_records_is_refused_by_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let e = open(dir);
    e.append(&batch("a", 500, BASE, 1), Durability::Synced)
        .unwrap();
    e.close().unwrap();
    drop(e);
    let seg = seg_files(dir, DataSource::SystemLogs).pop().unwrap();
    let at = valid_end(&seg) / 2;
    let mut bytes = fs::read(&seg).unwrap();
    bytes[at] ^= 0x5a;
    fs::write(&seg, bytes).unwrap();
    let err = match Engine::open(EngineConfig::new(dir)) {
        Ok(_) => panic!("a flipped byte in checkpointed records was not found"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&seg.display().to_string()) && err.contains("byte offset"),
        "{err}"
    );
}
