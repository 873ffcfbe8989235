//! Scans for SQL: one `SELECT ... FORMAT JSONEachRow` per scan, read as it
//! arrives, a batch of rows at a time.

use std::io::{BufRead, BufReader, Read};

use logpulse_model::{
    DataSource, LogRow, QuarantineRow, ReadStats, Result as ModelResult, RowScan, ScanBatch,
    ScanFilter, ThresholdRow,
};

use crate::error::Error;
use crate::http::Client;
use crate::pipes::conditions;
use crate::rows::{
    LogOut, QuarantineOut, ThresholdOut, LOG_COLUMNS, QUARANTINE_COLUMNS, THRESHOLD_COLUMNS,
};
use crate::schema::{Layout, Table};

pub struct ClickHouseScan {
    ds: DataSource,
    reader: Option<BufReader<Box<dyn Read + Send>>>,
    /// The error of starting the scan, reported by the first batch.
    failed: Option<Error>,
    stats: ReadStats,
    line: String,
}

/// The query of a scan: rows of `f.ds` in its time range (and keys).
fn query(layout: &Layout, f: &ScanFilter) -> String {
    let table = layout.table(Table::Data(f.ds));
    let (columns, time) = match f.ds {
        DataSource::SystemLogs => (LOG_COLUMNS, "timestamp"),
        DataSource::Thresholds => (THRESHOLD_COLUMNS, "updated_at"),
        _ => (QUARANTINE_COLUMNS, "insertion_date"),
    };
    let (service, severity) = match f.ds {
        DataSource::SystemLogs => (f.service.as_deref(), f.severity.as_deref()),
        _ => (None, None),
    };
    let w = conditions(time, Some(f.start), Some(f.end), service, severity);
    // No ORDER BY: SQL needs no order, and ClickHouse streams the rows
    // without sorting the range first.
    format!("SELECT {columns} FROM {table} WHERE {w} FORMAT JSONEachRow")
}

impl ClickHouseScan {
    pub fn start(client: &Client, layout: &Layout, f: &ScanFilter) -> ClickHouseScan {
        let (reader, failed) = match client.stream(&query(layout, f)) {
            Ok(r) => (Some(BufReader::with_capacity(1 << 16, r)), None),
            Err(e) => (None, Some(e)),
        };
        ClickHouseScan {
            ds: f.ds,
            reader,
            failed,
            stats: ReadStats::default(),
            line: String::new(),
        }
    }

    /// The next line's row, None at the end.
    fn next_line(&mut self) -> Result<Option<&str>, Error> {
        let Some(r) = self.reader.as_mut() else {
            return Ok(None);
        };
        self.line.clear();
        let n = r
            .read_line(&mut self.line)
            .map_err(|e| Error::Unreachable {
                endpoint: "scan".into(),
                detail: e.to_string(),
            })?;
        if n == 0 {
            self.reader = None;
            return Ok(None);
        }
        self.stats.rows_read += 1;
        self.stats.bytes_read += n as u64;
        Ok(Some(self.line.trim_end()))
    }
}

fn decode<T: serde::de::DeserializeOwned>(line: &str) -> Result<T, Error> {
    serde_json::from_str(line).map_err(|e| Error::Decode(format!("{e} in a scanned row")))
}

impl RowScan for ClickHouseScan {
    fn next_batch(
        &mut self,
        max_rows: usize,
        f: &mut dyn FnMut(ScanBatch<'_>),
    ) -> ModelResult<bool> {
        if let Some(e) = self.failed.take() {
            return Err(e.into());
        }
        let max_rows = max_rows.max(1);
        match self.ds {
            DataSource::SystemLogs => {
                let mut rows: Vec<LogRow<'static>> = Vec::new();
                while rows.len() < max_rows {
                    let Some(line) = self.next_line()? else { break };
                    rows.push(decode::<LogOut>(line)?.into_row());
                }
                if !rows.is_empty() {
                    f(ScanBatch::Logs(&rows));
                }
            }
            DataSource::Thresholds => {
                let mut rows: Vec<ThresholdRow> = Vec::new();
                while rows.len() < max_rows {
                    let Some(line) = self.next_line()? else { break };
                    rows.push(decode::<ThresholdOut>(line)?.into_row());
                }
                if !rows.is_empty() {
                    f(ScanBatch::Thresholds(&rows));
                }
            }
            _ => {
                let mut rows: Vec<QuarantineRow> = Vec::new();
                while rows.len() < max_rows {
                    let Some(line) = self.next_line()? else { break };
                    rows.push(decode::<QuarantineOut>(line)?.into_row());
                }
                if !rows.is_empty() {
                    f(ScanBatch::Quarantine(&rows));
                }
            }
        }
        Ok(self.reader.is_some())
    }

    fn stats(&self) -> ReadStats {
        self.stats
    }
}
