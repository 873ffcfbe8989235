//! The Events API: `POST /v0/events?name=<datasource>[&wait=true]`.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logpulse_model::ingest::{parse_body, Import, Parsed};
use logpulse_model::{DataSource, Durability};

use crate::app::AppState;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::intake::{self, Decoder};

pub async fn post(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (ds, wait) = match check(&app, q.as_deref(), &headers) {
        Ok(ok) => ok,
        Err(e) => return Err(intake::refuse(&app, body, e).await),
    };
    let durability = if wait {
        Durability::Synced
    } else {
        Durability::Visible
    };
    let done = intake::ingest(&app, &headers, body, durability, EventsBody(ds)).await?;
    let status = if wait {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = format!(
        "{{\"successful_rows\":{},\"quarantined_rows\":{}}}",
        done.successful, done.quarantined
    );
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The data source and `wait` of a request its token may append to.
fn check(
    app: &AppState,
    q: Option<&str>,
    headers: &HeaderMap,
) -> Result<(DataSource, bool), ApiError> {
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
    Ok((ds, params.bool("wait")?))
}

/// NDJSON rows of one data source.
struct EventsBody(DataSource);

impl Decoder for EventsBody {
    type Out = ();
    fn decode<'a>(self, data: &'a [u8], import: &Import) -> Result<(Parsed<'a>, ()), ApiError> {
        Ok((parse_body(self.0, data, import), ()))
    }
}
