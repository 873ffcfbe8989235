//! Durability levels and the fsync choreography, in one place: every fsync,
//! fdatasync and directory fsync of the engine goes through here, which is
//! where the test-only switches of [`test_faults`] hook in.

pub mod test_faults;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

pub use logpulse_model::Durability;

/// fsyncs a directory so that entries created or renamed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    test_faults::before_sync().map_err(|e| Error::io(dir, e))?;
    let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))?;
    test_faults::synced_dir(dir);
    Ok(())
}

/// [`fsync_dir`] after new files were created in `dir` (and fsynced), which
/// makes their names durable.
pub fn fsync_new_entries(dir: &Path) -> Result<()> {
    if test_faults::mutated("skip-new-file-dir-sync") {
        return Ok(());
    }
    fsync_dir(dir)
}

/// Replaces `path` with `data` atomically: temp file, fsync, rename, fsync dir.
pub fn rewrite_atomic(path: &Path, data: &[u8]) -> Result<()> {
    rewrite_atomic_mode(path, data, 0o644)
}

/// [`rewrite_atomic`] for secrets: the file is created with mode 0600.
pub fn rewrite_private(path: &Path, data: &[u8]) -> Result<()> {
    rewrite_atomic_mode(path, data, 0o600)
}

fn rewrite_atomic_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        f.write_all(data).map_err(|e| Error::io(&tmp, e))?;
        sync_file(&f, &tmp)?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    fsync_dir(dir)
}

/// Reserves `len` bytes of real disk space for `file` (no holes), so that a
/// full disk shows up here as an error rather than as SIGBUS on a map write.
pub fn reserve(file: &File, path: &Path, len: u64) -> Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    match fallocate(file, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => {
            // Filesystems without fallocate: extend and write zeros ourselves.
            zero_fill(file, path, len)
        }
        Err(e) => Err(Error::io(path, e.into())),
    }
}

fn zero_fill(file: &File, path: &Path, len: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let cur = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let zeros = vec![0u8; 1 << 16];
    let mut off = cur;
    while off < len {
        let n = ((len - off) as usize).min(zeros.len());
        file.write_all_at(&zeros[..n], off)
            .map_err(|e| Error::io(path, e))?;
        off += n as u64;
    }
    Ok(())
}

/// fsyncs a file's data and metadata.
pub fn sync_file(file: &File, path: &Path) -> Result<()> {
    test_faults::before_sync().map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    test_faults::synced_file(path);
    Ok(())
}

/// fdatasyncs a file: its data, and the metadata needed to read it back.
pub fn sync_data(file: &File, path: &Path) -> Result<()> {
    test_faults::before_sync().map_err(|e| Error::io(path, e))?;
    file.sync_data().map_err(|e| Error::io(path, e))?;
    test_faults::synced_file(path);
    Ok(())
}

/// Gives an fsynced file its final name durably: rename, then fsync the
/// directory. After it returns, a crash leaves the file under `to`.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(to, e))?;
    fsync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// Removes files of one directory durably: unlink each, then fsync the
/// directory once. A file already gone counts as removed.
pub fn remove_durable(dir: &Path, files: &[std::path::PathBuf]) -> Result<()> {
    for f in files {
        match fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(f, e)),
        }
    }
    fsync_dir(dir)
}
