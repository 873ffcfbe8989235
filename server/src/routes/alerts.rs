//! `GET /v0/alerts`: the alerts now pending or firing, and those resolved
//! in the last hour.

use axum::extract::State;
use axum::response::Json;
use serde_json::{json, Value};

use crate::app::{AppState, Caller};
use crate::error::ApiError;

/// Who may read alerts: the admin, or a token that may read `log_anomalies`.
pub const SCOPE: (&str, &str) = ("PIPES:READ", "log_anomalies");

pub async fn list(State(app): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.who.require(SCOPE.0, SCOPE.1)?;
    Ok(Json(match &app.alerts {
        Some(a) => a.snapshot(),
        None => json!({ "alerts": [] }),
    }))
}
