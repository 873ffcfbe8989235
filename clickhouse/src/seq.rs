//! Seqs without a shared counter. A seq is `tick << 12 | node`: `node` is the
//! id this `logpulsed` drew at start (unique among the nodes of a cluster,
//! see [`crate::meta::draw_node_id`]), `tick` its clock in microseconds made
//! monotonic (never less than the last tick plus one, so one request's rows
//! get consecutive ticks).
//!
//! Guarantee: seqs never repeat; on one node they increase with ingestion
//! order; across nodes they follow ingestion order up to the nodes' clock
//! skew (rows acknowledged further apart than the skew are ordered by their
//! acknowledgement, closer ones may be ordered either way).
//!
//! The live tail needs a watermark: a seq up to which every row is visible.
//! This node knows its own inserts in flight; another node's rows become
//! visible at most about the insert latency after their tick, so the
//! watermark trails the clock by `settle` and never passes a seq of ours
//! still in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Bits of a seq that hold the node id.
pub const NODE_BITS: u32 = 12;
/// Node ids are below this.
pub const NODES: u16 = 1 << NODE_BITS;

pub struct Seqs {
    node: u64,
    settle_us: u64,
    inner: Mutex<Inner>,
    published: AtomicU64,
}

struct Inner {
    last_tick: u64,
    /// First seq of each append in flight → its row count.
    in_flight: BTreeMap<u64, u64>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Seqs {
    /// `floor`: the greatest seq already stored (ticks start above it).
    pub fn new(node: u16, floor: u64, settle: Duration) -> Seqs {
        assert!(node < NODES);
        let seqs = Seqs {
            node: node as u64,
            settle_us: settle.as_micros() as u64,
            inner: Mutex::new(Inner {
                last_tick: floor >> NODE_BITS,
                in_flight: BTreeMap::new(),
            }),
            published: AtomicU64::new(0),
        };
        seqs.published.store(floor, Ordering::Release);
        seqs
    }

    pub fn node(&self) -> u16 {
        self.node as u16
    }

    /// Seqs for `n` (>= 1) rows, in flight until [`Self::done`]: the first
    /// and the last; the rows between take every tick in between.
    pub fn allocate(&self, n: u64) -> (u64, u64) {
        let mut inner = self.inner.lock();
        let first = now_us().max(inner.last_tick + 1);
        let last = first + n.max(1) - 1;
        inner.last_tick = last;
        let (a, b) = (self.seq(first), self.seq(last));
        inner.in_flight.insert(a, n);
        (a, b)
    }

    /// The seq of the `i`-th row of an append whose first seq is `first`.
    pub fn nth(first: u64, i: u64) -> u64 {
        first + (i << NODE_BITS)
    }

    /// The append that started at `first` is stored or failed.
    pub fn done(&self, first: u64) {
        self.inner.lock().in_flight.remove(&first);
    }

    fn seq(&self, tick: u64) -> u64 {
        (tick << NODE_BITS) | self.node
    }

    /// A seq every row allocated from now on exceeds (on this node; other
    /// nodes' up to the clock skew).
    pub fn now(&self) -> u64 {
        let last = self.inner.lock().last_tick;
        (now_us().max(last) << NODE_BITS) | (NODES as u64 - 1)
    }

    /// The watermark: every row with a smaller or equal seq is visible
    /// (this node's exactly, other nodes' once `settle` has passed).
    pub fn published(&self) -> u64 {
        let clock = now_us().saturating_sub(self.settle_us);
        let mut bound = (clock << NODE_BITS) | (NODES as u64 - 1);
        if let Some((&first, _)) = self.inner.lock().in_flight.first_key_value() {
            bound = bound.min(first - 1);
        }
        self.published.fetch_max(bound, Ordering::AcqRel).max(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_increase_and_carry_the_node() {
        let s = Seqs::new(7, 0, Duration::from_millis(0));
        let (a, b) = s.allocate(3);
        assert_eq!(a & 0xfff, 7);
        assert_eq!(Seqs::nth(a, 2), b);
        let (c, _) = s.allocate(1);
        assert!(c > b);
        s.done(a);
        s.done(c);
    }

    #[test]
    fn the_watermark_waits_for_appends_in_flight() {
        let s = Seqs::new(1, 0, Duration::from_millis(0));
        let (a, _) = s.allocate(10);
        std::thread::sleep(Duration::from_millis(2));
        assert!(s.published() < a);
        s.done(a);
        assert!(s.published() > a);
    }

    #[test]
    fn ticks_start_above_the_stored_floor() {
        let far = (now_us() + 10_000_000) << NODE_BITS;
        let s = Seqs::new(2, far, Duration::from_secs(1));
        let (a, _) = s.allocate(1);
        assert!(a > far);
    }
}
