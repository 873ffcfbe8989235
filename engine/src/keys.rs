//! Interned (service, severity) pairs of `system_logs`. Ids are dense, start
//! at 1, live in memory only, and are rebuilt on open.

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default, Debug)]
pub struct Keys {
    ids: HashMap<Box<str>, HashMap<Box<str>, u32>>,
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
        self.names.push((service.into(), severity.into()));
        let id = self.names.len() as u32;
        self.ids
            .entry(service.into())
            .or_default()
            .insert(severity.into(), id);
        id
    }

    /// (service, severity) of an id.
    pub fn name(&self, id: u32) -> (&Arc<str>, &Arc<str>) {
        let (s, v) = &self.names[id as usize - 1];
        (s, v)
    }

    /// Ids whose service and severity match the optional filters.
    pub fn matching(&self, service: Option<&str>, severity: Option<&str>) -> Vec<u32> {
        (1..=self.names.len() as u32)
            .filter(|id| {
                let (s, v) = self.name(*id);
                service.is_none_or(|f| &**s == f) && severity.is_none_or(|f| &**v == f)
            })
            .collect()
    }
}
