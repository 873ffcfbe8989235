//! The rows of each data source, as every backend and the server see them.
//!
//! Field order matters to the embedded engine, whose record bodies are these
//! structs in bincode (docs/format.md); serde derives are here for that and
//! for any backend that serialises rows.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The data sources logpulse stores. Quarantines are data sources too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataSource {
    SystemLogs,
    Thresholds,
    SystemLogsQuarantine,
    ThresholdsQuarantine,
}

impl DataSource {
    pub const ALL: [DataSource; 4] = [
        DataSource::SystemLogs,
        DataSource::SystemLogsQuarantine,
        DataSource::Thresholds,
        DataSource::ThresholdsQuarantine,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DataSource::SystemLogs => "system_logs",
            DataSource::Thresholds => "log_anomaly_thresholds",
            DataSource::SystemLogsQuarantine => "system_logs_quarantine",
            DataSource::ThresholdsQuarantine => "log_anomaly_thresholds_quarantine",
        }
    }

    pub fn from_name(name: &str) -> Option<DataSource> {
        DataSource::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The byte stored in segment headers.
    pub fn id(self) -> u8 {
        match self {
            DataSource::SystemLogs => 1,
            DataSource::Thresholds => 2,
            DataSource::SystemLogsQuarantine => 3,
            DataSource::ThresholdsQuarantine => 4,
        }
    }

    pub fn from_id(id: u8) -> Option<DataSource> {
        DataSource::ALL.into_iter().find(|d| d.id() == id)
    }

    /// Where a data source's rejected rows go.
    pub fn quarantine(self) -> Option<DataSource> {
        match self {
            DataSource::SystemLogs => Some(DataSource::SystemLogsQuarantine),
            DataSource::Thresholds => Some(DataSource::ThresholdsQuarantine),
            _ => None,
        }
    }

    pub fn is_quarantine(self) -> bool {
        matches!(
            self,
            DataSource::SystemLogsQuarantine | DataSource::ThresholdsQuarantine
        )
    }

    /// Column names and ClickHouse types, as `GET /v0/datasources/<name>` lists them.
    pub fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            DataSource::SystemLogs => &[
                ("timestamp", "DateTime"),
                ("server_id", "String"),
                ("service", "LowCardinality(String)"),
                ("severity", "LowCardinality(String)"),
                ("message", "String"),
                ("error_code", "String"),
                ("resource_id", "String"),
                ("metadata", "String"),
            ],
            DataSource::Thresholds => &[
                ("service", "String"),
                ("severity", "String"),
                ("threshold_per_minute", "Float64"),
                ("active", "UInt8"),
                ("updated_at", "DateTime"),
            ],
            _ => &[
                ("c__error_column", "Array(String)"),
                ("c__error", "Array(String)"),
                ("c__import_id", "Nullable(String)"),
                ("insertion_date", "DateTime"),
                ("c__raw", "String"),
            ],
        }
    }
}

/// One `system_logs` row. Strings borrow from the request or the segment map
/// where they can.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LogRow<'a> {
    pub timestamp: u32,
    #[serde(borrow)]
    pub service: Cow<'a, str>,
    #[serde(borrow)]
    pub severity: Cow<'a, str>,
    #[serde(borrow)]
    pub server_id: Cow<'a, str>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    #[serde(borrow)]
    pub error_code: Cow<'a, str>,
    #[serde(borrow)]
    pub resource_id: Cow<'a, str>,
    #[serde(borrow)]
    pub metadata: Cow<'a, str>,
}

impl LogRow<'_> {
    /// Bytes of text in the row's seven string columns.
    pub fn text_bytes(&self) -> usize {
        [
            &self.service,
            &self.severity,
            &self.server_id,
            &self.message,
            &self.error_code,
            &self.resource_id,
            &self.metadata,
        ]
        .iter()
        .map(|s| s.len())
        .sum()
    }

    pub fn into_owned(self) -> LogRow<'static> {
        LogRow {
            timestamp: self.timestamp,
            service: Cow::Owned(self.service.into_owned()),
            severity: Cow::Owned(self.severity.into_owned()),
            server_id: Cow::Owned(self.server_id.into_owned()),
            message: Cow::Owned(self.message.into_owned()),
            error_code: Cow::Owned(self.error_code.into_owned()),
            resource_id: Cow::Owned(self.resource_id.into_owned()),
            metadata: Cow::Owned(self.metadata.into_owned()),
        }
    }
}

/// One `log_anomaly_thresholds` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    pub service: String,
    pub severity: String,
    pub threshold_per_minute: f64,
    pub active: u8,
    pub updated_at: u32,
}

/// One row of a quarantine data source: the raw line and why it was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRow {
    pub insertion_date: u32,
    pub error_column: Vec<String>,
    pub error: Vec<String>,
    pub import_id: String,
    pub raw: String,
}

/// A row of any data source, as handed to [`crate::Storage::append`].
#[derive(Clone, Debug, PartialEq)]
pub enum Row<'a> {
    Log(LogRow<'a>),
    Threshold(ThresholdRow),
    Quarantine(DataSource, QuarantineRow),
}

impl Row<'_> {
    pub fn datasource(&self) -> DataSource {
        match self {
            Row::Log(_) => DataSource::SystemLogs,
            Row::Threshold(_) => DataSource::Thresholds,
            Row::Quarantine(ds, _) => *ds,
        }
    }

    /// The timestamp that picks the row's hour partition.
    pub fn partition_time(&self) -> u32 {
        match self {
            Row::Log(r) => r.timestamp,
            Row::Threshold(t) => t.updated_at,
            Row::Quarantine(_, q) => q.insertion_date,
        }
    }
}
