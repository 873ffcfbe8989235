//! Interned (service, severity) pairs of `system_logs`. Ids are dense, start
//! at 1, live in memory only, and are rebuilt on open.
//!
//! Cost per key: one `names` slot (16 bytes) and one slot in its service's
//! severity map; each distinct service and severity string is allocated
//! once and shared (by the compact segments' key dictionaries too), and 4
//! bytes in the name order once a query has asked for it.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap as HashMap;

#[derive(Default, Debug)]
pub struct Keys {
    /// service → (severity → id).
    ids: HashMap<Arc<str>, HashMap<Arc<str>, u32>>,
    /// Severity strings, shared by every key that has them.
    severities: HashMap<Arc<str>, ()>,
    names: Vec<(Arc<str>, Arc<str>)>,
    /// Each id's place in (service, severity) order, for the ids there
    /// were when it was last built (index 0 unused): see [`Keys::name_order`].
    order: Mutex<Arc<Vec<u32>>>,
}

impl Keys {
    pub fn get(&self, service: &str, severity: &str) -> Option<u32> {
        self.ids.get(service)?.get(severity).copied()
    }

    pub fn intern(&mut self, service: &str, severity: &str) -> u32 {
        if let Some(id) = self.get(service, severity) {
            return id;
        }
        let sev: Arc<str> = match self.severities.get_key_value(severity) {
            Some((s, _)) => s.clone(),
            None => {
                let s: Arc<str> = severity.into();
                self.severities.insert(s.clone(), ());
                s
            }
        };
        let svc: Arc<str> = match self.ids.get_key_value(service) {
            Some((s, _)) => s.clone(),
            None => service.into(),
        };
        self.names.push((svc.clone(), sev.clone()));
        let id = self.names.len() as u32;
        self.ids.entry(svc).or_default().insert(sev, id);
        id
    }

    /// Keys interned so far (ids are `1..=len`).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Distinct services.
    pub fn services(&self) -> usize {
        self.ids.len()
    }

    /// (service, severity) of an id.
    pub fn name(&self, id: u32) -> (&Arc<str>, &Arc<str>) {
        let (s, v) = &self.names[id as usize - 1];
        (s, v)
    }

    /// Ids whose service and severity match the optional filters. With a
    /// service, only that service's keys are looked at.
    pub fn matching(&self, service: Option<&str>, severity: Option<&str>) -> Vec<u32> {
        match service {
            Some(s) => {
                let Some(sevs) = self.ids.get(s) else {
                    return Vec::new();
                };
                let mut ids: Vec<u32> = sevs
                    .iter()
                    .filter(|(v, _)| severity.is_none_or(|f| &***v == f))
                    .map(|(_, id)| *id)
                    .collect();
                ids.sort_unstable();
                ids
            }
            None => (1..=self.names.len() as u32)
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
        if self.names.len() > ranked + ranked / 8 {
            let mut ids: Vec<u32> = (1..=self.names.len() as u32).collect();
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
