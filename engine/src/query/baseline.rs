//! `log_baseline_anomalies`: minutes in which a (service, severity) logged
//! more than `mean + z * stddev` of its own per-minute counts over the hours
//! before the window (zero minutes included), and at least `min_count` rows.

use std::collections::HashMap;

use crate::error::Result;
use crate::keys::Keys;
use crate::state::State;

use super::{round2, visit, Grain, KeyFilter, ReadStats};
use logpulse_model::query::{BaselineAnomalies, BaselineQuery, BaselineRow};

/// Mean and population standard deviation of `n` per-minute counts whose
/// sum is `sum` and sum of squares `sum_sq` (the minutes not counted are 0).
pub fn mean_stddev(sum: u64, sum_sq: u128, n: u64) -> (f64, f64) {
    let n = n.max(1) as f64;
    let mean = sum as f64 / n;
    let var = (sum_sq as f64 / n - mean * mean).max(0.0);
    (mean, var.sqrt())
}

/// Whether `count` is anomalous against a baseline, and its z-score.
pub fn judge(count: u64, mean: f64, stddev: f64, z: f64, min_count: u64) -> Option<f64> {
    let c = count as f64;
    (count >= min_count && c > mean + z * stddev).then(|| round2((c - mean) / stddev))
}

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
    let n = q.baseline_hours as u64 * 60;
    let mut rows: Vec<BaselineRow> = window
        .into_iter()
        .filter(|(_, c)| *c >= floor)
        .filter_map(|((key, minute), count)| {
            let (sum, sum_sq) = sums.get(&key).copied().unwrap_or((0, 0));
            let (mean, stddev) = mean_stddev(sum, sum_sq, n);
            let z_score = judge(count, mean, stddev, q.z, q.min_count)?;
            let (s, v) = keys.name(key);
            Some(BaselineRow {
                minute: minute * 60,
                service: s.clone(),
                severity: v.clone(),
                log_count: count,
                baseline_mean: mean,
                baseline_stddev: stddev,
                z_score,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.minute
            .cmp(&a.minute)
            .then_with(|| b.log_count.cmp(&a.log_count))
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.severity.cmp(&b.severity))
    });
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
