//! Replaying a data dir's own `system_logs` and `log_anomaly_thresholds`
//! rows into another data dir, in their original ingestion (seq) order, for
//! rebuilding or migrating. Rows were validated when first ingested, so they
//! are appended as they are; quarantines are not copied.

use std::time::Instant;

use anyhow::{anyhow, Result};
use crossbeam_channel::bounded;
use logpulse_engine::{Durability, Engine, Error, Row};

use super::{Progress, Summary};

/// Copies the rows of `from` into `to` in batches of `batch_rows`.
pub fn replay_data_dir(
    from: &Engine,
    to: &Engine,
    batch_rows: usize,
    progress: &Progress,
) -> Result<Summary> {
    let t0 = Instant::now();
    let batch_rows = batch_rows.max(1);
    let mut thresholds = from.scan_thresholds()?.into_iter().peekable();
    let (tx, rx) = bounded::<Vec<Row<'static>>>(4);
    let mut summary = Summary::default();
    let appended = std::thread::scope(|s| -> Result<u64> {
        let appender = s.spawn(move || -> Result<u64> {
            let mut rows = 0;
            for batch in rx {
                append(to, &batch)?;
                rows += batch.len() as u64;
                progress.rows(rows);
            }
            Ok(rows)
        });
        let mut batch = Vec::with_capacity(batch_rows);
        let send = |batch: &mut Vec<Row<'static>>| -> bool {
            let full = std::mem::replace(batch, Vec::with_capacity(batch_rows));
            tx.send(full).is_ok()
        };
        let mut stopped = false;
        from.scan_logs(|seq, row| {
            if stopped {
                return;
            }
            while let Some((_, t)) = thresholds.next_if(|(ts, _)| *ts < seq) {
                batch.push(Row::Threshold(t));
            }
            batch.push(Row::Log(row.into_owned()));
            if batch.len() >= batch_rows {
                stopped = !send(&mut batch);
            }
        })?;
        batch.extend(thresholds.by_ref().map(|(_, t)| Row::Threshold(t)));
        if !stopped && !batch.is_empty() {
            send(&mut batch);
        }
        drop(tx);
        appender
            .join()
            .map_err(|_| anyhow!("appender thread panicked"))?
    })?;
    summary.stored = appended;
    summary.elapsed = t0.elapsed();
    Ok(summary)
}

fn append(engine: &Engine, rows: &[Row<'_>]) -> Result<()> {
    loop {
        match engine.append(rows, Durability::Visible) {
            Ok(_) => return Ok(()),
            Err(Error::Busy) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(e) => return Err(e.into()),
        }
    }
}
