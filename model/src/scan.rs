//! Reading every row of a data source in batches (the SQL engine's table
//! scans), whatever the backend.

use crate::error::Result;
use crate::query::ReadStats;
use crate::row::{DataSource, LogRow, QuarantineRow, ThresholdRow};

/// What a scan reads.
#[derive(Clone, Debug)]
pub struct ScanFilter {
    pub ds: DataSource,
    /// Partition time (seconds) range, `end` exclusive; `end` may be 2^32.
    pub start: u64,
    pub end: u64,
    /// Only for `system_logs`; severity compared as given.
    pub service: Option<String>,
    pub severity: Option<String>,
    /// `system_logs`: which of its columns the reader needs (bit `i` for
    /// column `i` of [`LOG_COLUMNS`]); a backend may deliver more. A
    /// backend that can read columns apart (the embedded engine's compact
    /// files) skips the others.
    pub columns: u8,
}

/// `system_logs`' columns in schema order.
pub const LOG_COLUMNS: [&str; 8] = [
    "timestamp",
    "server_id",
    "service",
    "severity",
    "message",
    "error_code",
    "resource_id",
    "metadata",
];

/// [`ScanFilter::columns`] for every column.
pub const ALL_COLUMNS: u8 = 0xff;

impl ScanFilter {
    /// Every row of `ds`.
    pub fn all(ds: DataSource) -> ScanFilter {
        ScanFilter {
            ds,
            start: 0,
            end: 1 << 32,
            service: None,
            severity: None,
            columns: ALL_COLUMNS,
        }
    }
}

/// One batch of rows, borrowed for the duration of the callback.
pub enum ScanBatch<'a> {
    Logs(&'a [LogRow<'a>]),
    /// `system_logs` rows as columns (see [`LogColumns`]).
    LogColumns(&'a LogColumns<'a>),
    Thresholds(&'a [ThresholdRow]),
    Quarantine(&'a [QuarantineRow]),
}

/// `system_logs` rows as columns: `timestamp` for every row, and each
/// string column of [`LOG_COLUMNS`] (index 1 to 7) that the scan's
/// [`ScanFilter::columns`] asked for (`None` for the others), each the
/// same length.
#[derive(Debug, Default)]
pub struct LogColumns<'a> {
    pub timestamp: Vec<u32>,
    pub strings: [Option<Vec<&'a str>>; 7],
}

impl LogColumns<'_> {
    pub fn rows(&self) -> usize {
        self.timestamp.len()
    }
}

/// A scan in progress (see [`crate::Storage::scan`]).
pub trait RowScan: Send {
    /// Hands the next batch of at most `max_rows` rows to `f` (not called
    /// for an empty batch); false once the scan is complete.
    fn next_batch(&mut self, max_rows: usize, f: &mut dyn FnMut(ScanBatch<'_>)) -> Result<bool>;
    /// Rows and bytes read so far.
    fn stats(&self) -> ReadStats;
}
