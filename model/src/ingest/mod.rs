//! Parsing Events API bodies into rows: NDJSON splitting, per-row
//! validation, field aliases, and quarantine of rows that break a rule.
//! Shared by the daemon and `logpulse-replay`, so both accept exactly the
//! same input.

mod canonical;
mod logs;
mod scan;
mod thresholds;
pub mod value;

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::row::{DataSource, QuarantineRow, Row};

pub use canonical::canonical_json;
pub use logs::{check_log, parse_log, LogFields};
pub use scan::scan_flat;
pub use thresholds::parse_threshold;

/// Largest encoded row accepted.
pub const ROW_BYTES_MAX: usize = 1 << 20;

/// Largest raw line a quarantine row keeps (`c__raw`): a longer line is kept
/// cut at a character boundary, so that its quarantine row always fits in a
/// segment record (`segment::format::MAX_BODY_LEN`) and the valid rows of
/// the same request are stored.
pub const QUARANTINE_RAW_MAX: usize = 1 << 20;

/// The rows of one body, valid and quarantined, in line order.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub rows: Vec<Row<'a>>,
    pub successful: u64,
    pub quarantined: u64,
    /// The first few quarantine reasons, for summaries.
    pub reasons: Vec<String>,
}

/// Where a body came from and when: stamped on quarantine rows.
#[derive(Clone, Debug)]
pub struct Import<'a> {
    pub id: &'a str,
    pub now: u32,
}

/// Parses an Events API body for `ds` (system_logs or log_anomaly_thresholds).
/// Blank lines are skipped; a body that is one (possibly multi-line) JSON
/// object is one row; any line that is not a valid row is quarantined.
pub fn parse_body<'a>(ds: DataSource, body: &'a [u8], import: &Import) -> Parsed<'a> {
    // About one row per 256 bytes (a guess: counting the lines is a pass
    // over the body of its own).
    let mut out = Parsed {
        rows: Vec::with_capacity((body.len() / 256 + 1).min(1 << 16)),
        ..Default::default()
    };
    let (values, rest) = leading_values(body);
    for v in values {
        push_row(ds, v.get().as_bytes(), Some(v), import, &mut out);
    }
    for line in lines_of(rest) {
        let line = line.trim_ascii();
        if !line.is_empty() {
            push_row(ds, line, None, import, &mut out);
        }
    }
    out
}

/// The lines of a body (split at `\n`, SIMD-searched).
pub fn lines_of(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', body);
    std::iter::from_fn(move || {
        if start > body.len() {
            return None;
        }
        let end = ends.next().unwrap_or(body.len());
        let line = &body[start..end];
        start = end + 1;
        Some(line)
    })
}

/// A body whose first line is an incomplete JSON value (a pretty-printed
/// object, as `curl -d` examples send) is read as a stream of values: the
/// values that parse, and the rest of the body (from the end of the last of
/// them), which is split into lines. Any other body: no values, all of it.
fn leading_values(body: &[u8]) -> (Vec<&RawValue>, &[u8]) {
    let first = body
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty());
    match first.map(serde_json::from_slice::<&RawValue>) {
        Some(Err(e)) if e.is_eof() => {}
        _ => return (Vec::new(), body),
    }
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<&RawValue>();
    let mut end = 0;
    // A value that does not parse ends the stream: the valid values before
    // it are kept (quarantine never loses valid rows), the rest is lines.
    while let Some(Ok(v)) = stream.next() {
        values.push(v);
        end = stream.byte_offset();
    }
    (values, &body[end..])
}

fn push_row<'a>(
    ds: DataSource,
    line: &'a [u8],
    parsed: Option<&'a RawValue>,
    import: &Import,
    out: &mut Parsed<'a>,
) {
    let res = match std::str::from_utf8(line) {
        Err(e) => Err(vec![(
            "",
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )]),
        Ok(text) => {
            let fast = match (parsed, ds) {
                (Some(_), _) => None,
                (None, DataSource::Thresholds) => {
                    thresholds::parse_threshold_line(text, import.now)
                        .map(|r| r.map(Row::Threshold))
                }
                (None, _) => logs::parse_log_line(text).map(|r| r.map(Row::Log)),
            };
            if let Some(res) = fast {
                finish_row(ds, || quarantine_raw(line), res, import, out);
                return;
            }
            let raw = match parsed {
                Some(v) => Ok(v),
                None => serde_json::from_str::<&RawValue>(text)
                    .map_err(|e| vec![("", format!("invalid JSON: {e}"))]),
            };
            raw.and_then(|v| match ds {
                DataSource::Thresholds => parse_threshold(v, import.now).map(Row::Threshold),
                _ => parse_log(v).map(Row::Log),
            })
        }
    };
    finish_row(ds, || quarantine_raw(line), res, import, out);
}

impl<'a> Parsed<'a> {
    /// Adds a `system_logs` row mapped from a shipper's record: checked by
    /// the same rules as an Events API row ([`check_log`]), or quarantined
    /// with `raw()` (the record rendered as JSON) as its `c__raw`.
    /// `errs` holds problems the mapping found. `Err`: why it was quarantined.
    pub fn push_log(
        &mut self,
        fields: LogFields<'a>,
        errs: Vec<value::FieldError>,
        raw: impl FnOnce() -> String,
        import: &Import,
    ) -> Result<(), String> {
        let res = check_log(fields, errs).map(Row::Log);
        let raw = || quarantine_raw(raw().as_bytes());
        match finish_row(DataSource::SystemLogs, raw, res, import, self) {
            None => Ok(()),
            Some(reason) => Err(reason),
        }
    }
}

/// Keeps a row or quarantines it; the reason when quarantined.
fn finish_row<'a>(
    ds: DataSource,
    raw: impl FnOnce() -> String,
    res: Result<Row<'a>, Vec<value::FieldError>>,
    import: &Import,
    out: &mut Parsed<'a>,
) -> Option<String> {
    let errors = match res {
        Ok(row) => {
            out.successful += 1;
            out.rows.push(row);
            return None;
        }
        Err(errors) => errors,
    };
    out.quarantined += 1;
    let reason = errors
        .iter()
        .map(|(c, m)| match c.is_empty() {
            true => m.clone(),
            false => format!("{c}: {m}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if out.reasons.len() < 5 {
        out.reasons.push(reason.clone());
    }
    let q = QuarantineRow {
        insertion_date: import.now,
        error_column: errors.iter().map(|(c, _)| c.to_string()).collect(),
        error: errors.into_iter().map(|(_, m)| m).collect(),
        import_id: import.id.to_string(),
        raw: raw(),
    };
    out.rows.push(Row::Quarantine(
        ds.quarantine().unwrap_or(DataSource::SystemLogsQuarantine),
        q,
    ));
    Some(reason)
}

/// The raw text of a quarantined line, at most [`QUARANTINE_RAW_MAX`] bytes.
fn quarantine_raw(line: &[u8]) -> String {
    let mut head = &line[..line.len().min(QUARANTINE_RAW_MAX)];
    if head.len() < line.len() {
        // Cut inside a character: leave its first bytes out.
        if let Err(e) = std::str::from_utf8(head) {
            if e.error_len().is_none() {
                head = &head[..e.valid_up_to()];
            }
        }
    }
    let mut raw = String::from_utf8_lossy(head).into_owned();
    // Invalid bytes became 3-byte replacement characters: cut again.
    if raw.len() > QUARANTINE_RAW_MAX {
        let mut end = QUARANTINE_RAW_MAX;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        raw.truncate(end);
    }
    raw
}

/// Trims and checks a required key column.
pub(crate) fn key_column<'a>(
    col: &'static str,
    v: Cow<'a, str>,
    max: Option<usize>,
    upper: bool,
) -> Result<Cow<'a, str>, value::FieldError> {
    let trimmed = match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    };
    if trimmed.is_empty() {
        return Err((col, "must not be empty".into()));
    }
    if let Some(max) = max {
        if trimmed.len() > max {
            return Err((col, format!("longer than {max} bytes")));
        }
    }
    if upper && (!trimmed.is_ascii() || trimmed.bytes().any(|b| b.is_ascii_lowercase())) {
        return Ok(Cow::Owned(trimmed.to_uppercase()));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests;
