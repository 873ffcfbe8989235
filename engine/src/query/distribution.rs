//! `error_distribution`: rows per (service, severity) with their share of the
//! total and the first and last time seen.

use crate::error::Result;
use crate::keys::Keys;
use crate::state::State;

use super::groups::Groups;
use super::{round2, visit, Grain, KeyFilter, LogFilter};
use logpulse_model::query::{Distribution, DistributionRow};

/// Groups left to rank by name above which the keys' name order is used.
const NAME_ORDER_FROM: usize = 1024;

pub fn error_distribution(
    st: &State,
    keys: &Keys,
    f: &LogFilter,
    limit: usize,
) -> Result<Distribution> {
    let kf = KeyFilter::new(keys, f.service.as_deref(), f.severity.as_deref());
    let (start, end) = f.bounds();
    let mut groups = Groups::new(keys.len() + 1);
    let stats = visit(st, &kf, start, end, Grain::Hour, |p| {
        groups.add(p.key, p.count, p.min_ts, p.max_ts)
    })?;
    let mut ranked = groups.into_ranked();
    let total: u64 = ranked.iter().map(|g| g.1 .0).sum();
    // Rank (key, count) pairs and name only the rows returned: with many
    // keys most groups are dropped by the limit, and building a row per
    // group (two reference counts each) cost more than the ranking.
    let rows_before_limit = ranked.len() as u64;
    if limit > 0 && ranked.len() > limit {
        // Counts first (integer compares): only groups tied with the last
        // row returned need their names compared.
        ranked.select_nth_unstable_by(limit - 1, |a, b| b.1 .0.cmp(&a.1 .0));
        let cut = ranked[limit - 1].1 .0;
        ranked.retain(|g| g.1 .0 >= cut);
    }
    // With many keys of one or two rows, thousands of groups tie with the
    // last row returned: those are ranked by the keys' name order
    // (integers), not by comparing their names.
    let order = if ranked.len() > NAME_ORDER_FROM {
        keys.name_order()
    } else {
        Default::default()
    };
    super::top_sorted(&mut ranked, limit, |a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then_with(|| keys.cmp_names(&order, a.0, b.0))
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
