//! The Query API's engine: ClickHouse-dialect SQL ([`clickhouse`]) planned
//! and run by Apache DataFusion over the data sources and pipes
//! ([`tables`]), with ClickHouse functions as UDFs ([`functions`]).
//!
//! Queries run on a runtime of their own with a bounded number of threads
//! and of queries at once, so that SQL never takes the threads that serve
//! ingestion; each query has a time limit, a memory pool and a row limit.
//! The tables a query reads are taken from its logical plan (subqueries
//! included) and checked against the caller's scopes before it runs.

pub mod clickhouse;
mod counts;
pub mod functions;
pub mod json;
pub mod output;
pub mod tables;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use logpulse_model::DataSource;

use crate::auth::Principal;
use crate::error::ApiError;
use clickhouse::OutFormat;
use logpulse_model::Storage;
use tables::{DataSourceTable, PipeTable, ReadCounters, PIPE_TABLES};

/// Errors of the SQL layer.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query is not understood or not allowed: 400.
    #[error("{0}")]
    Bad(String),
    /// A table the token may not read: 403.
    #[error("{0}")]
    Forbidden(String),
    /// Over `sql_timeout_ms`: 408.
    #[error("query exceeded the time limit of {0} ms (sql_timeout_ms)")]
    Timeout(u64),
    /// Over the memory limit or the result row limit: 400.
    #[error("{0}")]
    Limit(String),
    /// As many queries as allowed are running: 429.
    #[error("too many SQL queries running at once; retry later")]
    Busy,
    #[error("{0}")]
    Internal(String),
}

impl From<SqlError> for ApiError {
    fn from(e: SqlError) -> ApiError {
        match e {
            SqlError::Bad(m) | SqlError::Limit(m) => ApiError::BadRequest(m),
            SqlError::Forbidden(m) => ApiError::Forbidden(m),
            SqlError::Timeout(_) => ApiError::Timeout(e.to_string()),
            SqlError::Busy => ApiError::RateLimited(e.to_string()),
            SqlError::Internal(m) => ApiError::Internal(m),
        }
    }
}

fn df_error(e: DataFusionError, memory: usize) -> SqlError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(m) => SqlError::Limit(format!(
            "query needs more than the {memory}-byte memory limit (sql_memory_bytes): {m}"
        )),
        DataFusionError::External(inner) => SqlError::Internal(format!("storage: {inner}")),
        root => SqlError::Bad(root.to_string()),
    }
}

/// Limits of the Query API.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub timeout_ms: u64,
    pub memory_bytes: usize,
    pub max_rows: usize,
    pub threads: usize,
    pub concurrency: usize,
}

/// A query's result.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    pub format: Option<OutFormat>,
    pub rows_read: u64,
    pub bytes_read: u64,
    pub elapsed: Duration,
}

pub struct SqlEngine {
    storage: Arc<dyn Storage>,
    limits: Limits,
    runtime: Option<tokio::runtime::Runtime>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Drop for SqlEngine {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The SQL threads' nice value.
const SQL_NICE: i32 = 10;

impl SqlEngine {
    pub fn new(storage: Arc<dyn Storage>, limits: Limits) -> std::io::Result<SqlEngine> {
        let threads = limits.threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(threads * limits.concurrency.max(1) * 2)
            .thread_name("lp-sql")
            // Below ingestion (nice 10; Linux applies it per thread), above
            // background compaction (19): a query running on both cores
            // never holds the HTTP threads and the writer off.
            .on_thread_start(|| {
                let _ = rustix::process::setpriority_process(None, SQL_NICE);
            })
            .enable_time()
            .build()?;
        Ok(SqlEngine {
            storage,
            limits,
            runtime: Some(runtime),
            slots: Arc::new(tokio::sync::Semaphore::new(limits.concurrency.max(1))),
        })
    }

    /// Runs one query for `who`; answered within the time limit.
    pub async fn query(&self, sql: String, who: Principal) -> Result<Answer, SqlError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| SqlError::Busy)?;
        let limits = self.limits;
        let storage = self.storage.clone();
        let rt = self.runtime.as_ref().expect("runtime lives until drop");
        let budget = Duration::from_millis(limits.timeout_ms);
        let task = rt.spawn(async move {
            let _permit = permit;
            tokio::time::timeout(budget, run(storage, limits, sql, who)).await
        });
        let abort = task.abort_handle();
        // The query's own timeout ends it where it yields; this one answers
        // the client even if it does not.
        match tokio::time::timeout(budget + Duration::from_millis(200), task).await {
            Ok(Ok(Ok(r))) => r,
            Ok(Ok(Err(_))) | Err(_) => {
                abort.abort();
                Err(SqlError::Timeout(limits.timeout_ms))
            }
            Ok(Err(e)) => Err(SqlError::Internal(format!("query task failed: {e}"))),
        }
    }
}

fn context(
    storage: &Arc<dyn Storage>,
    limits: Limits,
    counters: &Arc<ReadCounters>,
    now: i64,
) -> Result<SessionContext, SqlError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(limits.threads.max(1))
        .with_information_schema(false);
    let opts = config.options_mut();
    opts.sql_parser.map_string_types_to_utf8view = false;
    opts.execution.time_zone = None;
    // No spilling to disk: a query over its memory pool fails (400).
    let no_disk = DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .with_disk_manager_builder(no_disk)
        .build_arc()
        .map_err(|e| SqlError::Internal(e.to_string()))?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for f in functions::all() {
        ctx.register_udf(f);
    }
    for ds in DataSource::ALL {
        let t = DataSourceTable {
            storage: storage.clone(),
            ds,
            counters: counters.clone(),
        };
        ctx.register_table(ds.name(), Arc::new(t))
            .map_err(|e| SqlError::Internal(e.to_string()))?;
    }
    for pipe in PIPE_TABLES {
        let t = PipeTable {
            storage: storage.clone(),
            pipe,
            now: now.clamp(0, u32::MAX as i64) as u32,
            counters: counters.clone(),
        };
        ctx.register_table(pipe, Arc::new(t))
            .map_err(|e| SqlError::Internal(e.to_string()))?;
    }
    Ok(ctx)
}

/// The tables a plan reads, subqueries and CTEs included.
pub fn tables_read(plan: &LogicalPlan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(s) = p {
            let name = s.table_name.table().to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// The scope a table needs: `DATASOURCES:READ:<ds>` or `PIPES:READ:<pipe>`.
fn check_scopes(who: &Principal, tables: &[String]) -> Result<(), SqlError> {
    for t in tables {
        let kind = if PIPE_TABLES.contains(&t.as_str()) {
            "PIPES:READ"
        } else {
            "DATASOURCES:READ"
        };
        if !who.has(kind, t) {
            return Err(SqlError::Forbidden(format!(
                "token lacks the {kind}:{t} scope needed to read {t}"
            )));
        }
    }
    Ok(())
}

async fn run(
    storage: Arc<dyn Storage>,
    limits: Limits,
    sql: String,
    who: Principal,
) -> Result<Answer, SqlError> {
    let t0 = Instant::now();
    let now = logpulse_model::time::now() as i64;
    let parsed = clickhouse::parse(&sql, now)?;
    let counters = Arc::new(ReadCounters::default());
    let ctx = context(&storage, limits, &counters, now)?;
    let err = |e| df_error(e, limits.memory_bytes);
    let stmt = datafusion::sql::parser::Statement::Statement(Box::new(parsed.statement));
    let plan = ctx.state().statement_to_plan(stmt).await.map_err(err)?;
    if !matches!(
        plan,
        LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Values(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::RecursiveQuery(_)
            | LogicalPlan::Unnest(_)
            | LogicalPlan::Repartition(_)
    ) {
        return Err(SqlError::Bad("only SELECT queries are allowed".into()));
    }
    check_scopes(&who, &tables_read(&plan))?;
    let df = ctx.execute_logical_plan(plan).await.map_err(err)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(err)?;
    let (mut batches, mut rows) = (Vec::new(), 0usize);
    while let Some(b) = stream.next().await {
        let b = b.map_err(err)?;
        rows += b.num_rows();
        if rows > limits.max_rows {
            return Err(SqlError::Limit(format!(
                "the result has more than {} rows (sql_max_rows); add a LIMIT or aggregate",
                limits.max_rows
            )));
        }
        batches.push(b);
    }
    Ok(Answer {
        schema,
        batches,
        rows,
        format: parsed.format,
        rows_read: counters.rows.load(Ordering::Relaxed),
        bytes_read: counters.bytes.load(Ordering::Relaxed),
        elapsed: t0.elapsed(),
    })
}
