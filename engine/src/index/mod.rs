//! The sled index: the only module that names sled.
//!
//! Derived state, rebuildable from the segments at any time. Layout (one
//! tree, prefixed keys, so one `apply_batch` covers a whole write batch):
//!
//! | key | value |
//! |---|---|
//! | `m` hour:u32be svc_len:u8 service sev_len:u8 severity | per non-empty minute: minute_of_hour:u8 count:u32le min_sec:u8 max_sec:u8 |
//! | `t` service_len:u32be service severity | bincode (ThresholdRow, seq:u64) |
//! | `s` datasource:u8 hour:u32be file_no:u32be | bincode SegmentMeta |
//! | `w` | watermark: last seq applied, u64le |
//! | `v` | index layout version, u32le |

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::row::ThresholdRow;
use crate::segment::SegmentId;
use crate::stats::MinuteStat;

/// Version of the key layout above.
pub const INDEX_VERSION: u32 = 1;

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

/// A minute count keyed by names (ids are not persisted): (minute, service, severity).
pub type MinuteKey = (u32, String, String);
/// An hour of minute counts keyed by names: (hour, service, severity).
pub type HourKey = (u32, String, String);

/// The 60 minute counts of one key in one hour.
pub type HourMinutes = [MinuteStat; 60];

/// Expands hour records into per-minute counts (non-empty minutes only).
pub fn expand_minutes(hours: &HashMap<HourKey, HourMinutes>) -> HashMap<MinuteKey, MinuteStat> {
    let mut out = HashMap::new();
    for ((hour, svc, sev), mins) in hours {
        for (i, m) in mins.iter().enumerate().filter(|(_, m)| m.count > 0) {
            out.insert((hour * 60 + i as u32, svc.clone(), sev.clone()), *m);
        }
    }
    out
}

/// Changes to apply in one batch. Values are absolute, so applying the
/// newest value of a key is enough when several updates are merged.
#[derive(Default, Debug)]
pub struct IndexUpdate {
    /// Per-minute counts, one record per (hour, service, severity): sled
    /// rewrites a whole value on every write, so one key per minute costs
    /// 60x the writes and far more memory during backfills.
    pub minutes: HashMap<HourKey, HourMinutes>,
    pub thresholds: Vec<(ThresholdRow, u64)>,
    pub segments: HashMap<(u8, SegmentId), SegmentMeta>,
    pub dropped_segments: Vec<(u8, SegmentId)>,
    /// Clear every minute count (system_logs truncated) before applying.
    pub clear_minutes: bool,
    pub clear_thresholds: bool,
    pub watermark: u64,
}

impl IndexUpdate {
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
            && self.thresholds.is_empty()
            && self.segments.is_empty()
            && self.dropped_segments.is_empty()
            && !self.clear_minutes
            && !self.clear_thresholds
    }

    /// Folds a newer update into this one.
    pub fn merge(&mut self, newer: IndexUpdate) {
        if newer.clear_minutes {
            self.minutes.clear();
            self.clear_minutes = true;
        }
        if newer.clear_thresholds {
            self.thresholds.clear();
            self.clear_thresholds = true;
        }
        self.minutes.extend(newer.minutes);
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

fn minute_key(hour: u32, service: &str, severity: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(7 + service.len() + severity.len());
    k.push(b'm');
    k.extend_from_slice(&hour.to_be_bytes());
    k.push(service.len() as u8);
    k.extend_from_slice(service.as_bytes());
    k.push(severity.len() as u8);
    k.extend_from_slice(severity.as_bytes());
    k
}

fn parse_minute_key(k: &[u8]) -> Option<HourKey> {
    let hour = u32::from_be_bytes(k.get(1..5)?.try_into().ok()?);
    let sl = *k.get(5)? as usize;
    let service = std::str::from_utf8(k.get(6..6 + sl)?).ok()?;
    let vl = *k.get(6 + sl)? as usize;
    let severity = std::str::from_utf8(k.get(7 + sl..7 + sl + vl)?).ok()?;
    Some((hour, service.to_string(), severity.to_string()))
}

fn encode_minutes(mins: &HourMinutes) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, m) in mins.iter().enumerate().filter(|(_, m)| m.count > 0) {
        v.push(i as u8);
        v.extend_from_slice(&m.count.to_le_bytes());
        v.extend_from_slice(&[m.min_sec, m.max_sec]);
    }
    v
}

fn decode_minutes(v: &[u8]) -> Option<HourMinutes> {
    let mut mins = [MinuteStat::default(); 60];
    if !v.len().is_multiple_of(7) {
        return None;
    }
    for c in v.chunks_exact(7) {
        let slot = mins.get_mut(c[0] as usize)?;
        *slot = MinuteStat {
            count: u32::from_le_bytes(c[1..5].try_into().ok()?),
            min_sec: c[5],
            max_sec: c[6],
        };
    }
    Some(mins)
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

impl Index {
    /// Opens (or creates) the index at `path` with a page cache of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Index> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(ierr)?;
        let idx = Index { db };
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
        if u.clear_minutes {
            for k in self.db.scan_prefix(b"m").keys() {
                b.remove(k.map_err(ierr)?);
            }
        }
        if u.clear_thresholds {
            for k in self.db.scan_prefix(b"t").keys() {
                b.remove(k.map_err(ierr)?);
            }
        }
        for ((hour, svc, sev), mins) in &u.minutes {
            let k = minute_key(*hour, svc, sev);
            let v = encode_minutes(mins);
            if v.is_empty() {
                b.remove(k);
            } else {
                b.insert(k, v);
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

    /// Every minute count stored.
    pub fn minutes(&self) -> Result<HashMap<HourKey, HourMinutes>> {
        let mut out = HashMap::new();
        for kv in self.db.scan_prefix(b"m") {
            let (k, v) = kv.map_err(ierr)?;
            let key =
                parse_minute_key(&k).ok_or_else(|| Error::Index("malformed minute key".into()))?;
            let mins =
                decode_minutes(&v).ok_or_else(|| Error::Index("malformed minute value".into()))?;
            out.insert(key, mins);
        }
        Ok(out)
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
