//! Engine settings, resolved by the caller (the daemon or a tool).

use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// Un-synced appends are fsynced at least this often.
    pub sync_interval_ms: u64,
    /// A segment file is not grown past this; the hour gets another file.
    pub segment_bytes_max: u64,
    /// sled's page cache.
    pub index_cache_bytes: u64,
    /// Append batches waiting for the writer before `append` answers `Busy`.
    pub queue_batches_max: usize,
    /// Rows the writer takes into one group commit.
    pub group_rows_max: usize,
    /// Decompressed blocks of compact segments kept in memory.
    pub block_cache_bytes: u64,
    /// What the background lifecycle thread does (all off by default, as
    /// the offline tools want it).
    pub lifecycle: LifecycleConfig,
}

/// Background upkeep of a data dir inside a long-running process
/// (`lifecycle/`): compaction of closed hours, retention, the disk budget
/// and the free-space floor. Zero turns each one off.
#[derive(Clone, Debug, Default)]
pub struct LifecycleConfig {
    /// Compact an hour once its end, and its last received row, are this
    /// far in the past.
    pub compaction_delay_secs: u64,
    /// Drop hours that ended more than this many days ago.
    pub retention_days: u64,
    /// Drop the oldest hours while the data dir occupies more than this.
    pub max_disk_bytes: u64,
    /// Refuse appends while the filesystem has less free space than this.
    pub min_free_disk_bytes: u64,
    /// zstd level of compact segments written in the background.
    pub zstd_level: i32,
}

impl LifecycleConfig {
    /// Whether any of it needs the background thread.
    pub fn enabled(&self) -> bool {
        self.compaction_delay_secs > 0
            || self.retention_days > 0
            || self.max_disk_bytes > 0
            || self.min_free_disk_bytes > 0
    }
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            sync_interval_ms: 1000,
            segment_bytes_max: 1 << 30,
            index_cache_bytes: 16 << 20,
            queue_batches_max: 256,
            group_rows_max: 200_000,
            block_cache_bytes: 64 << 20,
            lifecycle: LifecycleConfig {
                zstd_level: 6,
                ..Default::default()
            },
        }
    }
}
