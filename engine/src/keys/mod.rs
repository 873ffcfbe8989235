//! Interned (service, severity) pairs of `system_logs`. Ids are dense, start
//! at 1, live in memory only, and are rebuilt on open.
//!
//! Cost per key: 10 to 21 bytes of the key table's buckets and a 64-byte
//! slot holding both names' shared strings and the service's bytes when
//! they fit in 30 ([`table`]), and 4 bytes in its service's id list; each
//! distinct service and severity string is allocated once and shared (by
//! the compact segments' key dictionaries too), and 4 bytes in the name
//! order once a query has asked for it. Ingest looks up every row's key,
//! and opening a compact file every key of its dictionary: ~1 M lookups for
//! 1 M rows over 100,000 services, each a bucket and a slot; names behind a
//! pointer, or a nested service -> severity map, would cost a cache miss
//! more each.

mod table;

use std::cmp::Ordering;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;

use table::KeyTable;

/// A key's id and the shared strings of its service and severity.
pub type SharedKey = (u32, Arc<str>, Arc<str>);

#[derive(Default)]
pub struct Keys {
    /// Every key, found by its two names.
    table: KeyTable,
    /// service -> its keys' ids (for a service filter).
    services: HashMap<Arc<str>, SmallVec<[u32; 4]>>,
    /// Severity strings, shared by every key that has them.
    severities: HashMap<Arc<str>, ()>,
    /// Each id's place in (service, severity) order, for the ids there
    /// were when it was last built (index 0 unused): see [`Keys::name_order`].
    order: Mutex<Arc<Vec<u32>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("keys", &self.table.len())
            .field("services", &self.services.len())
            .finish()
    }
}

impl Keys {
    pub fn get(&self, service: &str, severity: &str) -> Option<u32> {
        self.table.find(service.as_bytes(), severity.as_bytes())
    }

    /// The ids of many keys, in order (0: not interned): what one ingest
    /// request's rows need, found faster together than one by one.
    pub fn get_many(&self, keys: &[(&str, &str)]) -> Vec<u32> {
        self.table.find_many(keys)
    }

    /// [`Keys::get`], with the shared strings of both names.
    pub fn get_shared(&self, service: &str, severity: &str) -> Option<SharedKey> {
        Some(self.shared(self.get(service, severity)?))
    }

    /// An id with the shared strings of its names.
    fn shared(&self, id: u32) -> SharedKey {
        let (s, v) = self.name(id);
        (id, s.clone(), v.clone())
    }

    /// [`Keys::get_many`], with the shared strings of both names.
    pub fn get_shared_many(&self, keys: &[(&str, &str)]) -> Vec<Option<SharedKey>> {
        self.get_many(keys)
            .into_iter()
            .map(|id| (id != 0).then(|| self.shared(id)))
            .collect()
    }

    /// [`Keys::intern_shared`] of many keys, looked up together (a compact
    /// file's dictionary at open).
    pub fn intern_shared_many(&mut self, keys: &[(&str, &str)]) -> Vec<SharedKey> {
        let found = self.get_shared_many(keys);
        found
            .into_iter()
            .zip(keys)
            .map(|(k, (s, v))| k.unwrap_or_else(|| self.intern_shared(s, v)))
            .collect()
    }

    /// The id of (service, severity), interned if new (the ingest path:
    /// a known key costs one probe and nothing else).
    pub fn intern(&mut self, service: &str, severity: &str) -> u32 {
        match self.get(service, severity) {
            Some(id) => id,
            None => self.insert(service, severity).0,
        }
    }

    /// [`Keys::intern`], with the shared strings of both names (no second
    /// lookup by id).
    pub fn intern_shared(&mut self, service: &str, severity: &str) -> SharedKey {
        match self.get_shared(service, severity) {
            Some(found) => found,
            None => self.insert(service, severity),
        }
    }

    fn insert(&mut self, service: &str, severity: &str) -> SharedKey {
        let sev: Arc<str> = match self.severities.get_key_value(severity) {
            Some((s, _)) => s.clone(),
            None => {
                let s: Arc<str> = severity.into();
                self.severities.insert(s.clone(), ());
                s
            }
        };
        let svc: Arc<str> = match self.services.get_key_value(service) {
            Some((s, _)) => s.clone(),
            None => service.into(),
        };
        let id = self.table.insert(svc.clone(), sev.clone());
        self.services.entry(svc.clone()).or_default().push(id);
        (id, svc, sev)
    }

    /// Keys interned so far (ids are `1..=len`).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Distinct services.
    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// (service, severity) of an id.
    pub fn name(&self, id: u32) -> (&Arc<str>, &Arc<str>) {
        self.table.name(id)
    }

    /// Ids whose service and severity match the optional filters. With a
    /// service, only that service's keys are looked at.
    pub fn matching(&self, service: Option<&str>, severity: Option<&str>) -> Vec<u32> {
        match service {
            Some(s) => {
                let Some(ids) = self.services.get(s) else {
                    return Vec::new();
                };
                // Ids are pushed in increasing order.
                ids.iter()
                    .copied()
                    .filter(|id| severity.is_none_or(|f| &**self.name(*id).1 == f))
                    .collect()
            }
            None => (1..=self.table.len() as u32)
                .filter(|id| severity.is_none_or(|f| &**self.name(*id).1 == f))
                .collect(),
        }
    }

    /// Each id's place in (service, severity) order, for ids below the
    /// returned vector's length; newer ids are compared by name (see
    /// [`Keys::cmp_names`]). Rebuilt when more than an eighth of the ids
    /// are newer than it, so its sorting is paid once per eighth of growth,
    /// not per query: a query ranking thousands of tied groups by name
    /// compares integers instead of strings.
    pub fn name_order(&self) -> Arc<Vec<u32>> {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let ranked = order.len().saturating_sub(1);
        if self.table.len() > ranked + ranked / 8 {
            let mut ids: Vec<u32> = (1..=self.table.len() as u32).collect();
            ids.sort_unstable_by(|a, b| self.name(*a).cmp(&self.name(*b)));
            let mut rank = vec![0u32; ids.len() + 1];
            for (place, id) in ids.into_iter().enumerate() {
                rank[id as usize] = place as u32;
            }
            *order = Arc::new(rank);
        }
        order.clone()
    }

    /// (service, severity) order of two ids, through `order` (from
    /// [`Keys::name_order`]) where it covers both.
    pub fn cmp_names(&self, order: &[u32], a: u32, b: u32) -> Ordering {
        match (order.get(a as usize), order.get(b as usize)) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => self.name(a).cmp(&self.name(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn lookups_agree_with_interning() {
        let mut keys = Keys::default();
        let sevs = ["ERROR", "INFO", "WARN"];
        let mut ids = Vec::new();
        for i in 0..5000 {
            // Every seventh service's names are too long for the slot.
            let svc = match i % 1700 {
                n if n % 7 == 0 => format!("a-service-name-past-the-inline-bytes-{n}"),
                n => format!("api-{n}"),
            };
            let sev = sevs[i % 3];
            let (id, s, v) = keys.intern_shared(&svc, sev);
            assert_eq!((&*s, &*v), (svc.as_str(), sev));
            assert_eq!(keys.intern(&svc, sev), id);
            ids.push((svc, sev, id));
        }
        assert_eq!(keys.len(), 5000);
        assert_eq!(keys.services(), 1700);
        for (svc, sev, id) in &ids {
            assert_eq!(keys.get(svc, sev), Some(*id));
            let (s, v) = keys.name(*id);
            assert_eq!((&**s, &**v), (svc.as_str(), *sev));
            let of_service = keys.matching(Some(svc), None);
            assert!(of_service.windows(2).all(|w| w[0] < w[1]));
            assert!(of_service.contains(id));
            assert_eq!(keys.matching(Some(svc), Some(sev)), vec![*id]);
        }
        let mut asked: Vec<(&str, &str)> = ids.iter().map(|(s, v, _)| (s.as_str(), *v)).collect();
        let mut expected: Vec<u32> = ids.iter().map(|k| k.2).collect();
        asked.extend([("api-1", "DEBUG"), ("api-1E", "RROR"), ("", "")]);
        expected.extend([0, 0, 0]);
        assert_eq!(keys.get_many(&asked), expected);
        assert_eq!(Keys::default().get_many(&asked[..2]), vec![0, 0]);
        assert_eq!(keys.get("api-1", "DEBUG"), None);
        assert_eq!(keys.get("api-1E", "RROR"), None);
        assert_eq!(
            keys.get("a-service-name-past-the-inline-bytes-7", "DEBUG"),
            None
        );
        assert_eq!(keys.get("nope", "ERROR"), None);
        assert!(keys.matching(Some("nope"), None).is_empty());
        assert_eq!(keys.matching(None, Some("WARN")).len(), keys.len() / 3);
    }

    #[test]
    fn many_keys_interned_at_once_agree_with_one_at_a_time() {
        let mut keys = Keys::default();
        keys.intern("a", "ERROR");
        let long = "a-service-name-past-the-inline-bytes-of-a-slot";
        // Known, new, a new one twice, and one too long for the slot.
        let batch = [("a", "ERROR"), ("b", "INFO"), ("b", "INFO"), (long, "WARN")];
        let got = keys.intern_shared_many(&batch);
        let ids: Vec<u32> = got.iter().map(|k| k.0).collect();
        assert_eq!(ids, vec![1, 2, 2, 3]);
        for ((id, s, v), (ws, wv)) in got.iter().zip(batch) {
            assert_eq!((&**s, &**v), (ws, wv));
            assert_eq!(keys.get(ws, wv), Some(*id));
        }
        assert_eq!(keys.len(), 3);
        let shared = keys.get_shared_many(&[(long, "WARN"), ("c", "INFO")]);
        assert_eq!(shared[0].as_ref().map(|k| k.0), Some(3));
        assert!(shared[1].is_none());
    }

    #[test]
    fn name_order_agrees_with_names_for_old_and_new_ids() {
        let mut keys = Keys::default();
        for i in (0..300).rev() {
            keys.intern(
                &format!("svc-{i:03}"),
                if i % 2 == 0 { "ERROR" } else { "INFO" },
            );
        }
        let order = keys.name_order();
        assert_eq!(order.len(), 301);
        // Ids added after the order was built are compared by name.
        keys.intern("svc-150", "WARN");
        keys.intern("aaa", "ERROR");
        let n = keys.len() as u32;
        for a in 1..=n {
            for b in (1..=n).step_by(7) {
                let by_name = keys.name(a).cmp(&keys.name(b));
                assert_eq!(keys.cmp_names(&order, a, b), by_name, "{a} {b}");
            }
        }
        // Not rebuilt for two new ids out of 302; rebuilt past an eighth.
        assert_eq!(keys.name_order().len(), 301);
        for i in 0..40 {
            keys.intern(&format!("new-{i}"), "ERROR");
        }
        assert_eq!(keys.name_order().len(), keys.len() + 1);
    }
}
