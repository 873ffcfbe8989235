//! The rows of each data source and their on-disk body encoding.
//!
//! A record body is the row in bincode with varint integers
//! ([`body_options`]); field order is part of the format (docs/format.md).

use std::borrow::Cow;

use bincode::Options;
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

/// The leading fields of an encoded [`LogRow`]: enough to index it.
#[derive(Debug, Deserialize)]
pub struct LogHead<'a> {
    pub timestamp: u32,
    pub service: &'a str,
    pub severity: &'a str,
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

/// A row of any data source, as handed to [`crate::Engine::append`].
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

    /// An upper bound of the encoded body's length, for sizing buffers.
    pub fn encoded_len_hint(&self) -> usize {
        match self {
            Row::Log(r) => r.text_bytes() + 7 * 9 + 5,
            Row::Threshold(t) => t.service.len() + t.severity.len() + 40,
            Row::Quarantine(_, q) => {
                q.raw.len()
                    + q.import_id.len()
                    + q.error
                        .iter()
                        .chain(&q.error_column)
                        .map(|s| s.len() + 9)
                        .sum::<usize>()
                    + 40
            }
        }
    }

    /// Appends the record body (bincode) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let opts = body_options();
        let res = match self {
            Row::Log(r) => opts.serialize_into(&mut *out, r),
            Row::Threshold(t) => opts.serialize_into(&mut *out, t),
            Row::Quarantine(_, q) => opts.serialize_into(&mut *out, q),
        };
        res.expect("serializing into a Vec cannot fail");
    }
}

/// bincode options of record bodies: varint integers, little endian,
/// trailing bytes allowed (so that a prefix such as [`LogHead`] decodes).
pub fn body_options() -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
        .allow_trailing_bytes()
}

pub fn decode_log(body: &[u8]) -> Result<LogRow<'_>, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

pub fn decode_log_head(body: &[u8]) -> Result<LogHead<'_>, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

pub fn decode_threshold(body: &[u8]) -> Result<ThresholdRow, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

pub fn decode_quarantine(body: &[u8]) -> Result<QuarantineRow, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_row_round_trips_and_head_decodes() {
        let row = LogRow {
            timestamp: 1_685_629_800,
            service: "auth".into(),
            severity: "ERROR".into(),
            message: "failed \"x\"".into(),
            ..Default::default()
        };
        let mut buf = Vec::new();
        Row::Log(row.clone()).encode_into(&mut buf);
        assert_eq!(decode_log(&buf).unwrap(), row);
        let head = decode_log_head(&buf).unwrap();
        assert_eq!(
            (head.timestamp, head.service, head.severity),
            (row.timestamp, "auth", "ERROR")
        );
    }
}
