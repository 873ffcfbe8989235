//! The [`Engine`] methods behind the dashboard's extensions: the live tail's
//! reads, `log_timeseries` and `recent_logs` with `contains`. Kept apart from
//! `engine.rs` so that the core handle stays about appends and the contract.

use std::sync::atomic::Ordering;

use crate::engine::Engine;
use crate::error::Result;
use crate::query::{
    self, Contains, ContainsSearch, LogFilter, LogsAfter, RecentLogs, Timeseries, TimeseriesQuery,
};

impl Engine {
    /// The greatest seq published so far: every row up to it is visible.
    /// Cheap (one atomic load): a tail polls it to learn of new rows.
    pub fn published_seq(&self) -> u64 {
        self.shared.counters.last_seq.load(Ordering::Acquire)
    }

    /// `system_logs` rows with seq > `after` that match, in seq order, at
    /// most `limit` (see [`LogsAfter::next_after`]).
    pub fn logs_after(
        &self,
        after: u64,
        filter: &LogFilter,
        contains: Option<&Contains>,
        limit: usize,
    ) -> Result<LogsAfter> {
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        query::logs_after(&st, &keys, after, filter, contains, limit)
    }

    /// `recent_logs` restricted to messages containing `needle`. Takes the
    /// state lock an hour at a time, so appends go on during a long search.
    pub fn recent_logs_containing(
        &self,
        filter: &LogFilter,
        needle: &Contains,
        limit: usize,
    ) -> Result<RecentLogs> {
        let mut search = {
            let keys = self.shared.keys.read();
            ContainsSearch::new(&keys, filter, needle, limit)
        };
        let hours = search.hours(&self.shared.state.read());
        for h in hours {
            search.hour(&self.shared.state.read(), h)?;
        }
        Ok(search.finish())
    }

    /// `log_timeseries`.
    pub fn log_timeseries(&self, q: &TimeseriesQuery) -> Result<Timeseries> {
        let st = self.shared.state.read();
        let keys = self.shared.keys.read();
        query::log_timeseries(&st, &keys, q)
    }
}
