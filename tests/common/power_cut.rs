//! The power-cut simulation of the test side: a daemon started with
//! [`Faults::options`] records, at every sync point, what is durable
//! (`logpulse_engine::durability::test_faults`); [`Faults::power_cut`] kills
//! it and rebuilds its data dir from that record alone, as a power cut at
//! that moment would have left it. The same switches inject a failing
//! fsync and a stalled writer.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logpulse_engine::durability::test_faults::{dir_record, ENV, MUTATION_ENV};

use super::{ndjson, tagged_row, Daemon, Options, Resp};

/// The control directory of a daemon's test switches.
pub struct Faults {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new()
    }
}

impl Faults {
    pub fn new() -> Faults {
        let tmp = tempfile::Builder::new()
            .prefix("logpulse-faults-")
            .tempdir()
            .expect("tempdir");
        Faults {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
        }
    }

    /// `opts` with the switches on (and `mutation` removing one sync).
    pub fn options(&self, opts: Options, mutation: Option<&str>) -> Options {
        let mut o = opts;
        o.env.push((ENV.into(), self.dir.display().to_string()));
        if let Some(m) = mutation {
            o.env.push((MUTATION_ENV.into(), m.into()));
        }
        o
    }

    /// Makes every later sync point fail (or work again).
    pub fn fail_fsync(&self, on: bool) {
        self.flag("fail-fsync", on)
    }

    /// Stalls every sync point until called with `false`.
    pub fn stall(&self, on: bool) {
        self.flag("stall", on)
    }

    fn flag(&self, name: &str, on: bool) {
        let p = self.dir.join(name);
        if on {
            fs::write(&p, b"").expect("create a fault switch");
        } else {
            let _ = fs::remove_file(&p);
        }
    }

    /// `kill -9`, then replaces the data dir with what the durable image
    /// holds (the crashed dir is kept next to it as `<data>.crashed`).
    pub fn power_cut(&self, d: &mut Daemon) {
        d.kill9();
        self.rebuild(&d.data_dir)
            .expect("rebuild the data dir from its durable image");
    }

    /// Replaces `data_dir` by its durable image.
    pub fn rebuild(&self, data_dir: &Path) -> io::Result<()> {
        let crashed = data_dir.with_extension("crashed");
        let _ = fs::remove_dir_all(&crashed);
        fs::rename(data_dir, &crashed)?;
        fs::create_dir(data_dir)?;
        self.rebuild_dir(data_dir, data_dir, &crashed)
    }

    fn rebuild_dir(&self, dir: &Path, root: &Path, crashed: &Path) -> io::Result<()> {
        let image = self.dir.join("image");
        let listing = match fs::read_to_string(dir_record(&image, dir)) {
            Ok(l) => l,
            // A directory whose entries were never made durable is empty.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for line in listing.lines() {
            let mut parts = line.splitn(3, ' ');
            let (kind, ino, name) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let path = dir.join(name);
            if dir == root && name == logpulse_engine::INDEX_DIR {
                // sled syncs its own files, unseen by the engine's sync
                // points: it is taken as the crash left it (the engine
                // reconciles it with the segments at open anyway).
                copy_tree(&crashed.join(name), &path)?;
            } else if kind == "d" {
                fs::create_dir(&path)?;
                self.rebuild_dir(&path, root, crashed)?;
            } else {
                // A durable name whose contents were never fsynced is empty.
                let data = fs::read(image.join("files").join(ino)).unwrap_or_default();
                fs::write(&path, data)?;
            }
        }
        Ok(())
    }
}

pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        } else {
            fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// One append from a client thread: the status, or the transport error (the
/// power cut).
pub fn post_rows(
    base: &str,
    token: &str,
    wait: bool,
    ids: &[String],
    ts: i64,
) -> Result<Resp, String> {
    let rows: Vec<_> = ids.iter().map(|id| tagged_row(id, ts)).collect();
    let url = format!(
        "{base}/v0/events?name=system_logs{}",
        if wait { "&wait=true" } else { "" }
    );
    match ureq::post(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_secs(60))
        .send_bytes(ndjson(&rows).as_bytes())
    {
        Ok(r) => Ok(Resp {
            status: r.status(),
            headers: Vec::new(),
            body: r.into_string().unwrap_or_default().into_bytes(),
        }),
        Err(ureq::Error::Status(code, r)) => Ok(Resp {
            status: code,
            headers: Vec::new(),
            body: r.into_string().unwrap_or_default().into_bytes(),
        }),
        Err(e) => Err(e.to_string()),
    }
}

/// `kill -9` from another thread than the one owning the daemon.
pub fn sigkill(pid: i32) {
    // SAFETY: kill(2) on the pid of a child the test spawned and has not reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Segment files of a directory whose header says kind 2 (compact).
pub fn compact_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .filter(|e| std::fs::read(e.path()).is_ok_and(|b| b.get(10) == Some(&2)))
                .count()
        })
        .unwrap_or(0)
}
