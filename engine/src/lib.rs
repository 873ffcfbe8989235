//! logpulse's storage engine.
//!
//! Rows are appended to memory-mapped segment files, one or more per data
//! source and UTC hour ([`segment`]); a sled index ([`index`]) keeps
//! per-minute counts, thresholds and segment metadata, derived from the
//! segments and rebuilt from them whenever it disagrees. The engine knows
//! nothing of HTTP or async runtimes.
#![deny(unsafe_code)]

pub mod bulk;
pub mod compaction;
pub(crate) mod config;
pub mod durability;
pub(crate) mod engine;
pub(crate) mod error;
pub mod index;
pub(crate) mod keys;
pub(crate) mod lifecycle;
mod live;
pub mod lock;
pub(crate) mod query;
pub mod recovery;
pub mod row;
pub(crate) mod scan;
pub mod segment;
pub(crate) mod state;
pub(crate) mod stats;
pub mod thresholds;
pub(crate) use logpulse_model::time;
pub(crate) mod storage;
pub(crate) mod writer;

pub use config::{EngineConfig, LifecycleConfig};
pub use durability::Durability;
pub use engine::{Engine, EngineStats, TableStats, INDEX_DIR};
pub use error::{Error, Result};
pub use lifecycle::{BackendMetric, LifecycleStats};
pub use query::{
    Anomalies, AnomalyQuery, AnomalyRow, BaselineAnomalies, BaselineQuery, BaselineRow, Contains,
    Distribution, DistributionRow, KeyMinutes, LogFilter, LogsAfter, ReadStats, RecentLogs,
    Timeseries, TimeseriesQuery, TimeseriesRow,
};
pub use row::{DataSource, LogRow, QuarantineRow, Row, ThresholdRow};
pub use scan::{LogColumns, Scan, ScanBatch, ScanFilter};
pub use writer::AppendReceipt;
