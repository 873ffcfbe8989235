//! What the pipes and the live tail are asked and what they answer: the
//! parameters and results every backend shares.

use std::sync::Arc;

use crate::row::LogRow;

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
    pub fn bounds(&self) -> (u64, u64) {
        (
            self.start.unwrap_or(0) as u64,
            self.end.map_or(1 << 32, |e| e as u64),
        )
    }
}

/// Counters for a response's `statistics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadStats {
    pub rows_read: u64,
    pub bytes_read: u64,
}

impl ReadStats {
    /// Counts `bodies` as read.
    pub fn add_bodies(&mut self, bodies: &[&[u8]]) {
        self.rows_read += bodies.len() as u64;
        self.bytes_read += bodies.iter().map(|b| b.len() as u64).sum::<u64>();
    }
}

/// ClickHouse's `round(x, 2)` for Float64: scale, round half to even, unscale.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round_ties_even() / 100.0
}

/// Mean and population standard deviation of `n` per-minute counts whose
/// sum is `sum` and sum of squares `sum_sq` (the minutes not counted are 0):
/// `log_baseline_anomalies`' baseline, the same on every backend.
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

/// A row of the anomaly pipes, for the order they share.
pub trait MinuteRanked {
    /// (minute, log_count, service, severity).
    fn rank(&self) -> (u32, u64, &str, &str);
}

/// The anomaly pipes' order: newest minute first, then the larger count,
/// then service and severity ascending.
pub fn minute_rank_order<T: MinuteRanked>(a: &T, b: &T) -> std::cmp::Ordering {
    let (am, ac, asv, asev) = a.rank();
    let (bm, bc, bsv, bsev) = b.rank();
    bm.cmp(&am)
        .then_with(|| bc.cmp(&ac))
        .then_with(|| asv.cmp(bsv))
        .then_with(|| asev.cmp(bsev))
}

impl MinuteRanked for AnomalyRow {
    fn rank(&self) -> (u32, u64, &str, &str) {
        (self.minute, self.log_count, &self.service, &self.severity)
    }
}

impl MinuteRanked for BaselineRow {
    fn rank(&self) -> (u32, u64, &str, &str) {
        (self.minute, self.log_count, &self.service, &self.severity)
    }
}

impl BaselineRow {
    /// A window minute's row judged against its key's baseline (`sums`:
    /// the sum and sum of squares of the key's per-minute counts over the
    /// baseline hours), if it is anomalous.
    pub fn judged(
        minute: u32,
        key: (Arc<str>, Arc<str>),
        count: u64,
        sums: (u64, u128),
        q: &BaselineQuery,
    ) -> Option<BaselineRow> {
        let (mean, stddev) = mean_stddev(sums.0, sums.1, q.baseline_hours as u64 * 60);
        let z_score = judge(count, mean, stddev, q.z, q.min_count)?;
        Some(BaselineRow {
            minute,
            service: key.0,
            severity: key.1,
            log_count: count,
            baseline_mean: mean,
            baseline_stddev: stddev,
            z_score,
        })
    }
}

/// A needle, lower-cased once. Matching lower-cases the haystack with
/// Unicode rules (`str::to_lowercase`), unless both are ASCII.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contains {
    needle: String,
}

impl Contains {
    pub fn new(needle: &str) -> Contains {
        Contains {
            needle: needle.to_lowercase(),
        }
    }

    pub fn needle(&self) -> &str {
        &self.needle
    }

    pub fn matches(&self, message: &str) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        if message.is_ascii() && self.needle.is_ascii() {
            let n = self.needle.as_bytes();
            return message
                .as_bytes()
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n));
        }
        message.to_lowercase().contains(&self.needle)
    }
}

#[derive(Debug, Default)]
pub struct RecentLogs {
    pub rows: Vec<LogRow<'static>>,
    /// Rows the query matches without its limit.
    pub rows_before_limit: u64,
    pub stats: ReadStats,
}

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

#[derive(Clone, Debug, Default)]
pub struct AnomalyQuery {
    /// Exclusive end of the window (Unix seconds).
    pub end: u32,
    pub window_minutes: u32,
    pub service: Option<String>,
    pub severity: Option<String>,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyRow {
    /// Start of the minute (Unix seconds).
    pub minute: u32,
    pub service: Arc<str>,
    pub severity: Arc<str>,
    pub log_count: u64,
    pub threshold_per_minute: f64,
    pub excess_ratio: f64,
}

#[derive(Debug, Default)]
pub struct Anomalies {
    pub rows: Vec<AnomalyRow>,
    pub rows_before_limit: u64,
    pub stats: ReadStats,
}

#[derive(Clone, Debug)]
pub struct BaselineQuery {
    /// Exclusive end of the window (Unix seconds).
    pub end: u32,
    pub window_minutes: u32,
    pub z: f64,
    pub min_count: u64,
    /// Length of the baseline, just before the window.
    pub baseline_hours: u32,
    pub service: Option<String>,
    pub severity: Option<String>,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BaselineRow {
    /// Start of the minute (Unix seconds).
    pub minute: u32,
    pub service: Arc<str>,
    pub severity: Arc<str>,
    pub log_count: u64,
    pub baseline_mean: f64,
    pub baseline_stddev: f64,
    /// `(log_count - mean) / stddev` rounded to 2 places; +inf when stddev is 0.
    pub z_score: f64,
}

#[derive(Debug, Default)]
pub struct BaselineAnomalies {
    pub rows: Vec<BaselineRow>,
    pub rows_before_limit: u64,
    pub stats: ReadStats,
}

#[derive(Clone, Debug, Default)]
pub struct TimeseriesQuery {
    pub filter: LogFilter,
    /// Bucket width, 1..=1440.
    pub step_minutes: u32,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TimeseriesRow {
    /// Start of the bucket (Unix seconds).
    pub bucket: u32,
    pub service: Arc<str>,
    pub severity: Arc<str>,
    pub log_count: u64,
}

#[derive(Debug, Default)]
pub struct Timeseries {
    pub rows: Vec<TimeseriesRow>,
    pub rows_before_limit: u64,
    pub stats: ReadStats,
}

/// A page of rows after a seq.
#[derive(Debug, Default)]
pub struct LogsAfter {
    /// `(seq, row)` in seq order.
    pub rows: Vec<(u64, LogRow<'static>)>,
    /// Where the next page starts: every matching row with a seq up to this
    /// one and greater than the asked seq is in `rows`.
    pub next_after: u64,
}

/// A key with an active threshold and its counts, oldest minute first.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyMinutes {
    pub service: Arc<str>,
    pub severity: Arc<str>,
    pub threshold_per_minute: f64,
    pub counts: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::Contains;

    #[test]
    fn matches_ignoring_case() {
        let c = Contains::new("TimeOut");
        assert!(c.matches("upstream timeout after 3 s"));
        assert!(c.matches("TIMEOUT"));
        assert!(!c.matches("time out"));
        assert!(Contains::new("ÉCHEC").matches("un échec grave"));
        assert!(Contains::new("").matches(""));
        assert!(!Contains::new("x").matches(""));
    }
}
