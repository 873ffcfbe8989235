//! The router and the state every handler shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::Auth;
use crate::config::Config;
use crate::error::{error_response, ApiError};
use crate::metrics::Metrics;
use crate::routes::{
    alerts, catalog, datasources, events, import, ops, pipes, shippers, sql, tail, tokens, ui,
};
use logpulse_model::Storage;

pub struct AppInner {
    pub storage: Arc<dyn Storage>,
    pub auth: Auth,
    pub config: Config,
    pub metrics: Metrics,
    pub workspace_id: String,
    /// When the workspace (data dir) was made, Tinybird's form
    /// (`YYYY-MM-DD HH:MM:SS.ffffff`): data sources' and pipes' `created_at`.
    pub created_at: String,
    /// The Query API's engine (its own threads).
    pub sql: crate::sql::SqlEngine,
    pub shutting_down: AtomicBool,
    /// Event requests being read, parsed or written at once; more get 429,
    /// so that memory stays bounded whatever the load.
    pub ingest_slots: tokio::sync::Semaphore,
    /// Pipe requests whose body is being read or parsed at once; more get 429.
    pub pipe_body_slots: tokio::sync::Semaphore,
    pub body_buffers: BodyBuffers,
    /// The alert engine; `None` when alerting is off.
    pub alerts: Option<Arc<crate::alerts::Alerting>>,
    /// The live tail's streams (`GET /v0/tail`).
    pub tail: Arc<crate::tail::Hub>,
}

pub type AppState = Arc<AppInner>;

impl AppInner {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// The authenticated caller of a request, with its query parameters. The
/// token comes from `Authorization: Bearer` or the `token` parameter; a
/// missing one is a 401 and an unknown one a 403, before the handler runs.
pub struct Caller {
    pub who: crate::auth::Principal,
    pub params: crate::params::Params,
}

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &AppState,
    ) -> Result<Caller, ApiError> {
        let params = crate::params::Params::from_query(parts.uri.query());
        let who = app.auth.authenticate(&parts.headers, params.get("token"))?;
        Ok(Caller { who, params })
    }
}

/// Every route of the API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/v0/tail", get(tail::get))
        .route("/v0/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/v0/workspace", get(ops::workspace))
        .route("/v0/events", post(events::post))
        .route("/v0/pipes/{pipe}", get(pipes::get).post(pipes::post))
        .route("/v0/pipes", get(catalog::list))
        .route("/v0/sql", get(sql::get).post(sql::post))
        .route("/v0/user/workspaces/", get(catalog::workspaces))
        .route("/v0/user/workspaces", get(catalog::workspaces))
        .route("/v0/datasources", get(datasources::list).post(import::post))
        .route("/v0/datasources/{name}", get(datasources::show))
        .route(
            "/v0/datasources/{name}/truncate",
            post(datasources::truncate),
        )
        .route("/v0/alerts", get(alerts::list))
        .route("/v0/tokens", get(tokens::list).post(tokens::create))
        .route(
            "/v0/tokens/{name}",
            get(tokens::show).delete(tokens::remove),
        )
        .route("/v1/logs", post(shippers::otlp))
        .route("/loki/api/v1/push", post(shippers::loki))
        .merge(elasticsearch())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(|_| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the handler panicked",
            )
        }))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The Elasticsearch routes, under the `/es` prefix clients are given.
fn elasticsearch() -> Router<AppState> {
    let bulk = post(shippers::bulk).put(shippers::bulk);
    Router::new()
        .route("/es", get(shippers::es_root).head(shippers::es_root))
        .route("/es/", get(shippers::es_root).head(shippers::es_root))
        .route("/es/_bulk", bulk.clone())
        .route("/es/{index}/_bulk", bulk)
        .layer(middleware::map_response(shippers::elastic_product))
}

/// The router of connections past `max_connections`: health answers as
/// usual, every other route is a 503 with `Retry-After`.
pub fn shed_app(state: AppState) -> Router {
    Router::new()
        .route("/v0/health", get(ops::health))
        .fallback(shed)
        .with_state(state)
}

async fn shed() -> ApiError {
    ApiError::Unavailable("too many connections; retry later".into())
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/es/") {
        // Still Elasticsearch to its clients, which call more APIs than _bulk.
        let e = ApiError::NotFound("only GET /es/ and the _bulk API are served under /es".into());
        return shippers::elastic_product(axum::response::IntoResponse::into_response(e)).await;
    }
    axum::response::IntoResponse::into_response(ApiError::NotFound("unknown route".into()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("method not allowed on this route".into())
}

/// Metrics and a debug line per request (path only: the query may hold a
/// token), and a JSON body on every error, also those made by the framework.
async fn observe(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route: &'static str = match req.extensions().get::<MatchedPath>().map(|p| p.as_str()) {
        Some("/v0/health") => "health",
        Some("/metrics") => "metrics",
        Some("/v0/workspace") => "workspace",
        Some("/v0/events") => "events",
        Some("/v0/pipes/{pipe}") => "pipes",
        Some("/v0/sql") => "sql",
        Some("/v0/pipes") | Some("/v0/user/workspaces/") | Some("/v0/user/workspaces") => "catalog",
        Some("/v0/datasources") | Some("/v0/datasources/{name}") => "datasources",
        Some("/v0/datasources/{name}/truncate") => "truncate",
        Some("/v0/tokens") | Some("/v0/tokens/{name}") => "tokens",
        Some("/v1/logs") => "otlp",
        Some("/loki/api/v1/push") => "loki",
        Some(p) if p.starts_with("/es") => "elasticsearch",
        Some("/v0/alerts") => "alerts",
        Some("/v0/tail") => "tail",
        Some("/") | Some("/ui/{file}") => "ui",
        _ => "other",
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let t0 = Instant::now();
    let mut resp = next.run(req).await;
    let status = resp.status();
    if status.as_u16() >= 400 && !is_json(resp.headers()) {
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
        let retry = resp.headers().get(header::RETRY_AFTER).cloned();
        resp = error_response(status, &reason);
        if let Some(r) = retry {
            resp.headers_mut().insert(header::RETRY_AFTER, r);
        }
    }
    let elapsed = t0.elapsed();
    app.metrics.observe(route, status.as_u16(), elapsed);
    tracing::debug!(%method, path, status = status.as_u16(), elapsed_us = elapsed.as_micros() as u64, "request");
    resp
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Reads a request body of at most `max` bytes within `timeout`.
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    read_body_into(body, headers, max, timeout, &mut buf).await?;
    Ok(Bytes::from(buf))
}

/// [`read_body`] into a caller's (reused) buffer, which is cleared first.
pub async fn read_body_into(
    body: Body,
    headers: &HeaderMap,
    max: usize,
    timeout: Duration,
    buf: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let too_large =
        || ApiError::TooLarge(format!("request body is larger than the {max}-byte limit"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    buf.clear();
    buf.reserve(declared.unwrap_or(0) as usize);
    let read = async {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::BadRequest(format!("reading request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::BadRequest(format!(
            "request body not received within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// Request-body buffers kept for reuse: a fresh multi-megabyte buffer per
/// request costs a page fault per 4 KiB.
#[derive(Default)]
pub struct BodyBuffers {
    spare: parking_lot::Mutex<Vec<Vec<u8>>>,
}

impl BodyBuffers {
    const KEEP: usize = 8;

    pub fn take(&self) -> Vec<u8> {
        self.spare.lock().pop().unwrap_or_default()
    }

    /// Keeps `buf` if it is no larger than `max_bytes` and few are kept.
    pub fn put(&self, buf: Vec<u8>, max_bytes: usize) {
        if buf.capacity() <= max_bytes {
            let mut spare = self.spare.lock();
            if spare.len() < Self::KEEP {
                spare.push(buf);
            }
        }
    }
}

/// Runs blocking work (parsing, disk) off the async workers; a panic in it
/// becomes a 500.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}
