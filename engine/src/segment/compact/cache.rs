//! The one bounded cache of decompressed compact blocks, shared by every
//! compact segment of an engine (`block_cache_bytes`): memory for
//! compacted hours is this budget, whatever the number of rows stored.
//! Least recently used entries go first.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::counts::FileCounts;
use super::directory::BlockHead;
use super::reader::DecodedBlock;

/// What a cache entry holds: a block's head alone (timestamps, seqs, keys),
/// the whole block, or a file's per-(key, minute) counts.
#[derive(Clone)]
pub(super) enum Cached {
    Head(Arc<BlockHead>),
    Block(Arc<DecodedBlock>),
    Counts(Arc<FileCounts>),
}

impl Cached {
    fn bytes(&self) -> usize {
        match self {
            Cached::Head(h) => h.heap_bytes(),
            Cached::Block(b) => b.heap_bytes(),
            Cached::Counts(c) => c.heap_bytes(),
        }
    }
}

/// (segment uid, block index ([`COUNTS`] for the counts), whole block?)
type Key = (u64, u32, bool);

/// The block index under which a file's counts are cached.
pub(super) const COUNTS: u32 = u32::MAX;

#[derive(Default)]
struct Inner {
    map: HashMap<Key, (u64, Cached)>,
    /// Use stamp → key, oldest first.
    order: BTreeMap<u64, Key>,
    bytes: usize,
    stamp: u64,
}

/// A byte-bounded LRU cache of decoded blocks.
pub struct BlockCache {
    budget: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Unique ids of compact segments, so that cache keys never collide.
static NEXT_UID: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_uid() -> u64 {
    NEXT_UID.fetch_add(1, Ordering::Relaxed)
}

impl BlockCache {
    pub fn new(budget: usize) -> Arc<BlockCache> {
        Arc::new(BlockCache {
            budget,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    #[cfg(test)]
    pub(super) fn contains(&self, key: Key) -> bool {
        self.inner.lock().map.contains_key(&key)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// (hits, misses) since start.
    pub fn hit_counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    pub(super) fn get(&self, key: Key) -> Option<Cached> {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        inner.stamp += 1;
        let stamp = inner.stamp;
        match inner.map.get_mut(&key) {
            Some((used, v)) => {
                inner.order.remove(used);
                *used = stamp;
                inner.order.insert(stamp, key);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(v.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Caches `v` (decoded outside the lock), evicting the least recently
    /// used entries until the budget holds. An entry larger than the whole
    /// budget is not kept.
    pub(super) fn put(&self, key: Key, v: Cached) {
        let size = v.bytes();
        if size > self.budget {
            return;
        }
        let mut g = self.inner.lock();
        let inner = &mut *g;
        inner.stamp += 1;
        let stamp = inner.stamp;
        if let Some((old, prev)) = inner.map.insert(key, (stamp, v)) {
            inner.order.remove(&old);
            inner.bytes -= prev.bytes();
        }
        inner.order.insert(stamp, key);
        inner.bytes += size;
        while inner.bytes > self.budget {
            let Some((_, k)) = inner.order.pop_first() else {
                break;
            };
            if let Some((_, gone)) = inner.map.remove(&k) {
                inner.bytes -= gone.bytes();
            }
        }
    }

    /// Forgets every block of a segment (it was replaced or dropped).
    pub(super) fn forget(&self, uid: u64) {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let keys: Vec<Key> = inner.map.keys().filter(|k| k.0 == uid).copied().collect();
        for k in keys {
            if let Some((stamp, v)) = inner.map.remove(&k) {
                inner.order.remove(&stamp);
                inner.bytes -= v.bytes();
            }
        }
    }
}
