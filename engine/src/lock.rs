//! The data dir lock: one logpulse process per data dir.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
        let me = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().next().unwrap_or_else(|| "logpulse".into())
        );
        if !lock_or_wait_for_own_release(&file, &me) {
            let mut holder = String::new();
            let _ = file.seek(SeekFrom::Start(0));
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

/// How long a lock that this very process seems to hold is waited for.
const OWN_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Takes the lock. If the lock file names this process, waits a little for
/// it: the lock belongs to the open file, and a child being spawned (by any
/// thread) holds a copy of every descriptor between its fork and its exec,
/// so a data dir closed just now can still look locked by us for that long.
/// An engine really open on the dir in this process stays refused.
fn lock_or_wait_for_own_release(file: &File, me: &str) -> bool {
    let deadline = Instant::now() + OWN_RELEASE_WAIT;
    loop {
        if file.try_lock().is_ok() {
            return true;
        }
        let mut holder = String::new();
        let named_us = (&*file).seek(SeekFrom::Start(0)).is_ok()
            && (&*file).read_to_string(&mut holder).is_ok()
            && holder.trim() == me;
        if !named_us || Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
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
