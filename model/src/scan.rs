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
}

impl ScanFilter {
    /// Every row of `ds`.
    pub fn all(ds: DataSource) -> ScanFilter {
        ScanFilter {
            ds,
            start: 0,
            end: 1 << 32,
            service: None,
            severity: None,
        }
    }
}

/// One batch of rows, borrowed for the duration of the callback.
pub enum ScanBatch<'a> {
    Logs(&'a [LogRow<'a>]),
    Thresholds(&'a [ThresholdRow]),
    Quarantine(&'a [QuarantineRow]),
}

/// A scan in progress (see [`crate::Storage::scan`]).
pub trait RowScan: Send {
    /// Hands the next batch of at most `max_rows` rows to `f` (not called
    /// for an empty batch); false once the scan is complete.
    fn next_batch(&mut self, max_rows: usize, f: &mut dyn FnMut(ScanBatch<'_>)) -> Result<bool>;
    /// Rows and bytes read so far.
    fn stats(&self) -> ReadStats;
}
