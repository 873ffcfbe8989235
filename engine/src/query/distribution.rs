//! `error_distribution`: rows per (service, severity) with their share of the
//! total and the first and last time seen.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::error::Result;
use crate::keys::Keys;
use crate::state::State;

use super::{round2, visit, Grain, KeyFilter, LogFilter, ReadStats};

#[derive(Clone, Debug, PartialEq)]
pub struct DistributionRow {
    pub service: Arc<str>,
    pub severity: Arc<str>,
    pub count: u64,
    pub percentage: f64,
    pub first_seen: u32,
    pub last_seen: u32,
}

#[derive(Debug, Default)]
pub struct Distribution {
    pub rows: Vec<DistributionRow>,
    pub rows_before_limit: u64,
    pub stats: ReadStats,
}

pub fn error_distribution(
    st: &State,
    keys: &Keys,
    f: &LogFilter,
    limit: usize,
) -> Result<Distribution> {
    let kf = KeyFilter::new(keys, f.service.as_deref(), f.severity.as_deref());
    let (start, end) = f.bounds();
    let mut groups: HashMap<u32, (u64, u32, u32)> = HashMap::default();
    let stats = visit(st, &kf, start, end, Grain::Hour, |p| {
        let g = groups.entry(p.key).or_insert((0, u32::MAX, 0));
        g.0 += p.count;
        g.1 = g.1.min(p.min_ts);
        g.2 = g.2.max(p.max_ts);
    })?;
    let total: u64 = groups.values().map(|g| g.0).sum();
    let mut rows: Vec<DistributionRow> = groups
        .into_iter()
        .filter(|(_, g)| g.0 > 0)
        .map(|(key, (count, first, last))| {
            let (s, v) = keys.name(key);
            DistributionRow {
                service: s.clone(),
                severity: v.clone(),
                count,
                percentage: round2(100.0 * count as f64 / total as f64),
                first_seen: first,
                last_seen: last,
            }
        })
        .collect();
    let rows_before_limit = rows.len() as u64;
    super::top_sorted(&mut rows, limit, |a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.severity.cmp(&b.severity))
    });
    Ok(Distribution {
        rows,
        rows_before_limit,
        stats,
    })
}
