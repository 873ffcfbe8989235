//! ClickHouse's `JSONExtractString(json, key_or_index, ...)` and its
//! siblings (`Int`, `Float`, `Bool`, `Raw`, `JSONHas`) as UDFs, with
//! ClickHouse's answers (checked against chdb by tests/py/sql_battery.py):
//! string keys, 1-based indexes (negative: from the end, also into objects
//! in document order); a missing path or invalid JSON gives the type's
//! default (`''`, `0`). `JSONExtractString` of a number, boolean, object or
//! array is its JSON text (`null`: `''`); `JSONExtractInt`/`Float` read
//! numbers and numeric strings (a float truncated, out of range 0);
//! `JSONExtractBool` is 1 for `true` and non-zero integers. The walk keeps
//! values as raw text, so objects keep their key order.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, StringArray, StringBuilder, UInt8Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::functions::{arrays, is_int};

/// Every UDF of this module.
pub fn all() -> Vec<ScalarUDF> {
    [
        JsonKind::String,
        JsonKind::Int,
        JsonKind::Float,
        JsonKind::Bool,
        JsonKind::Raw,
        JsonKind::Has,
    ]
    .into_iter()
    .map(|k| ScalarUDF::new_from_impl(JsonExtract::new(k)))
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum JsonKind {
    String,
    Int,
    Float,
    Bool,
    Raw,
    Has,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonExtract {
    kind: JsonKind,
    name: String,
    signature: Signature,
}

impl JsonExtract {
    fn new(kind: JsonKind) -> JsonExtract {
        let name = match kind {
            JsonKind::String => "jsonextractstring",
            JsonKind::Int => "jsonextractint",
            JsonKind::Float => "jsonextractfloat",
            JsonKind::Bool => "jsonextractbool",
            JsonKind::Raw => "jsonextractraw",
            JsonKind::Has => "jsonhas",
        };
        JsonExtract {
            kind,
            name: name.into(),
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

enum Step {
    Key(String),
    Index(i64),
}

/// An object's entries in document order, values as raw JSON text.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<String, &'de RawValue>()? {
                    v.push(e);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// The 0-based position of ClickHouse's 1-based (or negative) index.
fn position(len: usize, i: i64) -> Option<usize> {
    match i {
        i if i > 0 => Some(i as usize - 1).filter(|&j| j < len),
        i if i < 0 => len.checked_sub(i.unsigned_abs() as usize),
        _ => None,
    }
}

/// The raw text of the value at `path` in the document `doc`.
fn walk<'a>(doc: &'a str, path: &[Step]) -> Option<&'a str> {
    let mut at: &'a str = serde_json::from_str::<&RawValue>(doc).ok()?.get();
    for s in path {
        at = match (s, at.as_bytes().first()?) {
            (Step::Key(k), b'{') => {
                let e = serde_json::from_str::<Entries<'a>>(at).ok()?.0;
                e.into_iter().find(|(n, _)| n == k)?.1.get()
            }
            (Step::Index(i), b'{') => {
                let e = serde_json::from_str::<Entries<'a>>(at).ok()?.0;
                e.get(position(e.len(), *i)?)?.1.get()
            }
            (Step::Index(i), b'[') => {
                let e: Vec<&'a RawValue> = serde_json::from_str(at).ok()?;
                e.get(position(e.len(), *i)?)?.get()
            }
            _ => return None,
        };
    }
    Some(at)
}

/// A JSON number's text as ClickHouse prints it (`12.50` -> `12.5`,
/// `1e3` -> `1000`).
fn number_text(raw: &str) -> String {
    if let Ok(i) = raw.parse::<i64>() {
        return i.to_string();
    }
    if let Ok(u) = raw.parse::<u64>() {
        return u.to_string();
    }
    match raw.parse::<f64>() {
        Ok(f) => {
            let s = format!("{f:?}");
            s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
        }
        Err(_) => raw.to_string(),
    }
}

fn string_of(raw: &str) -> String {
    match raw.as_bytes()[0] {
        b'"' => serde_json::from_str(raw).unwrap_or_default(),
        b'n' => String::new(),
        b'-' | b'0'..=b'9' => number_text(raw),
        _ => raw.to_string(),
    }
}

/// A number's text: the value itself, or a string's contents.
fn numeric_text(raw: &str) -> Option<String> {
    match raw.as_bytes()[0] {
        b'"' => serde_json::from_str(raw).ok(),
        b'-' | b'0'..=b'9' => Some(raw.to_string()),
        _ => None,
    }
}

fn int_of(raw: &str) -> i64 {
    let Some(t) = numeric_text(raw) else { return 0 };
    if let Ok(i) = t.parse::<i64>() {
        return i;
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() && f.abs() < 9.2e18 && t.parse::<u64>().is_err() => f.trunc() as i64,
        _ => 0,
    }
}

fn float_of(raw: &str) -> f64 {
    numeric_text(raw)
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(0.0)
}

fn bool_of(raw: &str) -> u8 {
    match raw {
        "true" => 1,
        r if r.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
            let nonzero = r
                .parse::<i64>()
                .map(|i| i != 0)
                .or(r.parse::<u64>().map(|u| u != 0));
            nonzero.unwrap_or(false) as u8
        }
        _ => 0,
    }
}

impl ScalarUDFImpl for JsonExtract {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        if t.is_empty() {
            return plan_err!("{} needs a JSON argument", self.name);
        }
        Ok(match self.kind {
            JsonKind::String | JsonKind::Raw => DataType::Utf8,
            JsonKind::Int => DataType::Int64,
            JsonKind::Float => DataType::Float64,
            JsonKind::Bool | JsonKind::Has => DataType::UInt8,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args.args, args.number_rows)?;
        let json = cast(&a[0], &DataType::Utf8)?;
        let json = json.as_any().downcast_ref::<StringArray>().expect("Utf8");
        let mut keys: Vec<(bool, ArrayRef)> = Vec::new();
        for k in &a[1..] {
            if is_int(k.data_type()) {
                keys.push((true, cast(k, &DataType::Int64)?));
            } else if matches!(
                k.data_type(),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            ) {
                keys.push((false, cast(k, &DataType::Utf8)?));
            } else {
                return exec_err!("{}: a path step must be a string or an integer", self.name);
            }
        }
        let path_of = |i: usize| -> Vec<Step> {
            keys.iter()
                .map(|(int, arr)| {
                    if *int {
                        let v = arr.as_any().downcast_ref::<Int64Array>().expect("Int64");
                        Step::Index(v.value(i))
                    } else {
                        let v = arr.as_any().downcast_ref::<StringArray>().expect("Utf8");
                        Step::Key(v.value(i).to_string())
                    }
                })
                .collect()
        };
        let found = |i: usize| -> Option<&str> {
            if json.is_null(i) {
                return None;
            }
            walk(json.value(i), &path_of(i))
        };
        let rows = json.len();
        let out: ArrayRef = match self.kind {
            JsonKind::String | JsonKind::Raw => {
                let mut b = StringBuilder::new();
                for i in 0..rows {
                    match (found(i), self.kind) {
                        (Some(r), JsonKind::String) => b.append_value(string_of(r)),
                        (Some(r), _) => b.append_value(r),
                        (None, _) => b.append_value(""),
                    }
                }
                Arc::new(b.finish())
            }
            JsonKind::Int => Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| found(i).map_or(0, int_of)),
            )),
            JsonKind::Float => Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| found(i).map_or(0.0, float_of)),
            )),
            JsonKind::Bool => Arc::new(UInt8Array::from_iter_values(
                (0..rows).map(|i| found(i).map_or(0, bool_of)),
            )),
            JsonKind::Has => Arc::new(UInt8Array::from_iter_values(
                (0..rows).map(|i| found(i).is_some() as u8),
            )),
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(doc: &'a str, path: &[Step]) -> Option<&'a str> {
        walk(doc, path)
    }

    #[test]
    fn clickhouse_answers() {
        let doc =
            r#"{"a":12.50,"b":true,"c":null,"d":{"z":1,"b":2},"e":[1,"x"],"f":1e3,"g":"12.7"}"#;
        let k = |s: &str| Step::Key(s.into());
        assert_eq!(string_of(at(doc, &[k("a")]).unwrap()), "12.5");
        assert_eq!(string_of(at(doc, &[k("b")]).unwrap()), "true");
        assert_eq!(string_of(at(doc, &[k("c")]).unwrap()), "");
        assert_eq!(string_of(at(doc, &[k("d")]).unwrap()), r#"{"z":1,"b":2}"#);
        assert_eq!(string_of(at(doc, &[k("f")]).unwrap()), "1000");
        assert_eq!(at(doc, &[k("e"), Step::Index(-1)]), Some(r#""x""#));
        assert_eq!(at(doc, &[k("d"), Step::Index(1)]), Some("1"));
        assert_eq!(int_of(at(doc, &[k("g")]).unwrap()), 12);
        assert_eq!(int_of(at(doc, &[k("b")]).unwrap()), 0);
        assert_eq!(int_of("12345678901234567890"), 0);
        assert_eq!(float_of(at(doc, &[k("g")]).unwrap()), 12.7);
        assert_eq!(bool_of("1"), 1);
        assert_eq!(bool_of("12.7"), 0);
        assert_eq!(at("not json", &[]), None);
        assert_eq!(at(doc, &[k("zz")]), None);
    }
}
