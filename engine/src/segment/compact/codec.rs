//! The small codecs of compact segments: varints, zigzag, a bounds-checked
//! cursor, and string columns (plain or dictionary-coded).

use std::collections::HashMap;

/// Column modes.
pub(super) const COL_PLAIN: u8 = 0;
pub(super) const COL_DICT: u8 = 1;

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// A bounds-checked reader; errors carry the position for the caller.
pub(super) struct Cursor<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

pub(super) type Bad = &'static str;

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, pos: 0 }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.b.get(self.pos..end).ok_or("runs past the end")?;
        self.pos = end;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, Bad> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Bad> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> Result<u64, Bad> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn varint(&mut self) -> Result<u64, Bad> {
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

    pub fn varint_usize(&mut self, max: usize) -> Result<usize, Bad> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err("count out of range");
        }
        Ok(v as usize)
    }

    pub fn done(&self) -> bool {
        self.pos == self.b.len()
    }
}

/// Appends one column: dictionary-coded when that is smaller (and allowed).
pub(super) fn encode_column(out: &mut Vec<u8>, vals: &[&[u8]], dict_allowed: bool) {
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

pub(super) fn varint_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

pub(super) fn decode_column(c: &mut Cursor<'_>, rows: usize) -> Result<Vec<(u32, u32)>, Bad> {
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
