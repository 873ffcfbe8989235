//! Hot-segment checkpoints: what recovery needs of a hot file's records
//! (offset, timestamp, key), stored so that a reopen reads them instead of
//! decoding every record (layout in the table of [`super`]).
//!
//! A chunk covers a contiguous run of a file's frames and is written only
//! after those frames were fsynced, so a chunk in the index always describes
//! durable bytes. Recovery trusts a file's chunks only when they are
//! contiguous from the header and the last frame of each is, in the file,
//! a valid frame with the recorded checksum and seq; otherwise the file is
//! scanned whole, as without a checkpoint. The segments stay the ground
//! truth.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::segment::SegmentId;

/// One run of a hot file's frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotChunk {
    /// Offset of the first frame covered.
    pub start: u32,
    /// Offset just past the last frame covered.
    pub end: u32,
    /// The last frame covered: its offset, seq and stored checksum.
    pub last_offset: u32,
    pub last_seq: u64,
    pub last_crc: u32,
    /// Every batch up to this seq was complete and durable when the chunk
    /// was written (the writer's watermark after its fsync).
    pub batch_end: u64,
    /// `system_logs`: the chunk's (service, severity) keys; entries refer to
    /// them by position. Empty for the other data sources.
    pub keys: Vec<(String, String)>,
    /// (offset, timestamp, key position) of every frame covered, in order.
    pub entries: Vec<(u32, u32, u32)>,
}

/// Every stored chunk, by (data source id, segment), in file order.
pub type HotChunks = HashMap<(u8, SegmentId), Vec<HotChunk>>;

/// The index key of a chunk: `h` datasource hour file_no start.
pub(super) fn chunk_key(ds: u8, id: SegmentId, start: u32) -> Vec<u8> {
    let mut k = segment_prefix(ds, id);
    k.extend_from_slice(&start.to_be_bytes());
    k
}

/// The prefix of every chunk key of one segment.
pub(super) fn segment_prefix(ds: u8, id: SegmentId) -> Vec<u8> {
    let mut k = vec![b'h', ds];
    k.extend_from_slice(&id.hour.to_be_bytes());
    k.extend_from_slice(&id.file_no.to_be_bytes());
    k
}

/// (data source id, segment) of a chunk key.
pub(super) fn parse_chunk_key(k: &[u8]) -> Option<(u8, SegmentId)> {
    if k.len() != 14 || k[0] != b'h' {
        return None;
    }
    Some((
        k[1],
        SegmentId {
            hour: u32::from_be_bytes(k[2..6].try_into().ok()?),
            file_no: u32::from_be_bytes(k[6..10].try_into().ok()?),
        },
    ))
}
