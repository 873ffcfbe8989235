//! Reading one segment file at open: every record of a hot file, the
//! directory of a compact one.

use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

use super::checkpoint;
use super::records::scan;
use super::{map_file, Found};
use crate::error::{Error, Result};
use crate::keys::{Keys, SharedKey};
use crate::row::{decode_log_head, decode_quarantine, decode_threshold, DataSource};
use crate::segment::checkpoint::HotChunk;
use crate::segment::compact::{own_names, peek_info, BlockCache, CompactSegment, KeyDict};
use crate::segment::format::Header;
use crate::segment::{Entry, Segment, SegmentId};

/// Reads one segment file: a compact one's directory; a hot one's records,
/// those its valid checkpoint `chunks` cover from them and the rest from
/// the file.
pub(super) fn scan_one(
    ds: DataSource,
    path: &Path,
    keys: &mut Keys,
    cache: &Arc<BlockCache>,
    chunks: &[HotChunk],
) -> Result<Found> {
    if let Some((header, _)) = peek_info(path)? {
        let mut intern = |names: &[(&str, &str)]| keys.intern_shared_many(names);
        return scan_compact(ds, path, path, header, &mut intern, cache);
    }
    let known = if chunks.is_empty() || ds == DataSource::Thresholds {
        Vec::new()
    } else {
        checkpoint::load(ds, path, chunks, keys).unwrap_or_default()
    };
    let mut ckpt_rows = 0;
    let mut entries = Vec::with_capacity(known.len());
    let mut seqs = Vec::with_capacity(known.len());
    let mut thresholds = Vec::new();
    let mut batch_end = 0;
    let s = scan(path, |offset, frame, body| {
        if frame.batch_rest == 0 {
            batch_end = batch_end.max(frame.seq);
        }
        // A checked frame the checkpoint describes: its entry as stored.
        if ckpt_rows == entries.len() {
            if let Some(k) = known.get(ckpt_rows).filter(|k| k.offset == offset) {
                entries.push(*k);
                seqs.push(frame.seq);
                ckpt_rows += 1;
                return Ok(());
            }
        }
        let bad = |e: String| {
            Error::corrupt(path, offset as u64, format!("undecodable record body: {e}"))
        };
        let (ts, key) = match ds {
            DataSource::SystemLogs => {
                let h = decode_log_head(body).map_err(bad)?;
                (h.timestamp, keys.intern(h.service, h.severity))
            }
            DataSource::Thresholds => {
                let t = decode_threshold(body).map_err(bad)?;
                let ts = t.updated_at;
                thresholds.push((t, frame.seq));
                (ts, 0)
            }
            _ => (decode_quarantine(body).map_err(bad)?.insertion_date, 0),
        };
        entries.push(Entry { offset, ts, key });
        seqs.push(frame.seq);
        Ok(())
    })?;
    if s.header.datasource != ds.id() {
        return Err(Error::corrupt(
            path,
            11,
            format!(
                "segment of data source {} found in {}",
                s.header.datasource,
                ds.name()
            ),
        ));
    }
    let id = SegmentId {
        hour: s.header.hour,
        file_no: s.header.file_no,
    };
    Ok(Found {
        ds,
        id,
        path: path.to_path_buf(),
        header: s.header,
        entries,
        seqs,
        thresholds,
        valid_end: s.valid_end,
        file_len: s.file_len,
        tail: s.tail,
        batch_end,
        compact: None,
        key_ids: Vec::new(),
        ckpt_rows,
    })
}

/// Loads a compact segment as recovery does, for installing it: from
/// `path`, its temporary name, as the file it will be once renamed to
/// `name`. Run by the compaction thread before it hands the segment to the
/// writer: its keys, every one of them interned already by the rows it was
/// built from, are looked up a read lock at a time, so neither the writer
/// nor an ingest waiting on the interner pays for a file's dictionary.
pub(crate) fn load_compact_segment(
    ds: DataSource,
    path: &Path,
    name: &Path,
    keys: &RwLock<Keys>,
    cache: &Arc<BlockCache>,
) -> Result<Segment> {
    let Some((header, _)) = peek_info(path)? else {
        return Err(Error::corrupt(path, 10, "not a compact segment"));
    };
    let mut intern = |names: &[(&str, &str)]| {
        let found = keys.read().get_shared_many(names);
        found
            .into_iter()
            .zip(names)
            .map(|(k, (s, v))| k.unwrap_or_else(|| keys.write().intern_shared(s, v)))
            .collect()
    };
    let f = scan_compact(ds, path, name, header, &mut intern, cache)?;
    Ok(Segment {
        id: f.id,
        path: f.path,
        map: f
            .compact
            .as_ref()
            .and_then(|c| c.map())
            .expect("opened through a shared map")
            .clone(),
        entries: f.entries,
        appendable: false,
        compact: f.compact,
        by_global: crate::segment::order_by_global(&f.key_ids),
        key_ids: f.key_ids,
    })
}

/// Interns a file's `system_logs` keys: their ids and the engine's shared
/// strings.
type Intern<'a> = dyn FnMut(&[(&str, &str)]) -> Vec<SharedKey> + 'a;

/// Opens a compact segment through its directory: no row is read, except
/// the rows of `log_anomaly_thresholds` (few, and needed for the thresholds
/// in force). Block CRCs are checked when a block is read; `logpulse-compact
/// --verify-only` checks every one. The file at `path` is known as `name`
/// (they differ while a compaction installs it).
fn scan_compact(
    ds: DataSource,
    path: &Path,
    name: &Path,
    header: Header,
    intern: &mut Intern<'_>,
    cache: &Arc<BlockCache>,
) -> Result<Found> {
    if header.datasource != ds.id() {
        return Err(Error::corrupt(
            path,
            11,
            format!(
                "segment of data source {} found in {}",
                header.datasource,
                ds.name()
            ),
        ));
    }
    let mut key_ids = Vec::new();
    let logs = ds == DataSource::SystemLogs;
    // A system_logs file's dictionary shares the engine's strings.
    let mut names = |keys: &[(&str, &str)]| -> KeyDict {
        if !logs {
            return own_names(keys);
        }
        intern(keys)
            .into_iter()
            .map(|(id, s, v)| {
                key_ids.push(id);
                (s, v)
            })
            .collect()
    };
    let map = map_file(path, header.synced_len)?;
    let c = CompactSegment::open(name, map, cache.clone(), &mut names)?;
    let path = name;
    let mut thresholds = Vec::new();
    if ds == DataSource::Thresholds {
        for bi in 0..c.blocks.len() {
            for (_, seq, body) in c.block_rows(bi)? {
                let t = decode_threshold(&body).map_err(|e| {
                    Error::corrupt(
                        path,
                        c.blocks[bi].offset,
                        format!("undecodable record body: {e}"),
                    )
                })?;
                thresholds.push((t, seq));
            }
        }
    }
    let len = header.synced_len;
    Ok(Found {
        ds,
        id: SegmentId {
            hour: header.hour,
            file_no: header.file_no,
        },
        path: path.to_path_buf(),
        header,
        batch_end: c.seq_range().map_or(0, |r| r.1),
        entries: Vec::new(),
        seqs: Vec::new(),
        thresholds,
        valid_end: len,
        file_len: len,
        tail: None,
        compact: Some(Arc::new(c)),
        key_ids,
        ckpt_rows: 0,
    })
}
