//! The rows of `system_logs` ingested after a given seq, in seq order: what
//! a live tail resumes from and polls.

use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::row::{decode_log, DataSource};
use crate::segment::{Entry, Segment};
use crate::state::State;

use super::{Contains, KeyFilter, LogFilter};
use logpulse_model::query::LogsAfter;

/// Matching rows with seq > `after`, at most `limit` of them. The time
/// bounds of `f` apply too.
pub fn logs_after(
    st: &State,
    keys: &Keys,
    after: u64,
    f: &LogFilter,
    contains: Option<&Contains>,
    limit: usize,
) -> Result<LogsAfter> {
    let kf = KeyFilter::new(keys, f.service.as_deref(), f.severity.as_deref());
    let (start, end) = f.bounds();
    let mut out = LogsAfter {
        rows: Vec::new(),
        next_after: after,
    };
    let mut found: Vec<(u64, &Segment, Entry)> = Vec::new();
    for seg in st.table(DataSource::SystemLogs).segments.values() {
        let Some((_, high)) = seg.seq_range() else {
            continue;
        };
        if high <= after {
            continue;
        }
        out.next_after = out.next_after.max(high);
        let in_range =
            |e: &Entry| kf.matches(e.key) && (e.ts as u64) >= start && (e.ts as u64) < end;
        match &seg.compact {
            // Hot segments hold their rows in seq order.
            None => {
                let first = seg
                    .entries
                    .partition_point(|e| seg.seq(e).is_ok_and(|s| s <= after));
                for e in seg.entries[first..].iter().filter(|e| in_range(e)) {
                    found.push((seg.seq(e)?, seg, *e));
                }
            }
            // Compact ones: only the blocks holding rows after `after`.
            Some(c) => {
                let global = |k: u32| seg.key_ids.get(k as usize).copied().unwrap_or(0);
                let blocks = c.blocks.iter().enumerate().filter(|(_, b)| {
                    b.max_seq > after
                        && (b.max_ts as u64) >= start
                        && (b.min_ts as u64) < end
                        && b.keys.iter().any(|k| kf.matches(global(*k)))
                });
                c.scan_blocks(blocks.map(|(i, _)| i), |row, ts, seq, key| {
                    let e = Entry {
                        offset: row,
                        ts,
                        key: global(key),
                    };
                    if seq > after && in_range(&e) {
                        found.push((seq, seg, e));
                    }
                })?;
            }
        }
    }
    found.sort_unstable_by_key(|x| x.0);
    for (seq, seg, e) in found {
        if out.rows.len() == limit {
            break;
        }
        let body = seg.read_body(&e)?;
        let row = decode_log(&body).map_err(|m| Error::corrupt(&seg.path, e.offset as u64, m))?;
        if contains.is_none_or(|c| c.matches(&row.message)) {
            out.rows.push((seq, row.into_owned()));
            if out.rows.len() == limit {
                out.next_after = seq;
            }
        }
    }
    Ok(out)
}
