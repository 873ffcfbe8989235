//! The Query API: `GET /v0/sql?q=...` and `POST /v0/sql` (the query as the
//! raw body, or form-encoded as `q=...`). Read-only; see [`crate::sql`].

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use crate::app::{read_body, AppState, Caller};
use crate::error::ApiError;
use crate::params::Params;
use crate::sql::clickhouse::OutFormat;
use crate::sql::output::render;

/// Largest query text accepted.
const MAX_SQL_BYTES: usize = 1 << 20;

pub async fn get(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let q = caller
        .params
        .get("q")
        .ok_or_else(|| ApiError::BadRequest("missing parameter q (the SQL query)".into()))?
        .to_string();
    answer(&app, caller, q).await
}

pub async fn post(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let timeout = Duration::from_millis(app.config.request_timeout_ms);
    let raw = read_body(body, &headers, MAX_SQL_BYTES, timeout).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let q = if ct.starts_with("application/x-www-form-urlencoded") {
        let mut p = Params::default();
        p.add_form(&raw);
        p.get("q").map(str::to_string)
    } else {
        Some(String::from_utf8_lossy(&raw).into_owned())
    };
    let q = q
        .filter(|s| !s.trim().is_empty())
        .or_else(|| caller.params.get("q").map(str::to_string))
        .ok_or_else(|| ApiError::BadRequest("missing query: send it as the body or q".into()))?;
    answer(&app, caller, q).await
}

async fn answer(app: &AppState, caller: Caller, q: String) -> Result<Response, ApiError> {
    let fallback = match caller.params.get("format") {
        Some(f) => OutFormat::parse(f)?,
        None => OutFormat::Json,
    };
    let a = app.sql.query(q, caller.who).await?;
    let (body, ct) = render(&a, a.format.unwrap_or(fallback));
    Ok(([(header::CONTENT_TYPE, ct)], body).into_response())
}
