//! Opening a data dir: scan every segment, drop torn tails and the remnant
//! of an incomplete last batch, rebuild the in-memory state, and bring the
//! sled index into agreement with the segments (the ground truth).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use crate::durability::rewrite_atomic;
use crate::error::{Error, Result};
use crate::index::{Index, IndexUpdate, SegmentMeta};
use crate::keys::Keys;
use crate::row::{decode_log_head, decode_quarantine, decode_threshold, DataSource, ThresholdRow};
use crate::segment::compact::{peek_info, BlockCache, CompactInfo, CompactSegment};
use crate::segment::format::{Header, KIND_HOT};
use crate::segment::mmap::SegmentMap;
use crate::segment::recovery::{scan, Tail};
use crate::segment::{Entry, Segment, SegmentId};
use crate::state::{State, Table};
use crate::stats::{LogStats, MinuteStat};
use crate::thresholds::Thresholds;

/// File in the data dir holding the greatest seq ever removed by a truncate.
pub const SEQ_FLOOR_FILE: &str = "seq-floor";

/// A segment as found on disk, before the batch cut.
struct Found {
    ds: DataSource,
    id: SegmentId,
    path: PathBuf,
    header: Header,
    entries: Vec<Entry>,
    seqs: Vec<u64>,
    thresholds: Vec<(ThresholdRow, u64)>,
    valid_end: u64,
    file_len: u64,
    tail: Option<Tail>,
    /// Greatest seq that ends a batch (batch_rest == 0).
    batch_end: u64,
    /// The decoder of a compact segment.
    compact: Option<Arc<CompactSegment>>,
    /// Compact `system_logs`: engine key id per dictionary entry.
    key_ids: Vec<u32>,
}

/// What the writer needs to continue: where each hot segment ends.
pub struct Recovered {
    pub state: State,
    pub next_seq: u64,
}

pub fn read_seq_floor(data_dir: &Path) -> u64 {
    fs::read_to_string(data_dir.join(SEQ_FLOOR_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub fn write_seq_floor(data_dir: &Path, seq: u64) -> Result<()> {
    rewrite_atomic(&data_dir.join(SEQ_FLOOR_FILE), seq.to_string().as_bytes())
}

/// Scans the data dir and returns the state to serve from.
pub fn recover(data_dir: &Path, keys: &mut Keys, cache: &Arc<BlockCache>) -> Result<Recovered> {
    let mut found = Vec::new();
    for ds in DataSource::ALL {
        let dir = data_dir.join(ds.name());
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for path in finish_compactions(&dir, segment_files(&dir)?)? {
            if is_blank(&path)? {
                // A crash between creating a file and writing its header
                // (which is fsynced before any record is written): it never
                // held a row, and its name must be free for the writer.
                warn!(file = %path.display(), "removing a blank segment file left by a crash");
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                crate::durability::fsync_dir(&dir)?;
                continue;
            }
            restore_zero_header(ds, &path)?;
            found.push(scan_one(ds, &path, keys, cache)?);
        }
    }
    let floor = read_seq_floor(data_dir);
    let cut = found
        .iter()
        .map(|f| f.batch_end)
        .max()
        .unwrap_or(0)
        .max(floor);
    let mut tables: BTreeMap<DataSource, Table> = DataSource::ALL
        .into_iter()
        .map(|ds| {
            (
                ds,
                Table {
                    dir: data_dir.join(ds.name()),
                    segments: BTreeMap::new(),
                    rows: 0,
                },
            )
        })
        .collect();
    let mut stats = LogStats::default();
    let mut thresholds = Thresholds::default();
    for mut f in found {
        apply_cut(&mut f, cut);
        repair_tail(&f)?;
        for (row, seq) in f.thresholds.drain(..) {
            if seq <= cut {
                thresholds.apply(row, seq);
            }
        }
        if f.ds == DataSource::SystemLogs {
            match &f.compact {
                Some(c) => add_compact_counts(&mut stats, c, &f.key_ids)?,
                None => {
                    for e in &f.entries {
                        stats.add(e.ts, e.key);
                    }
                }
            }
        }
        let map = match &f.compact {
            Some(c) => c.map().expect("opened through a shared map").clone(),
            None => map_file(&f.path, f.valid_end)?,
        };
        let table = tables.get_mut(&f.ds).expect("table per data source");
        let seg = Segment {
            id: f.id,
            path: f.path,
            map,
            entries: f.entries,
            appendable: f.header.kind == KIND_HOT,
            compact: f.compact,
            key_ids: f.key_ids,
        };
        table.rows += seg.rows();
        table.segments.insert(f.id, seg);
    }
    let state = State {
        tables,
        log_stats: stats,
        thresholds,
    };
    Ok(Recovered {
        state,
        next_seq: cut + 1,
    })
}

/// A shared map of a segment file with `valid_end` bytes readable.
fn map_file(path: &Path, valid_end: u64) -> Result<Arc<SegmentMap>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, e))?
        .len()
        .max(valid_end);
    let (map, _) = SegmentMap::create(&file, len as usize, valid_end as usize)
        .map_err(|e| Error::io(path, e))?;
    Ok(map)
}

/// Suffix of a compact segment being written (`<name>.seg.compacting`).
pub const COMPACTING_SUFFIX: &str = "compacting";

/// Finishes or rolls back a compaction that a crash interrupted (see
/// docs/format.md, "Compaction"): a `.seg.compacting` file never got its
/// name, so it is deleted and the segments it was made from stay; a compact
/// segment that has its name is complete (it was fsynced before the rename),
/// so the segments of its hour that it replaces are deleted. Returns the
/// segment files that remain.
fn finish_compactions(dir: &Path, paths: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let mut changed = false;
    for ent in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = ent.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == COMPACTING_SUFFIX) {
            warn!(file = %p.display(), "removing an incomplete compact segment left by a crash");
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            changed = true;
        }
    }
    let mut compact: Vec<(u32, u32, CompactInfo)> = Vec::new();
    for p in &paths {
        // Files that are not readable compact segments are dealt with by the
        // scan (blank files, damage): only a valid compact file replaces.
        let Ok(Some((h, info))) = peek_info(p) else {
            continue;
        };
        CompactSegment::open_read_only(p)?;
        compact.push((h.hour, h.file_no, info));
    }
    let mut keep = Vec::with_capacity(paths.len());
    for p in paths {
        let id = segment_id_of(&p);
        let replaced = id.is_some_and(|(hour, file_no)| {
            compact
                .iter()
                .any(|(h, n, info)| *h == hour && *n != file_no && info.replaces(file_no))
        });
        if replaced {
            warn!(file = %p.display(), "removing a segment replaced by a compact segment (finishing an interrupted compaction)");
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            changed = true;
        } else {
            keep.push(p);
        }
    }
    if changed {
        crate::durability::fsync_dir(dir)?;
    }
    Ok(keep)
}

/// (hour, file_no) of a segment file, from its header (blank or unreadable
/// files: `None`).
fn segment_id_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(path).ok()?;
    let mut b = [0u8; crate::segment::format::HEADER_LEN];
    f.read_exact_at(&mut b, 0).ok()?;
    let h = Header::decode(path, &b).ok()?;
    Some((h.hour, h.file_no))
}

fn segment_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = ent.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == "seg") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// A hot segment is created without an fsync; its first sync makes header
/// and records durable together. A crash before that can leave records on
/// disk but the header page not: a zero header followed by data. Such a file
/// never had a synced byte, so its header is restored from its name and
/// directory with `synced_len` = the header's length, and its frames are
/// then checked like any torn tail (valid frames kept, the rest dropped).
fn restore_zero_header(ds: DataSource, path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; crate::segment::format::HEADER_LEN];
    if file.read_exact_at(&mut head, 0).is_err() || head.iter().any(|b| *b != 0) {
        return Ok(());
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parsed = name.strip_suffix(".seg").and_then(|stem| {
        let (label, no) = stem.split_once('-')?;
        Some((
            crate::time::hour_from_label(label)?,
            no.parse::<u32>().ok()?,
        ))
    });
    let Some((hour, file_no)) = parsed else {
        return Err(Error::corrupt(
            path,
            0,
            "zero header and a name that is not HOUR-NNNN.seg",
        ));
    };
    warn!(file = %path.display(), "restoring the zero header of a segment that was never synced");
    let header = Header {
        kind: KIND_HOT,
        datasource: ds.id(),
        hour,
        file_no,
        synced_len: crate::segment::format::HEADER_LEN as u64,
    };
    file.write_all_at(&header.encode(), 0)
        .map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Whether a segment file holds nothing but zeros (or nothing at all).
fn is_blank(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; crate::segment::format::HEADER_LEN];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]).map_err(|e| Error::io(path, e))? {
            0 => break,
            k => n += k,
        }
    }
    if head[..n].iter().any(|b| *b != 0) {
        return Ok(false);
    }
    let rest = fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(rest.iter().all(|b| *b == 0))
}

/// Adds a compact `system_logs` segment's per-minute counts: from its
/// counts section, or (version 2 files) from its block heads.
pub(crate) fn add_compact_counts(
    stats: &mut LogStats,
    c: &CompactSegment,
    key_ids: &[u32],
) -> Result<()> {
    let global = |k: u32| key_ids[k as usize];
    match &c.counts {
        Some(counts) => {
            let base = c.header.hour * 60;
            for k in counts {
                stats.add_minute(
                    base + k.minute as u32,
                    global(k.key),
                    k.count,
                    k.min_sec,
                    k.max_sec,
                );
            }
            Ok(())
        }
        None => c.scan(|_, ts, _, key| {
            stats.add(ts, global(key));
        }),
    }
}

fn scan_one(
    ds: DataSource,
    path: &Path,
    keys: &mut Keys,
    cache: &Arc<BlockCache>,
) -> Result<Found> {
    if let Some((header, _)) = peek_info(path)? {
        return scan_compact(ds, path, header, keys, cache);
    }
    let mut entries = Vec::new();
    let mut seqs = Vec::new();
    let mut thresholds = Vec::new();
    let mut batch_end = 0;
    let s = scan(path, |offset, frame, body| {
        let bad = |e: String| {
            Error::corrupt(path, offset as u64, format!("undecodable record body: {e}"))
        };
        let (ts, key) = match ds {
            DataSource::SystemLogs => {
                let h = decode_log_head(body).map_err(bad)?;
                (h.timestamp, keys.intern(h.service, h.severity))
            }
            DataSource::Thresholds => {
                let t = decode_threshold(body).map_err(bad)?;
                let ts = t.updated_at;
                thresholds.push((t, frame.seq));
                (ts, 0)
            }
            _ => (decode_quarantine(body).map_err(bad)?.insertion_date, 0),
        };
        entries.push(Entry { offset, ts, key });
        seqs.push(frame.seq);
        if frame.batch_rest == 0 {
            batch_end = batch_end.max(frame.seq);
        }
        Ok(())
    })?;
    if s.header.datasource != ds.id() {
        return Err(Error::corrupt(
            path,
            11,
            format!(
                "segment of data source {} found in {}",
                s.header.datasource,
                ds.name()
            ),
        ));
    }
    let id = SegmentId {
        hour: s.header.hour,
        file_no: s.header.file_no,
    };
    Ok(Found {
        ds,
        id,
        path: path.to_path_buf(),
        header: s.header,
        entries,
        seqs,
        thresholds,
        valid_end: s.valid_end,
        file_len: s.file_len,
        tail: s.tail,
        batch_end,
        compact: None,
        key_ids: Vec::new(),
    })
}

/// Loads a compact segment as recovery does (for installing one).
pub(crate) fn load_compact_segment(
    ds: DataSource,
    path: &Path,
    keys: &mut Keys,
    cache: &Arc<BlockCache>,
) -> Result<Segment> {
    let Some((header, _)) = peek_info(path)? else {
        return Err(Error::corrupt(path, 10, "not a compact segment"));
    };
    let f = scan_compact(ds, path, header, keys, cache)?;
    Ok(Segment {
        id: f.id,
        path: f.path,
        map: f
            .compact
            .as_ref()
            .and_then(|c| c.map())
            .expect("opened through a shared map")
            .clone(),
        entries: f.entries,
        appendable: false,
        compact: f.compact,
        key_ids: f.key_ids,
    })
}

/// Opens a compact segment through its directory: no row is read, except
/// the rows of `log_anomaly_thresholds` (few, and needed for the thresholds
/// in force). Block CRCs are checked when a block is read; `logpulse-compact
/// --verify-only` checks every one.
fn scan_compact(
    ds: DataSource,
    path: &Path,
    header: Header,
    keys: &mut Keys,
    cache: &Arc<BlockCache>,
) -> Result<Found> {
    if header.datasource != ds.id() {
        return Err(Error::corrupt(
            path,
            11,
            format!(
                "segment of data source {} found in {}",
                header.datasource,
                ds.name()
            ),
        ));
    }
    let mut key_ids = Vec::new();
    let logs = ds == DataSource::SystemLogs;
    // A system_logs file's dictionary shares the engine's strings.
    let mut names = |s: &str, v: &str| {
        if !logs {
            return (Arc::from(s), Arc::from(v));
        }
        let id = keys.intern(s, v);
        key_ids.push(id);
        let (s, v) = keys.name(id);
        (s.clone(), v.clone())
    };
    let map = map_file(path, header.synced_len)?;
    let c = CompactSegment::open(path, map, cache.clone(), &mut names)?;
    let mut thresholds = Vec::new();
    if ds == DataSource::Thresholds {
        for bi in 0..c.blocks.len() {
            for (_, seq, body) in c.block_rows(bi)? {
                let t = decode_threshold(&body).map_err(|e| {
                    Error::corrupt(
                        path,
                        c.blocks[bi].offset,
                        format!("undecodable record body: {e}"),
                    )
                })?;
                thresholds.push((t, seq));
            }
        }
    }
    let len = header.synced_len;
    Ok(Found {
        ds,
        id: SegmentId {
            hour: header.hour,
            file_no: header.file_no,
        },
        path: path.to_path_buf(),
        header,
        batch_end: c.seq_range().map_or(0, |r| r.1),
        entries: Vec::new(),
        seqs: Vec::new(),
        thresholds,
        valid_end: len,
        file_len: len,
        tail: None,
        compact: Some(Arc::new(c)),
        key_ids,
    })
}

/// Drops records past the last complete batch (a batch the writer was in
/// the middle of when the process died). They are always at segment tails.
fn apply_cut(f: &mut Found, cut: u64) {
    let Some(i) = f.seqs.iter().position(|s| *s > cut) else {
        return;
    };
    let offset = f.entries[i].offset as u64;
    warn!(
        file = %f.path.display(),
        offset,
        records = f.entries.len() - i,
        "dropping records of an incomplete batch"
    );
    f.entries.truncate(i);
    f.seqs.truncate(i);
    f.valid_end = offset;
    f.tail = Some(Tail {
        offset,
        reason: "incomplete batch",
        garbage: true,
    });
}

/// Truncates a torn tail so that the next append starts on clean bytes.
fn repair_tail(f: &Found) -> Result<()> {
    let Some(tail) = &f.tail else { return Ok(()) };
    if tail.garbage {
        warn!(
            file = %f.path.display(),
            offset = tail.offset,
            dropped_bytes = f.file_len - f.valid_end,
            reason = tail.reason,
            "truncating torn tail"
        );
    }
    let file = OpenOptions::new()
        .write(true)
        .open(&f.path)
        .map_err(|e| Error::io(&f.path, e))?;
    file.set_len(f.valid_end)
        .map_err(|e| Error::io(&f.path, e))?;
    file.sync_all().map_err(|e| Error::io(&f.path, e))
}

/// The index content that the recovered state implies.
pub fn expected_index(state: &State, watermark: u64) -> IndexUpdate {
    let mut u = IndexUpdate {
        watermark,
        clear_thresholds: true,
        ..Default::default()
    };
    u.thresholds = state.thresholds.rows().cloned().collect();
    for (ds, t) in &state.tables {
        for (id, seg) in &t.segments {
            u.segments.insert((ds.id(), *id), segment_meta(seg));
        }
    }
    u
}

pub fn segment_meta(seg: &Segment) -> SegmentMeta {
    let mut m = SegmentMeta {
        rows: seg.rows(),
        bytes: seg.bytes(),
        min_ts: u32::MAX,
        min_seq: u64::MAX,
        ..Default::default()
    };
    if let Some((min, max)) = seg.ts_range() {
        (m.min_ts, m.max_ts) = (min, max);
    }
    if let Some((min, max)) = seg.seq_range() {
        (m.min_seq, m.max_seq) = (min, max);
    }
    m
}

/// Compares the sled index with the recovered state; rebuilds it when they
/// disagree (or it was missing). Returns whether it was rebuilt.
pub fn reconcile_index(index: &Index, expected: IndexUpdate) -> Result<bool> {
    let same = index.watermark()? == expected.watermark
        && same_thresholds(index.thresholds()?, &expected.thresholds)
        && index.segments()? == expected.segments;
    if same {
        info!(
            watermark = expected.watermark,
            "index agrees with the segments"
        );
        return Ok(false);
    }
    warn!(
        watermark = expected.watermark,
        "index disagrees with the segments; rebuilding it from them"
    );
    index.clear()?;
    index.apply(&expected)?;
    index.flush()?;
    Ok(true)
}

fn same_thresholds(mut a: Vec<(ThresholdRow, u64)>, b: &[(ThresholdRow, u64)]) -> bool {
    let mut b = b.to_vec();
    let key = |x: &(ThresholdRow, u64)| (x.0.service.clone(), x.0.severity.clone());
    a.sort_by_key(key);
    b.sort_by_key(key);
    a == b
}

/// The per-minute counts by name: (minute, service, severity) → stat,
/// for tests and tools.
pub fn minutes_by_name(state: &State, keys: &Keys) -> HashMap<(u32, String, String), MinuteStat> {
    state
        .log_stats
        .all_minutes()
        .map(|(minute, key, m)| {
            let (s, v) = keys.name(key);
            ((minute, s.to_string(), v.to_string()), m)
        })
        .collect()
}
