//! The files of a data dir as recovery finds them: listing segment files,
//! finishing or rolling back a compaction a crash interrupted, removing
//! blank files and restoring the zero header of a never-synced one.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::error::{Error, Result};
use crate::row::DataSource;
use crate::segment::compact::{peek_info, CompactInfo, CompactSegment};
use crate::segment::format::{Header, KIND_HOT};

/// Suffix of a compact segment being written (`<name>.seg.compacting`).
pub const COMPACTING_SUFFIX: &str = "compacting";

/// Finishes or rolls back a compaction that a crash interrupted (see
/// docs/format.md, "Compaction"): a `.seg.compacting` file never got its
/// name, so it is deleted and the segments it was made from stay; a compact
/// segment that has its name is complete (it was fsynced before the rename),
/// so the segments of its hour that it replaces are deleted. Returns the
/// segment files that remain.
pub(super) fn finish_compactions(dir: &Path, paths: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let mut changed = false;
    for ent in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = ent.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == COMPACTING_SUFFIX) {
            warn!(file = %p.display(), "removing an incomplete compact segment left by a crash");
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            changed = true;
        }
    }
    let mut compact: Vec<(u32, u32, CompactInfo)> = Vec::new();
    for p in &paths {
        // Files that are not readable compact segments are dealt with by the
        // scan (blank files, damage): only a valid compact file replaces.
        let Ok(Some((h, info))) = peek_info(p) else {
            continue;
        };
        CompactSegment::open_read_only(p)?;
        compact.push((h.hour, h.file_no, info));
    }
    let mut keep = Vec::with_capacity(paths.len());
    for p in paths {
        let id = segment_id_of(&p);
        let replaced = id.is_some_and(|(hour, file_no)| {
            compact
                .iter()
                .any(|(h, n, info)| *h == hour && *n != file_no && info.replaces(file_no))
        });
        if replaced {
            warn!(file = %p.display(), "removing a segment replaced by a compact segment (finishing an interrupted compaction)");
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            changed = true;
        } else {
            keep.push(p);
        }
    }
    if changed {
        crate::durability::fsync_dir(dir)?;
    }
    Ok(keep)
}

/// (hour, file_no) of a segment file, from its header (blank or unreadable
/// files: `None`).
pub(super) fn segment_id_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(path).ok()?;
    let mut b = [0u8; crate::segment::format::HEADER_LEN];
    f.read_exact_at(&mut b, 0).ok()?;
    let h = Header::decode(path, &b).ok()?;
    Some((h.hour, h.file_no))
}

pub(super) fn segment_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = ent.map_err(|e| Error::io(dir, e))?.path();
        if p.extension().is_some_and(|x| x == "seg") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// A hot segment is created without an fsync; its first sync makes header
/// and records durable together. A crash before that can leave records on
/// disk but the header page not: a zero header followed by data. Such a file
/// never had a synced byte, so its header is restored from its name and
/// directory with `synced_len` = the header's length, and its frames are
/// then checked like any torn tail (valid frames kept, the rest dropped).
pub(super) fn restore_zero_header(ds: DataSource, path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; crate::segment::format::HEADER_LEN];
    if file.read_exact_at(&mut head, 0).is_err() || head.iter().any(|b| *b != 0) {
        return Ok(());
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parsed = name.strip_suffix(".seg").and_then(|stem| {
        let (label, no) = stem.split_once('-')?;
        Some((
            crate::time::hour_from_label(label)?,
            no.parse::<u32>().ok()?,
        ))
    });
    let Some((hour, file_no)) = parsed else {
        return Err(Error::corrupt(
            path,
            0,
            "zero header and a name that is not HOUR-NNNN.seg",
        ));
    };
    warn!(file = %path.display(), "restoring the zero header of a segment that was never synced");
    let header = Header {
        kind: KIND_HOT,
        datasource: ds.id(),
        hour,
        file_no,
        synced_len: crate::segment::format::HEADER_LEN as u64,
    };
    file.write_all_at(&header.encode(), 0)
        .map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Whether a segment file holds nothing but zeros (or nothing at all).
pub(super) fn is_blank(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; crate::segment::format::HEADER_LEN];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]).map_err(|e| Error::io(path, e))? {
            0 => break,
            k => n += k,
        }
    }
    if head[..n].iter().any(|b| *b != 0) {
        return Ok(false);
    }
    let rest = fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(rest.iter().all(|b| *b == 0))
}
