//! The lifecycle thread: what lets a long-running process live unattended
//! on a data dir. Once a second it
//!
//! 1. measures free space and refuses appends below `min_free_disk_bytes`
//!    (queries keep working; appends resume by themselves),
//! 2. drops hours older than `retention_days`,
//! 3. drops the oldest hours while the data dir is over `max_disk_bytes`
//!    (never the current hour, never a threshold in force),
//! 4. compacts closed hours whose end and last received row are
//!    `compaction_delay_secs` in the past, one hour at a time.
//!
//! It runs at the lowest CPU priority and changes segments only through the
//! writer thread's maintenance jobs, so ingestion and queries wait on it for
//! no more than the atomic swap.

pub mod disk;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustc_hash::FxHashMap as HashMap;
use tracing::{debug, info, warn};

use crate::compaction::{compact_hour, drop_hours_before, CompactOptions};
use crate::engine::Shared;
use crate::error::Error;
use crate::row::DataSource;
use crate::segment::compact::WriteOptions;
use crate::writer::WriterMsg;

pub use logpulse_model::BackendMetric;

/// How often the thread wakes up when it has nothing to compact.
const TICK: Duration = Duration::from_secs(1);

/// How long an hour whose compaction failed is left alone.
const FAILED_RETRY: Duration = Duration::from_secs(600);

/// What the lifecycle thread did and saw, for metrics.
#[derive(Default)]
pub struct LifecycleCounters {
    pub compactions: AtomicU64,
    pub compaction_failures: AtomicU64,
    pub compaction_bytes_in: AtomicU64,
    pub compaction_bytes_out: AtomicU64,
    pub hours_dropped_age: AtomicU64,
    pub hours_dropped_budget: AtomicU64,
    pub pending_hours: AtomicU64,
    pub free_disk_bytes: AtomicU64,
    pub data_dir_bytes: AtomicU64,
    /// Appends are refused: free space is under the floor.
    pub low_disk: AtomicBool,
    /// What the last open read of hot files: records from the checkpoint,
    /// records decoded from the files.
    pub recovery_rows_checkpoint: AtomicU64,
    pub recovery_rows_scanned: AtomicU64,
}

/// A snapshot of [`LifecycleCounters`] plus the oldest stored hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifecycleStats {
    pub compactions: u64,
    pub compaction_failures: u64,
    pub compaction_bytes_in: u64,
    pub compaction_bytes_out: u64,
    pub hours_dropped_age: u64,
    pub hours_dropped_budget: u64,
    pub pending_hours: u64,
    pub free_disk_bytes: u64,
    pub data_dir_bytes: u64,
    pub recovery_rows_checkpoint: u64,
    pub recovery_rows_scanned: u64,
    /// Start (Unix seconds) of the oldest hour holding `system_logs` rows.
    pub oldest_hour: Option<u64>,
    /// Distinct (service, severity) keys, and in the newest hour.
    pub keys: u64,
    pub keys_newest_hour: u64,
    /// (hour, key) and (hour, key, minute) entries of the per-minute counts,
    /// and the heap bytes they hold.
    pub count_key_hours: u64,
    pub count_key_minutes: u64,
    pub count_bytes: u64,
    /// Bytes of decompressed blocks cached, and the cache's hits and misses.
    pub block_cache_bytes: u64,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
}

impl LifecycleCounters {
    pub fn snapshot(&self) -> LifecycleStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LifecycleStats {
            compactions: l(&self.compactions),
            compaction_failures: l(&self.compaction_failures),
            compaction_bytes_in: l(&self.compaction_bytes_in),
            compaction_bytes_out: l(&self.compaction_bytes_out),
            hours_dropped_age: l(&self.hours_dropped_age),
            hours_dropped_budget: l(&self.hours_dropped_budget),
            pending_hours: l(&self.pending_hours),
            free_disk_bytes: l(&self.free_disk_bytes),
            data_dir_bytes: l(&self.data_dir_bytes),
            recovery_rows_checkpoint: l(&self.recovery_rows_checkpoint),
            recovery_rows_scanned: l(&self.recovery_rows_scanned),
            ..Default::default()
        }
    }
}

/// The running thread's handle: dropping the sender stops it.
pub(crate) struct Lifecycle {
    pub stop: Sender<()>,
    pub thread: std::thread::JoinHandle<()>,
}

pub(crate) fn start(shared: Arc<Shared>, tx: Sender<WriterMsg>) -> std::io::Result<Lifecycle> {
    let (stop, stopped) = crossbeam_channel::bounded(0);
    // The first measurement happens before any append is accepted.
    measure_disk(&shared);
    let thread = std::thread::Builder::new()
        .name("lp-lifecycle".into())
        .spawn(move || run(shared, tx, stopped))?;
    Ok(Lifecycle { stop, thread })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn run(shared: Arc<Shared>, tx: Sender<WriterMsg>, stopped: Receiver<()>) {
    // Lowest priority for this thread only (Linux applies it per thread).
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        debug!(error = %e, "could not lower the lifecycle thread's priority");
    }
    // Hours whose compaction failed, and when: tried again after a while.
    let mut failed: HashMap<(DataSource, u32), Instant> = HashMap::default();
    loop {
        measure_disk(&shared);
        let cfg = &shared.config.lifecycle;
        if cfg.retention_days > 0 {
            retention(&shared, &tx, cfg.retention_days);
        }
        if cfg.max_disk_bytes > 0 {
            budget(&shared, &tx, cfg.max_disk_bytes);
        }
        let compacted = cfg.compaction_delay_secs > 0 && compact_one(&shared, &tx, &mut failed);
        let wait = if compacted { Duration::ZERO } else { TICK };
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// Free space (the floor) and the data dir's size (the budget).
fn measure_disk(shared: &Shared) {
    let c = &shared.lifecycle;
    let dir = &shared.config.data_dir;
    let floor = shared.config.lifecycle.min_free_disk_bytes;
    match disk::free_bytes(dir) {
        Ok(free) => {
            c.free_disk_bytes.store(free, Ordering::Relaxed);
            let low = floor > 0 && free < floor;
            if c.low_disk.swap(low, Ordering::Relaxed) != low {
                if low {
                    warn!(
                        free,
                        min_free_disk_bytes = floor,
                        "free disk space under the floor: refusing appends"
                    );
                } else {
                    info!(
                        free,
                        "free disk space back above the floor: accepting appends"
                    );
                }
            }
        }
        Err(e) => debug!(error = %e, "statvfs failed"),
    }
    c.data_dir_bytes
        .store(disk::dir_bytes(dir), Ordering::Relaxed);
}

fn count_dropped(d: &crate::compaction::Dropped) -> u64 {
    d.segments
        .iter()
        .map(|s| s.1.hour)
        .collect::<BTreeSet<_>>()
        .len() as u64
}

fn retention(shared: &Shared, tx: &Sender<WriterMsg>, days: u64) {
    let before = now_secs().saturating_sub(days * 86_400) / 3600;
    let before = before.min(u32::MAX as u64) as u32;
    let oldest = shared
        .state
        .read()
        .tables
        .values()
        .filter_map(|t| t.segments.keys().next().map(|id| id.hour))
        .min();
    if oldest.is_none_or(|o| o >= before) {
        return;
    }
    match drop_hours_before(tx, before) {
        Ok(d) if !d.segments.is_empty() => {
            let hours = count_dropped(&d);
            shared
                .lifecycle
                .hours_dropped_age
                .fetch_add(hours, Ordering::Relaxed);
            info!(
                hours,
                rows = d.rows(),
                bytes = d.bytes(),
                "retention dropped hours"
            );
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "retention failed"),
    }
}

/// Drops the oldest hours, one at a time, until the data dir fits.
fn budget(shared: &Shared, tx: &Sender<WriterMsg>, max: u64) {
    let current = (now_secs() / 3600) as u32;
    let hours: BTreeSet<u32> = shared
        .state
        .read()
        .tables
        .values()
        .flat_map(|t| t.segments.keys().map(|id| id.hour))
        .filter(|h| *h < current)
        .collect();
    for h in hours {
        if shared.lifecycle.data_dir_bytes.load(Ordering::Relaxed) <= max {
            return;
        }
        match drop_hours_before(tx, h + 1) {
            Ok(d) if !d.segments.is_empty() => {
                let hours = count_dropped(&d);
                shared
                    .lifecycle
                    .hours_dropped_budget
                    .fetch_add(hours, Ordering::Relaxed);
                info!(
                    hour = h,
                    rows = d.rows(),
                    bytes = d.bytes(),
                    max_disk_bytes = max,
                    "disk budget dropped the oldest hour"
                );
                measure_disk(shared);
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "disk budget: dropping an hour failed");
                return;
            }
        }
    }
}

/// Closed (data source, hour)s that are not one compact segment yet, oldest
/// first, with whether each is due (its end and its last row are
/// `compaction_delay_secs` in the past).
fn closed_hours(shared: &Shared) -> Vec<(DataSource, u32, bool)> {
    let now = now_secs();
    let delay = shared.config.lifecycle.compaction_delay_secs;
    let current = (now / 3600) as u32;
    let writes = shared.hour_writes.lock();
    let st = shared.state.read();
    let mut out = Vec::new();
    for (ds, t) in &st.tables {
        let mut hours: Vec<(u32, usize, bool)> = Vec::new();
        for (id, seg) in &t.segments {
            match hours.last_mut() {
                Some(h) if h.0 == id.hour => {
                    h.1 += 1;
                    h.2 &= seg.compact.is_some();
                }
                _ => hours.push((id.hour, 1, seg.compact.is_some())),
            }
        }
        for (hour, files, compact) in hours {
            if hour >= current || (files == 1 && compact) {
                continue;
            }
            let ended = (hour as u64 + 1) * 3600 + delay <= now;
            let quiet = writes
                .get(&(*ds, hour))
                .is_none_or(|t: &Instant| t.elapsed() >= Duration::from_secs(delay));
            out.push((*ds, hour, ended && quiet));
        }
    }
    out.sort_by_key(|h| h.1);
    out
}

/// Puts a freshly compacted `system_logs` hour's per-minute counts and
/// block heads into the block cache, as they would be after its first
/// queries (RocksDB's `prepopulate_block_cache` does the same for flushed
/// files): recent hours are the ones asked about, and this thread, not a
/// query, pays for decoding them. Heads are put in only when an hour's take
/// at most 1/128 of the cache: the heads of bigger hours would soon evict
/// the counts of older ones, which answer more per byte (every window edge
/// in the hour), and are left to be read on demand.
fn warm(shared: &Shared, hour: u32) {
    let seg = {
        let st = shared.state.read();
        let found = (st.table(DataSource::SystemLogs).hour(hour)).find_map(|s| s.compact.clone());
        found
    };
    let Some(c) = seg else { return };
    if c.counts().is_err() {
        return;
    }
    let heads = c.info.rows as u64 * 16 + c.blocks.len() as u64 * 72;
    if heads <= shared.config.block_cache_bytes / 128 {
        for bi in 0..c.blocks.len() {
            if c.head(bi).is_err() {
                return;
            }
        }
    }
}

/// Compacts the oldest due hour, if any. Returns whether it did work.
fn compact_one(
    shared: &Shared,
    tx: &Sender<WriterMsg>,
    failed: &mut HashMap<(DataSource, u32), Instant>,
) -> bool {
    let hours = closed_hours(shared);
    shared
        .lifecycle
        .pending_hours
        .store(hours.len() as u64, Ordering::Relaxed);
    failed.retain(|_, t| t.elapsed() < FAILED_RETRY);
    let Some(&(ds, hour, _)) = hours
        .iter()
        .find(|h| h.2 && !failed.contains_key(&(h.0, h.1)))
    else {
        return false;
    };
    let opts = CompactOptions {
        write: WriteOptions {
            zstd_level: shared.config.lifecycle.zstd_level,
        },
        ..Default::default()
    };
    let c = &shared.lifecycle;
    match compact_hour(shared, tx, ds, hour, &opts) {
        Ok(Some(done)) => {
            let bytes_in: u64 = done.inputs.iter().map(|s| s.bytes).sum();
            c.compactions.fetch_add(1, Ordering::Relaxed);
            c.compaction_bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
            c.compaction_bytes_out
                .fetch_add(done.output.bytes, Ordering::Relaxed);
            c.pending_hours.fetch_sub(1, Ordering::Relaxed);
            if ds == DataSource::SystemLogs {
                warm(shared, hour);
            }
            debug!(
                datasource = ds.name(),
                hour,
                rows = done.output.rows,
                bytes_in,
                bytes_out = done.output.bytes,
                "compacted an hour"
            );
            true
        }
        Ok(None) => false,
        Err(Error::Invalid(why)) => {
            // Rows arrived while it was built: the hour is no longer quiet.
            debug!(datasource = ds.name(), hour, why, "compaction deferred");
            false
        }
        Err(Error::ShuttingDown) => false,
        Err(e) => {
            failed.insert((ds, hour), Instant::now());
            c.compaction_failures.fetch_add(1, Ordering::Relaxed);
            warn!(error = %e, datasource = ds.name(), hour, "background compaction failed");
            false
        }
    }
}

impl LifecycleStats {
    /// The figures as `/metrics` lists them.
    pub fn metrics(&self) -> Vec<BackendMetric> {
        let m = |name, help, counter, value: u64| BackendMetric {
            name,
            help,
            counter,
            value: value as f64,
        };
        let mut out = vec![
            m(
                "logpulse_compaction_pending_hours",
                "Closed hours waiting for background compaction.",
                false,
                self.pending_hours,
            ),
            m(
                "logpulse_compactions_total",
                "Hours compacted in the background.",
                true,
                self.compactions,
            ),
            m(
                "logpulse_compaction_failures_total",
                "Background compactions that failed.",
                true,
                self.compaction_failures,
            ),
            m(
                "logpulse_compaction_bytes_in_total",
                "Segment bytes read by background compaction.",
                true,
                self.compaction_bytes_in,
            ),
            m(
                "logpulse_compaction_bytes_out_total",
                "Compact segment bytes written by background compaction.",
                true,
                self.compaction_bytes_out,
            ),
            m(
                "logpulse_hours_dropped_age_total",
                "Hours dropped by retention_days.",
                true,
                self.hours_dropped_age,
            ),
            m(
                "logpulse_hours_dropped_budget_total",
                "Hours dropped to stay under max_disk_bytes.",
                true,
                self.hours_dropped_budget,
            ),
            m(
                "logpulse_free_disk_bytes",
                "Free bytes on the data dir's filesystem.",
                false,
                self.free_disk_bytes,
            ),
            m(
                "logpulse_data_dir_bytes",
                "Bytes the data dir occupies on disk.",
                false,
                self.data_dir_bytes,
            ),
        ];
        out.extend([
            m(
                "logpulse_keys",
                "Distinct (service, severity) keys of system_logs.",
                false,
                self.keys,
            ),
            m(
                "logpulse_keys_newest_hour",
                "Distinct (service, severity) keys in the newest hour holding rows.",
                false,
                self.keys_newest_hour,
            ),
            m(
                "logpulse_count_key_hours",
                "(hour, key) entries of the counts in memory (hot hours' per-minute counts, compact files' key totals).",
                false,
                self.count_key_hours,
            ),
            m(
                "logpulse_count_key_minutes",
                "Non-empty (hour, key, minute) entries in memory (hot hours; compact files' are read on demand).",
                false,
                self.count_key_minutes,
            ),
            m(
                "logpulse_count_bytes",
                "Approximate heap bytes held by the counts in memory.",
                false,
                self.count_bytes,
            ),
            m(
                "logpulse_recovery_rows_from_checkpoint",
                "Hot records the last open took from checkpoint files.",
                false,
                self.recovery_rows_checkpoint,
            ),
            m(
                "logpulse_recovery_rows_scanned",
                "Hot records the last open decoded from segment files.",
                false,
                self.recovery_rows_scanned,
            ),
            m(
                "logpulse_block_cache_bytes",
                "Decompressed compact blocks held in the block cache.",
                false,
                self.block_cache_bytes,
            ),
            m(
                "logpulse_block_cache_hits_total",
                "Block cache lookups that found the block.",
                true,
                self.block_cache_hits,
            ),
            m(
                "logpulse_block_cache_misses_total",
                "Block cache lookups that decompressed the block.",
                true,
                self.block_cache_misses,
            ),
        ]);
        if let Some(h) = self.oldest_hour {
            out.push(m(
                "logpulse_oldest_hour_seconds",
                "Start (Unix seconds) of the oldest stored hour of system_logs.",
                false,
                h,
            ));
        }
        out
    }
}
