//! ClickHouse functions that DataFusion has no equivalent of, as UDFs:
//! `round` with ClickHouse's half-to-even rounding of Float64
//! (`ch_round`), `ch_float_array(x, ...)` (the Array(Float64) that
//! `quantiles` returns), `ch_bool` (ClickHouse's truth of a number); the
//! `JSONExtract*`/`JSONHas` family is in [`super::json`].

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Float64Builder, Int64Array, ListBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Field;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Every UDF of this module.
pub fn all() -> Vec<ScalarUDF> {
    let mut v = vec![
        ScalarUDF::new_from_impl(ChRound::new()),
        ScalarUDF::new_from_impl(FloatArray::new()),
        ScalarUDF::new_from_impl(ChBool::new()),
    ];
    v.extend(super::json::all());
    v
}

pub(super) fn arrays(args: &[ColumnarValue], rows: usize) -> Result<Vec<ArrayRef>> {
    args.iter().map(|a| a.to_array(rows)).collect()
}

pub(super) fn is_int(t: &DataType) -> bool {
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

/// `ch_bool(x)`: ClickHouse's truth of a condition, for the places where
/// DataFusion wants a Boolean (`WHERE`, `HAVING`, `ON`, `CASE WHEN`) and
/// ClickHouse takes any number (`WHERE JSONHas(metadata, 'k')`,
/// `WHERE active`): a number is true when it is not 0; NULL stays NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ChBool {
    signature: Signature,
}

impl ChBool {
    fn new() -> ChBool {
        ChBool {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ChBool {
    fn name(&self) -> &str {
        "ch_bool"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        match &t[0] {
            DataType::Boolean | DataType::Null => Ok(DataType::Boolean),
            x if x.is_numeric() => Ok(DataType::Boolean),
            other => plan_err!("a condition must be a number or a boolean, got {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args.args, args.number_rows)?;
        if a[0].data_type() == &DataType::Boolean {
            return Ok(ColumnarValue::Array(a[0].clone()));
        }
        let x = cast(&a[0], &DataType::Float64)?;
        let x = x.as_any().downcast_ref::<Float64Array>().expect("Float64");
        let out: BooleanArray = x.iter().map(|v| v.map(|v| v != 0.0)).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
