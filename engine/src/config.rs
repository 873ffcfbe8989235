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
        }
    }
}
