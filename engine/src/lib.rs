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
pub mod config;
pub mod durability;
pub mod engine;
pub mod error;
pub mod index;
pub mod keys;
pub mod lifecycle;
mod live;
pub mod lock;
pub mod query;
pub mod recovery;
pub mod row;
pub mod scan;
pub mod segment;
pub mod state;
pub mod stats;
pub mod thresholds;
pub(crate) use logpulse_model::time;
pub mod storage;
pub(crate) mod writer;

pub use config::{EngineConfig, LifecycleConfig};
pub use durability::Durability;
pub use engine::{Engine, EngineStats, TableStats};
pub use error::{Error, Result};
pub use lifecycle::{BackendMetric, LifecycleStats};
pub use query::{
    Anomalies, AnomalyQuery, AnomalyRow, BaselineAnomalies, BaselineQuery, BaselineRow, Contains,
    Distribution, DistributionRow, KeyMinutes, LogFilter, LogsAfter, ReadStats, RecentLogs,
    Timeseries, TimeseriesQuery, TimeseriesRow,
};
pub use row::{DataSource, LogRow, QuarantineRow, Row, ThresholdRow};
pub use scan::{Scan, ScanBatch, ScanFilter};
pub use writer::AppendReceipt;
