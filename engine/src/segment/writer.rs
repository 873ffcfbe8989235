//! The append side of one segment file, owned by the engine's writer thread.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{Header, HEADER_LEN, KIND_HOT, SYNCED_LEN_OFFSET};
use super::mmap::{MapAppender, SegmentMap};
use super::SegmentId;
use crate::durability::{fsync_new_entries, reserve, sync_data, sync_file};
use crate::error::{Error, Result};

/// First reservation of a new segment file.
const INITIAL_CAPACITY_BYTES: usize = 256 << 10;
/// Largest single growth step.
const GROWTH_MAX_BYTES: usize = 64 << 20;

/// A segment file open for appending.
pub struct OpenSegment {
    pub id: SegmentId,
    pub path: PathBuf,
    file: File,
    appender: MapAppender,
    header: Header,
    /// Where the next frame goes; equals the committed length after `commit`.
    pub write_pos: usize,
    /// Committed bytes not yet fsynced.
    unsynced: bool,
    /// Created and never fsynced: its header and directory entry are not
    /// durable yet (the first sync makes them so).
    created: bool,
}

impl OpenSegment {
    /// Creates a new segment file with its header and reserved space.
    ///
    /// Nothing is fsynced here: a new hour costs no disk flush on the append
    /// path. The first [`Self::sync`] fsyncs the file (header included) and
    /// then its directory, before any append that asked for durability is
    /// acknowledged. A crash before that may leave the file missing, blank,
    /// or with rows but a zero header (which recovery restores from the
    /// file's name and directory); none of its rows was promised durable.
    pub fn create(dir: &Path, datasource: u8, id: SegmentId, room: usize) -> Result<OpenSegment> {
        let path = id.path_in(dir);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let header = Header {
            kind: KIND_HOT,
            datasource,
            hour: id.hour,
            file_no: id.file_no,
            synced_len: HEADER_LEN as u64,
        };
        let cap = (HEADER_LEN + room)
            .max(INITIAL_CAPACITY_BYTES)
            .next_power_of_two();
        let setup = || -> Result<()> {
            reserve(&file, &path, cap as u64)?;
            file.write_all_at(&header.encode(), 0)
                .map_err(|e| Error::io(&path, e))
        };
        if let Err(e) = setup() {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let (_, appender) =
            SegmentMap::create(&file, cap, HEADER_LEN).map_err(|e| Error::io(&path, e))?;
        Ok(OpenSegment {
            id,
            path,
            file,
            appender,
            header,
            write_pos: HEADER_LEN,
            unsynced: false,
            created: true,
        })
    }

    /// Reopens an existing, recovered segment whose valid records end at `valid_end`.
    pub fn reopen(path: &Path, header: Header, valid_end: usize) -> Result<OpenSegment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len() as usize;
        let (_, appender) = SegmentMap::create(&file, len.max(valid_end), valid_end)
            .map_err(|e| Error::io(path, e))?;
        let id = SegmentId {
            hour: header.hour,
            file_no: header.file_no,
        };
        Ok(OpenSegment {
            id,
            path: path.to_path_buf(),
            file,
            appender,
            header,
            write_pos: valid_end,
            unsynced: false,
            created: false,
        })
    }

    pub fn map(&self) -> &Arc<SegmentMap> {
        self.appender.map()
    }

    /// Makes room for `extra` more bytes, reserving disk space and remapping
    /// if needed. Returns whether the map changed.
    pub fn ensure_room(&mut self, extra: usize) -> Result<bool> {
        let need = self.write_pos + extra;
        let cap = self.map().capacity();
        if need <= cap {
            return Ok(false);
        }
        let grown = need.max(cap + cap.clamp(INITIAL_CAPACITY_BYTES, GROWTH_MAX_BYTES));
        let grown = grown.div_ceil(INITIAL_CAPACITY_BYTES) * INITIAL_CAPACITY_BYTES;
        reserve(&self.file, &self.path, grown as u64)?;
        let (_, appender) = SegmentMap::create(&self.file, grown, self.write_pos)
            .map_err(|e| Error::io(&self.path, e))?;
        self.appender = appender;
        Ok(true)
    }

    /// Copies encoded frames in at the write position (room must have been
    /// ensured). Returns the offset they start at.
    pub fn append(&mut self, frames: &[u8]) -> usize {
        let at = self.write_pos;
        self.appender.write(at, frames);
        self.write_pos += frames.len();
        at
    }

    /// Makes everything appended so far visible to readers of the map.
    pub fn commit(&mut self) {
        self.appender.commit(self.write_pos);
        self.unsynced = true;
    }

    pub fn needs_sync(&self) -> bool {
        self.unsynced || self.created
    }

    /// fsyncs the committed records, then records the synced length in the
    /// header (made durable by the next sync: the header never claims more
    /// than is on disk). The first sync of a new file also fsyncs its
    /// directory entry.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(dir) = self.sync_file()? {
            fsync_new_entries(&dir)?;
        }
        Ok(())
    }

    /// [`Self::sync`] but for the directory fsync, which is left to the
    /// caller: returns the directory that must be fsynced (once, after all
    /// files of a group commit) before the sync counts.
    pub fn sync_file(&mut self) -> Result<Option<PathBuf>> {
        if !self.unsynced && !self.created {
            return Ok(None);
        }
        if self.created {
            sync_file(&self.file, &self.path)
        } else {
            sync_data(&self.file, &self.path)
        }?;
        self.header.synced_len = self.write_pos as u64;
        let h = self.header.encode();
        self.file
            .write_all_at(&h[SYNCED_LEN_OFFSET..], SYNCED_LEN_OFFSET as u64)
            .map_err(|e| Error::io(&self.path, e))?;
        self.unsynced = false;
        if std::mem::take(&mut self.created) {
            return Ok(Some(
                self.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            ));
        }
        Ok(None)
    }
}
