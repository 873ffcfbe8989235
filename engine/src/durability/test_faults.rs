//! Test-only switches at the sync points: fault injection, and a record of
//! what a power cut would leave (the "durable image").
//!
//! Everything here is off unless the environment variable
//! `LOGPULSE_TEST_FAULTS` names a directory when the process first reaches a
//! sync point; the daemon logs a warning at start when it is set. Then, under
//! that directory:
//!
//! - `fail-fsync` exists: every sync point fails with an I/O error (the
//!   writer poisons itself; nothing retries a failed fsync).
//! - `stall` exists: every sync point waits until it is removed (the writer
//!   stops draining its queue, so ingestion fills it).
//! - `image/` is kept up to date with the durable image of the data dir:
//!   `image/files/<inode>` holds a file's contents as of its last fsync, and
//!   `image/dirs/<path>` the entries (name, inode, kind) a directory fsync
//!   made durable. [`start`] records the data dir as it is when the process
//!   starts (all of it durable). A test rebuilds a data dir from this image
//!   alone to see what a power cut at that moment would have left.
//!
//! `LOGPULSE_TEST_MUTATION` (read only with `LOGPULSE_TEST_FAULTS` set)
//! removes one sync, to show that the power-cut tests catch its absence:
//! `skip-wait-sync` (the fsync before a `wait=true` append is acknowledged),
//! `skip-new-file-dir-sync` (the directory fsync after a new segment file),
//! `skip-background-sync` (the periodic sync).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

/// The environment variable that turns the switches on.
pub const ENV: &str = "LOGPULSE_TEST_FAULTS";
/// The environment variable naming one sync to remove.
pub const MUTATION_ENV: &str = "LOGPULSE_TEST_MUTATION";

struct Faults {
    dir: PathBuf,
    mutation: Option<String>,
    /// Serializes recording (the writer and compaction sync concurrently).
    lock: Mutex<()>,
}

static FAULTS: OnceLock<Option<Faults>> = OnceLock::new();

fn get() -> Option<&'static Faults> {
    FAULTS
        .get_or_init(|| {
            let dir = PathBuf::from(std::env::var_os(ENV)?);
            Some(Faults {
                dir,
                mutation: std::env::var(MUTATION_ENV).ok().filter(|m| !m.is_empty()),
                lock: Mutex::new(()),
            })
        })
        .as_ref()
}

/// Whether the test switches are on (the daemon warns at start if so).
pub fn enabled() -> bool {
    get().is_some()
}

/// Whether the sync called `name` has been removed for a mutation test.
pub fn mutated(name: &str) -> bool {
    get().is_some_and(|f| f.mutation.as_deref() == Some(name))
}

/// Called before every sync: waits while `stall` exists, fails if
/// `fail-fsync` does.
pub(crate) fn before_sync() -> io::Result<()> {
    let Some(f) = get() else { return Ok(()) };
    while f.dir.join("stall").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    if f.dir.join("fail-fsync").exists() {
        return Err(io::Error::other(format!(
            "fsync failed (injected by {ENV}/fail-fsync)"
        )));
    }
    Ok(())
}

/// Records `path`'s contents as durable (it was just fsynced).
pub(crate) fn synced_file(path: &Path) {
    let Some(f) = get() else { return };
    let _g = f.lock.lock();
    if let Err(e) = record_file(&f.dir, path) {
        tracing::warn!(error = %e, file = %path.display(), "recording the durable image failed");
    }
}

/// Records the entries of `dir` as durable (it was just fsynced).
pub(crate) fn synced_dir(dir: &Path) {
    let Some(f) = get() else { return };
    let _g = f.lock.lock();
    if let Err(e) = record_dir(&f.dir, dir) {
        tracing::warn!(error = %e, dir = %dir.display(), "recording the durable image failed");
    }
}

/// Starts a fresh image of `data_dir` as it is now: everything present
/// before the process started counts as durable.
pub fn start(data_dir: &Path) -> io::Result<()> {
    let Some(f) = get() else { return Ok(()) };
    let _g = f.lock.lock();
    let image = f.dir.join("image");
    match fs::remove_dir_all(&image) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(image.join("files"))?;
    fs::create_dir_all(image.join("dirs"))?;
    fs::create_dir_all(data_dir)?;
    record_tree(&f.dir, data_dir)
}

fn record_tree(root: &Path, dir: &Path) -> io::Result<()> {
    record_dir(root, dir)?;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            record_tree(root, &e.path())?;
        } else if t.is_file() {
            record_file(root, &e.path())?;
        }
    }
    Ok(())
}

/// The file of the image that holds the listing of directory `dir`.
pub fn dir_record(image: &Path, dir: &Path) -> PathBuf {
    let name: String = dir
        .to_string_lossy()
        .chars()
        .map(|c| if c == '/' { '%' } else { c })
        .collect();
    image.join("dirs").join(name)
}

fn record_file(root: &Path, path: &Path) -> io::Result<()> {
    let ino = fs::metadata(path)?.ino();
    let data = fs::read(path)?;
    write_replace(&root.join("image/files").join(ino.to_string()), &data)
}

fn record_dir(root: &Path, dir: &Path) -> io::Result<()> {
    let mut out = String::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        let kind = if m.is_dir() { 'd' } else { 'f' };
        out.push_str(&format!(
            "{kind} {} {}\n",
            m.ino(),
            e.file_name().to_string_lossy()
        ));
    }
    write_replace(&dir_record(&root.join("image"), dir), out.as_bytes())
}

fn write_replace(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = PathBuf::from(format!("{}.part", path.display()));
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}
