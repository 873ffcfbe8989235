//! Table scans answered from counts instead of rows: `count()` of a whole
//! table from the storage's row count, and a `system_logs` scan that needs
//! only `service` and `severity` from the per-(service, severity) counts of
//! its time range (`Storage::error_distribution`, which the embedded engine
//! answers from its per-minute counts). The rows come back as rows (each
//! key repeated as many times as it has rows, in batches made as the query
//! pulls them), so every aggregate, filter and join above the scan is
//! DataFusion's own and the answer is the one a full scan would give.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringBuilder};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use logpulse_model::{DataSource, LogFilter, ScanFilter, Storage};

use super::tables::{ReadCounters, BATCH_ROWS, KEY_COLUMNS};

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Runs a storage call on the blocking pool, as every storage call.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> logpulse_model::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(external)?
        .map_err(external)
}

/// Batches without columns whose row counts add up to `rows`.
fn empty_rows(schema: &SchemaRef, rows: u64) -> Result<Vec<RecordBatch>> {
    let mut left = rows as usize;
    let mut batches = Vec::with_capacity(left / BATCH_ROWS + 1);
    while left > 0 {
        let n = left.min(BATCH_ROWS);
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        batches.push(RecordBatch::try_new_with_options(
            schema.clone(),
            vec![],
            &options,
        )?);
        left -= n;
    }
    Ok(batches)
}

/// A scan that needs no column and no filter (`count()` of a whole table):
/// the table's row count from the storage's statistics, no row read.
pub async fn whole_table(
    storage: Arc<dyn Storage>,
    ds: DataSource,
    schema: SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    let stats = blocking(move || storage.datasource_stats(ds)).await?;
    let batches = empty_rows(&schema, stats.rows)?;
    MemorySourceConfig::try_new_exec(&[batches], schema, None).map(|e| e as Arc<dyn ExecutionPlan>)
}

/// A `system_logs` scan of `filter` that needs only `service` and/or
/// `severity` (`columns`, as indices of the table's schema).
pub async fn key_rows(
    storage: Arc<dyn Storage>,
    filter: &ScanFilter,
    schema: SchemaRef,
    columns: &[usize],
    counters: Arc<ReadCounters>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let keys = if filter.start >= filter.end {
        Vec::new()
    } else {
        let lf = LogFilter {
            start: (filter.start > 0).then_some(filter.start as u32),
            end: (filter.end < 1 << 32).then_some(filter.end as u32),
            service: filter.service.clone(),
            severity: filter.severity.clone(),
        };
        let d = blocking(move || storage.error_distribution(&lf, usize::MAX)).await?;
        counters
            .rows
            .fetch_add(d.stats.rows_read, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(d.stats.bytes_read, Ordering::Relaxed);
        d.rows
            .into_iter()
            .map(|r| (r.service, r.severity, r.count))
            .collect()
    };
    let part = KeyRows {
        keys: Arc::new(keys),
        columns: columns.to_vec(),
        schema: schema.clone(),
    };
    let exec = StreamingTableExec::try_new(schema, vec![Arc::new(part)], None, [], false, None)?;
    Ok(Arc::new(exec))
}

type KeyCount = (Arc<str>, Arc<str>, u64);

/// Each key's (service, severity) repeated as many times as it has rows.
#[derive(Debug)]
struct KeyRows {
    keys: Arc<Vec<KeyCount>>,
    columns: Vec<usize>,
    schema: SchemaRef,
}

impl PartitionStream for KeyRows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = Batches {
            keys: self.keys.clone(),
            columns: self.columns.clone(),
            schema: self.schema.clone(),
            key: 0,
            done_in_key: 0,
        };
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches),
        ))
    }
}

/// The batches of [`KeyRows`], made one at a time as the query pulls them.
struct Batches {
    keys: Arc<Vec<KeyCount>>,
    columns: Vec<usize>,
    schema: SchemaRef,
    /// The key being emitted and how many of its rows already were.
    key: usize,
    done_in_key: u64,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let mut builders: Vec<StringBuilder> =
            self.columns.iter().map(|_| StringBuilder::new()).collect();
        let mut n = 0usize;
        while n < BATCH_ROWS && self.key < self.keys.len() {
            let (service, severity, count) = &self.keys[self.key];
            let take = (count - self.done_in_key).min((BATCH_ROWS - n) as u64);
            for (b, c) in builders.iter_mut().zip(&self.columns) {
                let v: &str = if *c == KEY_COLUMNS[0] {
                    service
                } else {
                    severity
                };
                for _ in 0..take {
                    b.append_value(v);
                }
            }
            n += take as usize;
            self.done_in_key += take;
            if self.done_in_key == *count {
                (self.key, self.done_in_key) = (self.key + 1, 0);
            }
        }
        if n == 0 {
            return None;
        }
        let arrays: Vec<ArrayRef> = builders
            .into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        Some(
            RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
                .map_err(Into::into),
        )
    }
}
