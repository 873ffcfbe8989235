//! `log_baseline_anomalies`: minutes in which a (service, severity) logged
//! more than `mean + z * stddev` of its own per-minute counts over the hours
//! before the window (zero minutes included), and at least `min_count` rows.

use std::collections::HashMap;

use crate::error::Result;
use crate::keys::Keys;
use crate::state::State;

use super::{visit, Grain, KeyFilter, ReadStats};
use logpulse_model::query::{minute_rank_order, BaselineAnomalies, BaselineQuery, BaselineRow};

pub fn log_baseline_anomalies(
    st: &State,
    keys: &Keys,
    q: &BaselineQuery,
) -> Result<BaselineAnomalies> {
    let kf = KeyFilter::new(keys, q.service.as_deref(), q.severity.as_deref());
    let end = q.end as u64;
    let start = end.saturating_sub(q.window_minutes as u64 * 60);
    let mut stats = ReadStats::default();
    let window = minute_counts(st, &kf, start, end, &mut stats)?;
    let floor = q.min_count.max(1);
    let mut candidates: Vec<u32> = window
        .iter()
        .filter(|(_, c)| **c >= floor)
        .map(|((k, _), _)| *k)
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    if candidates.is_empty() {
        return Ok(BaselineAnomalies {
            stats,
            ..Default::default()
        });
    }
    let bkf = KeyFilter::of(keys, candidates);
    let bstart = start.saturating_sub(q.baseline_hours as u64 * 3600);
    let sums = baseline_sums(st, &bkf, bstart, start, &mut stats)?;
    let mut rows: Vec<BaselineRow> = window
        .into_iter()
        .filter(|(_, c)| *c >= floor)
        .filter_map(|((key, minute), count)| {
            let sums = sums.get(&key).copied().unwrap_or((0, 0));
            let (s, v) = keys.name(key);
            BaselineRow::judged(minute * 60, (s.clone(), v.clone()), count, sums, q)
        })
        .collect();
    rows.sort_by(minute_rank_order);
    let rows_before_limit = rows.len() as u64;
    rows.truncate(q.limit);
    Ok(BaselineAnomalies {
        rows,
        rows_before_limit,
        stats,
    })
}

/// Rows per (key, minute number) in `[start, end)`.
fn minute_counts(
    st: &State,
    kf: &KeyFilter,
    start: u64,
    end: u64,
    stats: &mut ReadStats,
) -> Result<HashMap<(u32, u32), u64>> {
    let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
    let rs = visit(st, kf, start, end, Grain::Minute, |p| {
        *counts.entry((p.key, p.min_ts / 60)).or_default() += p.count;
    })?;
    stats.rows_read += rs.rows_read;
    stats.bytes_read += rs.bytes_read;
    Ok(counts)
}

/// Per key, the sum and the sum of squares of its per-minute counts in
/// `[start, end)`, gathered an hour at a time so that memory stays at one
/// hour's (key, minute) pairs.
fn baseline_sums(
    st: &State,
    kf: &KeyFilter,
    start: u64,
    end: u64,
    stats: &mut ReadStats,
) -> Result<HashMap<u32, (u64, u128)>> {
    let mut sums: HashMap<u32, (u64, u128)> = HashMap::new();
    let mut lo = start;
    while lo < end {
        let hi = ((lo / 3600 + 1) * 3600).min(end);
        for ((key, _), c) in minute_counts(st, kf, lo, hi, stats)? {
            let e = sums.entry(key).or_default();
            e.0 += c;
            e.1 += c as u128 * c as u128;
        }
        lo = hi;
    }
    Ok(sums)
}
