//! `system_logs` rows, with the field aliases of common log shippers.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::value::{datetime, first, string, FieldError};
use super::{key_column, ROW_BYTES_MAX};
use crate::row::LogRow;

/// Every column and alias we look at; unknown fields are ignored.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, rename = "@timestamp")]
    at_timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    created: Option<&'a RawValue>,
    #[serde(borrow)]
    server_id: Option<&'a RawValue>,
    #[serde(borrow)]
    host: Option<&'a RawValue>,
    #[serde(borrow)]
    hostname: Option<&'a RawValue>,
    #[serde(borrow)]
    service: Option<&'a RawValue>,
    #[serde(borrow)]
    app_name: Option<&'a RawValue>,
    #[serde(borrow)]
    app: Option<&'a RawValue>,
    #[serde(borrow)]
    service_name: Option<&'a RawValue>,
    #[serde(borrow)]
    severity: Option<&'a RawValue>,
    #[serde(borrow)]
    levelname: Option<&'a RawValue>,
    #[serde(borrow)]
    level: Option<&'a RawValue>,
    #[serde(borrow)]
    log_level: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    msg: Option<&'a RawValue>,
    #[serde(borrow)]
    formatted_message: Option<&'a RawValue>,
    #[serde(borrow)]
    error_code: Option<&'a RawValue>,
    #[serde(borrow)]
    resource_id: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
}

/// Validates one JSON value as a `system_logs` row; every broken rule is reported.
pub fn parse_log<'a>(v: &'a RawValue) -> Result<LogRow<'a>, Vec<FieldError>> {
    if !v.get().starts_with('{') {
        return Err(vec![("", "row is not a JSON object".into())]);
    }
    let f: Fields =
        serde_json::from_str(v.get()).map_err(|e| vec![("", format!("invalid row: {e}"))])?;
    check_fields(f)
}

/// The one-pass path of NDJSON lines: a line that deserializes as an object
/// is a syntactically valid JSON value, so it gives the same result as
/// validating it first and then calling [`parse_log`]. `None` when it does not
/// deserialize (the caller then takes the two-pass path for its exact error).
pub(super) fn parse_log_line(text: &str) -> Option<Result<LogRow<'_>, Vec<FieldError>>> {
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Fields>(text).ok().map(check_fields)
}

fn check_fields<'a>(f: Fields<'a>) -> Result<LogRow<'a>, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut row = LogRow::default();
    match first(&[f.timestamp, f.at_timestamp, f.time, f.ts, f.created]) {
        None => errs.push(("timestamp", "required column is missing".into())),
        Some(t) => match datetime("timestamp", t) {
            Ok(t) => row.timestamp = t,
            Err(e) => errs.push(e),
        },
    }
    let mut required =
        |col: &'static str, vals: &[Option<&'a RawValue>]| -> Option<std::borrow::Cow<'a, str>> {
            match first(vals) {
                None => {
                    errs.push((col, "required column is missing".into()));
                    None
                }
                Some(v) => string(col, v, false).map_err(|e| errs.push(e)).ok(),
            }
        };
    let service = required("service", &[f.service, f.app_name, f.app, f.service_name]);
    let severity = required("severity", &[f.severity, f.levelname, f.level, f.log_level]);
    let message = required("message", &[f.message, f.msg, f.formatted_message]);
    if let Some(s) = service {
        match key_column("service", s, Some(128), false) {
            Ok(s) => row.service = s,
            Err(e) => errs.push(e),
        }
    }
    if let Some(s) = severity {
        match key_column("severity", s, Some(32), true) {
            Ok(s) => row.severity = s,
            Err(e) => errs.push(e),
        }
    }
    row.message = message.unwrap_or_default();
    let mut optional =
        |col: &'static str, vals: &[Option<&'a RawValue>], json: bool| match first(vals) {
            None => Default::default(),
            Some(v) => string(col, v, json).unwrap_or_else(|e| {
                errs.push(e);
                Default::default()
            }),
        };
    row.server_id = optional("server_id", &[f.server_id, f.host, f.hostname], false);
    row.error_code = optional("error_code", &[f.error_code], false);
    row.resource_id = optional("resource_id", &[f.resource_id], false);
    row.metadata = optional("metadata", &[f.metadata], true);
    // Encoded size: the text plus a short length prefix per column and the timestamp.
    let size = row.text_bytes() + 7 * 2 + 5;
    if size > ROW_BYTES_MAX {
        errs.push(("", format!("row of {size} bytes exceeds the 1 MiB limit")));
    }
    if errs.is_empty() {
        Ok(row)
    } else {
        Err(errs)
    }
}
