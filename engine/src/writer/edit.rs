//! The one place where the writer changes what readers see. Every change to
//! the published state — a group of batches published, an hour replaced by
//! its compact segment, old hours dropped, a data source truncated — is an
//! [`Edit`], applied here under the state's write lock together with the
//! writer's segment metadata and the index delta it implies (as an LSM
//! version edit is). What happens to files (unlinks, fsyncs, `seq-floor`)
//! stays with the callers, before or after.

use std::path::PathBuf;
use std::time::Instant;

use rustc_hash::FxHashSet;

use super::{Writer, Written};
use crate::index::SegmentMeta;
use crate::recovery::segment_meta;
use crate::row::DataSource;
use crate::segment::{Entry, Segment, SegmentId};
use crate::state::State;

/// A change to the published state.
pub(crate) enum Edit<'a> {
    /// Written batches become visible, all at once.
    Publish(&'a [&'a Written]),
    /// A compact segment takes the place of the segments of its hour it was
    /// built from.
    ReplaceHour {
        ds: DataSource,
        inputs: &'a [SegmentId],
        output: Segment,
    },
    /// Every segment of an hour before `before_hour` goes, but the
    /// `log_anomaly_thresholds` hours that hold a row in force (dropping
    /// those would change which thresholds apply), and the counts of those
    /// hours with them.
    DropHours { before_hour: u32 },
    /// Every segment of a data source goes, and what it summarised.
    Truncate { ds: DataSource },
}

/// A segment an edit took out of the state.
#[derive(Clone)]
pub(crate) struct Removed {
    pub ds: DataSource,
    pub id: SegmentId,
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

impl Writer {
    /// Applies `edit` to the state, the segment metadata and the pending
    /// index update; returns the segments it removed (their files are the
    /// caller's to unlink).
    pub(super) fn apply(&mut self, edit: Edit) -> Vec<Removed> {
        let shared = self.shared.clone();
        match edit {
            Edit::Publish(written) => {
                let mut hour_writes = shared.hour_writes.lock();
                let mut st = shared.state.write();
                let touched = self.publish_rows(&mut st, written);
                drop(st);
                let now = Instant::now();
                for k in touched {
                    hour_writes.insert((k.0, k.1.hour), now);
                    self.pending
                        .segments
                        .insert((k.0.id(), k.1), self.metas[&k].clone());
                }
                self.pending.watermark = self.next_seq - 1;
                shared
                    .counters
                    .last_seq
                    .store(self.next_seq - 1, std::sync::atomic::Ordering::Relaxed);
                Vec::new()
            }
            Edit::ReplaceHour { ds, inputs, output } => {
                let (id, meta) = (output.id, segment_meta(&output));
                let mut removed = Vec::new();
                {
                    let mut st = shared.state.write();
                    let table = st.table_mut(ds);
                    for input in inputs {
                        if let Some(seg) = table.segments.remove(input) {
                            removed.push(removed_of(ds, seg));
                        }
                    }
                    table.segments.insert(id, output);
                    if ds == DataSource::SystemLogs {
                        // The compact file counts its rows itself; the
                        // hour's hot counts are what is still hot.
                        let hot: Vec<Entry> = (st.table(ds).hour(id.hour))
                            .filter(|s| s.compact.is_none())
                            .flat_map(|s| s.entries.iter().copied())
                            .collect();
                        st.log_stats
                            .recount_hour(id.hour, hot.iter().map(|e| (e.ts, e.key)));
                    }
                }
                self.forget(&removed);
                self.metas.insert((ds, id), meta.clone());
                self.pending.segments.insert((ds.id(), id), meta);
                removed
            }
            Edit::DropHours { before_hour } => {
                let mut st = shared.state.write();
                let in_force: Vec<u32> = st
                    .thresholds
                    .rows()
                    .map(|(r, _)| r.updated_at / 3600)
                    .collect();
                let mut removed = Vec::new();
                for ds in DataSource::ALL {
                    let table = st.table_mut(ds);
                    let ids: Vec<SegmentId> = table
                        .segments
                        .keys()
                        .filter(|id| id.hour < before_hour)
                        .filter(|id| ds != DataSource::Thresholds || !in_force.contains(&id.hour))
                        .copied()
                        .collect();
                    for id in ids {
                        let seg = table.segments.remove(&id).expect("listed above");
                        table.rows -= seg.rows();
                        removed.push(removed_of(ds, seg));
                    }
                }
                if let Some(last) = before_hour.checked_sub(1) {
                    let hours: Vec<u32> = st.log_stats.hours_asc(0, last).map(|(h, _)| h).collect();
                    for h in hours {
                        st.log_stats.remove_hour(h);
                    }
                }
                drop(st);
                self.forget(&removed);
                removed
            }
            Edit::Truncate { ds } => {
                let removed: Vec<Removed> = {
                    let mut st = shared.state.write();
                    let table = st.table_mut(ds);
                    table.rows = 0;
                    let segs = std::mem::take(&mut table.segments);
                    match ds {
                        DataSource::SystemLogs => st.log_stats.clear(),
                        DataSource::Thresholds => st.thresholds.clear(),
                        _ => {}
                    }
                    segs.into_values().map(|s| removed_of(ds, s)).collect()
                };
                self.forget(&removed);
                // Segments written since the last index update, and gone
                // before it: no index key to remove, no metadata to keep.
                self.metas.retain(|(d, _), _| *d != ds);
                self.pending.segments.retain(|(d, _), _| *d != ds.id());
                if ds == DataSource::Thresholds {
                    self.pending.thresholds.clear();
                    self.pending.clear_thresholds = true;
                }
                removed
            }
        }
    }

    /// Takes removed segments out of the metadata, the pending index update
    /// and the append handles.
    fn forget(&mut self, removed: &[Removed]) {
        for r in removed {
            self.metas.remove(&(r.ds, r.id));
            self.pending.segments.remove(&(r.ds.id(), r.id));
            self.pending.dropped_segments.push((r.ds.id(), r.id));
            self.open.remove(&(r.ds, r.id.hour));
        }
    }

    /// The rows of written batches into the state (segments, counts,
    /// thresholds in force) and the writer's segment metadata; returns the
    /// segments they touched.
    fn publish_rows(
        &mut self,
        st: &mut State,
        written: &[&Written],
    ) -> FxHashSet<(DataSource, SegmentId)> {
        let mut touched = FxHashSet::default();
        let State {
            tables,
            log_stats,
            thresholds,
        } = st;
        for w in written {
            // Rows of one segment are contiguous: handle them as runs.
            for run in w.rows.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
                let (ds, id) = (run[0].0, run[0].1);
                let (path, map, end) = w.file_of(ds, id);
                let table = tables.get_mut(&ds).expect("every data source has a table");
                let seg = table.segments.entry(id).or_insert_with(|| Segment {
                    id,
                    path: path.clone(),
                    map: map.clone(),
                    entries: Vec::new(),
                    appendable: true,
                    compact: None,
                    key_ids: Vec::new(),
                    by_global: Vec::new(),
                });
                seg.map = map.clone();
                seg.entries.extend(run.iter().map(|r| r.2));
                table.rows += run.len() as u64;
                touched.insert((ds, id));
                let meta = self.metas.entry((ds, id)).or_insert_with(|| SegmentMeta {
                    min_ts: u32::MAX,
                    min_seq: u64::MAX,
                    ..Default::default()
                });
                meta.rows += run.len() as u64;
                meta.bytes = end as u64;
                for (_, _, e, seq) in run {
                    meta.min_ts = meta.min_ts.min(e.ts);
                    meta.max_ts = meta.max_ts.max(e.ts);
                    meta.min_seq = meta.min_seq.min(*seq);
                    meta.max_seq = meta.max_seq.max(*seq);
                    if ds == DataSource::SystemLogs {
                        log_stats.add(e.ts, e.key);
                    }
                }
            }
            for (t, seq) in &w.thresholds {
                // The index stores the last row it is given per key: give
                // it only rows that are in force.
                if thresholds.apply(t.clone(), *seq) {
                    self.pending.thresholds.push((t.clone(), *seq));
                }
            }
        }
        touched
    }
}

fn removed_of(ds: DataSource, seg: Segment) -> Removed {
    Removed {
        ds,
        id: seg.id,
        rows: seg.rows(),
        bytes: seg.bytes(),
        path: seg.path,
    }
}
