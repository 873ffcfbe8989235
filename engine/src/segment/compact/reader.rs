//! Reading a compact segment: its directory at open, block heads and
//! bodies on demand through the engine's bounded block cache.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::{BlockCache, Cached};
use super::codec::{decode_column, Cursor};
use super::counts::{counts_of_rows, totals_of, FileCounts, KeyTotal};
use super::directory::{
    decode_head, own_names, parse_directory, BlockHead, BlockMeta, CompactInfo, KeyDict, KeyNamer,
};
use super::{is_log_codec, CODEC_BODIES, CODEC_LOG_KEYED, LOG_COLUMNS, SECTION_RAW_MAX};
use crate::error::{Error, Result};
use crate::row::{decode_log, DataSource, Encode, LogRow, Row};
use crate::segment::format::{header_reserved, Header, HEADER_LEN, KIND_COMPACT};
use crate::segment::mmap::{ReadMap, SegmentMap};

/// Cache of a file opened read-only (verification, tools).
const READ_ONLY_CACHE: usize = 16 << 20;

/// A whole block, decoded: its head and its columns (byte ranges into `raw`).
pub(super) struct DecodedBlock {
    head: BlockHead,
    raw: Vec<u8>,
    cols: Vec<Vec<(u32, u32)>>,
}

impl DecodedBlock {
    /// Heap bytes held (what the block cache counts).
    pub(super) fn heap_bytes(&self) -> usize {
        self.head.heap_bytes()
            + self.raw.capacity()
            + self.cols.iter().map(|c| c.capacity() * 8).sum::<usize>()
    }

    pub(super) fn head(&self) -> &BlockHead {
        &self.head
    }

    /// Row `r`'s bytes in column `col`.
    pub(super) fn value(&self, col: usize, r: usize) -> Option<&[u8]> {
        let (s, e) = *self.cols.get(col)?.get(r)?;
        self.raw.get(s as usize..e as usize)
    }
}

/// The bytes of a compact file: the engine's shared map, or a read-only map
/// (verification, which must not open files for writing).
pub(super) enum Bytes {
    Shared(Arc<SegmentMap>),
    ReadOnly(ReadMap),
}

impl Bytes {
    pub(super) fn get(&self) -> &[u8] {
        match self {
            Bytes::Shared(m) => m.committed(),
            Bytes::ReadOnly(m) => m.bytes(),
        }
    }
}

/// Contiguous rows of one key in one minute of a file in key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Row number (in file order) of the first row.
    pub first_row: u32,
    pub rows: u32,
    /// The least and the greatest timestamp among them.
    pub min_ts: u32,
    pub max_ts: u32,
    /// Their key (an index into [`CompactSegment::keys`]).
    pub key: u32,
}

/// The read side of a compact segment.
pub struct CompactSegment {
    path: PathBuf,
    pub(super) map: Bytes,
    pub header: Header,
    pub info: CompactInfo,
    pub(super) codec: u8,
    /// The file's (service, severity) dictionary.
    pub keys: KeyDict,
    pub blocks: Vec<BlockMeta>,
    /// `system_logs`: each dictionary key's rows and time range (empty for
    /// the other data sources).
    pub totals: Vec<KeyTotal>,
    /// Per-minute counts kept in memory: only for files without a counts
    /// section (version 2), whose counts come from their heads; the others'
    /// are read from the directory on demand ([`Self::counts`]).
    pub(super) resident: Option<Arc<FileCounts>>,
    /// This segment's id in the block cache.
    pub(super) uid: u64,
    pub(super) cache: Arc<BlockCache>,
}

impl Drop for CompactSegment {
    fn drop(&mut self) {
        self.cache.forget(self.uid);
    }
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
    /// `names` turns each dictionary key into the strings the segment keeps
    /// (the engine passes its interner, so a file's dictionary shares the
    /// engine's strings and allocates none of its own).
    pub fn open(
        path: &Path,
        map: Arc<SegmentMap>,
        cache: Arc<BlockCache>,
        names: &mut KeyNamer<'_>,
    ) -> Result<CompactSegment> {
        CompactSegment::from_bytes(path, Bytes::Shared(map), cache, names)
    }

    /// [`Self::open`] through a read-only map of the file.
    pub fn open_read_only(path: &Path) -> Result<CompactSegment> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let map = ReadMap::open(&file).map_err(|e| Error::io(path, e))?;
        let mut names = own_names;
        CompactSegment::from_bytes(
            path,
            Bytes::ReadOnly(map),
            BlockCache::new(READ_ONLY_CACHE),
            &mut names,
        )
    }

    fn from_bytes(
        path: &Path,
        map: Bytes,
        cache: Arc<BlockCache>,
        names: &mut KeyNamer<'_>,
    ) -> Result<CompactSegment> {
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
        if info.replaces_first > info.replaces_last || info.replaces_last >= header.file_no {
            return Err(corrupt(44, "invalid replaced file range".into()));
        }
        let dir = directory_bytes(path, data, &info)?;
        let (codec, keys, blocks, counts, _) = parse_directory(&dir, &info, &header, names)
            .map_err(|why| corrupt(info.dir_offset, format!("bad directory: {why}")))?;
        let mut seg = CompactSegment {
            path: path.to_path_buf(),
            map,
            header,
            info,
            codec,
            keys,
            blocks,
            totals: Vec::new(),
            resident: None,
            uid: super::cache::next_uid(),
            cache,
        };
        if is_log_codec(codec) {
            // Files without a counts section (version 2) keep the counts
            // made from their heads; the others' are read again on demand.
            let (counts, from_heads) = match counts {
                Some(c) => (c, false),
                None => {
                    let mut rows = Vec::with_capacity(seg.info.rows as usize);
                    seg.scan(|_, ts, _, key| rows.push((ts, key)))?;
                    (counts_of_rows(rows.into_iter()), true)
                }
            };
            seg.totals = totals_of(&counts, seg.keys.len(), seg.header.hour);
            if from_heads {
                seg.resident = Some(Arc::new(FileCounts {
                    counts,
                    seconds: Vec::new(),
                }));
            }
        }
        Ok(seg)
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

    /// Calls `f(row, ts, seq, key)` for every row of the given blocks, in
    /// file order (`key` indexes [`Self::keys`]; 0 for data sources without
    /// keys). Heads come through the block cache.
    pub fn scan_blocks(
        &self,
        blocks: impl IntoIterator<Item = usize>,
        mut f: impl FnMut(u32, u32, u64, u32),
    ) -> Result<()> {
        for bi in blocks {
            let b = &self.blocks[bi];
            let head = self.head(bi)?;
            for r in 0..b.rows as usize {
                let key = head.keys.get(r).copied().unwrap_or(0);
                f(b.first_row + r as u32, head.ts[r], head.seqs[r], key);
            }
        }
        Ok(())
    }

    /// Calls `f(row, ts, seq, key)` for rows `first..first + rows` (file
    /// order), reading only the heads of the blocks that hold them.
    pub fn scan_rows(
        &self,
        first: u32,
        rows: u32,
        mut f: impl FnMut(u32, u32, u64, u32),
    ) -> Result<()> {
        for bi in self.blocks_of_rows(first, rows) {
            let b = &self.blocks[bi];
            let head = self.head(bi)?;
            let lo = first.max(b.first_row) - b.first_row;
            let hi = (first + rows).min(b.first_row + b.rows) - b.first_row;
            for r in lo as usize..hi as usize {
                let key = head.keys.get(r).copied().unwrap_or(0);
                f(b.first_row + r as u32, head.ts[r], head.seqs[r], key);
            }
        }
        Ok(())
    }

    /// [`Self::scan_blocks`] over every block.
    pub fn scan(&self, f: impl FnMut(u32, u32, u64, u32)) -> Result<()> {
        self.scan_blocks(0..self.blocks.len(), f)
    }

    /// The seq of row `row`.
    pub fn seq(&self, row: u32) -> Result<u64> {
        let bi = self.block_of(row)?;
        let head = self.head(bi)?;
        Ok(head.seqs[(row - self.blocks[bi].first_row) as usize])
    }

    /// Smallest and greatest seq, from the directory.
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        let min = self.blocks.iter().map(|b| b.min_seq).min()?;
        Some((min, self.blocks.iter().map(|b| b.max_seq).max()?))
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

    /// The blocks holding rows `first..first + rows`.
    pub fn blocks_of_rows(&self, first: u32, rows: u32) -> std::ops::Range<usize> {
        let lo = self
            .blocks
            .partition_point(|b| b.first_row + b.rows <= first);
        let hi = self.blocks.partition_point(|b| b.first_row < first + rows);
        lo..hi.max(lo)
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

    /// A decoded block from the cache, or decoded now (outside any lock)
    /// and cached.
    fn decoded(&self, bi: usize) -> Result<Arc<DecodedBlock>> {
        let key = (self.uid, bi as u32, true);
        if let Some(Cached::Block(b)) = self.cache.get(key) {
            return Ok(b);
        }
        let block = Arc::new(self.decode_block(bi)?);
        self.cache.put(key, Cached::Block(block.clone()));
        Ok(block)
    }

    /// A block's head, from the cache (alone or within a cached whole block)
    /// or decoded now and cached.
    pub fn head(&self, bi: usize) -> Result<Arc<BlockHead>> {
        let key = (self.uid, bi as u32, false);
        if let Some(Cached::Head(h)) = self.cache.get(key) {
            return Ok(h);
        }
        let head = Arc::new(self.read_head(bi)?);
        self.cache.put(key, Cached::Head(head.clone()));
        Ok(head)
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

    pub(super) fn read_head(&self, bi: usize) -> Result<BlockHead> {
        let b = &self.blocks[bi];
        let raw = self.section(b.offset, b.head_len, b.head_raw, b.head_crc)?;
        decode_head(&raw, b, self.codec, self.keys.len())
            .map_err(|why| Error::corrupt(&self.path, b.offset, format!("bad block head: {why}")))
    }

    pub(super) fn decode_block(&self, bi: usize) -> Result<DecodedBlock> {
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
        let mut last = (0u32, 0u32, 0u64);
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
            // Codec 3 files are in (key, timestamp, seq) order, the others
            // in (timestamp, seq) order.
            let keys = match self.codec {
                CODEC_LOG_KEYED => self.head(bi).map(|h| h.keys.clone()).unwrap_or_default(),
                _ => Vec::new(),
            };
            for (r, (ts, seq, body)) in rows.into_iter().enumerate() {
                let bad = match ds {
                    DataSource::SystemLogs => decode_log(&body).err(),
                    DataSource::Thresholds => crate::row::decode_threshold(&body).err(),
                    _ => crate::row::decode_quarantine(&body).err(),
                };
                if let Some(e) = bad {
                    problems.push((b.offset, format!("undecodable row (seq {seq}): {e}")));
                }
                let at = (keys.get(r).copied().unwrap_or(0), ts, seq);
                if ts / 3600 != self.header.hour || at < last {
                    problems.push((b.offset, format!("row (seq {seq}) out of order or hour")));
                }
                last = at;
            }
        }
        problems
    }
}

/// First compact format version whose directory is stored compressed.
const VERSION_COMPACT_ZSTD_DIR: u16 = 5;

/// The directory of a compact file, checked against its CRC and
/// decompressed (format 5 on); an error names the file and offset.
pub(super) fn directory_bytes<'a>(
    path: &Path,
    data: &'a [u8],
    info: &CompactInfo,
) -> Result<Cow<'a, [u8]>> {
    let at = info.dir_offset;
    let stored = &data[at as usize..];
    if crc32fast::hash(stored) != info.dir_crc {
        return Err(Error::corrupt(path, at, "directory checksum mismatch"));
    }
    if Header::version_of(data) < VERSION_COMPACT_ZSTD_DIR {
        return Ok(Cow::Borrowed(stored));
    }
    inflate_directory(stored)
        .map(Cow::Owned)
        .map_err(|why| Error::corrupt(path, at, format!("bad directory: {why}")))
}

/// A version 5 directory: `raw_len:u32` then one zstd frame of exactly
/// `raw_len` bytes.
fn inflate_directory(stored: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (len, frame) = stored
        .split_at_checked(4)
        .ok_or("shorter than its length")?;
    let raw_len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    if raw_len > SECTION_RAW_MAX {
        return Err("directory too large");
    }
    let raw = decompress(frame, raw_len).map_err(|_| "directory does not decompress")?;
    if raw.len() != raw_len {
        return Err("directory length disagrees with its frame");
    }
    Ok(raw)
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
