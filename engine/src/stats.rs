//! In-memory per-minute counts of `system_logs` per (service, severity) key,
//! the hot copy of the sled index that queries read.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

/// Rows of one key in one minute, with the first and last second seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinuteStat {
    pub count: u32,
    pub min_sec: u8,
    pub max_sec: u8,
}

impl MinuteStat {
    fn add(&mut self, sec: u8) {
        if self.count == 0 {
            self.min_sec = sec;
            self.max_sec = sec;
        } else {
            self.min_sec = self.min_sec.min(sec);
            self.max_sec = self.max_sec.max(sec);
        }
        self.count += 1;
    }
}

/// One key's rows in one hour.
#[derive(Clone, Debug)]
pub struct KeyHour {
    pub count: u64,
    pub min_ts: u32,
    pub max_ts: u32,
    pub minutes: [MinuteStat; 60],
}

impl Default for KeyHour {
    fn default() -> Self {
        KeyHour {
            count: 0,
            min_ts: u32::MAX,
            max_ts: 0,
            minutes: [MinuteStat::default(); 60],
        }
    }
}

/// Keys → stats, for one hour.
pub type HourStats = HashMap<u32, Box<KeyHour>>;

/// Per-hour, per-key, per-minute counts.
#[derive(Default, Debug, Clone)]
pub struct LogStats {
    hours: BTreeMap<u32, HourStats>,
}

impl LogStats {
    /// Counts one row; returns its minute number (Unix seconds / 60).
    pub fn add(&mut self, ts: u32, key: u32) -> u32 {
        let kh = self
            .hours
            .entry(ts / 3600)
            .or_default()
            .entry(key)
            .or_default();
        kh.count += 1;
        kh.min_ts = kh.min_ts.min(ts);
        kh.max_ts = kh.max_ts.max(ts);
        kh.minutes[((ts / 60) % 60) as usize].add((ts % 60) as u8);
        ts / 60
    }

    pub fn hour(&self, hour: u32) -> Option<&HourStats> {
        self.hours.get(&hour)
    }

    /// Hours holding rows within `first..=last`, newest first.
    pub fn hours_desc(&self, first: u32, last: u32) -> impl Iterator<Item = (u32, &HourStats)> {
        self.hours.range(first..=last).rev().map(|(h, s)| (*h, s))
    }

    /// Hours holding rows within `first..=last`, oldest first.
    pub fn hours_asc(&self, first: u32, last: u32) -> impl Iterator<Item = (u32, &HourStats)> {
        self.hours.range(first..=last).map(|(h, s)| (*h, s))
    }

    /// The 60 minute counts of a key in an hour.
    pub fn hour_minutes(&self, hour: u32, key: u32) -> [MinuteStat; 60] {
        self.hours
            .get(&hour)
            .and_then(|h| h.get(&key))
            .map(|k| k.minutes)
            .unwrap_or([MinuteStat::default(); 60])
    }

    pub fn minute(&self, minute: u32, key: u32) -> MinuteStat {
        self.hours
            .get(&(minute / 60))
            .and_then(|h| h.get(&key))
            .map(|k| k.minutes[(minute % 60) as usize])
            .unwrap_or_default()
    }

    pub fn remove_hour(&mut self, hour: u32) {
        self.hours.remove(&hour);
    }

    pub fn clear(&mut self) {
        self.hours.clear();
    }

    /// Every (hour, key, stats).
    pub fn all_hours(&self) -> impl Iterator<Item = (u32, u32, &KeyHour)> + '_ {
        self.hours
            .iter()
            .flat_map(|(h, keys)| keys.iter().map(move |(k, kh)| (*h, *k, &**kh)))
    }

    /// Every non-empty (minute, key, stat), for index checks.
    pub fn all_minutes(&self) -> impl Iterator<Item = (u32, u32, MinuteStat)> + '_ {
        self.hours.iter().flat_map(|(h, keys)| {
            keys.iter().flat_map(move |(k, kh)| {
                kh.minutes
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.count > 0)
                    .map(move |(i, m)| (h * 60 + i as u32, *k, *m))
            })
        })
    }

    pub fn total_rows(&self) -> u64 {
        self.hours
            .values()
            .flat_map(|k| k.values())
            .map(|k| k.count)
            .sum()
    }
}
