//! Tokens, named values and node ids in ClickHouse, so that every
//! `logpulsed` node of a cluster accepts the same tokens and reports the same
//! workspace. Rows are only ever appended; a read picks the latest version
//! per name (tokens) or the first (values, so that racing nodes agree).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use logpulse_model::{MetaStore, Result as ModelResult, TokenRecord};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use crate::error::Result;
use crate::http::Client;
use crate::schema::{quote, Layout, Meta, Table};
use crate::seq::NODES;
use std::sync::Arc;

const SYNC: &[(&str, &str)] = &[("insert_distributed_sync", "1")];

pub struct ClickHouseMeta {
    client: Arc<Client>,
    layout: Layout,
}

/// Microseconds since the epoch: the version of a row written now.
fn version() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Deserialize)]
struct TokenOut {
    name: String,
    token: String,
    scopes: String,
    deleted: u8,
}

#[derive(Deserialize)]
struct ValueOut {
    value: String,
}

impl ClickHouseMeta {
    pub fn new(client: Arc<Client>, layout: Layout) -> ClickHouseMeta {
        ClickHouseMeta { client, layout }
    }

    fn insert(&self, meta: Meta, row: serde_json::Value) -> Result<()> {
        let mut body = serde_json::to_vec(&row).expect("a JSON value serializes");
        body.push(b'\n');
        self.client
            .insert(&self.layout.table(Table::Meta(meta)), &body, SYNC)
    }

    fn first_value(&self, name: &str) -> Result<Option<String>> {
        let sql = format!(
            "SELECT argMin(value, version) AS value FROM {} WHERE name = {} GROUP BY name",
            self.layout.table(Table::Meta(Meta::Values)),
            quote(name)
        );
        let (rows, _) = self.client.select::<ValueOut>(&sql)?;
        Ok(rows.into_iter().next().map(|r| r.value))
    }
}

impl MetaStore for ClickHouseMeta {
    fn value_or_init(&self, name: &str, init: &dyn Fn() -> String) -> ModelResult<String> {
        if let Some(v) = self.first_value(name)? {
            return Ok(v);
        }
        self.insert(
            Meta::Values,
            json!({"name": name, "value": init(), "version": version()}),
        )?;
        // Another node may have stored its own first: the earliest wins.
        Ok(self.first_value(name)?.unwrap_or_default())
    }

    fn tokens(&self) -> ModelResult<Vec<TokenRecord>> {
        let sql = format!(
            "SELECT name, argMax(token, version) AS token, argMax(scopes, version) AS scopes, \
             argMax(deleted, version) AS deleted FROM {} GROUP BY name ORDER BY name",
            self.layout.table(Table::Meta(Meta::Tokens))
        );
        let (rows, _) = self.client.select::<TokenOut>(&sql)?;
        Ok(rows
            .into_iter()
            .filter(|r| r.deleted == 0)
            .map(|r| TokenRecord {
                name: r.name,
                token: r.token,
                scopes: r.scopes,
            })
            .collect())
    }

    fn put_token(&self, r: &TokenRecord) -> ModelResult<()> {
        Ok(self.insert(
            Meta::Tokens,
            json!({"name": r.name, "token": r.token, "scopes": r.scopes,
                   "deleted": 0, "version": version()}),
        )?)
    }

    fn delete_token(&self, name: &str) -> ModelResult<()> {
        Ok(self.insert(
            Meta::Tokens,
            json!({"name": name, "token": "", "scopes": "[]", "deleted": 1, "version": version()}),
        )?)
    }

    fn shared(&self) -> bool {
        true
    }
}

#[derive(Deserialize)]
struct NodeOut {
    node_id: u16,
    last: u64,
}

#[derive(Deserialize)]
struct InstanceOut {
    instance: String,
}

/// Draws this node's id: one no other node has registered (or, once all
/// have been used, the one registered longest ago), registered with a random
/// instance name and checked again, so that two nodes starting together
/// never keep the same id.
pub fn draw_node_id(client: &Client, layout: &Layout) -> Result<u16> {
    let table = layout.table(Table::Meta(Meta::Nodes));
    let instance = format!("{:032x}", rand::thread_rng().gen::<u128>());
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    for _ in 0..8 {
        let (rows, _) = client.select::<NodeOut>(&format!(
            "SELECT node_id, max(started) AS last FROM {table} GROUP BY node_id"
        ))?;
        let used: HashMap<u16, u64> = rows.into_iter().map(|r| (r.node_id, r.last)).collect();
        let id = if used.len() < NODES as usize {
            let mut rng = rand::thread_rng();
            loop {
                let id = rng.gen_range(0..NODES);
                if !used.contains_key(&id) {
                    break id;
                }
            }
        } else {
            *used.iter().min_by_key(|(_, last)| **last).expect("ids").0
        };
        let started = version();
        let mut body = serde_json::to_vec(&json!({
            "node_id": id, "instance": instance, "host": host, "started": started
        }))
        .expect("a JSON value serializes");
        body.push(b'\n');
        client.insert(&table, &body, SYNC)?;
        let (first, _) = client.select::<InstanceOut>(&format!(
            "SELECT instance FROM {table} WHERE node_id = {id} AND started >= {} \
             ORDER BY started, instance LIMIT 1",
            started.saturating_sub(600_000_000)
        ))?;
        if first.first().is_some_and(|f| f.instance == instance) {
            return Ok(id);
        }
    }
    Err(crate::error::Error::Decode(
        "could not draw a node id: other nodes kept taking the same ones".into(),
    ))
}
