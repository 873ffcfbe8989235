//! The Tokens API (admin only): create, list, delete scoped tokens.

use axum::extract::{Path, State};
use axum::response::Json;
use serde_json::{json, Value};

use crate::app::{AppState, Caller};
use crate::auth::Scope;
use crate::error::ApiError;

pub async fn list(State(app): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.who.require_admin()?;
    Ok(Json(json!({ "tokens": app.auth.list() })))
}

pub async fn create(State(app): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.who.require_admin()?;
    let p = caller.params;
    let name = p
        .get("name")
        .ok_or_else(|| ApiError::BadRequest("missing parameter name".into()))?;
    let scopes = p
        .all("scope")
        .map(Scope::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::BadRequest)?;
    if scopes.is_empty() {
        return Err(ApiError::BadRequest(
            "at least one scope parameter is required".into(),
        ));
    }
    let t = app.auth.create(name, scopes)?;
    tracing::info!(name = %t.name, "token created");
    Ok(Json(serde_json::to_value(t).expect("token serializes")))
}

pub async fn show(
    State(app): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.who.require_admin()?;
    let t = app
        .auth
        .list()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no token named {name:?}")))?;
    Ok(Json(serde_json::to_value(t).expect("token serializes")))
}

pub async fn remove(
    State(app): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.who.require_admin()?;
    app.auth.delete(&name)?;
    tracing::info!(name = %name, "token deleted");
    Ok(Json(json!({ "result": "ok" })))
}
