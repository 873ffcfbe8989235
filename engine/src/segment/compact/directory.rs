//! The directory of a compact segment: where its blocks are, their time
//! and seq ranges and keys, the file's key dictionary, and (from format
//! version 3) the per-minute counts of each key.

use std::sync::Arc;

use super::codec::{put_varint, unzigzag, Bad, Cursor};
use super::{is_log_codec, CODEC_BODIES, CODEC_LOG_KEYED, SECTION_RAW_MAX};
use crate::segment::format::{Header, HEADER_LEN, RESERVED_LEN};

/// Where a compact file's directory is and what it replaces (the header's
/// reserved area).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CompactInfo {
    pub dir_offset: u64,
    pub dir_len: u32,
    pub dir_crc: u32,
    /// The file numbers of the same hour this file replaces: every segment
    /// of its hour numbered `replaces_first..=replaces_last` is obsolete once
    /// this file exists under its `.seg` name.
    pub replaces_first: u32,
    pub replaces_last: u32,
    pub rows: u32,
    pub blocks: u32,
}

impl CompactInfo {
    pub fn encode(&self) -> [u8; RESERVED_LEN] {
        let mut r = [0u8; RESERVED_LEN];
        r[0..8].copy_from_slice(&self.dir_offset.to_le_bytes());
        r[8..12].copy_from_slice(&self.dir_len.to_le_bytes());
        r[12..16].copy_from_slice(&self.dir_crc.to_le_bytes());
        r[16..20].copy_from_slice(&self.replaces_first.to_le_bytes());
        r[20..24].copy_from_slice(&self.replaces_last.to_le_bytes());
        r[24..28].copy_from_slice(&self.rows.to_le_bytes());
        r[28..32].copy_from_slice(&self.blocks.to_le_bytes());
        r
    }

    pub fn decode(r: &[u8; RESERVED_LEN]) -> CompactInfo {
        let u32_at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().expect("4 bytes"));
        CompactInfo {
            dir_offset: u64::from_le_bytes(r[0..8].try_into().expect("8 bytes")),
            dir_len: u32_at(8),
            dir_crc: u32_at(12),
            replaces_first: u32_at(16),
            replaces_last: u32_at(20),
            rows: u32_at(24),
            blocks: u32_at(28),
        }
    }

    /// Whether this file makes segment `file_no` of its hour obsolete.
    pub fn replaces(&self, file_no: u32) -> bool {
        (self.replaces_first..=self.replaces_last).contains(&file_no)
    }
}

/// A file's (service, severity) dictionary.
pub type KeyDict = Vec<(Arc<str>, Arc<str>)>;

/// Makes the strings a file's dictionary keys are kept as, from their
/// bytes, all of them at once (the engine looks them up in its interner
/// together, their cache misses overlapped).
pub type KeyNamer<'a> = dyn FnMut(&[(&str, &str)]) -> KeyDict + 'a;

/// The [`KeyNamer`] that shares nothing: strings of the file's own.
pub fn own_names(keys: &[(&str, &str)]) -> KeyDict {
    keys.iter()
        .map(|(s, v)| (Arc::from(*s), Arc::from(*v)))
        .collect()
}

/// A block's head, decoded.
#[derive(Debug, Default)]
pub struct BlockHead {
    pub ts: Vec<u32>,
    pub seqs: Vec<u64>,
    /// Per row, the index into the file's key dictionary (system_logs only).
    pub keys: Vec<u32>,
}

impl BlockHead {
    /// Heap bytes held (what the block cache counts).
    pub fn heap_bytes(&self) -> usize {
        self.ts.capacity() * 4 + self.seqs.capacity() * 8 + self.keys.capacity() * 4 + 72
    }
}

/// Rows of one key in one minute of a compact file's hour: the counts
/// section of format version 3, from which the engine's per-minute counts
/// of compacted hours are loaded without reading any row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCount {
    /// Index into the file's key dictionary.
    pub key: u32,
    /// Minute within the hour (0..60).
    pub minute: u8,
    pub count: u32,
    pub min_sec: u8,
    pub max_sec: u8,
}

/// One block's entry in the directory.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BlockMeta {
    pub offset: u64,
    pub head_len: u32,
    pub head_raw: u32,
    pub head_crc: u32,
    pub body_len: u32,
    pub body_raw: u32,
    pub body_crc: u32,
    pub rows: u32,
    pub min_ts: u32,
    pub max_ts: u32,
    pub min_seq: u64,
    pub max_seq: u64,
    /// Indices into the file's key dictionary of the keys the block holds.
    pub keys: Vec<u32>,
    /// Index of the block's first row in the file (derived, not stored).
    pub first_row: u32,
}

impl BlockMeta {
    pub(super) fn body_offset(&self) -> u64 {
        self.offset + self.head_len as u64
    }
}

pub(super) fn parse_directory<'a>(
    dir: &'a [u8],
    info: &CompactInfo,
    header: &Header,
    names: &mut KeyNamer<'_>,
) -> Result<DirectoryParts<'a>, Bad> {
    let mut c = Cursor::new(dir);
    let codec = c.u8()?;
    if !is_log_codec(codec) && codec != CODEC_BODIES {
        return Err("unknown codec");
    }
    let nkeys = c.varint_usize(dir.len())?;
    let mut raw = Vec::with_capacity(nkeys);
    for _ in 0..nkeys {
        let mut s = || -> Result<&str, Bad> {
            let n = c.varint_usize(dir.len())?;
            std::str::from_utf8(c.take(n)?).map_err(|_| "key not UTF-8")
        };
        let svc = s()?;
        raw.push((svc, s()?));
    }
    let keys = names(&raw);
    let mut blocks = Vec::with_capacity(info.blocks as usize);
    let mut first_row = 0u64;
    let mut end = HEADER_LEN as u64;
    for _ in 0..info.blocks {
        let mut b = BlockMeta {
            offset: c.u64()?,
            head_len: c.u32()?,
            head_raw: c.u32()?,
            head_crc: c.u32()?,
            body_len: c.u32()?,
            body_raw: c.u32()?,
            body_crc: c.u32()?,
            rows: c.u32()?,
            min_ts: c.u32()?,
            max_ts: c.u32()?,
            min_seq: c.u64()?,
            max_seq: c.u64()?,
            first_row: first_row as u32,
            keys: Vec::new(),
        };
        let nk = c.varint_usize(nkeys)?;
        for _ in 0..nk {
            b.keys.push(c.varint_usize(nkeys.saturating_sub(1))? as u32);
        }
        let stop = b.offset + b.head_len as u64 + b.body_len as u64;
        if b.offset < end || stop > info.dir_offset {
            return Err("block outside the data area");
        }
        if b.rows == 0 || b.min_ts > b.max_ts || b.min_seq > b.max_seq {
            return Err("empty block or inverted range");
        }
        if b.min_ts / 3600 != header.hour || b.max_ts / 3600 != header.hour {
            return Err("block outside the file's hour");
        }
        if b.head_raw as usize > SECTION_RAW_MAX || b.body_raw as usize > SECTION_RAW_MAX {
            return Err("block too large");
        }
        end = stop;
        first_row += b.rows as u64;
        blocks.push(b);
    }
    if first_row != info.rows as u64 {
        return Err("row count disagrees with the blocks");
    }
    let counts = if c.done() || !is_log_codec(codec) {
        None
    } else {
        Some(parse_counts(&mut c, keys.len(), info.rows)?)
    };
    if codec == CODEC_LOG_KEYED && counts.is_none() {
        return Err("keyed file without counts");
    }
    // Format version 6: each row's second, after the counts.
    let seconds = if codec == CODEC_LOG_KEYED && !c.done() {
        Some(c.take(info.rows as usize)?)
    } else {
        None
    };
    if !c.done() {
        return Err("trailing bytes");
    }
    Ok((codec, keys, blocks, counts, seconds))
}

/// What [`parse_directory`] returns: codec, key dictionary, blocks, counts,
/// the seconds section (still encoded).
pub(super) type DirectoryParts<'a> = (
    u8,
    KeyDict,
    Vec<BlockMeta>,
    Option<Vec<KeyCount>>,
    Option<&'a [u8]>,
);

/// `seconds := (first:u8 delta:u8{count - 1}){runs}`: each row's second
/// of its minute in file order, one run per (key, minute) of the counts
/// (in the same order), the first second as is and each next one as its
/// difference from the previous (rows of a run are in time order).
pub(super) fn encode_seconds(out: &mut Vec<u8>, counts: &[KeyCount], seconds: &[u8]) {
    let mut at = 0;
    for k in counts {
        let run = &seconds[at..at + k.count as usize];
        let mut prev = run[0];
        out.push(prev);
        for &s in &run[1..] {
            out.push(s.wrapping_sub(prev));
            prev = s;
        }
        at += k.count as usize;
    }
}

/// Each row's second, decoded from the seconds section and checked against
/// the counts (every run within its minute, from its first to its last
/// second).
pub(super) fn decode_seconds(raw: &[u8], counts: &[KeyCount]) -> Result<Vec<u8>, Bad> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    for k in counts {
        let run = raw
            .get(at..at + k.count as usize)
            .ok_or("seconds shorter than the counts")?;
        let mut sec = run[0];
        out.push(sec);
        for &d in &run[1..] {
            sec = sec.checked_add(d).ok_or("second out of range")?;
            out.push(sec);
        }
        if run[0] != k.min_sec || sec != k.max_sec {
            return Err("seconds disagree with the counts");
        }
        at += k.count as usize;
    }
    if at != raw.len() {
        return Err("seconds longer than the counts");
    }
    Ok(out)
}

/// `counts := n:varint (key:varint minute:u8 count:varint min_sec:u8
/// max_sec:u8){n}`, strictly ordered by (key, minute), summing to the
/// file's rows.
pub(super) fn encode_counts(out: &mut Vec<u8>, counts: &[KeyCount]) {
    put_varint(out, counts.len() as u64);
    for k in counts {
        put_varint(out, k.key as u64);
        out.push(k.minute);
        put_varint(out, k.count as u64);
        out.push(k.min_sec);
        out.push(k.max_sec);
    }
}

fn parse_counts(c: &mut Cursor<'_>, nkeys: usize, rows: u32) -> Result<Vec<KeyCount>, Bad> {
    let n = c.varint_usize(rows as usize)?;
    let mut out: Vec<KeyCount> = Vec::with_capacity(n);
    let mut total = 0u64;
    for _ in 0..n {
        let k = KeyCount {
            key: c.varint_usize(nkeys.saturating_sub(1))? as u32,
            minute: c.u8()?,
            count: c.varint_usize(rows as usize)? as u32,
            min_sec: c.u8()?,
            max_sec: c.u8()?,
        };
        if k.minute >= 60 || k.count == 0 || k.min_sec > k.max_sec || k.max_sec >= 60 {
            return Err("invalid minute count");
        }
        if out
            .last()
            .is_some_and(|p| (p.key, p.minute) >= (k.key, k.minute))
        {
            return Err("minute counts out of order");
        }
        total += k.count as u64;
        out.push(k);
    }
    if total != rows as u64 {
        return Err("minute counts disagree with the row count");
    }
    Ok(out)
}

pub(super) fn decode_head(
    raw: &[u8],
    b: &BlockMeta,
    codec: u8,
    nkeys: usize,
) -> Result<BlockHead, Bad> {
    let n = b.rows as usize;
    let mut c = Cursor::new(raw);
    let mut head = BlockHead {
        ts: Vec::with_capacity(n),
        seqs: Vec::with_capacity(n),
        keys: Vec::new(),
    };
    let mut ts = b.min_ts as u64;
    for _ in 0..n {
        // Codec 3 rows are in key order: offsets from min_ts, not deltas.
        ts = if codec == CODEC_LOG_KEYED {
            b.min_ts as u64 + c.varint()?
        } else {
            ts + c.varint()?
        };
        if ts > b.max_ts as u64 {
            return Err("timestamp past the block's range");
        }
        head.ts.push(ts as u32);
    }
    let mut seq = b.min_seq;
    for _ in 0..n {
        seq = seq.wrapping_add(unzigzag(c.varint()?) as u64);
        if seq < b.min_seq || seq > b.max_seq {
            return Err("seq outside the block's range");
        }
        head.seqs.push(seq);
    }
    if is_log_codec(codec) {
        head.keys.reserve(n);
        for _ in 0..n {
            let k = c.varint_usize(nkeys.saturating_sub(1))?;
            if !b.keys.contains(&(k as u32)) {
                return Err("row key not listed for its block");
            }
            head.keys.push(k as u32);
        }
    }
    if !c.done() {
        return Err("trailing bytes");
    }
    Ok(head)
}
