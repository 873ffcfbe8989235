//! `log_anomaly_thresholds` as a ReplacingMergeTree keyed by (service,
//! severity) with version `updated_at`: the row in force per key is the one
//! with the greatest `updated_at`, ties going to the one ingested last.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::row::ThresholdRow;

/// The engine's id of a threshold's (service, severity) once looked up
/// (0: not yet). Ids only grow and never change while the engine runs, so a
/// lookup made once stays right; a query watching thousands of keys is
/// spared a string lookup per key.
#[derive(Default, Debug)]
pub struct KeyIdCache(AtomicU32);

impl KeyIdCache {
    pub fn get(&self) -> Option<u32> {
        Some(self.0.load(Ordering::Relaxed)).filter(|id| *id != 0)
    }

    pub fn set(&self, id: u32) {
        self.0.store(id, Ordering::Relaxed);
    }
}

impl Clone for KeyIdCache {
    fn clone(&self) -> Self {
        KeyIdCache(AtomicU32::new(self.0.load(Ordering::Relaxed)))
    }
}

#[derive(Default, Debug, Clone)]
pub struct Thresholds {
    in_force: BTreeMap<(String, String), ((ThresholdRow, u64), KeyIdCache)>,
}

impl Thresholds {
    /// Offers a row ingested with `seq`; keeps it if it supersedes the
    /// current one, and says whether it did.
    pub fn apply(&mut self, row: ThresholdRow, seq: u64) -> bool {
        let key = (row.service.clone(), row.severity.clone());
        match self.in_force.get_mut(&key) {
            Some(((cur, cur_seq), _)) if (cur.updated_at, *cur_seq) > (row.updated_at, seq) => {
                false
            }
            Some((cur, _)) => {
                *cur = (row, seq);
                true
            }
            None => {
                self.in_force
                    .insert(key, ((row, seq), KeyIdCache::default()));
                true
            }
        }
    }

    /// The active threshold of a key, if any.
    pub fn active(&self, service: &str, severity: &str) -> Option<f64> {
        self.in_force
            .get(&(service.to_string(), severity.to_string()))
            .filter(|((r, _), _)| r.active == 1)
            .map(|((r, _), _)| r.threshold_per_minute)
    }

    /// Every row in force (active or not), by key.
    pub fn rows(&self) -> impl Iterator<Item = &(ThresholdRow, u64)> {
        self.in_force.values().map(|(r, _)| r)
    }

    /// [`Self::rows`], each with the cache of its key's id.
    pub fn rows_with_ids(&self) -> impl Iterator<Item = (&ThresholdRow, &KeyIdCache)> {
        self.in_force.values().map(|((r, _), id)| (r, id))
    }

    pub fn clear(&mut self) {
        self.in_force.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(updated_at: u32, threshold: f64, active: u8) -> ThresholdRow {
        ThresholdRow {
            service: "a".into(),
            severity: "ERROR".into(),
            threshold_per_minute: threshold,
            active,
            updated_at,
        }
    }

    #[test]
    fn greatest_updated_at_then_last_ingested_wins() {
        let mut t = Thresholds::default();
        t.apply(row(10, 1.0, 1), 1);
        t.apply(row(5, 2.0, 1), 2);
        assert_eq!(t.active("a", "ERROR"), Some(1.0));
        t.apply(row(10, 3.0, 1), 3);
        assert_eq!(t.active("a", "ERROR"), Some(3.0));
        t.apply(row(11, 4.0, 0), 4);
        assert_eq!(t.active("a", "ERROR"), None);
    }
}
