//! Rows to and from ClickHouse: `JSONEachRow` lines for inserts (times as
//! Unix seconds, every row with its seq), and the shapes `SELECT`s answer.

use std::borrow::Cow;

use logpulse_model::{LogRow, QuarantineRow, Row, ThresholdRow};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct LogLine<'a> {
    timestamp: u32,
    server_id: &'a str,
    service: &'a str,
    severity: &'a str,
    message: &'a str,
    error_code: &'a str,
    resource_id: &'a str,
    metadata: &'a str,
    seq: u64,
    batch: u64,
}

#[derive(Serialize)]
struct ThresholdLine<'a> {
    service: &'a str,
    severity: &'a str,
    threshold_per_minute: f64,
    active: u8,
    updated_at: u32,
    seq: u64,
    batch: u64,
}

#[derive(Serialize)]
struct QuarantineLine<'a> {
    insertion_date: u32,
    #[serde(rename = "c__error_column")]
    error_column: &'a [String],
    #[serde(rename = "c__error")]
    error: &'a [String],
    #[serde(rename = "c__import_id")]
    import_id: &'a str,
    #[serde(rename = "c__raw")]
    raw: &'a str,
    seq: u64,
    batch: u64,
}

/// Appends `row` with `seq` to `out` as one `JSONEachRow` line; `batch`
/// is the first seq of its request (what shards it).
pub fn encode(row: &Row<'_>, seq: u64, batch: u64, out: &mut Vec<u8>) {
    let written = match row {
        Row::Log(r) => serde_json::to_writer(
            &mut *out,
            &LogLine {
                timestamp: r.timestamp,
                server_id: &r.server_id,
                service: &r.service,
                severity: &r.severity,
                message: &r.message,
                error_code: &r.error_code,
                resource_id: &r.resource_id,
                metadata: &r.metadata,
                seq,
                batch,
            },
        ),
        Row::Threshold(t) => serde_json::to_writer(
            &mut *out,
            &ThresholdLine {
                service: &t.service,
                severity: &t.severity,
                threshold_per_minute: t.threshold_per_minute,
                active: t.active,
                updated_at: t.updated_at,
                seq,
                batch,
            },
        ),
        Row::Quarantine(_, q) => serde_json::to_writer(
            &mut *out,
            &QuarantineLine {
                insertion_date: q.insertion_date,
                error_column: &q.error_column,
                error: &q.error,
                import_id: &q.import_id,
                raw: &q.raw,
                seq,
                batch,
            },
        ),
    };
    written.expect("serializing to a Vec cannot fail");
    out.push(b'\n');
}

/// The columns a `system_logs` read selects, times as Unix seconds.
pub const LOG_COLUMNS: &str =
    "toUInt32(timestamp) AS ts, server_id, toString(service) AS service, \
     toString(severity) AS severity, message, error_code, resource_id, metadata, seq";

/// A `system_logs` row as [`LOG_COLUMNS`] answers it.
#[derive(Deserialize)]
pub struct LogOut {
    pub ts: u32,
    pub server_id: String,
    pub service: String,
    pub severity: String,
    pub message: String,
    pub error_code: String,
    pub resource_id: String,
    pub metadata: String,
    #[serde(default)]
    pub seq: u64,
}

impl LogOut {
    pub fn into_row(self) -> LogRow<'static> {
        LogRow {
            timestamp: self.ts,
            service: Cow::Owned(self.service),
            severity: Cow::Owned(self.severity),
            server_id: Cow::Owned(self.server_id),
            message: Cow::Owned(self.message),
            error_code: Cow::Owned(self.error_code),
            resource_id: Cow::Owned(self.resource_id),
            metadata: Cow::Owned(self.metadata),
        }
    }
}

/// The columns a threshold read selects.
pub const THRESHOLD_COLUMNS: &str =
    "service, severity, threshold_per_minute, active, toUInt32(updated_at) AS updated_at";

#[derive(Deserialize)]
pub struct ThresholdOut {
    pub service: String,
    pub severity: String,
    pub threshold_per_minute: f64,
    pub active: u8,
    pub updated_at: u32,
}

impl ThresholdOut {
    pub fn into_row(self) -> ThresholdRow {
        ThresholdRow {
            service: self.service,
            severity: self.severity,
            threshold_per_minute: self.threshold_per_minute,
            active: self.active,
            updated_at: self.updated_at,
        }
    }
}

/// The columns a quarantine read selects.
pub const QUARANTINE_COLUMNS: &str = "toUInt32(insertion_date) AS insertion_date, \
     c__error_column, c__error, c__import_id, c__raw";

#[derive(Deserialize)]
pub struct QuarantineOut {
    pub insertion_date: u32,
    #[serde(rename = "c__error_column")]
    pub error_column: Vec<String>,
    #[serde(rename = "c__error")]
    pub error: Vec<String>,
    #[serde(rename = "c__import_id")]
    pub import_id: String,
    #[serde(rename = "c__raw")]
    pub raw: String,
}

impl QuarantineOut {
    pub fn into_row(self) -> QuarantineRow {
        QuarantineRow {
            insertion_date: self.insertion_date,
            error_column: self.error_column,
            error: self.error,
            import_id: self.import_id,
            raw: self.raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_row_is_one_json_line_with_its_seq() {
        let row = Row::Log(LogRow {
            timestamp: 1_700_000_000,
            service: "api".into(),
            severity: "ERROR".into(),
            message: "it's \"quoted\"\n".into(),
            ..Default::default()
        });
        let mut out = Vec::new();
        encode(&row, 42, 40, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\"seq\":42,\"batch\":40}\n"), "{text}");
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["timestamp"], 1_700_000_000);
        assert_eq!(v["message"], "it's \"quoted\"\n");
    }
}
