//! Row scans for ad-hoc queries (SQL): the rows of one data source in a
//! range of partition time, optionally of one service and/or severity
//! (`system_logs`), read in batches.
//!
//! [`Scan::new`] takes owned handles of the segments of the range under the
//! state lock (no per-row state: a hot segment is remembered by its map and
//! committed length, a compact one by its decoder); every batch is then read
//! without any lock, so a long scan never holds ingestion off, and
//! compaction or retention running meanwhile does not change what it sees
//! (a removed file stays mapped until the scan is dropped). A scan sees the
//! rows published before it started.
//!
//! The time range prunes whole hours and compact blocks by their time range;
//! what comes back is exact: only rows whose partition time lies in the
//! range and, for `system_logs`, of the wanted service and severity (so SQL
//! need not filter those again).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::query::{KeyFilter, ReadStats};
use crate::row::{decode_log, decode_quarantine, decode_threshold};
use crate::row::{DataSource, QuarantineRow, ThresholdRow};
use crate::segment::compact::{CompactSegment, ScanBlock};
use crate::segment::format::{read_frame, FrameRead, FRAME_HEADER_LEN, HEADER_LEN};
use crate::segment::mmap::SegmentMap;
use crate::segment::SegmentId;
use crate::state::State;

pub use logpulse_model::scan::{LogColumns, ScanBatch, ScanFilter};

/// A segment as the scan holds it.
enum Part {
    /// A hot segment: its frames from the header to `end`; `at` is the
    /// next frame to read.
    Hot {
        path: PathBuf,
        map: Arc<SegmentMap>,
        end: usize,
        at: usize,
    },
    /// A compact segment: the blocks still to read (their rows from
    /// `row` on, for the first) and its key dictionary's engine ids.
    Compact {
        seg: Arc<CompactSegment>,
        key_ids: Vec<u32>,
        blocks: VecDeque<usize>,
        row: usize,
    },
}

impl Part {
    /// About how much reading it is: a compact segment's rows in the
    /// blocks to read, a hot one's bytes over 200 (a typical row).
    fn weight(&self) -> u64 {
        match self {
            Part::Hot { end, at, .. } => (end.saturating_sub(*at) / 200) as u64 + 1,
            Part::Compact { seg, blocks, .. } => {
                blocks
                    .iter()
                    .map(|&b| seg.blocks[b].rows as u64)
                    .sum::<u64>()
                    + 1
            }
        }
    }
}

/// A scan in progress; see the module documentation.
pub struct Scan {
    filter: ScanFilter,
    keys: KeyFilter,
    parts: VecDeque<Part>,
    stats: ReadStats,
}

impl Scan {
    pub(crate) fn new(
        state: &parking_lot::RwLock<State>,
        keys: &parking_lot::RwLock<Keys>,
        filter: &ScanFilter,
    ) -> Scan {
        let kf = match filter.ds {
            DataSource::SystemLogs => KeyFilter::new(
                &keys.read(),
                filter.service.as_deref(),
                filter.severity.as_deref(),
            ),
            _ => KeyFilter::All,
        };
        let mut parts = VecDeque::new();
        if filter.start < filter.end && !kf.is_empty() {
            let lo = SegmentId {
                hour: (filter.start / 3600).min(u32::MAX as u64) as u32,
                file_no: 0,
            };
            let hi = SegmentId {
                hour: ((filter.end - 1) / 3600).min(u32::MAX as u64) as u32,
                file_no: u32::MAX,
            };
            let st = state.read();
            for seg in st.table(filter.ds).segments.range(lo..=hi).map(|(_, s)| s) {
                parts.push_back(match &seg.compact {
                    Some(c) => Part::Compact {
                        blocks: blocks_of(c, &seg.key_ids, &kf, filter),
                        seg: c.clone(),
                        key_ids: seg.key_ids.clone(),
                        row: 0,
                    },
                    None => Part::Hot {
                        path: seg.path.clone(),
                        end: seg.map.committed_len(),
                        map: seg.map.clone(),
                        at: HEADER_LEN,
                    },
                });
            }
        }
        Scan {
            filter: filter.clone(),
            keys: kf,
            parts,
            stats: ReadStats::default(),
        }
    }

    /// This scan's segments dealt out to at most `n` scans of about the
    /// same size (the biggest first, each to the smallest so far), to be
    /// read at once; each row is in exactly one of them. Empty scans are
    /// left out, but at least one is returned.
    pub fn split(self, n: usize) -> Vec<Scan> {
        let mut parts: Vec<Part> = self.parts.into_iter().collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.weight()));
        let mut out: Vec<(u64, Scan)> = (0..n.clamp(1, parts.len().max(1)))
            .map(|_| {
                let s = Scan {
                    filter: self.filter.clone(),
                    keys: self.keys.clone(),
                    parts: VecDeque::new(),
                    stats: ReadStats::default(),
                };
                (0, s)
            })
            .collect();
        for p in parts {
            let least = out.iter_mut().min_by_key(|(w, _)| *w).expect("n >= 1");
            least.0 += p.weight();
            least.1.parts.push_back(p);
        }
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// Rows and bytes read so far.
    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// Reads the next batch of at most `max_rows` rows (of one segment)
    /// and hands it to `f` (not called when none match). Returns false once
    /// the scan is complete.
    pub fn next_batch(
        &mut self,
        max_rows: usize,
        f: &mut dyn FnMut(ScanBatch<'_>),
    ) -> Result<bool> {
        let want = max_rows.max(1);
        let Some(part) = self.parts.front_mut() else {
            return Ok(false);
        };
        let done = match part {
            Part::Hot { path, map, end, at } => {
                let (path, map) = (path.clone(), map.clone());
                let mut bodies = Vec::new();
                let done = hot_bodies(&path, &map.committed()[..*end], at, want, &mut bodies)?;
                self.stats.add_bodies(&bodies);
                deliver(&self.filter, &path, &bodies, f)?;
                done
            }
            Part::Compact {
                seg,
                key_ids,
                blocks,
                row,
            } if self.filter.ds == DataSource::SystemLogs => {
                let seg = seg.clone();
                let pick = Pick {
                    keys: &self.keys,
                    key_ids,
                    filter: &self.filter,
                };
                let stats = &mut self.stats;
                compact_columns(&seg, &pick, blocks, row, want, &mut |cols| {
                    stats.rows_read += cols.rows() as u64;
                    stats.bytes_read += columns_bytes(cols);
                    f(ScanBatch::LogColumns(cols));
                })?
            }
            Part::Compact {
                seg,
                key_ids,
                blocks,
                row,
            } => {
                let seg = seg.clone();
                let mut bodies = Vec::new();
                let pick = Pick {
                    keys: &self.keys,
                    key_ids,
                    filter: &self.filter,
                };
                let done = compact_bodies(&seg, &pick, blocks, row, want, &mut bodies)?;
                let slices: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
                self.stats.add_bodies(&slices);
                deliver(&self.filter, seg.path(), &slices, f)?;
                done
            }
        };
        if done {
            self.parts.pop_front();
        }
        Ok(!self.parts.is_empty())
    }
}

/// The blocks of a compact segment that can hold rows the scan wants.
fn blocks_of(
    c: &CompactSegment,
    key_ids: &[u32],
    kf: &KeyFilter,
    filter: &ScanFilter,
) -> VecDeque<usize> {
    let global = |k: u32| key_ids.get(k as usize).copied().unwrap_or(0);
    c.blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| (b.max_ts as u64) >= filter.start && (b.min_ts as u64) < filter.end)
        .filter(|(_, b)| key_ids.is_empty() || b.keys.iter().any(|k| kf.matches(global(*k))))
        .map(|(i, _)| i)
        .collect()
}

/// Up to `want` frame bodies of a hot segment's records from `*at`;
/// advances `*at`. True once the records end.
fn hot_bodies<'a>(
    path: &std::path::Path,
    data: &'a [u8],
    at: &mut usize,
    want: usize,
    out: &mut Vec<&'a [u8]>,
) -> Result<bool> {
    while out.len() < want {
        match read_frame(data, *at) {
            FrameRead::Frame(fr) => {
                out.push(&data[*at + FRAME_HEADER_LEN..*at + fr.total_len()]);
                *at += fr.total_len();
            }
            FrameRead::End => return Ok(true),
            FrameRead::Invalid(why) => return Err(Error::corrupt(path, *at as u64, why)),
        }
    }
    Ok(*at >= data.len())
}

/// Which rows of a compact segment a scan wants.
struct Pick<'a> {
    keys: &'a KeyFilter,
    key_ids: &'a [u32],
    filter: &'a ScanFilter,
}

/// Up to `want` bodies of the wanted rows of a compact segment's blocks,
/// from row `*row` of the first; advances both. True once they are read.
fn compact_bodies(
    c: &CompactSegment,
    pick: &Pick<'_>,
    blocks: &mut VecDeque<usize>,
    row: &mut usize,
    want: usize,
    out: &mut Vec<Vec<u8>>,
) -> Result<bool> {
    let (start, end) = (pick.filter.start, pick.filter.end);
    while let Some(&bi) = blocks.front() {
        let b = &c.blocks[bi];
        let head = c.head(bi)?;
        while *row < b.rows as usize {
            if out.len() == want {
                return Ok(false);
            }
            let r = *row;
            *row += 1;
            let ts = head.ts[r] as u64;
            let key = head.keys.get(r).copied().unwrap_or(0);
            let key = pick.key_ids.get(key as usize).copied().unwrap_or(0);
            if ts >= start && ts < end && (pick.key_ids.is_empty() || pick.keys.matches(key)) {
                out.push(c.body(b.first_row + r as u32)?);
            }
        }
        blocks.pop_front();
        *row = 0;
    }
    Ok(true)
}

/// `system_logs` columns (schema index, as `ScanFilter::columns` counts) that come from a block's
/// body, each with its index in the body.
const BODY_COLUMNS: [(usize, usize); 5] = [(1, 0), (4, 1), (5, 2), (6, 3), (7, 4)];

/// Up to `want` of the wanted rows of a compact `system_logs` segment's
/// blocks as columns (the filter's columns only), from row `*row` of the
/// first block; advances both and hands them to `f` (not called when none
/// match). True once the blocks are read.
fn compact_columns(
    c: &CompactSegment,
    pick: &Pick<'_>,
    blocks: &mut VecDeque<usize>,
    row: &mut usize,
    want: usize,
    f: &mut dyn FnMut(&LogColumns<'_>),
) -> Result<bool> {
    let (start, end) = (pick.filter.start, pick.filter.end);
    let wanted = |col: usize| pick.filter.columns & (1 << col) != 0;
    let body = BODY_COLUMNS.iter().any(|(col, _)| wanted(*col));
    // The blocks read and, for each picked row, (index in `held`, row).
    let mut held: Vec<(usize, ScanBlock)> = Vec::new();
    let mut picked: Vec<(u32, u32)> = Vec::new();
    let mut done = true;
    while let Some(&bi) = blocks.front() {
        let rows = c.blocks[bi].rows as usize;
        let block = c.scan_block(bi, body)?;
        let head = block.head();
        let before = picked.len();
        while *row < rows && picked.len() < want {
            let r = *row;
            *row += 1;
            let ts = head.ts[r] as u64;
            let key = head.keys.get(r).copied().unwrap_or(0);
            let global = pick.key_ids.get(key as usize).copied().unwrap_or(0);
            if ts >= start && ts < end && (pick.key_ids.is_empty() || pick.keys.matches(global)) {
                picked.push((held.len() as u32, r as u32));
            }
        }
        if picked.len() > before {
            held.push((bi, block));
        }
        if *row < rows {
            done = false;
            break;
        }
        blocks.pop_front();
        *row = 0;
    }
    if picked.is_empty() {
        return Ok(done);
    }
    let mut cols = LogColumns {
        timestamp: picked
            .iter()
            .map(|&(h, r)| held[h as usize].1.head().ts[r as usize])
            .collect(),
        ..LogColumns::default()
    };
    for (col, names) in [(2, 0), (3, 1)] {
        if wanted(col) {
            cols.strings[col - 1] = Some(
                picked
                    .iter()
                    .map(|&(h, r)| {
                        let key = held[h as usize].1.head().keys[r as usize];
                        let (service, severity) = c.key_names(key);
                        [service, severity][names]
                    })
                    .collect(),
            );
        }
    }
    for (col, body_col) in BODY_COLUMNS {
        if wanted(col) {
            let values = picked
                .iter()
                .map(|&(h, r)| {
                    let (bi, block) = &held[h as usize];
                    c.scan_value(*bi, block, body_col, r as usize)
                })
                .collect::<Result<Vec<&str>>>()?;
            cols.strings[col - 1] = Some(values);
        }
    }
    f(&cols);
    Ok(done)
}

/// Bytes of the values in `cols` (4 per timestamp).
fn columns_bytes(cols: &LogColumns<'_>) -> u64 {
    let strings: usize = cols
        .strings
        .iter()
        .flatten()
        .map(|v| v.iter().map(|s| s.len()).sum::<usize>())
        .sum();
    (cols.rows() * 4 + strings) as u64
}

/// Decodes the bodies of one segment and hands the wanted rows to `f`.
fn deliver(
    filter: &ScanFilter,
    path: &std::path::Path,
    bodies: &[&[u8]],
    f: &mut dyn FnMut(ScanBatch<'_>),
) -> Result<()> {
    let corrupt = |m: String| Error::corrupt(path, 0, m);
    let within = |t: u32| (t as u64) >= filter.start && (t as u64) < filter.end;
    match filter.ds {
        DataSource::SystemLogs => {
            let mut rows = Vec::with_capacity(bodies.len());
            for b in bodies {
                let r = decode_log(b).map_err(corrupt)?;
                if within(r.timestamp)
                    && filter.service.as_deref().is_none_or(|s| s == r.service)
                    && filter.severity.as_deref().is_none_or(|s| s == r.severity)
                {
                    rows.push(r);
                }
            }
            if !rows.is_empty() {
                f(ScanBatch::Logs(&rows));
            }
        }
        DataSource::Thresholds => {
            let mut rows: Vec<ThresholdRow> = bodies
                .iter()
                .map(|b| decode_threshold(b).map_err(corrupt))
                .collect::<Result<_>>()?;
            rows.retain(|r| within(r.updated_at));
            if !rows.is_empty() {
                f(ScanBatch::Thresholds(&rows));
            }
        }
        DataSource::SystemLogsQuarantine | DataSource::ThresholdsQuarantine => {
            let mut rows: Vec<QuarantineRow> = bodies
                .iter()
                .map(|b| decode_quarantine(b).map_err(corrupt))
                .collect::<Result<_>>()?;
            rows.retain(|r| within(r.insertion_date));
            if !rows.is_empty() {
                f(ScanBatch::Quarantine(&rows));
            }
        }
    }
    Ok(())
}
