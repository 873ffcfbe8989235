//! The embedded engine behind the backend-neutral [`Storage`] trait: the
//! engine's own errors become the model's here, and its segment figures
//! join the lifecycle's in the backend metrics.

use logpulse_model::{
    Anomalies, AnomalyQuery, AppendReceipt, BackendMetric, BaselineAnomalies, BaselineQuery,
    Contains, DataSource, DataSourceStats, Distribution, Durability, KeyMinutes, LogFilter,
    LogsAfter, ReadStats, RecentLogs, Result, Row, RowScan, ScanBatch, ScanFilter, Storage,
    ThresholdRow, Timeseries, TimeseriesQuery,
};

use crate::engine::Engine;
use crate::scan::Scan;

impl RowScan for Scan {
    fn next_batch(&mut self, max_rows: usize, f: &mut dyn FnMut(ScanBatch<'_>)) -> Result<bool> {
        Ok(Scan::next_batch(self, max_rows, f)?)
    }
    fn stats(&self) -> ReadStats {
        Scan::stats(self)
    }
}

impl Storage for Engine {
    fn append(&self, rows: &[Row<'_>], durability: Durability) -> Result<AppendReceipt> {
        Ok(Engine::append(self, rows, durability)?)
    }
    fn recent_logs(&self, filter: &LogFilter, limit: usize) -> Result<RecentLogs> {
        Ok(Engine::recent_logs(self, filter, limit)?)
    }
    fn error_distribution(&self, filter: &LogFilter, limit: usize) -> Result<Distribution> {
        Ok(Engine::error_distribution(self, filter, limit)?)
    }
    fn log_anomalies(&self, q: &AnomalyQuery) -> Result<Anomalies> {
        Ok(Engine::log_anomalies(self, q)?)
    }
    fn log_baseline_anomalies(&self, q: &BaselineQuery) -> Result<BaselineAnomalies> {
        Ok(Engine::log_baseline_anomalies(self, q)?)
    }
    fn threshold_minutes(&self, first_minute: u32, minutes: u32) -> Result<Vec<KeyMinutes>> {
        Ok(Engine::threshold_minutes(self, first_minute, minutes)?)
    }
    fn recent_logs_containing(
        &self,
        filter: &LogFilter,
        needle: &Contains,
        limit: usize,
    ) -> Result<RecentLogs> {
        Ok(Engine::recent_logs_containing(self, filter, needle, limit)?)
    }
    fn log_timeseries(&self, q: &TimeseriesQuery) -> Result<Timeseries> {
        Ok(Engine::log_timeseries(self, q)?)
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
        Ok(Engine::logs_after(self, after, filter, contains, limit)?)
    }
    fn thresholds(&self) -> Result<Vec<ThresholdRow>> {
        Ok(Engine::thresholds(self))
    }
    fn datasource_stats(&self, ds: DataSource) -> Result<DataSourceStats> {
        let t = Engine::datasource_stats(self, ds);
        Ok(DataSourceStats {
            rows: t.rows,
            bytes: t.bytes,
        })
    }
    fn truncate(&self, ds: DataSource) -> Result<()> {
        Ok(Engine::truncate(self, ds)?)
    }
    fn backend_metrics(&self) -> Vec<BackendMetric> {
        let s = Engine::stats(self);
        let gauge = |name, help, value: u64| BackendMetric {
            name,
            help,
            counter: false,
            value: value as f64,
        };
        let mut out = vec![
            gauge("logpulse_segments", "Segment files.", s.segments),
            gauge(
                "logpulse_segment_bytes",
                "Committed bytes in segment files.",
                s.segment_bytes,
            ),
            gauge(
                "logpulse_last_seq",
                "Seq of the last row written.",
                s.last_seq,
            ),
            gauge(
                "logpulse_index_lag_rows",
                "Rows written but not yet in the sled index.",
                s.last_seq.saturating_sub(s.index_watermark),
            ),
        ];
        out.extend(Engine::lifecycle_stats(self).metrics());
        out
    }
    fn scan(&self, filter: &ScanFilter) -> Box<dyn RowScan> {
        Box::new(Engine::scan(self, filter))
    }
    fn scan_parts(&self, filter: &ScanFilter, parts: usize) -> Vec<Box<dyn RowScan>> {
        Engine::scan(self, filter)
            .split(parts)
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn RowScan>)
            .collect()
    }
    fn close(&self) -> Result<()> {
        Ok(Engine::close(self)?)
    }
}
