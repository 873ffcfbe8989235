//! `log_anomalies`: minutes in which a (service, severity) logged more rows
//! than its active threshold.

use rustc_hash::FxHashMap as HashMap;

use crate::error::Result;
use crate::keys::Keys;
use crate::state::State;

use super::{round2, visit, Grain, KeyFilter};
use logpulse_model::query::{minute_rank_order, Anomalies, AnomalyQuery, AnomalyRow};

pub fn log_anomalies(st: &State, keys: &Keys, q: &AnomalyQuery) -> Result<Anomalies> {
    // The thresholds in force are few: walk them, not the keys.
    let mut thresholds: HashMap<u32, f64> = HashMap::default();
    for (row, _) in st.thresholds.rows() {
        let wanted = q.service.as_deref().is_none_or(|s| s == row.service)
            && q.severity.as_deref().is_none_or(|v| v == row.severity);
        if let (true, 1, Some(key)) = (wanted, row.active, keys.get(&row.service, &row.severity)) {
            thresholds.insert(key, row.threshold_per_minute);
        }
    }
    let kf = KeyFilter::of(keys, thresholds.keys().copied().collect());
    let end = q.end as u64;
    let start = end.saturating_sub(q.window_minutes as u64 * 60);
    let mut counts: HashMap<(u32, u32), u64> = HashMap::default();
    let stats = visit(st, &kf, start, end, Grain::Minute, |p| {
        *counts.entry((p.min_ts / 60, p.key)).or_default() += p.count;
    })?;
    let mut rows: Vec<AnomalyRow> = counts
        .into_iter()
        .filter_map(|((minute, key), count)| {
            let t = thresholds[&key];
            ((count as f64) > t).then(|| {
                let (s, v) = keys.name(key);
                AnomalyRow {
                    minute: minute * 60,
                    service: s.clone(),
                    severity: v.clone(),
                    log_count: count,
                    threshold_per_minute: t,
                    excess_ratio: round2(count as f64 / t),
                }
            })
        })
        .collect();
    let rows_before_limit = rows.len() as u64;
    super::top_sorted(&mut rows, q.limit, minute_rank_order);
    Ok(Anomalies {
        rows,
        rows_before_limit,
        stats,
    })
}
