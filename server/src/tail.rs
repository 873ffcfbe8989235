//! The live tail's hub: one task polls storage for `system_logs` rows
//! published since it last looked and hands each to every open stream whose
//! filter it passes, through that stream's bounded buffer. A full buffer
//! never waits: the row is counted as missed and the stream is told
//! `lagged` once it has room again. Ingestion never sees the tail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logpulse_model::{Contains, LogFilter, LogRow};
use parking_lot::Mutex;
use tokio::sync::mpsc::{self, error::TrySendError};
use tracing::warn;

use crate::render::{json_object, log_cells};
use logpulse_model::Storage;

/// How often the hub looks for newly published rows.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Rows read from storage per page.
pub const PAGE_ROWS: usize = 512;

/// What a stream wants: `service`, `severity` (upper-cased) and `contains`.
#[derive(Clone, Debug, Default)]
pub struct TailFilter {
    pub service: Option<String>,
    pub severity: Option<String>,
    pub contains: Option<Contains>,
}

impl TailFilter {
    /// The part storage filters on; `contains` goes alongside.
    pub fn log_filter(&self) -> LogFilter {
        LogFilter {
            service: self.service.clone(),
            severity: self.severity.clone(),
            ..Default::default()
        }
    }

    pub fn matches(&self, r: &LogRow<'_>) -> bool {
        self.service.as_deref().is_none_or(|s| r.service == s)
            && self.severity.as_deref().is_none_or(|v| r.severity == v)
            && self.contains.as_ref().is_none_or(|c| c.matches(&r.message))
    }
}

/// A row with its seq; its JSON is made once, by the first stream that
/// sends it (never for rows that only stalled streams would have had).
pub struct TailRow {
    pub seq: u64,
    pub row: LogRow<'static>,
    json: std::sync::OnceLock<String>,
}

impl TailRow {
    pub fn new(seq: u64, row: LogRow<'static>) -> TailRow {
        TailRow {
            seq,
            row,
            json: std::sync::OnceLock::new(),
        }
    }

    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            let mut json = String::with_capacity(self.row.text_bytes() + 160);
            json_object(
                &mut json,
                logpulse_model::DataSource::SystemLogs.columns(),
                &log_cells(&self.row),
            );
            json
        })
    }
}

/// What a stream's buffer carries.
pub enum Item {
    Row(Arc<TailRow>),
    /// `missed` matching rows were dropped, the last of them `last_seq`.
    Lagged {
        missed: u64,
        last_seq: u64,
    },
}

struct Subscriber {
    id: u64,
    filter: TailFilter,
    tx: mpsc::Sender<Item>,
    missed: u64,
    last_missed: u64,
    /// Rows with a seq up to this one were acknowledged before the stream
    /// opened: not offered, not counted as missed.
    from: u64,
}

impl Subscriber {
    /// Hands over a row without waiting; false once the stream is gone.
    fn offer(&mut self, row: &Arc<TailRow>) -> bool {
        if row.seq <= self.from || !self.filter.matches(&row.row) {
            return true;
        }
        if !self.flush_lagged() {
            return false;
        }
        if self.missed > 0 {
            return self.miss(row.seq);
        }
        match self.tx.try_send(Item::Row(row.clone())) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => self.miss(row.seq),
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Reports missed rows as soon as there is room, not only when the next
    /// matching row comes; false once the stream is gone.
    fn flush_lagged(&mut self) -> bool {
        if self.missed == 0 {
            return true;
        }
        let lagged = Item::Lagged {
            missed: self.missed,
            last_seq: self.last_missed,
        };
        match self.tx.try_send(lagged) {
            Ok(()) => {
                self.missed = 0;
                true
            }
            Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Closed(_)) => false,
        }
    }

    fn miss(&mut self, seq: u64) -> bool {
        self.missed += 1;
        self.last_missed = seq;
        true
    }
}

struct Inner {
    /// Every row up to this seq has been handed out.
    pos: u64,
    subs: Vec<Subscriber>,
    next_id: u64,
}

pub struct Hub {
    storage: Arc<dyn Storage>,
    inner: Mutex<Inner>,
    open: AtomicUsize,
    closed: AtomicBool,
    max: usize,
    buffer_rows: usize,
}

/// Why a stream could not be opened.
pub enum Refused {
    TooMany(usize),
    Closed,
}

/// An open stream's place in the hub; leaving it on drop.
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    /// Rows after this seq come through `rx`.
    pub from: u64,
    pub rx: mpsc::Receiver<Item>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.inner.lock().subs.retain(|s| s.id != self.id);
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    pub fn new(storage: Arc<dyn Storage>, max: usize, buffer_rows: usize) -> Arc<Hub> {
        let pos = storage.published_seq();
        Arc::new(Hub {
            storage,
            inner: Mutex::new(Inner {
                pos,
                subs: Vec::new(),
                next_id: 0,
            }),
            open: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            max,
            buffer_rows: buffer_rows.max(1),
        })
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Opens a stream, unless `max` are open or the hub is closed; `resume`:
    /// it continues after a Last-Event-ID rather than starting now.
    pub fn subscribe(
        self: &Arc<Self>,
        filter: TailFilter,
        resume: bool,
    ) -> Result<Subscription, Refused> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .map_err(|_| Refused::TooMany(self.max))?;
        let (tx, rx) = mpsc::channel(self.buffer_rows);
        // A backend whose published seq trails the newest rows (ClickHouse)
        // still has rows acknowledged before now to hand out: not for a
        // stream that starts now. One that resumes after an id reads those
        // from storage and takes every live row after them.
        let now = if resume { 0 } else { self.storage.seq_now() };
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let from = inner.pos.max(now);
        inner.subs.push(Subscriber {
            id,
            filter,
            tx,
            missed: 0,
            last_missed: 0,
            from,
        });
        Ok(Subscription {
            hub: self.clone(),
            id,
            from,
            rx,
        })
    }

    /// Ends every stream (their buffers close) and refuses new ones.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.inner.lock().subs.clear();
    }

    /// Polls storage every `interval` until closed.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        while !self.closed.load(Ordering::Acquire) {
            tokio::time::sleep(interval).await;
            self.inner.lock().subs.retain_mut(Subscriber::flush_lagged);
            let published = self.storage.published_seq();
            if self.open_streams() == 0 {
                let mut inner = self.inner.lock();
                inner.pos = inner.pos.max(published);
                continue;
            }
            if published <= self.inner.lock().pos {
                continue;
            }
            let hub = self.clone();
            match tokio::task::spawn_blocking(move || hub.deliver_up_to(published)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "live tail could not read new rows"),
                Err(e) => warn!(error = %e, "live tail reader failed"),
            }
        }
    }

    /// Reads the rows after `pos` (all visible up to `published`) and hands
    /// them out, a page at a time.
    fn deliver_up_to(&self, published: u64) -> logpulse_model::Result<()> {
        let all = LogFilter::default();
        loop {
            let pos = self.inner.lock().pos;
            let page = self.storage.logs_after(pos, &all, None, PAGE_ROWS)?;
            let full = page.rows.len() == PAGE_ROWS;
            let next = if full {
                page.next_after
            } else {
                page.next_after.max(published)
            };
            let rows: Vec<Arc<TailRow>> = page
                .rows
                .into_iter()
                .map(|(seq, row)| Arc::new(TailRow::new(seq, row)))
                .collect();
            let mut inner = self.inner.lock();
            for row in &rows {
                inner.subs.retain_mut(|s| s.offer(row));
            }
            inner.pos = inner.pos.max(next);
            if !full || self.closed.load(Ordering::Acquire) {
                return Ok(());
            }
        }
    }
}
