//! Writing a compact segment front to back: blocks of sorted rows, then
//! the directory, then the header; fsynced before it is given its name.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::codec::{encode_column, put_varint, zigzag};
use super::directory::{encode_counts, encode_seconds, BlockMeta, CompactInfo, KeyCount};
use super::{CODEC_BODIES, CODEC_LOG_KEYED, LOG_COLUMNS};
use crate::error::{Error, Result};
use crate::row::{decode_log, DataSource, LogRow};
use crate::segment::format::{Header, HEADER_LEN, KIND_COMPACT};

/// Tuning of the compact writer.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    pub zstd_level: i32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { zstd_level: 6 }
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
    /// Rows, first and last second of each (key, minute), in that order
    /// (the rows' order), system_logs only.
    counts: Vec<KeyCount>,
    /// Each row's second of its minute, in file order (system_logs only).
    seconds: Vec<u8>,
    rows: u64,
    /// (key, timestamp) of the last row written: rows must not go back.
    last: (u32, u32),
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
                CODEC_LOG_KEYED
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
            counts: Vec::new(),
            seconds: Vec::new(),
            rows: 0,
            last: (0, 0),
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

    /// Encodes, compresses and writes one block of rows, which must come
    /// after the rows of earlier blocks in the file's order: for
    /// `system_logs`, (service, severity, timestamp, seq), the dictionary
    /// taking keys in the order they first come; for the other data sources
    /// (timestamp, seq).
    pub fn add_block(&mut self, rows: &[BlockRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.rows + rows.len() as u64 > u32::MAX as u64 {
            return Err(Error::Invalid("more than 2^32 rows in one hour".into()));
        }
        let mut meta = BlockMeta {
            rows: rows.len() as u32,
            min_ts: rows.iter().map(|r| r.ts).min().expect("non-empty"),
            max_ts: rows.iter().map(|r| r.ts).max().expect("non-empty"),
            min_seq: rows.iter().map(|r| r.seq).min().expect("non-empty"),
            max_seq: rows.iter().map(|r| r.seq).max().expect("non-empty"),
            offset: self.pos,
            first_row: self.rows as u32,
            ..Default::default()
        };
        let (body, keys) = if self.codec == CODEC_LOG_KEYED {
            self.log_columns(rows, &mut meta)?
        } else {
            let vals: Vec<&[u8]> = rows.iter().map(|r| r.body).collect();
            let mut body = Vec::new();
            encode_column(&mut body, &vals, false);
            (body, Vec::new())
        };
        let mut head = Vec::with_capacity(rows.len() * 4);
        let mut prev = meta.min_ts;
        for (i, r) in rows.iter().enumerate() {
            let at = (keys.get(i).copied().unwrap_or(0), r.ts);
            if at < self.last || r.ts / 3600 != self.header.hour {
                return Err(Error::Invalid(format!(
                    "row at {} out of order or outside hour {}",
                    r.ts, self.header.hour
                )));
            }
            self.last = at;
            if self.codec == CODEC_LOG_KEYED {
                put_varint(&mut head, (r.ts - meta.min_ts) as u64);
            } else {
                put_varint(&mut head, (r.ts - prev) as u64);
                prev = r.ts;
            }
        }
        let mut prev = meta.min_seq;
        for r in rows {
            put_varint(&mut head, zigzag(r.seq.wrapping_sub(prev) as i64));
            prev = r.seq;
        }
        for k in &keys {
            put_varint(&mut head, *k as u64);
        }
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

    /// The string columns and each row's key (an index into the dictionary).
    fn log_columns(
        &mut self,
        rows: &[BlockRow<'_>],
        meta: &mut BlockMeta,
    ) -> Result<(Vec<u8>, Vec<u32>)> {
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
        let mut row_keys = Vec::with_capacity(decoded.len());
        for row in &decoded {
            let k = self.key_id(&row.service, &row.severity);
            if block_keys.last() != Some(&k) {
                block_keys.push(k);
            }
            row_keys.push(k);
            let (minute, sec) = (
                ((row.timestamp / 60) % 60) as u8,
                (row.timestamp % 60) as u8,
            );
            self.seconds.push(sec);
            // Rows come in (key, timestamp) order (add_block refuses the
            // block otherwise): a (key, minute) is the last one or new.
            match self.counts.last_mut() {
                Some(c) if c.key == k && c.minute == minute => {
                    c.count += 1;
                    c.min_sec = c.min_sec.min(sec);
                    c.max_sec = c.max_sec.max(sec);
                }
                _ => self.counts.push(KeyCount {
                    key: k,
                    minute,
                    count: 1,
                    min_sec: sec,
                    max_sec: sec,
                }),
            }
        }
        block_keys.sort_unstable();
        block_keys.dedup();
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
        Ok((body, row_keys))
    }

    fn key_id(&mut self, service: &str, severity: &str) -> u32 {
        // Rows come in key order: a key seen before is the last one.
        if let Some((s, v)) = self.keys.last() {
            if s == service && v == severity {
                return self.keys.len() as u32 - 1;
            }
        }
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
        if self.codec == CODEC_LOG_KEYED {
            encode_counts(&mut dir, &self.counts);
            encode_seconds(&mut dir, &self.counts, &self.seconds);
        }
        // Format versions 5 and 6: the directory is stored zstd-compressed, after
        // its raw length (key names share long prefixes in key order).
        let packed = self.compress(&dir)?;
        let mut stored = Vec::with_capacity(4 + packed.len());
        stored.extend_from_slice(&(dir.len() as u32).to_le_bytes());
        stored.extend_from_slice(&packed);
        let dir = stored;
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
