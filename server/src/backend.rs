//! Where the daemon picks and opens its storage backend: the one place that
//! names a concrete [`Storage`]. Everything else holds an `Arc<dyn Storage>`.

use std::sync::Arc;

use anyhow::Context;
use logpulse_engine::durability::test_faults;
use logpulse_model::Storage;

use crate::config::Config;

/// Opens the embedded engine on the configured data dir (with the test-only
/// fault injection of the durability tests when its variable is set).
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
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
