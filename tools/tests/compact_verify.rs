//! `logpulse-compact --verify-only` reads every byte without changing any: sound data passes (exit 0), a flipped byte in a compact block or in a synced hot frame is reported with its file and byte offset (exit 2), and a torn tail past the synced length is only a note; opening a data dir with a damaged compact segment fails naming the file and offset.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use logpulse_engine::segment::compact::CompactSegment;
use logpulse_engine::segment::format::{read_frame, FrameRead, HEADER_LEN};
use logpulse_engine::{DataSource, Engine, EngineConfig, Error};

fn data(dir: &Path) {
    let e = open(dir);
    append_like_api(
        &e,
        DataSource::SystemLogs,
        &log_lines(900, BASE, 3, 21),
        300,
    );
    append_like_api(&e, DataSource::Thresholds, &threshold_lines(BASE), 10);
    e.close().unwrap();
}

fn segs(dir: &Path, ds: DataSource) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(ds.name()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x20], offset).unwrap();
}

#[test]
fn damage_is_named_by_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    data(&dir);
    let d = path_str(&dir);
    run(compact_bin(), &["--data-dir", d, "--block-rows", "128"], 0);
    let out = stdout(&run(compact_bin(), &["--data-dir", d, "--verify-only"], 0));
    assert!(out.contains("no damage"), "{out}");

    // A byte in the body of the second block of a compact system_logs segment.
    let victim = segs(&dir, DataSource::SystemLogs)[1].clone();
    let at = {
        let c = CompactSegment::open_read_only(&victim).unwrap();
        let b = &c.blocks[1];
        b.offset + b.head_len as u64 + 3
    };
    let before = segment_contents(&dir);
    flip(&victim, at);
    let damaged = segment_contents(&dir);
    let out = run(compact_bin(), &["--data-dir", d, "--verify-only"], 2);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "DAMAGE: {} at byte offset {}",
            victim.display(),
            at - 3
        )),
        "{text}"
    );
    assert!(
        segment_contents(&dir) == damaged,
        "verify changed the data dir"
    );
    assert!(before != damaged);

    // Open reads directories only (flat in data volume): the damaged block
    // is named by file and offset when a read reaches it.
    let e = Engine::open(EngineConfig::new(&dir)).expect("open reads no block body");
    match e.scan_logs(|_, _| {}) {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (victim.clone(), at - 3))
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(()) => panic!("read a damaged block without noticing"),
    }
    drop(e);
    flip(&victim, at);
    run(compact_bin(), &["--data-dir", d, "--verify-only"], 0);
}

#[test]
fn hot_damage_and_torn_tails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    data(&dir);
    let d = path_str(&dir);
    let victim = segs(&dir, DataSource::SystemLogs)[0].clone();
    let bytes = std::fs::read(&victim).unwrap();
    let second = match read_frame(&bytes, HEADER_LEN) {
        FrameRead::Frame(f) => HEADER_LEN + f.total_len(),
        other => panic!("{other:?}"),
    };
    flip(&victim, second as u64 + 25);
    let text = stdout(&run(compact_bin(), &["--data-dir", d, "--verify-only"], 2));
    assert!(
        text.contains(&format!(
            "DAMAGE: {} at byte offset {second}",
            victim.display()
        )),
        "{text}"
    );
    flip(&victim, second as u64 + 25);

    // Garbage after the last frame of the newest file, past its synced
    // length: a torn tail, which the next open drops. Not damage.
    let last = segs(&dir, DataSource::SystemLogs).pop().unwrap();
    let (end, synced) = {
        let b = std::fs::read(&last).unwrap();
        let mut off = HEADER_LEN;
        while let FrameRead::Frame(f) = read_frame(&b, off) {
            off += f.total_len();
        }
        (off, u64::from_le_bytes(b[20..28].try_into().unwrap()))
    };
    assert!(end as u64 >= synced);
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_all_at(&[7, 0, 0, 0, 1, 2, 3], end as u64).unwrap();
    let text = stdout(&run(compact_bin(), &["--data-dir", d, "--verify-only"], 0));
    assert!(
        text.contains("note:") && text.contains("torn tail"),
        "{text}"
    );
}
