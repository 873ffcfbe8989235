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
    // Rank (key, count) pairs and name only the rows returned: with many
    // keys most groups are dropped by the limit, and building a row per
    // group (two reference counts each) cost more than the ranking.
    let mut ranked: Vec<(u32, (u64, u32, u32))> =
        groups.into_iter().filter(|(_, g)| g.0 > 0).collect();
    let rows_before_limit = ranked.len() as u64;
    if limit > 0 && ranked.len() > limit {
        // Counts first (integer compares): only groups tied with the last
        // row returned need their names compared.
        ranked.select_nth_unstable_by(limit - 1, |a, b| b.1 .0.cmp(&a.1 .0));
        let cut = ranked[limit - 1].1 .0;
        ranked.retain(|g| g.1 .0 >= cut);
    }
    super::top_sorted(&mut ranked, limit, |a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then_with(|| keys.name(a.0).cmp(&keys.name(b.0)))
    });
    let rows = ranked
        .into_iter()
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
    Ok(Distribution {
        rows,
        rows_before_limit,
        stats,
    })
}
