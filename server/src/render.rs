//! Pipe results in Tinybird's JSON, CSV and NDJSON formats.

use std::fmt::Write;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use logpulse_model::time::write_datetime;

/// A cell of a result row.
pub enum Cell<'a> {
    Str(&'a str),
    DateTime(u32),
    UInt(u64),
    Float(f64),
}

/// A `system_logs` row's cells, in the data source's column order.
pub fn log_cells<'a>(l: &'a logpulse_model::LogRow<'_>) -> Vec<Cell<'a>> {
    vec![
        Cell::DateTime(l.timestamp),
        Cell::Str(&l.server_id),
        Cell::Str(&l.service),
        Cell::Str(&l.severity),
        Cell::Str(&l.message),
        Cell::Str(&l.error_code),
        Cell::Str(&l.resource_id),
        Cell::Str(&l.metadata),
    ]
}

/// An output format, from the pipe name's extension.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Json,
    Csv,
    Ndjson,
}

impl Format {
    pub fn from_ext(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "ndjson" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// A query result ready to render.
pub struct Table<'a> {
    pub columns: &'static [(&'static str, &'static str)],
    pub rows: Vec<Vec<Cell<'a>>>,
    pub rows_before_limit: u64,
    pub elapsed_secs: f64,
    pub rows_read: u64,
    pub bytes_read: u64,
}

fn json_str(out: &mut String, s: &str) {
    // serde_json's escaping, written straight into the buffer.
    out.push_str(&serde_json::to_string(s).expect("string serializes"));
}

fn json_float(out: &mut String, f: f64) {
    if f.is_finite() {
        let mut b = ryu_like(f);
        if b.ends_with(".0") {
            b.truncate(b.len() - 2);
        }
        out.push_str(&b);
    } else {
        out.push_str("null");
    }
}

fn ryu_like(f: f64) -> String {
    serde_json::to_string(&f).expect("finite float serializes")
}

fn json_cell(out: &mut String, c: &Cell) {
    match c {
        Cell::Str(s) => json_str(out, s),
        Cell::DateTime(t) => {
            out.push('"');
            write_datetime(out, *t);
            out.push('"');
        }
        Cell::UInt(n) => {
            let _ = write!(out, "{n}");
        }
        Cell::Float(f) => json_float(out, *f),
    }
}

/// A row as a JSON object of its columns.
pub fn json_object(out: &mut String, columns: &[(&str, &str)], row: &[Cell]) {
    out.push('{');
    for (i, ((name, _), cell)) in columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, name);
        out.push(':');
        json_cell(out, cell);
    }
    out.push('}');
}

fn csv_cell(out: &mut String, c: &Cell) {
    match c {
        Cell::Str(s) => {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        }
        // Numbers bare and DateTimes quoted, exactly as in JSON.
        other => json_cell(out, other),
    }
}

impl Table<'_> {
    pub fn render(&self, format: Format) -> Response {
        let mut out = String::with_capacity(256 + self.rows.len() * 256);
        match format {
            Format::Json => {
                out.push_str("{\"meta\":[");
                for (i, (name, ty)) in self.columns.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{{\"name\":\"{name}\",\"type\":\"{ty}\"}}");
                }
                out.push_str("],\"data\":[");
                for (i, row) in self.rows.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_object(&mut out, self.columns, row);
                }
                let _ = write!(
                    out,
                    "],\"rows\":{},\"rows_before_limit_at_least\":{},\"statistics\":{{\"elapsed\":",
                    self.rows.len(),
                    self.rows_before_limit
                );
                json_float(&mut out, self.elapsed_secs);
                let _ = write!(
                    out,
                    ",\"rows_read\":{},\"bytes_read\":{}}}}}",
                    self.rows_read, self.bytes_read
                );
                ([(header::CONTENT_TYPE, "application/json")], out).into_response()
            }
            Format::Ndjson => {
                for row in &self.rows {
                    json_object(&mut out, self.columns, row);
                    out.push('\n');
                }
                ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
            }
            Format::Csv => {
                let names: Vec<String> = self
                    .columns
                    .iter()
                    .map(|(n, _)| format!("\"{n}\""))
                    .collect();
                out.push_str(&names.join(","));
                out.push('\n');
                for row in &self.rows {
                    for (i, c) in row.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        csv_cell(&mut out, c);
                    }
                    out.push('\n');
                }
                ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
            }
        }
    }
}
