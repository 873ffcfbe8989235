//! The Pipes API: `GET|POST /v0/pipes/<pipe>.<json|csv|ndjson>`.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use logpulse_model::{
    AnomalyQuery, BaselineQuery, Contains, DataSource, LogFilter, TimeseriesQuery,
};

use crate::app::{blocking, read_body, AppState};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::params::Params;
use crate::render::{log_cells, Cell, Format, Table};

const DISTRIBUTION_COLUMNS: &[(&str, &str)] = &[
    ("service", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("error_count", "UInt64"),
    ("percentage", "Float64"),
    ("first_seen", "DateTime"),
    ("last_seen", "DateTime"),
];
const ANOMALY_COLUMNS: &[(&str, &str)] = &[
    ("minute", "DateTime"),
    ("service", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("log_count", "UInt64"),
    ("threshold_per_minute", "Float64"),
    ("excess_ratio", "Float64"),
];

const BASELINE_COLUMNS: &[(&str, &str)] = &[
    ("minute", "DateTime"),
    ("service", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("log_count", "UInt64"),
    ("baseline_mean", "Float64"),
    ("baseline_stddev", "Float64"),
    ("z_score", "Float64"),
];

const TIMESERIES_COLUMNS: &[(&str, &str)] = &[
    ("bucket", "DateTime"),
    ("service", "LowCardinality(String)"),
    ("severity", "LowCardinality(String)"),
    ("log_count", "UInt64"),
];

/// The pipes logpulse serves: the contract's three, the alerts'
/// `log_baseline_anomalies`, and two extensions the dashboard reads:
/// `log_timeseries` and `anomaly_thresholds` (the rows of
/// `log_anomaly_thresholds` in force).
pub const PIPES: [&str; 6] = [
    "recent_logs",
    "error_distribution",
    "log_anomalies",
    "log_baseline_anomalies",
    "log_timeseries",
    "anomaly_thresholds",
];

/// Largest POST body of a pipe request: parameters are small (and
/// `max_body_bytes`, if lower, applies too).
pub const BODY_BYTES_MAX: usize = 64 << 10;

/// Largest POST body of a pipe request without a token in its headers or
/// query string (the body may carry `token=`).
pub const TOKEN_BODY_BYTES_MAX: usize = 4 << 10;

/// Pipe request bodies read and parsed at once; more get 429.
pub const BODIES_AT_ONCE: usize = 16;

pub async fn get(
    State(app): State<AppState>,
    Path(file): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::from_query(q.as_deref());
    let principal = app.auth.authenticate(&headers, params.get("token"))?;
    if !file.contains('.') {
        // `GET /v0/pipes/<name>` describes the pipe (the `tb` CLI asks).
        return super::catalog::show(&app, &file, &principal).map(IntoResponse::into_response);
    }
    blocking(move || run(app, &file, params, principal)).await
}

pub async fn post(
    State(app): State<AppState>,
    Path(file): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut params = Params::from_query(q.as_deref());
    // The caller is known from the headers or the query string before any
    // body is read. Without a token there, only a small form body may carry
    // one (`token=...`): anything larger is a 401, unread.
    let known = match app.auth.authenticate(&headers, params.get("token")) {
        Ok(p) => Some(p),
        Err(ApiError::Unauthorized(_)) => None,
        Err(e) => return Err(e),
    };
    let Ok(slot) = app.pipe_body_slots.try_acquire() else {
        return Err(ApiError::RateLimited(
            "too many pipe requests with a body in flight; retry later".into(),
        ));
    };
    let timeout = Duration::from_millis(app.config.request_timeout_ms);
    let max = if known.is_some() {
        BODY_BYTES_MAX
    } else {
        TOKEN_BODY_BYTES_MAX
    }
    .min(app.config.max_body_bytes);
    let body = match read_body(body, &headers, max, timeout).await {
        Err(ApiError::TooLarge(_)) if known.is_none() => {
            return Err(ApiError::Unauthorized(
                "missing token: send Authorization: Bearer <token> or ?token=".into(),
            ))
        }
        other => other?,
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let trimmed = body.trim_ascii_start();
    if ct.contains("json") || trimmed.starts_with(b"{") {
        params.add_json(&body)?;
    } else {
        params.add_form(&body);
    }
    drop(body);
    drop(slot);
    let principal = match known {
        Some(p) => p,
        None => app.auth.authenticate(&headers, params.get("token"))?,
    };
    blocking(move || run(app, &file, params, principal)).await
}

fn run(
    app: AppState,
    file: &str,
    params: Params,
    principal: Principal,
) -> Result<Response, ApiError> {
    let (name, ext) = file.rsplit_once('.').unwrap_or((file, "json"));
    if !PIPES.contains(&name) {
        return Err(ApiError::NotFound(format!("pipe {name:?} not found")));
    }
    principal.require("PIPES:READ", name)?;
    let format = Format::from_ext(ext).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unsupported format {ext:?}: use .json, .csv or .ndjson"
        ))
    })?;
    let t0 = Instant::now();
    let storage = app.storage.clone();
    // Runs on the blocking pool (see `app::blocking`), like every storage call.
    match name {
        "recent_logs" => {
            let (filter, limit) = log_params(&params)?;
            let r = match params.string("contains") {
                Some(c) => storage.recent_logs_containing(&filter, &Contains::new(&c), limit)?,
                None => storage.recent_logs(&filter, limit)?,
            };
            let rows = r.rows.iter().map(log_cells).collect();
            let t = table(
                DataSource::SystemLogs.columns(),
                rows,
                r.rows_before_limit,
                t0,
                r.stats,
            );
            Ok(t.render(format))
        }
        "log_timeseries" => {
            let (filter, limit) = log_params(&params)?;
            let q = TimeseriesQuery {
                filter,
                step_minutes: params.int("step_minutes", 1, 1, 1440)? as u32,
                limit,
            };
            let ts = storage.log_timeseries(&q)?;
            let rows = ts
                .rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::DateTime(r.bucket),
                        Cell::Str(&r.service),
                        Cell::Str(&r.severity),
                        Cell::UInt(r.log_count),
                    ]
                })
                .collect();
            Ok(table(TIMESERIES_COLUMNS, rows, ts.rows_before_limit, t0, ts.stats).render(format))
        }
        "error_distribution" => {
            let (filter, limit) = log_params(&params)?;
            let d = storage.error_distribution(&filter, limit)?;
            let rows = d
                .rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::Str(&r.service),
                        Cell::Str(&r.severity),
                        Cell::UInt(r.count),
                        Cell::Float(r.percentage),
                        Cell::DateTime(r.first_seen),
                        Cell::DateTime(r.last_seen),
                    ]
                })
                .collect();
            Ok(table(DISTRIBUTION_COLUMNS, rows, d.rows_before_limit, t0, d.stats).render(format))
        }
        "log_baseline_anomalies" => {
            let q = baseline_params(&params)?;
            let a = storage.log_baseline_anomalies(&q)?;
            let rows = a
                .rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::DateTime(r.minute),
                        Cell::Str(&r.service),
                        Cell::Str(&r.severity),
                        Cell::UInt(r.log_count),
                        Cell::Float(r.baseline_mean),
                        Cell::Float(r.baseline_stddev),
                        Cell::Float(r.z_score),
                    ]
                })
                .collect();
            Ok(table(BASELINE_COLUMNS, rows, a.rows_before_limit, t0, a.stats).render(format))
        }
        "anomaly_thresholds" => {
            let (f, limit) = log_params(&params)?;
            let all = storage.thresholds()?;
            let rows: Vec<_> = all
                .iter()
                .filter(|t| f.service.as_deref().is_none_or(|s| t.service == s))
                .filter(|t| f.severity.as_deref().is_none_or(|v| t.severity == v))
                .collect();
            let before = rows.len() as u64;
            let cells = rows
                .into_iter()
                .take(limit)
                .map(|t| {
                    vec![
                        Cell::Str(&t.service),
                        Cell::Str(&t.severity),
                        Cell::Float(t.threshold_per_minute),
                        Cell::UInt(t.active as u64),
                        Cell::DateTime(t.updated_at),
                    ]
                })
                .collect();
            let stats = Default::default();
            Ok(table(DataSource::Thresholds.columns(), cells, before, t0, stats).render(format))
        }
        _ => {
            let q = anomaly_params(&params)?;
            let a = storage.log_anomalies(&q)?;
            let rows = a
                .rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::DateTime(r.minute),
                        Cell::Str(&r.service),
                        Cell::Str(&r.severity),
                        Cell::UInt(r.log_count),
                        Cell::Float(r.threshold_per_minute),
                        Cell::Float(r.excess_ratio),
                    ]
                })
                .collect();
            Ok(table(ANOMALY_COLUMNS, rows, a.rows_before_limit, t0, a.stats).render(format))
        }
    }
}

fn table<'a>(
    columns: &'static [(&'static str, &'static str)],
    rows: Vec<Vec<Cell<'a>>>,
    before: u64,
    t0: Instant,
    s: logpulse_model::query::ReadStats,
) -> Table<'a> {
    Table {
        columns,
        rows,
        rows_before_limit: before,
        elapsed_secs: t0.elapsed().as_secs_f64(),
        rows_read: s.rows_read,
        bytes_read: s.bytes_read,
    }
}

fn upper(s: Option<String>) -> Option<String> {
    s.map(|v| v.to_uppercase())
}

/// `start_time`, `end_time`, `service`, `severity`, `limit`.
fn log_params(p: &Params) -> Result<(LogFilter, usize), ApiError> {
    let filter = LogFilter {
        start: p.datetime("start_time")?,
        end: p.datetime("end_time")?,
        service: p.string("service"),
        severity: upper(p.string("severity")),
    };
    let limit = p.int("limit", 100, 1, 10_000)? as usize;
    Ok((filter, limit))
}

/// `time_window_minutes`, `end_time`, `service`, `severity`, `limit`.
fn anomaly_params(p: &Params) -> Result<AnomalyQuery, ApiError> {
    Ok(AnomalyQuery {
        window_minutes: p.int("time_window_minutes", 60, 1, 10_080)? as u32,
        end: p
            .datetime("end_time")?
            .unwrap_or_else(logpulse_model::time::now),
        service: p.string("service"),
        severity: upper(p.string("severity")),
        limit: p.int("limit", 100, 1, 10_000)? as usize,
    })
}

/// The parameters of `log_baseline_anomalies`.
fn baseline_params(p: &Params) -> Result<BaselineQuery, ApiError> {
    let a = anomaly_params(p)?;
    Ok(BaselineQuery {
        end: a.end,
        window_minutes: a.window_minutes,
        z: p.float("z", 3.0, 0.0, 1e6)?,
        min_count: p.int("min_count", 10, 0, i64::MAX)? as u64,
        baseline_hours: p.int("baseline_hours", 24, 1, 168)? as u32,
        service: a.service,
        severity: a.severity,
        limit: a.limit,
    })
}
