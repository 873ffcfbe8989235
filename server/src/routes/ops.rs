//! Health, metrics and workspace.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::app::{blocking, AppState, Caller};
use crate::error::ApiError;

pub async fn health(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    Ok(Json(json!({ "status": "ok" })))
}

pub async fn metrics(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.who.require_admin()?;
    let state = app.clone();
    let mut text = blocking(move || Ok(state.metrics.render(state.storage.as_ref()))).await?;
    if let Some(a) = &app.alerts {
        a.render_metrics(&mut text);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub async fn workspace(
    State(app): State<AppState>,
    _caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "id": app.workspace_id, "name": "logpulse" })))
}
