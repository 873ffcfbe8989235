//! The sled index is derived state: with `<data>/index` deleted, or its
//! files overwritten with garbage, truncated or replaced, `Engine::open`
//! rebuilds it from the segments and every answer (minute counts, the three
//! pipes, thresholds, statistics) is identical; it never panics, and where
//! it cannot rebuild it fails with an error naming the index path.

mod common;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::*;
use logpulse_engine::INDEX_DIR;
use logpulse_engine::*;

const HOURS: u32 = 4;

fn populate(dir: &Path) {
    let e = open(dir);
    e.append(&batch("a", 3000, BASE, HOURS), Durability::Synced)
        .unwrap();
    // A burst so that anomalies exist.
    let burst: Vec<_> = (0..40)
        .map(|i| log(BASE + 3600 + 600 + i, "auth", "ERROR", format!("burst-{i}")))
        .collect();
    e.append(&burst, Durability::Visible).unwrap();
    e.append(
        &[
            threshold("auth", "ERROR", 3.0, BASE),
            threshold("db", "WARN", 1.0, BASE),
            threshold("auth", "ERROR", 2.0, BASE + 5),
        ],
        Durability::Synced,
    )
    .unwrap();
    e.append(&batch("b", 500, BASE + 3600, 2), Durability::Visible)
        .unwrap();
    e.close().unwrap();
}

fn snapshot(dir: &Path) -> Answers {
    let e = open(dir);
    let a = answers(&e, BASE, HOURS);
    assert!(a.anomalies.iter().any(|(rows, _)| !rows.is_empty()));
    e.close().unwrap();
    a
}

fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(p).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Opens, catching panics; on success the answers must equal `expected`,
/// on failure the error must name the index.
fn open_and_compare(dir: &Path, expected: &Answers, what: &str) -> bool {
    let res = catch_unwind(AssertUnwindSafe(|| {
        Engine::open(EngineConfig::new(dir)).map(|e| {
            let a = answers(&e, BASE, HOURS);
            assert_counts_recount(&e, dir);
            e.close().unwrap();
            a
        })
    }));
    match res {
        Err(_) => panic!("{what}: open panicked"),
        Ok(Ok(a)) => {
            assert_eq!(&a, expected, "{what}: answers differ after rebuild");
            true
        }
        Ok(Err(e)) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&dir.join(INDEX_DIR).display().to_string()) || msg.contains("index"),
                "{what}: unclear error: {msg}"
            );
            eprintln!("{what}: refused with: {msg}");
            false
        }
    }
}

#[test]
fn deleted_index_is_rebuilt_with_identical_answers() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let expected = snapshot(tmp.path());
    fs::remove_dir_all(tmp.path().join(INDEX_DIR)).unwrap();
    assert!(open_and_compare(tmp.path(), &expected, "deleted index"));
    assert!(tmp.path().join(INDEX_DIR).is_dir());
    // And the rebuilt index is good for the next open too.
    assert!(open_and_compare(tmp.path(), &expected, "after rebuild"));
}

#[test]
fn corrupt_index_files_are_rebuilt_or_refused_never_a_panic() {
    let src = tempfile::tempdir().unwrap();
    populate(src.path());
    let expected = snapshot(src.path());
    let index_files = files_under(&src.path().join(INDEX_DIR));
    assert!(!index_files.is_empty());
    let garbage = |len: usize, salt: u32| -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_add(salt).wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect()
    };
    type Corruption = (&'static str, fn(&Path, &dyn Fn(usize, u32) -> Vec<u8>));
    let corruptions: Vec<Corruption> = vec![
        ("garbage of the same length", |p, g| {
            let len = fs::metadata(p).unwrap().len() as usize;
            fs::write(p, g(len.max(1), 7)).unwrap();
        }),
        ("garbage in the middle", |p, g| {
            let mut d = fs::read(p).unwrap();
            let mid = d.len() / 2;
            let n = (d.len() / 4).max(1);
            d.splice(mid..(mid + n).min(d.len()), g(n, 3));
            fs::write(p, d).unwrap();
        }),
        ("truncated to half", |p, _| {
            let d = fs::read(p).unwrap();
            fs::write(p, &d[..d.len() / 2]).unwrap();
        }),
        ("emptied", |p, _| fs::write(p, b"").unwrap()),
        ("zeroed", |p, _| {
            let len = fs::metadata(p).unwrap().len() as usize;
            fs::write(p, vec![0u8; len]).unwrap();
        }),
    ];
    let mut rebuilt = 0;
    let mut cases = 0;
    // Each file alone, then all files at once.
    let mut targets: Vec<Vec<usize>> = (0..index_files.len()).map(|i| vec![i]).collect();
    targets.push((0..index_files.len()).collect());
    for (name, corrupt) in &corruptions {
        for t in &targets {
            let tmp = tempfile::tempdir().unwrap();
            copy_dir(src.path(), tmp.path());
            let files = files_under(&tmp.path().join(INDEX_DIR));
            let mut which = Vec::new();
            for &i in t {
                corrupt(&files[i], &garbage);
                which.push(files[i].file_name().unwrap().to_string_lossy().to_string());
            }
            let what = format!("{name} of {which:?}");
            cases += 1;
            if open_and_compare(tmp.path(), &expected, &what) {
                rebuilt += 1;
            } else {
                // A refusal must not be permanent once the index is removed.
                fs::remove_dir_all(tmp.path().join(INDEX_DIR)).unwrap();
                assert!(open_and_compare(tmp.path(), &expected, &what));
            }
        }
    }
    eprintln!("{rebuilt} of {cases} corruptions rebuilt automatically");
    // The engine removes an index it cannot open and rebuilds it: every
    // corruption must be repaired at open, none merely refused.
    assert!(cases >= corruptions.len() * 2);
    assert_eq!(rebuilt, cases, "corruptions refused instead of rebuilt");
}

#[test]
fn index_path_taken_by_a_file_is_handled() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path());
    let expected = snapshot(tmp.path());
    let index = tmp.path().join(INDEX_DIR);
    fs::remove_dir_all(&index).unwrap();
    fs::write(&index, b"not a directory").unwrap();
    assert!(open_and_compare(
        tmp.path(),
        &expected,
        "index is a plain file"
    ));
    assert!(
        index.is_dir(),
        "the file in the way was not replaced by an index"
    );
}

/// After a clean close the index holds exactly the threshold rows in force
/// (so the next open finds it in agreement and need not rebuild it), also
/// when rows with an older `updated_at` arrive after newer ones.
#[test]
fn index_holds_the_thresholds_in_force_after_close() {
    use logpulse_engine::index::Index;
    let tmp = tempfile::tempdir().unwrap();
    let e = open(tmp.path());
    e.append(&batch("a", 50, BASE, 1), Durability::Visible)
        .unwrap();
    e.append(
        &[
            threshold("auth", "ERROR", 5.0, BASE + 100),
            threshold("db", "WARN", 1.0, BASE),
        ],
        Durability::Visible,
    )
    .unwrap();
    // Older versions, ingested later: not in force.
    e.append(
        &[
            threshold("auth", "ERROR", 9.0, BASE + 50),
            threshold("db", "WARN", 2.0, BASE - 1),
        ],
        Durability::Visible,
    )
    .unwrap();
    // Same updated_at, ingested later: in force.
    e.append(&[threshold("db", "WARN", 3.0, BASE)], Durability::Visible)
        .unwrap();
    let in_force = e.thresholds();
    assert_eq!(
        in_force
            .iter()
            .map(|t| t.threshold_per_minute)
            .collect::<Vec<_>>(),
        vec![5.0, 3.0]
    );
    let last_seq = e.stats().last_seq;
    e.close().unwrap();
    drop(e);
    let index = Index::open(&tmp.path().join(INDEX_DIR), 1 << 20).unwrap();
    let mut stored: Vec<ThresholdRow> = index
        .thresholds()
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    stored.sort_by_key(|t| (t.service.clone(), t.severity.clone()));
    assert_eq!(stored, in_force);
    assert_eq!(index.watermark().unwrap(), last_seq);
}
