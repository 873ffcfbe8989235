//! What every logpulse storage backend and the server share: the rows of
//! each data source, the Events API row parser and its quarantine rules
//! ([`ingest`]), the pipes' parameters and results ([`query`]), scans
//! ([`scan`]), the [`Storage`] trait and its backend-neutral [`Error`].
//!
//! It depends on no storage library: the embedded engine
//! (`logpulse-engine`) and any other backend implement [`Storage`] on top.
#![deny(unsafe_code)]

pub mod error;
pub mod ingest;
pub mod meta;
pub mod query;
pub mod row;
pub mod scan;
pub mod storage;
pub mod time;
pub mod write;

pub use error::{Error, Result};
pub use meta::{MetaStore, TokenRecord};
pub use query::{
    Anomalies, AnomalyQuery, AnomalyRow, BaselineAnomalies, BaselineQuery, BaselineRow, Contains,
    Distribution, DistributionRow, KeyMinutes, LogFilter, LogsAfter, ReadStats, RecentLogs,
    Timeseries, TimeseriesQuery, TimeseriesRow,
};
pub use row::{DataSource, LogRow, QuarantineRow, Row, ThresholdRow};
pub use scan::{LogColumns, RowScan, ScanBatch, ScanFilter, ALL_COLUMNS, LOG_COLUMNS};
pub use storage::Storage;
pub use write::{AppendReceipt, BackendMetric, DataSourceStats, Durability};
