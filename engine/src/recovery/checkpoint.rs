//! Reading a hot file's records from its checkpoint chunks (see
//! `segment/checkpoint.rs`) instead of decoding them: only after checking the
//! chunks against the file itself. The file's frames are still walked and
//! their checksums checked (damage is found at open, by file and offset, as
//! without a checkpoint); what the checkpoint saves is decoding each
//! record and interning its key.

use std::fs::File;
use std::path::Path;

use tracing::info;

use crate::keys::Keys;
use crate::row::DataSource;
use crate::segment::checkpoint::HotChunk;
use crate::segment::format::{read_frame, FrameRead, HEADER_LEN};
use crate::segment::mmap::ReadMap;
use crate::segment::Entry;

/// The entries `chunks` give for the hot file at `path`, or `None` when
/// they do not agree with it (then the file is scanned whole).
pub(super) fn load(
    ds: DataSource,
    path: &Path,
    chunks: &[HotChunk],
    keys: &mut Keys,
) -> Option<Vec<Entry>> {
    let agree = File::open(path)
        .and_then(|f| ReadMap::open(&f))
        .is_ok_and(|map| agrees(map.bytes(), chunks));
    if !agree {
        info!(file = %path.display(), "checkpoint disagrees with the segment; scanning it");
        return None;
    }
    let rows = chunks.iter().map(|c| c.entries.len()).sum();
    let mut entries = Vec::with_capacity(rows);
    for c in chunks {
        let ids: Vec<u32> = match ds {
            DataSource::SystemLogs => c.keys.iter().map(|(s, v)| keys.intern(s, v)).collect(),
            _ => Vec::new(),
        };
        for &(offset, ts, k) in &c.entries {
            let key = match ds {
                DataSource::SystemLogs => *ids.get(k as usize)?,
                _ => 0,
            };
            entries.push(Entry { offset, ts, key });
        }
    }
    Some(entries)
}

/// Whether the chunks run contiguously from the header and each one's last
/// frame is, in `data`, a valid frame with the recorded checksum and seq.
fn agrees(data: &[u8], chunks: &[HotChunk]) -> bool {
    let mut at = HEADER_LEN as u32;
    for c in chunks {
        let first = c.entries.first().map(|e| e.0);
        let last = c.entries.last().map(|e| e.0);
        if c.start != at || first != Some(c.start) || last != Some(c.last_offset) {
            return false;
        }
        let off = c.last_offset as usize;
        let FrameRead::Frame(f) = read_frame(data, off) else {
            return false;
        };
        let crc = data[off + 4..off + 8]
            .try_into()
            .ok()
            .map(u32::from_le_bytes);
        if f.seq != c.last_seq || crc != Some(c.last_crc) || off + f.total_len() != c.end as usize {
            return false;
        }
        at = c.end;
    }
    !chunks.is_empty()
}
