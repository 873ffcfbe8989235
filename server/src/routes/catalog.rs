//! What the `tb` CLI asks about the workspace: `GET /v0/pipes`,
//! `GET /v0/pipes/<name>` (no format extension) and
//! `GET /v0/user/workspaces/`.

use axum::extract::State;
use axum::response::Json;
use serde_json::{json, Value};

use crate::app::{AppState, Caller};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::pipes::PIPES;

const LOG_PARAMS: &[(&str, &str, &str)] = &[
    ("start_time", "DateTime", "rows at or after this time"),
    ("end_time", "DateTime", "rows before this time"),
    ("severity", "String", "only this severity (upper-cased)"),
    ("service", "String", "only this service"),
    (
        "limit",
        "Int32",
        "at most this many rows (1..10000, default 100)",
    ),
];

const TIMESERIES_PARAMS: &[(&str, &str, &str)] = &[
    ("start_time", "DateTime", "rows at or after this time"),
    ("end_time", "DateTime", "rows before this time"),
    ("step_minutes", "Int32", "bucket width (1..1440, default 1)"),
    ("severity", "String", "only this severity (upper-cased)"),
    ("service", "String", "only this service"),
    (
        "limit",
        "Int32",
        "at most this many rows (1..10000, default 100)",
    ),
];

const THRESHOLD_PARAMS: &[(&str, &str, &str)] = &[
    ("severity", "String", "only this severity (upper-cased)"),
    ("service", "String", "only this service"),
    (
        "limit",
        "Int32",
        "at most this many rows (1..10000, default 100)",
    ),
];

const ANOMALY_PARAMS: &[(&str, &str, &str)] = &[
    (
        "time_window_minutes",
        "Int32",
        "minutes before end_time (1..10080, default 60)",
    ),
    ("end_time", "DateTime", "end of the window (default now)"),
    ("severity", "String", "only this severity (upper-cased)"),
    ("service", "String", "only this service"),
    (
        "limit",
        "Int32",
        "at most this many rows (1..10000, default 100)",
    ),
];

const BASELINE_PARAMS: &[(&str, &str, &str)] = &[
    (
        "time_window_minutes",
        "Int32",
        "minutes before end_time (1..10080, default 60)",
    ),
    ("end_time", "DateTime", "end of the window (default now)"),
    (
        "z",
        "Float64",
        "standard deviations above the mean (default 3)",
    ),
    (
        "min_count",
        "UInt64",
        "fewest rows of an anomalous minute (default 10)",
    ),
    (
        "baseline_hours",
        "Int32",
        "hours before the window (1..168, default 24)",
    ),
    ("severity", "String", "only this severity (upper-cased)"),
    ("service", "String", "only this service"),
    (
        "limit",
        "Int32",
        "at most this many rows (1..10000, default 100)",
    ),
];

/// The documented SQL of each pipe (docs: API.md, "Pipes API"; README for
/// `log_baseline_anomalies` and the dashboard's extensions).
fn sql_of(pipe: &str) -> &'static str {
    match pipe {
        "recent_logs" => "SELECT timestamp, server_id, service, severity, message, error_code, resource_id, metadata\nFROM system_logs\nWHERE timestamp >= {{start_time}} AND timestamp < {{end_time}}\n  AND severity = upper({{severity}}) AND service = {{service}}\nORDER BY timestamp DESC, seq DESC\nLIMIT {{limit}}",
        "error_distribution" => "SELECT service, severity, count() AS error_count,\n       round(100 * count() / sum(count()) OVER (), 2) AS percentage,\n       min(timestamp) AS first_seen, max(timestamp) AS last_seen\nFROM system_logs\nWHERE timestamp >= {{start_time}} AND timestamp < {{end_time}}\n  AND severity = upper({{severity}}) AND service = {{service}}\nGROUP BY service, severity\nORDER BY error_count DESC, service ASC, severity ASC\nLIMIT {{limit}}",
        "log_baseline_anomalies" => BASELINE_SQL,
        "log_timeseries" => "SELECT toStartOfInterval(timestamp, INTERVAL {{step_minutes}} MINUTE) AS bucket,\n       service, severity, count() AS log_count\nFROM system_logs\nWHERE timestamp >= {{start_time}} AND timestamp < {{end_time}}\n  AND severity = upper({{severity}}) AND service = {{service}}\nGROUP BY bucket, service, severity\nORDER BY bucket, service, severity\nLIMIT {{limit}}",
        "anomaly_thresholds" => "SELECT service, severity, threshold_per_minute, active, updated_at\nFROM log_anomaly_thresholds_in_force\nWHERE severity = upper({{severity}}) AND service = {{service}}\nORDER BY service, severity\nLIMIT {{limit}}",
        _ => "WITH thresholds AS (SELECT service, severity, threshold_per_minute FROM log_anomaly_thresholds_in_force WHERE active = 1)\nSELECT toStartOfMinute(l.timestamp) AS minute, l.service, l.severity, count() AS log_count,\n       t.threshold_per_minute, round(count() / t.threshold_per_minute, 2) AS excess_ratio\nFROM system_logs AS l INNER JOIN thresholds AS t USING (service, severity)\nWHERE l.timestamp >= {{end_time}} - INTERVAL {{time_window_minutes}} MINUTE AND l.timestamp < {{end_time}}\n  AND l.service = {{service}} AND l.severity = upper({{severity}})\nGROUP BY minute, l.service, l.severity, t.threshold_per_minute\nHAVING log_count > t.threshold_per_minute\nORDER BY minute DESC, log_count DESC, service ASC, severity ASC\nLIMIT {{limit}}",
    }
}

const BASELINE_SQL: &str = "WITH window AS (\n  SELECT toStartOfMinute(timestamp) AS minute, service, severity, count() AS log_count\n  FROM system_logs\n  WHERE timestamp >= {{end_time}} - INTERVAL {{time_window_minutes}} MINUTE\n    AND timestamp < {{end_time}}\n    AND service = {{service}} AND severity = upper({{severity}})\n  GROUP BY minute, service, severity),\nper_minute AS (\n  SELECT service, severity, toStartOfMinute(timestamp) AS m, count() AS c\n  FROM system_logs\n  WHERE timestamp >= {{end_time}} - INTERVAL {{time_window_minutes}} MINUTE\n                                  - INTERVAL {{baseline_hours}} HOUR\n    AND timestamp < {{end_time}} - INTERVAL {{time_window_minutes}} MINUTE\n  GROUP BY service, severity, m),\nbaseline AS (\n  SELECT service, severity,\n         sum(c) / ({{baseline_hours}} * 60) AS mean,\n         sqrt(greatest(sum(c * c) / ({{baseline_hours}} * 60) - mean * mean, 0)) AS stddev\n  FROM per_minute GROUP BY service, severity)\nSELECT w.minute, w.service, w.severity, w.log_count,\n       coalesce(b.mean, 0) AS baseline_mean,\n       coalesce(b.stddev, 0) AS baseline_stddev,\n       round((w.log_count - baseline_mean) / baseline_stddev, 2) AS z_score\nFROM window AS w LEFT JOIN baseline AS b USING (service, severity)\nWHERE w.log_count >= {{min_count}}\n  AND w.log_count > baseline_mean + {{z}} * baseline_stddev\nORDER BY minute DESC, log_count DESC, service ASC, severity ASC\nLIMIT {{limit}}";

fn describe(app: &AppState, pipe: &str) -> Value {
    let params = match pipe {
        "log_anomalies" => ANOMALY_PARAMS,
        "log_baseline_anomalies" => BASELINE_PARAMS,
        "log_timeseries" => TIMESERIES_PARAMS,
        "anomaly_thresholds" => THRESHOLD_PARAMS,
        _ => LOG_PARAMS,
    };
    let source = match pipe {
        "anomaly_thresholds" => "log_anomaly_thresholds",
        _ => "system_logs",
    };
    let params: Vec<Value> = params
        .iter()
        .map(|(name, ty, description)| {
            json!({ "name": name, "type": ty, "description": description, "required": false })
        })
        .collect();
    let node_id = format!("t_{pipe}_0");
    json!({
        "id": format!("t_{pipe}"),
        "name": pipe,
        "description": "",
        "type": "endpoint",
        "endpoint": node_id,
        "created_at": app.created_at,
        "updated_at": app.created_at,
        "parent": null,
        "url": format!("/v0/pipes/{pipe}.json"),
        "params": params,
        "nodes": [{
            "id": node_id,
            "name": format!("{pipe}_0"),
            "sql": sql_of(pipe),
            "description": null,
            "params": params,
            "node_type": "endpoint",
            "materialized": null,
            "dependencies": [source],
            "created_at": app.created_at,
            "updated_at": app.created_at,
        }],
    })
}

pub async fn list(
    State(app): State<AppState>,
    Caller { who, .. }: Caller,
) -> Result<Json<Value>, ApiError> {
    let pipes: Vec<Value> = PIPES
        .iter()
        .filter(|p| who.has("PIPES:READ", p))
        .map(|p| describe(&app, p))
        .collect();
    Ok(Json(json!({ "pipes": pipes })))
}

/// A pipe's description; `name` has no format extension (`.json` etc. are
/// answered by the Pipes API).
pub fn show(app: &AppState, name: &str, who: &Principal) -> Result<Json<Value>, ApiError> {
    if !PIPES.contains(&name) {
        return Err(ApiError::NotFound(format!("pipe {name:?} not found")));
    }
    who.require("PIPES:READ", name)?;
    Ok(Json(describe(app, name)))
}

pub async fn workspaces(
    State(app): State<AppState>,
    Caller { who, .. }: Caller,
) -> Result<Json<Value>, ApiError> {
    let role = if who.is_admin() { "admin" } else { "guest" };
    Ok(Json(json!({
        "id": app.workspace_id,
        "name": "logpulse",
        "workspaces": [{
            "id": app.workspace_id,
            "name": "logpulse",
            "role": role,
            "plan": "dev",
            "is_branch": false,
            "main": null,
            "created_at": app.created_at,
        }],
    })))
}
