//! [`Storage`] for [`ClickHouse`].

use std::sync::atomic::Ordering;

use logpulse_model::{
    Anomalies, AnomalyQuery, AppendReceipt, BackendMetric, BaselineAnomalies, BaselineQuery,
    Contains, DataSource, DataSourceStats, Distribution, Durability, KeyMinutes, LogFilter,
    LogsAfter, RecentLogs, Result, Row, RowScan, ScanFilter, Storage, ThresholdRow, Timeseries,
    TimeseriesQuery,
};
use serde::Deserialize;

use crate::pipes;
use crate::rows::encode;
use crate::scan::ClickHouseScan;
use crate::schema::{quote, Table};
use crate::seq::Seqs;
use crate::ClickHouse;

#[derive(Deserialize)]
struct Count {
    c: u64,
}

#[derive(Deserialize)]
struct Bytes {
    b: u64,
}

impl Storage for ClickHouse {
    /// Both durabilities insert synchronously into every shard the rows
    /// route to (`insert_distributed_sync=1`): once acknowledged, a row is
    /// stored where ClickHouse keeps it, and visible.
    fn append(&self, rows: &[Row<'_>], _durability: Durability) -> Result<AppendReceipt> {
        self.check_open()?;
        if rows.is_empty() {
            return Ok(AppendReceipt::default());
        }
        let n = rows.len() as u64;
        let (first, last) = self.seqs.allocate(n);
        let mut parts: Vec<(Table, Vec<u8>)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let t = Table::Data(row.datasource());
            let body = match parts.iter_mut().find(|(x, _)| *x == t) {
                Some((_, b)) => b,
                None => {
                    parts.push((t, Vec::with_capacity(256 * rows.len())));
                    &mut parts.last_mut().expect("just pushed").1
                }
            };
            encode(row, Seqs::nth(first, i as u64), first, body);
        }
        let result = self.writer.write(parts);
        self.seqs.done(first);
        match result {
            Ok(()) => {
                self.counters.rows_stored.fetch_add(n, Ordering::Relaxed);
                Ok(AppendReceipt {
                    rows: n,
                    first_seq: first,
                    last_seq: last,
                })
            }
            Err(e) => {
                self.counters.inserts_failed.fetch_add(1, Ordering::Relaxed);
                Err(e.into())
            }
        }
    }

    fn recent_logs(&self, filter: &LogFilter, limit: usize) -> Result<RecentLogs> {
        Ok(pipes::recent_logs(&self.ctx(), filter, None, limit)?)
    }

    fn error_distribution(&self, filter: &LogFilter, limit: usize) -> Result<Distribution> {
        Ok(pipes::error_distribution(&self.ctx(), filter, limit)?)
    }

    fn log_anomalies(&self, q: &AnomalyQuery) -> Result<Anomalies> {
        Ok(pipes::log_anomalies(&self.ctx(), q)?)
    }

    fn log_baseline_anomalies(&self, q: &BaselineQuery) -> Result<BaselineAnomalies> {
        Ok(pipes::log_baseline_anomalies(&self.ctx(), q)?)
    }

    fn threshold_minutes(&self, first_minute: u32, minutes: u32) -> Result<Vec<KeyMinutes>> {
        Ok(pipes::threshold_minutes(
            &self.ctx(),
            first_minute,
            minutes,
        )?)
    }

    fn recent_logs_containing(
        &self,
        filter: &LogFilter,
        needle: &Contains,
        limit: usize,
    ) -> Result<RecentLogs> {
        Ok(pipes::recent_logs(
            &self.ctx(),
            filter,
            Some(needle),
            limit,
        )?)
    }

    fn log_timeseries(&self, q: &TimeseriesQuery) -> Result<Timeseries> {
        Ok(pipes::log_timeseries(&self.ctx(), q)?)
    }

    fn published_seq(&self) -> u64 {
        self.seqs.published()
    }

    fn seq_now(&self) -> u64 {
        self.seqs.now()
    }

    fn logs_after(
        &self,
        after: u64,
        filter: &LogFilter,
        contains: Option<&Contains>,
        limit: usize,
    ) -> Result<LogsAfter> {
        let upto = self.seqs.published();
        Ok(pipes::logs_after(
            &self.ctx(),
            after,
            upto,
            filter,
            contains,
            limit,
        )?)
    }

    fn thresholds(&self) -> Result<Vec<ThresholdRow>> {
        Ok(pipes::thresholds(&self.ctx())?)
    }

    fn datasource_stats(&self, ds: DataSource) -> Result<DataSourceStats> {
        let t = Table::Data(ds);
        let (rows, _) = self.client.select::<Count>(&format!(
            "SELECT count() AS c FROM {}",
            self.layout.table(t)
        ))?;
        let local = self.layout.local(t);
        let name = local.rsplit('.').next().unwrap_or(&local).to_string();
        let mut bytes = 0;
        for i in 0..self.client.endpoints() {
            let b = self.client.select_on::<Bytes>(
                i,
                &format!(
                    "SELECT sum(bytes) AS b FROM system.parts WHERE active AND database = {} \
                     AND table = {}",
                    quote(&self.layout.database),
                    quote(&name)
                ),
            )?;
            bytes += b.first().map_or(0, |b| b.b);
        }
        Ok(DataSourceStats {
            rows: rows.first().map_or(0, |c| c.c),
            bytes,
        })
    }

    /// `TRUNCATE` of the local table on every endpoint.
    fn truncate(&self, ds: DataSource) -> Result<()> {
        let local = self.layout.local(Table::Data(ds));
        for i in 0..self.client.endpoints() {
            self.client
                .execute_on(i, &format!("TRUNCATE TABLE IF EXISTS {local}"), &[])?;
        }
        Ok(())
    }

    fn backend_metrics(&self) -> Vec<BackendMetric> {
        vec![
            BackendMetric {
                name: "logpulse_clickhouse_rows_stored_total",
                help: "Rows this node inserted into ClickHouse.",
                counter: true,
                value: self.counters.rows_stored.load(Ordering::Relaxed) as f64,
            },
            BackendMetric {
                name: "logpulse_clickhouse_appends_failed_total",
                help: "Appends that failed because ClickHouse did not store their insert.",
                counter: true,
                value: self.counters.inserts_failed.load(Ordering::Relaxed) as f64,
            },
            BackendMetric {
                name: "logpulse_clickhouse_node_id",
                help: "The node id in this node's seqs.",
                counter: false,
                value: self.seqs.node() as f64,
            },
            BackendMetric {
                name: "logpulse_clickhouse_endpoints",
                help: "ClickHouse HTTP endpoints configured.",
                counter: false,
                value: self.client.endpoints() as f64,
            },
        ]
    }

    fn scan(&self, filter: &ScanFilter) -> Box<dyn RowScan> {
        Box::new(ClickHouseScan::start(&self.client, &self.layout, filter))
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.writer.close();
        Ok(())
    }
}
