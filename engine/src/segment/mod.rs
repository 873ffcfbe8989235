//! Segment files: one or more per (data source, UTC hour), written through
//! shared memory maps.

pub mod checkpoint;
pub mod compact;
pub mod format;
pub mod mmap;
pub mod writer;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::error;

use crate::error::Result;
use crate::time::hour_label;
use compact::CompactSegment;
use format::{frame_body, frame_seq};
use mmap::SegmentMap;

/// Identifies a segment within its data source: its hour and file number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId {
    pub hour: u32,
    pub file_no: u32,
}

impl SegmentId {
    /// `YYYYMMDDHH-NNNN.seg`.
    pub fn file_name(&self) -> String {
        format!("{}-{:04}.seg", hour_label(self.hour), self.file_no)
    }

    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }
}

/// One row's place in a segment: where its frame starts (in a compact
/// segment: its row number), its timestamp, and its interned (service,
/// severity) key (0 for other data sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub offset: u32,
    pub ts: u32,
    pub key: u32,
}

/// The read side of a segment as queries see it. Entries of a hot segment
/// are in seq order; those of a compact one in (timestamp, seq) order.
pub struct Segment {
    pub id: SegmentId,
    pub path: PathBuf,
    /// The whole file (hot: up to the committed length).
    pub map: Arc<SegmentMap>,
    /// Where each row of a hot segment is (empty for a compact segment,
    /// which keeps no per-row state in memory: its rows are found through
    /// its directory and the block cache).
    pub entries: Vec<Entry>,
    /// A hot segment that the writer may append to (not a compacted one).
    pub appendable: bool,
    /// The decoder of a compact segment (`None` for hot ones).
    pub compact: Option<Arc<CompactSegment>>,
    /// Compact `system_logs` segments: the engine's key id of each entry of
    /// the file's key dictionary.
    pub key_ids: Vec<u32>,
    /// The dictionary indices ordered by engine key id ([`Self::local_of`]).
    pub by_global: Vec<u32>,
}

/// Dictionary indices ordered by the engine key id each maps to.
pub fn order_by_global(key_ids: &[u32]) -> Vec<u32> {
    let mut v: Vec<u32> = (0..key_ids.len() as u32).collect();
    v.sort_unstable_by_key(|&k| key_ids[k as usize]);
    v
}

impl Segment {
    /// The dictionary index of engine key `key` in a compact `system_logs`
    /// segment.
    pub fn local_of(&self, key: u32) -> Option<usize> {
        let i = self
            .by_global
            .partition_point(|&k| self.key_ids[k as usize] < key);
        let k = *self.by_global.get(i)? as usize;
        (self.key_ids[k] == key).then_some(k)
    }

    /// Bytes of the file that hold committed records (header included).
    pub fn bytes(&self) -> u64 {
        self.map.committed_len() as u64
    }

    /// Rows held.
    pub fn rows(&self) -> u64 {
        match &self.compact {
            Some(c) => c.info.rows as u64,
            None => self.entries.len() as u64,
        }
    }

    /// The seq of an entry's record (through the block cache for a compact
    /// segment, whose head may turn out damaged).
    pub fn seq(&self, e: &Entry) -> Result<u64> {
        match &self.compact {
            Some(c) => c.seq(e.offset),
            None => Ok(frame_seq(self.map.committed(), e.offset as usize)),
        }
    }

    /// Calls `f` with every row whose timestamp is in `lo..hi` and whose
    /// key passes `want`, with its seq when that is at hand for free (rows
    /// of compact segments). Hot segments walk their entries; compact ones
    /// read only the heads of the blocks whose time range and keys can match.
    pub fn for_each_entry(
        &self,
        lo: u64,
        hi: u64,
        want: impl Fn(u32) -> bool,
        mut f: impl FnMut(Entry, Option<u64>),
    ) -> Result<()> {
        let Some(c) = &self.compact else {
            for e in &self.entries {
                let ts = e.ts as u64;
                if lo <= ts && ts < hi && want(e.key) {
                    f(*e, None);
                }
            }
            return Ok(());
        };
        let global = |k: u32| self.key_ids.get(k as usize).copied().unwrap_or(0);
        let mut each = |row, ts: u32, seq, key| {
            let key = global(key);
            let t = ts as u64;
            if lo <= t && t < hi && want(key) {
                f(
                    Entry {
                        offset: row,
                        ts,
                        key,
                    },
                    Some(seq),
                );
            }
        };
        // Files in key order say which rows hold the wanted (key, minute)s
        // (in file order); in the others, the blocks' time ranges and key
        // lists say which blocks can.
        if let Some(runs) = c.runs(lo, hi, |k| want(global(k)))? {
            for r in runs {
                c.scan_rows(r.first_row, r.rows, &mut each)?;
            }
            return Ok(());
        }
        let blocks = (c.blocks.iter().enumerate())
            .filter(|(_, b)| {
                (b.max_ts as u64) >= lo
                    && (b.min_ts as u64) < hi
                    && (self.key_ids.is_empty() || b.keys.iter().any(|k| want(global(*k))))
            })
            .map(|(i, _)| i);
        c.scan_blocks(blocks, each)
    }

    /// Calls `f(key, rows, min_ts, max_ts)` for pieces that together are
    /// the rows with a timestamp in `lo..hi` and a key passing `want`. In a
    /// compact file in key order, a (key, minute) whose rows all fall in
    /// the range is one piece from the counts section, with no block read;
    /// one that the range cuts is counted from the seconds section (format
    /// 6, when the file's counts are cached) or has its rows read (the
    /// heads of just its blocks). Elsewhere every row is a piece.
    pub fn for_each_piece(
        &self,
        lo: u64,
        hi: u64,
        want: impl Fn(u32) -> bool,
        mut f: impl FnMut(u32, u32, u32, u32),
    ) -> Result<()> {
        let global = |k: u32| self.key_ids.get(k as usize).copied().unwrap_or(0);
        let runs = match &self.compact {
            Some(c) => c.runs(lo, hi, |k| want(global(k)))?.map(|r| (c, r)),
            None => None,
        };
        let Some((c, runs)) = runs else {
            return self.for_each_entry(lo, hi, want, |e, _| f(e.key, 1, e.ts, e.ts));
        };
        for r in runs {
            let key = global(r.key);
            if lo <= r.min_ts as u64 && (r.max_ts as u64) < hi {
                f(key, r.rows, r.min_ts, r.max_ts);
                continue;
            }
            // Cut by the range: its rows' seconds (format 6, counts at
            // hand), else its rows' heads.
            if let Some((n, min_ts, max_ts)) = c.count_in(&r, lo, hi) {
                if n > 0 {
                    f(key, n, min_ts, max_ts);
                }
                continue;
            }
            c.scan_rows(r.first_row, r.rows, |_, ts, _, _| {
                if lo <= ts as u64 && (ts as u64) < hi {
                    f(key, 1, ts, ts);
                }
            })?;
        }
        Ok(())
    }

    /// The body of an entry's record: borrowed from the map of a hot
    /// segment, decoded (through a small cache of blocks) from a compact one.
    pub fn read_body(&self, e: &Entry) -> Result<Cow<'_, [u8]>> {
        match &self.compact {
            Some(c) => c.body(e.offset).map(Cow::Owned),
            None => Ok(Cow::Borrowed(frame_body(
                self.map.committed(),
                e.offset as usize,
            ))),
        }
    }

    /// [`Self::read_body`], with a damaged compact block logged and read as
    /// an empty body (which no row decoder accepts, so callers report the
    /// file and row as corrupt).
    pub fn body(&self, e: &Entry) -> Cow<'_, [u8]> {
        self.read_body(e).unwrap_or_else(|err| {
            error!(error = %err, "unreadable row");
            Cow::Borrowed(&[])
        })
    }

    /// Smallest and greatest seq of the segment's rows.
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        match &self.compact {
            Some(c) => c.seq_range(),
            None => {
                let (first, last) = (self.entries.first()?, self.entries.last()?);
                let data = self.map.committed();
                Some((
                    frame_seq(data, first.offset as usize),
                    frame_seq(data, last.offset as usize),
                ))
            }
        }
    }

    /// Smallest and greatest timestamp of the segment's rows.
    pub fn ts_range(&self) -> Option<(u32, u32)> {
        match &self.compact {
            Some(c) => Some((
                c.blocks.iter().map(|b| b.min_ts).min()?,
                c.blocks.iter().map(|b| b.max_ts).max()?,
            )),
            None => {
                let min = self.entries.iter().map(|e| e.ts).min()?;
                Some((min, self.entries.iter().map(|e| e.ts).max()?))
            }
        }
    }
}
