//! `log_timeseries`: rows per (bucket, service, severity), buckets of
//! `step_minutes` aligned to the Unix epoch (ClickHouse's
//! `toStartOfInterval` in UTC), served from the per-minute counts.

use rustc_hash::FxHashMap as HashMap;

use crate::error::Result;
use crate::keys::Keys;
use crate::state::State;

use super::{top_sorted, visit, Grain, KeyFilter};
use logpulse_model::query::{Timeseries, TimeseriesQuery, TimeseriesRow};

pub fn log_timeseries(st: &State, keys: &Keys, q: &TimeseriesQuery) -> Result<Timeseries> {
    let f = &q.filter;
    let kf = KeyFilter::new(keys, f.service.as_deref(), f.severity.as_deref());
    let (start, end) = f.bounds();
    let step = q.step_minutes.max(1) * 60;
    let mut counts: HashMap<(u32, u32), u64> = HashMap::default();
    // Minute pieces never span two minutes, so never two buckets.
    let stats = visit(st, &kf, start, end, Grain::Minute, |p| {
        *counts.entry((p.min_ts / step * step, p.key)).or_default() += p.count;
    })?;
    let mut rows: Vec<TimeseriesRow> = counts
        .into_iter()
        .map(|((bucket, key), log_count)| {
            let (s, v) = keys.name(key);
            TimeseriesRow {
                bucket,
                service: s.clone(),
                severity: v.clone(),
                log_count,
            }
        })
        .collect();
    let rows_before_limit = rows.len() as u64;
    top_sorted(&mut rows, q.limit, |a, b| {
        (a.bucket, &a.service, &a.severity).cmp(&(b.bucket, &b.service, &b.severity))
    });
    Ok(Timeseries {
        rows,
        rows_before_limit,
        stats,
    })
}
