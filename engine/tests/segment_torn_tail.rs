//! A torn tail of the newest segment (garbage, a half-written frame, zero
//! fill) is dropped on open with everything before it intact and counts that
//! equal a recount; damage inside synced data fails the open with an error
//! naming the file and the byte offset, never a panic; leftovers of a crash
//! while a segment file was being created do not stop the engine from
//! opening; and a `Synced` append is covered by the `synced_len` of every
//! file it touched, also when a segment rolls over within a group commit.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use common::*;
use logpulse_engine::row::Encode;
use logpulse_engine::segment::format::{encode_frame, Header, HEADER_LEN, KIND_HOT};
use logpulse_engine::segment::SegmentId;
use logpulse_engine::*;

/// Two batches, one synced and one only visible, over three hours; closed.
fn populate(dir: &Path) -> Vec<LogRow<'static>> {
    let e = open(dir);
    e.append(&batch("synced", 300, BASE, 3), Durability::Synced)
        .unwrap();
    e.append(&[threshold("auth", "ERROR", 0.5, BASE)], Durability::Synced)
        .unwrap();
    e.append(&batch("visible", 200, BASE + 3600, 2), Durability::Visible)
        .unwrap();
    let rows = scan(&e).into_iter().map(|(_, r)| r).collect();
    e.close().unwrap();
    rows
}

fn half_frame() -> Vec<u8> {
    let mut body = Vec::new();
    log(BASE, "auth", "ERROR", "torn".into()).encode_into(&mut body);
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1_000_000, 0, &body);
    frame.truncate(frame.len() / 2);
    frame
}

enum Damage {
    /// Random-looking bytes right where the next frame would go.
    GarbageAtEnd,
    /// Garbage past the zero-filled preallocation, at the end of the file.
    GarbageAfterPrealloc,
    /// The first half of a valid frame where the next frame would go.
    HalfFrameAtEnd,
    /// The file cut right after its records, then half a frame appended.
    HalfFrameAtEof,
    /// A frame header whose length points past the end of the file.
    LengthPastEof,
    /// More zeros appended.
    ZeroTail,
}

fn damage(path: &Path, d: &Damage) {
    let end = valid_end(path) as u64;
    let len = fs::metadata(path).unwrap().len();
    let garbage: Vec<u8> = (0..777u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    match d {
        Damage::GarbageAtEnd => write_at(path, end, &garbage),
        Damage::GarbageAfterPrealloc => write_at(path, len, &garbage),
        Damage::HalfFrameAtEnd => write_at(path, end, &half_frame()),
        Damage::HalfFrameAtEof => {
            fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(end)
                .unwrap();
            write_at(path, end, &half_frame());
        }
        Damage::LengthPastEof => {
            fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(end)
                .unwrap();
            let mut h = 1_000u32.to_le_bytes().to_vec();
            h.extend_from_slice(&[7u8; 12]);
            write_at(path, end, &h);
        }
        Damage::ZeroTail => write_at(path, len, &vec![0u8; 4096]),
    }
}

#[test]
fn torn_tail_is_dropped_and_counts_match_a_recount() {
    for d in [
        Damage::GarbageAtEnd,
        Damage::GarbageAfterPrealloc,
        Damage::HalfFrameAtEnd,
        Damage::HalfFrameAtEof,
        Damage::LengthPastEof,
        Damage::ZeroTail,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let rows = populate(dir);
        let before = {
            let e = open(dir);
            let a = answers(&e, BASE, 3);
            e.close().unwrap();
            a
        };
        let newest = seg_files(dir, DataSource::SystemLogs).pop().unwrap();
        let end = valid_end(&newest);
        damage(&newest, &d);

        let e = open(dir);
        let got: Vec<_> = scan(&e).into_iter().map(|(_, r)| r).collect();
        assert_eq!(got, rows);
        assert_eq!(answers(&e, BASE, 3), before);
        assert_counts_recount(&e, dir);
        assert_eq!(valid_end(&newest), end);

        // The next appends land on clean bytes and survive another reopen.
        let more = batch("after", 100, BASE + 7200, 1);
        e.append(&more, Durability::Visible).unwrap();
        e.close().unwrap();
        drop(e);
        let e = open(dir);
        let got: Vec<_> = scan(&e).into_iter().map(|(_, r)| r).collect();
        let expected: Vec<_> = rows
            .iter()
            .cloned()
            .chain(more.into_iter().map(|r| match r {
                Row::Log(l) => l,
                _ => unreachable!(),
            }))
            .collect();
        assert_eq!(got, expected);
        assert_counts_recount(&e, dir);
    }
}

/// Offsets of the frames of a segment file.
fn frame_offsets(path: &Path) -> Vec<usize> {
    use logpulse_engine::segment::format::{read_frame, FrameRead};
    let data = fs::read(path).unwrap();
    let mut off = HEADER_LEN;
    let mut v = Vec::new();
    while let FrameRead::Frame(f) = read_frame(&data, off) {
        v.push(off);
        off += f.total_len();
    }
    v
}

#[test]
fn flipped_byte_in_synced_data_fails_open_naming_file_and_offset() {
    let src = tempfile::tempdir().unwrap();
    populate(src.path());
    let files = seg_files(src.path(), DataSource::SystemLogs);
    let mut probes = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        let offs = frame_offsets(f);
        assert!(offs.len() > 3);
        // First, middle and last frame; length, crc, seq, batch_rest, body.
        for &k in &[0, offs.len() / 2, offs.len() - 1] {
            for delta in [0usize, 1, 5, 9, 17, 21, 30] {
                probes.push((fi, offs[k], offs[k] + delta));
            }
        }
    }
    for (fi, frame, at) in probes {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(src.path(), tmp.path());
        let file = &seg_files(tmp.path(), DataSource::SystemLogs)[fi];
        let mut data = fs::read(file).unwrap();
        data[at] ^= 0x10;
        fs::write(file, &data).unwrap();
        let res = std::panic::catch_unwind(|| Engine::open(EngineConfig::new(tmp.path())));
        let err = match res {
            Err(_) => panic!("open panicked on a flip at {at} of {}", file.display()),
            Ok(Ok(_)) => panic!("open accepted a flip at {at} of {}", file.display()),
            Ok(Err(e)) => e,
        };
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Corrupt { offset, .. } if offset == frame as u64),
            "flip at {at} (frame at {frame}): {msg}"
        );
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("offset {frame}")), "{msg}");
    }
}

#[test]
fn flipped_byte_in_a_segment_header_fails_open_clearly() {
    let src = tempfile::tempdir().unwrap();
    populate(src.path());
    for at in [0usize, 9, 12, 20, 27, 61] {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(src.path(), tmp.path());
        let file = &seg_files(tmp.path(), DataSource::SystemLogs)[0];
        let mut data = fs::read(file).unwrap();
        data[at] ^= 0x01;
        fs::write(file, &data).unwrap();
        let err = match Engine::open(EngineConfig::new(tmp.path())) {
            Ok(_) => panic!("flip at header byte {at} accepted"),
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
    }
}

/// A kill between creating a segment file and writing its header leaves an
/// empty or zero-filled file; it holds no rows, so opening must not fail.
#[test]
fn blank_segment_left_by_a_crash_at_creation_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rows = populate(dir);
    let ds_dir = dir.join(DataSource::SystemLogs.name());
    let hour = (BASE + 10 * 3600) / 3600;
    let empty = SegmentId { hour, file_no: 0 }.path_in(&ds_dir);
    let zeros = SegmentId {
        hour: hour + 1,
        file_no: 0,
    }
    .path_in(&ds_dir);
    fs::write(&empty, b"").unwrap();
    fs::write(&zeros, vec![0u8; 256 << 10]).unwrap();

    let e = open(dir);
    let got: Vec<_> = scan(&e).into_iter().map(|(_, r)| r).collect();
    assert_eq!(got, rows);
    // Those hours can still be written to.
    e.append(
        &[
            log(hour * 3600 + 5, "auth", "ERROR", "h0".into()),
            log(hour * 3600 + 3605, "auth", "ERROR", "h1".into()),
        ],
        Durability::Synced,
    )
    .unwrap();
    e.close().unwrap();
    drop(e);
    let e = open(dir);
    assert_eq!(scan(&e).len(), rows.len() + 2);
    assert_counts_recount(&e, dir);
}

/// A header whose CRC is fine but whose data source does not match its
/// directory is refused with the file named.
#[test]
fn segment_in_the_wrong_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    populate(dir);
    let h = Header {
        kind: KIND_HOT,
        datasource: DataSource::Thresholds.id(),
        hour: BASE / 3600 + 20,
        file_no: 0,
        synced_len: HEADER_LEN as u64,
    };
    let path = SegmentId {
        hour: h.hour,
        file_no: 0,
    }
    .path_in(&dir.join(DataSource::SystemLogs.name()));
    fs::write(&path, h.encode()).unwrap();
    let err = match Engine::open(EngineConfig::new(dir)) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

/// Every `Synced` append has returned, so every file's header must claim
/// all its records as synced, including files that were rolled over (a
/// full segment replaced by a new one) within a group commit.
#[test]
fn synced_appends_are_covered_by_synced_len_across_rollovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(tmp.path());
    cfg.segment_bytes_max = 4096;
    // No periodic sync to paper over a missed one.
    cfg.sync_interval_ms = 3_600_000;
    let e = Arc::new(Engine::open(cfg).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for b in 0..150u32 {
                    let rows: Vec<_> = (0..6u32)
                        .map(|i| log(BASE + b, "auth", "ERROR", format!("t{t}b{b}r{i}")))
                        .collect();
                    loop {
                        match e.append(&rows, Durability::Synced) {
                            Ok(_) => break,
                            Err(Error::Busy) => std::thread::yield_now(),
                            Err(err) => panic!("{err}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let files = seg_files(tmp.path(), DataSource::SystemLogs);
    assert!(files.len() > 10, "expected roll-overs, got {}", files.len());
    let unsynced: Vec<_> = files
        .iter()
        .filter(|f| synced_len(f) != valid_end(f) as u64)
        .map(|f| format!("{}: {} < {}", f.display(), synced_len(f), valid_end(f)))
        .collect();
    assert!(unsynced.is_empty(), "{unsynced:#?}");
    assert_eq!(scan(&e).len(), 4 * 150 * 6);
}
