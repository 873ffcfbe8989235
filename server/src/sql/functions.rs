//! ClickHouse functions that DataFusion has no equivalent of, as UDFs:
//! `round` with ClickHouse's half-to-even rounding of Float64
//! (`ch_round`), `ch_float_array(x, ...)` (the Array(Float64) that
//! `quantiles` returns), and the `JSONExtract*`/`JSONHas` family.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Float64Builder, Int64Array, ListBuilder, StringArray, UInt8Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Field;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

/// Every UDF of this module.
pub fn all() -> Vec<ScalarUDF> {
    let mut v = vec![
        ScalarUDF::new_from_impl(ChRound::new()),
        ScalarUDF::new_from_impl(FloatArray::new()),
    ];
    for kind in [
        JsonKind::String,
        JsonKind::Int,
        JsonKind::Float,
        JsonKind::Bool,
        JsonKind::Raw,
        JsonKind::Has,
    ] {
        v.push(ScalarUDF::new_from_impl(JsonExtract::new(kind)));
    }
    v
}

fn arrays(args: &[ColumnarValue], rows: usize) -> Result<Vec<ArrayRef>> {
    args.iter().map(|a| a.to_array(rows)).collect()
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

/// `ch_round(x, n)`: ClickHouse's `round`. Floats are scaled by 10^n,
/// rounded half to even and unscaled; integers are returned unchanged for
/// n >= 0 and rounded half to even at 10^-n otherwise.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ChRound {
    signature: Signature,
}

impl ChRound {
    fn new() -> ChRound {
        ChRound {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ChRound {
    fn name(&self) -> &str {
        "ch_round"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        match &t[0] {
            x if is_int(x) => Ok(DataType::Int64),
            x if x.is_numeric() || x.is_null() => Ok(DataType::Float64),
            other => plan_err!("round expects a number, got {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args.args, args.number_rows)?;
        let n = cast(&a[1], &DataType::Int64)?;
        let n = n
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("cast to Int64");
        let out: ArrayRef = if is_int(a[0].data_type()) {
            let x = cast(&a[0], &DataType::Int64)?;
            let x = x.as_any().downcast_ref::<Int64Array>().expect("Int64");
            Arc::new(
                (0..x.len())
                    .map(|i| {
                        if x.is_null(i) || n.is_null(i) {
                            return None;
                        }
                        let (v, d) = (x.value(i), n.value(i));
                        if d >= 0 {
                            return Some(v);
                        }
                        let p = 10f64.powi((-d).min(18) as i32);
                        Some(((v as f64 / p).round_ties_even() * p) as i64)
                    })
                    .collect::<Int64Array>(),
            )
        } else {
            let x = cast(&a[0], &DataType::Float64)?;
            let x = x.as_any().downcast_ref::<Float64Array>().expect("Float64");
            Arc::new(
                (0..x.len())
                    .map(|i| {
                        if x.is_null(i) || n.is_null(i) {
                            return None;
                        }
                        let p = 10f64.powi(n.value(i).clamp(-30, 30) as i32);
                        Some((x.value(i) * p).round_ties_even() / p)
                    })
                    .collect::<Float64Array>(),
            )
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `ch_float_array(x, ...)`: its arguments as one Array(Float64) per row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatArray {
    signature: Signature,
}

impl FloatArray {
    fn new() -> FloatArray {
        FloatArray {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FloatArray {
    fn name(&self) -> &str {
        "ch_float_array"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _t: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Float64,
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let cols = arrays(&args.args, args.number_rows)?
            .iter()
            .map(|a| cast(a, &DataType::Float64))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut b = ListBuilder::new(Float64Builder::new());
        for i in 0..args.number_rows {
            for c in &cols {
                let c = c.as_any().downcast_ref::<Float64Array>().expect("Float64");
                b.values().append_option(c.is_valid(i).then(|| c.value(i)));
            }
            b.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
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

/// `JSONExtractString(json, key_or_index, ...)` and its siblings, as
/// ClickHouse defines them: string keys, 1-based (negative: from the end)
/// indexes; a missing path or a value of another type gives the type's
/// default (`''`, `0`).
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

fn walk<'a>(mut v: &'a Value, path: &[Step]) -> Option<&'a Value> {
    for s in path {
        v = match (s, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) if *i > 0 => a.get(*i as usize - 1)?,
            (Step::Index(i), Value::Array(a)) if *i < 0 => {
                a.get(a.len().checked_sub(i.unsigned_abs() as usize)?)?
            }
            (Step::Index(i), Value::Object(m)) if *i > 0 => m.values().nth(*i as usize - 1)?,
            _ => return None,
        };
    }
    Some(v)
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
        let rows = json.len();
        let mut found: Vec<Option<Value>> = Vec::with_capacity(rows);
        for i in 0..rows {
            if json.is_null(i) {
                found.push(None);
                continue;
            }
            let path: Vec<Step> = keys
                .iter()
                .map(|(int, arr)| {
                    if *int {
                        let v = arr.as_any().downcast_ref::<Int64Array>().expect("Int64");
                        Step::Index(v.value(i))
                    } else {
                        let v = arr.as_any().downcast_ref::<StringArray>().expect("Utf8");
                        Step::Key(v.value(i).to_string())
                    }
                })
                .collect();
            let doc: Option<Value> = serde_json::from_str(json.value(i)).ok();
            found.push(doc.as_ref().and_then(|d| walk(d, &path)).cloned());
        }
        let out: ArrayRef = match self.kind {
            JsonKind::String => Arc::new(
                found
                    .iter()
                    .map(|v| match v {
                        Some(Value::String(s)) => s.clone(),
                        _ => String::new(),
                    })
                    .map(Some)
                    .collect::<StringArray>(),
            ),
            JsonKind::Raw => Arc::new(
                found
                    .iter()
                    .map(|v| Some(v.as_ref().map(|v| v.to_string()).unwrap_or_default()))
                    .collect::<StringArray>(),
            ),
            JsonKind::Int => Arc::new(
                found
                    .iter()
                    .map(|v| match v {
                        Some(Value::Number(n)) => n
                            .as_i64()
                            .or_else(|| n.as_f64().map(|f| f as i64))
                            .or(Some(0)),
                        Some(Value::Bool(b)) => Some(*b as i64),
                        _ => Some(0),
                    })
                    .collect::<Int64Array>(),
            ),
            JsonKind::Float => Arc::new(
                found
                    .iter()
                    .map(|v| match v {
                        Some(Value::Number(n)) => n.as_f64().or(Some(0.0)),
                        Some(Value::Bool(b)) => Some(*b as u8 as f64),
                        _ => Some(0.0),
                    })
                    .collect::<Float64Array>(),
            ),
            JsonKind::Bool => Arc::new(
                found
                    .iter()
                    .map(|v| match v {
                        Some(Value::Bool(b)) => Some(*b as u8),
                        Some(Value::Number(n)) => Some((n.as_f64() != Some(0.0)) as u8),
                        _ => Some(0),
                    })
                    .collect::<UInt8Array>(),
            ),
            JsonKind::Has => Arc::new(
                found
                    .iter()
                    .map(|v| Some(v.is_some() as u8))
                    .collect::<UInt8Array>(),
            ),
        };
        Ok(ColumnarValue::Array(out))
    }
}
