//! Configuration: defaults, then a TOML file, then `LOGPULSE_*` environment
//! variables, then flags; resolved once into an immutable [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// logpulsed: a log time-series store speaking Tinybird's Events and Pipes APIs.
///
/// Every setting can be given in the TOML file (`--config`), as an environment
/// variable `LOGPULSE_<NAME>`, or as a flag; flags win over the environment,
/// which wins over the file.
#[derive(Parser, Debug, Default)]
#[command(name = "logpulsed", version, about, long_about = None)]
pub struct Args {
    /// TOML config file (keys as the flags below, with underscores).
    #[arg(long, env = "LOGPULSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./logpulse-data].
    #[arg(long, env = "LOGPULSE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7181].
    #[arg(long, env = "LOGPULSE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin token, at least 16 characters without spaces. Prefer the
    /// environment variable to a flag (flags show in `ps`).
    /// If unset, a token is generated into <data-dir>/admin-token (mode 0600).
    #[arg(long, env = "LOGPULSE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Largest request body, in bytes [default: 10485760].
    #[arg(long, env = "LOGPULSE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest decompressed gzip body, in bytes [default: 104857600].
    #[arg(long, env = "LOGPULSE_MAX_DECOMPRESSED_BYTES")]
    pub max_decompressed_bytes: Option<usize>,
    /// Interval of the background fsync of rows ingested without wait=true [default: 1000].
    #[arg(long, env = "LOGPULSE_SYNC_INTERVAL_MS")]
    pub sync_interval_ms: Option<u64>,
    /// Largest segment file before an hour gets another one [default: 1073741824].
    #[arg(long, env = "LOGPULSE_SEGMENT_BYTES_MAX")]
    pub segment_bytes_max: Option<u64>,
    /// Page cache of the sled index [default: 16777216].
    #[arg(long, env = "LOGPULSE_INDEX_CACHE_BYTES")]
    pub index_cache_bytes: Option<u64>,
    /// Write batches queued for the writer before ingestion answers 429 [default: 64].
    #[arg(long, env = "LOGPULSE_QUEUE_BATCHES_MAX")]
    pub queue_batches_max: Option<usize>,
    /// Time allowed to receive a request body [default: 30000].
    #[arg(long, env = "LOGPULSE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Event requests handled at once; more are answered 429 [default: 32].
    #[arg(long, env = "LOGPULSE_INGEST_CONCURRENCY_MAX")]
    pub ingest_concurrency_max: Option<usize>,
    /// Time a client has to send a request's headers [default: 10000].
    #[arg(long, env = "LOGPULSE_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Simultaneous connections [default: 1024]. Past it a new connection is
    /// answered and closed: /v0/health as usual, anything else 503 with
    /// Retry-After (64 at a time; beyond that it is closed unanswered).
    #[arg(long, env = "LOGPULSE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Live tail streams (`GET /v0/tail`) open at once; more get 429 [default: 64].
    #[arg(long, env = "LOGPULSE_TAIL_CLIENTS_MAX")]
    pub tail_clients_max: Option<usize>,
    /// Rows buffered per tail stream before it is told `lagged` [default: 1024].
    #[arg(long, env = "LOGPULSE_TAIL_BUFFER_ROWS")]
    pub tail_buffer_rows: Option<usize>,
    /// Interval of the tail's keep-alive comment [default: 15000].
    #[arg(long, env = "LOGPULSE_TAIL_KEEPALIVE_MS")]
    pub tail_keepalive_ms: Option<u64>,
    /// Log filter, in tracing's EnvFilter syntax [default: info].
    #[arg(long, env = "LOGPULSE_LOG")]
    pub log: Option<String>,
    /// Syslog over TCP (RFC 6587 octet counting or newlines) [default: off].
    #[arg(long, env = "LOGPULSE_SYSLOG_TCP_LISTEN")]
    pub syslog_tcp_listen: Option<SocketAddr>,
    /// Syslog over UDP, one message per datagram [default: off].
    #[arg(long, env = "LOGPULSE_SYSLOG_UDP_LISTEN")]
    pub syslog_udp_listen: Option<SocketAddr>,
    /// Syslog over TLS (RFC 5425), with the API's certificate [default: off].
    #[arg(long, env = "LOGPULSE_SYSLOG_TLS_LISTEN")]
    pub syslog_tls_listen: Option<SocketAddr>,
    /// PEM certificate chain: serve the API over HTTPS (reloaded on SIGHUP).
    #[arg(long, env = "LOGPULSE_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of tls_cert_file.
    #[arg(long, env = "LOGPULSE_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Seconds between alert evaluations; fractions allowed, 0 turns alerting off [default: 15].
    #[arg(long, env = "LOGPULSE_ALERT_EVAL_INTERVAL_SECS")]
    pub alert_eval_interval_secs: Option<f64>,
    /// Consecutive anomalous minutes before an alert fires [default: 1].
    #[arg(long, env = "LOGPULSE_ALERT_FOR_MINUTES")]
    pub alert_for_minutes: Option<u32>,
    /// Quiet minutes after the last anomalous one before an alert resolves; fractions allowed [default: 5].
    #[arg(long, env = "LOGPULSE_ALERT_RESOLVE_MINUTES")]
    pub alert_resolve_minutes: Option<f64>,
    /// z of LogBaselineAnomaly alerts; 0 turns them off [default: 0].
    #[arg(long, env = "LOGPULSE_ALERT_BASELINE_Z")]
    pub alert_baseline_z: Option<f64>,
    /// min_count of LogBaselineAnomaly alerts [default: 10].
    #[arg(long, env = "LOGPULSE_ALERT_BASELINE_MIN_COUNT")]
    pub alert_baseline_min_count: Option<u64>,
    /// baseline_hours of LogBaselineAnomaly alerts, 1..=168 [default: 24].
    #[arg(long, env = "LOGPULSE_ALERT_BASELINE_HOURS")]
    pub alert_baseline_hours: Option<u32>,
    /// Alertmanager base URLs, comma-separated; each gets every alert.
    #[arg(long, env = "LOGPULSE_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
    /// Webhook URLs, comma-separated, that get Alertmanager webhook payloads.
    #[arg(long, env = "LOGPULSE_ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<String>,
    /// Key of the HMAC-SHA256 signature header of webhook payloads.
    #[arg(long, env = "LOGPULSE_ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,
    /// Time one delivery attempt may take [default: 5000].
    #[arg(long, env = "LOGPULSE_ALERT_DELIVERY_TIMEOUT_MS")]
    pub alert_delivery_timeout_ms: Option<u64>,
    /// Compact an hour in the background once its end and its last row are this many
    /// seconds in the past; 0 turns background compaction off [default: 900].
    #[arg(long, env = "LOGPULSE_COMPACTION_DELAY_SECS")]
    pub compaction_delay_secs: Option<u64>,
    /// Drop hours that ended more than this many days ago; 0 keeps everything [default: 0].
    #[arg(long, env = "LOGPULSE_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
    /// Drop the oldest hours while the data dir occupies more than this; 0 = no cap [default: 0].
    #[arg(long, env = "LOGPULSE_MAX_DISK_BYTES")]
    pub max_disk_bytes: Option<u64>,
    /// Below this much free space on the data dir's filesystem, appends answer 503 [default: 1073741824].
    #[arg(long, env = "LOGPULSE_MIN_FREE_DISK_BYTES")]
    pub min_free_disk_bytes: Option<u64>,
    /// Memory for decompressed blocks of compacted hours [default: 67108864].
    #[arg(long, env = "LOGPULSE_BLOCK_CACHE_BYTES")]
    pub block_cache_bytes: Option<u64>,
    /// Longest a SQL query (`/v0/sql`) may run before it is answered 408 [default: 10000].
    #[arg(long, env = "LOGPULSE_SQL_TIMEOUT_MS")]
    pub sql_timeout_ms: Option<u64>,
    /// Memory one SQL query may use for joins, sorts and aggregations [default: 268435456].
    #[arg(long, env = "LOGPULSE_SQL_MEMORY_BYTES")]
    pub sql_memory_bytes: Option<usize>,
    /// Most rows a SQL result may have; more is a 400 [default: 100000].
    #[arg(long, env = "LOGPULSE_SQL_MAX_ROWS")]
    pub sql_max_rows: Option<usize>,
    /// Threads that run SQL queries (apart from those serving ingestion) [default: 2].
    #[arg(long, env = "LOGPULSE_SQL_THREADS")]
    pub sql_threads: Option<usize>,
    /// SQL queries run at once; more are answered 429 [default: 4].
    #[arg(long, env = "LOGPULSE_SQL_CONCURRENCY_MAX")]
    pub sql_concurrency_max: Option<usize>,
    /// Storage backend: `embedded` (segment files in the data dir) or
    /// `clickhouse` (a ClickHouse server or cluster) [default: embedded].
    #[arg(long, env = "LOGPULSE_BACKEND")]
    pub backend: Option<String>,
    /// ClickHouse HTTP endpoints, comma-separated: every node of the cluster
    /// (tried in turn when one is down) [default: http://127.0.0.1:8123].
    #[arg(long, env = "LOGPULSE_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database of logpulse's tables [default: logpulse].
    #[arg(long, env = "LOGPULSE_CLICKHOUSE_DATABASE")]
    pub clickhouse_database: Option<String>,
    /// ClickHouse cluster (remote_servers) to spread rows over: local tables
    /// per node and Distributed tables over them [default: none, one server].
    #[arg(long, env = "LOGPULSE_CLICKHOUSE_CLUSTER")]
    pub clickhouse_cluster: Option<String>,
    /// ClickHouse user [default: default].
    #[arg(long, env = "LOGPULSE_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,
    /// ClickHouse password [default: empty].
    #[arg(long, env = "LOGPULSE_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,
    /// Longest one request to ClickHouse may take [default: 10000].
    #[arg(long, env = "LOGPULSE_CLICKHOUSE_TIMEOUT_MS")]
    pub clickhouse_timeout_ms: Option<u64>,
    /// How far the live tail trails the clock on ClickHouse, so that other
    /// nodes' rows are visible before it passes them [default: 1000].
    #[arg(long, env = "LOGPULSE_CLICKHOUSE_TAIL_SETTLE_MS")]
    pub clickhouse_tail_settle_ms: Option<u64>,
}

/// The TOML file: the same keys, all optional, nothing unknown.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub admin_token: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_decompressed_bytes: Option<usize>,
    pub sync_interval_ms: Option<u64>,
    pub segment_bytes_max: Option<u64>,
    pub index_cache_bytes: Option<u64>,
    pub queue_batches_max: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub max_connections: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub ingest_concurrency_max: Option<usize>,
    pub tail_clients_max: Option<usize>,
    pub tail_buffer_rows: Option<usize>,
    pub tail_keepalive_ms: Option<u64>,
    pub log: Option<String>,
    pub syslog_tcp_listen: Option<SocketAddr>,
    pub syslog_udp_listen: Option<SocketAddr>,
    pub syslog_tls_listen: Option<SocketAddr>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub alert_eval_interval_secs: Option<f64>,
    pub alert_for_minutes: Option<u32>,
    pub alert_resolve_minutes: Option<f64>,
    pub alert_baseline_z: Option<f64>,
    pub alert_baseline_min_count: Option<u64>,
    pub alert_baseline_hours: Option<u32>,
    pub alertmanager_url: Option<String>,
    pub alert_webhook_url: Option<String>,
    pub alert_webhook_secret: Option<String>,
    pub alert_delivery_timeout_ms: Option<u64>,
    pub compaction_delay_secs: Option<u64>,
    pub retention_days: Option<u64>,
    pub max_disk_bytes: Option<u64>,
    pub min_free_disk_bytes: Option<u64>,
    pub block_cache_bytes: Option<u64>,
    pub sql_timeout_ms: Option<u64>,
    pub sql_memory_bytes: Option<usize>,
    pub sql_max_rows: Option<usize>,
    pub sql_threads: Option<usize>,
    pub sql_concurrency_max: Option<usize>,
    pub backend: Option<String>,
    pub clickhouse_url: Option<String>,
    pub clickhouse_database: Option<String>,
    pub clickhouse_cluster: Option<String>,
    pub clickhouse_user: Option<String>,
    pub clickhouse_password: Option<String>,
    pub clickhouse_timeout_ms: Option<u64>,
    pub clickhouse_tail_settle_ms: Option<u64>,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub admin_token: Option<String>,
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub sync_interval_ms: u64,
    pub segment_bytes_max: u64,
    pub index_cache_bytes: u64,
    pub queue_batches_max: usize,
    pub request_timeout_ms: u64,
    pub max_connections: usize,
    pub header_read_timeout_ms: u64,
    pub ingest_concurrency_max: usize,
    pub tail_clients_max: usize,
    pub tail_buffer_rows: usize,
    pub tail_keepalive_ms: u64,
    pub log: String,
    pub syslog_tcp_listen: Option<SocketAddr>,
    pub syslog_udp_listen: Option<SocketAddr>,
    pub syslog_tls_listen: Option<SocketAddr>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub alerts: crate::alerts::AlertConfig,
    pub compaction_delay_secs: u64,
    pub retention_days: u64,
    pub max_disk_bytes: u64,
    pub min_free_disk_bytes: u64,
    pub block_cache_bytes: u64,
    pub sql: crate::sql::Limits,
    pub backend: crate::backend::Backend,
}

impl Config {
    pub fn resolve(args: Args) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let alerts = crate::alerts::AlertConfig::resolve(&args, &file)?;
        let sql = sql_limits(&args, &file);
        let backend = crate::backend::Backend::resolve(&args, &file)?;
        let tls_cert_file = args.tls_cert_file.or(file.tls_cert_file);
        let tls_key_file = args.tls_key_file.or(file.tls_key_file);
        anyhow::ensure!(
            tls_cert_file.is_some() == tls_key_file.is_some(),
            "tls_cert_file and tls_key_file go together"
        );
        Ok(Config {
            backend,
            alerts,
            tls_cert_file,
            tls_key_file,
            syslog_tls_listen: args.syslog_tls_listen.or(file.syslog_tls_listen),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./logpulse-data")),
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:7181".parse().expect("valid")),
            admin_token: args
                .admin_token
                .or(file.admin_token)
                .filter(|t| !t.is_empty()),
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(10 << 20),
            max_decompressed_bytes: args
                .max_decompressed_bytes
                .or(file.max_decompressed_bytes)
                .unwrap_or(100 << 20),
            sync_interval_ms: args
                .sync_interval_ms
                .or(file.sync_interval_ms)
                .unwrap_or(1000),
            segment_bytes_max: args
                .segment_bytes_max
                .or(file.segment_bytes_max)
                .unwrap_or(1 << 30)
                .min(u32::MAX as u64),
            index_cache_bytes: args
                .index_cache_bytes
                .or(file.index_cache_bytes)
                .unwrap_or(16 << 20),
            queue_batches_max: args
                .queue_batches_max
                .or(file.queue_batches_max)
                .unwrap_or(64)
                .max(1),
            request_timeout_ms: args
                .request_timeout_ms
                .or(file.request_timeout_ms)
                .unwrap_or(30_000),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(1024)
                .max(1),
            header_read_timeout_ms: args
                .header_read_timeout_ms
                .or(file.header_read_timeout_ms)
                .unwrap_or(10_000)
                .max(1),
            ingest_concurrency_max: args
                .ingest_concurrency_max
                .or(file.ingest_concurrency_max)
                .unwrap_or(32)
                .max(1),
            tail_clients_max: args
                .tail_clients_max
                .or(file.tail_clients_max)
                .unwrap_or(64),
            tail_buffer_rows: args
                .tail_buffer_rows
                .or(file.tail_buffer_rows)
                .unwrap_or(1024)
                .max(1),
            tail_keepalive_ms: args
                .tail_keepalive_ms
                .or(file.tail_keepalive_ms)
                .unwrap_or(15_000)
                .max(10),
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            syslog_tcp_listen: args.syslog_tcp_listen.or(file.syslog_tcp_listen),
            syslog_udp_listen: args.syslog_udp_listen.or(file.syslog_udp_listen),
            compaction_delay_secs: args
                .compaction_delay_secs
                .or(file.compaction_delay_secs)
                .unwrap_or(900),
            retention_days: args.retention_days.or(file.retention_days).unwrap_or(0),
            max_disk_bytes: args.max_disk_bytes.or(file.max_disk_bytes).unwrap_or(0),
            min_free_disk_bytes: args
                .min_free_disk_bytes
                .or(file.min_free_disk_bytes)
                .unwrap_or(1 << 30),
            block_cache_bytes: args
                .block_cache_bytes
                .or(file.block_cache_bytes)
                .unwrap_or(64 << 20),
            sql,
        })
    }

    pub fn engine(&self) -> logpulse_engine::EngineConfig {
        let mut c = logpulse_engine::EngineConfig::new(&self.data_dir);
        c.sync_interval_ms = self.sync_interval_ms;
        c.segment_bytes_max = self.segment_bytes_max;
        c.index_cache_bytes = self.index_cache_bytes;
        c.queue_batches_max = self.queue_batches_max;
        c.lifecycle.compaction_delay_secs = self.compaction_delay_secs;
        c.lifecycle.retention_days = self.retention_days;
        c.lifecycle.max_disk_bytes = self.max_disk_bytes;
        c.lifecycle.min_free_disk_bytes = self.min_free_disk_bytes;
        c.block_cache_bytes = self.block_cache_bytes;
        c
    }
}

fn sql_limits(args: &Args, file: &FileConfig) -> crate::sql::Limits {
    crate::sql::Limits {
        timeout_ms: args
            .sql_timeout_ms
            .or(file.sql_timeout_ms)
            .unwrap_or(10_000)
            .max(1),
        memory_bytes: args
            .sql_memory_bytes
            .or(file.sql_memory_bytes)
            .unwrap_or(256 << 20),
        max_rows: args.sql_max_rows.or(file.sql_max_rows).unwrap_or(100_000),
        threads: args.sql_threads.or(file.sql_threads).unwrap_or(2).max(1),
        concurrency: args
            .sql_concurrency_max
            .or(file.sql_concurrency_max)
            .unwrap_or(4)
            .max(1),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "data_dir = \"/from/file\"\nmax_body_bytes = 5\n").unwrap();
        let args = Args {
            config: Some(p.clone()),
            data_dir: Some("/from/flag".into()),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.max_body_bytes, 5);
        std::fs::write(&p, "nope = 1\n").unwrap();
        let err = Config::resolve(Args {
            config: Some(p),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
