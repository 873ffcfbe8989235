//! The writer thread: the only code that appends to segments. It takes
//! batches from a bounded `crossbeam-channel`, writes a group of them,
//! publishes the group to readers under one lock, fsyncs once for every
//! caller that asked for durability (group commit), and hands index updates
//! to the index thread.

use rustc_hash::FxHashMap as HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use tracing::{debug, error, warn};

use crate::durability::{fsync_dir, fsync_new_entries, test_faults, Durability};
use crate::engine::Shared;
use crate::error::{Error, Result};
use crate::index::{IndexUpdate, SegmentMeta};
use crate::recovery::write_seq_floor;
use crate::row::{decode_threshold, DataSource, ThresholdRow};
use crate::segment::format::{encode_frame, Header, FRAME_HEADER_LEN, HEADER_LEN, KIND_HOT};
use crate::segment::mmap::SegmentMap;
use crate::segment::writer::OpenSegment;
use crate::segment::{Entry, SegmentId};

mod checkpoint;
mod edit;
pub(crate) mod maintenance;

pub(crate) use checkpoint::Coverage;
use edit::Edit;

pub use logpulse_model::AppendReceipt;

/// Pause of the index thread before applying an update.
const INDEX_PAUSE: Duration = Duration::from_millis(50);

/// Close a segment's append handle after this long without writes.
const IDLE_CLOSE: Duration = Duration::from_secs(300);

/// One row ready to be framed: its encoded body is `buf[body]`.
pub(crate) struct Prepared {
    pub ds: DataSource,
    pub ts: u32,
    pub key: u32,
    pub body: Range<usize>,
}

/// The rows of one append call.
pub(crate) struct Batch {
    pub rows: Vec<Prepared>,
    pub buf: Vec<u8>,
    pub durability: Durability,
}

pub(crate) type Reply<T> = Sender<Result<T>>;

pub(crate) enum WriterMsg {
    Append {
        batch: Batch,
        reply: Reply<AppendReceipt>,
    },
    Truncate {
        ds: DataSource,
        reply: Reply<()>,
    },
    Sync {
        reply: Reply<()>,
    },
    Shutdown {
        reply: Reply<()>,
    },
    /// Compaction and retention (`maintenance.rs`): a job run on the writer
    /// thread, which answers through a sender it captured.
    Maintenance {
        job: Box<dyn FnOnce(&mut Writer) + Send>,
    },
}

/// A batch written to the maps but not yet published.
struct Written {
    receipt: AppendReceipt,
    rows: Vec<(DataSource, SegmentId, Entry, u64)>,
    thresholds: Vec<(ThresholdRow, u64)>,
    /// Each segment written to: its path, map and write position after the
    /// write. A later batch of the same group may roll the hour over to a new
    /// file, so the hour's open handle is not necessarily this file's.
    files: Vec<(DataSource, SegmentId, PathBuf, Arc<SegmentMap>, usize)>,
}

impl Written {
    fn file_of(&self, ds: DataSource, id: SegmentId) -> (&PathBuf, &Arc<SegmentMap>, usize) {
        let f = self
            .files
            .iter()
            .find(|f| f.0 == ds && f.1 == id)
            .expect("every segment written to is recorded");
        (&f.2, &f.3, f.4)
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    open: HashMap<(DataSource, u32), (OpenSegment, Instant)>,
    metas: HashMap<(DataSource, SegmentId), SegmentMeta>,
    next_seq: u64,
    pending: IndexUpdate,
    index_tx: Sender<IndexUpdate>,
    last_sync: Instant,
    scratch: Vec<u8>,
    coverage: Coverage,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        next_seq: u64,
        metas: HashMap<(DataSource, SegmentId), SegmentMeta>,
        index_tx: Sender<IndexUpdate>,
        coverage: Coverage,
    ) -> Writer {
        Writer {
            shared,
            open: HashMap::default(),
            metas,
            next_seq,
            pending: IndexUpdate {
                watermark: next_seq - 1,
                ..Default::default()
            },
            index_tx,
            last_sync: Instant::now(),
            scratch: Vec::new(),
            coverage,
        }
    }

    pub fn run(mut self, rx: Receiver<WriterMsg>) {
        let interval = Duration::from_millis(self.shared.config.sync_interval_ms.max(1));
        loop {
            let wait = interval.saturating_sub(self.last_sync.elapsed());
            let msg = match rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.periodic();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.sync_all();
                    return;
                }
            };
            let deferred = match msg {
                WriterMsg::Append { batch, reply } => self.take_group(batch, reply, &rx),
                other => Some(other),
            };
            if let Some(m) = deferred {
                if self.control(m) {
                    return;
                }
            }
            if self.last_sync.elapsed() >= interval {
                self.periodic();
            }
            self.flush_index();
        }
    }

    /// Collects more queued appends into one group and commits it. Returns a
    /// control message that ended the group, if any.
    fn take_group(
        &mut self,
        batch: Batch,
        reply: Reply<AppendReceipt>,
        rx: &Receiver<WriterMsg>,
    ) -> Option<WriterMsg> {
        let mut rows = batch.rows.len();
        let mut group = vec![(batch, reply)];
        let mut deferred = None;
        while rows < self.shared.config.group_rows_max {
            match rx.try_recv() {
                Ok(WriterMsg::Append { batch, reply }) => {
                    rows += batch.rows.len();
                    group.push((batch, reply));
                }
                Ok(other) => {
                    deferred = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        self.commit_group(group);
        deferred
    }

    /// Handles a control message; returns true when the writer must stop.
    fn control(&mut self, msg: WriterMsg) -> bool {
        match msg {
            WriterMsg::Append { batch, reply } => self.commit_group(vec![(batch, reply)]),
            WriterMsg::Truncate { ds, reply } => {
                let _ = reply.send(self.truncate(ds));
            }
            WriterMsg::Sync { reply } => {
                let _ = reply.send(self.sync_all());
            }
            WriterMsg::Maintenance { job } => job(self),
            WriterMsg::Shutdown { reply } => {
                let res = self.sync_all();
                if res.is_ok() {
                    self.checkpoint_hot();
                }
                self.flush_index_blocking();
                let _ = reply.send(res);
                return true;
            }
        }
        false
    }

    fn commit_group(&mut self, group: Vec<(Batch, Reply<AppendReceipt>)>) {
        if let Some(p) = self.shared.poison_message() {
            for (_, reply) in group {
                let _ = reply.send(Err(Error::Poisoned(p.clone())));
            }
            return;
        }
        let mut written = Vec::with_capacity(group.len());
        for (batch, reply) in group {
            match self.write_batch(&batch) {
                Ok(w) => written.push((w, batch.durability, reply)),
                Err(e) => {
                    warn!(error = %e, rows = batch.rows.len(), "append failed; nothing of it was written");
                    let _ = reply.send(Err(e));
                }
            }
            self.shared.buffers.put(batch);
        }
        if written.is_empty() {
            return;
        }
        self.publish(&written);
        let synced = if written.iter().any(|(_, d, _)| *d == Durability::Synced)
            && !test_faults::mutated("skip-wait-sync")
        {
            self.sync_all()
        } else {
            Ok(())
        };
        for (w, durability, reply) in written {
            let res = match (&synced, durability) {
                (Err(e), Durability::Synced) => Err(Error::Poisoned(e.to_string())),
                _ => Ok(w.receipt),
            };
            let _ = reply.send(res);
        }
    }

    /// Reserves room for every row of the batch, then frames and copies them
    /// in. If any reservation fails, nothing is written.
    fn write_batch(&mut self, batch: &Batch) -> Result<Written> {
        let n = batch.rows.len();
        let mut groups: Vec<((DataSource, u32), Vec<usize>)> = Vec::new();
        let mut slot: HashMap<(DataSource, u32), usize> = HashMap::default();
        for (i, r) in batch.rows.iter().enumerate() {
            let k = (r.ds, r.ts / 3600);
            let g = *slot.entry(k).or_insert_with(|| {
                groups.push((k, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        // Recovery keeps a batch iff its completing frame (the last row's,
        // batch_rest 0) is found, so that frame must be written last: move
        // its group to the end, or a crash part-way through the batch leaves
        // the groups after it half written yet kept.
        let last = slot[&(batch.rows[n - 1].ds, batch.rows[n - 1].ts / 3600)];
        let last = groups.remove(last);
        groups.push(last);
        for (k, idxs) in &groups {
            let need: usize = idxs
                .iter()
                .map(|i| FRAME_HEADER_LEN + batch.rows[*i].body.len())
                .sum();
            self.segment_for(*k, need)?;
        }
        let first = self.next_seq;
        let mut w = Written {
            receipt: AppendReceipt {
                rows: n as u64,
                first_seq: first,
                last_seq: first + n as u64 - 1,
            },
            rows: Vec::with_capacity(n),
            thresholds: Vec::new(),
            files: Vec::new(),
        };
        for (k, idxs) in &groups {
            let mut rel = Vec::with_capacity(idxs.len());
            self.scratch.clear();
            for &i in idxs {
                let r = &batch.rows[i];
                let body = &batch.buf[r.body.clone()];
                rel.push(self.scratch.len());
                encode_frame(
                    &mut self.scratch,
                    first + i as u64,
                    (n - 1 - i) as u32,
                    body,
                );
                if r.ds == DataSource::Thresholds {
                    let t = decode_threshold(body).map_err(Error::Invalid)?;
                    w.thresholds.push((t, first + i as u64));
                }
            }
            let (seg, used) = self.open.get_mut(k).expect("segment ensured above");
            *used = Instant::now();
            let base = seg.append(&self.scratch);
            seg.commit();
            w.files.push((
                k.0,
                seg.id,
                seg.path.clone(),
                seg.map().clone(),
                seg.write_pos,
            ));
            for (&i, off) in idxs.iter().zip(rel) {
                let r = &batch.rows[i];
                let e = Entry {
                    offset: (base + off) as u32,
                    ts: r.ts,
                    key: r.key,
                };
                w.rows.push((r.ds, seg.id, e, first + i as u64));
            }
        }
        self.next_seq += n as u64;
        Ok(w)
    }

    /// The appendable segment of (data source, hour) with room for `need`
    /// more bytes: the newest file of the hour, or a new one.
    fn segment_for(&mut self, k: (DataSource, u32), need: usize) -> Result<()> {
        let max = self.shared.config.segment_bytes_max as usize;
        if let Some((seg, _)) = self.open.get_mut(&k) {
            if seg.write_pos + need <= max || seg.write_pos == HEADER_LEN {
                seg.ensure_room(need)?;
                return Ok(());
            }
        }
        // The handle of `k` (if any) is about to be replaced by another file's:
        // fsync it now, as no later `sync_all` reaches a handle once it has left
        // `open`, and a `Synced` batch of this group may have rows in it.
        if let Some((seg, _)) = self.open.get_mut(&k) {
            if let Err(e) = seg.sync() {
                error!(error = %e, "fsync failed; refusing further writes");
                self.shared.poison(e.to_string());
                return Err(e);
            }
        }
        let (ds, hour) = k;
        let newest = {
            let st = self.shared.state.read();
            let newest = st
                .table(ds)
                .hour(hour)
                .next()
                .map(|s| (s.id, s.appendable, s.bytes(), s.path.clone()));
            newest
        };
        let newest = match (newest, self.open.get(&k)) {
            (Some(a), Some((b, _))) if b.id > a.0 => Some((b.id, false, 0, b.path.clone())),
            (None, Some((b, _))) => Some((b.id, false, 0, b.path.clone())),
            (a, _) => a,
        };
        if let Some((id, true, end, path)) = &newest {
            let end = *end as usize;
            let fits = end + need <= max || end == HEADER_LEN;
            if fits && self.open.get(&k).is_none_or(|(o, _)| o.id != *id) {
                let header = Header {
                    kind: KIND_HOT,
                    datasource: ds.id(),
                    hour,
                    file_no: id.file_no,
                    synced_len: end as u64,
                };
                let mut seg = OpenSegment::reopen(path, header, end)?;
                seg.ensure_room(need)?;
                self.open.insert(k, (seg, Instant::now()));
                return Ok(());
            }
        }
        let newest = newest.map(|n| n.0);
        let id = SegmentId {
            hour,
            file_no: newest.map_or(0, |i| i.file_no + 1),
        };
        let dir = self.shared.state.read().table(ds).dir.clone();
        let seg = OpenSegment::create(&dir, ds.id(), id, need)?;
        debug!(file = %seg.path.display(), "created segment");
        self.open.insert(k, (seg, Instant::now()));
        Ok(())
    }

    /// Makes a group of written batches visible, all under one write lock.
    fn publish(&mut self, written: &[(Written, Durability, Reply<AppendReceipt>)]) {
        let batches: Vec<&Written> = written.iter().map(|w| &w.0).collect();
        self.apply(Edit::Publish(&batches));
    }

    /// fsyncs every segment with un-synced commits. A failure poisons the
    /// writer: the kernel may have dropped the dirty pages, so retrying an
    /// fsync and carrying on could acknowledge lost rows.
    fn sync_all(&mut self) -> Result<()> {
        if let Some(p) = self.shared.poison_message() {
            return Err(Error::Poisoned(p));
        }
        // New files' directory entries: one fsync per directory, after the files.
        let mut dirs = std::collections::BTreeSet::new();
        for (seg, _) in self.open.values_mut() {
            if seg.needs_sync() {
                match seg.sync_file() {
                    Ok(dir) => dirs.extend(dir),
                    Err(e) => {
                        error!(error = %e, "fsync failed; refusing further writes");
                        self.shared.poison(e.to_string());
                        return Err(e);
                    }
                }
            }
        }
        for dir in dirs {
            if let Err(e) = fsync_new_entries(&dir) {
                error!(error = %e, "fsync failed; refusing further writes");
                self.shared.poison(e.to_string());
                return Err(e);
            }
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The interval sync, and closing append handles of idle hours.
    fn periodic(&mut self) {
        if test_faults::mutated("skip-background-sync") {
            self.last_sync = Instant::now();
        } else if self.sync_all().is_ok()
            && self.coverage.last.elapsed() >= checkpoint::CHECKPOINT_EVERY
        {
            self.checkpoint_hot();
        }
        let now = Instant::now();
        self.open
            .retain(|_, (seg, used)| seg.needs_sync() || now.duration_since(*used) < IDLE_CLOSE);
        self.flush_index();
    }

    fn truncate(&mut self, ds: DataSource) -> Result<()> {
        self.sync_all()?;
        self.open.retain(|(d, _), _| *d != ds);
        let dir = self.shared.state.read().table(ds).dir.clone();
        let removed = self.apply(Edit::Truncate { ds });
        write_seq_floor(&self.shared.config.data_dir, self.next_seq - 1)?;
        for r in &removed {
            std::fs::remove_file(&r.path).map_err(|e| Error::io(&r.path, e))?;
        }
        fsync_dir(&dir)?;
        self.forget_checkpoints(&removed);
        self.flush_index();
        Ok(())
    }

    /// Hands the pending index update to the index thread, waiting for it to
    /// take it: at shutdown nothing may stay behind, or the index lags the
    /// segments and is rebuilt on the next open.
    fn flush_index_blocking(&mut self) {
        if self.pending.is_empty() && self.pending.watermark == self.shared.counters.index_sent() {
            return;
        }
        let u = std::mem::take(&mut self.pending);
        let watermark = u.watermark;
        if self.index_tx.send(u).is_ok() {
            self.shared.counters.set_index_sent(watermark);
        }
        self.pending.watermark = watermark;
    }

    /// Hands the pending index update to the index thread if it is idle;
    /// otherwise keeps accumulating (values are absolute, so merging is exact).
    fn flush_index(&mut self) {
        if self.pending.is_empty() && self.pending.watermark == self.shared.counters.index_sent() {
            return;
        }
        let u = std::mem::take(&mut self.pending);
        let watermark = u.watermark;
        match self.index_tx.try_send(u) {
            Ok(()) => self.shared.counters.set_index_sent(watermark),
            Err(TrySendError::Full(u)) | Err(TrySendError::Disconnected(u)) => {
                self.pending = u;
            }
        }
        self.pending.watermark = watermark;
    }
}

/// The index thread: applies merged updates to sled, one batch at a time.
pub(crate) fn run_indexer(shared: Arc<Shared>, rx: Receiver<IndexUpdate>) {
    while let Ok(mut u) = rx.recv() {
        // Let updates pile up briefly: they merge (values are absolute), so
        // a busy writer costs sled one batch per pause, not one per group.
        std::thread::sleep(INDEX_PAUSE);
        while let Ok(more) = rx.try_recv() {
            u.merge(more);
        }
        match shared.index.apply(&u) {
            Ok(()) => shared
                .counters
                .index_watermark
                .store(u.watermark, std::sync::atomic::Ordering::Relaxed),
            Err(e) => {
                error!(error = %e, "index update failed; it will be rebuilt from the segments on next open")
            }
        }
    }
    if let Err(e) = shared.index.flush() {
        error!(error = %e, "index flush failed");
    }
}
