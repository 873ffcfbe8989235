//! Health, metrics and workspace.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;
use crate::params::Params;

pub async fn health(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    Ok(Json(json!({ "status": "ok" })))
}

pub async fn metrics(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = Params::from_query(q.as_deref());
    app.auth
        .authenticate(&headers, p.get("token"))?
        .require_admin()?;
    let text = app.metrics.render(app.storage.as_ref());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub async fn workspace(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = Params::from_query(q.as_deref());
    app.auth.authenticate(&headers, p.get("token"))?;
    Ok(Json(json!({ "id": app.workspace_id, "name": "logpulse" })))
}
