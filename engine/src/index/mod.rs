//! The sled index: the only module that names sled.
//!
//! Derived state, rebuildable from the segments at any time. Layout (one
//! tree, prefixed keys, so one `apply_batch` covers a whole write batch):
//!
//! | key | value |
//! |---|---|
//! | `t` service_len:u32be service severity | bincode (ThresholdRow, seq:u64) |
//! | `s` datasource:u8 hour:u32be file_no:u32be | bincode SegmentMeta |
//! | `w` | watermark: last seq applied, u64le |
//! | `v` | index layout version, u32le |
//!
//! Per-minute counts are not here: those of hot hours are counted from the
//! hot segments' rows at open, those of compacted hours are read from the
//! compact files' counts sections; neither costs a sled value per key.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::row::ThresholdRow;
use crate::segment::SegmentId;

/// Version of the key layout above (1 kept per-minute counts under `m`; an
/// index of another version is rebuilt from the segments).
pub const INDEX_VERSION: u32 = 2;

/// Per-segment metadata kept in the index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: u32,
    pub max_ts: u32,
    pub min_seq: u64,
    pub max_seq: u64,
}

/// Changes to apply in one batch. Values are absolute, so applying the
/// newest value of a key is enough when several updates are merged.
#[derive(Default, Debug)]
pub struct IndexUpdate {
    pub thresholds: Vec<(ThresholdRow, u64)>,
    pub segments: HashMap<(u8, SegmentId), SegmentMeta>,
    pub dropped_segments: Vec<(u8, SegmentId)>,
    pub clear_thresholds: bool,
    pub watermark: u64,
}

impl IndexUpdate {
    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty()
            && self.segments.is_empty()
            && self.dropped_segments.is_empty()
            && !self.clear_thresholds
    }

    /// Folds a newer update into this one.
    pub fn merge(&mut self, newer: IndexUpdate) {
        if newer.clear_thresholds {
            self.thresholds.clear();
            self.clear_thresholds = true;
        }
        self.thresholds.extend(newer.thresholds);
        for d in &newer.dropped_segments {
            self.segments.remove(d);
        }
        self.segments.extend(newer.segments);
        self.dropped_segments.extend(newer.dropped_segments);
        self.watermark = self.watermark.max(newer.watermark);
    }
}

/// The sled database.
pub struct Index {
    db: sled::Db,
}

fn ierr(e: sled::Error) -> Error {
    Error::Index(e.to_string())
}

fn threshold_key(service: &str, severity: &str) -> Vec<u8> {
    let mut k = vec![b't'];
    k.extend_from_slice(&(service.len() as u32).to_be_bytes());
    k.extend_from_slice(service.as_bytes());
    k.extend_from_slice(severity.as_bytes());
    k
}

fn segment_key(ds: u8, id: SegmentId) -> Vec<u8> {
    let mut k = vec![b's', ds];
    k.extend_from_slice(&id.hour.to_be_bytes());
    k.extend_from_slice(&id.file_no.to_be_bytes());
    k
}

/// Longest wait for sled's lock file at open.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Opens the sled database, waiting up to [`LOCK_WAIT`] for its lock file:
/// sled releases it when the last of its threads of a closed database lets
/// go of the file, which can be just after the close returned (an engine
/// reopened in the same process; sled's own tests block on it). Another
/// process on the same data dir is refused earlier by the engine's lock.
fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000))
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.map_err(ierr),
        }
    }
}

impl Index {
    /// Opens (or creates) the index at `path` with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Index> {
        let idx = Index {
            db: open_db(path, cache_bytes)?,
        };
        match idx.db.get(b"v").map_err(ierr)? {
            Some(v) if v.as_ref() != INDEX_VERSION.to_le_bytes() => {
                return Err(Error::Index(format!(
                    "index layout version {v:?} is not {INDEX_VERSION}"
                )));
            }
            Some(_) => {}
            None => {
                idx.db
                    .insert(b"v", &INDEX_VERSION.to_le_bytes())
                    .map_err(ierr)?;
            }
        }
        Ok(idx)
    }

    /// Applies one update as one sled batch.
    pub fn apply(&self, u: &IndexUpdate) -> Result<()> {
        let mut b = sled::Batch::default();
        if u.clear_thresholds {
            for k in self.db.scan_prefix(b"t").keys() {
                b.remove(k.map_err(ierr)?);
            }
        }
        for (row, seq) in &u.thresholds {
            let v = bincode::serialize(&(row, seq)).expect("serialize threshold");
            b.insert(threshold_key(&row.service, &row.severity), v);
        }
        for (ds, id) in &u.dropped_segments {
            b.remove(segment_key(*ds, *id));
        }
        for ((ds, id), meta) in &u.segments {
            b.insert(
                segment_key(*ds, *id),
                bincode::serialize(meta).expect("serialize meta"),
            );
        }
        b.insert(b"w", &u.watermark.to_le_bytes());
        self.db.apply_batch(b).map_err(ierr)
    }

    /// The last seq whose effects the index holds.
    pub fn watermark(&self) -> Result<u64> {
        Ok(self
            .db
            .get(b"w")
            .map_err(ierr)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(0))
    }

    /// Every threshold row in force stored.
    pub fn thresholds(&self) -> Result<Vec<(ThresholdRow, u64)>> {
        self.db
            .scan_prefix(b"t")
            .values()
            .map(|v| {
                let v = v.map_err(ierr)?;
                bincode::deserialize(&v).map_err(|e| Error::Index(e.to_string()))
            })
            .collect()
    }

    /// Every segment's metadata.
    pub fn segments(&self) -> Result<HashMap<(u8, SegmentId), SegmentMeta>> {
        let mut out = HashMap::new();
        for kv in self.db.scan_prefix(b"s") {
            let (k, v) = kv.map_err(ierr)?;
            if k.len() != 10 {
                return Err(Error::Index("malformed segment key".into()));
            }
            let id = SegmentId {
                hour: u32::from_be_bytes(k[2..6].try_into().expect("4 bytes")),
                file_no: u32::from_be_bytes(k[6..10].try_into().expect("4 bytes")),
            };
            let meta = bincode::deserialize(&v).map_err(|e| Error::Index(e.to_string()))?;
            out.insert((k[1], id), meta);
        }
        Ok(out)
    }

    /// Drops everything but the version key.
    pub fn clear(&self) -> Result<()> {
        let mut b = sled::Batch::default();
        for k in self.db.iter().keys() {
            let k = k.map_err(ierr)?;
            if k.as_ref() != b"v" {
                b.remove(k);
            }
        }
        self.db.apply_batch(b).map_err(ierr)
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(ierr)
    }
}
