//! The pipes in SQL. ClickHouse filters, groups and counts; what the
//! contract defines beyond what 18.16 can say (the percentage's window sum,
//! exact `rows_before_limit_at_least`, the threshold join, the baseline's
//! statistics) is computed here from small grouped answers, with the same
//! arithmetic as the embedded engine, so both backends answer alike.

use std::collections::HashMap;
use std::sync::Arc;

use logpulse_model::query::{
    minute_rank_order, round2, AnomalyRow, BaselineRow, DistributionRow, TimeseriesRow,
};
use logpulse_model::{
    Anomalies, AnomalyQuery, BaselineAnomalies, BaselineQuery, Contains, DataSource, Distribution,
    KeyMinutes, LogFilter, LogsAfter, ReadStats, RecentLogs, ThresholdRow, Timeseries,
    TimeseriesQuery,
};
use serde::Deserialize;

use crate::error::Result;
use crate::http::Client;
use crate::rows::{LogOut, ThresholdOut, LOG_COLUMNS};
use crate::schema::{quote, Layout, Table};

/// A (service, severity).
type Key = (Arc<str>, Arc<str>);

/// What a query needs: the client and where the tables are.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub layout: &'a Layout,
}

fn add(stats: &mut ReadStats, s: ReadStats) {
    stats.rows_read += s.rows_read;
    stats.bytes_read += s.bytes_read;
}

/// `[start, end)` over `column` and the key filters, as a `WHERE` body.
pub fn conditions(
    column: &str,
    start: Option<u64>,
    end: Option<u64>,
    service: Option<&str>,
    severity: Option<&str>,
) -> String {
    let mut c: Vec<String> = Vec::new();
    if let Some(s) = start.filter(|s| *s > 0) {
        c.push(format!(
            "{column} >= toDateTime({})",
            s.min(u32::MAX as u64)
        ));
    }
    // Every DateTime is below 2^32: a larger end bounds nothing.
    if let Some(e) = end.filter(|e| *e <= u32::MAX as u64) {
        c.push(format!("{column} < toDateTime({e})"));
    }
    if let Some(s) = service {
        c.push(format!("service = {}", quote(s)));
    }
    if let Some(v) = severity {
        c.push(format!("severity = {}", quote(v)));
    }
    if c.is_empty() {
        "1".into()
    } else {
        c.join(" AND ")
    }
}

fn log_where(f: &LogFilter) -> String {
    conditions(
        "timestamp",
        f.start.map(u64::from),
        f.end.map(u64::from),
        f.service.as_deref(),
        f.severity.as_deref(),
    )
}

fn contains_condition(needle: &Contains) -> String {
    format!(
        "position(lowerUTF8(message), {}) > 0",
        quote(needle.needle())
    )
}

/// `(service, severity) IN (...)` for a non-empty key list.
fn keys_in(keys: &[Key]) -> String {
    let list: Vec<String> = keys
        .iter()
        .map(|(s, v)| format!("({}, {})", quote(s), quote(v)))
        .collect();
    format!("(service, severity) IN ({})", list.join(", "))
}

#[derive(Deserialize)]
struct Count {
    c: u64,
}

fn limit(n: usize) -> u64 {
    n as u64
}

pub fn recent_logs(
    ctx: &Ctx,
    f: &LogFilter,
    needle: Option<&Contains>,
    n: usize,
) -> Result<RecentLogs> {
    let table = ctx.layout.table(Table::Data(DataSource::SystemLogs));
    let mut w = log_where(f);
    if let Some(c) = needle {
        w = format!("{w} AND {}", contains_condition(c));
    }
    let (rows, mut stats) = ctx.client.select::<LogOut>(&format!(
        "SELECT {LOG_COLUMNS} FROM {table} WHERE {w} ORDER BY timestamp DESC, seq DESC LIMIT {}",
        limit(n)
    ))?;
    let (count, s) = ctx
        .client
        .select::<Count>(&format!("SELECT count() AS c FROM {table} WHERE {w}"))?;
    add(&mut stats, s);
    Ok(RecentLogs {
        rows: rows.into_iter().map(LogOut::into_row).collect(),
        rows_before_limit: count.first().map_or(0, |c| c.c),
        stats,
    })
}

#[derive(Deserialize)]
struct GroupOut {
    service: String,
    severity: String,
    c: u64,
    fs: u32,
    ls: u32,
}

#[derive(Deserialize)]
struct Totals {
    total: u64,
    groups: u64,
}

pub fn error_distribution(ctx: &Ctx, f: &LogFilter, n: usize) -> Result<Distribution> {
    let table = ctx.layout.table(Table::Data(DataSource::SystemLogs));
    let w = log_where(f);
    let (groups, mut stats) = ctx.client.select::<GroupOut>(&format!(
        "SELECT service, severity, count() AS c, toUInt32(min(timestamp)) AS fs, \
         toUInt32(max(timestamp)) AS ls FROM {table} WHERE {w} GROUP BY service, severity \
         ORDER BY c DESC, service, severity LIMIT {}",
        limit(n)
    ))?;
    let (totals, s) = ctx.client.select::<Totals>(&format!(
        "SELECT count() AS total, uniqExact(service, severity) AS groups FROM {table} WHERE {w}"
    ))?;
    add(&mut stats, s);
    let t = totals.first().map_or((0, 0), |t| (t.total, t.groups));
    let rows = groups
        .into_iter()
        .map(|g| DistributionRow {
            service: g.service.into(),
            severity: g.severity.into(),
            count: g.c,
            percentage: round2(100.0 * g.c as f64 / t.0.max(1) as f64),
            first_seen: g.fs,
            last_seen: g.ls,
        })
        .collect();
    Ok(Distribution {
        rows,
        rows_before_limit: t.1,
        stats,
    })
}

/// The thresholds in force: per key, the row with the greatest
/// `updated_at`, and among equal ones the one ingested last (greatest seq).
pub fn thresholds(ctx: &Ctx) -> Result<Vec<ThresholdRow>> {
    let table = ctx.layout.table(Table::Data(DataSource::Thresholds));
    let (rows, _) = ctx.client.select::<ThresholdOut>(&format!(
        "SELECT service, severity, tp AS threshold_per_minute, ac AS active, ua AS updated_at \
         FROM (SELECT service, severity, argMax(threshold_per_minute, (updated_at, seq)) AS tp, \
         argMax(active, (updated_at, seq)) AS ac, toUInt32(max(updated_at)) AS ua \
         FROM {table} GROUP BY service, severity) ORDER BY service, severity"
    ))?;
    Ok(rows.into_iter().map(ThresholdOut::into_row).collect())
}

/// Active thresholds of the keys `service`/`severity` select.
fn active_thresholds(
    ctx: &Ctx,
    service: Option<&str>,
    severity: Option<&str>,
) -> Result<Vec<(Key, f64)>> {
    Ok(thresholds(ctx)?
        .into_iter()
        .filter(|t| t.active == 1)
        .filter(|t| service.is_none_or(|s| s == t.service))
        .filter(|t| severity.is_none_or(|v| v == t.severity))
        .map(|t| {
            (
                (t.service.into(), t.severity.into()),
                t.threshold_per_minute,
            )
        })
        .collect())
}

#[derive(Deserialize)]
struct MinuteOut {
    minute: u32,
    service: String,
    severity: String,
    c: u64,
}

/// Rows per (minute, key) in `[start, end)` for the keys in `w`.
fn minute_counts(
    ctx: &Ctx,
    start: u64,
    end: u64,
    extra: &str,
    stats: &mut ReadStats,
) -> Result<Vec<MinuteOut>> {
    let table = ctx.layout.table(Table::Data(DataSource::SystemLogs));
    let w = conditions("timestamp", Some(start), Some(end), None, None);
    let (rows, s) = ctx.client.select::<MinuteOut>(&format!(
        "SELECT intDiv(toUInt32(timestamp), 60) * 60 AS minute, service, severity, count() AS c \
         FROM {table} WHERE {w} AND {extra} GROUP BY minute, service, severity"
    ))?;
    add(stats, s);
    Ok(rows)
}

pub fn log_anomalies(ctx: &Ctx, q: &AnomalyQuery) -> Result<Anomalies> {
    let thresholds: HashMap<Key, f64> =
        active_thresholds(ctx, q.service.as_deref(), q.severity.as_deref())?
            .into_iter()
            .collect();
    if thresholds.is_empty() {
        return Ok(Anomalies::default());
    }
    let keys: Vec<_> = thresholds.keys().cloned().collect();
    let end = q.end as u64;
    let start = end.saturating_sub(q.window_minutes as u64 * 60);
    let mut stats = ReadStats::default();
    let counts = minute_counts(ctx, start, end, &keys_in(&keys), &mut stats)?;
    let mut rows: Vec<AnomalyRow> = counts
        .into_iter()
        .filter_map(|m| {
            let key: Key = (m.service.into(), m.severity.into());
            let t = *thresholds.get(&key)?;
            ((m.c as f64) > t).then(|| AnomalyRow {
                minute: m.minute,
                service: key.0,
                severity: key.1,
                log_count: m.c,
                threshold_per_minute: t,
                excess_ratio: round2(m.c as f64 / t),
            })
        })
        .collect();
    rows.sort_by(minute_rank_order);
    let rows_before_limit = rows.len() as u64;
    rows.truncate(q.limit);
    Ok(Anomalies {
        rows,
        rows_before_limit,
        stats,
    })
}

#[derive(Deserialize)]
struct SumsOut {
    service: String,
    severity: String,
    s: u64,
    sq: u64,
}

pub fn log_baseline_anomalies(ctx: &Ctx, q: &BaselineQuery) -> Result<BaselineAnomalies> {
    let end = q.end as u64;
    let start = end.saturating_sub(q.window_minutes as u64 * 60);
    let mut stats = ReadStats::default();
    let floor = q.min_count.max(1);
    let keys = conditions(
        "timestamp",
        None,
        None,
        q.service.as_deref(),
        q.severity.as_deref(),
    );
    let window: Vec<MinuteOut> = minute_counts(ctx, start, end, &keys, &mut stats)?
        .into_iter()
        .filter(|m| m.c >= floor)
        .collect();
    if window.is_empty() {
        return Ok(BaselineAnomalies {
            stats,
            ..Default::default()
        });
    }
    let mut candidates: Vec<Key> = window
        .iter()
        .map(|m| (m.service.as_str().into(), m.severity.as_str().into()))
        .collect();
    candidates.sort();
    candidates.dedup();
    let table = ctx.layout.table(Table::Data(DataSource::SystemLogs));
    let bstart = start.saturating_sub(q.baseline_hours as u64 * 3600);
    let w = conditions("timestamp", Some(bstart), Some(start), None, None);
    let (sums, s) = ctx.client.select::<SumsOut>(&format!(
        "SELECT service, severity, sum(c) AS s, sum(c * c) AS sq FROM \
         (SELECT service, severity, intDiv(toUInt32(timestamp), 60) AS m, count() AS c \
          FROM {table} WHERE {w} AND {} GROUP BY service, severity, m) \
         GROUP BY service, severity",
        keys_in(&candidates)
    ))?;
    add(&mut stats, s);
    let sums: HashMap<(String, String), (u64, u128)> = sums
        .into_iter()
        .map(|r| ((r.service, r.severity), (r.s, r.sq as u128)))
        .collect();
    let mut rows: Vec<BaselineRow> = window
        .into_iter()
        .filter_map(|m| {
            let key = (m.service, m.severity);
            let sums = sums.get(&key).copied().unwrap_or((0, 0));
            BaselineRow::judged(m.minute, (key.0.into(), key.1.into()), m.c, sums, q)
        })
        .collect();
    rows.sort_by(minute_rank_order);
    let rows_before_limit = rows.len() as u64;
    rows.truncate(q.limit);
    Ok(BaselineAnomalies {
        rows,
        rows_before_limit,
        stats,
    })
}

#[derive(Deserialize)]
struct BucketOut {
    bucket: u32,
    service: String,
    severity: String,
    c: u64,
}

pub fn log_timeseries(ctx: &Ctx, q: &TimeseriesQuery) -> Result<Timeseries> {
    let table = ctx.layout.table(Table::Data(DataSource::SystemLogs));
    let w = log_where(&q.filter);
    let step = q.step_minutes.max(1) as u64 * 60;
    let (buckets, mut stats) = ctx.client.select::<BucketOut>(&format!(
        "SELECT intDiv(toUInt32(timestamp), {step}) * {step} AS bucket, service, severity, \
         count() AS c FROM {table} WHERE {w} GROUP BY bucket, service, severity \
         ORDER BY bucket, service, severity LIMIT {}",
        limit(q.limit)
    ))?;
    let (groups, s) = ctx.client.select::<Count>(&format!(
        "SELECT count() AS c FROM (SELECT intDiv(toUInt32(timestamp), {step}) AS b, service, \
         severity FROM {table} WHERE {w} GROUP BY b, service, severity)"
    ))?;
    add(&mut stats, s);
    Ok(Timeseries {
        rows: buckets
            .into_iter()
            .map(|b| TimeseriesRow {
                bucket: b.bucket,
                service: b.service.into(),
                severity: b.severity.into(),
                log_count: b.c,
            })
            .collect(),
        rows_before_limit: groups.first().map_or(0, |g| g.c),
        stats,
    })
}

pub fn threshold_minutes(ctx: &Ctx, first_minute: u32, minutes: u32) -> Result<Vec<KeyMinutes>> {
    let active = active_thresholds(ctx, None, None)?;
    let mut out: Vec<KeyMinutes> = active
        .iter()
        .map(|((s, v), t)| KeyMinutes {
            service: s.clone(),
            severity: v.clone(),
            threshold_per_minute: *t,
            counts: vec![0; minutes as usize],
        })
        .collect();
    if out.is_empty() || minutes == 0 {
        return Ok(out);
    }
    let index: HashMap<Key, usize> = active
        .into_iter()
        .enumerate()
        .map(|(i, (k, _))| (k, i))
        .collect();
    let keys: Vec<_> = index.keys().cloned().collect();
    let start = first_minute as u64 / 60 * 60;
    let end = start + minutes as u64 * 60;
    let mut stats = ReadStats::default();
    for m in minute_counts(ctx, start, end, &keys_in(&keys), &mut stats)? {
        let key: Key = (m.service.into(), m.severity.into());
        if let Some(&i) = index.get(&key) {
            let slot = (m.minute as u64 - start) / 60;
            if let Some(c) = out[i].counts.get_mut(slot as usize) {
                *c += m.c;
            }
        }
    }
    Ok(out)
}

/// Matching rows with `after < seq <= upto`, in seq order.
pub fn logs_after(
    ctx: &Ctx,
    after: u64,
    upto: u64,
    f: &LogFilter,
    needle: Option<&Contains>,
    n: usize,
) -> Result<LogsAfter> {
    if upto <= after {
        return Ok(LogsAfter {
            rows: Vec::new(),
            next_after: after,
        });
    }
    let table = ctx.layout.table(Table::Data(DataSource::SystemLogs));
    let mut w = format!("seq > {after} AND seq <= {upto} AND {}", log_where(f));
    if let Some(c) = needle {
        w = format!("{w} AND {}", contains_condition(c));
    }
    let (rows, _) = ctx.client.select::<LogOut>(&format!(
        "SELECT {LOG_COLUMNS} FROM {table} WHERE {w} ORDER BY seq LIMIT {}",
        limit(n)
    ))?;
    let full = rows.len() >= n;
    let next_after = match rows.last() {
        Some(r) if full => r.seq,
        _ => upto,
    };
    Ok(LogsAfter {
        rows: rows
            .into_iter()
            .map(|r| {
                let seq = r.seq;
                (seq, r.into_row())
            })
            .collect(),
        next_after,
    })
}
