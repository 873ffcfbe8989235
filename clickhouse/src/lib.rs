//! logpulse's ClickHouse backend: [`Storage`] over a ClickHouse server or a
//! cluster of them, for users who outgrow one machine. Several stateless
//! `logpulsed` nodes can share one cluster: rows, thresholds, quarantines,
//! tokens and the workspace id all live in ClickHouse.
//!
//! The wire is plain HTTP ([`http`]), the least version-sensitive path: it
//! works with Debian's ClickHouse 18.16 and with current servers. Design and
//! guarantees: `docs/clickhouse-backend.md`.
#![deny(unsafe_code)]

pub mod error;
mod http;
mod meta;
mod pipes;
mod rows;
mod scan;
pub mod schema;
mod seq;
mod storage;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use meta::ClickHouseMeta;
use serde::Deserialize;

use crate::http::{Client, Endpoints};
use crate::schema::{Layout, Table, DDL_SETTINGS};
use crate::seq::Seqs;
use crate::writer::Writer;
use logpulse_model::DataSource;

/// How `logpulsed` reaches ClickHouse.
#[derive(Clone, Debug)]
pub struct Settings {
    /// HTTP endpoints, e.g. `http://127.0.0.1:8123`; every node of the
    /// cluster (the schema is created on each, TRUNCATE runs on each).
    pub urls: Vec<String>,
    pub database: String,
    /// A cluster of the servers' `remote_servers`: local tables on every
    /// node and a `Distributed` table over them. None: one server.
    pub cluster: Option<String>,
    pub user: String,
    pub password: String,
    /// How long one request to ClickHouse may take.
    pub timeout: Duration,
    /// How far the live tail's watermark trails the clock (other nodes'
    /// rows become visible within about their insert's latency).
    pub tail_settle: Duration,
}

/// Counters for `/metrics`.
#[derive(Default)]
struct Counters {
    inserts_failed: AtomicU64,
    rows_stored: AtomicU64,
}

pub struct ClickHouse {
    client: Arc<Client>,
    layout: Layout,
    seqs: Seqs,
    writer: Writer,
    closed: AtomicBool,
    counters: Counters,
}

#[derive(Deserialize)]
struct MaxSeq {
    m: u64,
}

impl ClickHouse {
    /// Connects, creates the schema on every endpoint where it is missing,
    /// draws this node's id and starts the writer.
    pub fn open(settings: &Settings) -> Result<(ClickHouse, ClickHouseMeta), Error> {
        if settings.urls.is_empty() {
            return Err(Error::Decode("no ClickHouse endpoint given".into()));
        }
        let client = Arc::new(Client::new(&Endpoints {
            urls: settings.urls.clone(),
            user: settings.user.clone(),
            password: settings.password.clone(),
            timeout: settings.timeout,
        }));
        let layout = Layout {
            database: settings.database.clone(),
            cluster: settings.cluster.clone().filter(|c| !c.is_empty()),
        };
        for i in 0..client.endpoints() {
            for stmt in layout.ddl() {
                client.execute_on(i, &stmt, DDL_SETTINGS)?;
            }
        }
        let node = meta::draw_node_id(&client, &layout)?;
        let mut floor = 0;
        for ds in [DataSource::SystemLogs, DataSource::Thresholds] {
            let (m, _) = client.select::<MaxSeq>(&format!(
                "SELECT max(seq) AS m FROM {}",
                layout.table(Table::Data(ds))
            ))?;
            floor = floor.max(m.first().map_or(0, |m| m.m));
        }
        tracing::info!(
            node,
            endpoints = client.endpoints(),
            database = %layout.database,
            cluster = layout.cluster.as_deref().unwrap_or("(none)"),
            "ClickHouse backend ready"
        );
        let writer = Writer::start(client.clone(), layout.clone());
        let meta = ClickHouseMeta::new(client.clone(), layout.clone());
        Ok((
            ClickHouse {
                client,
                layout,
                seqs: Seqs::new(node, floor, settings.tail_settle),
                writer,
                closed: AtomicBool::new(false),
                counters: Counters::default(),
            },
            meta,
        ))
    }

    fn ctx(&self) -> pipes::Ctx<'_> {
        pipes::Ctx {
            client: &self.client,
            layout: &self.layout,
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}
