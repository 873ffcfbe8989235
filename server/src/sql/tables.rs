//! The tables a query can name: each data source (read through
//! [`Storage::scan`] with time-range and service/severity pushdown)
//! and each pipe (its result with default parameters).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, ListBuilder, RecordBatch, RecordBatchOptions, StringArray,
    StringBuilder, TimestampSecondArray, UInt64Array, UInt8Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use logpulse_model::{
    AnomalyQuery, BaselineQuery, DataSource, LogFilter, ScanBatch, ScanFilter, LOG_COLUMNS,
};

use logpulse_model::Storage;

use super::counts;

/// Rows per scan batch (Arrow record batch).
pub const BATCH_ROWS: usize = 8192;

/// `service` and `severity` in the `system_logs` schema.
pub const KEY_COLUMNS: [usize; 2] = [2, 3];

/// Pipes queryable as tables.
pub use crate::routes::pipes::PIPES as PIPE_TABLES;

/// Rows and bytes a query read from storage, for its `statistics`.
#[derive(Debug, Default)]
pub struct ReadCounters {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Second, None)
}

fn strings(names: &[&str]) -> Vec<Field> {
    names
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, false))
        .collect()
}

/// The Arrow schema of a data source (ClickHouse types in `columns()`).
pub fn datasource_schema(ds: DataSource) -> SchemaRef {
    let fields = match ds {
        DataSource::SystemLogs => {
            let mut f = vec![Field::new("timestamp", ts(), false)];
            f.extend(strings(&LOG_COLUMNS[1..]));
            f
        }
        DataSource::Thresholds => {
            let mut f = strings(&["service", "severity"]);
            f.push(Field::new("threshold_per_minute", DataType::Float64, false));
            f.push(Field::new("active", DataType::UInt8, false));
            f.push(Field::new("updated_at", ts(), false));
            f
        }
        _ => {
            let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
            vec![
                Field::new("c__error_column", list.clone(), false),
                Field::new("c__error", list, false),
                Field::new("c__import_id", DataType::Utf8, true),
                Field::new("insertion_date", ts(), false),
                Field::new("c__raw", DataType::Utf8, false),
            ]
        }
    };
    Arc::new(Schema::new(fields))
}

fn pipe_schema(pipe: &str) -> SchemaRef {
    match pipe {
        "recent_logs" => datasource_schema(DataSource::SystemLogs),
        "error_distribution" => {
            let mut f = strings(&["service", "severity"]);
            f.push(Field::new("error_count", DataType::UInt64, false));
            f.push(Field::new("percentage", DataType::Float64, false));
            f.push(Field::new("first_seen", ts(), false));
            f.push(Field::new("last_seen", ts(), false));
            Arc::new(Schema::new(f))
        }
        "log_baseline_anomalies" => {
            let mut f = vec![Field::new("minute", ts(), false)];
            f.extend(strings(&["service", "severity"]));
            f.push(Field::new("log_count", DataType::UInt64, false));
            for c in ["baseline_mean", "baseline_stddev", "z_score"] {
                f.push(Field::new(c, DataType::Float64, false));
            }
            Arc::new(Schema::new(f))
        }
        _ => {
            let mut f = vec![Field::new("minute", ts(), false)];
            f.extend(strings(&["service", "severity"]));
            f.push(Field::new("log_count", DataType::UInt64, false));
            f.push(Field::new("threshold_per_minute", DataType::Float64, false));
            f.push(Field::new("excess_ratio", DataType::Float64, false));
            Arc::new(Schema::new(f))
        }
    }
}

/// A data source as a table.
#[derive(Debug)]
pub struct DataSourceTable {
    pub storage: Arc<dyn Storage>,
    pub ds: DataSource,
    pub counters: Arc<ReadCounters>,
}

/// The column whose time partitions a data source.
fn time_column(ds: DataSource) -> &'static str {
    match ds {
        DataSource::SystemLogs => "timestamp",
        DataSource::Thresholds => "updated_at",
        _ => "insertion_date",
    }
}

/// A time literal as whole seconds (floored) and whether it had a fraction.
fn literal_seconds(v: &ScalarValue) -> Option<(i64, bool)> {
    let split = |v: i64, per: i64| (v.div_euclid(per), v.rem_euclid(per) != 0);
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => Some((*s, false)),
        ScalarValue::TimestampMillisecond(Some(s), _) => Some(split(*s, 1_000)),
        ScalarValue::TimestampMicrosecond(Some(s), _) => Some(split(*s, 1_000_000)),
        ScalarValue::TimestampNanosecond(Some(s), _) => Some(split(*s, 1_000_000_000)),
        _ => None,
    }
}

/// What one filter conjunct tells the scan, exactly: the scan returns only
/// rows that pass it, so SQL does not apply it again.
enum Hint {
    /// Partition time in `[from, before)` (seconds).
    Time {
        from: i64,
        before: i64,
    },
    Service(String),
    Severity(String),
}

fn hint(ds: DataSource, e: &Expr) -> Option<Hint> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (col, lit, op) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, v, *op),
        (Expr::Literal(v, _), Expr::Column(c)) => (c, v, op.swap()?),
        _ => return None,
    };
    if col.name == time_column(ds) {
        // Stored times are whole seconds: `t > 5.5` is `t >= 6`, `t < 5.5`
        // is `t < 6`, `t = 5.5` matches nothing.
        let (s, frac) = literal_seconds(lit)?;
        let (from, before) = match op {
            Operator::Gt => (s.saturating_add(1), i64::MAX),
            Operator::GtEq => (s.saturating_add(frac as i64), i64::MAX),
            Operator::Lt => (i64::MIN, s.saturating_add(frac as i64)),
            Operator::LtEq => (i64::MIN, s.saturating_add(1)),
            Operator::Eq if frac => (0, 0),
            Operator::Eq => (s, s.saturating_add(1)),
            _ => return None,
        };
        return Some(Hint::Time { from, before });
    }
    if ds != DataSource::SystemLogs || op != Operator::Eq {
        return None;
    }
    let text = match lit {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.clone(),
        _ => return None,
    };
    match col.name.as_str() {
        "service" => Some(Hint::Service(text)),
        "severity" => Some(Hint::Severity(text)),
        _ => None,
    }
}

/// The scan a set of filter conjuncts asks for (each one a [`Hint`]; the
/// scan is exact, so they are not applied again above it).
fn scan_filter(ds: DataSource, filters: &[Expr]) -> ScanFilter {
    let mut f = ScanFilter::all(ds);
    let mut empty = false;
    for e in filters {
        match hint(ds, e) {
            Some(Hint::Time { from, before }) => {
                f.start = f.start.max(from.clamp(0, 1 << 32) as u64);
                f.end = f.end.min(before.clamp(0, 1 << 32) as u64);
            }
            Some(Hint::Service(s)) => {
                empty |= f.service.as_ref().is_some_and(|o| *o != s);
                f.service = Some(s);
            }
            Some(Hint::Severity(s)) => {
                empty |= f.severity.as_ref().is_some_and(|o| *o != s);
                f.severity = Some(s);
            }
            None => {}
        }
    }
    if empty || f.start >= f.end {
        // Contradictory conjuncts (`service = 'a' AND service = 'b'`).
        (f.start, f.end) = (0, 0);
    }
    f
}

#[async_trait]
impl TableProvider for DataSourceTable {
    fn schema(&self) -> SchemaRef {
        datasource_schema(self.ds)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|e| match hint(self.ds, e) {
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let full = datasource_schema(self.ds);
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..full.fields().len()).collect(),
        };
        let schema = Arc::new(full.project(&columns)?);
        if columns.is_empty() && filters.is_empty() {
            return counts::whole_table(self.storage.clone(), self.ds, schema).await;
        }
        let mut filter = scan_filter(self.ds, filters);
        filter.columns = columns.iter().fold(0u8, |m, &c| m | (1 << c.min(7)));
        if self.ds == DataSource::SystemLogs && columns.iter().all(|c| KEY_COLUMNS.contains(c)) {
            let (storage, counters) = (self.storage.clone(), self.counters.clone());
            return counts::key_rows(storage, &filter, schema, &columns, counters).await;
        }
        let parts: Vec<Arc<dyn PartitionStream>> = self
            .storage
            .scan_parts(&filter, state.config().target_partitions())
            .into_iter()
            .map(|scan| {
                Arc::new(ScanPartition {
                    scan: parking_lot::Mutex::new(Some(scan)),
                    schema: schema.clone(),
                    columns: columns.clone(),
                    counters: self.counters.clone(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        let exec = StreamingTableExec::try_new(schema, parts, None, [], false, None)?;
        Ok(Arc::new(exec))
    }
}

/// One part of a scan (see [`Storage::scan_parts`]; the parts of one scan
/// run at once), read on a blocking thread of the SQL runtime; batches reach
/// the query through a small channel, so a slow consumer slows the scan
/// down (never while the engine's lock is held).
struct ScanPartition {
    /// Taken when the partition is executed (once).
    scan: parking_lot::Mutex<Option<Box<dyn logpulse_model::RowScan>>>,
    schema: SchemaRef,
    columns: Vec<usize>,
    counters: Arc<ReadCounters>,
}

impl std::fmt::Debug for ScanPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanPartition")
            .field("columns", &self.columns)
            .finish()
    }
}

impl PartitionStream for ScanPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        let schema = self.schema.clone();
        let (columns, counters) = (self.columns.clone(), self.counters.clone());
        let scan = self.scan.lock().take();
        tokio::task::spawn_blocking(move || {
            let Some(mut scan) = scan else {
                let e = DataFusionError::Internal("a scan part executed twice".into());
                let _ = tx.blocking_send(Err(e));
                return;
            };
            let mut before = scan.stats();
            loop {
                let mut out: Option<Result<RecordBatch>> = None;
                let more = scan.next_batch(BATCH_ROWS, &mut |b| {
                    out = Some(to_batch(&schema, &columns, b));
                });
                let now = scan.stats();
                counters
                    .rows
                    .fetch_add(now.rows_read - before.rows_read, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(now.bytes_read - before.bytes_read, Ordering::Relaxed);
                before = now;
                let stop = !matches!(more, Ok(true));
                let msg = match more {
                    Err(e) => Some(Err(DataFusionError::External(Box::new(e)))),
                    Ok(_) => out,
                };
                if let Some(m) = msg {
                    if tx.blocking_send(m).is_err() {
                        return; // the query was dropped (finished, timed out)
                    }
                }
                if stop {
                    return;
                }
            }
        });
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

fn time_array(v: impl Iterator<Item = u32>) -> ArrayRef {
    Arc::new(TimestampSecondArray::from_iter_values(v.map(i64::from)))
}

fn str_array<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn list_array<'a>(v: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for items in v {
        for s in items {
            b.values().append_value(s);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

/// The projected columns of one scan batch.
fn to_batch(schema: &SchemaRef, columns: &[usize], b: ScanBatch<'_>) -> Result<RecordBatch> {
    let (rows, arrays): (usize, Vec<ArrayRef>) = match b {
        ScanBatch::Logs(r) => (
            r.len(),
            columns
                .iter()
                .map(|c| match c {
                    0 => time_array(r.iter().map(|x| x.timestamp)),
                    1 => str_array(r.iter().map(|x| x.server_id.as_ref())),
                    2 => str_array(r.iter().map(|x| x.service.as_ref())),
                    3 => str_array(r.iter().map(|x| x.severity.as_ref())),
                    4 => str_array(r.iter().map(|x| x.message.as_ref())),
                    5 => str_array(r.iter().map(|x| x.error_code.as_ref())),
                    6 => str_array(r.iter().map(|x| x.resource_id.as_ref())),
                    _ => str_array(r.iter().map(|x| x.metadata.as_ref())),
                })
                .collect(),
        ),
        ScanBatch::LogColumns(cols) => (
            cols.rows(),
            columns
                .iter()
                .map(|&c| match c {
                    0 => Ok(time_array(cols.timestamp.iter().copied())),
                    _ => match cols.strings.get(c - 1) {
                        Some(Some(v)) => Ok(str_array(v.iter().copied())),
                        _ => Err(DataFusionError::Internal(format!(
                            "the scan did not read column {c}"
                        ))),
                    },
                })
                .collect::<Result<_>>()?,
        ),
        ScanBatch::Thresholds(r) => (
            r.len(),
            columns
                .iter()
                .map(|c| -> ArrayRef {
                    match c {
                        0 => str_array(r.iter().map(|x| x.service.as_str())),
                        1 => str_array(r.iter().map(|x| x.severity.as_str())),
                        2 => Arc::new(Float64Array::from_iter_values(
                            r.iter().map(|x| x.threshold_per_minute),
                        )),
                        3 => Arc::new(UInt8Array::from_iter_values(r.iter().map(|x| x.active))),
                        _ => time_array(r.iter().map(|x| x.updated_at)),
                    }
                })
                .collect(),
        ),
        ScanBatch::Quarantine(r) => (
            r.len(),
            columns
                .iter()
                .map(|c| match c {
                    0 => list_array(r.iter().map(|x| x.error_column.as_slice())),
                    1 => list_array(r.iter().map(|x| x.error.as_slice())),
                    2 => str_array(r.iter().map(|x| x.import_id.as_str())),
                    3 => time_array(r.iter().map(|x| x.insertion_date)),
                    _ => str_array(r.iter().map(|x| x.raw.as_str())),
                })
                .collect(),
        ),
    };
    let opts = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &opts,
    )?)
}

/// A pipe as a table: its result with default parameters (limit 100; for
/// `log_anomalies` and `log_baseline_anomalies` the last 60 minutes).
#[derive(Clone, Debug)]
pub struct PipeTable {
    pub storage: Arc<dyn Storage>,
    pub pipe: &'static str,
    pub now: u32,
    pub counters: Arc<ReadCounters>,
}

impl PipeTable {
    fn batch(&self) -> Result<RecordBatch> {
        let ext = |e: logpulse_model::Error| DataFusionError::External(Box::new(e));
        let schema = pipe_schema(self.pipe);
        let (arrays, stats): (Vec<ArrayRef>, _) = match self.pipe {
            "recent_logs" => {
                let r = self
                    .storage
                    .recent_logs(&LogFilter::default(), 100)
                    .map_err(ext)?;
                let batch = ScanBatch::Logs(&r.rows);
                let all: Vec<usize> = (0..8).collect();
                return to_batch(&schema, &all, batch).inspect(|_| self.count(r.stats));
            }
            "error_distribution" => {
                let d = self
                    .storage
                    .error_distribution(&LogFilter::default(), 100)
                    .map_err(ext)?;
                let r = &d.rows;
                (
                    vec![
                        str_array(r.iter().map(|x| x.service.as_ref())),
                        str_array(r.iter().map(|x| x.severity.as_ref())),
                        Arc::new(UInt64Array::from_iter_values(r.iter().map(|x| x.count))),
                        Arc::new(Float64Array::from_iter_values(
                            r.iter().map(|x| x.percentage),
                        )),
                        time_array(r.iter().map(|x| x.first_seen)),
                        time_array(r.iter().map(|x| x.last_seen)),
                    ],
                    d.stats,
                )
            }
            "log_baseline_anomalies" => {
                let q = BaselineQuery {
                    end: self.now,
                    window_minutes: 60,
                    z: 3.0,
                    min_count: 10,
                    baseline_hours: 24,
                    service: None,
                    severity: None,
                    limit: 100,
                };
                let a = self.storage.log_baseline_anomalies(&q).map_err(ext)?;
                let r = &a.rows;
                let f64s = |f: fn(&logpulse_model::BaselineRow) -> f64| -> ArrayRef {
                    Arc::new(Float64Array::from_iter_values(r.iter().map(f)))
                };
                (
                    vec![
                        time_array(r.iter().map(|x| x.minute)),
                        str_array(r.iter().map(|x| x.service.as_ref())),
                        str_array(r.iter().map(|x| x.severity.as_ref())),
                        Arc::new(UInt64Array::from_iter_values(r.iter().map(|x| x.log_count))),
                        f64s(|x| x.baseline_mean),
                        f64s(|x| x.baseline_stddev),
                        f64s(|x| x.z_score),
                    ],
                    a.stats,
                )
            }
            _ => {
                let q = AnomalyQuery {
                    end: self.now,
                    window_minutes: 60,
                    service: None,
                    severity: None,
                    limit: 100,
                };
                let a = self.storage.log_anomalies(&q).map_err(ext)?;
                let r = &a.rows;
                (
                    vec![
                        time_array(r.iter().map(|x| x.minute)),
                        str_array(r.iter().map(|x| x.service.as_ref())),
                        str_array(r.iter().map(|x| x.severity.as_ref())),
                        Arc::new(UInt64Array::from_iter_values(r.iter().map(|x| x.log_count))),
                        Arc::new(Float64Array::from_iter_values(
                            r.iter().map(|x| x.threshold_per_minute),
                        )),
                        Arc::new(Float64Array::from_iter_values(
                            r.iter().map(|x| x.excess_ratio),
                        )),
                    ],
                    a.stats,
                )
            }
        };
        self.count(stats);
        Ok(RecordBatch::try_new(schema, arrays)?)
    }

    fn count(&self, s: logpulse_model::ReadStats) {
        self.counters.rows.fetch_add(s.rows_read, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(s.bytes_read, Ordering::Relaxed);
    }
}

#[async_trait]
impl TableProvider for PipeTable {
    fn schema(&self) -> SchemaRef {
        pipe_schema(self.pipe)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // A storage call: on the blocking pool, as every storage call.
        let table = self.clone();
        let batch = tokio::task::spawn_blocking(move || table.batch())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
        MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema(), projection.cloned())
            .map(|e| e as Arc<dyn ExecutionPlan>)
    }
}
