//! A batch is visible after a crash entirely or not at all: records of a
//! batch whose completing frame (`batch_rest == 0`) never reached the files
//! are dropped on open, wherever they lie, while every complete batch stays;
//! and a writer killed (SIGKILL) at random moments of appending batches that
//! span many segment files never leaves half a batch behind.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use logpulse_engine::row::Encode;
use logpulse_engine::segment::format::{encode_frame, Header, HEADER_LEN, KIND_HOT};
use logpulse_engine::segment::SegmentId;
use logpulse_engine::*;

/// Appends raw frames at the end of a segment's valid records.
fn append_frames(path: &Path, frames: &[u8]) {
    let end = valid_end(path) as u64;
    write_at(path, end, frames);
}

fn body(row: &Row) -> Vec<u8> {
    let mut b = Vec::new();
    row.encode_into(&mut b);
    b
}

struct Setup {
    _tmp: tempfile::TempDir,
    rows: Vec<LogRow<'static>>,
    thresholds: Vec<ThresholdRow>,
    last_seq: u64,
}

impl Setup {
    fn dir(&self) -> &Path {
        self._tmp.path()
    }
}

/// Two complete batches over hours 0..2 and a threshold; closed.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let e = open(tmp.path());
    e.append(&batch("a", 120, BASE, 2), Durability::Synced)
        .unwrap();
    let r = e
        .append(
            &[
                log(BASE + 10, "auth", "ERROR", "b-0".into()),
                threshold("auth", "ERROR", 1.0, BASE),
            ],
            Durability::Visible,
        )
        .unwrap();
    let rows = scan(&e).into_iter().map(|(_, r)| r).collect();
    let thresholds = e.thresholds();
    e.close().unwrap();
    Setup {
        _tmp: tmp,
        rows,
        thresholds,
        last_seq: r.last_seq,
    }
}

/// Crafts the frames of a batch of `n` rows as the writer would lay them
/// out (one hour's rows per file), but written only up to row `upto`
/// (exclusive): rows 0..upto exist, the rest never made it. Rows go to
/// hours 1 and 0 alternately, plus one threshold row in a new file.
fn craft_batch(s: &Setup, n: u32, upto: u32) -> Vec<LogRow<'static>> {
    let dir = s.dir();
    let first = s.last_seq + 1;
    let logs = dir.join(DataSource::SystemLogs.name());
    let hour0 = SegmentId {
        hour: BASE / 3600,
        file_no: 0,
    }
    .path_in(&logs);
    let hour1 = SegmentId {
        hour: BASE / 3600 + 1,
        file_no: 0,
    }
    .path_in(&logs);
    assert!(hour0.exists() && hour1.exists());
    let (mut f0, mut f1, mut ft) = (Vec::new(), Vec::new(), Vec::new());
    let mut written = Vec::new();
    for i in 0..upto {
        let seq = first + i as u64;
        let rest = n - 1 - i;
        if i == 2 {
            let t = ThresholdRow {
                service: "auth".into(),
                severity: "ERROR".into(),
                threshold_per_minute: 99.0,
                active: 0,
                updated_at: BASE + 7200,
            };
            encode_frame(&mut ft, seq, rest, &body(&Row::Threshold(t)));
            continue;
        }
        let (ts, out) = if i % 2 == 0 {
            (BASE + 3600 + i, &mut f1)
        } else {
            (BASE + i, &mut f0)
        };
        let row = log(ts, "db", "ERROR", format!("crafted-{i}"));
        encode_frame(out, seq, rest, &body(&row));
        if let Row::Log(l) = row {
            written.push(l);
        }
    }
    append_frames(&hour1, &f1);
    append_frames(&hour0, &f0);
    if !ft.is_empty() {
        // A threshold segment file of an hour that had none.
        let hour = (BASE + 7200) / 3600;
        let path = SegmentId { hour, file_no: 0 }.path_in(&dir.join(DataSource::Thresholds.name()));
        let h = Header {
            kind: KIND_HOT,
            datasource: DataSource::Thresholds.id(),
            hour,
            file_no: 0,
            synced_len: HEADER_LEN as u64,
        };
        let mut data = h.encode().to_vec();
        data.extend_from_slice(&ft);
        data.resize(64 << 10, 0);
        fs::write(&path, data).unwrap();
    }
    written
}

#[test]
fn records_of_an_incomplete_batch_are_dropped() {
    for upto in [1, 3, 8, 19] {
        let s = setup();
        let crafted = craft_batch(&s, 20, upto);
        assert!(!crafted.is_empty() || upto < 2);
        let e = open(s.dir());
        let got: Vec<_> = scan(&e).into_iter().map(|(_, r)| r).collect();
        assert_eq!(got, s.rows, "upto {upto}");
        assert_eq!(e.thresholds(), s.thresholds);
        assert_eq!(
            e.datasource_stats(DataSource::Thresholds).rows,
            1,
            "upto {upto}"
        );
        assert_counts_recount(&e, s.dir());
        // The dropped seqs are given out again, and the new rows survive.
        let r = e
            .append(&batch("c", 30, BASE, 2), Durability::Visible)
            .unwrap();
        assert_eq!(r.first_seq, s.last_seq + 1);
        e.close().unwrap();
        drop(e);
        let e = open(s.dir());
        let got = scan(&e);
        assert_eq!(got.len(), s.rows.len() + 30);
        assert!(got.iter().all(|(_, r)| !r.message.starts_with("crafted")));
        assert_eq!(e.thresholds(), s.thresholds);
        assert_counts_recount(&e, s.dir());
    }
}

/// The same crafting with the completing frame present: the batch is kept,
/// so the test above drops records for the right reason.
#[test]
fn a_complete_crafted_batch_is_kept() {
    let s = setup();
    let crafted = craft_batch(&s, 20, 20);
    let e = open(s.dir());
    let got: Vec<_> = scan(&e).into_iter().map(|(_, r)| r).collect();
    assert_eq!(got.len(), s.rows.len() + crafted.len());
    assert_eq!(&got[..s.rows.len()], &s.rows[..]);
    let mut tail = got[s.rows.len()..].to_vec();
    tail.sort_by_key(|r| r.message.clone());
    let mut crafted = crafted;
    crafted.sort_by_key(|r| r.message.clone());
    assert_eq!(tail, crafted);
    // The crafted threshold row (newer, inactive) is in force.
    assert_eq!(e.thresholds()[0].active, 0);
    assert_counts_recount(&e, s.dir());
}

// ---------------------------------------------------------------------------
// Killing a real writer.

const CHILD_ENV: &str = "LP_CRASH_CHILD_DIR";
/// Rows per batch. Row i goes to hour i % 24, so the batch's first and last
/// rows share hour 0 and the hour-0 file holds the completing frame.
const BATCH_ROWS: u32 = 24 * 40 + 1;

fn crash_batch(round: u32, b: u32) -> Vec<Row<'static>> {
    let day = BASE + round * 86_400;
    (0..BATCH_ROWS)
        .map(|i| {
            log(
                day + (i % 24) * 3600 + i % 3600,
                ["auth", "db"][(i % 2) as usize],
                "ERROR",
                format!("r{round}b{b}i{i}"),
            )
        })
        .collect()
}

/// The child: appends batches until killed.
fn child(dir: &str) {
    let round: u32 = std::env::var("LP_CRASH_ROUND").unwrap().parse().unwrap();
    let e = Engine::open(EngineConfig::new(dir)).unwrap();
    println!("ready");
    for b in 0.. {
        let rows = crash_batch(round, b);
        e.append(&rows, Durability::Visible).unwrap();
    }
}

#[test]
fn killed_writer_never_leaves_half_a_batch() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let rounds_min = 12;
    let rounds_max = 60;
    let mut partial_seen = 0;
    let mut before_first = 0;
    let mut rounds = 0;
    for round in 0..rounds_max {
        if round >= rounds_min && partial_seen > 0 {
            break;
        }
        rounds += 1;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "killed_writer_never_leaves_half_a_batch",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, tmp.path())
            .env("LP_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("ready") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "child died before ready"
            );
        }
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(20 + next() % 200));
        child.kill().unwrap();
        child.wait().unwrap();
        let alive = t0.elapsed();
        // What the kill left in the files, before recovery looks at them:
        // rows of this round's batches, by batch.
        let on_disk = raw_rows_of_round(tmp.path(), round);

        let e = Engine::open(EngineConfig::new(tmp.path()))
            .unwrap_or_else(|err| panic!("seed {seed} round {round}: open failed: {err}"));
        let mut per_batch: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        e.scan_logs(|_, r| {
            let m = &r.message[1..];
            let (r_, rest) = m.split_once('b').unwrap();
            let b = rest.split_once('i').unwrap().0;
            *per_batch
                .entry((r_.parse().unwrap(), b.parse().unwrap()))
                .or_default() += 1;
        })
        .unwrap();
        for ((r, b), n) in &per_batch {
            assert_eq!(
                *n, BATCH_ROWS,
                "seed {seed}: round {r} batch {b} has {n} of {BATCH_ROWS} rows after a kill at {alive:?}"
            );
        }
        // Batches of a round are contiguous from 0.
        let this: Vec<u32> = per_batch
            .keys()
            .filter(|(r, _)| *r == round)
            .map(|(_, b)| *b)
            .collect();
        assert!(this.iter().enumerate().all(|(i, b)| i as u32 == *b));
        if this.is_empty() {
            before_first += 1;
        }
        // A batch with some rows in the files but not all: the kill landed
        // in the middle of it, and recovery must have dropped it.
        for (b, n) in &on_disk {
            if *n < BATCH_ROWS {
                assert!(!this.contains(b), "seed {seed}: partial batch {b} kept");
                partial_seen += 1;
            }
        }
        assert_counts_recount(&e, tmp.path());
        e.close().unwrap();
    }
    eprintln!(
        "seed {seed}: {rounds} kills, {partial_seen} in the middle of a batch, {before_first} before the first batch"
    );
    assert!(
        partial_seen > 0,
        "seed {seed}: no kill of {rounds} left a partial batch in the files: nothing was tested"
    );
}

/// Rows of each batch of `round` found in the raw segment files (messages
/// `r{round}b{b}i{i}` are stored as plain bytes in hot segments).
fn raw_rows_of_round(dir: &Path, round: u32) -> BTreeMap<u32, u32> {
    let logs = dir.join(DataSource::SystemLogs.name());
    let prefix = format!("r{round}b");
    let finder = memchr::memmem::Finder::new(prefix.as_bytes());
    let mut out = BTreeMap::new();
    for e in fs::read_dir(&logs).unwrap() {
        let data = fs::read(e.unwrap().path()).unwrap();
        for at in finder.find_iter(&data) {
            let rest = &data[at + prefix.len()..];
            let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || rest.get(digits) != Some(&b'i') {
                continue;
            }
            let b: u32 = std::str::from_utf8(&rest[..digits])
                .unwrap()
                .parse()
                .unwrap();
            *out.entry(b).or_default() += 1;
        }
    }
    out
}
