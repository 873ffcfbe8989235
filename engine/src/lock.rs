//! The data dir lock: one logpulse process per data dir.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the lock file inside the data dir.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive advisory lock on a data dir, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir`, writing our pid and program name into the lock file. A
    /// second process gets [`Error::Locked`] naming the holder.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Locked {
                path: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "unknown process".into()
                } else {
                    holder.to_string()
                },
            });
        }
        let me = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().next().unwrap_or_else(|| "logpulse".into())
        );
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(&path, e))?;
        file.write_all(me.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        Ok(DirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Locked { .. }), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
    }
}
