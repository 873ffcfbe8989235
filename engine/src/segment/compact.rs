//! Compact segments (kind 2): one file per compacted (data source, hour),
//! written once by `logpulse-compact`, never appended to.
//!
//! ```text
//! file      := header block* directory
//! header    := the 64-byte segment header, version 2, kind 2, synced_len =
//!              file length; reserved = dir_offset:u64 dir_len:u32
//!              dir_crc:u32 replaces_first:u32 replaces_last:u32 rows:u32
//!              blocks:u32
//! block     := head:zstd-frame body:zstd-frame
//! directory := codec:u8 key_count:varint (svc_len:varint svc sev_len:varint sev)*
//!              block_meta*
//! block_meta:= offset:u64 head_len:u32 head_raw:u32 head_crc:u32
//!              body_len:u32 body_raw:u32 body_crc:u32 rows:u32
//!              min_ts:u32 max_ts:u32 min_seq:u64 max_seq:u64
//!              key_count:varint key:varint*
//! ```
//!
//! Rows are sorted by (timestamp, seq). A block's head holds, per row, the
//! timestamp (varint delta from the previous row, the first from the block's
//! `min_ts`), the seq (zigzag varint delta, the first from `min_seq`) and,
//! for `system_logs`, the (service, severity) key as an index into the
//! file's key dictionary. Its body holds the other columns: for
//! `system_logs` (codec 1) server_id, message, error_code, resource_id and
//! metadata, each column either plain (varint lengths, then the bytes) or
//! dictionary-coded (values once, then one id per row); for the other data
//! sources (codec 2) the record bodies of the hot format, plain. The CRCs
//! cover the compressed bytes. Recovery reads only the heads; a query
//! decompresses the body of a block only when it returns one of its rows,
//! and the directory's time range and key list per block say which blocks
//! can hold rows of a (time, key) filter without decompressing anything.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::format::{header_reserved, Header, HEADER_LEN, KIND_COMPACT, RESERVED_LEN};
use super::mmap::{ReadMap, SegmentMap};
use crate::error::{Error, Result};
use crate::row::{decode_log, DataSource, LogRow, Row};

/// Column layout of `system_logs` blocks.
pub const CODEC_LOG_COLUMNS: u8 = 1;
/// Record bodies as in hot segments (the other data sources).
pub const CODEC_BODIES: u8 = 2;
/// Largest decompressed section accepted.
pub const SECTION_RAW_MAX: usize = 1 << 30;
/// Decoded blocks kept per segment.
const CACHE_BLOCKS: usize = 4;
/// Column modes.
const COL_PLAIN: u8 = 0;
const COL_DICT: u8 = 1;
/// String columns of a `system_logs` body, in order.
const LOG_COLUMNS: usize = 5;

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
    fn body_offset(&self) -> u64 {
        self.offset + self.head_len as u64
    }
}

// ---------------------------------------------------------------------------
// Small codecs

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// A bounds-checked reader; errors carry the position for the caller.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

type Bad = &'static str;

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.b.get(self.pos..end).ok_or("runs past the end")?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Bad> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Bad> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, Bad> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn varint(&mut self) -> Result<u64, Bad> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long")
    }

    fn varint_usize(&mut self, max: usize) -> Result<usize, Bad> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err("count out of range");
        }
        Ok(v as usize)
    }

    fn done(&self) -> bool {
        self.pos == self.b.len()
    }
}

// ---------------------------------------------------------------------------
// Writing

/// Tuning of the compact writer.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    pub zstd_level: i32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { zstd_level: 3 }
    }
}

/// One row handed to [`CompactWriter::add_block`]: partition time, seq and
/// its record body in the hot format.
pub struct BlockRow<'a> {
    pub ts: u32,
    pub seq: u64,
    pub body: &'a [u8],
}

/// Writes a compact segment file front to back.
pub struct CompactWriter {
    path: PathBuf,
    file: BufWriter<File>,
    pos: u64,
    header: Header,
    codec: u8,
    info: CompactInfo,
    keys: Vec<(String, String)>,
    key_ids: HashMap<(String, String), u32>,
    blocks: Vec<BlockMeta>,
    rows: u64,
    compressor: zstd::bulk::Compressor<'static>,
}

impl CompactWriter {
    /// Creates `path` (which must not exist) for the rows of one hour;
    /// `replaces` is the range of file numbers of that hour it supersedes.
    pub fn create(
        path: &Path,
        ds: DataSource,
        hour: u32,
        file_no: u32,
        replaces: (u32, u32),
        opts: WriteOptions,
    ) -> Result<CompactWriter> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.write_all(&[0u8; HEADER_LEN])
            .map_err(|e| Error::io(path, e))?;
        let compressor =
            zstd::bulk::Compressor::new(opts.zstd_level).map_err(|e| Error::io(path, e))?;
        Ok(CompactWriter {
            path: path.to_path_buf(),
            file,
            pos: HEADER_LEN as u64,
            header: Header {
                kind: KIND_COMPACT,
                datasource: ds.id(),
                hour,
                file_no,
                synced_len: 0,
            },
            codec: if ds == DataSource::SystemLogs {
                CODEC_LOG_COLUMNS
            } else {
                CODEC_BODIES
            },
            info: CompactInfo {
                replaces_first: replaces.0,
                replaces_last: replaces.1,
                ..Default::default()
            },
            keys: Vec::new(),
            key_ids: HashMap::new(),
            blocks: Vec::new(),
            rows: 0,
            compressor,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Encodes, compresses and writes one block of rows, which must come in
    /// (timestamp, seq) order and after the rows of earlier blocks.
    pub fn add_block(&mut self, rows: &[BlockRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.rows + rows.len() as u64 > u32::MAX as u64 {
            return Err(Error::Invalid("more than 2^32 rows in one hour".into()));
        }
        let mut meta = BlockMeta {
            rows: rows.len() as u32,
            min_ts: rows[0].ts,
            max_ts: rows[rows.len() - 1].ts,
            min_seq: rows.iter().map(|r| r.seq).min().expect("non-empty"),
            max_seq: rows.iter().map(|r| r.seq).max().expect("non-empty"),
            offset: self.pos,
            first_row: self.rows as u32,
            ..Default::default()
        };
        let mut head = Vec::with_capacity(rows.len() * 4);
        let mut prev = meta.min_ts;
        for r in rows {
            if r.ts < prev || r.ts / 3600 != self.header.hour {
                return Err(Error::Invalid(format!(
                    "row at {} out of order or outside hour {}",
                    r.ts, self.header.hour
                )));
            }
            put_varint(&mut head, (r.ts - prev) as u64);
            prev = r.ts;
        }
        let mut prev = meta.min_seq;
        for r in rows {
            put_varint(&mut head, zigzag(r.seq.wrapping_sub(prev) as i64));
            prev = r.seq;
        }
        let body = if self.codec == CODEC_LOG_COLUMNS {
            self.log_columns(rows, &mut head, &mut meta)?
        } else {
            let vals: Vec<&[u8]> = rows.iter().map(|r| r.body).collect();
            let mut body = Vec::new();
            encode_column(&mut body, &vals, false);
            body
        };
        let head_z = self.compress(&head)?;
        meta.head_len = head_z.len() as u32;
        meta.head_raw = head.len() as u32;
        meta.head_crc = crc32fast::hash(&head_z);
        self.write(&head_z)?;
        let body_z = self.compress(&body)?;
        meta.body_len = body_z.len() as u32;
        meta.body_raw = body.len() as u32;
        meta.body_crc = crc32fast::hash(&body_z);
        self.write(&body_z)?;
        self.rows += rows.len() as u64;
        self.blocks.push(meta);
        Ok(())
    }

    /// The key column (into `head`) and the string columns (returned).
    fn log_columns(
        &mut self,
        rows: &[BlockRow<'_>],
        head: &mut Vec<u8>,
        meta: &mut BlockMeta,
    ) -> Result<Vec<u8>> {
        let mut decoded = Vec::with_capacity(rows.len());
        for r in rows {
            let row = decode_log(r.body).map_err(|e| {
                Error::Invalid(format!("undecodable system_logs row (seq {}): {e}", r.seq))
            })?;
            if row.timestamp != r.ts {
                return Err(Error::Invalid(format!(
                    "row timestamp {} is not its entry's {}",
                    row.timestamp, r.ts
                )));
            }
            decoded.push(row);
        }
        let mut block_keys = Vec::new();
        for row in &decoded {
            let k = self.key_id(&row.service, &row.severity);
            if !block_keys.contains(&k) {
                block_keys.push(k);
            }
            put_varint(head, k as u64);
        }
        block_keys.sort_unstable();
        meta.keys = block_keys;
        let mut body = Vec::new();
        let cols: [for<'r, 's> fn(&'r LogRow<'s>) -> &'r [u8]; LOG_COLUMNS] = [
            |r| r.server_id.as_bytes(),
            |r| r.message.as_bytes(),
            |r| r.error_code.as_bytes(),
            |r| r.resource_id.as_bytes(),
            |r| r.metadata.as_bytes(),
        ];
        for col in cols {
            let vals: Vec<&[u8]> = decoded.iter().map(col).collect();
            encode_column(&mut body, &vals, true);
        }
        Ok(body)
    }

    fn key_id(&mut self, service: &str, severity: &str) -> u32 {
        let k = (service.to_string(), severity.to_string());
        if let Some(id) = self.key_ids.get(&k) {
            return *id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(k.clone());
        self.key_ids.insert(k, id);
        id
    }

    fn compress(&mut self, raw: &[u8]) -> Result<Vec<u8>> {
        self.compressor
            .compress(raw)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.file
            .write_all(b)
            .map_err(|e| Error::io(&self.path, e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Writes the directory and the header, and fsyncs the file. Returns
    /// the file's length. The file is complete and durable, but still under
    /// its temporary name.
    pub fn finish(mut self) -> Result<u64> {
        let mut dir = vec![self.codec];
        put_varint(&mut dir, self.keys.len() as u64);
        for (s, v) in &self.keys {
            put_varint(&mut dir, s.len() as u64);
            dir.extend_from_slice(s.as_bytes());
            put_varint(&mut dir, v.len() as u64);
            dir.extend_from_slice(v.as_bytes());
        }
        for b in &self.blocks {
            dir.extend_from_slice(&b.offset.to_le_bytes());
            for v in [
                b.head_len, b.head_raw, b.head_crc, b.body_len, b.body_raw, b.body_crc,
            ] {
                dir.extend_from_slice(&v.to_le_bytes());
            }
            for v in [b.rows, b.min_ts, b.max_ts] {
                dir.extend_from_slice(&v.to_le_bytes());
            }
            dir.extend_from_slice(&b.min_seq.to_le_bytes());
            dir.extend_from_slice(&b.max_seq.to_le_bytes());
            put_varint(&mut dir, b.keys.len() as u64);
            for k in &b.keys {
                put_varint(&mut dir, *k as u64);
            }
        }
        self.info.dir_offset = self.pos;
        self.info.dir_len = dir.len() as u32;
        self.info.dir_crc = crc32fast::hash(&dir);
        self.info.rows = self.rows as u32;
        self.info.blocks = self.blocks.len() as u32;
        self.write(&dir)?;
        self.header.synced_len = self.pos;
        let path = self.path.clone();
        let file = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        let header = self.header.encode_with_reserved(&self.info.encode());
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io(&path, e))?;
        crate::durability::sync_file(&file, &path)?;
        Ok(self.header.synced_len)
    }
}

/// Appends one column: dictionary-coded when that is smaller (and allowed).
fn encode_column(out: &mut Vec<u8>, vals: &[&[u8]], dict_allowed: bool) {
    let plain: usize = vals.iter().map(|v| v.len() + varint_len(v.len())).sum();
    if dict_allowed {
        let mut ids: HashMap<&[u8], u32> = HashMap::new();
        let mut order: Vec<&[u8]> = Vec::new();
        for v in vals {
            ids.entry(v).or_insert_with(|| {
                order.push(v);
                order.len() as u32 - 1
            });
        }
        let wide = order.len() > 256;
        let dict: usize = order
            .iter()
            .map(|v| v.len() + varint_len(v.len()))
            .sum::<usize>()
            + vals.len() * if wide { 2 } else { 1 };
        if dict < plain {
            out.push(COL_DICT);
            put_varint(out, order.len() as u64);
            for v in &order {
                put_varint(out, v.len() as u64);
            }
            for v in &order {
                out.extend_from_slice(v);
            }
            for v in vals {
                let id = ids[v];
                if wide {
                    put_varint(out, id as u64);
                } else {
                    out.push(id as u8);
                }
            }
            return;
        }
    }
    out.push(COL_PLAIN);
    for v in vals {
        put_varint(out, v.len() as u64);
    }
    for v in vals {
        out.extend_from_slice(v);
    }
}

fn varint_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

// ---------------------------------------------------------------------------
// Reading

/// A block's head, decoded.
#[derive(Debug, Default)]
pub struct BlockHead {
    pub ts: Vec<u32>,
    pub seqs: Vec<u64>,
    /// Per row, the index into the file's key dictionary (system_logs only).
    pub keys: Vec<u32>,
}

/// A whole block, decoded: its head and its columns (byte ranges into `raw`).
struct DecodedBlock {
    head: BlockHead,
    raw: Vec<u8>,
    cols: Vec<Vec<(u32, u32)>>,
}

/// The bytes of a compact file: the engine's shared map, or a read-only map
/// (verification, which must not open files for writing).
enum Bytes {
    Shared(Arc<SegmentMap>),
    ReadOnly(ReadMap),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Shared(m) => m.committed(),
            Bytes::ReadOnly(m) => m.bytes(),
        }
    }
}

/// A file's (service, severity) dictionary.
pub type KeyDict = Vec<(Arc<str>, Arc<str>)>;

/// The read side of a compact segment.
pub struct CompactSegment {
    path: PathBuf,
    map: Bytes,
    pub header: Header,
    pub info: CompactInfo,
    codec: u8,
    /// The file's (service, severity) dictionary.
    pub keys: KeyDict,
    pub blocks: Vec<BlockMeta>,
    /// Seq of every row, in file (timestamp, seq) order; filled by [`Self::scan`].
    seqs: Vec<u64>,
    cache: Mutex<VecDeque<(u32, Arc<DecodedBlock>)>>,
}

impl std::fmt::Debug for CompactSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactSegment")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

/// Reads the header and the reserved area of a compact file without mapping
/// it (recovery's first pass).
pub fn peek_info(path: &Path) -> Result<Option<(Header, CompactInfo)>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut b = [0u8; HEADER_LEN];
    let n = file.read_at(&mut b, 0).map_err(|e| Error::io(path, e))?;
    let header = Header::decode(path, &b[..n])?;
    if header.kind != KIND_COMPACT {
        return Ok(None);
    }
    Ok(Some((header, CompactInfo::decode(&header_reserved(&b)))))
}

impl CompactSegment {
    /// Validates the header and the directory of a mapped compact file.
    pub fn open(path: &Path, map: Arc<SegmentMap>) -> Result<CompactSegment> {
        CompactSegment::from_bytes(path, Bytes::Shared(map))
    }

    /// [`Self::open`] through a read-only map of the file.
    pub fn open_read_only(path: &Path) -> Result<CompactSegment> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let map = ReadMap::open(&file).map_err(|e| Error::io(path, e))?;
        CompactSegment::from_bytes(path, Bytes::ReadOnly(map))
    }

    fn from_bytes(path: &Path, map: Bytes) -> Result<CompactSegment> {
        let data = map.get();
        let header = Header::decode(path, data)?;
        if header.kind != KIND_COMPACT {
            return Err(Error::corrupt(path, 10, "not a compact segment"));
        }
        let info = CompactInfo::decode(&header_reserved(data));
        let len = data.len() as u64;
        let corrupt = |off: u64, why: String| Error::corrupt(path, off, why);
        if header.synced_len != len {
            return Err(corrupt(
                20,
                format!(
                    "compact file is {len} bytes, its header says {}",
                    header.synced_len
                ),
            ));
        }
        let dir_end = info.dir_offset.checked_add(info.dir_len as u64);
        if info.dir_offset < HEADER_LEN as u64 || dir_end != Some(len) {
            return Err(corrupt(28, "directory outside the file".into()));
        }
        let dir = &data[info.dir_offset as usize..];
        if crc32fast::hash(dir) != info.dir_crc {
            return Err(corrupt(
                info.dir_offset,
                "directory checksum mismatch".into(),
            ));
        }
        if info.replaces_first > info.replaces_last || info.replaces_last >= header.file_no {
            return Err(corrupt(44, "invalid replaced file range".into()));
        }
        let (codec, keys, blocks) = parse_directory(dir, &info, &header)
            .map_err(|why| corrupt(info.dir_offset, format!("bad directory: {why}")))?;
        Ok(CompactSegment {
            path: path.to_path_buf(),
            map,
            header,
            info,
            codec,
            keys,
            blocks,
            seqs: Vec::new(),
            cache: Mutex::new(VecDeque::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The engine's shared map of the file (`None` when opened read-only).
    pub fn map(&self) -> Option<&Arc<SegmentMap>> {
        match &self.map {
            Bytes::Shared(m) => Some(m),
            Bytes::ReadOnly(_) => None,
        }
    }

    /// Decodes every block's head, keeps the seqs, and calls `f(row, ts,
    /// seq, key)` for every row in file order (`key` indexes [`Self::keys`];
    /// 0 for data sources without keys).
    pub fn scan(&mut self, mut f: impl FnMut(u32, u32, u64, u32)) -> Result<()> {
        let mut seqs = Vec::with_capacity(self.info.rows as usize);
        for (i, b) in self.blocks.iter().enumerate() {
            let head = self.read_head(i)?;
            for r in 0..b.rows as usize {
                let key = head.keys.get(r).copied().unwrap_or(0);
                f(b.first_row + r as u32, head.ts[r], head.seqs[r], key);
                seqs.push(head.seqs[r]);
            }
        }
        self.seqs = seqs;
        Ok(())
    }

    /// The seq of row `row` (after [`Self::scan`]).
    pub fn seq(&self, row: u32) -> u64 {
        self.seqs[row as usize]
    }

    /// Smallest and greatest seq (after [`Self::scan`]).
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        let min = self.seqs.iter().min()?;
        Some((*min, *self.seqs.iter().max()?))
    }

    /// Blocks that may hold rows with a timestamp in `lo..hi` and one of
    /// `keys` (indices into [`Self::keys`]; `None` for any key).
    pub fn blocks_matching(&self, lo: u32, hi: u32, keys: Option<&[u32]>) -> Vec<usize> {
        self.blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.max_ts >= lo && b.min_ts < hi)
            .filter(|(_, b)| keys.is_none_or(|ks| b.keys.iter().any(|k| ks.contains(k))))
            .map(|(i, _)| i)
            .collect()
    }

    fn block_of(&self, row: u32) -> Result<usize> {
        let i = self.blocks.partition_point(|b| b.first_row <= row);
        if i == 0 || row >= self.blocks[i - 1].first_row + self.blocks[i - 1].rows {
            return Err(Error::corrupt(&self.path, 0, format!("no row {row}")));
        }
        Ok(i - 1)
    }

    /// The record body (hot format) of row `row`.
    pub fn body(&self, row: u32) -> Result<Vec<u8>> {
        let bi = self.block_of(row)?;
        let block = self.decoded(bi)?;
        let r = (row - self.blocks[bi].first_row) as usize;
        self.row_body(bi, &block, r)
    }

    fn row_body(&self, bi: usize, block: &DecodedBlock, r: usize) -> Result<Vec<u8>> {
        let field = |c: usize| -> Result<&str> {
            let (s, e) = block.cols[c][r];
            std::str::from_utf8(&block.raw[s as usize..e as usize]).map_err(|_| {
                Error::corrupt(
                    &self.path,
                    self.blocks[bi].body_offset(),
                    "invalid UTF-8 in a column",
                )
            })
        };
        if self.codec == CODEC_BODIES {
            let (s, e) = block.cols[0][r];
            return Ok(block.raw[s as usize..e as usize].to_vec());
        }
        let key = block.head.keys[r] as usize;
        let (service, severity) = &self.keys[key];
        let row = LogRow {
            timestamp: block.head.ts[r],
            service: Cow::Borrowed(service),
            severity: Cow::Borrowed(severity),
            server_id: Cow::Borrowed(field(0)?),
            message: Cow::Borrowed(field(1)?),
            error_code: Cow::Borrowed(field(2)?),
            resource_id: Cow::Borrowed(field(3)?),
            metadata: Cow::Borrowed(field(4)?),
        };
        let mut out = Vec::with_capacity(64 + block.raw.len() / block.head.ts.len().max(1));
        Row::Log(row).encode_into(&mut out);
        Ok(out)
    }

    /// Every row's seq and body in one block, in file order (verification
    /// and bulk reads).
    pub fn block_rows(&self, bi: usize) -> Result<Vec<(u32, u64, Vec<u8>)>> {
        let block = self.decode_block(bi)?;
        (0..block.head.ts.len())
            .map(|r| {
                Ok((
                    block.head.ts[r],
                    block.head.seqs[r],
                    self.row_body(bi, &block, r)?,
                ))
            })
            .collect()
    }

    /// Checks the CRC of every block body (heads are checked when read).
    pub fn check_body_crcs(&self) -> Result<()> {
        let data = self.map.get();
        for b in &self.blocks {
            let at = b.body_offset() as usize;
            if crc32fast::hash(&data[at..at + b.body_len as usize]) != b.body_crc {
                return Err(Error::corrupt(
                    &self.path,
                    at as u64,
                    "block checksum mismatch",
                ));
            }
        }
        Ok(())
    }

    /// A decoded block from the cache, or decoded now and cached.
    fn decoded(&self, bi: usize) -> Result<Arc<DecodedBlock>> {
        {
            let mut cache = self.cache.lock();
            if let Some(pos) = cache.iter().position(|(i, _)| *i == bi as u32) {
                let hit = cache.remove(pos).expect("position is valid");
                let block = hit.1.clone();
                cache.push_front(hit);
                return Ok(block);
            }
        }
        let block = Arc::new(self.decode_block(bi)?);
        let mut cache = self.cache.lock();
        cache.push_front((bi as u32, block.clone()));
        cache.truncate(CACHE_BLOCKS);
        Ok(block)
    }

    fn section(&self, offset: u64, len: u32, raw: u32, crc: u32) -> Result<Vec<u8>> {
        let data = self.map.get();
        let bytes = &data[offset as usize..offset as usize + len as usize];
        if crc32fast::hash(bytes) != crc {
            return Err(Error::corrupt(
                &self.path,
                offset,
                "block checksum mismatch",
            ));
        }
        let out = decompress(bytes, raw as usize).map_err(|e| {
            Error::corrupt(&self.path, offset, format!("undecompressable block: {e}"))
        })?;
        if out.len() != raw as usize {
            return Err(Error::corrupt(
                &self.path,
                offset,
                "block decompresses to the wrong length",
            ));
        }
        Ok(out)
    }

    fn read_head(&self, bi: usize) -> Result<BlockHead> {
        let b = &self.blocks[bi];
        let raw = self.section(b.offset, b.head_len, b.head_raw, b.head_crc)?;
        decode_head(&raw, b, self.codec, self.keys.len())
            .map_err(|why| Error::corrupt(&self.path, b.offset, format!("bad block head: {why}")))
    }

    fn decode_block(&self, bi: usize) -> Result<DecodedBlock> {
        let head = self.read_head(bi)?;
        let b = &self.blocks[bi];
        let raw = self.section(b.body_offset(), b.body_len, b.body_raw, b.body_crc)?;
        let ncols = if self.codec == CODEC_BODIES {
            1
        } else {
            LOG_COLUMNS
        };
        let mut cur = Cursor::new(&raw);
        let mut cols = Vec::with_capacity(ncols);
        for _ in 0..ncols {
            let col = decode_column(&mut cur, b.rows as usize).map_err(|why| {
                Error::corrupt(
                    &self.path,
                    b.body_offset(),
                    format!("bad block body: {why}"),
                )
            })?;
            cols.push(col);
        }
        if !cur.done() {
            return Err(Error::corrupt(
                &self.path,
                b.body_offset(),
                "bad block body: trailing bytes",
            ));
        }
        Ok(DecodedBlock { head, raw, cols })
    }

    /// Checks everything: every CRC, every block decompressed, every row
    /// decoded, order and hour of every row. Returns the problems found
    /// (offset, reason); empty when the file is sound.
    pub fn verify(&self, ds: DataSource) -> Vec<(u64, String)> {
        let mut problems = Vec::new();
        let mut last = (0u32, 0u64);
        for (bi, b) in self.blocks.iter().enumerate() {
            let rows = match self.block_rows(bi) {
                Ok(rows) => rows,
                Err(Error::Corrupt { offset, reason, .. }) => {
                    problems.push((offset, reason));
                    continue;
                }
                Err(e) => {
                    problems.push((b.offset, e.to_string()));
                    continue;
                }
            };
            for (ts, seq, body) in rows {
                let bad = match ds {
                    DataSource::SystemLogs => decode_log(&body).err(),
                    DataSource::Thresholds => crate::row::decode_threshold(&body).err(),
                    _ => crate::row::decode_quarantine(&body).err(),
                };
                if let Some(e) = bad {
                    problems.push((b.offset, format!("undecodable row (seq {seq}): {e}")));
                }
                if ts / 3600 != self.header.hour || (ts, seq) < last {
                    problems.push((b.offset, format!("row (seq {seq}) out of order or hour")));
                }
                last = (ts, seq);
            }
        }
        problems
    }
}

/// zstd decompression through a context kept per thread: creating one per
/// block costs more than decompressing a small block.
fn decompress(bytes: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        d.as_mut().expect("set above").decompress(bytes, capacity)
    })
}

fn parse_directory(
    dir: &[u8],
    info: &CompactInfo,
    header: &Header,
) -> Result<(u8, KeyDict, Vec<BlockMeta>), Bad> {
    let mut c = Cursor::new(dir);
    let codec = c.u8()?;
    if codec != CODEC_LOG_COLUMNS && codec != CODEC_BODIES {
        return Err("unknown codec");
    }
    let nkeys = c.varint_usize(dir.len())?;
    let mut keys = Vec::with_capacity(nkeys);
    for _ in 0..nkeys {
        let mut s = || -> Result<Arc<str>, Bad> {
            let n = c.varint_usize(dir.len())?;
            Ok(std::str::from_utf8(c.take(n)?)
                .map_err(|_| "key not UTF-8")?
                .into())
        };
        let svc = s()?;
        keys.push((svc, s()?));
    }
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
    if !c.done() {
        return Err("trailing bytes");
    }
    if first_row != info.rows as u64 {
        return Err("row count disagrees with the blocks");
    }
    Ok((codec, keys, blocks))
}

fn decode_head(raw: &[u8], b: &BlockMeta, codec: u8, nkeys: usize) -> Result<BlockHead, Bad> {
    let n = b.rows as usize;
    let mut c = Cursor::new(raw);
    let mut head = BlockHead {
        ts: Vec::with_capacity(n),
        seqs: Vec::with_capacity(n),
        keys: Vec::new(),
    };
    let mut ts = b.min_ts as u64;
    for _ in 0..n {
        ts += c.varint()?;
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
    if codec == CODEC_LOG_COLUMNS {
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

fn decode_column(c: &mut Cursor<'_>, rows: usize) -> Result<Vec<(u32, u32)>, Bad> {
    let total = c.b.len();
    match c.u8()? {
        COL_PLAIN => {
            let mut lens = Vec::with_capacity(rows);
            for _ in 0..rows {
                lens.push(c.varint_usize(total)?);
            }
            let mut spans = Vec::with_capacity(rows);
            for len in lens {
                let start = c.pos;
                c.take(len)?;
                spans.push((start as u32, c.pos as u32));
            }
            Ok(spans)
        }
        COL_DICT => {
            let n = c.varint_usize(total)?;
            let mut lens = Vec::with_capacity(n);
            for _ in 0..n {
                lens.push(c.varint_usize(total)?);
            }
            let mut dict = Vec::with_capacity(n);
            for len in lens {
                let start = c.pos;
                c.take(len)?;
                dict.push((start as u32, c.pos as u32));
            }
            let mut spans = Vec::with_capacity(rows);
            for _ in 0..rows {
                let id = if n > 256 {
                    c.varint_usize(n.saturating_sub(1))?
                } else {
                    c.u8()? as usize
                };
                spans.push(*dict.get(id).ok_or("dictionary id out of range")?);
            }
            Ok(spans)
        }
        _ => Err("unknown column mode"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Cursor::new(&b).varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        for v in [0usize, 1, 127, 128, 16383, 16384] {
            let mut b = Vec::new();
            put_varint(&mut b, v as u64);
            assert_eq!(varint_len(v), b.len(), "{v}");
        }
    }

    #[test]
    fn columns_round_trip_plain_and_dict() {
        let vals: Vec<&[u8]> = vec![b"a", b"bb", b"a", b"", b"a", b"bb", b"a", b"a"];
        for dict in [false, true] {
            let mut out = Vec::new();
            encode_column(&mut out, &vals, dict);
            assert_eq!(out[0], if dict { COL_DICT } else { COL_PLAIN });
            let mut c = Cursor::new(&out);
            let spans = decode_column(&mut c, vals.len()).unwrap();
            assert!(c.done());
            let got: Vec<&[u8]> = spans
                .iter()
                .map(|(s, e)| &out[*s as usize..*e as usize])
                .collect();
            assert_eq!(got, vals);
        }
    }

    fn write_sample(dir: &Path, ds: DataSource) -> (PathBuf, Vec<(u32, u64, Vec<u8>)>) {
        let hour = 470_000u32;
        let mut rows = Vec::new();
        for i in 0..300u32 {
            let ts = hour * 3600 + i * 11;
            let mut body = Vec::new();
            let row = match ds {
                DataSource::SystemLogs => Row::Log(LogRow {
                    timestamp: ts,
                    service: Cow::Owned(format!("svc{}", i % 3)),
                    severity: Cow::Borrowed(if i % 5 == 0 { "ERROR" } else { "INFO" }),
                    server_id: Cow::Owned(format!("srv-{}", i % 7)),
                    message: Cow::Owned(format!("request {i} took {}ms", i * 37 % 1000)),
                    metadata: Cow::Borrowed(if i % 2 == 0 { "{\"a\":1}" } else { "" }),
                    ..Default::default()
                }),
                _ => Row::Threshold(crate::row::ThresholdRow {
                    service: format!("svc{i}"),
                    severity: "ERROR".into(),
                    threshold_per_minute: i as f64,
                    active: 1,
                    updated_at: ts,
                }),
            };
            row.encode_into(&mut body);
            rows.push((ts, 1000 + (i as u64 * 7919) % 300, body));
        }
        let path = dir.join(format!("{}.seg", ds.name()));
        let mut w =
            CompactWriter::create(&path, ds, hour, 5, (0, 4), WriteOptions::default()).unwrap();
        for chunk in rows.chunks(64) {
            let block: Vec<BlockRow<'_>> = chunk
                .iter()
                .map(|(ts, seq, b)| BlockRow {
                    ts: *ts,
                    seq: *seq,
                    body: b,
                })
                .collect();
            w.add_block(&block).unwrap();
        }
        w.finish().unwrap();
        (path, rows)
    }

    #[test]
    fn rows_round_trip_for_both_codecs() {
        let dir = tempfile::tempdir().unwrap();
        for ds in [DataSource::SystemLogs, DataSource::Thresholds] {
            let (path, rows) = write_sample(dir.path(), ds);
            let mut c = CompactSegment::open_read_only(&path).unwrap();
            let mut seen = Vec::new();
            c.scan(|row, ts, seq, _| seen.push((row, ts, seq))).unwrap();
            assert_eq!(seen.len(), rows.len());
            for (row, ts, seq) in seen {
                let want = &rows[row as usize];
                assert_eq!((ts, seq), (want.0, want.1));
                assert_eq!(c.body(row).unwrap(), want.2, "{}", ds.name());
            }
            assert!(c.verify(ds).is_empty());
            assert_eq!((c.info.replaces_first, c.info.replaces_last), (0, 4));
            assert_eq!(c.blocks_matching(0, u32::MAX, None).len(), 5);
            let first_block_end = c.blocks[0].max_ts;
            assert_eq!(c.blocks_matching(0, first_block_end, None), vec![0]);
        }
    }

    #[test]
    fn every_flipped_byte_is_caught_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_sample(dir.path(), DataSource::SystemLogs);
        let good = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad.seg");
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x10;
            std::fs::write(&bad, &b).unwrap();
            let caught = match CompactSegment::open_read_only(&bad) {
                Err(_) => true,
                Ok(mut c) => match c.scan(|_, _, _, _| {}) {
                    Err(_) => true,
                    Ok(()) => !c.verify(DataSource::SystemLogs).is_empty(),
                },
            };
            assert!(caught, "flip at byte {i} of {} went unnoticed", good.len());
        }
    }

    #[test]
    fn info_round_trips() {
        let i = CompactInfo {
            dir_offset: 1 << 40,
            dir_len: 7,
            dir_crc: 9,
            replaces_first: 1,
            replaces_last: 3,
            rows: 11,
            blocks: 2,
        };
        assert_eq!(CompactInfo::decode(&i.encode()), i);
        assert!(i.replaces(1) && i.replaces(3) && !i.replaces(4) && !i.replaces(0));
    }
}
