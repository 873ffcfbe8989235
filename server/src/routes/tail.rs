//! `GET /v0/tail`: new `system_logs` rows as Server-Sent Events. Each row is
//! `event: row` with `id: <seq>` and the row's JSON; `Last-Event-ID` (or
//! `last_event_id`) first replays the stored rows after that seq, so a
//! reconnecting client sees no gap and no duplicate, also across restarts.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use logpulse_model::{Contains, LogRow};
use tracing::warn;

use crate::app::{AppState, Caller};
use crate::error::ApiError;
use crate::tail::{Item, Refused, Subscription, TailFilter, TailRow, PAGE_ROWS};
use logpulse_model::Storage;

pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.who.require("DATASOURCES:READ", "system_logs")?;
    let p = &caller.params;
    let filter = TailFilter {
        service: p.string("service"),
        severity: p.string("severity").map(|s| s.to_uppercase()),
        contains: p.string("contains").map(|c| Contains::new(&c)),
    };
    let last_id = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().unwrap_or("")),
        None => p.get("last_event_id"),
    };
    let last_id = match last_id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "Last-Event-ID must be a row id (an unsigned integer), got {s:?}"
            ))
        })?),
        None => None,
    };
    let sub = app
        .tail
        .subscribe(filter.clone(), last_id.is_some())
        .map_err(|r| match r {
            Refused::TooMany(n) => ApiError::RateLimited(format!(
                "at most {n} live tail streams may be open (tail_clients_max)"
            )),
            Refused::Closed => ApiError::Unavailable("shutting down".into()),
        })?;
    let stream = Stream {
        storage: app.tail.storage().clone(),
        filter,
        cursor: last_id.unwrap_or(sub.from),
        catching_up: last_id.is_some(),
        sub,
        pending: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(stream, |mut s| async move {
        let ev = s.next().await?;
        Some((Ok::<_, Infallible>(ev), s))
    });
    let keep_alive = KeepAlive::new()
        .interval(Duration::from_millis(app.config.tail_keepalive_ms))
        .text("keepalive");
    let mut resp = Sse::new(events).keep_alive(keep_alive).into_response();
    // Proxies such as nginx buffer responses unless told not to.
    resp.headers_mut()
        .insert("x-accel-buffering", "no".parse().expect("valid header"));
    Ok(resp)
}

/// One client's stream: stored rows after its cursor first, then live rows.
struct Stream {
    storage: Arc<dyn Storage>,
    filter: TailFilter,
    /// Every matching row up to this seq has been sent (or reported missed).
    cursor: u64,
    catching_up: bool,
    sub: Subscription,
    pending: VecDeque<Event>,
}

impl Stream {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            if self.catching_up {
                self.catch_up().await?;
                continue;
            }
            match self.sub.rx.recv().await? {
                // Rows the catch-up already sent come through again: skip them.
                Item::Row(r) if r.seq > self.cursor => {
                    self.cursor = r.seq;
                    return Some(row_event(r.seq, r.json()));
                }
                Item::Row(_) => {}
                Item::Lagged { missed, last_seq } if last_seq > self.cursor => {
                    self.cursor = last_seq;
                    return Some(Event::default().event("lagged").data(missed.to_string()));
                }
                Item::Lagged { .. } => {}
            }
        }
    }

    /// Reads a page of stored rows after the cursor; None ends the stream.
    async fn catch_up(&mut self) -> Option<()> {
        let (storage, after) = (self.storage.clone(), self.cursor);
        let (lf, contains) = (self.filter.log_filter(), self.filter.contains.clone());
        let page = tokio::task::spawn_blocking(move || {
            storage.logs_after(after, &lf, contains.as_ref(), PAGE_ROWS)
        })
        .await;
        let page = match page {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                warn!(error = %e, "live tail could not read stored rows");
                return None;
            }
            Err(e) => {
                warn!(error = %e, "live tail reader failed");
                return None;
            }
        };
        self.catching_up = page.rows.len() == PAGE_ROWS;
        for (seq, row) in page.rows {
            self.pending.push_back(stored_event(seq, row));
        }
        self.cursor = self.cursor.max(page.next_after);
        Some(())
    }
}

fn stored_event(seq: u64, row: LogRow<'static>) -> Event {
    let r = TailRow::new(seq, row);
    row_event(r.seq, r.json())
}

fn row_event(seq: u64, json: &str) -> Event {
    Event::default().event("row").id(seq.to_string()).data(json)
}
