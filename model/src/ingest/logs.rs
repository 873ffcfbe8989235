//! `system_logs` rows, with the field aliases of common log shippers.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::scan::scan_flat;
use super::value::{datetime, first, string, FieldError};
use super::{key_column, ROW_BYTES_MAX};
use crate::row::LogRow;

/// Every column and alias we look at (field, JSON key); unknown fields are
/// ignored. `Fields` is what serde_json reads (a repeated key is an error);
/// `Raw` holds the same members' raw JSON text, also what [`scan_flat`]
/// fills.
macro_rules! fields {
    ($($name:ident: $key:literal,)*) => {
        #[derive(Deserialize)]
        struct Fields<'a> {
            $(#[serde(borrow, rename = $key)] $name: Option<&'a RawValue>,)*
        }

        #[derive(Default)]
        struct Raw<'a> {
            $($name: Option<&'a str>,)*
        }

        impl<'a> From<Fields<'a>> for Raw<'a> {
            fn from(f: Fields<'a>) -> Raw<'a> {
                Raw { $($name: f.$name.map(RawValue::get),)* }
            }
        }

        impl<'a> Raw<'a> {
            /// Sets the member `key`; false if it was already set.
            #[inline]
            fn set(&mut self, key: &str, v: &'a str) -> bool {
                let slot = match key {
                    $($key => &mut self.$name,)*
                    _ => return true,
                };
                slot.replace(v).is_none()
            }
        }
    };
}

fields! {
    timestamp: "timestamp",
    at_timestamp: "@timestamp",
    time: "time",
    ts: "ts",
    created: "created",
    server_id: "server_id",
    host: "host",
    hostname: "hostname",
    service: "service",
    app_name: "app_name",
    app: "app",
    service_name: "service_name",
    severity: "severity",
    levelname: "levelname",
    level: "level",
    log_level: "log_level",
    message: "message",
    msg: "msg",
    formatted_message: "formatted_message",
    error_code: "error_code",
    resource_id: "resource_id",
    metadata: "metadata",
}

/// Validates one JSON value as a `system_logs` row; every broken rule is reported.
pub fn parse_log<'a>(v: &'a RawValue) -> Result<LogRow<'a>, Vec<FieldError>> {
    if !v.get().starts_with('{') {
        return Err(vec![("", "row is not a JSON object".into())]);
    }
    let f: Fields =
        serde_json::from_str(v.get()).map_err(|e| vec![("", format!("invalid row: {e}"))])?;
    check_fields(f.into())
}

/// The one-pass path of NDJSON lines: a flat object ([`scan_flat`]), else a
/// line that deserializes as an object, is a syntactically valid JSON value,
/// so it gives the same result as validating it first and then calling
/// [`parse_log`]. `None` when it does not deserialize (the caller then takes
/// the two-pass path for its exact error).
pub(super) fn parse_log_line(text: &str) -> Option<Result<LogRow<'_>, Vec<FieldError>>> {
    if !text.starts_with('{') {
        return None;
    }
    let mut raw = Raw::default();
    if scan_flat(text, |k, v| raw.set(k, v)).is_some() {
        return Some(check_fields(raw));
    }
    serde_json::from_str::<Fields>(text)
        .ok()
        .map(|f| check_fields(f.into()))
}

/// A `system_logs` row's column values before the row rules run: what the
/// Events API reads from a JSON object, and what the shipper protocols
/// (OTLP, Loki, `_bulk`, syslog) map their records to. `None` is absent.
#[derive(Debug, Default)]
pub struct LogFields<'a> {
    /// Unix seconds, or why the record's time is not a valid DateTime.
    pub timestamp: Option<Result<u32, String>>,
    pub service: Option<Cow<'a, str>>,
    pub severity: Option<Cow<'a, str>>,
    pub message: Option<Cow<'a, str>>,
    pub server_id: Option<Cow<'a, str>>,
    pub error_code: Option<Cow<'a, str>>,
    pub resource_id: Option<Cow<'a, str>>,
    pub metadata: Option<Cow<'a, str>>,
}

fn check_fields<'a>(f: Raw<'a>) -> Result<LogRow<'a>, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut col = |col: &'static str, vals: &[Option<&'a str>], json: bool| {
        first(vals).and_then(|v| string(col, v, json).map_err(|e| errs.push(e)).ok())
    };
    let fields = LogFields {
        timestamp: first(&[f.timestamp, f.at_timestamp, f.time, f.ts, f.created])
            .map(|t| datetime("timestamp", t).map_err(|(_, m)| m)),
        service: col(
            "service",
            &[f.service, f.app_name, f.app, f.service_name],
            false,
        ),
        severity: col(
            "severity",
            &[f.severity, f.levelname, f.level, f.log_level],
            false,
        ),
        message: col("message", &[f.message, f.msg, f.formatted_message], false),
        server_id: col("server_id", &[f.server_id, f.host, f.hostname], false),
        error_code: col("error_code", &[f.error_code], false),
        resource_id: col("resource_id", &[f.resource_id], false),
        metadata: col("metadata", &[f.metadata], true),
    };
    check_log(fields, errs)
}

/// The row rules of `system_logs`, one place for every protocol: required
/// columns, key column trimming and lengths, severity upper-cased, the row
/// size limit. `errs` holds problems found earlier (a value of the wrong
/// type); every broken rule is reported.
pub fn check_log<'a>(
    f: LogFields<'a>,
    mut errs: Vec<FieldError>,
) -> Result<LogRow<'a>, Vec<FieldError>> {
    let mut row = LogRow::default();
    let missing = |col: &'static str| (col, "required column is missing".to_string());
    match f.timestamp {
        None => errs.insert(0, missing("timestamp")),
        Some(Ok(t)) => row.timestamp = t,
        Some(Err(m)) => errs.insert(0, ("timestamp", m)),
    }
    // A column whose value had the wrong type is already reported.
    let reported = |errs: &[FieldError], col| errs.iter().any(|(c, _)| *c == col);
    let mut key = |col: &'static str, v: Option<Cow<'a, str>>, max: usize, upper: bool| match v {
        None => {
            if !reported(&errs, col) {
                errs.push(missing(col));
            }
            Cow::Borrowed("")
        }
        Some(s) => key_column(col, s, Some(max), upper).unwrap_or_else(|e| {
            errs.push(e);
            Cow::Borrowed("")
        }),
    };
    row.service = key("service", f.service, 128, false);
    row.severity = key("severity", f.severity, 32, true);
    match f.message {
        None if !reported(&errs, "message") => errs.push(missing("message")),
        None => {}
        Some(m) => row.message = m,
    }
    row.server_id = f.server_id.unwrap_or_default();
    row.error_code = f.error_code.unwrap_or_default();
    row.resource_id = f.resource_id.unwrap_or_default();
    row.metadata = f.metadata.unwrap_or_default();
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
