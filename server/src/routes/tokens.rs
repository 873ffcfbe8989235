//! The Tokens API (admin only): create, list, delete scoped tokens. Every
//! answer carries `Cache-Control: no-store` (they hold token values); the
//! tokens file is rewritten off the async workers.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use logpulse_model::DataSource;
use serde_json::{json, Value};

use crate::app::{blocking, AppState, Caller};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::routes::pipes::PIPES;

fn no_store(v: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(v)).into_response()
}

/// Whether the pipe or data source a scope names exists.
fn exists(kind: &str, resource: &str) -> bool {
    if kind.starts_with("PIPES") {
        PIPES.contains(&resource)
    } else {
        DataSource::from_name(resource).is_some()
    }
}

/// The admin token first (as Tinybird lists its "admin token"), then the
/// scoped tokens, each with the `id` and `description` the `tb` CLI prints.
pub async fn list(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.who.require_admin()?;
    let mut tokens = vec![json!({
        "id": "admin",
        "name": "admin token",
        "description": "the admin token: may do everything",
        "token": app.auth.admin_token(),
        "scopes": [{ "type": "ADMIN" }],
    })];
    for t in app.auth.list() {
        let mut v = serde_json::to_value(&t).expect("token serializes");
        v["id"] = json!(t.name);
        v["description"] = json!("");
        tokens.push(v);
    }
    Ok(no_store(json!({ "tokens": tokens })))
}

pub async fn create(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.who.require_admin()?;
    let p = caller.params;
    let name = p
        .get("name")
        .ok_or_else(|| ApiError::BadRequest("missing parameter name".into()))?
        .to_string();
    crate::auth::check_token_name(&name)?;
    let scopes = p
        .all("scope")
        .map(|s| Scope::parse(s, exists))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::BadRequest)?;
    if scopes.is_empty() {
        return Err(ApiError::BadRequest(
            "at least one scope parameter is required".into(),
        ));
    }
    let t = blocking(move || app.auth.create(&name, scopes)).await?;
    tracing::info!(name = ?t.name, "token created");
    Ok(no_store(serde_json::to_value(t).expect("token serializes")))
}

pub async fn show(
    State(app): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.who.require_admin()?;
    let t = app
        .auth
        .list()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no token named {name:?}")))?;
    Ok(no_store(serde_json::to_value(t).expect("token serializes")))
}

pub async fn remove(
    State(app): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.who.require_admin()?;
    let app2 = app.clone();
    let n = name.clone();
    blocking(move || app2.auth.delete(&n)).await?;
    tracing::info!(name = ?name, "token deleted");
    Ok(no_store(json!({ "result": "ok" })))
}
