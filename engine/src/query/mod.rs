//! The query primitives behind the three pipes. Whole hours and whole
//! minutes come from the in-memory counts; only rows of partial minutes at a
//! range's edges, and the rows `recent_logs` returns, are read from segments.

mod alerting;
mod anomalies;
mod baseline;
mod distribution;
mod recent;

pub use alerting::{threshold_minutes, KeyMinutes};
pub use anomalies::{log_anomalies, Anomalies, AnomalyQuery, AnomalyRow};
pub use baseline::{
    judge, log_baseline_anomalies, mean_stddev, BaselineAnomalies, BaselineQuery, BaselineRow,
};
pub use distribution::{error_distribution, Distribution, DistributionRow};
pub use recent::{recent_logs, RecentLogs};

use crate::keys::Keys;
use crate::row::DataSource;
use crate::state::State;

/// Filters shared by the pipes. `end` is exclusive; severity is compared as given
/// (callers upper-case it).
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    pub start: Option<u32>,
    pub end: Option<u32>,
    pub service: Option<String>,
    pub severity: Option<String>,
}

impl LogFilter {
    /// `[start, end)` as u64 seconds (end may be 2^32).
    pub(crate) fn bounds(&self) -> (u64, u64) {
        (
            self.start.unwrap_or(0) as u64,
            self.end.map_or(1 << 32, |e| e as u64),
        )
    }
}

/// Which (service, severity) keys a query wants, as a bitmap over key ids.
pub(crate) struct KeyFilter {
    wanted: Option<Vec<bool>>,
}

impl KeyFilter {
    pub fn new(keys: &Keys, service: Option<&str>, severity: Option<&str>) -> KeyFilter {
        if service.is_none() && severity.is_none() {
            return KeyFilter { wanted: None };
        }
        KeyFilter::of(keys, keys.matching(service, severity))
    }

    pub fn of(keys: &Keys, ids: Vec<u32>) -> KeyFilter {
        let mut wanted = vec![false; keys.matching(None, None).len() + 1];
        for id in ids {
            wanted[id as usize] = true;
        }
        KeyFilter {
            wanted: Some(wanted),
        }
    }

    #[inline]
    pub fn matches(&self, key: u32) -> bool {
        self.wanted
            .as_ref()
            .is_none_or(|w| w.get(key as usize).copied().unwrap_or(false))
    }

    pub fn is_empty(&self) -> bool {
        self.wanted.as_ref().is_some_and(|w| !w.iter().any(|b| *b))
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

/// Counters for a response's `statistics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadStats {
    pub rows_read: u64,
    pub bytes_read: u64,
}

/// Visits the `system_logs` rows in `[start, end)` whose key passes `kf`,
/// as pieces no coarser than `grain` (a piece never spans two minutes when
/// grain is Minute). Returns what was read.
pub(crate) fn visit(
    st: &State,
    kf: &KeyFilter,
    start: u64,
    end: u64,
    grain: Grain,
    mut f: impl FnMut(Piece),
) -> ReadStats {
    let mut rs = ReadStats::default();
    if start >= end || kf.is_empty() {
        return rs;
    }
    let (first_h, last_h) = (
        (start / 3600) as u32,
        ((end - 1) / 3600).min(u32::MAX as u64) as u32,
    );
    for (h, hour) in st.log_stats.hours_asc(first_h, last_h) {
        let (hs, he) = (h as u64 * 3600, h as u64 * 3600 + 3600);
        if grain == Grain::Hour && start <= hs && he <= end {
            for (key, kh) in hour.iter().filter(|(k, _)| kf.matches(**k)) {
                rs.rows_read += kh.count;
                f(Piece {
                    key: *key,
                    count: kh.count,
                    min_ts: kh.min_ts,
                    max_ts: kh.max_ts,
                });
            }
            continue;
        }
        let mut partial: Vec<(u64, u64)> = Vec::new();
        for i in 0..60u64 {
            let (ms, me) = (hs + i * 60, hs + i * 60 + 60);
            if me <= start || ms >= end {
                continue;
            }
            if start <= ms && me <= end {
                for (key, kh) in hour.iter().filter(|(k, _)| kf.matches(**k)) {
                    let m = kh.minutes[i as usize];
                    if m.count > 0 {
                        rs.rows_read += m.count as u64;
                        let base = ms as u32;
                        f(Piece {
                            key: *key,
                            count: m.count as u64,
                            min_ts: base + m.min_sec as u32,
                            max_ts: base + m.max_sec as u32,
                        });
                    }
                }
            } else {
                partial.push((ms.max(start), me.min(end)));
            }
        }
        if partial.is_empty() {
            continue;
        }
        for seg in st.table(DataSource::SystemLogs).hour(h) {
            for e in &seg.entries {
                let ts = e.ts as u64;
                if kf.matches(e.key) && partial.iter().any(|(lo, hi)| *lo <= ts && ts < *hi) {
                    f(Piece {
                        key: e.key,
                        count: 1,
                        min_ts: e.ts,
                        max_ts: e.ts,
                    });
                }
            }
            rs.rows_read += seg.entries.len() as u64;
            rs.bytes_read += seg.entries.len() as u64 * 12;
        }
    }
    rs
}

/// ClickHouse's `round(x, 2)` for Float64: scale, round half to even, unscale.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round_ties_even() / 100.0
}
