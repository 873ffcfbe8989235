//! In-memory per-minute counts of `system_logs` per (service, severity)
//! key, what the pipes answer from without reading rows.
//!
//! Cost: one [`KeyHour`] (48 bytes with its map slot) per (hour, key) that
//! holds rows, plus 8 bytes per non-empty (hour, key, minute) beyond the
//! first two of a key-hour, which are stored inline. Both are bounded by the
//! rows counted: a key with one row in an hour costs one `KeyHour`, never a
//! 60-slot array. These are the counts of rows in hot segments, counted as
//! rows are published (and at open); a compact file's rows are counted by
//! the file itself (`segment::compact::KeyTotal`, its counts section read
//! on demand), and `query::hours` reads both.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;

/// Rows of one key in one minute, with the first and last second seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinuteStat {
    pub count: u32,
    pub min_sec: u8,
    pub max_sec: u8,
}

/// A non-empty minute of a key-hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MinuteSlot {
    minute: u8,
    min_sec: u8,
    max_sec: u8,
    count: u32,
}

/// One key's rows in one hour: totals and the non-empty minutes, in order.
#[derive(Clone, Debug)]
pub struct KeyHour {
    pub count: u64,
    pub min_ts: u32,
    pub max_ts: u32,
    minutes: SmallVec<[MinuteSlot; 2]>,
}

impl Default for KeyHour {
    fn default() -> Self {
        KeyHour {
            count: 0,
            min_ts: u32::MAX,
            max_ts: 0,
            minutes: SmallVec::new(),
        }
    }
}

impl KeyHour {
    /// Adds `count` rows of minute `minute` (of this hour) seen between
    /// seconds `min_sec` and `max_sec`; `hour_start` is the hour's first second.
    fn add(&mut self, hour_start: u32, minute: u8, count: u32, min_sec: u8, max_sec: u8) {
        self.count += count as u64;
        let base = hour_start + minute as u32 * 60;
        self.min_ts = self.min_ts.min(base + min_sec as u32);
        self.max_ts = self.max_ts.max(base + max_sec as u32);
        match self.minutes.binary_search_by_key(&minute, |m| m.minute) {
            Ok(i) => {
                let m = &mut self.minutes[i];
                m.count += count;
                m.min_sec = m.min_sec.min(min_sec);
                m.max_sec = m.max_sec.max(max_sec);
            }
            Err(i) => self.minutes.insert(
                i,
                MinuteSlot {
                    minute,
                    min_sec,
                    max_sec,
                    count,
                },
            ),
        }
    }

    /// The stat of minute `minute` of the hour (0..60).
    pub fn minute(&self, minute: u32) -> MinuteStat {
        match self
            .minutes
            .binary_search_by_key(&(minute as u8), |m| m.minute)
        {
            Ok(i) => {
                let m = self.minutes[i];
                MinuteStat {
                    count: m.count,
                    min_sec: m.min_sec,
                    max_sec: m.max_sec,
                }
            }
            Err(_) => MinuteStat::default(),
        }
    }

    /// The non-empty minutes (minute of the hour, stat), in order.
    pub fn minutes(&self) -> impl Iterator<Item = (u32, MinuteStat)> + '_ {
        self.minutes.iter().map(|m| {
            (
                m.minute as u32,
                MinuteStat {
                    count: m.count,
                    min_sec: m.min_sec,
                    max_sec: m.max_sec,
                },
            )
        })
    }
}

/// Keys → stats, for one hour.
pub type HourStats = HashMap<u32, KeyHour>;

/// Per-hour, per-key, per-minute counts.
#[derive(Default, Debug, Clone)]
pub struct LogStats {
    hours: BTreeMap<u32, HourStats>,
}

impl LogStats {
    /// Counts one row; returns its minute number (Unix seconds / 60).
    pub fn add(&mut self, ts: u32, key: u32) -> u32 {
        let sec = (ts % 60) as u8;
        self.add_minute(ts / 60, key, 1, sec, sec);
        ts / 60
    }

    /// Counts `count` rows of one key in minute `minute` (Unix seconds /
    /// 60), seen between seconds `min_sec` and `max_sec` of it.
    pub fn add_minute(&mut self, minute: u32, key: u32, count: u32, min_sec: u8, max_sec: u8) {
        let hour = minute / 60;
        self.hours
            .entry(hour)
            .or_default()
            .entry(key)
            .or_default()
            .add(hour * 3600, (minute % 60) as u8, count, min_sec, max_sec);
    }

    pub fn hour(&self, hour: u32) -> Option<&HourStats> {
        self.hours.get(&hour)
    }

    /// Hours holding rows within `first..=last`, oldest first.
    pub fn hours_asc(&self, first: u32, last: u32) -> impl Iterator<Item = (u32, &HourStats)> {
        self.hours.range(first..=last).map(|(h, s)| (*h, s))
    }

    pub fn remove_hour(&mut self, hour: u32) {
        self.hours.remove(&hour);
    }

    /// Counts hour `hour` again from its rows `(ts, key)` (what is left of
    /// it in hot segments once some of its rows moved into a compact file).
    pub fn recount_hour(&mut self, hour: u32, rows: impl Iterator<Item = (u32, u32)>) {
        self.hours.remove(&hour);
        for (ts, key) in rows {
            self.add(ts, key);
        }
    }

    pub fn clear(&mut self) {
        self.hours.clear();
    }

    /// Every non-empty (minute, key, stat), for checks against a recount.
    pub fn all_minutes(&self) -> impl Iterator<Item = (u32, u32, MinuteStat)> + '_ {
        self.hours.iter().flat_map(|(h, keys)| {
            keys.iter()
                .flat_map(move |(k, kh)| kh.minutes().map(move |(i, m)| (h * 60 + i, *k, m)))
        })
    }

    pub fn total_rows(&self) -> u64 {
        self.hours
            .values()
            .flat_map(|k| k.values())
            .map(|k| k.count)
            .sum()
    }

    /// (hours, key-hours, non-empty key-minutes, approximate heap bytes),
    /// for metrics.
    pub fn footprint(&self) -> (u64, u64, u64, u64) {
        let mut key_hours = 0u64;
        let mut minutes = 0u64;
        let mut bytes = 0u64;
        for h in self.hours.values() {
            key_hours += h.len() as u64;
            bytes += h.capacity() as u64 * (std::mem::size_of::<(u32, KeyHour)>() as u64 + 1);
            for kh in h.values() {
                minutes += kh.minutes.len() as u64;
                if kh.minutes.spilled() {
                    bytes += kh.minutes.capacity() as u64 * 8;
                }
            }
        }
        (self.hours.len() as u64, key_hours, minutes, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_minutes_count_like_an_array() {
        let mut s = LogStats::default();
        let hour = 470_000u32;
        let mut naive = [[0u32; 60]; 3];
        for i in 0..5000u32 {
            let ts = hour * 3600 + (i * 7919) % 3600;
            let key = 1 + i % 3;
            s.add(ts, key);
            naive[(key - 1) as usize][((ts / 60) % 60) as usize] += 1;
        }
        for key in 1..=3u32 {
            let kh = &s.hour(hour).unwrap()[&key];
            for m in 0..60 {
                assert_eq!(kh.minute(m).count, naive[(key - 1) as usize][m as usize]);
            }
            assert_eq!(
                kh.count,
                naive[(key - 1) as usize].iter().sum::<u32>() as u64
            );
        }
        assert_eq!(s.total_rows(), 5000);
        assert_eq!(s.all_minutes().map(|m| m.2.count as u64).sum::<u64>(), 5000);
    }
}
