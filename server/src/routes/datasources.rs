//! The Data Sources API: list, show with statistics, truncate.

use axum::extract::{Path, State};
use axum::response::Json;
use logpulse_model::DataSource;
use serde_json::{json, Value};

use crate::app::{blocking, AppState, Caller};
use crate::auth::Principal;
use crate::error::ApiError;

pub(crate) async fn describe(app: &AppState, ds: DataSource) -> Result<Value, ApiError> {
    let storage = app.storage.clone();
    let s = blocking(move || Ok(storage.datasource_stats(ds)?)).await?;
    let columns: Vec<Value> = ds
        .columns()
        .iter()
        .map(|(n, t)| json!({ "name": n, "type": t }))
        .collect();
    Ok(json!({
        "id": format!("t_{}", ds.name()),
        "name": ds.name(),
        "type": "ndjson",
        "engine": { "engine": if ds == DataSource::Thresholds { "ReplacingMergeTree" } else { "MergeTree" } },
        "columns": columns,
        "statistics": { "row_count": s.rows, "bytes": s.bytes },
        "created_at": app.created_at,
        "updated_at": app.created_at,
        "description": "",
        "headers": {},
        "shared_with": [],
        "tags": {},
        "quarantine": ds.is_quarantine(),
    }))
}

fn can_see(p: &Principal, ds: DataSource) -> bool {
    p.has("DATASOURCES:READ", ds.name()) || p.has("DATASOURCES:APPEND", ds.name())
}

pub async fn list(
    State(app): State<AppState>,
    Caller { who, .. }: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut all: Vec<Value> = Vec::new();
    for ds in DataSource::ALL.into_iter().filter(|ds| can_see(&who, *ds)) {
        all.push(describe(&app, ds).await?);
    }
    Ok(Json(json!({ "datasources": all })))
}

fn lookup(name: &str) -> Result<DataSource, ApiError> {
    DataSource::from_name(name)
        .ok_or_else(|| ApiError::NotFound(format!("data source {name:?} not found")))
}

pub async fn show(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Caller { who, .. }: Caller,
) -> Result<Json<Value>, ApiError> {
    let ds = lookup(&name)?;
    if !can_see(&who, ds) {
        return Err(ApiError::Forbidden(format!(
            "token lacks the DATASOURCES:READ:{name} scope"
        )));
    }
    Ok(Json(describe(&app, ds).await?))
}

pub async fn truncate(
    State(app): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.who.require_admin()?;
    let ds = lookup(&name)?;
    let storage = app.storage.clone();
    blocking(move || storage.truncate(ds).map_err(ApiError::from)).await?;
    tracing::info!(datasource = ds.name(), "truncated");
    Ok(Json(json!({ "result": "ok", "datasource": ds.name() })))
}
