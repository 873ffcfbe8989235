//! Query results in ClickHouse's output formats: `JSON` (meta, data, rows,
//! statistics; 64-bit integers unquoted), `JSONEachRow`, `CSV`,
//! `CSVWithNames` and `TSV`. DateTimes are `YYYY-MM-DD HH:MM:SS`, Booleans
//! ClickHouse's 1/0, NULL `null` in JSON and `\N` in CSV/TSV.

use std::fmt::Write;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::clickhouse::OutFormat;
use super::Answer;

/// One value of a result.
enum Val {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    DateTime(i64),
    Date(i32),
    List(Vec<Val>),
}

/// The ClickHouse name of an Arrow type, for `meta`.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int8 => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::UInt8 | DataType::Boolean => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Float64 | DataType::Decimal128(..) => "Float64".into(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "String".into(),
        DataType::Timestamp(..) => "DateTime".into(),
        DataType::Date32 | DataType::Date64 => "Date".into(),
        DataType::List(f) | DataType::LargeList(f) => {
            format!("Array({})", type_name(f.data_type()))
        }
        DataType::Null => "Nullable(Nothing)".into(),
        other => other.to_string(),
    }
}

fn val(a: &dyn Array, i: usize) -> Val {
    if a.is_null(i) {
        return Val::Null;
    }
    match a.data_type() {
        DataType::Int8 => Val::Int(a.as_primitive::<Int8Type>().value(i) as i64),
        DataType::Int16 => Val::Int(a.as_primitive::<Int16Type>().value(i) as i64),
        DataType::Int32 => Val::Int(a.as_primitive::<Int32Type>().value(i) as i64),
        DataType::Int64 => Val::Int(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Val::UInt(a.as_primitive::<UInt8Type>().value(i) as u64),
        DataType::UInt16 => Val::UInt(a.as_primitive::<UInt16Type>().value(i) as u64),
        DataType::UInt32 => Val::UInt(a.as_primitive::<UInt32Type>().value(i) as u64),
        DataType::UInt64 => Val::UInt(a.as_primitive::<UInt64Type>().value(i)),
        DataType::Boolean => Val::UInt(a.as_boolean().value(i) as u64),
        DataType::Float32 => Val::Float(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => Val::Float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Val::Str(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Val::Str(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Val::Str(a.as_string_view().value(i).to_string()),
        DataType::Date32 => Val::Date(a.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(unit, _) => Val::DateTime(match unit {
            TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
            TimeUnit::Millisecond => a
                .as_primitive::<TimestampMillisecondType>()
                .value(i)
                .div_euclid(1_000),
            TimeUnit::Microsecond => a
                .as_primitive::<TimestampMicrosecondType>()
                .value(i)
                .div_euclid(1_000_000),
            TimeUnit::Nanosecond => a
                .as_primitive::<TimestampNanosecondType>()
                .value(i)
                .div_euclid(1_000_000_000),
        }),
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(i);
            Val::List((0..items.len()).map(|j| val(items.as_ref(), j)).collect())
        }
        _ => {
            let opts = FormatOptions::default();
            match ArrayFormatter::try_new(a, &opts) {
                Ok(f) => Val::Str(f.value(i).to_string()),
                Err(_) => Val::Null,
            }
        }
    }
}

fn datetime(out: &mut String, secs: i64) {
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d %H:%M:%S"));
        }
        None => out.push_str("1970-01-01 00:00:00"),
    }
}

fn date(out: &mut String, days: i32) {
    match chrono::DateTime::from_timestamp(days as i64 * 86_400, 0) {
        Some(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        None => out.push_str("1970-01-01"),
    }
}

fn float(out: &mut String, f: f64) {
    if f.is_finite() {
        let s = serde_json::to_string(&f).expect("finite float serializes");
        out.push_str(s.strip_suffix(".0").unwrap_or(&s));
    } else if f.is_nan() {
        out.push_str("nan");
    } else if f > 0.0 {
        out.push_str("inf");
    } else {
        out.push_str("-inf");
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("string serializes"));
}

fn json(out: &mut String, v: &Val) {
    match v {
        Val::Null => out.push_str("null"),
        Val::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Val::UInt(n) => {
            let _ = write!(out, "{n}");
        }
        Val::Float(f) if f.is_finite() => float(out, *f),
        Val::Float(_) => out.push_str("null"),
        Val::Str(s) => json_str(out, s),
        Val::DateTime(s) => {
            out.push('"');
            datetime(out, *s);
            out.push('"');
        }
        Val::Date(d) => {
            out.push('"');
            date(out, *d);
            out.push('"');
        }
        Val::List(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(out, x);
            }
            out.push(']');
        }
    }
}

/// A value as CSV (`quote`) or TSV text.
fn text(out: &mut String, v: &Val, csv: bool) {
    match v {
        Val::Null => out.push_str("\\N"),
        Val::Int(_) | Val::UInt(_) => json(out, v),
        Val::Float(f) => float(out, *f),
        Val::DateTime(_) | Val::Date(_) if !csv => {
            let mut s = String::new();
            json(&mut s, v);
            out.push_str(s.trim_matches('"'));
        }
        Val::DateTime(_) | Val::Date(_) => json(out, v),
        Val::Str(s) if csv => {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        }
        Val::Str(s) => {
            for c in s.chars() {
                match c {
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
        }
        Val::List(_) => {
            let mut s = String::new();
            json(&mut s, v);
            let s = s.replace('"', "'");
            if csv {
                out.push('"');
                out.push_str(&s.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(&s);
            }
        }
    }
}

/// Renders an answer; returns the body and its content type.
pub fn render(a: &Answer, format: OutFormat) -> (String, &'static str) {
    let names: Vec<&str> = a
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let mut out = String::with_capacity(256 + a.rows * 128);
    let each_row = |out: &mut String, f: &mut dyn FnMut(&mut String, usize, Val)| {
        let mut first = true;
        for b in &a.batches {
            for r in 0..b.num_rows() {
                if !first && format == OutFormat::Json {
                    out.push(',');
                }
                first = false;
                for (c, col) in b.columns().iter().enumerate() {
                    f(out, c, val(col.as_ref(), r));
                }
                match format {
                    OutFormat::Json => out.push('}'),
                    OutFormat::JsonEachRow => out.push_str("}\n"),
                    _ => out.push('\n'),
                }
            }
        }
    };
    match format {
        OutFormat::Json | OutFormat::JsonEachRow => {
            if format == OutFormat::Json {
                out.push_str("{\"meta\":[");
                for (i, f) in a.schema.fields().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"name\":");
                    json_str(&mut out, f.name());
                    out.push_str(",\"type\":");
                    json_str(&mut out, &type_name(f.data_type()));
                    out.push('}');
                }
                out.push_str("],\"data\":[");
            }
            each_row(&mut out, &mut |out, c, v| {
                out.push(if c == 0 { '{' } else { ',' });
                json_str(out, names[c]);
                out.push(':');
                json(out, &v);
            });
            if format == OutFormat::Json {
                let _ = write!(
                    out,
                    "],\"rows\":{},\"rows_before_limit_at_least\":{},\"statistics\":{{\"elapsed\":",
                    a.rows, a.rows
                );
                float(&mut out, a.elapsed.as_secs_f64());
                let _ = write!(
                    out,
                    ",\"rows_read\":{},\"bytes_read\":{}}}}}",
                    a.rows_read, a.bytes_read
                );
                return (out, "application/json");
            }
            (out, "application/x-ndjson")
        }
        OutFormat::Csv | OutFormat::CsvWithNames | OutFormat::Tsv => {
            let csv = format != OutFormat::Tsv;
            if format == OutFormat::CsvWithNames {
                let quoted: Vec<String> = names
                    .iter()
                    .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
                    .collect();
                out.push_str(&quoted.join(","));
                out.push('\n');
            }
            let sep = if csv { ',' } else { '\t' };
            each_row(&mut out, &mut |out, c, v| {
                if c > 0 {
                    out.push(sep);
                }
                text(out, &v, csv);
            });
            let ct = if csv {
                "text/csv; charset=utf-8"
            } else {
                "text/tab-separated-values; charset=utf-8"
            };
            (out, ct)
        }
    }
}
