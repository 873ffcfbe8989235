//! Hot-segment checkpoint files: what recovery needs of a hot file's records
//! (offset, timestamp, key), kept beside the data so that a reopen reads it
//! instead of decoding every record. Derived state, like the sled index:
//! `<data_dir>/checkpoint/<data source>/<segment file name>.ckpt`, removed
//! with its segment, never fsynced, and trusted only where the segment's own
//! frames agree with it (see `recovery/checkpoint.rs`).
//!
//! Layout (docs/format.md, "Hot checkpoint files"): an 8-byte header, magic
//! `LPHC` and version u16le (1) and two zero bytes, then chunk records, each
//! `len:u32le crc32:u32le` and `len` bytes of bincode [`HotChunk`]. A chunk
//! covers a contiguous run of the segment's frames and is appended only
//! after those frames were fsynced. A file with a record that does not
//! check (a torn append) is ignored whole.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SegmentId;
use crate::row::DataSource;

/// Directory of the checkpoint files, under the data dir.
pub const CHECKPOINT_DIR: &str = "checkpoint";

const MAGIC: &[u8; 4] = b"LPHC";
const VERSION: u16 = 1;
const HEADER: [u8; 8] = [b'L', b'P', b'H', b'C', VERSION as u8, 0, 0, 0];

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
    /// `system_logs`: the chunk's (service, severity) keys; entries refer to
    /// them by position. Empty for the other data sources.
    pub keys: Vec<(String, String)>,
    /// (offset, timestamp, key position) of every frame covered, in order.
    pub entries: Vec<(u32, u32, u32)>,
}

/// The checkpoint file of segment `id` of `ds`.
pub fn path_of(data_dir: &Path, ds: DataSource, id: SegmentId) -> PathBuf {
    data_dir
        .join(CHECKPOINT_DIR)
        .join(ds.name())
        .join(format!("{}.ckpt", id.file_name()))
}

/// Appends chunks to a segment's checkpoint file; `fresh`: the file starts
/// over with them (a first chunk, which begins at the segment's header).
pub fn append(path: &Path, chunks: &[HotChunk], fresh: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut out = Vec::new();
    if fresh {
        out.extend_from_slice(&HEADER);
    }
    for c in chunks {
        let body = bincode::serialize(c).map_err(std::io::Error::other)?;
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .append(!fresh)
        .truncate(fresh)
        .open(path)?;
    f.write_all(&out)
}

/// The chunks of a checkpoint file; empty if the file is missing, its
/// header is not this version's, or any record does not check (a torn
/// append: the file is then ignored whole, and the writer's next checkpoint
/// of the segment, finding nothing covered, rewrites it).
pub fn read(path: &Path) -> Vec<HotChunk> {
    let Ok(data) = fs::read(path) else {
        return Vec::new();
    };
    if data.len() < HEADER.len() || &data[..4] != MAGIC || data[..8] != HEADER {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut at = HEADER.len();
    while at < data.len() {
        let Some(head) = data.get(at..at + 8) else {
            return Vec::new();
        };
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let Some(body) = data.get(at + 8..at + 8 + len) else {
            return Vec::new();
        };
        if crc32fast::hash(body) != crc {
            return Vec::new();
        }
        match bincode::deserialize::<HotChunk>(body) {
            Ok(c) => out.push(c),
            Err(_) => return Vec::new(),
        }
        at += 8 + len;
    }
    out
}

/// Removes a segment's checkpoint file, if any.
pub fn remove(data_dir: &Path, ds: DataSource, id: SegmentId) {
    let _ = fs::remove_file(path_of(data_dir, ds, id));
}

/// Removes every checkpoint file of `ds` whose segment is not in `keep`.
pub fn remove_others(data_dir: &Path, ds: DataSource, keep: &[SegmentId]) {
    let dir = data_dir.join(CHECKPOINT_DIR).join(ds.name());
    let keep: Vec<String> = keep
        .iter()
        .map(|id| format!("{}.ckpt", id.file_name()))
        .collect();
    for ent in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            let _ = fs::remove_file(ent.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(start: u32, n: u32) -> HotChunk {
        HotChunk {
            start,
            end: start + 100 * n,
            last_offset: start + 100 * (n - 1),
            last_seq: 7,
            last_crc: 9,
            keys: vec![("api".into(), "ERROR".into())],
            entries: (0..n).map(|i| (start + 100 * i, 1_000 + i, 0)).collect(),
        }
    }

    #[test]
    fn chunks_round_trip_and_a_torn_append_voids_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let id = SegmentId {
            hour: 470_000,
            file_no: 2,
        };
        let path = path_of(tmp.path(), DataSource::SystemLogs, id);
        assert!(read(&path).is_empty(), "no file: no chunk");
        let (a, b) = (chunk(64, 3), chunk(364, 2));
        append(&path, std::slice::from_ref(&a), true).unwrap();
        append(&path, std::slice::from_ref(&b), false).unwrap();
        assert_eq!(read(&path), vec![a.clone(), b.clone()]);
        // A fresh first chunk starts the file over.
        append(&path, std::slice::from_ref(&a), true).unwrap();
        assert_eq!(read(&path), vec![a.clone()]);
        // Half a record at the end, or a flipped byte: ignored whole.
        let whole = fs::read(&path).unwrap();
        append(&path, std::slice::from_ref(&b), false).unwrap();
        let longer = fs::read(&path).unwrap();
        fs::write(&path, &longer[..longer.len() - 5]).unwrap();
        assert!(read(&path).is_empty());
        let mut flipped = whole.clone();
        flipped[20] ^= 1;
        fs::write(&path, flipped).unwrap();
        assert!(read(&path).is_empty());
        // Another version's file is not read.
        let mut other = whole;
        other[4] = 2;
        fs::write(&path, other).unwrap();
        assert!(read(&path).is_empty());
        // Only the checkpoint files of kept segments stay.
        append(&path, &[a], true).unwrap();
        remove_others(tmp.path(), DataSource::SystemLogs, &[id]);
        assert!(path.exists());
        remove_others(tmp.path(), DataSource::SystemLogs, &[]);
        assert!(!path.exists());
    }
}
