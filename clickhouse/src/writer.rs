//! Grouped inserts. ClickHouse wants few large inserts, not one per request:
//! requests hand their encoded rows to one writer thread, which takes every
//! request waiting when it is free and sends one `INSERT` per table for all
//! of them. Each request is answered when the insert holding its rows has
//! returned, so an acknowledged row is stored and visible; a failed insert
//! fails every request in it (nothing is acknowledged that is not stored).

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::http::Client;
use crate::schema::{Layout, Table};

/// Most bytes of rows one group gathers before it is sent.
const GROUP_BYTES: usize = 32 << 20;
/// Requests waiting for the writer at most; beyond, senders wait.
const QUEUE: usize = 1024;

/// Rows of one request, encoded, per table.
pub struct Job {
    pub parts: Vec<(Table, Vec<u8>)>,
    pub reply: Sender<Result<()>>,
}

pub struct Writer {
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Settings of every insert: a Distributed insert returns once every shard
/// has its rows (without it rows reach remote shards about a second later,
/// after the request was answered).
const INSERT_SETTINGS: &[(&str, &str)] = &[("insert_distributed_sync", "1")];

impl Writer {
    pub fn start(client: Arc<Client>, layout: Layout) -> Writer {
        let (tx, rx) = bounded::<Job>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("clickhouse-writer".into())
            .spawn(move || run(&client, &layout, &rx))
            .expect("spawn the ClickHouse writer");
        Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Stores the parts; returns once they are stored or failed.
    pub fn write(&self, parts: Vec<(Table, Vec<u8>)>) -> Result<()> {
        let (reply, answer) = bounded(1);
        let tx = self.tx.lock().clone().ok_or(Error::Closed)?;
        tx.send(Job { parts, reply }).map_err(|_| Error::Closed)?;
        drop(tx);
        answer.recv().unwrap_or(Err(Error::Closed))
    }

    /// Finishes the requests already queued and stops.
    pub fn close(&self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn run(client: &Client, layout: &Layout, rx: &Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut bytes: usize = jobs[0].parts.iter().map(|(_, b)| b.len()).sum();
        while bytes < GROUP_BYTES {
            match rx.try_recv() {
                Ok(j) => {
                    bytes += j.parts.iter().map(|(_, b)| b.len()).sum::<usize>();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let result = insert_group(client, layout, &mut jobs);
        for j in jobs {
            let _ = j.reply.send(result.clone());
        }
    }
}

/// One insert per table, quarantines first: a request whose quarantine
/// insert fails has stored none of its good rows either.
fn insert_group(client: &Client, layout: &Layout, jobs: &mut [Job]) -> Result<()> {
    let mut tables: Vec<(Table, Vec<u8>)> = Vec::new();
    for j in jobs.iter_mut() {
        for (t, body) in j.parts.drain(..) {
            match tables.iter_mut().find(|(x, _)| *x == t) {
                Some((_, b)) => b.extend_from_slice(&body),
                None => tables.push((t, body)),
            }
        }
    }
    tables.sort_by_key(|(t, _)| match t {
        Table::Data(ds) if ds.is_quarantine() => 0,
        _ => 1,
    });
    for (t, body) in &tables {
        if let Err(e) = client.insert(&layout.table(*t), body, INSERT_SETTINGS) {
            let unavailable = e.is_unavailable();
            tracing::warn!(error = %e, table = t.name(), unavailable, "ClickHouse insert failed");
            return Err(e);
        }
    }
    Ok(())
}
