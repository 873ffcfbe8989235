//! `recent_logs` with `contains`: the counts cannot answer a substring, so
//! every row of the range whose key matches is decoded and tested. The
//! search goes an hour at a time, newest first, so that the caller holds
//! the state lock for one hour's rows at once, never for the whole range.

use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::row::{decode_log, DataSource, LogRow};
use crate::segment::Entry;
use crate::state::State;

use super::{Contains, KeyFilter, LogFilter, RecentLogs};

pub struct ContainsSearch {
    kf: KeyFilter,
    start: u64,
    end: u64,
    needle: Contains,
    limit: usize,
    /// Rows kept so far, and the (ts, seq) a row must beat once `top`
    /// holds `limit` rows.
    top: Vec<(u32, u64, LogRow<'static>)>,
    cut: Option<(u32, u64)>,
    out: RecentLogs,
}

impl ContainsSearch {
    pub fn new(keys: &Keys, f: &LogFilter, needle: &Contains, limit: usize) -> ContainsSearch {
        let (start, end) = f.bounds();
        ContainsSearch {
            kf: KeyFilter::new(keys, f.service.as_deref(), f.severity.as_deref()),
            start,
            end,
            needle: needle.clone(),
            limit,
            top: Vec::new(),
            cut: None,
            out: RecentLogs::default(),
        }
    }

    /// The hours that may hold matching rows, newest first.
    pub fn hours(&self, st: &State) -> Vec<u32> {
        if self.start >= self.end || self.kf.is_empty() {
            return Vec::new();
        }
        let (first_h, last_h) = (
            (self.start / 3600) as u32,
            ((self.end - 1) / 3600).min(u32::MAX as u64) as u32,
        );
        super::hours(st, first_h, last_h)
            .into_iter()
            .rev()
            .filter(|hour| hour.any(&self.kf))
            .map(|hour| hour.hour)
            .collect()
    }

    /// Tests every candidate row of hour `h`.
    pub fn hour(&mut self, st: &State, h: u32) -> Result<()> {
        for seg in st.table(DataSource::SystemLogs).hour(h) {
            let mut rows: Vec<(Entry, Option<u64>)> = Vec::new();
            seg.for_each_entry(
                self.start,
                self.end,
                |k| self.kf.matches(k),
                |e, seq| rows.push((e, seq)),
            )?;
            self.out.stats.rows_read += rows.len() as u64;
            for (e, seq) in rows {
                let body = seg.read_body(&e)?;
                self.out.stats.bytes_read += body.len() as u64;
                let row =
                    decode_log(&body).map_err(|m| Error::corrupt(&seg.path, e.offset as u64, m))?;
                if !self.needle.matches(&row.message) {
                    continue;
                }
                self.out.rows_before_limit += 1;
                let seq = match seq {
                    Some(s) => s,
                    None => seg.seq(&e)?,
                };
                let k = (e.ts, seq);
                if self.limit == 0 || self.cut.is_some_and(|c| k <= c) {
                    continue;
                }
                self.top.push((k.0, k.1, row.into_owned()));
                if self.top.len() >= 2 * self.limit.max(32) {
                    newest_first(&mut self.top, self.limit);
                    self.cut = self.top.last().map(|t| (t.0, t.1));
                }
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> RecentLogs {
        newest_first(&mut self.top, self.limit);
        self.out.rows = self.top.into_iter().map(|t| t.2).collect();
        self.out
    }
}

fn newest_first(top: &mut Vec<(u32, u64, LogRow<'static>)>, limit: usize) {
    top.sort_unstable_by_key(|t| std::cmp::Reverse((t.0, t.1)));
    top.truncate(limit);
}
