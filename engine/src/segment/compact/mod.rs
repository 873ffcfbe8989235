//! Compact segments (kind 2): one file per compacted (data source, hour),
//! written once by `logpulse-compact`, never appended to.
//!
//! ```text
//! file      := header block* directory
//! header    := the 64-byte segment header, version 6, kind 2, synced_len =
//!              file length; reserved = dir_offset:u64 dir_len:u32
//!              dir_crc:u32 replaces_first:u32 replaces_last:u32 rows:u32
//!              blocks:u32
//! block     := head:zstd-frame body:zstd-frame
//! stored    := raw_len:u32 zstd-frame(directory)   (versions 5, 6; raw before)
//! directory := codec:u8 key_count:varint (svc_len:varint svc sev_len:varint sev)*
//!              block_meta* [counts [seconds]]   (see directory.rs)
//! block_meta:= offset:u64 head_len:u32 head_raw:u32 head_crc:u32
//!              body_len:u32 body_raw:u32 body_crc:u32 rows:u32
//!              min_ts:u32 max_ts:u32 min_seq:u64 max_seq:u64
//!              key_count:varint key:varint*
//! ```
//!
//! `system_logs` rows (codec 3) are sorted by (key, timestamp, seq), the
//! other data sources' (codec 2) by (timestamp, seq); files of versions 2
//! and 3 hold `system_logs` rows by (timestamp, seq) (codec 1). A block's
//! head holds, per row, the timestamp (codec 3: varint offset from the
//! block's `min_ts`; codecs 1 and 2: varint delta from the previous row, the
//! first from `min_ts`), the seq (zigzag varint delta, the first from `min_seq`) and,
//! for `system_logs`, the (service, severity) key as an index into the
//! file's key dictionary. Its body holds the other columns: for
//! `system_logs` (codecs 1 and 3) server_id, message, error_code, resource_id and
//! metadata, each column either plain (varint lengths, then the bytes) or
//! dictionary-coded (values once, then one id per row); for the other data
//! sources (codec 2) the record bodies of the hot format, plain. The CRCs
//! cover the compressed bytes. Recovery reads only the heads; a query
//! decompresses the body of a block only when it returns one of its rows,
//! and the directory's time range and key list per block say which blocks
//! can hold rows of a (time, key) filter without decompressing anything.

mod cache;
mod codec;
mod columns;
mod counts;
mod directory;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use cache::BlockCache;
pub use columns::ScanBlock;
pub(crate) use counts::of_key as counts_of_key;
pub use counts::{FileCounts, KeyTotal};
pub use directory::{own_names, BlockHead, BlockMeta, CompactInfo, KeyCount, KeyDict, KeyNamer};
pub use reader::{peek_info, CompactSegment, Run};
pub use writer::{BlockRow, CompactWriter, WriteOptions};

/// Column layout of `system_logs` blocks, rows in (timestamp, seq) order
/// (format versions 2 and 3; read, no longer written).
pub const CODEC_LOG_COLUMNS: u8 = 1;
/// Record bodies as in hot segments (the other data sources).
pub const CODEC_BODIES: u8 = 2;
/// `system_logs` columns with rows in (key, timestamp, seq) order, the key
/// dictionary sorted by (service, severity) (format version 4): the rows of
/// one key, and of one key in one minute, are contiguous, and the counts
/// section says where.
pub const CODEC_LOG_KEYED: u8 = 3;

/// Whether a codec stores `system_logs` columns (and a key per row).
pub(crate) fn is_log_codec(codec: u8) -> bool {
    codec == CODEC_LOG_COLUMNS || codec == CODEC_LOG_KEYED
}
/// Largest decompressed section accepted.
pub const SECTION_RAW_MAX: usize = 1 << 30;
/// String columns of a `system_logs` body, in order.
pub(crate) const LOG_COLUMNS: usize = 5;
