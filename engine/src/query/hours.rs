//! The counts of `system_logs` hour by hour, as queries read them: the hot
//! rows' counts from [`crate::stats::LogStats`], and each compact file's
//! own (its key totals in memory, its per-minute counts on demand through
//! the block cache). Every row is counted in exactly one of the two: the
//! writer recounts an hour's hot counts when its rows move into a compact
//! file.

use smallvec::SmallVec;

use super::KeyFilter;
use crate::error::Result;
use crate::row::DataSource;
use crate::segment::compact::{counts_of_key, KeyTotal};
use crate::segment::Segment;
use crate::state::State;
use crate::stats::HourStats;

/// One hour's counts.
pub(crate) struct HourCounts<'a> {
    pub hour: u32,
    hot: Option<&'a HourStats>,
    compact: SmallVec<[&'a Segment; 1]>,
}

/// The hours in `first..=last` holding `system_logs` rows, oldest first.
pub(crate) fn hours(st: &State, first: u32, last: u32) -> Vec<HourCounts<'_>> {
    let mut out: Vec<HourCounts> = st
        .log_stats
        .hours_asc(first, last)
        .map(|(hour, s)| HourCounts {
            hour,
            hot: Some(s),
            compact: SmallVec::new(),
        })
        .collect();
    let mut compact: Vec<&Segment> = st
        .table(DataSource::SystemLogs)
        .hours_desc(first, last)
        .filter(|s| s.compact.is_some())
        .collect();
    if compact.is_empty() {
        return out;
    }
    compact.reverse();
    let mut i = 0;
    for seg in compact {
        while i < out.len() && out[i].hour < seg.id.hour {
            i += 1;
        }
        if i < out.len() && out[i].hour == seg.id.hour {
            out[i].compact.push(seg);
        } else {
            out.insert(
                i,
                HourCounts {
                    hour: seg.id.hour,
                    hot: None,
                    compact: SmallVec::from_elem(seg, 1),
                },
            );
        }
    }
    out
}

/// The totals of the keys of a compact segment that pass `kf`, with their
/// dictionary index and engine key id.
fn compact_keys<'a>(
    seg: &'a Segment,
    kf: &'a KeyFilter,
) -> Box<dyn Iterator<Item = (usize, u32, &'a KeyTotal)> + 'a> {
    let Some(c) = &seg.compact else {
        return Box::new(std::iter::empty());
    };
    let totals = &c.totals;
    let at = move |k: usize| (k, seg.key_ids[k], &totals[k]);
    match kf {
        KeyFilter::Few(ids) => Box::new(
            ids.iter()
                .filter_map(move |id| seg.local_of(*id))
                .map(at)
                .filter(|(_, _, t)| t.rows > 0),
        ),
        _ => Box::new(
            (0..totals.len().min(seg.key_ids.len()))
                .map(at)
                .filter(move |(_, key, t)| t.rows > 0 && kf.matches(*key)),
        ),
    }
}

impl HourCounts<'_> {
    /// Distinct keys holding rows in the hour.
    pub fn key_count(&self) -> u64 {
        let hot = self.hot.map_or(0, |h| h.len());
        if self.compact.is_empty() {
            return hot as u64;
        }
        let mut keys: Vec<u32> = self
            .hot
            .into_iter()
            .flat_map(|h| h.keys().copied())
            .collect();
        for seg in &self.compact {
            keys.extend(compact_keys(seg, &KeyFilter::All).map(|(_, key, _)| key));
        }
        keys.sort_unstable();
        keys.dedup();
        keys.len() as u64
    }

    /// Whether any row of a key passing `kf` is in the hour.
    pub fn any(&self, kf: &KeyFilter) -> bool {
        self.hot.is_some_and(|h| kf.in_hour(h).next().is_some())
            || self
                .compact
                .iter()
                .any(|s| compact_keys(s, kf).next().is_some())
    }

    /// Calls `f(key, rows, min_ts, max_ts)` for each key's rows of the
    /// hour (a key may come more than once: hot and compact rows).
    pub fn totals(&self, kf: &KeyFilter, mut f: impl FnMut(u32, u64, u32, u32)) {
        if let Some(h) = self.hot {
            for (key, kh) in kf.in_hour(h) {
                f(*key, kh.count, kh.min_ts, kh.max_ts);
            }
        }
        for seg in &self.compact {
            for (_, key, t) in compact_keys(seg, kf) {
                f(key, t.rows as u64, t.min_ts, t.max_ts);
            }
        }
    }

    /// Calls `f(key, rows, min_ts, max_ts)` for each non-empty (key,
    /// minute) with the minute of the hour in `m_lo..m_hi`.
    pub fn minutes(
        &self,
        kf: &KeyFilter,
        m_lo: u64,
        m_hi: u64,
        mut f: impl FnMut(u32, u64, u32, u32),
    ) -> Result<()> {
        if m_lo >= m_hi {
            return Ok(());
        }
        let hs = self.hour * 3600;
        if let Some(h) = self.hot {
            for (key, kh) in kf.in_hour(h) {
                for (m, stat) in kh.minutes() {
                    if (m as u64) < m_lo || (m as u64) >= m_hi {
                        continue;
                    }
                    let base = hs + m * 60;
                    let (lo, hi) = (base + stat.min_sec as u32, base + stat.max_sec as u32);
                    f(*key, stat.count as u64, lo, hi);
                }
            }
        }
        let mut mine = Vec::new();
        for seg in &self.compact {
            let c = seg.compact.as_ref().expect("compact segments only");
            // A few keys are read key by key (their rows' heads, when the
            // hour's counts are not cached); many from the hour's counts.
            let all = match kf {
                KeyFilter::Few(_) => None,
                _ => Some(c.counts()?),
            };
            for (k, key, _) in compact_keys(seg, kf) {
                let counts = match &all {
                    Some(all) => counts_of_key(&c.totals, all, k),
                    None => {
                        c.key_counts(k, &mut mine)?;
                        &mine[..]
                    }
                };
                for m in counts {
                    if (m.minute as u64) < m_lo || (m.minute as u64) >= m_hi {
                        continue;
                    }
                    let base = hs + m.minute as u32 * 60;
                    let (lo, hi) = (base + m.min_sec as u32, base + m.max_sec as u32);
                    f(key, m.count as u64, lo, hi);
                }
            }
        }
        Ok(())
    }
}
