//! Where the daemon picks and opens its storage backend: the one place that
//! names a concrete [`Storage`]. Everything else holds an `Arc<dyn Storage>`
//! and an `Arc<dyn MetaStore>` (tokens and the workspace id).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use logpulse_clickhouse::{ClickHouse, Settings as ClickHouseSettings};
use logpulse_engine::durability::test_faults;
use logpulse_model::{MetaStore, Storage};

use crate::config::{Args, Config, FileConfig};
use crate::meta_files::FileMeta;

/// The configured backend.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// Segment files in the data dir.
    #[default]
    Embedded,
    /// A ClickHouse server or cluster.
    ClickHouse(ClickHouseSettings),
}

impl Backend {
    pub fn resolve(args: &Args, file: &FileConfig) -> anyhow::Result<Backend> {
        let name = args.backend.clone().or(file.backend.clone());
        match name.as_deref().unwrap_or("embedded") {
            "embedded" => Ok(Backend::Embedded),
            "clickhouse" => {
                let urls: Vec<String> = args
                    .clickhouse_url
                    .clone()
                    .or(file.clickhouse_url.clone())
                    .unwrap_or_else(|| "http://127.0.0.1:8123".into())
                    .split(',')
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect();
                anyhow::ensure!(!urls.is_empty(), "clickhouse_url lists no endpoint");
                for u in &urls {
                    anyhow::ensure!(
                        u.starts_with("http://") || u.starts_with("https://"),
                        "clickhouse_url: {u:?} is not an http:// or https:// URL"
                    );
                }
                let database = args
                    .clickhouse_database
                    .clone()
                    .or(file.clickhouse_database.clone())
                    .unwrap_or_else(|| "logpulse".into());
                anyhow::ensure!(
                    !database.is_empty()
                        && database
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "clickhouse_database: letters, digits and _ only"
                );
                Ok(Backend::ClickHouse(ClickHouseSettings {
                    urls,
                    database,
                    cluster: args
                        .clickhouse_cluster
                        .clone()
                        .or(file.clickhouse_cluster.clone())
                        .filter(|c| !c.is_empty()),
                    user: args
                        .clickhouse_user
                        .clone()
                        .or(file.clickhouse_user.clone())
                        .unwrap_or_else(|| "default".into()),
                    password: args
                        .clickhouse_password
                        .clone()
                        .or(file.clickhouse_password.clone())
                        .unwrap_or_default(),
                    timeout: Duration::from_millis(
                        args.clickhouse_timeout_ms
                            .or(file.clickhouse_timeout_ms)
                            .unwrap_or(10_000)
                            .max(100),
                    ),
                    tail_settle: Duration::from_millis(
                        args.clickhouse_tail_settle_ms
                            .or(file.clickhouse_tail_settle_ms)
                            .unwrap_or(1000),
                    ),
                }))
            }
            other => anyhow::bail!("backend: {other:?} is neither \"embedded\" nor \"clickhouse\""),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::ClickHouse(_) => "clickhouse",
        }
    }
}

/// Opens the configured backend: its storage and where tokens live.
pub async fn open(config: &Config) -> anyhow::Result<(Arc<dyn Storage>, Arc<dyn MetaStore>)> {
    match &config.backend {
        Backend::Embedded => {
            let storage = open_embedded(config).await?;
            Ok((storage, Arc::new(FileMeta::new(&config.data_dir))))
        }
        Backend::ClickHouse(settings) => {
            let settings = settings.clone();
            let urls = settings.urls.join(",");
            let (ch, meta) = tokio::task::spawn_blocking(move || ClickHouse::open(&settings))
                .await?
                .with_context(|| format!("opening the ClickHouse backend at {urls}"))?;
            Ok((Arc::new(ch), Arc::new(meta)))
        }
    }
}

/// Opens the embedded engine on the configured data dir (with the test-only
/// fault injection of the durability tests when its variable is set).
async fn open_embedded(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    if test_faults::enabled() {
        tracing::warn!(
            "{} is set: test-only fault injection and durable-image recording are on",
            test_faults::ENV
        );
        test_faults::start(&config.data_dir)?;
    }
    let engine_config = config.engine();
    let engine = tokio::task::spawn_blocking(move || logpulse_engine::Engine::open(engine_config))
        .await?
        .with_context(|| format!("opening data dir {}", config.data_dir.display()))?;
    Ok(Arc::new(engine))
}
