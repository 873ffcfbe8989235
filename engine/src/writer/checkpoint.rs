//! The writer's side of hot-segment checkpoints (`segment/checkpoint.rs`):
//! after an fsync that succeeded, the records published since the last
//! checkpoint are appended to their segments' checkpoint files as new
//! chunks. A checkpoint costs what was written since the last one, and a
//! reopen after `kill -9` decodes only the records after it.

use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use tracing::warn;

use super::edit::Removed;
use super::Writer;
use crate::row::DataSource;
use crate::segment::checkpoint::{self, HotChunk};
use crate::segment::format::{read_frame, FrameRead, HEADER_LEN};
use crate::segment::{Segment, SegmentId};

/// How often the checkpoint is brought up to date (and at every clean stop).
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// Most records in one chunk (~12 bytes per record).
const CHUNK_ROWS: usize = 65_536;

/// Per hot segment: how many of its records, and up to which offset, its
/// checkpoint file's chunks cover.
pub(crate) struct Coverage {
    pub covered: HashMap<(DataSource, SegmentId), (usize, u32)>,
    pub last: Instant,
}

impl Coverage {
    pub fn new(covered: HashMap<(DataSource, SegmentId), (usize, u32)>) -> Coverage {
        Coverage {
            covered,
            last: Instant::now(),
        }
    }
}

impl Writer {
    /// Appends chunks of every hot segment's records published since the
    /// last checkpoint to its checkpoint file. Call only right after a
    /// successful `sync_all`: every published record is then durable. Skipped
    /// while free space is under the floor (it is only a speed-up).
    pub(super) fn checkpoint_hot(&mut self) {
        self.coverage.last = Instant::now();
        if self
            .shared
            .lifecycle
            .low_disk
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let mut files: Vec<(DataSource, SegmentId, bool, Vec<HotChunk>)> = Vec::new();
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        let mut seen = FxHashSet::default();
        for (ds, table) in &st.tables {
            if *ds == DataSource::Thresholds {
                continue;
            }
            for seg in table.segments.values() {
                if !seg.appendable || seg.compact.is_some() {
                    continue;
                }
                seen.insert((*ds, seg.id));
                let cov = self
                    .coverage
                    .covered
                    .entry((*ds, seg.id))
                    .or_insert((0, HEADER_LEN as u32));
                let stale = match seg.entries.get(cov.0) {
                    Some(e) => e.offset != cov.1,
                    None => cov.0 > seg.entries.len(),
                };
                if stale {
                    // Another file under the same id (a truncate or drop
                    // came between): start its checkpoint over.
                    *cov = (0, HEADER_LEN as u32);
                }
                let fresh = cov.0 == 0;
                let mut chunks = Vec::new();
                while cov.0 < seg.entries.len() {
                    let n = (seg.entries.len() - cov.0).min(CHUNK_ROWS);
                    let name = |k: u32| {
                        let (s, v) = keys.name(k);
                        (s.to_string(), v.to_string())
                    };
                    let Some(chunk) = chunk_of(seg, *ds, cov.0..cov.0 + n, cov.1, name) else {
                        break;
                    };
                    *cov = (cov.0 + n, chunk.end);
                    chunks.push(chunk);
                }
                if !chunks.is_empty() {
                    files.push((*ds, seg.id, fresh, chunks));
                }
            }
        }
        drop((st, keys));
        self.coverage.covered.retain(|k, _| seen.contains(k));
        let dir = &self.shared.config.data_dir;
        for (ds, id, fresh, chunks) in files {
            let path = checkpoint::path_of(dir, ds, id);
            if let Err(e) = checkpoint::append(&path, &chunks, fresh) {
                // Not a fault of the data: that segment is decoded at open.
                warn!(error = %e, file = %path.display(), "could not write a checkpoint file");
                checkpoint::remove(dir, ds, id);
                self.coverage.covered.remove(&(ds, id));
            }
        }
    }

    /// Removes the checkpoint files of segments an edit removed (after their
    /// segment files: a crash between leaves a file that the next open
    /// removes).
    pub(super) fn forget_checkpoints(&mut self, removed: &[Removed]) {
        for r in removed {
            checkpoint::remove(&self.shared.config.data_dir, r.ds, r.id);
            self.coverage.covered.remove(&(r.ds, r.id));
        }
    }
}

/// The chunk of `seg`'s records `rows`, which start at offset `start`; `None`
/// if they do not (then the segment's checkpoint stays where it was).
fn chunk_of(
    seg: &Segment,
    ds: DataSource,
    rows: std::ops::Range<usize>,
    start: u32,
    name: impl Fn(u32) -> (String, String),
) -> Option<HotChunk> {
    let part = &seg.entries[rows];
    let (first, last) = (part.first()?, part.last()?);
    let data = seg.map.committed();
    let off = last.offset as usize;
    let FrameRead::Frame(f) = read_frame(data, off) else {
        return None;
    };
    if first.offset != start {
        return None;
    }
    let mut keys = Vec::new();
    let mut local: HashMap<u32, u32> = HashMap::default();
    let entries = part
        .iter()
        .map(|e| {
            let k = if ds == DataSource::SystemLogs {
                *local.entry(e.key).or_insert_with(|| {
                    keys.push(name(e.key));
                    keys.len() as u32 - 1
                })
            } else {
                0
            };
            (e.offset, e.ts, k)
        })
        .collect();
    Some(HotChunk {
        start,
        end: (off + f.total_len()) as u32,
        last_offset: last.offset,
        last_seq: f.seq,
        last_crc: u32::from_le_bytes(data[off + 4..off + 8].try_into().ok()?),
        keys,
        entries,
    })
}
