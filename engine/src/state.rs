//! What queries read: the published segments of every data source, the
//! per-minute counts and the thresholds in force. Guarded by one `RwLock`;
//! the writer publishes a whole group commit under one write lock, so a batch
//! is visible all at once or not at all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::row::DataSource;
use crate::segment::{Segment, SegmentId};
use crate::stats::LogStats;
use crate::thresholds::Thresholds;

/// One data source's segments.
pub struct Table {
    pub dir: PathBuf,
    pub segments: BTreeMap<SegmentId, Segment>,
    pub rows: u64,
}

impl Table {
    pub fn bytes(&self) -> u64 {
        self.segments.values().map(|s| s.bytes()).sum()
    }

    /// Segments whose hour lies in `first..=last`, newest first.
    pub fn hours_desc(&self, first: u32, last: u32) -> impl Iterator<Item = &Segment> {
        let lo = SegmentId {
            hour: first,
            file_no: 0,
        };
        let hi = SegmentId {
            hour: last,
            file_no: u32::MAX,
        };
        self.segments.range(lo..=hi).rev().map(|(_, s)| s)
    }

    /// Segments of one hour.
    pub fn hour(&self, hour: u32) -> impl Iterator<Item = &Segment> {
        self.hours_desc(hour, hour)
    }
}

pub struct State {
    pub tables: BTreeMap<DataSource, Table>,
    pub log_stats: LogStats,
    pub thresholds: Thresholds,
}

impl State {
    pub fn table(&self, ds: DataSource) -> &Table {
        &self.tables[&ds]
    }

    pub fn table_mut(&mut self, ds: DataSource) -> &mut Table {
        self.tables
            .get_mut(&ds)
            .expect("every data source has a table")
    }
}
