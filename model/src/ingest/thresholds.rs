//! `log_anomaly_thresholds` rows.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::key_column;
use super::value::{datetime, flag, float, present, string, FieldError};
use crate::row::ThresholdRow;

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    service: Option<&'a RawValue>,
    #[serde(borrow)]
    severity: Option<&'a RawValue>,
    #[serde(borrow)]
    threshold_per_minute: Option<&'a RawValue>,
    #[serde(borrow)]
    active: Option<&'a RawValue>,
    #[serde(borrow)]
    updated_at: Option<&'a RawValue>,
}

/// Validates one JSON value as a threshold row; `now` fills a missing `updated_at`.
pub fn parse_threshold(v: &RawValue, now: u32) -> Result<ThresholdRow, Vec<FieldError>> {
    if !v.get().starts_with('{') {
        return Err(vec![("", "row is not a JSON object".into())]);
    }
    let f: Fields =
        serde_json::from_str(v.get()).map_err(|e| vec![("", format!("invalid row: {e}"))])?;
    check_fields(f, now)
}

/// One-pass path of NDJSON lines, as `logs::parse_log_line`.
pub(super) fn parse_threshold_line(
    text: &str,
    now: u32,
) -> Option<Result<ThresholdRow, Vec<FieldError>>> {
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Fields>(text)
        .ok()
        .map(|f| check_fields(f, now))
}

fn check_fields(f: Fields<'_>, now: u32) -> Result<ThresholdRow, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut key = |col: &'static str, v: Option<&RawValue>, upper: bool| -> String {
        let v = v.map(RawValue::get);
        let res = match present(v) {
            None => Err((col, "required column is missing".to_string())),
            Some(v) => string(col, v, false).and_then(|s| key_column(col, s, None, upper)),
        };
        res.map(|s| s.into_owned()).unwrap_or_else(|e| {
            errs.push(e);
            String::new()
        })
    };
    let service = key("service", f.service, false);
    let severity = key("severity", f.severity, true);
    let threshold = match present(f.threshold_per_minute.map(RawValue::get)) {
        None => Err((
            "threshold_per_minute",
            "required column is missing".to_string(),
        )),
        Some(v) => float("threshold_per_minute", v).and_then(|t| {
            if t.is_finite() && t > 0.0 {
                Ok(t)
            } else {
                Err((
                    "threshold_per_minute",
                    format!("must be finite and > 0, got {t}"),
                ))
            }
        }),
    };
    let active = present(f.active.map(RawValue::get)).map_or(Ok(1), |v| flag("active", v));
    let updated_at =
        present(f.updated_at.map(RawValue::get)).map_or(Ok(now), |v| datetime("updated_at", v));
    let (threshold, active, updated_at) = (
        threshold.map_err(|e| errs.push(e)).unwrap_or(0.0),
        active.map_err(|e| errs.push(e)).unwrap_or(1),
        updated_at.map_err(|e| errs.push(e)).unwrap_or(now),
    );
    if errs.is_empty() {
        Ok(ThresholdRow {
            service,
            severity,
            threshold_per_minute: threshold,
            active,
            updated_at,
        })
    } else {
        Err(errs)
    }
}
