//! Proves the damage rules of docs/format.md over the real daemon: with a
//! stopped daemon's data dir damaged — the newest segment truncated at every
//! record boundary and inside every record, a byte flipped in its header and
//! in every record, its tail zero-filled, zeros or garbage appended, the sled
//! index missing, garbage, truncated or replaced by a file — `logpulsed`
//! either recovers exactly what was valid before the damage (whole requests
//! only; its log names the file and the offset of what it dropped) or, for
//! damage inside fsynced data, refuses to start with a message naming the
//! file and the byte offset. It never panics, and it never serves a count
//! other than that of the rows it recovered (row_count, recent_logs,
//! error_distribution, and after one more write and a restart).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::*;
use logpulse_engine::row::decode_log;
use logpulse_engine::segment::format::{
    frame_body, read_frame, FrameRead, HEADER_LEN, SYNCED_LEN_OFFSET,
};
use serde_json::Value;

/// The hour of the older, fully synced segment, and of the newest one.
const H0: i64 = SEED_TS / 3600 * 3600;
const H1: i64 = H0 + 3600;

/// One record of the newest segment.
#[derive(Clone, Debug)]
struct Rec {
    offset: usize,
    end: usize,
    batch_rest: u32,
    id: String,
}

/// The undamaged data dir and what is in it.
struct Template {
    dir: PathBuf,
    /// Newest segment, relative to the data dir.
    newest: PathBuf,
    /// Its `synced_len`.
    synced: usize,
    recs: Vec<Rec>,
    /// Ids of the rows of the older segment (never damaged).
    old_ids: Vec<String>,
    _keep: tempfile::TempDir,
}

fn rows(tag: &str, n: usize, hour: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let id = format!("{tag}-{i}");
            tagged_row(&id, hour + (fnv(&id) % 3600) as i64)
        })
        .collect()
}

/// Builds the template: three synced requests in hour H0; in hour H1 one
/// synced request then five acknowledged without wait (past `synced_len`),
/// then `kill -9` so that nothing more is synced.
fn template() -> Template {
    let mut d = Daemon::options()
        .arg("--sync-interval-ms")
        .arg("3600000")
        .start();
    let mut old_ids = Vec::new();
    for r in 0..3 {
        let rs = rows(&format!("old{r}"), 5, H0);
        old_ids.extend(
            rs.iter()
                .map(|v| v["message"].as_str().unwrap().to_string()),
        );
        d.ingest("system_logs", &rs, true);
    }
    d.ingest("system_logs", &rows("synced", 4, H1), true);
    for (r, n) in [3, 1, 4, 2, 3].into_iter().enumerate() {
        d.ingest("system_logs", &rows(&format!("unsynced{r}"), n, H1), false);
    }
    d.kill9();
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("data");
    copy_dir(&d.data_dir, &dir);
    let newest = PathBuf::from("system_logs").join(format!("{}-0000.seg", hour_label(H1)));
    let data = fs::read(dir.join(&newest)).expect("newest segment");
    let synced = u64::from_le_bytes(
        data[SYNCED_LEN_OFFSET..SYNCED_LEN_OFFSET + 8]
            .try_into()
            .unwrap(),
    ) as usize;
    let mut recs = Vec::new();
    let mut off = HEADER_LEN;
    while let FrameRead::Frame(f) = read_frame(&data, off) {
        let row = decode_log(frame_body(&data, off)).expect("decodable body");
        recs.push(Rec {
            offset: off,
            end: off + f.total_len(),
            batch_rest: f.batch_rest,
            id: row.message.to_string(),
        });
        off += f.total_len();
    }
    assert_eq!(recs.len(), 4 + 13, "records of the newest segment");
    assert_eq!(synced, recs[3].end, "synced_len ends the synced request");
    assert_eq!(recs.last().unwrap().batch_rest, 0);
    Template {
        dir,
        newest,
        synced,
        recs,
        old_ids,
        _keep: keep,
    }
}

/// `YYYYMMDDHH` of the hour starting at `secs`, as segment file names use.
fn hour_label(secs: i64) -> String {
    let t = fmt_ts(secs);
    format!("{}{}{}{}", &t[0..4], &t[5..7], &t[8..10], &t[11..13])
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// What a damaged data dir must lead to.
#[derive(Debug)]
enum Expect {
    /// The daemon starts and serves exactly these row ids; if `dropped` is
    /// set, its log names the newest segment and that offset.
    Recover {
        ids: BTreeSet<String>,
        dropped: Option<usize>,
    },
    /// The daemon refuses to start naming the file and this offset (`None`:
    /// a header refused as another format version, named without offset).
    Refuse {
        file: PathBuf,
        offset: Option<usize>,
    },
}

/// A damage done to a data dir.
type Damage = fn(&Path);

/// A damage and its expected outcome.
struct Case {
    name: String,
    damage: Box<dyn Fn(&Path) + Send + Sync>,
    expect: Expect,
}

impl Template {
    fn all_ids(&self) -> BTreeSet<String> {
        self.old_ids
            .iter()
            .cloned()
            .chain(self.recs.iter().map(|r| r.id.clone()))
            .collect()
    }

    /// The outcome of the newest segment's valid records ending at `pos`
    /// (the first damaged byte, or the end of a truncated file), with
    /// `garbage_after` telling whether non-zero bytes follow it.
    fn expect_valid_until(&self, pos: usize, garbage_after: bool) -> Expect {
        // Records wholly before the damage.
        let k = self.recs.iter().take_while(|r| r.end <= pos).count();
        let last_end = self.recs.last().map_or(HEADER_LEN, |r| r.end);
        let first_bad = self.recs.get(k).map_or(last_end, |r| r.offset);
        if first_bad < self.synced {
            return Expect::Refuse {
                file: self.newest.clone(),
                offset: Some(first_bad),
            };
        }
        // Whole requests only: up to the last record that ends a batch.
        let kept = self.recs[..k]
            .iter()
            .rposition(|r| r.batch_rest == 0)
            .map_or(0, |j| j + 1);
        let mut ids: BTreeSet<String> = self.old_ids.iter().cloned().collect();
        ids.extend(self.recs[..kept].iter().map(|r| r.id.clone()));
        let drop_at = self.recs.get(kept).map_or(first_bad, |r| r.offset);
        let dropped = (kept < k || garbage_after).then_some(drop_at);
        Expect::Recover { ids, dropped }
    }
}

fn cases(t: &Template) -> Vec<Case> {
    let mut out = Vec::new();
    let newest = t.newest.clone();
    let file_len = t.recs.last().unwrap().end;
    let seg = move |dir: &Path| dir.join(&newest);
    // Truncation at every record boundary and inside every record.
    for (i, r) in t.recs.iter().enumerate() {
        for (what, at) in [
            ("boundary", r.offset),
            ("mid-header", r.offset + 7),
            ("mid-body", (r.offset + r.end) / 2),
            ("last-byte", r.end - 1),
        ] {
            let seg = seg.clone();
            out.push(Case {
                name: format!("truncate at {at} ({what} of record {i})"),
                damage: Box::new(move |d| truncate(&seg(d), at)),
                expect: t.expect_valid_until(at, at != r.offset),
            });
        }
    }
    {
        let seg = seg.clone();
        out.push(Case {
            name: format!("truncate at {file_len} (after the last record)"),
            damage: Box::new(move |d| truncate(&seg(d), file_len)),
            expect: t.expect_valid_until(file_len, false),
        });
    }
    // A flipped byte in every record: in its length, CRC, seq, and body.
    for (i, r) in t.recs.iter().enumerate() {
        for (what, at) in [
            ("length", r.offset + 1),
            ("crc", r.offset + 5),
            ("seq", r.offset + 9),
            ("batch_rest", r.offset + 16),
            ("body", (r.offset + 20 + r.end) / 2),
        ] {
            if what != "body" && i % 3 != 0 {
                continue; // frame-header fields on every third record
            }
            let seg = seg.clone();
            out.push(Case {
                name: format!("flip byte {at} ({what} of record {i})"),
                damage: Box::new(move |d| flip(&seg(d), at)),
                expect: t.expect_valid_until(at, true),
            });
        }
    }
    // A flipped byte in the zero fill after the records.
    {
        let seg = seg.clone();
        let at = file_len + 100;
        out.push(Case {
            name: format!("flip byte {at} (zero fill after the records)"),
            damage: Box::new(move |d| flip(&seg(d), at)),
            expect: Expect::Recover {
                ids: t.all_ids(),
                dropped: Some(file_len),
            },
        });
    }
    // Flipped header bytes: magic, version, kind, data source, hour,
    // file_no, synced_len, reserved, CRC.
    for at in [0, 3, 8, 10, 11, 13, 17, 21, 30, 61] {
        let seg = seg.clone();
        out.push(Case {
            name: format!("flip header byte {at}"),
            damage: Box::new(move |d| flip(&seg(d), at)),
            expect: Expect::Refuse {
                file: t.newest.clone(),
                offset: if at == 8 {
                    None
                } else {
                    Some(header_offset(at))
                },
            },
        });
    }
    // A flipped byte in the first record of the older segment (synced).
    {
        let older = t
            .newest
            .with_file_name(format!("{}-0000.seg", hour_label(H0)));
        let o2 = older.clone();
        out.push(Case {
            name: "flip byte 90 of the older segment".into(),
            damage: Box::new(move |d| flip(&d.join(&o2), 90)),
            expect: Expect::Refuse {
                file: older,
                offset: Some(HEADER_LEN),
            },
        });
    }
    // A zero-filled tail from inside a record (synced or not) or from a
    // record boundary to the end of the file.
    for (i, r) in t.recs.iter().enumerate() {
        if ![0, 3, 4, 6, 10, 16].contains(&i) {
            continue;
        }
        for at in [r.offset, r.offset + 11] {
            let seg = seg.clone();
            out.push(Case {
                name: format!("zero-fill from {at} (record {i})"),
                damage: Box::new(move |d| zero_from(&seg(d), at)),
                expect: t.expect_valid_until(at, at != r.offset),
            });
        }
    }
    // Zeros or garbage appended after the (preallocated) end of the file.
    {
        let seg1 = seg.clone();
        out.push(Case {
            name: "1 MiB of zeros appended".into(),
            damage: Box::new(move |d| append(&seg1(d), &vec![0; 1 << 20])),
            expect: Expect::Recover {
                ids: t.all_ids(),
                dropped: None,
            },
        });
        let seg2 = seg.clone();
        out.push(Case {
            name: "garbage appended past the zero fill".into(),
            damage: Box::new(move |d| append(&seg2(d), b"\x07garbage")),
            expect: Expect::Recover {
                ids: t.all_ids(),
                dropped: Some(file_len),
            },
        });
    }
    // The sled index: missing, garbage, truncated, replaced by a file.
    let index_cases: Vec<(&str, Damage)> = vec![
        ("index missing", |d| {
            fs::remove_dir_all(d.join("index")).unwrap()
        }),
        ("index files overwritten with garbage", |d| {
            for_each_file(&d.join("index"), &mut |p| {
                let n = fs::metadata(p).unwrap().len().max(64) as usize;
                let junk: Vec<u8> = (0..n).map(|i| (i * 131 % 251) as u8 ^ 0x5a).collect();
                fs::write(p, junk).unwrap();
            })
        }),
        ("index files truncated to half", |d| {
            for_each_file(&d.join("index"), &mut |p| {
                let n = fs::metadata(p).unwrap().len();
                truncate(p, (n / 2) as usize);
            })
        }),
        ("index files emptied", |d| {
            for_each_file(&d.join("index"), &mut |p| truncate(p, 0))
        }),
        ("index bytes flipped", |d| {
            for_each_file(&d.join("index"), &mut |p| {
                let n = fs::metadata(p).unwrap().len() as usize;
                for at in (0..n).step_by(97) {
                    flip(p, at);
                }
            })
        }),
        ("index replaced by a file", |d| {
            fs::remove_dir_all(d.join("index")).unwrap();
            fs::write(d.join("index"), b"not a directory").unwrap();
        }),
    ];
    for (name, f) in index_cases {
        out.push(Case {
            name: name.into(),
            damage: Box::new(f),
            expect: Expect::Recover {
                ids: t.all_ids(),
                dropped: None,
            },
        });
    }
    out
}

/// The offset a header error names for a flip at `at`: the magic is checked
/// first (offset 0), then the CRC (offset 60).
fn header_offset(at: usize) -> usize {
    if at < 8 {
        0
    } else {
        60
    }
}

fn for_each_file(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            for_each_file(&p, f);
        } else {
            f(&p);
        }
    }
}

fn truncate(p: &Path, len: usize) {
    fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_len(len as u64)
        .unwrap();
}

fn flip(p: &Path, at: usize) {
    let mut b = fs::read(p).unwrap();
    if at < b.len() {
        b[at] ^= 0x5a;
        fs::write(p, b).unwrap();
    }
}

fn zero_from(p: &Path, at: usize) {
    let mut b = fs::read(p).unwrap();
    b[at..].fill(0);
    fs::write(p, b).unwrap();
}

fn append(p: &Path, bytes: &[u8]) {
    use std::io::Write;
    fs::OpenOptions::new()
        .append(true)
        .open(p)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Row ids a daemon serves, checking every row's columns, and checking that
/// row_count and error_distribution agree with them.
fn served_ids(d: &Daemon) -> BTreeSet<String> {
    let v = d.pipe_json("recent_logs", &[("limit", "10000")]);
    let data = v["data"].as_array().unwrap();
    let ids: Vec<String> = data.iter().map(|r| check_tagged(r).0).collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "a row is served twice");
    assert_eq!(
        v["rows_before_limit_at_least"].as_u64(),
        Some(ids.len() as u64)
    );
    assert_eq!(d.row_count("system_logs"), ids.len() as u64, "row_count");
    let dist = d.pipe_json("error_distribution", &[("limit", "10000")]);
    let total: u64 = dist["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, ids.len() as u64, "error_distribution total");
    set
}

fn run_case(t: &Template, c: &Case) -> Result<(), String> {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    copy_dir(&t.dir, &dir);
    (c.damage)(&dir);
    let started = Daemon::try_start_with(Daemon::options().data_dir(&dir));
    match (&c.expect, started) {
        (Expect::Refuse { file, offset }, Err(e)) => {
            let name = file.file_name().unwrap().to_str().unwrap();
            if e.contains("panicked") {
                return Err(format!("panicked:\n{e}"));
            }
            if !e.contains("exited early with exit status") || !e.contains(name) {
                return Err(format!("refusal does not name {name}:\n{e}"));
            }
            if let Some(o) = offset {
                if !e.contains(&format!("offset {o}:")) {
                    return Err(format!("refusal does not name offset {o}:\n{e}"));
                }
            }
            Ok(())
        }
        (Expect::Refuse { offset, .. }, Ok(d)) => Err(format!(
            "started although damage at {offset:?} is inside synced data; serves {} rows",
            d.row_count("system_logs")
        )),
        (Expect::Recover { .. }, Err(e)) => Err(format!("refused to start:\n{e}")),
        (Expect::Recover { ids, dropped }, Ok(mut d)) => {
            let got = served_ids(&d);
            if &got != ids {
                return Err(format!(
                    "serves {} rows, expected {}: missing {:?}, extra {:?}",
                    got.len(),
                    ids.len(),
                    ids.difference(&got).collect::<Vec<_>>(),
                    got.difference(ids).collect::<Vec<_>>()
                ));
            }
            let log = d.log();
            if let Some(o) = dropped {
                let name = t.newest.file_name().unwrap().to_str().unwrap();
                let named = log
                    .lines()
                    .any(|l| l.contains(name) && l.contains(&format!("offset={o}")));
                if !named {
                    return Err(format!("log does not name {name} and offset={o}:\n{log}"));
                }
            }
            // The repaired store takes writes and keeps them across a restart.
            let more = rows("after", 3, H1);
            d.ingest("system_logs", &more, true);
            d.restart();
            let mut want = ids.clone();
            want.extend(
                more.iter()
                    .map(|v| v["message"].as_str().unwrap().to_string()),
            );
            let again = served_ids(&d);
            if again != want {
                return Err(format!(
                    "after a write and a restart: {} rows, expected {}",
                    again.len(),
                    want.len()
                ));
            }
            if d.log().contains("panicked") {
                return Err(format!("panicked:\n{}", d.log()));
            }
            Ok(())
        }
    }
}

#[test]
fn damaged_data_dirs_are_recovered_exactly_or_refused_by_name_and_offset() {
    if common::clickhouse::embedded_only("damaged segment and index files") {
        return;
    }
    let t = template();
    let cases = cases(&t);
    let n = cases.len();
    let next = Mutex::new(0usize);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let (refused, recovered) = (Mutex::new(0), Mutex::new(0));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut g = next.lock().unwrap();
                    *g += 1;
                    *g - 1
                };
                let Some(c) = cases.get(i) else { break };
                let res = catch_unwind(AssertUnwindSafe(|| run_case(&t, c)))
                    .unwrap_or_else(|p| Err(format!("test panicked: {p:?}")));
                match res {
                    Err(e) => failures.lock().unwrap().push(format!("{}: {e}", c.name)),
                    Ok(()) => match c.expect {
                        Expect::Refuse { .. } => *refused.lock().unwrap() += 1,
                        Expect::Recover { .. } => *recovered.lock().unwrap() += 1,
                    },
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    println!(
        "corrupt_files: {n} faults injected into copies of one data dir ({} records in the newest segment, synced up to byte {}): {} recovered exactly, {} refused by file and offset, {} failed",
        t.recs.len(),
        t.synced,
        recovered.into_inner().unwrap(),
        refused.into_inner().unwrap(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
