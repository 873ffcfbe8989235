//! `POST /v0/datasources?mode=append&name=<ds>`: Tinybird's import of an
//! NDJSON or CSV file (multipart, as the `tb` CLI and verdin send it, or the
//! raw body), through the same validation, quarantine and limits as the
//! Events API. `url=` is refused: logpulse fetches nothing from the network.

use std::borrow::Cow;
use std::cell::Cell;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Json;
use logpulse_model::ingest::{parse_body, Import, Parsed};
use logpulse_model::{DataSource, Durability};
use serde_json::{json, Map, Value};

use crate::app::{AppState, Caller};
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::datasources::describe;
use crate::routes::intake::{self, Decoder};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FileFormat {
    Ndjson,
    Csv,
}

impl FileFormat {
    fn parse(s: &str) -> Result<FileFormat, ApiError> {
        match s.to_ascii_lowercase().as_str() {
            "ndjson" | "json" => Ok(FileFormat::Ndjson),
            "csv" => Ok(FileFormat::Csv),
            other => Err(ApiError::BadRequest(format!(
                "format {other:?} is not supported: use ndjson or csv"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileFormat::Ndjson => "ndjson",
            FileFormat::Csv => "csv",
        }
    }
}

pub async fn post(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let decoder = match check(&caller, &headers) {
        Ok(d) => d,
        Err(e) => return Err(intake::refuse(&app, body, e).await),
    };
    let ds = decoder.ds;
    let done = intake::ingest(&app, &headers, body, Durability::Synced, decoder).await?;
    let (format, bytes) = done.out;
    let (ok, quarantined) = (done.successful, done.quarantined);
    let import_id = crate::auth::generate_token()[3..19].to_string();
    Ok(Json(json!({
        "id": import_id,
        "import_id": import_id,
        "job_id": import_id,
        "status": "done",
        "datasource": describe(&app, ds).await?,
        "error": false,
        "invalid_lines": 0,
        "quarantine_rows": quarantined,
        "successful_rows": ok,
        "quarantined_rows": quarantined,
        "blocks": [{
            "block_id": import_id,
            "process_return": [{
                "lines": ok,
                "parser": format.name(),
                "quarantine": quarantined,
                "invalid_lines": 0,
                "empty_lines": 0,
                "bytes": bytes,
            }],
        }],
    })))
}

/// The parameters of an import its token may make, as a decoder for the
/// intake pipeline.
fn check(caller: &Caller, headers: &HeaderMap) -> Result<ImportBody, ApiError> {
    let p: &Params = &caller.params;
    if p.get("url").is_some() {
        return Err(ApiError::BadRequest(
            "url= is not supported: logpulse fetches nothing from the network; send the file in the body".into(),
        ));
    }
    let mode = p.get("mode").unwrap_or("create");
    if mode != "append" {
        return Err(ApiError::BadRequest(format!(
            "mode={mode} is not supported: logpulse's data sources are fixed; use mode=append"
        )));
    }
    let name = p
        .get("name")
        .ok_or_else(|| ApiError::BadRequest("missing parameter name".into()))?;
    let ds = match DataSource::from_name(name) {
        Some(ds) if !ds.is_quarantine() => ds,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "{name} is a quarantine data source and takes no appends"
            )))
        }
        None => {
            return Err(ApiError::NotFound(format!(
                "data source {name:?} not found"
            )))
        }
    };
    caller.who.require("DATASOURCES:APPEND", name)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(ImportBody {
        ds,
        format: p.get("format").map(FileFormat::parse).transpose()?,
        content_type,
        seen: Cell::new((FileFormat::Ndjson, 0)),
    })
}

/// An imported file: multipart or raw, NDJSON or CSV (turned into NDJSON
/// so that it passes the one validation of the Events API).
struct ImportBody {
    ds: DataSource,
    format: Option<FileFormat>,
    content_type: String,
    /// The file's format and size, as `transcode` found them.
    seen: Cell<(FileFormat, usize)>,
}

impl ImportBody {
    /// The file's bytes and format.
    fn file<'a>(&self, data: &'a [u8]) -> Result<(&'a [u8], FileFormat), ApiError> {
        let ct = self.content_type.as_str();
        let (file, field) = if ct.starts_with("multipart/form-data") {
            let (field, file) = first_file(ct, data)?;
            (file, FileFormat::parse(&field).ok())
        } else {
            (data, None)
        };
        let guess = if ct.contains("csv") {
            FileFormat::Csv
        } else {
            FileFormat::Ndjson
        };
        Ok((file, self.format.or(field).unwrap_or(guess)))
    }
}

impl Decoder for ImportBody {
    type Out = (FileFormat, usize);
    fn transcode<'a>(&self, data: &'a [u8]) -> Result<Cow<'a, [u8]>, ApiError> {
        let (file, format) = self.file(data)?;
        self.seen.set((format, file.len()));
        match format {
            FileFormat::Ndjson => Ok(Cow::Borrowed(file)),
            FileFormat::Csv => csv_to_ndjson(self.ds, file).map(Cow::Owned),
        }
    }
    fn decode<'a>(
        self,
        ndjson: &'a [u8],
        import: &Import,
    ) -> Result<(Parsed<'a>, Self::Out), ApiError> {
        Ok((parse_body(self.ds, ndjson, import), self.seen.get()))
    }
}

/// The first part of a multipart/form-data body (RFC 7578) that carries
/// data, with its field name. Only what file uploads use: a boundary
/// parameter, parts with `Content-Disposition` headers, no nesting.
fn first_file<'a>(content_type: &str, body: &'a [u8]) -> Result<(String, &'a [u8]), ApiError> {
    let bad = |m: &str| ApiError::BadRequest(format!("invalid multipart body: {m}"));
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("no boundary in Content-Type"))?;
    let delim = format!("--{boundary}");
    let mut parts = split_on(body, delim.as_bytes()).into_iter().skip(1);
    for part in parts.by_ref() {
        if part.starts_with(b"--") {
            break; // the closing delimiter
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split = memchr::memmem::find(part, b"\r\n\r\n")
            .ok_or_else(|| bad("a part has no header end"))?;
        let (head, data) = (&part[..split], &part[split + 4..]);
        let head = String::from_utf8_lossy(head);
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .and_then(|l| l.split(';').find_map(|p| p.trim().strip_prefix("name=")))
            .map(|n| n.trim_matches('"').to_string())
            .unwrap_or_default();
        if !data.is_empty() {
            return Ok((name, data));
        }
    }
    Err(bad("no file part"))
}

/// `body` cut at each occurrence of `delim`.
fn split_on<'a>(body: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = memchr::memmem::find(rest, delim) {
        out.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
    }
    out.push(rest);
    out
}

/// CSV rows as NDJSON objects keyed by column, so that they pass the one
/// validation of the Events API. A first row made only of the data source's
/// column names is a header; otherwise cells are in the data source's
/// column order. Cells of numeric columns that are numbers stay numbers.
fn csv_to_ndjson(ds: DataSource, data: &[u8]) -> Result<Vec<u8>, ApiError> {
    let columns = ds.columns();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut out = Vec::with_capacity(data.len() * 2);
    let mut names: Vec<String> = columns.iter().map(|(n, _)| n.to_string()).collect();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| ApiError::BadRequest(format!("invalid CSV: {e}")))?;
        if i == 0
            && rec
                .iter()
                .all(|c| columns.iter().any(|(n, _)| *n == c.trim()))
        {
            names = rec.iter().map(|c| c.trim().to_string()).collect();
            continue;
        }
        let mut obj = Map::new();
        for (name, cell) in names.iter().zip(rec.iter()) {
            let ty = columns.iter().find(|(n, _)| n == name).map_or("", |c| c.1);
            let numeric = matches!(ty, "Float64" | "UInt8");
            let v = match serde_json::from_str::<Value>(cell) {
                Ok(n @ Value::Number(_)) if numeric => n,
                _ => Value::String(cell.to_string()),
            };
            obj.insert(name.clone(), v);
        }
        serde_json::to_writer(&mut out, &Value::Object(obj)).expect("writes to a Vec");
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_file_part() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"ndjson\"; filename=\"x\"\r\n\r\n{\"a\":1}\n\r\n--b--\r\n";
        let (name, data) = first_file("multipart/form-data; boundary=b", body).unwrap();
        assert_eq!((name.as_str(), data), ("ndjson", &b"{\"a\":1}\n"[..]));
        assert!(first_file("multipart/form-data", body).is_err());
    }

    #[test]
    fn csv_with_and_without_header() {
        let with = csv_to_ndjson(
            DataSource::Thresholds,
            b"service,severity,threshold_per_minute\napi,ERROR,5\n",
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&with).unwrap();
        assert_eq!(v["threshold_per_minute"], json!(5));
        assert_eq!(v["service"], "api");
        let without = csv_to_ndjson(
            DataSource::SystemLogs,
            b"2024-01-01 00:00:00,h1,api,error,\"a,b\"\n",
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&without).unwrap();
        assert_eq!(v["message"], "a,b");
        assert_eq!(v["server_id"], "h1");
    }
}
