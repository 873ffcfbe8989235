//! The shippers' endpoints: OTLP/HTTP logs, Loki push and Elasticsearch
//! `_bulk`, on the Events API's pipeline (`intake`) with its token scope
//! (`DATASOURCES:APPEND:system_logs`), limits and atomicity.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use logpulse_model::ingest::{Import, Parsed};
use logpulse_model::Durability;

use crate::app::AppState;
use crate::error::ApiError;
use crate::ingest::{elasticsearch, loki, otlp};
use crate::params::Params;
use crate::routes::intake::{self, Decoder};

/// The token may append to `system_logs`; `wait=true` waits for fsync.
fn authorize(app: &AppState, q: Option<&str>, headers: &HeaderMap) -> Result<Durability, ApiError> {
    let params = Params::from_query(q);
    let who = app.auth.authenticate(headers, params.get("token"))?;
    who.require("DATASOURCES:APPEND", "system_logs")?;
    Ok(match params.bool("wait")? {
        true => Durability::Synced,
        false => Durability::Visible,
    })
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `POST /v1/logs`.
pub async fn otlp(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let checked = authorize(&app, q.as_deref(), &headers).and_then(|d| {
        let enc = otlp::Encoding::of(content_type(&headers)).ok_or_else(|| {
            ApiError::BadRequest("OTLP logs are application/x-protobuf or application/json".into())
        })?;
        Ok((d, enc))
    });
    let (durability, enc) = match checked {
        Ok(ok) => ok,
        Err(e) => return Err(intake::refuse(&app, body, e).await),
    };
    let done = intake::ingest(&app, &headers, body, durability, Otlp(enc)).await?;
    let answer = otlp::response(done.quarantined, done.first_reason.as_deref(), enc);
    Ok(([(header::CONTENT_TYPE, enc.content_type())], answer).into_response())
}

struct Otlp(otlp::Encoding);

impl Decoder for Otlp {
    type Out = ();
    fn decode<'a>(self, data: &'a [u8], import: &Import) -> Result<(Parsed<'a>, ()), ApiError> {
        let req = otlp::decode(data, self.0).map_err(ApiError::BadRequest)?;
        let mut out = Parsed::default();
        otlp::to_rows(&req, import, &mut out);
        Ok((out, ()))
    }
}

/// `POST /loki/api/v1/push`: 204 when stored (quarantined entries included).
pub async fn loki(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let durability = match authorize(&app, q.as_deref(), &headers) {
        Ok(ok) => ok,
        Err(e) => return Err(intake::refuse(&app, body, e).await),
    };
    let decoder = Loki {
        protobuf: content_type(&headers).contains("protobuf"),
        max: app.config.max_decompressed_bytes,
    };
    intake::ingest(&app, &headers, body, durability, decoder).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

struct Loki {
    protobuf: bool,
    max: usize,
}

impl Decoder for Loki {
    type Out = ();
    fn decode<'a>(self, data: &'a [u8], import: &Import) -> Result<(Parsed<'a>, ()), ApiError> {
        let entries = match self.protobuf {
            true => loki::decode_protobuf(data, self.max),
            false => loki::decode_json(data),
        }
        .map_err(ApiError::BadRequest)?;
        let mut out = Parsed::default();
        loki::to_rows(entries, import, &mut out);
        Ok((out, ()))
    }
}

/// `POST /es/_bulk` and `POST /es/<index>/_bulk`.
pub async fn bulk(
    State(app): State<AppState>,
    index: Option<Path<String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let t0 = Instant::now();
    let durability = match authorize(&app, q.as_deref(), &headers) {
        Ok(ok) => ok,
        Err(e) => return Err(intake::refuse(&app, body, e).await),
    };
    let index = index.map(|Path(i)| i).unwrap_or_default();
    let done = intake::ingest(&app, &headers, body, durability, Bulk(index)).await?;
    let answer = elasticsearch::response(&done.out, t0.elapsed().as_millis() as u64);
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}

struct Bulk(String);

impl Decoder for Bulk {
    type Out = elasticsearch::Items;
    fn decode<'a>(
        self,
        data: &'a [u8],
        import: &Import,
    ) -> Result<(Parsed<'a>, Self::Out), ApiError> {
        let mut out = Parsed::default();
        let items =
            elasticsearch::to_rows(data, self.0, import, &mut out).map_err(ApiError::BadRequest)?;
        Ok((out, items))
    }
}

/// `GET /es/` and `HEAD /es/`: the version document, for any valid token.
pub async fn es_root(
    State(app): State<AppState>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::from_query(q.as_deref());
    app.auth.authenticate(&headers, params.get("token"))?;
    if method == Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(axum::Json(elasticsearch::version_document(&app.workspace_id)).into_response())
}

/// Every answer under `/es` says it is Elasticsearch: the official clients
/// refuse a server that does not.
pub async fn elastic_product(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    resp
}
