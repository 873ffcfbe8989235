//! The one ingestion pipeline of every HTTP protocol (the Events API and the
//! shippers'): a slot or 429, the body read within its limits, gzip with a
//! bomb limit, the protocol's decoder on a blocking thread, and one atomic
//! `Storage::append` of the request's rows and quarantine rows.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use logpulse_model::ingest::{Import, Parsed};
use logpulse_model::Durability;

use crate::app::{blocking, read_body_into, AppState};
use crate::error::ApiError;

/// A wire format: turns a (decompressed) body into rows.
pub trait Decoder: Send + 'static {
    /// What the protocol needs to answer, besides the counts.
    type Out: Send + 'static;
    /// The body in the form `decode` reads (a file taken out of a multipart
    /// body, CSV turned into NDJSON, ...); by default the body itself.
    fn transcode<'a>(&self, data: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, ApiError> {
        Ok(std::borrow::Cow::Borrowed(data))
    }
    fn decode<'a>(
        self,
        data: &'a [u8],
        import: &Import,
    ) -> Result<(Parsed<'a>, Self::Out), ApiError>;
}

/// What a request stored.
pub struct Ingested<T> {
    pub successful: u64,
    pub quarantined: u64,
    pub first_reason: Option<String>,
    pub out: T,
}

/// Runs the pipeline. On an error the unread rest of the body is drained
/// first (bounded), so that the client sees the answer, not a broken pipe.
pub async fn ingest<D: Decoder>(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    durability: Durability,
    decoder: D,
) -> Result<Ingested<D::Out>, ApiError> {
    let mut body = Some(body);
    let res = run(app, headers, &mut body, durability, decoder).await;
    if let (true, Some(unread)) = (res.is_err(), body) {
        drain(unread, app.config.max_body_bytes, DRAIN_TIMEOUT).await;
    }
    if matches!(
        res,
        Err(ApiError::RateLimited(_)) | Err(ApiError::Unavailable(_))
    ) {
        app.metrics.ingest_rejected.fetch_add(1, Ordering::Relaxed);
    }
    res
}

/// Drains the body of a request refused before the pipeline ran (bad
/// token, bad parameters) and gives the error back.
pub async fn refuse(app: &AppState, body: Body, e: ApiError) -> ApiError {
    drain(body, app.config.max_body_bytes, DRAIN_TIMEOUT).await;
    e
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

async fn run<D: Decoder>(
    app: &AppState,
    headers: &HeaderMap,
    body: &mut Option<Body>,
    durability: Durability,
    decoder: D,
) -> Result<Ingested<D::Out>, ApiError> {
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    let Ok(_slot) = app.ingest_slots.try_acquire() else {
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
    blocking(move || {
        let res = store(&app2, &buf, gzip, durability, decoder);
        app2.body_buffers.put(buf, max);
        res
    })
    .await
}

fn store<D: Decoder>(
    app: &AppState,
    body: &[u8],
    gzip: bool,
    durability: Durability,
    decoder: D,
) -> Result<Ingested<D::Out>, ApiError> {
    let data: std::borrow::Cow<[u8]> = if gzip {
        std::borrow::Cow::Owned(gunzip(body, app.config.max_decompressed_bytes)?)
    } else {
        std::borrow::Cow::Borrowed(body)
    };
    let import_id = crate::auth::generate_token().split_off(3)[..16].to_string();
    let import = Import {
        id: &import_id,
        now: logpulse_model::time::now(),
    };
    let data = decoder.transcode(&data)?;
    let (parsed, out) = decoder.decode(&data, &import)?;
    app.storage.append(&parsed.rows, durability)?;
    app.metrics
        .rows_ingested
        .fetch_add(parsed.successful, Ordering::Relaxed);
    app.metrics
        .rows_quarantined
        .fetch_add(parsed.quarantined, Ordering::Relaxed);
    if parsed.quarantined > 0 {
        tracing::warn!(
            quarantined = parsed.quarantined,
            import_id,
            first_reason = ?log_excerpt(parsed.reasons.first().map(String::as_str).unwrap_or("")),
            "rows quarantined"
        );
    }
    Ok(Ingested {
        successful: parsed.successful,
        quarantined: parsed.quarantined,
        first_reason: parsed.reasons.into_iter().next(),
        out,
    })
}

/// Decompresses a gzip body, refusing more than `max` bytes of output.
pub fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
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

/// Most bytes of a row's quarantine reason written to the log.
const LOG_REASON_MAX: usize = 200;

/// The start of `s`, at most [`LOG_REASON_MAX`] bytes (logged with `?`, so
/// control characters are escaped).
fn log_excerpt(s: &str) -> &str {
    let mut end = s.len().min(LOG_REASON_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
