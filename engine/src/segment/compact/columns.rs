//! A compact segment's `system_logs` rows read as columns (SQL scans).
//!
//! A scan that needs no body column (`timestamp`, `service` and `severity`
//! come from the head) decompresses heads only; one that does decompresses
//! whole blocks and reads just the columns it asks for, with no record body
//! rebuilt. What a scan reads is not put in the block cache: it reads each
//! block once, and would push out the heads and counts the pipes keep there
//! (a block already cached is used).

use std::sync::Arc;

use super::cache::Cached;
use super::directory::BlockHead;
use super::reader::{CompactSegment, DecodedBlock};
use crate::error::{Error, Result};

/// One block as a scan holds it: its head alone, or the whole block.
pub struct ScanBlock(Held);

enum Held {
    Head(Arc<BlockHead>),
    Whole(Arc<DecodedBlock>),
}

impl ScanBlock {
    pub fn head(&self) -> &BlockHead {
        match &self.0 {
            Held::Head(h) => h,
            Held::Whole(b) => b.head(),
        }
    }
}

impl CompactSegment {
    /// Block `bi` for a scan: the whole block when `body`, else its head;
    /// from the cache when there, else decoded now and not cached.
    pub fn scan_block(&self, bi: usize, body: bool) -> Result<ScanBlock> {
        if let Some(Cached::Block(b)) = self.cache.get((self.uid, bi as u32, true)) {
            return Ok(ScanBlock(Held::Whole(b)));
        }
        if body {
            return Ok(ScanBlock(Held::Whole(Arc::new(self.decode_block(bi)?))));
        }
        if let Some(Cached::Head(h)) = self.cache.get((self.uid, bi as u32, false)) {
            return Ok(ScanBlock(Held::Head(h)));
        }
        Ok(ScanBlock(Held::Head(Arc::new(self.read_head(bi)?))))
    }

    /// Row `r`'s value of body column `col` (0 `server_id`, 1 `message`, 2
    /// `error_code`, 3 `resource_id`, 4 `metadata`) in block `bi`, read with
    /// [`Self::scan_block`] and `body`; a block read without its body, or a
    /// value that is not UTF-8, is an error naming the file and the block.
    pub fn scan_value<'b>(
        &self,
        bi: usize,
        block: &'b ScanBlock,
        col: usize,
        r: usize,
    ) -> Result<&'b str> {
        let bad = |why: &str| Error::corrupt(self.path(), self.blocks[bi].body_offset(), why);
        let Held::Whole(b) = &block.0 else {
            return Err(bad("block body not read"));
        };
        let bytes = b.value(col, r).ok_or_else(|| bad("no such column"))?;
        std::str::from_utf8(bytes).map_err(|_| bad("invalid UTF-8 in a column"))
    }

    /// The (service, severity) of dictionary key `key`.
    pub fn key_names(&self, key: u32) -> (&str, &str) {
        match self.keys.get(key as usize) {
            Some((s, v)) => (s, v),
            None => ("", ""),
        }
    }
}
