//! What the alert engine reads: for every (service, severity) with an active
//! threshold, its per-minute counts over a few recent minutes.

use rustc_hash::FxHashMap as HashMap;

use crate::error::Result;
use crate::keys::Keys;
use crate::state::State;

use super::{visit, Grain, KeyFilter};
use logpulse_model::query::KeyMinutes;

/// The counts of the `minutes` minutes from `first_minute` (Unix seconds,
/// a minute start) of every key with an active threshold and at least one
/// row ever; keys without a row in the range have all-zero counts.
pub fn threshold_minutes(
    st: &State,
    keys: &Keys,
    first_minute: u32,
    minutes: u32,
) -> Result<Vec<KeyMinutes>> {
    let mut index: HashMap<u32, usize> = HashMap::default();
    let mut out: Vec<KeyMinutes> = Vec::new();
    for (row, id) in st.thresholds.rows_with_ids().filter(|(r, _)| r.active == 1) {
        let key = id.get().or_else(|| {
            let key = keys.get(&row.service, &row.severity)?;
            id.set(key);
            Some(key)
        });
        if let Some(key) = key {
            let (s, v) = keys.name(key);
            index.insert(key, out.len());
            out.push(KeyMinutes {
                service: s.clone(),
                severity: v.clone(),
                threshold_per_minute: row.threshold_per_minute,
                counts: vec![0; minutes as usize],
            });
        }
    }
    if out.is_empty() || minutes == 0 {
        return Ok(out);
    }
    let kf = KeyFilter::of(keys, index.keys().copied().collect());
    let start = first_minute as u64 / 60 * 60;
    let end = start + minutes as u64 * 60;
    visit(st, &kf, start, end, Grain::Minute, |p| {
        let i = ((p.min_ts as u64 - start) / 60) as usize;
        if let (Some(&k), true) = (index.get(&p.key), i < minutes as usize) {
            out[k].counts[i] += p.count;
        }
    })?;
    Ok(out)
}
