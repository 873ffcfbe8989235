//! The one narrow interface between the HTTP layer and storage: append, the
//! queries, the live tail's reads, thresholds and statistics. The embedded engine implements
//! it; a ClickHouse-backed implementation can later do the same.

use logpulse_engine::{
    Anomalies, AnomalyQuery, AppendReceipt, BackendMetric, BaselineAnomalies, BaselineQuery,
    Contains, DataSource, DataSourceStats, Distribution, Durability, Engine, EngineStats,
    KeyMinutes, LogFilter, LogsAfter, ReadStats, RecentLogs, Result, Row, Scan, ScanBatch,
    ScanFilter, ThresholdRow, Timeseries, TimeseriesQuery,
};

pub trait Storage: Send + Sync + 'static {
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
    /// The greatest seq whose rows are visible; cheap enough to poll often.
    /// A tail reads `logs_after` when it grows.
    fn published_seq(&self) -> u64;
    /// Matching `system_logs` rows with seq > `after`, in seq order, at most
    /// `limit`, and the seq the next page starts after.
    fn logs_after(
        &self,
        after: u64,
        filter: &LogFilter,
        contains: Option<&Contains>,
        limit: usize,
    ) -> Result<LogsAfter>;
    fn thresholds(&self) -> Vec<ThresholdRow>;
    fn datasource_stats(&self, ds: DataSource) -> DataSourceStats;
    fn stats(&self) -> EngineStats;
    fn truncate(&self, ds: DataSource) -> Result<()>;
    /// Backend-specific figures for `/metrics` (for the embedded engine:
    /// compaction, retention, disk budget and free space).
    fn backend_metrics(&self) -> Vec<BackendMetric>;
    /// A scan of the rows of one data source (SQL): those whose partition
    /// time lies in the filter's range and, for `system_logs`, of its
    /// service/severity, possibly with other rows of the same hours (the
    /// caller filters again). Holds no lock between batches.
    fn scan(&self, filter: &ScanFilter) -> Box<dyn RowScan>;
    /// Syncs and stops; later appends fail.
    fn close(&self) -> Result<()>;
}

/// A scan in progress (see [`Storage::scan`]).
pub trait RowScan: Send {
    /// Hands the next batch of at most `max_rows` rows to `f` (not called
    /// for an empty batch); false once the scan is complete.
    fn next_batch(&mut self, max_rows: usize, f: &mut dyn FnMut(ScanBatch<'_>)) -> Result<bool>;
    /// Rows and bytes read so far.
    fn stats(&self) -> ReadStats;
}

impl RowScan for Scan {
    fn next_batch(&mut self, max_rows: usize, f: &mut dyn FnMut(ScanBatch<'_>)) -> Result<bool> {
        Scan::next_batch(self, max_rows, f)
    }
    fn stats(&self) -> ReadStats {
        Scan::stats(self)
    }
}

impl Storage for Engine {
    fn append(&self, rows: &[Row<'_>], durability: Durability) -> Result<AppendReceipt> {
        Engine::append(self, rows, durability)
    }
    fn recent_logs(&self, filter: &LogFilter, limit: usize) -> Result<RecentLogs> {
        Engine::recent_logs(self, filter, limit)
    }
    fn error_distribution(&self, filter: &LogFilter, limit: usize) -> Result<Distribution> {
        Engine::error_distribution(self, filter, limit)
    }
    fn log_anomalies(&self, q: &AnomalyQuery) -> Result<Anomalies> {
        Engine::log_anomalies(self, q)
    }
    fn log_baseline_anomalies(&self, q: &BaselineQuery) -> Result<BaselineAnomalies> {
        Engine::log_baseline_anomalies(self, q)
    }
    fn threshold_minutes(&self, first_minute: u32, minutes: u32) -> Result<Vec<KeyMinutes>> {
        Engine::threshold_minutes(self, first_minute, minutes)
    }
    fn recent_logs_containing(
        &self,
        filter: &LogFilter,
        needle: &Contains,
        limit: usize,
    ) -> Result<RecentLogs> {
        Engine::recent_logs_containing(self, filter, needle, limit)
    }
    fn log_timeseries(&self, q: &TimeseriesQuery) -> Result<Timeseries> {
        Engine::log_timeseries(self, q)
    }
    fn published_seq(&self) -> u64 {
        Engine::published_seq(self)
    }
    fn logs_after(
        &self,
        after: u64,
        filter: &LogFilter,
        contains: Option<&Contains>,
        limit: usize,
    ) -> Result<LogsAfter> {
        Engine::logs_after(self, after, filter, contains, limit)
    }
    fn thresholds(&self) -> Vec<ThresholdRow> {
        Engine::thresholds(self)
    }
    fn datasource_stats(&self, ds: DataSource) -> DataSourceStats {
        Engine::datasource_stats(self, ds)
    }
    fn stats(&self) -> EngineStats {
        Engine::stats(self)
    }
    fn truncate(&self, ds: DataSource) -> Result<()> {
        Engine::truncate(self, ds)
    }
    fn backend_metrics(&self) -> Vec<BackendMetric> {
        Engine::lifecycle_stats(self).metrics()
    }
    fn scan(&self, filter: &ScanFilter) -> Box<dyn RowScan> {
        Box::new(Engine::scan(self, filter))
    }
    fn close(&self) -> Result<()> {
        Engine::close(self)
    }
}
