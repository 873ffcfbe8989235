//! The key table: (service, severity) -> id, open addressing with linear
//! probing over a power-of-two array of 8-byte buckets (a 32-bit tag of the
//! hash and the id; 0 is empty), at most three quarters full, and each id's
//! slot: both names (shared strings) and the service's bytes inline when
//! they fit in 30, in one 64-byte cache line.
//!
//! Ingest looks a request's keys up together ([`KeyTable::find_many`]):
//! at 100,000 services each lookup misses the cache twice (its bucket, its
//! slot), and touching every bucket, then every candidate slot, in loops of
//! independent loads before comparing lets the processor overlap those
//! misses instead of waiting for each in turn. A severity is compared
//! through its shared string: there are few, and they stay cached.

use std::hash::Hasher;
use std::sync::Arc;

use rustc_hash::FxHasher;

/// Bytes of a service name a slot holds.
const INLINE: usize = 30;

/// An id's names, in one cache line.
#[repr(align(64))]
struct Slot {
    service: Arc<str>,
    severity: Arc<str>,
    /// The service name's length if it is inline, else `u8::MAX`.
    inline_len: u8,
    inline: [u8; INLINE],
}

impl Slot {
    fn new(service: Arc<str>, severity: Arc<str>) -> Slot {
        let mut inline = [0u8; INLINE];
        let n = service.len();
        let inline_len = if n <= INLINE {
            inline[..n].copy_from_slice(service.as_bytes());
            n as u8
        } else {
            u8::MAX
        };
        Slot {
            service,
            severity,
            inline_len,
            inline,
        }
    }

    fn is(&self, service: &[u8], severity: &[u8]) -> bool {
        let s = match self.inline_len {
            u8::MAX => self.service.as_bytes(),
            n => &self.inline[..n as usize],
        };
        s == service && self.severity.as_bytes() == severity
    }
}

pub fn hash_of(service: &[u8], severity: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(service);
    h.write_u8(0xff);
    h.write(severity);
    h.finish()
}

#[derive(Default)]
pub struct KeyTable {
    buckets: Vec<u64>,
    /// `slots[id - 1]`.
    slots: Vec<Slot>,
    /// log2 of `buckets.len()`.
    bits: u32,
}

impl KeyTable {
    /// Keys in the table (ids `1..=len`).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// (service, severity) of an id.
    pub fn name(&self, id: u32) -> (&Arc<str>, &Arc<str>) {
        let s = &self.slots[id as usize - 1];
        (&s.service, &s.severity)
    }

    /// The first bucket of a hash (Fibonacci hashing: its high bits) and
    /// its tag.
    fn start(&self, hash: u64) -> (usize, u64) {
        let i = (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize;
        (i, hash >> 32 << 32)
    }

    pub fn find(&self, service: &[u8], severity: &[u8]) -> Option<u32> {
        self.find_hashed(hash_of(service, severity), service, severity)
    }

    fn find_hashed(&self, hash: u64, service: &[u8], severity: &[u8]) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let (mut i, tag) = self.start(hash);
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return None;
            }
            if b & !0xffff_ffff == tag {
                let id = b as u32;
                if self.slots[id as usize - 1].is(service, severity) {
                    return Some(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The ids of many keys (0: not in the table), their cache misses
    /// overlapped (see the module's comment).
    pub fn find_many(&self, keys: &[(&str, &str)]) -> Vec<u32> {
        if self.buckets.is_empty() {
            return vec![0; keys.len()];
        }
        let hashes: Vec<u64> = keys
            .iter()
            .map(|(s, v)| hash_of(s.as_bytes(), v.as_bytes()))
            .collect();
        let mut touched = 0u64;
        for h in &hashes {
            touched ^= self.buckets[self.start(*h).0];
        }
        for h in &hashes {
            let b = self.buckets[self.start(*h).0];
            if b != 0 {
                touched ^= self.slots[b as u32 as usize - 1].inline_len as u64;
            }
        }
        std::hint::black_box(touched);
        keys.iter()
            .zip(&hashes)
            .map(|((s, v), h)| {
                self.find_hashed(*h, s.as_bytes(), v.as_bytes())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Adds a key not in the table; returns its id (`len` after).
    pub fn insert(&mut self, service: Arc<str>, severity: Arc<str>) -> u32 {
        if (self.slots.len() + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        let hash = hash_of(service.as_bytes(), severity.as_bytes());
        self.slots.push(Slot::new(service, severity));
        let id = self.slots.len() as u32;
        self.place(hash, id);
        id
    }

    fn place(&mut self, hash: u64, id: u32) {
        let mask = self.buckets.len() - 1;
        let (mut i, tag) = self.start(hash);
        while self.buckets[i] != 0 {
            i = (i + 1) & mask;
        }
        self.buckets[i] = tag | id as u64;
    }

    fn grow(&mut self) {
        self.bits = (self.bits + 1).max(6);
        self.buckets = vec![0; 1 << self.bits];
        for id in 1..=self.slots.len() as u32 {
            let hash = {
                let s = &self.slots[id as usize - 1];
                hash_of(s.service.as_bytes(), s.severity.as_bytes())
            };
            self.place(hash, id);
        }
    }
}
