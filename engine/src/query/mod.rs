//! The query primitives behind the pipes and the live tail. Whole hours and whole
//! minutes come from the in-memory counts; only rows of partial minutes at a
//! range's edges, and the rows `recent_logs` returns, are read from segments.

mod alerting;
mod anomalies;
mod baseline;
mod distribution;
mod groups;
mod hours;
mod recent;
mod search;
mod tail;
mod timeseries;

pub use alerting::threshold_minutes;
pub use anomalies::log_anomalies;
pub use baseline::log_baseline_anomalies;
pub use distribution::error_distribution;
pub(crate) use hours::hours;
pub(crate) use recent::{fetch as fetch_recent, plan as plan_recent};
pub use search::ContainsSearch;
pub use tail::logs_after;
pub use timeseries::log_timeseries;

pub use logpulse_model::query::{
    round2, Anomalies, AnomalyQuery, AnomalyRow, BaselineAnomalies, BaselineQuery, BaselineRow,
    Contains, Distribution, DistributionRow, KeyMinutes, LogFilter, LogsAfter, ReadStats,
    RecentLogs, Timeseries, TimeseriesQuery, TimeseriesRow,
};

use crate::error::Result;
use crate::keys::Keys;
use crate::row::DataSource;
use crate::state::State;
use crate::stats::{HourStats, KeyHour};

/// Which (service, severity) keys a query wants: all, a few (looked up
/// one by one), or many (a bitmap over key ids).
#[derive(Clone)]
pub(crate) enum KeyFilter {
    All,
    /// Sorted ids.
    Few(Vec<u32>),
    Many(Vec<bool>),
}

/// Up to this many wanted keys are looked up one by one.
const FEW_KEYS: usize = 64;

impl KeyFilter {
    pub fn new(keys: &Keys, service: Option<&str>, severity: Option<&str>) -> KeyFilter {
        if service.is_none() && severity.is_none() {
            return KeyFilter::All;
        }
        KeyFilter::of(keys, keys.matching(service, severity))
    }

    pub fn of(keys: &Keys, mut ids: Vec<u32>) -> KeyFilter {
        if ids.len() <= FEW_KEYS {
            ids.sort_unstable();
            ids.dedup();
            return KeyFilter::Few(ids);
        }
        let mut wanted = vec![false; keys.len() + 1];
        for id in ids {
            wanted[id as usize] = true;
        }
        KeyFilter::Many(wanted)
    }

    #[inline]
    pub fn matches(&self, key: u32) -> bool {
        match self {
            KeyFilter::All => true,
            KeyFilter::Few(ids) => ids.binary_search(&key).is_ok(),
            KeyFilter::Many(w) => w.get(key as usize).copied().unwrap_or(false),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            KeyFilter::All => false,
            KeyFilter::Few(ids) => ids.is_empty(),
            KeyFilter::Many(w) => !w.iter().any(|b| *b),
        }
    }

    /// The (key, stats) of an hour that pass: looked up one by one when
    /// few are wanted, so an hour of many keys is not walked for one.
    pub fn in_hour<'a>(
        &'a self,
        hour: &'a HourStats,
    ) -> Box<dyn Iterator<Item = (&'a u32, &'a KeyHour)> + 'a> {
        match self {
            KeyFilter::All => Box::new(hour.iter()),
            KeyFilter::Few(ids) => Box::new(ids.iter().filter_map(|k| hour.get_key_value(k))),
            KeyFilter::Many(_) => Box::new(hour.iter().filter(|(k, _)| self.matches(**k))),
        }
    }
}

/// A piece of aggregated rows handed out by [`visit`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Piece {
    pub key: u32,
    pub count: u64,
    pub min_ts: u32,
    pub max_ts: u32,
}

/// How coarse the pieces may be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    Hour,
    Minute,
}

/// Visits the `system_logs` rows in `[start, end)` whose key passes `kf`,
/// as pieces no coarser than `grain` (a piece never spans two minutes when
/// grain is Minute). Whole hours and whole minutes come from the counts;
/// rows are read only for the partial minutes at the range's edges (of a
/// compact segment, only the heads of the blocks that can hold them).
/// Returns what was read; a damaged block is an error naming file and offset.
pub(crate) fn visit(
    st: &State,
    kf: &KeyFilter,
    start: u64,
    end: u64,
    grain: Grain,
    mut f: impl FnMut(Piece),
) -> Result<ReadStats> {
    let mut rs = ReadStats::default();
    if start >= end || kf.is_empty() {
        return Ok(rs);
    }
    let (first_h, last_h) = (
        (start / 3600) as u32,
        ((end - 1) / 3600).min(u32::MAX as u64) as u32,
    );
    for hour in hours::hours(st, first_h, last_h) {
        let h = hour.hour;
        let (hs, he) = (h as u64 * 3600, h as u64 * 3600 + 3600);
        let (lo, hi) = (start.max(hs), end.min(he));
        let mut piece = |key, count, min_ts, max_ts| {
            rs.rows_read += count;
            f(Piece {
                key,
                count,
                min_ts,
                max_ts,
            });
        };
        if grain == Grain::Hour && lo == hs && hi == he {
            hour.totals(kf, &mut piece);
            continue;
        }
        // Whole minutes [m_lo, m_hi) of the hour; the rest of [lo, hi) is
        // partial minutes, read row by row.
        let m_lo = (lo - hs).div_ceil(60);
        let m_hi = ((hi - hs) / 60).max(m_lo);
        hour.minutes(kf, m_lo, m_hi, &mut piece)?;
        let partial = [(lo, hs + m_lo * 60), (hs + m_hi * 60, hi)];
        for seg in st.table(DataSource::SystemLogs).hour(h) {
            for &(p_lo, p_hi) in partial.iter().filter(|(a, b)| a < b) {
                seg.for_each_piece(
                    p_lo,
                    p_hi,
                    |k| kf.matches(k),
                    |key, count, min_ts, max_ts| {
                        rs.rows_read += count as u64;
                        rs.bytes_read += 12 * count as u64;
                        f(Piece {
                            key,
                            count: count as u64,
                            min_ts,
                            max_ts,
                        });
                    },
                )?;
            }
        }
    }
    Ok(rs)
}

/// Keeps the first `limit` rows in `cmp` order, sorted, without sorting
/// the rest (a group-by over many keys answers a small limit).
pub(crate) fn top_sorted<T>(
    rows: &mut Vec<T>,
    limit: usize,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    if limit == 0 {
        rows.clear();
        return;
    }
    if rows.len() > limit {
        rows.select_nth_unstable_by(limit - 1, &cmp);
        rows.truncate(limit);
    }
    rows.sort_by(cmp);
}
