//! The Events API: `POST /v0/events?name=<datasource>[&wait=true]`.

use std::io::Read;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logpulse_engine::ingest::{parse_body, Import};
use logpulse_engine::{DataSource, Durability};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::app::{blocking, read_body_into, AppState};
use crate::error::ApiError;
use crate::params::Params;

pub async fn post(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut body = Some(body);
    let res = handle(&app, q.as_deref(), &headers, &mut body).await;
    let refused = res.is_err();
    if let (true, Some(unread)) = (refused, body) {
        // Answering before the client finished sending would make it see a
        // broken pipe instead of our error: read the rest first (bounded).
        drain(unread, app.config.max_body_bytes, DRAIN_TIMEOUT).await;
    }
    res
}

/// Longest wait for a refused request's body to arrive.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

async fn drain(body: Body, max: usize, timeout: Duration) {
    use http_body_util::BodyExt;
    let read = async {
        let mut body = body;
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > max {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
}

async fn handle(
    app: &AppState,
    q: Option<&str>,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let params = Params::from_query(q);
    let principal = app.auth.authenticate(headers, params.get("token"))?;
    let name = params
        .get("name")
        .ok_or_else(|| ApiError::BadRequest("missing parameter name".into()))?
        .to_string();
    let ds = match DataSource::from_name(&name) {
        Some(ds) if ds.is_quarantine() => {
            return Err(ApiError::BadRequest(format!(
                "{name} is a quarantine data source and takes no appends"
            )))
        }
        Some(ds) => ds,
        None => {
            return Err(ApiError::NotFound(format!(
                "data source {name:?} not found"
            )))
        }
    };
    principal.require("DATASOURCES:APPEND", &name)?;
    let wait = params.bool("wait")?;
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    let Ok(_slot) = app.ingest_slots.try_acquire() else {
        app.metrics.ingest_rejected.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::RateLimited(
            "too many event requests in flight; retry later".into(),
        ));
    };
    let timeout = Duration::from_millis(app.config.request_timeout_ms);
    let body = body.take().expect("body is read once");
    let max = app.config.max_body_bytes;
    let mut buf = app.body_buffers.take();
    if let Err(e) = read_body_into(body, headers, max, timeout, &mut buf).await {
        app.body_buffers.put(buf, max);
        return Err(e);
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
    let app2 = app.clone();
    let res = blocking(move || {
        let res = ingest(&app2, ds, &buf, gzip, wait);
        app2.body_buffers.put(buf, max);
        res
    })
    .await;
    if matches!(
        res,
        Err(ApiError::RateLimited(_)) | Err(ApiError::Unavailable(_))
    ) {
        app.metrics.ingest_rejected.fetch_add(1, Ordering::Relaxed);
    }
    let (ok, quarantined) = res?;
    let status = if wait {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = format!("{{\"successful_rows\":{ok},\"quarantined_rows\":{quarantined}}}");
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn ingest(
    app: &AppState,
    ds: DataSource,
    body: &[u8],
    gzip: bool,
    wait: bool,
) -> Result<(u64, u64), ApiError> {
    let data: std::borrow::Cow<[u8]> = if gzip {
        std::borrow::Cow::Owned(gunzip(body, app.config.max_decompressed_bytes)?)
    } else {
        std::borrow::Cow::Borrowed(body)
    };
    let import_id = crate::auth::generate_token().split_off(3)[..16].to_string();
    let parsed = parse_body(
        ds,
        &data,
        &Import {
            id: &import_id,
            now: logpulse_engine::time::now(),
        },
    );
    let durability = if wait {
        Durability::Synced
    } else {
        Durability::Visible
    };
    app.storage.append(&parsed.rows, durability)?;
    app.metrics
        .rows_ingested
        .fetch_add(parsed.successful, Ordering::Relaxed);
    app.metrics
        .rows_quarantined
        .fetch_add(parsed.quarantined, Ordering::Relaxed);
    if parsed.quarantined > 0 {
        tracing::warn!(
            datasource = ds.name(),
            quarantined = parsed.quarantined,
            import_id,
            first_reason = parsed.reasons.first().map(String::as_str).unwrap_or(""),
            "rows quarantined"
        );
    }
    Ok((parsed.successful, parsed.quarantined))
}

/// Decompresses a gzip body, refusing more than `max` bytes of output.
fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(max as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("invalid gzip body: {e}")))?;
    if out.len() > max {
        return Err(ApiError::TooLarge(format!(
            "decompressed body is larger than the {max}-byte limit"
        )));
    }
    Ok(out)
}
