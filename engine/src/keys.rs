//! Interned (service, severity) pairs of `system_logs`. Ids are dense, start
//! at 1, live in memory only, and are rebuilt on open.
//!
//! Cost per key: one `names` slot (16 bytes) and one slot in its service's
//! severity map; each distinct service and severity string is allocated
//! once and shared (by the compact segments' key dictionaries too).

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

#[derive(Default, Debug)]
pub struct Keys {
    /// service → (severity → id).
    ids: HashMap<Arc<str>, HashMap<Arc<str>, u32>>,
    /// Severity strings, shared by every key that has them.
    severities: HashMap<Arc<str>, ()>,
    names: Vec<(Arc<str>, Arc<str>)>,
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
}
