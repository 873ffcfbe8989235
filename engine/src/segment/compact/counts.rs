//! A compact `system_logs` file's counts as the engine holds them: per key
//! of the file's dictionary, its rows and time range (what whole-hour
//! queries read: 20 bytes a key, in memory while the file is open); the
//! per-(key, minute) counts only on demand, decoded again from the
//! directory through the block cache (what partial hours and minute-grain
//! queries read). Memory for a compacted hour thus follows its keys, not
//! its rows or non-empty minutes.

use std::sync::Arc;

use super::cache::{Cached, COUNTS};
use super::directory::{decode_seconds, parse_directory, KeyCount};
use super::reader::{directory_bytes, CompactSegment, Run};
use super::{is_log_codec, CODEC_LOG_KEYED};
use crate::error::{Error, Result};

/// A key with at most this many rows in a file has its minute counts made
/// from its rows' block heads (a block or a few) rather than from the
/// whole hour's counts, when those are not in the cache.
const HEAD_ROWS: u32 = 2048;

/// Up to this many wanted keys, [`CompactSegment::runs`] goes key by key.
const FEW_KEYS: usize = 64;

/// One dictionary key's rows in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTotal {
    pub rows: u32,
    /// Least and greatest timestamp of its rows (`u32::MAX`, 0 when none).
    pub min_ts: u32,
    pub max_ts: u32,
    /// Row number of its first row (files in key order: its rows are
    /// `first_row..first_row + rows`).
    pub first_row: u32,
    /// Index of its first (key, minute) in the counts.
    pub first_count: u32,
}

/// The totals of each of `nkeys` dictionary keys, from counts in (key,
/// minute) order (as the counts section stores them) of hour `hour`.
pub(super) fn totals_of(counts: &[KeyCount], nkeys: usize, hour: u32) -> Vec<KeyTotal> {
    let mut out = Vec::with_capacity(nkeys);
    let (mut i, mut row) = (0usize, 0u32);
    for k in 0..nkeys as u32 {
        let mut t = KeyTotal {
            rows: 0,
            min_ts: u32::MAX,
            max_ts: 0,
            first_row: row,
            first_count: i as u32,
        };
        while let Some(c) = counts.get(i).filter(|c| c.key == k) {
            let base = hour * 3600 + c.minute as u32 * 60;
            t.rows += c.count;
            t.min_ts = t.min_ts.min(base + c.min_sec as u32);
            t.max_ts = t.max_ts.max(base + c.max_sec as u32);
            i += 1;
        }
        row += t.rows;
        out.push(t);
    }
    out
}

/// The counts of key `k` (its (key, minute)s, in minute order).
pub(crate) fn of_key<'a>(totals: &[KeyTotal], counts: &'a [KeyCount], k: usize) -> &'a [KeyCount] {
    let Some(t) = totals.get(k) else {
        return &[];
    };
    let end = totals
        .get(k + 1)
        .map_or(counts.len(), |n| n.first_count as usize);
    counts
        .get(t.first_count as usize..end.min(counts.len()))
        .unwrap_or(&[])
}

/// Counts made from rows `(ts, key)` (files without a counts section):
/// in (key, minute) order, as the section would hold them.
pub(super) fn counts_of_rows(rows: impl Iterator<Item = (u32, u32)>) -> Vec<KeyCount> {
    let mut by: std::collections::BTreeMap<(u32, u8), KeyCount> = Default::default();
    for (ts, key) in rows {
        let (minute, sec) = (((ts / 60) % 60) as u8, (ts % 60) as u8);
        let c = by.entry((key, minute)).or_insert(KeyCount {
            key,
            minute,
            count: 0,
            min_sec: sec,
            max_sec: sec,
        });
        c.count += 1;
        c.min_sec = c.min_sec.min(sec);
        c.max_sec = c.max_sec.max(sec);
    }
    by.into_values().collect()
}

/// A file's per-(key, minute) counts in (key, minute) order and, from
/// format version 6, each row's second in file order (empty before).
#[derive(Debug, Default)]
pub struct FileCounts {
    pub counts: Vec<KeyCount>,
    pub seconds: Vec<u8>,
}

impl std::ops::Deref for FileCounts {
    type Target = [KeyCount];
    fn deref(&self) -> &[KeyCount] {
        &self.counts
    }
}

impl FileCounts {
    /// Heap bytes held (what the block cache counts).
    pub(super) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<KeyCount>() + self.seconds.capacity() + 64
    }
}

impl CompactSegment {
    /// The file's per-(key, minute) counts, in (key, minute) order
    /// (`system_logs` only): held in memory for files without a counts
    /// section; else from the block cache, or decoded again from the
    /// directory and cached.
    pub fn counts(&self) -> Result<Arc<FileCounts>> {
        if let Some(c) = &self.resident {
            return Ok(c.clone());
        }
        if !is_log_codec(self.codec) {
            return Ok(Arc::default());
        }
        let key = (self.uid, COUNTS, false);
        if let Some(Cached::Counts(c)) = self.cache.get(key) {
            return Ok(c);
        }
        let c = Arc::new(self.read_counts()?);
        self.cache.put(key, Cached::Counts(c.clone()));
        Ok(c)
    }

    /// The counts if they are at hand (in memory or in the cache), without
    /// reading anything.
    pub fn cached_counts(&self) -> Option<Arc<FileCounts>> {
        self.resident
            .clone()
            .or_else(|| match self.cache.get((self.uid, COUNTS, false)) {
                Some(Cached::Counts(c)) => Some(c),
                _ => None,
            })
    }

    /// The counts and seconds sections, read again from the directory
    /// (checked as at open; the names of its dictionary are not kept).
    fn read_counts(&self) -> Result<FileCounts> {
        let at = self.info.dir_offset;
        let bad = |why: String| Error::corrupt(self.path(), at, format!("bad directory: {why}"));
        let dir = directory_bytes(self.path(), self.map.get(), &self.info)?;
        let empty: Arc<str> = Arc::from("");
        let mut names = |keys: &[(&str, &str)]| vec![(empty.clone(), empty.clone()); keys.len()];
        let (_, _, _, counts, seconds) =
            parse_directory(&dir, &self.info, &self.header, &mut names)
                .map_err(|w| bad(w.into()))?;
        let counts = counts.unwrap_or_default();
        let seconds = match seconds {
            Some(raw) => decode_seconds(raw, &counts).map_err(|w| bad(w.into()))?,
            None => Vec::new(),
        };
        Ok(FileCounts { counts, seconds })
    }

    /// Rows of `run` with a timestamp in `lo..hi`: (rows, least, greatest
    /// timestamp), from the seconds section when the file's counts are at
    /// hand and it has one; `None` otherwise (the caller reads the heads).
    pub fn count_in(&self, run: &Run, lo: u64, hi: u64) -> Option<(u32, u32, u32)> {
        let fc = self.cached_counts()?;
        let secs = fc
            .seconds
            .get(run.first_row as usize..(run.first_row + run.rows) as usize)?;
        let base = run.min_ts - run.min_ts % 60;
        let (mut n, mut min, mut max) = (0u32, u32::MAX, 0u32);
        for &s in secs {
            let ts = base + s as u32;
            if lo <= ts as u64 && (ts as u64) < hi {
                n += 1;
                min = min.min(ts);
                max = max.max(ts);
            }
        }
        Some((n, min, max))
    }

    /// The counts of dictionary key `k` (its (key, minute)s in minute
    /// order) into `out`: from the hour's counts when they are cached or
    /// the key has many rows, else from its own rows' block heads (a file in
    /// key order holds them together: a block or a few, instead of
    /// decoding the whole hour's counts).
    pub fn key_counts(&self, k: usize, out: &mut Vec<KeyCount>) -> Result<()> {
        out.clear();
        let Some(t) = self.totals.get(k).copied() else {
            return Ok(());
        };
        let cached = self.cached_counts();
        if cached.is_none() && self.codec == CODEC_LOG_KEYED && t.rows <= HEAD_ROWS {
            let key = k as u32;
            self.scan_rows(t.first_row, t.rows, |_, ts, _, _| {
                let (minute, sec) = (((ts / 60) % 60) as u8, (ts % 60) as u8);
                match out.last_mut() {
                    Some(c) if c.minute == minute => {
                        c.count += 1;
                        c.min_sec = c.min_sec.min(sec);
                        c.max_sec = c.max_sec.max(sec);
                    }
                    _ => out.push(KeyCount {
                        key,
                        minute,
                        count: 1,
                        min_sec: sec,
                        max_sec: sec,
                    }),
                }
            })?;
            return Ok(());
        }
        let all = match cached {
            Some(c) => c,
            None => self.counts()?,
        };
        out.extend_from_slice(of_key(&self.totals, &all, k));
        Ok(())
    }

    /// The runs of rows of the (key, minute)s whose key passes `want` (an
    /// index into [`Self::keys`]) and whose seconds meet `lo..hi`, from the
    /// counts of a file in key order (codec 3); `None` for files in time
    /// order. Keys whose rows all lie outside `lo..hi` are skipped by their
    /// totals; a few wanted keys are read key by key ([`Self::key_counts`]).
    pub fn runs(&self, lo: u64, hi: u64, want: impl Fn(u32) -> bool) -> Result<Option<Vec<Run>>> {
        if self.codec != CODEC_LOG_KEYED {
            return Ok(None);
        }
        let keys: Vec<usize> = (self.totals.iter().enumerate())
            .filter(|(_, t)| t.rows > 0 && (t.max_ts as u64) >= lo && (t.min_ts as u64) < hi)
            .filter(|(k, _)| want(*k as u32))
            .map(|(k, _)| k)
            .collect();
        let all = match keys.len() {
            0 => return Ok(Some(Vec::new())),
            n if n <= FEW_KEYS => None,
            _ => Some(self.counts()?),
        };
        let hour_start = self.header.hour * 3600;
        let (mut out, mut mine) = (Vec::new(), Vec::new());
        for k in keys {
            let counts = match &all {
                Some(all) => of_key(&self.totals, all, k),
                None => {
                    self.key_counts(k, &mut mine)?;
                    &mine[..]
                }
            };
            let mut row = self.totals[k].first_row;
            for c in counts {
                let minute = hour_start + c.minute as u32 * 60;
                let (min_ts, max_ts) = (minute + c.min_sec as u32, minute + c.max_sec as u32);
                if max_ts as u64 >= lo && (min_ts as u64) < hi {
                    out.push(Run {
                        first_row: row,
                        rows: c.count,
                        min_ts,
                        max_ts,
                        key: k as u32,
                    });
                }
                row += c.count;
            }
        }
        Ok(Some(out))
    }
}
