//! `recent_logs`: the newest rows first, stopping as soon as `limit` rows
//! newer than every older candidate are found.
//!
//! In two steps: [`plan`] runs under the state lock and picks the rows
//! (from hot segments' entries and compact segments' block heads, newest
//! blocks first); [`fetch`] runs after the lock is released and reads the
//! picked rows' bodies, decompressing compact blocks through the cache.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::row::{decode_log, DataSource};
use crate::segment::compact::CompactSegment;
use crate::segment::format::frame_body;
use crate::segment::mmap::SegmentMap;
use crate::segment::{Entry, Segment};
use crate::state::State;

use super::{visit, Grain, KeyFilter, LogFilter};
use logpulse_model::query::RecentLogs;

/// Where a picked row's body is, held without the state lock.
enum Source {
    Hot(Arc<SegmentMap>),
    Compact(Arc<CompactSegment>),
}

struct Picked {
    path: PathBuf,
    source: Source,
    offset: u32,
}

/// The rows `recent_logs` returns, chosen but not read yet.
pub struct RecentPlan {
    out: RecentLogs,
    picked: Vec<Picked>,
}

/// A row found while planning, before its seq is known.
struct Found<'a> {
    ts: u32,
    seq: Option<u64>,
    seg: &'a Segment,
    entry: Entry,
}

pub fn plan(st: &State, keys: &Keys, f: &LogFilter, limit: usize) -> Result<RecentPlan> {
    let kf = KeyFilter::new(keys, f.service.as_deref(), f.severity.as_deref());
    let (start, end) = f.bounds();
    let mut out = RecentLogs::default();
    out.stats = visit(st, &kf, start, end, Grain::Hour, |p| {
        out.rows_before_limit += p.count
    })?;
    let mut plan = RecentPlan {
        out,
        picked: Vec::new(),
    };
    if plan.out.rows_before_limit == 0 || limit == 0 {
        return Ok(plan);
    }
    let (first_h, last_h) = (
        (start / 3600) as u32,
        ((end - 1) / 3600).min(u32::MAX as u64) as u32,
    );
    let mut top: Vec<(u32, u64, &Segment, Entry)> = Vec::new();
    for hour in super::hours(st, first_h, last_h).into_iter().rev() {
        if !hour.any(&kf) {
            continue;
        }
        let h = hour.hour;
        let mut found: Vec<Found> = Vec::new();
        for seg in st.table(DataSource::SystemLogs).hour(h) {
            match &seg.compact {
                Some(c) => newest_of_compact(seg, c, start, end, &kf, limit, &mut found)?,
                None => {
                    plan.out.stats.rows_read += seg.entries.len() as u64;
                    seg.for_each_entry(
                        start,
                        end,
                        |k| kf.matches(k),
                        |entry, seq| {
                            found.push(Found {
                                ts: entry.ts,
                                seq,
                                seg,
                                entry,
                            })
                        },
                    )?;
                }
            }
        }
        keep_newest_by_ts(&mut found, limit, |f| f.ts);
        for c in found {
            let seq = match c.seq {
                Some(s) => s,
                None => c.seg.seq(&c.entry)?,
            };
            top.push((c.ts, seq, c.seg, c.entry));
        }
        top.sort_unstable_by_key(|c| std::cmp::Reverse((c.0, c.1)));
        top.truncate(limit);
        if top.len() >= limit {
            break;
        }
    }
    // Owned handles, so that bodies are read after the lock is released.
    for (_, _, seg, entry) in top {
        plan.picked.push(Picked {
            path: seg.path.clone(),
            source: match &seg.compact {
                Some(c) => Source::Compact(c.clone()),
                None => Source::Hot(seg.map.clone()),
            },
            offset: entry.offset,
        });
    }
    Ok(plan)
}

/// Reads the planned rows' bodies (no lock needed).
pub fn fetch(plan: RecentPlan) -> Result<RecentLogs> {
    let mut out = plan.out;
    for p in plan.picked {
        let owned;
        let body: &[u8] = match &p.source {
            Source::Hot(map) => frame_body(map.committed(), p.offset as usize),
            Source::Compact(c) => {
                owned = c.body(p.offset)?;
                &owned
            }
        };
        out.stats.bytes_read += body.len() as u64;
        let row = decode_log(body).map_err(|e| Error::corrupt(&p.path, p.offset as u64, e))?;
        out.rows.push(row.into_owned());
    }
    Ok(out)
}

/// The newest matching rows of a compact segment, read newest first and
/// stopping once `limit` rows newer than all the rest are found: in a file
/// in key order, the runs of the wanted (key, minute)s; in an older file in
/// (timestamp, seq) order, its blocks from the last.
fn newest_of_compact<'a>(
    seg: &'a Segment,
    c: &CompactSegment,
    start: u64,
    end: u64,
    kf: &KeyFilter,
    limit: usize,
    found: &mut Vec<Found<'a>>,
) -> Result<()> {
    let global = |k: u32| seg.key_ids.get(k as usize).copied().unwrap_or(0);
    let mut mine: Vec<Found<'a>> = Vec::new();
    if let Some(mut runs) = c.runs(start, end, |k| kf.matches(global(k)))? {
        // Key order: the wanted (key, minute)s' rows, newest minute first.
        runs.sort_unstable_by_key(|r| std::cmp::Reverse(r.max_ts));
        for run in runs {
            if mine.len() >= limit {
                keep_newest_by_ts(&mut mine, limit, |f| f.ts);
                let cut = mine.iter().map(|f| f.ts).min().unwrap_or(0);
                if run.max_ts < cut {
                    break;
                }
            }
            for bi in c.blocks_of_rows(run.first_row, run.rows) {
                let b = &c.blocks[bi];
                let lo = run.first_row.max(b.first_row) - b.first_row;
                let hi = (run.first_row + run.rows).min(b.first_row + b.rows) - b.first_row;
                let rows = lo as usize..hi as usize;
                push_rows(&mut mine, seg, c, bi, rows, (start, end), |_| true)?;
            }
        }
        found.extend(mine);
        return Ok(());
    }
    for (bi, b) in c.blocks.iter().enumerate().rev() {
        if (b.min_ts as u64) >= end || (b.max_ts as u64) < start {
            continue;
        }
        if mine.len() >= limit {
            keep_newest_by_ts(&mut mine, limit, |f| f.ts);
            let cut = mine.iter().map(|f| f.ts).min().unwrap_or(0);
            if b.max_ts < cut {
                break;
            }
        }
        if !b.keys.iter().any(|k| kf.matches(global(*k))) {
            continue;
        }
        let rows = 0..b.rows as usize;
        push_rows(&mut mine, seg, c, bi, rows, (start, end), |k| kf.matches(k))?;
    }
    found.extend(mine);
    Ok(())
}

/// Adds rows `rows` of block `bi` whose timestamp is in `window` and whose
/// (engine) key passes `want`.
fn push_rows<'a>(
    mine: &mut Vec<Found<'a>>,
    seg: &'a Segment,
    c: &CompactSegment,
    bi: usize,
    rows: std::ops::Range<usize>,
    (start, end): (u64, u64),
    want: impl Fn(u32) -> bool,
) -> Result<()> {
    let (b, head) = (&c.blocks[bi], c.head(bi)?);
    for r in rows {
        let (ts, key) = (
            head.ts[r],
            seg.key_ids.get(head.keys[r] as usize).copied().unwrap_or(0),
        );
        if (start..end).contains(&(ts as u64)) && want(key) {
            mine.push(Found {
                ts,
                seq: Some(head.seqs[r]),
                seg,
                entry: Entry {
                    offset: b.first_row + r as u32,
                    ts,
                    key,
                },
            });
        }
    }
    Ok(())
}

/// Keeps the rows whose timestamp is among the `limit` greatest, ties at the
/// cut included (their order is settled by seq afterwards).
fn keep_newest_by_ts<T>(found: &mut Vec<T>, limit: usize, ts_of: impl Fn(&T) -> u32) {
    if found.len() <= limit {
        return;
    }
    let mut ts: Vec<u32> = found.iter().map(&ts_of).collect();
    let (_, cut, _) = ts.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a));
    let cut = *cut;
    found.retain(|f| ts_of(f) >= cut);
}
