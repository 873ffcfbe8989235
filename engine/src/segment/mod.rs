//! Segment files: one or more per (data source, UTC hour), written through
//! shared memory maps.

pub mod format;
pub mod mmap;
pub mod recovery;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::time::hour_label;
use format::{frame_body, frame_seq};
use mmap::SegmentMap;

/// Identifies a segment within its data source: its hour and file number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId {
    pub hour: u32,
    pub file_no: u32,
}

impl SegmentId {
    /// `YYYYMMDDHH-NNNN.seg`.
    pub fn file_name(&self) -> String {
        format!("{}-{:04}.seg", hour_label(self.hour), self.file_no)
    }

    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }
}

/// One row's place in a segment: where its frame starts, its timestamp, and
/// its interned (service, severity) key (0 for other data sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub offset: u32,
    pub ts: u32,
    pub key: u32,
}

/// The read side of a segment as queries see it. Entries are in seq order.
pub struct Segment {
    pub id: SegmentId,
    pub path: PathBuf,
    pub map: Arc<SegmentMap>,
    pub entries: Vec<Entry>,
    /// A hot segment that the writer may append to (not a compacted one).
    pub appendable: bool,
}

impl Segment {
    /// Bytes of the file that hold committed records (header included).
    pub fn bytes(&self) -> u64 {
        self.map.committed_len() as u64
    }

    /// The seq of an entry's record.
    pub fn seq(&self, e: &Entry) -> u64 {
        frame_seq(self.map.committed(), e.offset as usize)
    }

    /// The body of an entry's record.
    pub fn body(&self, e: &Entry) -> &[u8] {
        frame_body(self.map.committed(), e.offset as usize)
    }
}
