//! Offline maintenance of a data dir, for `logpulse-compact`: merging the
//! segments of an hour into one compact segment, retention, and checking
//! every file without changing anything.
//!
//! Building a compact file runs on the caller's thread (several hours can be
//! built in parallel); installing it, like every change to segments, runs on
//! the writer thread (`writer/maintenance.rs`). The crash-safety protocol is
//! in docs/format.md, "Compaction".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};

use crate::engine::{Engine, Shared};
use crate::error::{Error, Result};
use crate::recovery::records::scan;
use crate::recovery::{load_compact_segment, COMPACTING_SUFFIX};
use crate::row::DataSource;
use crate::segment::compact::{peek_info, BlockRow, CompactSegment, CompactWriter, WriteOptions};
use crate::segment::format::{frame_body, read_frame, FrameRead};
use crate::segment::mmap::SegmentMap;
use crate::segment::{Entry, SegmentId};
use crate::writer::maintenance::{drop_hours_msg, install_msg, Install};
use crate::writer::WriterMsg;

pub use crate::writer::maintenance::Dropped;

/// Settings of [`Engine::compact_hour`].
#[derive(Clone, Copy, Debug)]
pub struct CompactOptions {
    pub write: WriteOptions,
    /// Rows per compressed block.
    pub block_rows: usize,
    /// Pause between the steps of the file swap, to let crash tests kill the
    /// process in the middle of it. Zero in normal use.
    pub step_pause: Duration,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            write: WriteOptions::default(),
            block_rows: 512,
            step_pause: Duration::ZERO,
        }
    }
}

/// One segment as listed by [`Engine::segment_infos`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub ds: DataSource,
    pub id: SegmentId,
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub compact: bool,
}

/// What [`Engine::compact_hour`] did.
#[derive(Clone, Debug)]
pub struct Compacted {
    pub inputs: Vec<SegmentInfo>,
    pub output: SegmentInfo,
}

/// An input segment's rows, as seen when the build started.
struct Input {
    id: SegmentId,
    path: PathBuf,
    map: Arc<SegmentMap>,
    compact: Option<Arc<CompactSegment>>,
    /// Rows of a hot input (a compact one is read through its heads).
    entries: Vec<Entry>,
    rows: usize,
}

impl Engine {
    /// Every segment of every data source, in (data source, hour, file) order.
    pub fn segment_infos(&self) -> Vec<SegmentInfo> {
        segment_infos(&self.shared)
    }

    /// Merges the segments of one (data source, hour) into one compact
    /// segment: rows sorted by (timestamp, seq), every input CRC checked,
    /// zstd blocks. `None` when there is nothing to do (no segment, or one
    /// compact segment already). Appends to the hour while it is being built
    /// make the install fail (nothing changes; a later pass tries again).
    pub fn compact_hour(
        &self,
        ds: DataSource,
        hour: u32,
        opts: &CompactOptions,
    ) -> Result<Option<Compacted>> {
        compact_hour(&self.shared, &self.tx, ds, hour, opts)
    }

    /// Retention: removes every segment of an hour before `before_hour`, of
    /// every data source, except `log_anomaly_thresholds` hours holding a
    /// row in force. Minute counts and index entries go with them.
    pub fn drop_hours_before(&self, before_hour: u32) -> Result<Dropped> {
        drop_hours_before(&self.tx, before_hour)
    }
}

/// [`Engine::compact_hour`], for the engine and its lifecycle thread.
pub(crate) fn compact_hour(
    shared: &Shared,
    tx: &Sender<WriterMsg>,
    ds: DataSource,
    hour: u32,
    opts: &CompactOptions,
) -> Result<Option<Compacted>> {
    let (dir, inputs) = {
        let st = shared.state.read();
        let table = st.table(ds);
        let mut inputs: Vec<Input> = table
            .hour(hour)
            .map(|s| Input {
                id: s.id,
                path: s.path.clone(),
                map: s.map.clone(),
                compact: s.compact.clone(),
                entries: s.entries.clone(),
                rows: s.rows() as usize,
            })
            .collect();
        inputs.sort_by_key(|i| i.id);
        (table.dir.clone(), inputs)
    };
    let names = hot_key_names(shared, &inputs);
    if inputs.is_empty() || (inputs.len() == 1 && inputs[0].compact.is_some()) {
        return Ok(None);
    }
    let first = inputs[0].id.file_no;
    let last = inputs[inputs.len() - 1].id.file_no;
    let id = SegmentId {
        hour,
        file_no: last + 1,
    };
    let tmp = compacting_path(&id.path_in(&dir));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&tmp, e)),
    }
    let built = build(ds, hour, &inputs, &names, &tmp, id, (first, last), opts);
    if let Err(e) = built {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let before: Vec<SegmentInfo> = inputs
        .iter()
        .map(|i| SegmentInfo {
            ds,
            id: i.id,
            path: i.path.clone(),
            rows: i.rows as u64,
            bytes: i.map.committed_len() as u64,
            compact: i.compact.is_some(),
        })
        .collect();
    let name = id.path_in(&dir);
    let segment = match load_compact_segment(ds, &tmp, &name, &shared.keys, &shared.cache) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let (reply, answer) = bounded(1);
    let job = Install {
        ds,
        hour,
        inputs: inputs.iter().map(|i| (i.id, i.rows)).collect(),
        tmp,
        id,
        segment,
        step_pause: opts.step_pause,
    };
    drop(inputs);
    tx.send(install_msg(job, reply))
        .map_err(|_| Error::ShuttingDown)?;
    answer.recv().map_err(|_| Error::ShuttingDown)??;
    let output = segment_infos(shared)
        .into_iter()
        .find(|s| s.ds == ds && s.id == id)
        .ok_or_else(|| Error::Invalid("compact segment vanished after install".into()))?;
    Ok(Some(Compacted {
        inputs: before,
        output,
    }))
}

/// [`Engine::segment_infos`].
pub(crate) fn segment_infos(shared: &Shared) -> Vec<SegmentInfo> {
    let st = shared.state.read();
    let mut out = Vec::new();
    for (ds, t) in &st.tables {
        for (id, s) in &t.segments {
            out.push(SegmentInfo {
                ds: *ds,
                id: *id,
                path: s.path.clone(),
                rows: s.rows(),
                bytes: s.bytes(),
                compact: s.compact.is_some(),
            });
        }
    }
    out
}

/// [`Engine::drop_hours_before`], for the engine and its lifecycle thread.
pub(crate) fn drop_hours_before(tx: &Sender<WriterMsg>, before_hour: u32) -> Result<Dropped> {
    let (reply, answer) = bounded(1);
    tx.send(drop_hours_msg(before_hour, reply))
        .map_err(|_| Error::ShuttingDown)?;
    answer.recv().map_err(|_| Error::ShuttingDown)?
}

/// `<name>.seg.compacting`: where a compact segment is written before it
/// gets its name.
pub fn compacting_path(seg: &Path) -> PathBuf {
    let mut name = seg.as_os_str().to_os_string();
    name.push(".");
    name.push(COMPACTING_SUFFIX);
    PathBuf::from(name)
}

/// A (service, severity) by name.
type KeyName = (Arc<str>, Arc<str>);

/// The names of the keys of the hot inputs' rows (the engine's key ids are
/// not in name order; compact files are).
fn hot_key_names(shared: &Shared, inputs: &[Input]) -> HashMap<u32, KeyName> {
    let mut ids: Vec<u32> = inputs
        .iter()
        .filter(|i| i.compact.is_none())
        .flat_map(|i| i.entries.iter().map(|e| e.key))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let keys = shared.keys.read();
    ids.into_iter()
        .filter(|&id| id >= 1 && (id as usize) <= keys.len())
        .map(|id| {
            let (s, v) = keys.name(id);
            (id, (s.clone(), v.clone()))
        })
        .collect()
}

/// Every row's key as its rank in name order: the first part of the
/// compact file's sort order (all 0 for data sources without keys).
struct KeyRanks {
    /// Per input, a compact input's dictionary index → rank.
    compact: Vec<Vec<u32>>,
    /// A hot input's key id → rank.
    hot: HashMap<u32, u32>,
}

impl KeyRanks {
    fn new(inputs: &[Input], hot_names: &HashMap<u32, KeyName>) -> KeyRanks {
        let mut all: Vec<&KeyName> = hot_names.values().collect();
        for c in inputs.iter().filter_map(|i| i.compact.as_ref()) {
            all.extend(c.keys.iter());
        }
        all.sort_unstable();
        all.dedup();
        let rank = |n: &KeyName| all.binary_search(&n).unwrap_or(0) as u32;
        KeyRanks {
            compact: (inputs.iter())
                .map(|i| {
                    i.compact
                        .as_ref()
                        .map_or(Vec::new(), |c| c.keys.iter().map(rank).collect())
                })
                .collect(),
            hot: hot_names.iter().map(|(id, n)| (*id, rank(n))).collect(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    ds: DataSource,
    hour: u32,
    inputs: &[Input],
    hot_names: &HashMap<u32, KeyName>,
    tmp: &Path,
    id: SegmentId,
    replaces: (u32, u32),
    opts: &CompactOptions,
) -> Result<u64> {
    let ranks = KeyRanks::new(inputs, hot_names);
    // (key rank, ts, seq, input, entry offset); every hot frame's CRC is
    // checked here.
    let mut rows: Vec<(u32, u32, u64, u32, u32)> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if let Some(c) = &input.compact {
            let local = &ranks.compact[i];
            c.scan(|row, ts, seq, key| {
                let rank = local.get(key as usize).copied().unwrap_or(0);
                rows.push((rank, ts, seq, i as u32, row))
            })?;
            continue;
        }
        let data = input.map.committed();
        for e in &input.entries {
            let seq = match read_frame(data, e.offset as usize) {
                FrameRead::Frame(f) => f.seq,
                FrameRead::End => {
                    return Err(Error::corrupt(
                        &input.path,
                        e.offset as u64,
                        "record missing",
                    ))
                }
                FrameRead::Invalid(why) => {
                    return Err(Error::corrupt(&input.path, e.offset as u64, why))
                }
            };
            let rank = ranks.hot.get(&e.key).copied().unwrap_or(0);
            rows.push((rank, e.ts, seq, i as u32, e.offset));
        }
    }
    rows.sort_unstable_by_key(|r| (r.0, r.1, r.2));
    let mut w = CompactWriter::create(tmp, ds, hour, id.file_no, replaces, opts.write)?;
    for chunk in rows.chunks(opts.block_rows.max(1)) {
        let bodies: Vec<std::borrow::Cow<'_, [u8]>> = chunk
            .iter()
            .map(|&(_, _, _, i, off)| {
                let input = &inputs[i as usize];
                match &input.compact {
                    Some(c) => c.body(off).map(std::borrow::Cow::Owned),
                    None => Ok(std::borrow::Cow::Borrowed(frame_body(
                        input.map.committed(),
                        off as usize,
                    ))),
                }
            })
            .collect::<Result<_>>()?;
        let block: Vec<BlockRow<'_>> = chunk
            .iter()
            .zip(&bodies)
            .map(|(r, b)| BlockRow {
                ts: r.1,
                seq: r.2,
                body: b,
            })
            .collect();
        w.add_block(&block)?;
    }
    w.finish()
}

/// Lists the segment files of a data dir without changing anything (for dry
/// runs): rows of hot segments are their valid frames (recovery may still
/// drop an incomplete last batch).
pub fn survey_data_dir(data_dir: &Path) -> Result<Vec<SegmentInfo>> {
    let mut out = Vec::new();
    for ds in DataSource::ALL {
        let dir = data_dir.join(ds.name());
        if !dir.is_dir() {
            continue;
        }
        for ent in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let path = ent.map_err(|e| Error::io(&dir, e))?.path();
            if path.extension().is_none_or(|x| x != "seg") {
                continue;
            }
            let (header, compact, rows, bytes) = match peek_info(&path)? {
                Some((h, info)) => (h, true, info.rows as u64, h.synced_len),
                None => {
                    let mut rows = 0;
                    let s = scan(&path, |_, _, _| {
                        rows += 1;
                        Ok(())
                    })?;
                    (s.header, false, rows, s.valid_end)
                }
            };
            out.push(SegmentInfo {
                ds,
                id: SegmentId {
                    hour: header.hour,
                    file_no: header.file_no,
                },
                path,
                rows,
                bytes,
                compact,
            });
        }
    }
    out.sort_by_key(|a| (a.ds, a.id));
    Ok(out)
}

/// A problem found by [`verify_data_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub path: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// What [`verify_data_dir`] looked at.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub damage: Vec<Damage>,
    /// Not damage: torn tails past the synced length (recovery drops them),
    /// leftovers of an interrupted compaction (recovery finishes it).
    pub notes: Vec<String>,
}

/// Checks every segment file of a data dir without changing anything: every
/// frame CRC of hot segments (an invalid frame before `synced_len` is
/// damage, one past it a torn tail), every block of compact segments
/// decompressed and every row decoded. The caller holds the data dir lock.
pub fn verify_data_dir(data_dir: &Path) -> Result<Verified> {
    let mut out = Verified::default();
    for ds in DataSource::ALL {
        let dir = data_dir.join(ds.name());
        if !dir.is_dir() {
            continue;
        }
        let mut paths = Vec::new();
        for ent in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            paths.push(ent.map_err(|e| Error::io(&dir, e))?.path());
        }
        paths.sort();
        for p in paths {
            match p.extension().and_then(|x| x.to_str()) {
                Some("seg") => verify_file(ds, &p, &mut out),
                Some(COMPACTING_SUFFIX) => out.notes.push(format!(
                    "{}: incomplete compact segment (the next open deletes it)",
                    p.display()
                )),
                _ => {}
            }
        }
    }
    Ok(out)
}

fn verify_file(ds: DataSource, path: &Path, out: &mut Verified) {
    out.files += 1;
    out.bytes += std::fs::metadata(path).map_or(0, |m| m.len());
    let mut damage = |offset: u64, reason: String| {
        out.damage.push(Damage {
            path: path.to_path_buf(),
            offset,
            reason,
        })
    };
    let compact = match peek_info(path) {
        Ok(c) => c,
        Err(Error::Corrupt { offset, reason, .. }) => return damage(offset, reason),
        Err(e) => return damage(0, e.to_string()),
    };
    if let Some((h, _)) = compact {
        let _ = h;
        let seg = match CompactSegment::open_read_only(path) {
            Ok(s) => s,
            Err(Error::Corrupt { offset, reason, .. }) => return damage(offset, reason),
            Err(e) => return damage(0, e.to_string()),
        };
        let rows = seg.info.rows as u64;
        if let Err(e) = seg.scan(|_, _, _, _| {}) {
            return damage(0, e.to_string());
        }
        for (offset, reason) in seg.verify(ds) {
            damage(offset, reason);
        }
        out.rows += rows;
        return;
    }
    let mut rows = 0;
    let res = scan(path, |offset, _, body| {
        rows += 1;
        let bad = match ds {
            DataSource::SystemLogs => crate::row::decode_log(body).err(),
            DataSource::Thresholds => crate::row::decode_threshold(body).err(),
            _ => crate::row::decode_quarantine(body).err(),
        };
        match bad {
            Some(e) => Err(Error::corrupt(
                path,
                offset as u64,
                format!("undecodable record body: {e}"),
            )),
            None => Ok(()),
        }
    });
    out.rows += rows;
    match res {
        Ok(s) => {
            if let Some(t) = s.tail.filter(|t| t.garbage) {
                out.notes.push(format!(
                    "{}: torn tail at byte offset {} ({}), past the synced length: the next open drops it",
                    path.display(),
                    t.offset,
                    t.reason
                ));
            }
        }
        Err(Error::Corrupt { offset, reason, .. }) => damage(offset, reason),
        Err(e) => damage(0, e.to_string()),
    }
}
