//! Opening a data dir: scan every segment, drop torn tails and the remnant
//! of an incomplete last batch, rebuild the in-memory state, and bring the
//! sled index into agreement with the segments (the ground truth).

mod checkpoint;
mod files;
mod index;
pub mod records;
mod scan;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::durability::rewrite_atomic;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::row::{DataSource, ThresholdRow};
use crate::segment::compact::{BlockCache, CompactSegment};
use crate::segment::format::{Header, KIND_HOT};
use crate::segment::mmap::SegmentMap;
use crate::segment::{self, Entry, Segment, SegmentId};
use crate::state::{State, Table};
use crate::stats::LogStats;
use crate::thresholds::Thresholds;
use records::Tail;

pub use files::COMPACTING_SUFFIX;
use files::{finish_compactions, is_blank, restore_zero_header, segment_files};
pub use index::{check_index, expected_index, minutes_by_name, reconcile_index, segment_meta};
pub(crate) use scan::load_compact_segment;
use scan::scan_one;

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
    /// Leading entries taken from the segment's checkpoint file.
    ckpt_rows: usize,
}

/// What the writer needs to continue: where each hot segment ends.
pub struct Recovered {
    pub state: State,
    pub next_seq: u64,
    /// Per hot segment read through its checkpoint file: (rows, end offset)
    /// its chunks cover.
    pub checkpointed: HashMap<(DataSource, SegmentId), (usize, u32)>,
    /// Hot records read from checkpoint chunks, and decoded from files.
    pub rows_from_checkpoint: u64,
    pub rows_scanned: u64,
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
///
/// The records of a hot file that its checkpoint file describes, when it
/// agrees with the file, take their entries from there instead of being
/// decoded (every frame's checksum is still checked).
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
            let chunks = match files::segment_id_of(&path) {
                Some((hour, file_no)) if ds != DataSource::Thresholds => {
                    let id = SegmentId { hour, file_no };
                    segment::checkpoint::read(&segment::checkpoint::path_of(data_dir, ds, id))
                }
                _ => Vec::new(),
            };
            found.push(scan_one(ds, &path, keys, cache, &chunks)?);
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
    let mut checkpointed = HashMap::new();
    let (mut rows_from_checkpoint, mut rows_scanned) = (0, 0);
    for mut f in found {
        apply_cut(&mut f, cut);
        if f.compact.is_none() {
            // A cut into the checkpointed records leaves the file to the
            // next checkpoint, which starts it over.
            let ckpt = if f.ckpt_rows <= f.entries.len() {
                f.ckpt_rows
            } else {
                0
            };
            rows_from_checkpoint += ckpt as u64;
            rows_scanned += (f.entries.len() - ckpt) as u64;
            if ckpt > 0 {
                let end = f.entries.get(ckpt).map_or(f.valid_end as u32, |e| e.offset);
                checkpointed.insert((f.ds, f.id), (ckpt, end));
            }
        }
        repair_tail(&f)?;
        for (row, seq) in f.thresholds.drain(..) {
            if seq <= cut {
                thresholds.apply(row, seq);
            }
        }
        // Compact files carry their own counts (`query::hours`).
        if f.ds == DataSource::SystemLogs && f.compact.is_none() {
            for e in &f.entries {
                stats.add(e.ts, e.key);
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
            by_global: crate::segment::order_by_global(&f.key_ids),
            key_ids: f.key_ids,
        };
        table.rows += seg.rows();
        table.segments.insert(f.id, seg);
    }
    // Checkpoint files of segments that are gone or compacted.
    for (ds, t) in &tables {
        let hot: Vec<SegmentId> = t
            .segments
            .values()
            .filter(|s| s.compact.is_none())
            .map(|s| s.id)
            .collect();
        segment::checkpoint::remove_others(data_dir, *ds, &hot);
    }
    let state = State {
        tables,
        log_stats: stats,
        thresholds,
    };
    Ok(Recovered {
        state,
        next_seq: cut + 1,
        checkpointed,
        rows_from_checkpoint,
        rows_scanned,
    })
}

/// A shared map of a segment file with `valid_end` bytes readable.
pub(crate) fn map_file(path: &Path, valid_end: u64) -> Result<Arc<SegmentMap>> {
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
