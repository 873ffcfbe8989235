//! The only module of logpulse that uses `unsafe`: shared memory maps of
//! segment files.
//!
//! # Invariants that make these maps sound
//!
//! 1. **Single appender.** A [`SegmentMap`] is created together with exactly
//!    one [`MapAppender`] (not `Clone`), owned by the engine's writer thread.
//!    Only the appender writes through the map, and only at offsets at or past
//!    the committed length.
//! 2. **Readers stay below the committed length.** [`SegmentMap::committed`]
//!    hands out `&[u8]` over `0..committed` only. The appender publishes a new
//!    committed length with `Release` after the bytes are written; readers load
//!    it with `Acquire`. Bytes below the committed length are never written
//!    through the map again, so shared slices never alias a write.
//! 3. **Files never shrink while mapped.** Space is reserved with
//!    `fallocate` before the map is made, so writing to the map cannot hit a
//!    hole (no SIGBUS on a full disk: the reservation fails instead). Torn
//!    tails are truncated during recovery, before any map of the file exists.
//!    Growing a file makes a new, larger map; old maps stay valid because the
//!    pages they cover still exist. Deleting a file (truncate, retention,
//!    compaction) unlinks it; existing maps keep the inode alive.
//! 4. **No one else writes the files.** The data dir lock keeps a second
//!    logpulse process out. A foreign process writing segment bytes while they
//!    are mapped is outside what we can defend against (as with any mmap).
//! 5. The header (bytes `0..HEADER_LEN`) is updated with `pwrite` on the file,
//!    never through the map, and readers never read it through the map after
//!    opening.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions, MmapRaw};

/// A read-write shared map of a segment file, readable up to its committed length.
pub struct SegmentMap {
    raw: MmapRaw,
    committed: AtomicUsize,
}

// SAFETY: the map is plain memory; all access goes through `committed()` (shared
// reads below the committed length) or the unique `MapAppender` (writes at or
// past it), see the module invariants.
unsafe impl Sync for SegmentMap {}
unsafe impl Send for SegmentMap {}

/// The one handle that may write into a [`SegmentMap`].
pub struct MapAppender {
    map: Arc<SegmentMap>,
}

impl SegmentMap {
    /// Maps `len` bytes of `file` (which must already be at least that long and
    /// allocated) with `committed` bytes already valid.
    pub fn create(
        file: &File,
        len: usize,
        committed: usize,
    ) -> io::Result<(Arc<SegmentMap>, MapAppender)> {
        assert!(committed <= len, "committed length past the map");
        let raw = MmapOptions::new().len(len).map_raw(file)?;
        let map = Arc::new(SegmentMap {
            raw,
            committed: AtomicUsize::new(committed),
        });
        Ok((map.clone(), MapAppender { map }))
    }

    /// The bytes `0..committed`.
    pub fn committed(&self) -> &[u8] {
        let len = self.committed.load(Ordering::Acquire);
        // SAFETY: invariant 2: no write touches 0..committed while this slice
        // lives; the range lies inside the mapping (committed <= map length).
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr(), len) }
    }

    pub fn committed_len(&self) -> usize {
        self.committed.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> usize {
        self.raw.len()
    }

    /// Writes dirty pages of `offset..offset+len` back to the file (msync).
    pub fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.raw.flush_range(offset, len)
    }
}

impl MapAppender {
    /// Copies `data` to `offset`, which must be at or past the committed length.
    ///
    /// # Panics
    /// If the range starts below the committed length or ends past the map.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        let committed = self.map.committed.load(Ordering::Relaxed);
        assert!(offset >= committed, "write below the committed length");
        assert!(
            offset + data.len() <= self.map.raw.len(),
            "write past the map"
        );
        // SAFETY: invariant 1: this appender is the only writer, the range is
        // inside the mapping and at/after `committed`, where no reader looks.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.raw.as_mut_ptr().add(offset),
                data.len(),
            );
        }
    }

    /// Makes bytes up to `len` visible to readers.
    pub fn commit(&mut self, len: usize) {
        assert!(len <= self.map.raw.len(), "commit past the map");
        self.map.committed.store(len, Ordering::Release);
    }

    pub fn map(&self) -> &Arc<SegmentMap> {
        &self.map
    }
}

/// A read-only map of a whole file, for recovery scans and sealed segments.
pub struct ReadMap {
    map: Option<Mmap>,
}

impl ReadMap {
    /// Maps all of `file` read-only. The file must not be truncated while the
    /// map lives (invariant 3).
    pub fn open(file: &File) -> io::Result<ReadMap> {
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(ReadMap { map: None });
        }
        // SAFETY: invariant 3 and 4: nobody truncates or rewrites the file
        // while this map lives; the recovery code drops it before truncating.
        let map = unsafe { MmapOptions::new().map(file)? };
        Ok(ReadMap { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
