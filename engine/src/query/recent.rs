//! `recent_logs`: the newest rows first, stopping as soon as `limit` rows
//! newer than every older candidate are found.

use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::row::{decode_log, DataSource, LogRow};
use crate::segment::{Entry, Segment};
use crate::state::State;

use super::{visit, Grain, KeyFilter, LogFilter, ReadStats};

#[derive(Debug, Default)]
pub struct RecentLogs {
    pub rows: Vec<LogRow<'static>>,
    /// Rows the query matches without its limit.
    pub rows_before_limit: u64,
    pub stats: ReadStats,
}

struct Candidate<'a> {
    ts: u32,
    seq: u64,
    seg: &'a Segment,
    entry: Entry,
}

pub fn recent_logs(st: &State, keys: &Keys, f: &LogFilter, limit: usize) -> Result<RecentLogs> {
    let kf = KeyFilter::new(keys, f.service.as_deref(), f.severity.as_deref());
    let (start, end) = f.bounds();
    let mut out = RecentLogs::default();
    out.stats = visit(st, &kf, start, end, Grain::Hour, |p| {
        out.rows_before_limit += p.count
    });
    if out.rows_before_limit == 0 || limit == 0 {
        return Ok(out);
    }
    let (first_h, last_h) = (
        (start / 3600) as u32,
        ((end - 1) / 3600).min(u32::MAX as u64) as u32,
    );
    let mut top: Vec<Candidate> = Vec::new();
    for (h, hour) in st.log_stats.hours_desc(first_h, last_h) {
        if !hour.keys().any(|k| kf.matches(*k)) {
            continue;
        }
        let mut found: Vec<(u32, &Segment, Entry)> = Vec::new();
        for seg in st.table(DataSource::SystemLogs).hour(h) {
            out.stats.rows_read += seg.entries.len() as u64;
            found.extend(
                seg.entries
                    .iter()
                    .filter(|e| kf.matches(e.key) && (e.ts as u64) >= start && (e.ts as u64) < end)
                    .map(|e| (e.ts, seg, *e)),
            );
        }
        keep_newest_by_ts(&mut found, limit);
        top.extend(found.into_iter().map(|(ts, seg, entry)| Candidate {
            ts,
            seq: seg.seq(&entry),
            seg,
            entry,
        }));
        top.sort_unstable_by_key(|c| std::cmp::Reverse((c.ts, c.seq)));
        top.truncate(limit);
        if top.len() >= limit {
            break;
        }
    }
    for c in top {
        let body = c.seg.read_body(&c.entry)?;
        out.stats.bytes_read += body.len() as u64;
        let row =
            decode_log(&body).map_err(|e| Error::corrupt(&c.seg.path, c.entry.offset as u64, e))?;
        out.rows.push(row.into_owned());
    }
    Ok(out)
}

/// Keeps the rows whose timestamp is among the `limit` greatest, ties at the
/// cut included (their order is settled by seq afterwards).
fn keep_newest_by_ts<T>(found: &mut Vec<(u32, T, Entry)>, limit: usize) {
    if found.len() <= limit {
        return;
    }
    let mut ts: Vec<u32> = found.iter().map(|f| f.0).collect();
    let (_, cut, _) = ts.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a));
    let cut = *cut;
    found.retain(|f| f.0 >= cut);
}
