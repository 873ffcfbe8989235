//! Per-key sums of one query: rows, first and last second per key id.
//!
//! Pieces are gathered as they come and summed partition by partition of
//! the id space, each partition in a table small enough to stay in the
//! CPU's cache. With 100,000 services a day's window holds ~150,000
//! (hour, key) pieces over ids spread across several MiB of table: summing
//! them in one table indexed by id was a cache miss per piece (and a page
//! fault per 4 KiB of a table allocated per query), most of the query's
//! time. Cost: 24 bytes per piece twice, one table of at most
//! 2^[`PART_BITS`] slots, two passes over the pieces; when every key id
//! fits one partition, pieces are summed into the table as they come.

/// Ids per partition (2^13 slots of 16 bytes: 128 KiB).
const PART_BITS: u32 = 13;

/// (key, first second, last second, rows).
type Piece = (u32, u32, u32, u64);

/// A table of sums by id: (rows, !first second, last second), zero when
/// empty, and the slots in use.
type Table = (Vec<(u64, u32, u32)>, Vec<u32>);

#[derive(Default)]
pub(crate) struct Groups {
    pieces: Vec<Piece>,
    max_key: u32,
    /// When every id fits one partition: the sums themselves, added to as
    /// pieces come (no list of pieces to write and read again).
    direct: Option<Table>,
}

impl Groups {
    /// Groups of key ids below `ids`.
    pub fn new(ids: usize) -> Groups {
        Groups {
            direct: (ids <= 1 << PART_BITS).then(|| (vec![(0, 0, 0); ids], Vec::new())),
            ..Groups::default()
        }
    }

    pub fn add(&mut self, key: u32, count: u64, min_ts: u32, max_ts: u32) {
        if count == 0 {
            return;
        }
        if let Some((table, touched)) = &mut self.direct {
            if let Some(g) = table.get_mut(key as usize) {
                if g.0 == 0 {
                    touched.push(key);
                }
                g.0 += count;
                g.1 = g.1.max(!min_ts);
                g.2 = g.2.max(max_ts);
                return;
            }
            // An id beyond the table: the sums so far become pieces.
            let (mut table, touched) = self.direct.take().expect("matched above");
            for k in touched {
                let (rows, not_first, last) = std::mem::take(&mut table[k as usize]);
                self.max_key = self.max_key.max(k);
                self.pieces.push((k, !not_first, last, rows));
            }
        }
        self.max_key = self.max_key.max(key);
        self.pieces.push((key, min_ts, max_ts, count));
    }

    /// (key, (rows, first second, last second)) of every key with rows, in
    /// no particular order.
    pub fn into_ranked(mut self) -> Vec<(u32, (u64, u32, u32))> {
        if let Some((mut table, mut touched)) = self.direct.take() {
            let mut out = Vec::with_capacity(touched.len());
            drain(&mut table, &mut touched, 0, &mut out);
            return out;
        }
        let parts = (self.max_key >> PART_BITS) as usize + 1;
        let pieces = if parts == 1 {
            self.pieces
        } else {
            partitioned(self.pieces, parts)
        };
        let slots = (self.max_key as usize + 1).min(1 << PART_BITS);
        // (rows, !first second, last second): zero is an empty slot.
        let mut table = vec![(0u64, 0u32, 0u32); slots];
        let mut touched: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        let mut part = 0;
        for (key, min_ts, max_ts, count) in pieces {
            if key >> PART_BITS != part {
                drain(&mut table, &mut touched, part, &mut out);
                part = key >> PART_BITS;
            }
            let i = (key & ((1 << PART_BITS) - 1)) as usize;
            let g = &mut table[i];
            if g.0 == 0 {
                touched.push(i as u32);
            }
            g.0 += count;
            g.1 = g.1.max(!min_ts);
            g.2 = g.2.max(max_ts);
        }
        drain(&mut table, &mut touched, part, &mut out);
        out
    }
}

/// The pieces grouped by partition (one counting pass, one scatter).
fn partitioned(pieces: Vec<Piece>, parts: usize) -> Vec<Piece> {
    let mut next = vec![0usize; parts];
    for p in &pieces {
        next[(p.0 >> PART_BITS) as usize] += 1;
    }
    let mut start = 0;
    for n in next.iter_mut() {
        let count = *n;
        *n = start;
        start += count;
    }
    let mut out = vec![(0, 0, 0, 0); pieces.len()];
    for p in pieces {
        let b = &mut next[(p.0 >> PART_BITS) as usize];
        out[*b] = p;
        *b += 1;
    }
    out
}

/// Moves the sums of one partition's touched slots to `out`, emptying them.
fn drain(
    table: &mut [(u64, u32, u32)],
    touched: &mut Vec<u32>,
    part: u32,
    out: &mut Vec<(u32, (u64, u32, u32))>,
) {
    for i in touched.drain(..) {
        let g = std::mem::take(&mut table[i as usize]);
        out.push(((part << PART_BITS) | i, (g.0, !g.1, g.2)));
    }
}

#[cfg(test)]
mod tests {
    use super::{Groups, PART_BITS};
    use std::collections::BTreeMap;

    #[test]
    fn sums_match_a_map_across_partitions() {
        // Pieces listed (any ids), direct sums (ids fit), and direct sums
        // that meet an id beyond their table half way.
        for mut g in [
            Groups::default(),
            Groups::new(5 << PART_BITS),
            Groups::new(20),
        ] {
            sums_match_a_map(&mut g);
        }
        let mut direct = Groups::new(30);
        for k in 0..30 {
            direct.add(k, 1, k, k);
            direct.add(k, 2, 100, 100);
        }
        let mut got = direct.into_ranked();
        got.sort_unstable();
        let want: Vec<_> = (0..30).map(|k| (k, (3, k, 100))).collect();
        assert_eq!(got, want);
    }

    fn sums_match_a_map(g: &mut Groups) {
        let mut want: BTreeMap<u32, (u64, u32, u32)> = BTreeMap::new();
        let mut x = 12345u64;
        for i in 0..50_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = if i % 3 == 0 {
                (x >> 40) as u32 % 20
            } else {
                1 + (x >> 33) as u32 % (5 << PART_BITS)
            };
            let (count, lo) = ((x >> 20) % 4, (x >> 8) as u32 % 1000);
            g.add(key, count, lo, lo + 7);
            if count > 0 {
                let e = want.entry(key).or_insert((0, u32::MAX, 0));
                e.0 += count;
                e.1 = e.1.min(lo);
                e.2 = e.2.max(lo + 7);
            }
        }
        let mut got = std::mem::take(g).into_ranked();
        got.sort_unstable();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>());
    }
}
