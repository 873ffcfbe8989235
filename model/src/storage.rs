//! The one interface between the server and a storage backend: append, the
//! pipes, the live tail's reads, thresholds, scans and figures. The embedded
//! engine implements it; so can a database-backed store.
//!
//! One rule for callers: every method may block (on disk, on a lock, on a
//! network round trip), so the server calls each one on tokio's blocking
//! pool (`spawn_blocking`), never on an async worker. The one exception is
//! [`Storage::published_seq`], which a backend answers from memory.

use crate::error::Result;
use crate::query::{
    Anomalies, AnomalyQuery, BaselineAnomalies, BaselineQuery, Contains, Distribution, KeyMinutes,
    LogFilter, LogsAfter, RecentLogs, Timeseries, TimeseriesQuery,
};
use crate::row::{DataSource, Row, ThresholdRow};
use crate::scan::{RowScan, ScanFilter};
use crate::write::{AppendReceipt, BackendMetric, DataSourceStats, Durability};

pub trait Storage: Send + Sync + 'static {
    /// Stores `rows` atomically: all of them become visible, or none and an
    /// error. Returns once they are as durable as `durability` asks.
    fn append(&self, rows: &[Row<'_>], durability: Durability) -> Result<AppendReceipt>;
    fn recent_logs(&self, filter: &LogFilter, limit: usize) -> Result<RecentLogs>;
    fn error_distribution(&self, filter: &LogFilter, limit: usize) -> Result<Distribution>;
    fn log_anomalies(&self, q: &AnomalyQuery) -> Result<Anomalies>;
    fn log_baseline_anomalies(&self, q: &BaselineQuery) -> Result<BaselineAnomalies>;
    /// For the alert engine: the counts of the `minutes` minutes from
    /// `first_minute` of every (service, severity) with an active threshold.
    fn threshold_minutes(&self, first_minute: u32, minutes: u32) -> Result<Vec<KeyMinutes>>;
    /// `recent_logs` whose message contains a case-insensitive substring.
    fn recent_logs_containing(
        &self,
        filter: &LogFilter,
        needle: &Contains,
        limit: usize,
    ) -> Result<RecentLogs>;
    /// `log_timeseries`: counts per (bucket, service, severity).
    fn log_timeseries(&self, q: &TimeseriesQuery) -> Result<Timeseries>;
    /// The greatest seq whose rows are visible; answered from memory without
    /// blocking (an atomic or a cached value), cheap enough to poll often.
    /// A tail reads `logs_after` when it grows.
    fn published_seq(&self) -> u64;
    /// A seq that every row acknowledged from now on exceeds: where a tail
    /// opened without Last-Event-ID starts. From memory, without blocking.
    /// A backend whose [`Storage::published_seq`] trails the newest rows
    /// (a shared database) answers more; by default it is the same.
    fn seq_now(&self) -> u64 {
        self.published_seq()
    }
    /// Matching `system_logs` rows with seq > `after`, in seq order, at most
    /// `limit`, and the seq the next page starts after.
    fn logs_after(
        &self,
        after: u64,
        filter: &LogFilter,
        contains: Option<&Contains>,
        limit: usize,
    ) -> Result<LogsAfter>;
    /// The thresholds in force (the latest row per service and severity).
    fn thresholds(&self) -> Result<Vec<ThresholdRow>>;
    fn datasource_stats(&self, ds: DataSource) -> Result<DataSourceStats>;
    /// Removes every row of a data source.
    fn truncate(&self, ds: DataSource) -> Result<()>;
    /// Backend-specific figures for `/metrics` (for the embedded engine:
    /// segments, index lag, compaction, retention, disk budget, free space).
    fn backend_metrics(&self) -> Vec<BackendMetric>;
    /// A scan of the rows of one data source (SQL): exactly those whose
    /// partition time lies in the filter's range and, for `system_logs`, of
    /// its service/severity (SQL relies on it and does not filter again).
    /// Holds no lock between batches.
    fn scan(&self, filter: &ScanFilter) -> Box<dyn RowScan>;
    /// The same rows as [`Self::scan`], split into at most `parts` scans
    /// that can be read at once (each row in exactly one of them, in no
    /// particular order). A backend that cannot split returns one scan.
    fn scan_parts(&self, filter: &ScanFilter, parts: usize) -> Vec<Box<dyn RowScan>> {
        let _ = parts;
        vec![self.scan(filter)]
    }
    /// Syncs and stops; later appends fail.
    fn close(&self) -> Result<()>;
}

impl std::fmt::Debug for dyn Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}
