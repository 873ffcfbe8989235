use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::codec::*;
use super::directory::{decode_seconds, encode_seconds};
use super::*;
use crate::row::{DataSource, Encode, LogRow, Row};

#[test]
fn varints_and_zigzag_round_trip() {
    for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
        let mut b = Vec::new();
        put_varint(&mut b, v);
        assert_eq!(Cursor::new(&b).varint().unwrap(), v);
    }
    for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
    for v in [0usize, 1, 127, 128, 16383, 16384] {
        let mut b = Vec::new();
        put_varint(&mut b, v as u64);
        assert_eq!(varint_len(v), b.len(), "{v}");
    }
}

#[test]
fn columns_round_trip_plain_and_dict() {
    let vals: Vec<&[u8]> = vec![b"a", b"bb", b"a", b"", b"a", b"bb", b"a", b"a"];
    for dict in [false, true] {
        let mut out = Vec::new();
        encode_column(&mut out, &vals, dict);
        assert_eq!(out[0], if dict { COL_DICT } else { COL_PLAIN });
        let mut c = Cursor::new(&out);
        let spans = decode_column(&mut c, vals.len()).unwrap();
        assert!(c.done());
        let got: Vec<&[u8]> = spans
            .iter()
            .map(|(s, e)| &out[*s as usize..*e as usize])
            .collect();
        assert_eq!(got, vals);
    }
}

fn write_sample(dir: &Path, ds: DataSource) -> (PathBuf, Vec<(u32, u64, Vec<u8>)>) {
    let hour = 470_000u32;
    let mut rows = Vec::new();
    for i in 0..300u32 {
        let ts = hour * 3600 + i * 11;
        let mut body = Vec::new();
        let row = match ds {
            DataSource::SystemLogs => Row::Log(LogRow {
                timestamp: ts,
                service: Cow::Owned(format!("svc{}", i % 3)),
                severity: Cow::Borrowed(if i % 5 == 0 { "ERROR" } else { "INFO" }),
                server_id: Cow::Owned(format!("srv-{}", i % 7)),
                message: Cow::Owned(format!("request {i} took {}ms", i * 37 % 1000)),
                metadata: Cow::Borrowed(if i % 2 == 0 { "{\"a\":1}" } else { "" }),
                ..Default::default()
            }),
            _ => Row::Threshold(crate::row::ThresholdRow {
                service: format!("svc{i}"),
                severity: "ERROR".into(),
                threshold_per_minute: i as f64,
                active: 1,
                updated_at: ts,
            }),
        };
        row.encode_into(&mut body);
        let key = match ds {
            DataSource::SystemLogs => (i % 3, if i % 5 == 0 { "ERROR" } else { "INFO" }),
            _ => (0, ""),
        };
        rows.push((key, ts, 1000 + (i as u64 * 7919) % 300, body));
    }
    // The file's order: (service, severity, timestamp, seq) for system_logs.
    rows.sort_by_key(|r| (r.0, r.1, r.2));
    let rows: Vec<(u32, u64, Vec<u8>)> = rows.into_iter().map(|r| (r.1, r.2, r.3)).collect();
    let path = dir.join(format!("{}.seg", ds.name()));
    let mut w = CompactWriter::create(&path, ds, hour, 5, (0, 4), WriteOptions::default()).unwrap();
    for chunk in rows.chunks(64) {
        let block: Vec<BlockRow<'_>> = chunk
            .iter()
            .map(|(ts, seq, b)| BlockRow {
                ts: *ts,
                seq: *seq,
                body: b,
            })
            .collect();
        w.add_block(&block).unwrap();
    }
    w.finish().unwrap();
    (path, rows)
}

#[test]
fn rows_round_trip_for_both_codecs() {
    let dir = tempfile::tempdir().unwrap();
    for ds in [DataSource::SystemLogs, DataSource::Thresholds] {
        let (path, rows) = write_sample(dir.path(), ds);
        let c = CompactSegment::open_read_only(&path).unwrap();
        let mut seen = Vec::new();
        c.scan(|row, ts, seq, _| seen.push((row, ts, seq))).unwrap();
        assert_eq!(seen.len(), rows.len());
        for (row, ts, seq) in seen {
            let want = &rows[row as usize];
            assert_eq!((ts, seq), (want.0, want.1));
            assert_eq!(c.body(row).unwrap(), want.2, "{}", ds.name());
        }
        assert!(c.verify(ds).is_empty());
        assert_eq!((c.info.replaces_first, c.info.replaces_last), (0, 4));
        assert_eq!(c.blocks_matching(0, u32::MAX, None).len(), 5);
        if ds == DataSource::Thresholds {
            let first_block_end = c.blocks[0].max_ts;
            assert_eq!(c.blocks_matching(0, first_block_end, None), vec![0]);
            assert!(c.runs(0, u64::MAX, |_| true).unwrap().is_none());
            continue;
        }
        // Key order: the runs of one key are exactly its rows.
        let want = |k: u32| &*c.keys[k as usize].0 == "svc1" && &*c.keys[k as usize].1 == "ERROR";
        let (lo, hi) = (470_000u64 * 3600 + 600, 470_000u64 * 3600 + 2400);
        let runs = c.runs(lo, hi, want).unwrap().unwrap();
        let mut expect = Vec::new();
        c.scan(|row, ts, _, key| {
            if want(key) && (lo..hi).contains(&(ts as u64)) {
                expect.push(row);
            }
        })
        .unwrap();
        let mut got = Vec::new();
        for r in &runs {
            for bi in c.blocks_of_rows(r.first_row, r.rows) {
                assert!(c.blocks[bi].keys.iter().any(|k| want(*k)));
            }
            got.extend(r.first_row..r.first_row + r.rows);
        }
        assert!(!expect.is_empty());
        // Runs are whole minutes: every wanted row is in one.
        assert!(expect.iter().all(|r| got.contains(r)), "{runs:?}");
        let keys_in_order: Vec<_> = c.keys.iter().collect();
        assert!(keys_in_order.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn rows_out_of_key_order_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.seg");
    let hour = 470_000u32;
    let body = |svc: &str| {
        let mut b = Vec::new();
        Row::Log(LogRow {
            timestamp: hour * 3600,
            service: Cow::Owned(svc.into()),
            severity: Cow::Borrowed("INFO"),
            ..Default::default()
        })
        .encode_into(&mut b);
        b
    };
    let (a, b) = (body("a"), body("b"));
    let mut w = CompactWriter::create(
        &path,
        DataSource::SystemLogs,
        hour,
        5,
        (0, 4),
        WriteOptions::default(),
    )
    .unwrap();
    let rows = [(&a, 1), (&b, 2), (&a, 3)].map(|(body, seq)| BlockRow {
        ts: hour * 3600,
        seq,
        body,
    });
    assert!(w.add_block(&rows).is_err());
}

#[test]
fn every_flipped_byte_is_caught_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_sample(dir.path(), DataSource::SystemLogs);
    let good = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.seg");
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x10;
        std::fs::write(&bad, &b).unwrap();
        let caught = match CompactSegment::open_read_only(&bad) {
            Err(_) => true,
            Ok(c) => match c.scan(|_, _, _, _| {}) {
                Err(_) => true,
                Ok(()) => !c.verify(DataSource::SystemLogs).is_empty(),
            },
        };
        assert!(caught, "flip at byte {i} of {} went unnoticed", good.len());
    }
}

#[test]
fn info_round_trips() {
    let i = CompactInfo {
        dir_offset: 1 << 40,
        dir_len: 7,
        dir_crc: 9,
        replaces_first: 1,
        replaces_last: 3,
        rows: 11,
        blocks: 2,
    };
    assert_eq!(CompactInfo::decode(&i.encode()), i);
    assert!(i.replaces(1) && i.replaces(3) && !i.replaces(4) && !i.replaces(0));
}

/// Replaces a compact file's stored directory by `f(stored, rows)`, and
/// its header's version by `version` when given; the header is made
/// consistent again.
fn replace_directory(path: &Path, version: Option<u16>, f: impl FnOnce(Vec<u8>, u32) -> Vec<u8>) {
    use crate::segment::format::{HEADER_CRC_OFFSET, RESERVED_LEN};
    let mut data = std::fs::read(path).unwrap();
    let mut info = CompactInfo::decode(&data[28..60].try_into().unwrap());
    let stored = data.split_off(info.dir_offset as usize);
    let dir = f(stored, info.rows);
    info.dir_len = dir.len() as u32;
    info.dir_crc = crc32fast::hash(&dir);
    data.extend_from_slice(&dir);
    let len = data.len() as u64;
    data[20..28].copy_from_slice(&len.to_le_bytes());
    let reserved: [u8; RESERVED_LEN] = info.encode();
    data[28..60].copy_from_slice(&reserved);
    if let Some(v) = version {
        data[8..10].copy_from_slice(&v.to_le_bytes());
    }
    let crc = crc32fast::hash(&data[..HEADER_CRC_OFFSET]);
    data[HEADER_CRC_OFFSET..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, data).unwrap();
}

/// Rewrites a version 6 file in the version 4 layout: the directory stored
/// as it is, the header saying version 4. `raw_len` replaces the stored
/// length prefix when given (for damaged-directory checks on version 6).
fn rewrite_directory(path: &Path, to_v4: bool, raw_len: Option<u32>) {
    replace_directory(path, to_v4.then_some(4), |stored, _| {
        let mut dir = if to_v4 {
            zstd::bulk::decompress(&stored[4..], 1 << 24).unwrap()
        } else {
            stored
        };
        if let Some(n) = raw_len {
            dir[..4].copy_from_slice(&n.to_le_bytes());
        }
        dir
    });
}

fn rows_of(path: &Path) -> Vec<(u32, u32, u64, u32, Vec<u8>)> {
    let c = CompactSegment::open_read_only(path).unwrap();
    let mut seen = Vec::new();
    c.scan(|row, ts, seq, key| seen.push((row, ts, seq, key, Vec::new())))
        .unwrap();
    for s in &mut seen {
        s.4 = c.body(s.0).unwrap().to_vec();
    }
    seen
}

#[test]
fn version_4_files_with_a_raw_directory_still_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for ds in [DataSource::SystemLogs, DataSource::Thresholds] {
        let (path, _) = write_sample(dir.path(), ds);
        let v6 = std::fs::read(&path).unwrap();
        assert_eq!(u16::from_le_bytes([v6[8], v6[9]]), 6);
        let want = rows_of(&path);
        rewrite_directory(&path, true, None);
        let v4 = std::fs::read(&path).unwrap();
        assert!(v4.len() > v6.len(), "the raw directory is the larger");
        assert_eq!(rows_of(&path), want, "{}", ds.name());
    }
}

#[test]
fn a_directory_length_that_disagrees_with_its_frame_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_sample(dir.path(), DataSource::SystemLogs);
    for bad in [3u32, u32::MAX] {
        rewrite_directory(&path, false, Some(bad));
        let err = CompactSegment::open_read_only(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad directory"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

#[test]
fn key_totals_and_counts_on_demand_agree_with_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_sample(dir.path(), DataSource::SystemLogs);
    let c = CompactSegment::open_read_only(&path).unwrap();
    // Recount (key, minute) and per-key totals from the rows themselves.
    let mut by_minute = std::collections::BTreeMap::new();
    let mut by_key = std::collections::BTreeMap::new();
    let mut first_row = std::collections::BTreeMap::new();
    c.scan(|row, ts, _, key| {
        let m = by_minute
            .entry((key, (ts / 60 % 60) as u8))
            .or_insert((0u32, 60u8, 0u8));
        m.0 += 1;
        m.1 = m.1.min((ts % 60) as u8);
        m.2 = m.2.max((ts % 60) as u8);
        let k = by_key.entry(key).or_insert((0u32, u32::MAX, 0u32));
        k.0 += 1;
        k.1 = k.1.min(ts);
        k.2 = k.2.max(ts);
        first_row.entry(key).or_insert(row);
    })
    .unwrap();
    assert_eq!(c.totals.len(), c.keys.len());
    for (k, t) in c.totals.iter().enumerate() {
        let want = by_key[&(k as u32)];
        assert_eq!((t.rows, t.min_ts, t.max_ts), want, "key {k}");
        assert_eq!(t.first_row, first_row[&(k as u32)]);
    }
    // Key by key before the hour's counts are cached (from the rows'
    // heads), then the hour's counts (decoded from the directory, then
    // from the cache), then key by key from them.
    let mut one = Vec::new();
    for pass in 0..4 {
        let counts = (pass == 1 || pass == 2).then(|| c.counts().unwrap());
        if pass == 0 {
            assert!(
                !c.cache.contains((c.uid, cache::COUNTS, false)),
                "not cached yet"
            );
        }
        let mut got = std::collections::BTreeMap::new();
        for k in 0..c.keys.len() {
            let mine = match pass {
                0 | 3 => {
                    c.key_counts(k, &mut one).unwrap();
                    &one[..]
                }
                _ => counts_of_key(&c.totals, counts.as_ref().unwrap(), k),
            };
            for m in mine {
                assert_eq!(m.key, k as u32);
                got.insert((m.key, m.minute), (m.count, m.min_sec, m.max_sec));
            }
        }
        assert_eq!(got, by_minute, "pass {pass}");
        if pass == 0 {
            assert!(
                !c.cache.contains((c.uid, cache::COUNTS, false)),
                "heads only"
            );
            assert_eq!(
                c.runs(0, u64::MAX, |_| true).unwrap().unwrap().len(),
                got.len()
            );
        }
    }
}

/// Rewrites a version 6 `system_logs` file as version 5 wrote it: the
/// directory without its seconds section.
fn strip_seconds(path: &Path) {
    replace_directory(path, Some(5), |stored, rows| {
        let mut raw = zstd::bulk::decompress(&stored[4..], 1 << 24).unwrap();
        raw.truncate(raw.len() - rows as usize);
        let mut dir = (raw.len() as u32).to_le_bytes().to_vec();
        dir.extend_from_slice(&zstd::bulk::compress(&raw, 3).unwrap());
        dir
    });
}

#[test]
fn rows_in_a_cut_range_count_from_the_seconds_as_from_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_sample(dir.path(), DataSource::SystemLogs);
    let hour = 470_000u64 * 3600;
    for version in [6, 5] {
        if version == 5 {
            strip_seconds(&path);
        }
        let c = CompactSegment::open_read_only(&path).unwrap();
        assert_eq!(
            c.counts().unwrap().seconds.len(),
            if version == 6 { 300 } else { 0 }
        );
        for (lo, hi) in [
            (hour + 17, hour + 3001),
            (hour + 61, hour + 119),
            (hour, hour + 3600),
        ] {
            let runs = c.runs(lo, hi, |_| true).unwrap().unwrap();
            assert!(!runs.is_empty());
            for r in runs {
                let mut want = (0u32, u32::MAX, 0u32);
                c.scan_rows(r.first_row, r.rows, |_, ts, _, _| {
                    if (lo..hi).contains(&(ts as u64)) {
                        want = (want.0 + 1, want.1.min(ts), want.2.max(ts));
                    }
                })
                .unwrap();
                match c.count_in(&r, lo, hi) {
                    Some(got) => assert_eq!(got, want, "v{version} {r:?} in {lo}..{hi}"),
                    None => assert_eq!(version, 5, "version 6 counts from its seconds"),
                }
            }
        }
    }
}

#[test]
fn seconds_that_disagree_with_the_counts_are_named() {
    let counts = [KeyCount {
        key: 0,
        minute: 3,
        count: 3,
        min_sec: 10,
        max_sec: 20,
    }];
    let mut raw = Vec::new();
    encode_seconds(&mut raw, &counts, &[10, 12, 20]);
    assert_eq!(raw, vec![10, 2, 8]);
    assert_eq!(decode_seconds(&raw, &counts).unwrap(), vec![10, 12, 20]);
    for bad in [
        vec![10, 2, 9],
        vec![10, 2],
        vec![10, 2, 8, 0],
        vec![11, 1, 8],
        vec![10, 250, 10],
    ] {
        assert!(decode_seconds(&bad, &counts).is_err(), "{bad:?}");
    }
}
