//! The sled index as the recovered state implies it, and its
//! reconciliation: the segments are the ground truth, so an index that
//! disagrees with them is rebuilt from them.

use std::collections::HashMap;

use tracing::{info, warn};

use crate::error::Result;
use crate::index::{Index, IndexUpdate, SegmentMeta};
use crate::keys::Keys;
use crate::row::{DataSource, ThresholdRow};
use crate::segment::compact::counts_of_key;
use crate::segment::Segment;
use crate::state::State;
use crate::stats::MinuteStat;

/// The index content that the recovered state implies.
pub fn expected_index(state: &State, watermark: u64) -> IndexUpdate {
    let mut u = IndexUpdate {
        watermark,
        clear_thresholds: true,
        ..Default::default()
    };
    u.thresholds = state.thresholds.rows().cloned().collect();
    for (ds, t) in &state.tables {
        for (id, seg) in &t.segments {
            u.segments.insert((ds.id(), *id), segment_meta(seg));
        }
    }
    u
}

pub fn segment_meta(seg: &Segment) -> SegmentMeta {
    let mut m = SegmentMeta {
        rows: seg.rows(),
        bytes: seg.bytes(),
        min_ts: u32::MAX,
        min_seq: u64::MAX,
        ..Default::default()
    };
    if let Some((min, max)) = seg.ts_range() {
        (m.min_ts, m.max_ts) = (min, max);
    }
    if let Some((min, max)) = seg.seq_range() {
        (m.min_seq, m.max_seq) = (min, max);
    }
    m
}

/// Compares the sled index with the recovered state; rebuilds it when they
/// disagree (or it was missing). Returns whether it was rebuilt.
pub fn reconcile_index(index: &Index, expected: IndexUpdate) -> Result<bool> {
    let same = index.watermark()? == expected.watermark
        && same_thresholds(index.thresholds()?, &expected.thresholds)
        && index.segments()? == expected.segments;
    if same {
        info!(
            watermark = expected.watermark,
            "index agrees with the segments"
        );
        return Ok(false);
    }
    warn!(
        watermark = expected.watermark,
        "index disagrees with the segments; rebuilding it from them"
    );
    index.clear()?;
    index.apply(&expected)?;
    index.flush()?;
    Ok(true)
}

fn same_thresholds(mut a: Vec<(ThresholdRow, u64)>, b: &[(ThresholdRow, u64)]) -> bool {
    let mut b = b.to_vec();
    let key = |x: &(ThresholdRow, u64)| (x.0.service.clone(), x.0.severity.clone());
    a.sort_by_key(key);
    b.sort_by_key(key);
    a == b
}

/// The per-minute counts by name: (minute, service, severity) → stat, of
/// hot rows and compact files together, for tests and tools.
pub fn minutes_by_name(
    state: &State,
    keys: &Keys,
) -> Result<HashMap<(u32, String, String), MinuteStat>> {
    let mut out: HashMap<(u32, String, String), MinuteStat> = HashMap::new();
    let mut add = |minute: u32, key: u32, m: MinuteStat| {
        let (s, v) = keys.name(key);
        let e = out
            .entry((minute, s.to_string(), v.to_string()))
            .or_insert(MinuteStat {
                count: 0,
                min_sec: m.min_sec,
                max_sec: m.max_sec,
            });
        e.count += m.count;
        e.min_sec = e.min_sec.min(m.min_sec);
        e.max_sec = e.max_sec.max(m.max_sec);
    };
    for (minute, key, m) in state.log_stats.all_minutes() {
        add(minute, key, m);
    }
    for seg in state.table(DataSource::SystemLogs).segments.values() {
        let Some(c) = &seg.compact else { continue };
        let counts = c.counts()?;
        for (k, key) in seg.key_ids.iter().enumerate() {
            for m in counts_of_key(&c.totals, &counts, k) {
                let stat = MinuteStat {
                    count: m.count,
                    min_sec: m.min_sec,
                    max_sec: m.max_sec,
                };
                add(seg.id.hour * 60 + m.minute as u32, *key, stat);
            }
        }
    }
    Ok(out)
}

/// Recovers the data dir's state (without opening an engine: the caller
/// holds no writer) and reconciles its index with it: true when the index
/// already agreed, false when it had to be rebuilt. For tools and tests that
/// check what a run left behind.
pub fn check_index(data_dir: &std::path::Path) -> Result<bool> {
    let mut keys = Keys::default();
    let cache = crate::segment::compact::BlockCache::new(1 << 20);
    let rec = super::recover(data_dir, &mut keys, &cache)?;
    let index = Index::open(&data_dir.join(crate::engine::INDEX_DIR), 1 << 20)?;
    let expected = expected_index(&rec.state, rec.next_seq - 1);
    Ok(!reconcile_index(&index, expected)?)
}
