//! [`Engine`]: the one handle the server and tools use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use tracing::info;

use crate::config::EngineConfig;
use crate::durability::Durability;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::keys::Keys;
use crate::lifecycle::{self, Lifecycle, LifecycleCounters, LifecycleStats};
use crate::lock::DirLock;
use crate::query::{
    self, Anomalies, AnomalyQuery, BaselineAnomalies, BaselineQuery, Distribution, KeyMinutes,
    LogFilter, RecentLogs,
};
use crate::recovery::{expected_index, reconcile_index, recover, segment_meta};
use crate::row::{DataSource, Encode, Row, ThresholdRow};
use crate::segment::compact::{BlockCache, KeyTotal};
use crate::segment::format::MAX_BODY_LEN;
use crate::segment::{Entry, Segment};
use crate::state::State;
use crate::writer::{run_indexer, AppendReceipt, Batch, Coverage, Prepared, Writer, WriterMsg};

/// Directory of the sled index inside the data dir.
pub const INDEX_DIR: &str = "index";

/// Live counters for metrics.
#[derive(Default)]
pub struct Counters {
    pub last_seq: AtomicU64,
    pub index_watermark: AtomicU64,
    index_sent: AtomicU64,
}

impl Counters {
    pub(crate) fn index_sent(&self) -> u64 {
        self.index_sent.load(Ordering::Relaxed)
    }
    pub(crate) fn set_index_sent(&self, w: u64) {
        self.index_sent.store(w, Ordering::Relaxed)
    }
}

/// A few spent batches kept for their allocations: a fresh multi-megabyte
/// buffer per request costs a page fault per 4 KiB, more than the copy.
#[derive(Default)]
pub(crate) struct BatchBuffers {
    spare: Mutex<Vec<Batch>>,
}

impl BatchBuffers {
    const KEEP: usize = 8;
    const KEEP_BYTES_MAX: usize = 32 << 20;

    pub fn take(&self, durability: Durability) -> Batch {
        let mut b = self.spare.lock().pop().unwrap_or_else(|| Batch {
            rows: Vec::new(),
            buf: Vec::new(),
            durability,
        });
        b.rows.clear();
        b.buf.clear();
        b.durability = durability;
        b
    }

    pub fn put(&self, batch: Batch) {
        if batch.buf.capacity() <= Self::KEEP_BYTES_MAX {
            let mut spare = self.spare.lock();
            if spare.len() < Self::KEEP {
                spare.push(batch);
            }
        }
    }
}

/// State shared by the engine handle, the writer and the index thread.
pub(crate) struct Shared {
    pub config: EngineConfig,
    pub state: RwLock<State>,
    pub keys: RwLock<Keys>,
    pub index: Index,
    pub counters: Counters,
    /// Spent batches' buffers, reused by later appends.
    pub buffers: BatchBuffers,
    /// Decompressed blocks of compact segments, bounded.
    pub cache: Arc<BlockCache>,
    /// What the lifecycle thread measured and did.
    pub lifecycle: LifecycleCounters,
    /// When each (data source, hour) last received rows, since open.
    pub hour_writes: Mutex<FxHashMap<(DataSource, u32), std::time::Instant>>,
    poison: Mutex<Option<String>>,
    _lock: DirLock,
}

impl Shared {
    pub fn poison_message(&self) -> Option<String> {
        self.poison.lock().clone()
    }
    pub fn poison(&self, msg: String) {
        self.poison.lock().get_or_insert(msg);
    }
}

/// Statistics of one data source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub rows: u64,
    pub bytes: u64,
    pub segments: u64,
}

/// Engine-wide figures for metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineStats {
    pub last_seq: u64,
    pub index_watermark: u64,
    pub segments: u64,
    pub segment_bytes: u64,
}

/// The storage engine. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tx: Sender<WriterMsg>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    lifecycle: Mutex<Option<Lifecycle>>,
}

impl Engine {
    /// Opens (creating if needed) a data dir: locks it, recovers every
    /// segment, reconciles the index, and starts the writer.
    pub fn open(config: EngineConfig) -> Result<Engine> {
        let dir = &config.data_dir.clone();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = DirLock::acquire(dir)?;
        let t0 = std::time::Instant::now();
        let mut keys = Keys::default();
        let cache = BlockCache::new(config.block_cache_bytes as usize);
        let rec = recover(dir, &mut keys, &cache)?;
        let index = open_index(&config)?;
        let watermark = rec.next_seq - 1;
        reconcile_index(&index, expected_index(&rec.state, watermark))?;
        let coverage = Coverage::new(rec.checkpointed.into_iter().collect());
        let metas: rustc_hash::FxHashMap<_, _> = rec
            .state
            .tables
            .iter()
            .flat_map(|(ds, t)| {
                t.segments
                    .iter()
                    .map(move |(id, s)| ((*ds, *id), segment_meta(s)))
            })
            .collect();
        info!(
            data_dir = %dir.display(),
            rows = rec.state.table(DataSource::SystemLogs).rows,
            next_seq = rec.next_seq,
            rows_from_checkpoint = rec.rows_from_checkpoint,
            rows_scanned = rec.rows_scanned,
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "recovered data dir"
        );
        let shared = Arc::new(Shared {
            state: RwLock::new(rec.state),
            keys: RwLock::new(keys),
            index,
            counters: Counters::default(),
            buffers: BatchBuffers::default(),
            cache,
            lifecycle: LifecycleCounters::default(),
            hour_writes: Mutex::new(FxHashMap::default()),
            poison: Mutex::new(None),
            _lock: lock,
            config,
        });
        shared.counters.last_seq.store(watermark, Ordering::Relaxed);
        shared
            .counters
            .index_watermark
            .store(watermark, Ordering::Relaxed);
        shared.counters.set_index_sent(watermark);
        let (tx, rx) = bounded(shared.config.queue_batches_max);
        let (itx, irx) = bounded(1);
        shared
            .lifecycle
            .recovery_rows_checkpoint
            .store(rec.rows_from_checkpoint, Ordering::Relaxed);
        shared
            .lifecycle
            .recovery_rows_scanned
            .store(rec.rows_scanned, Ordering::Relaxed);
        let writer = Writer::new(shared.clone(), rec.next_seq, metas, itx, coverage);
        let s2 = shared.clone();
        let threads = vec![
            std::thread::Builder::new()
                .name("lp-writer".into())
                .spawn(move || writer.run(rx)),
            std::thread::Builder::new()
                .name("lp-index".into())
                .spawn(move || run_indexer(s2, irx)),
        ];
        let threads = threads
            .into_iter()
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io(dir, e))?;
        let lifecycle = if shared.config.lifecycle.enabled() {
            Some(lifecycle::start(shared.clone(), tx.clone()).map_err(|e| Error::io(dir, e))?)
        } else {
            None
        };
        Ok(Engine {
            shared,
            tx,
            threads: Mutex::new(threads),
            lifecycle: Mutex::new(lifecycle),
        })
    }

    /// Appends rows (of any data sources) as one batch: visible all together
    /// or not at all. Returns once visible, or once fsynced with
    /// [`Durability::Synced`]. Answers [`Error::Busy`] when the writer's queue
    /// is full.
    pub fn append(&self, rows: &[Row<'_>], durability: Durability) -> Result<AppendReceipt> {
        if rows.is_empty() {
            return Ok(AppendReceipt::default());
        }
        if let Some(p) = self.shared.poison_message() {
            return Err(Error::Poisoned(p));
        }
        self.check_free_space()?;
        let batch = self.prepare(rows, durability)?;
        let (reply, answer) = bounded(1);
        match self.tx.try_send(WriterMsg::Append { batch, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Error::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(Error::ShuttingDown),
        }
        answer.recv().map_err(|_| Error::ShuttingDown)?
    }

    /// [`Error::LowDisk`] while the filesystem's free space is under
    /// `min_free_disk_bytes`.
    pub(crate) fn check_free_space(&self) -> Result<()> {
        let l = &self.shared.lifecycle;
        if l.low_disk.load(Ordering::Relaxed) {
            return Err(Error::LowDisk {
                free: l.free_disk_bytes.load(Ordering::Relaxed),
                floor: self.shared.config.lifecycle.min_free_disk_bytes,
            });
        }
        Ok(())
    }

    /// What the lifecycle thread measured and did, and the oldest stored
    /// hour of `system_logs`.
    pub fn lifecycle_stats(&self) -> LifecycleStats {
        let mut s = self.shared.lifecycle.snapshot();
        let st = self.shared.state.read();
        s.oldest_hour = st
            .table(DataSource::SystemLogs)
            .segments
            .keys()
            .next()
            .map(|id| id.hour as u64 * 3600);
        let (_, key_hours, key_minutes, bytes) = st.log_stats.footprint();
        let compact = st
            .table(DataSource::SystemLogs)
            .segments
            .values()
            .filter_map(|seg| Some((seg, seg.compact.as_ref()?)));
        let (mut compact_keys, mut compact_bytes) = (0u64, 0u64);
        for (seg, c) in compact {
            compact_keys += c.totals.len() as u64;
            compact_bytes += (c.totals.capacity() * std::mem::size_of::<KeyTotal>()
                + (seg.key_ids.capacity() + seg.by_global.capacity()) * 4)
                as u64;
        }
        s.count_key_hours = key_hours + compact_keys;
        s.count_key_minutes = key_minutes;
        s.count_bytes = bytes + compact_bytes;
        s.keys_newest_hour = crate::query::hours(&st, 0, u32::MAX)
            .last()
            .map_or(0, |h| h.key_count());
        drop(st);
        s.keys = self.shared.keys.read().len() as u64;
        s.block_cache_bytes = self.shared.cache.bytes() as u64;
        (s.block_cache_hits, s.block_cache_misses) = self.shared.cache.hit_counts();
        s
    }

    /// Encodes rows, quarantine rows first so that a batch's last record is
    /// one of its data rows (see docs/format.md, batch completeness).
    pub(crate) fn prepare(&self, rows: &[Row<'_>], durability: Durability) -> Result<Batch> {
        let mut batch = self.shared.buffers.take(durability);
        batch.rows.reserve(rows.len());
        batch
            .buf
            .reserve(rows.iter().map(Row::encoded_len_hint).sum());
        let quarantine = rows.iter().filter(|r| r.datasource().is_quarantine());
        let data = rows.iter().filter(|r| !r.datasource().is_quarantine());
        let keys = self.key_ids(data.clone());
        let mut keys = keys.into_iter();
        for row in quarantine.chain(data) {
            let key = match row {
                Row::Log(_) => keys.next().unwrap_or(0),
                _ => 0,
            };
            let start = batch.buf.len();
            row.encode_into(&mut batch.buf);
            if batch.buf.len() - start > MAX_BODY_LEN {
                return Err(Error::Invalid(format!(
                    "row of {} bytes is over the {MAX_BODY_LEN}-byte limit",
                    batch.buf.len() - start
                )));
            }
            batch.rows.push(Prepared {
                ds: row.datasource(),
                ts: row.partition_time(),
                key,
                body: start..batch.buf.len(),
            });
        }
        Ok(batch)
    }

    /// The key ids of the `system_logs` rows among `rows`, in order: found
    /// together under one read lock of the interner (a lock per row was two
    /// atomic writes per row to a line every HTTP thread shares), then the
    /// new keys interned under one write lock.
    fn key_ids<'r, 'a: 'r>(&self, rows: impl Iterator<Item = &'r Row<'a>>) -> Vec<u32> {
        let names: Vec<(&str, &str)> = rows
            .filter_map(|r| match r {
                Row::Log(l) => Some((&*l.service, &*l.severity)),
                _ => None,
            })
            .collect();
        let mut ids = self.shared.keys.read().get_many(&names);
        if ids.contains(&0) {
            let mut keys = self.shared.keys.write();
            for (id, (s, v)) in ids.iter_mut().zip(&names) {
                if *id == 0 {
                    *id = keys.intern(s, v);
                }
            }
        }
        ids
    }

    /// `recent_logs`: newest first, at most `limit` rows.
    pub fn recent_logs(&self, filter: &LogFilter, limit: usize) -> Result<RecentLogs> {
        let plan = {
            let st = self.shared.state.read();
            let keys = self.shared.keys.read();
            query::plan_recent(&st, &keys, filter, limit)?
        };
        query::fetch_recent(plan)
    }

    /// `error_distribution`.
    pub fn error_distribution(&self, filter: &LogFilter, limit: usize) -> Result<Distribution> {
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        query::error_distribution(&st, &keys, filter, limit)
    }

    /// `log_anomalies`.
    pub fn log_anomalies(&self, q: &AnomalyQuery) -> Result<Anomalies> {
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        query::log_anomalies(&st, &keys, q)
    }

    /// `log_baseline_anomalies`.
    pub fn log_baseline_anomalies(&self, q: &BaselineQuery) -> Result<BaselineAnomalies> {
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        query::log_baseline_anomalies(&st, &keys, q)
    }

    /// Per-minute counts of the keys with an active threshold, for alerting.
    pub fn threshold_minutes(&self, first_minute: u32, minutes: u32) -> Result<Vec<KeyMinutes>> {
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        query::threshold_minutes(&st, &keys, first_minute, minutes)
    }

    /// A scan of one data source's rows (for SQL); see [`crate::scan`].
    pub fn scan(&self, filter: &crate::scan::ScanFilter) -> crate::scan::Scan {
        crate::scan::Scan::new(&self.shared.state, &self.shared.keys, filter)
    }

    /// The threshold rows in force (active or not), ordered by key.
    pub fn thresholds(&self) -> Vec<ThresholdRow> {
        self.shared
            .state
            .read()
            .thresholds
            .rows()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Row count and bytes of a data source.
    pub fn datasource_stats(&self, ds: DataSource) -> TableStats {
        let st = self.shared.state.read();
        let t = st.table(ds);
        TableStats {
            rows: t.rows,
            bytes: t.bytes(),
            segments: t.segments.len() as u64,
        }
    }

    pub fn stats(&self) -> EngineStats {
        let st = self.shared.state.read();
        let c = &self.shared.counters;
        EngineStats {
            last_seq: c.last_seq.load(Ordering::Relaxed),
            index_watermark: c.index_watermark.load(Ordering::Relaxed),
            segments: st.tables.values().map(|t| t.segments.len() as u64).sum(),
            segment_bytes: st.tables.values().map(|t| t.bytes()).sum(),
        }
    }

    /// Removes every row of a data source.
    pub fn truncate(&self, ds: DataSource) -> Result<()> {
        let (reply, answer) = bounded(1);
        self.tx
            .send(WriterMsg::Truncate { ds, reply })
            .map_err(|_| Error::ShuttingDown)?;
        answer.recv().map_err(|_| Error::ShuttingDown)?
    }

    /// fsyncs everything appended so far.
    pub fn sync(&self) -> Result<()> {
        let (reply, answer) = bounded(1);
        self.tx
            .send(WriterMsg::Sync { reply })
            .map_err(|_| Error::ShuttingDown)?;
        answer.recv().map_err(|_| Error::ShuttingDown)?
    }

    /// The per-minute counts as the in-memory index holds them, by name.
    pub fn minute_counts(&self) -> HashMap<(u32, String, String), u32> {
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        crate::recovery::minutes_by_name(&st, &keys)
            .expect("compact counts readable")
            .into_iter()
            .map(|(k, m)| (k, m.count))
            .collect()
    }

    /// Reads every `system_logs` row with its seq, in seq order (for
    /// tools and tests; not a query path).
    pub fn scan_logs(&self, mut f: impl FnMut(u64, crate::row::LogRow<'_>)) -> Result<()> {
        let st = self.shared.state.read();
        for (seq, seg, e) in all_rows(st.table(DataSource::SystemLogs))? {
            let body = seg.read_body(&e)?;
            let row = crate::row::decode_log(&body)
                .map_err(|m| Error::corrupt(&seg.path, e.offset as u64, m))?;
            f(seq, row);
        }
        Ok(())
    }

    /// Reads every `log_anomaly_thresholds` row (superseded ones too) with
    /// its seq, in seq order (for tools and tests; not a query path).
    pub fn scan_thresholds(&self) -> Result<Vec<(u64, ThresholdRow)>> {
        let st = self.shared.state.read();
        let mut out = Vec::new();
        for (seq, seg, e) in all_rows(st.table(DataSource::Thresholds))? {
            let row = crate::row::decode_threshold(&seg.read_body(&e)?)
                .map_err(|m| Error::corrupt(&seg.path, e.offset as u64, m))?;
            out.push((seq, row));
        }
        Ok(out)
    }

    /// Stops the writer after syncing everything. Idempotent.
    pub fn close(&self) -> Result<()> {
        if let Some(l) = self.lifecycle.lock().take() {
            drop(l.stop);
            let _ = l.thread.join();
        }
        let mut threads = self.threads.lock();
        if threads.is_empty() {
            return Ok(());
        }
        let (reply, answer) = bounded(1);
        let res = match self.tx.send(WriterMsg::Shutdown { reply }) {
            Ok(()) => answer.recv().unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        for t in threads.drain(..) {
            if t.thread().name() == Some("lp-writer") {
                let _ = t.join();
            } else {
                // The index thread stops when the writer (its sender) is gone.
                let _ = t.join();
            }
        }
        res
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Every row of a table with its seq and segment, in seq order.
fn all_rows(table: &crate::state::Table) -> Result<Vec<(u64, &Segment, Entry)>> {
    let mut all = Vec::new();
    for seg in table.segments.values() {
        let mut err = None;
        seg.for_each_entry(
            0,
            u64::MAX,
            |_| true,
            |e, seq| {
                let seq = match seq {
                    Some(s) => s,
                    None => match seg.seq(&e) {
                        Ok(s) => s,
                        Err(x) => {
                            err.get_or_insert(x);
                            0
                        }
                    },
                };
                all.push((seq, seg, e));
            },
        )?;
        if let Some(e) = err {
            return Err(e);
        }
    }
    all.sort_unstable_by_key(|a| a.0);
    Ok(all)
}

fn open_index(config: &EngineConfig) -> Result<Index> {
    let path = config.data_dir.join(INDEX_DIR);
    match Index::open(&path, config.index_cache_bytes) {
        Ok(i) => Ok(i),
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "index unreadable; rebuilding it from the segments");
            // Whatever is in the way goes: a directory of damaged sled files,
            // or a file (or symlink) where the directory should be.
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            let removed = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::io(&path, e))?;
            Index::open(&path, config.index_cache_bytes)
        }
    }
}
