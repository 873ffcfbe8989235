//! Maintenance jobs of the writer thread: installing a compact segment in
//! place of the segments it was built from, and dropping old hours
//! (retention). They run on the writer thread because it alone changes
//! segments and the published state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::edit::Edit;
use super::{Reply, Writer, WriterMsg};
use crate::durability::{remove_durable, rename_durable};
use crate::error::{Error, Result};
#[cfg(doc)]
use crate::recovery::load_compact_segment;
use crate::recovery::write_seq_floor;
use crate::row::DataSource;
use crate::segment::{Segment, SegmentId};

/// A compact segment ready under its temporary name.
pub(crate) struct Install {
    pub ds: DataSource,
    pub hour: u32,
    /// The segments (and their row counts) it was built from.
    pub inputs: Vec<(SegmentId, usize)>,
    pub tmp: PathBuf,
    pub id: SegmentId,
    /// The file loaded as it will be once renamed (see
    /// [`load_compact_segment`]).
    pub segment: Segment,
    /// Pause between the steps of the swap (crash tests).
    pub step_pause: Duration,
}

/// What retention removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// (data source, segment, rows, bytes) of every segment removed.
    pub segments: Vec<(DataSource, SegmentId, u64, u64)>,
}

impl Dropped {
    pub fn rows(&self) -> u64 {
        self.segments.iter().map(|s| s.2).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.3).sum()
    }
}

pub(crate) fn install_msg(job: Install, reply: Reply<()>) -> WriterMsg {
    WriterMsg::Maintenance {
        job: Box::new(move |w: &mut Writer| {
            let tmp = job.tmp.clone();
            let res = w.install_compact(job);
            if res.is_err() && tmp.exists() {
                let _ = std::fs::remove_file(&tmp);
            }
            let _ = reply.send(res);
        }),
    }
}

pub(crate) fn drop_hours_msg(before_hour: u32, reply: Reply<Dropped>) -> WriterMsg {
    WriterMsg::Maintenance {
        job: Box::new(move |w: &mut Writer| {
            let _ = reply.send(w.drop_hours(before_hour));
        }),
    }
}

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

impl Writer {
    /// The swap (docs/format.md, "Compaction"): the compact file, complete
    /// and fsynced under `<name>.seg.compacting`, is renamed to its `.seg`
    /// name and the directory fsynced (from here on recovery completes the
    /// swap); the state is switched under one write lock; then the inputs
    /// are unlinked and the directory fsynced.
    fn install_compact(&mut self, job: Install) -> Result<()> {
        self.sync_all()?;
        let dir = {
            let st = self.shared.state.read();
            let table = st.table(job.ds);
            let mut cur: Vec<(SegmentId, usize)> = table
                .hour(job.hour)
                .map(|s| (s.id, s.rows() as usize))
                .collect();
            cur.sort();
            if cur != job.inputs {
                return Err(Error::Invalid(format!(
                    "hour {} of {} changed while it was being compacted",
                    job.hour,
                    job.ds.name()
                )));
            }
            table.dir.clone()
        };
        self.open.remove(&(job.ds, job.hour));
        let path = job.id.path_in(&dir);
        if path.exists() {
            return Err(Error::Invalid(format!("{} exists already", path.display())));
        }
        pause(job.step_pause);
        rename_durable(&job.tmp, &path)?;
        pause(job.step_pause);
        let seg = job.segment;
        let inputs: Vec<SegmentId> = job.inputs.iter().map(|(id, _)| *id).collect();
        let removed = self.apply(Edit::ReplaceHour {
            ds: job.ds,
            inputs: &inputs,
            output: seg,
        });
        let old: Vec<PathBuf> = removed.iter().map(|r| r.path.clone()).collect();
        self.flush_index();
        remove_one_by_one(&dir, &old, job.step_pause)?;
        self.forget_checkpoints(&removed);
        Ok(())
    }

    /// Removes every segment of an hour before `before_hour`, except the
    /// `log_anomaly_thresholds` hours that hold a row in force (dropping
    /// those would change which thresholds apply).
    fn drop_hours(&mut self, before_hour: u32) -> Result<Dropped> {
        self.sync_all()?;
        let removed = self.apply(Edit::DropHours { before_hour });
        let mut dropped = Dropped::default();
        let mut files: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
        for r in removed.iter().cloned() {
            dropped.segments.push((r.ds, r.id, r.rows, r.bytes));
            let dir = r.path.parent().unwrap_or(Path::new(".")).to_path_buf();
            match files.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, paths)) => paths.push(r.path),
                None => files.push((dir, vec![r.path])),
            }
        }
        if dropped.segments.is_empty() {
            return Ok(dropped);
        }
        // Rows gone may have held the greatest seq: never hand it out again.
        write_seq_floor(&self.shared.config.data_dir, self.next_seq - 1)?;
        self.flush_index();
        for (dir, paths) in files {
            remove_durable(&dir, &paths)?;
        }
        self.forget_checkpoints(&removed);
        Ok(dropped)
    }
}

/// Unlinks the replaced segments, pausing between them (crash tests), then
/// fsyncs the directory.
fn remove_one_by_one(dir: &Path, paths: &[PathBuf], step_pause: Duration) -> Result<()> {
    if step_pause.is_zero() {
        return remove_durable(dir, paths);
    }
    for p in paths {
        remove_durable(dir, std::slice::from_ref(p))?;
        pause(step_pause);
    }
    Ok(())
}
