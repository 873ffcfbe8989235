//! The ClickHouse dialect, parsed by sqlparser and rewritten into what
//! DataFusion plans: ClickHouse function names and forms (`count()`,
//! `quantile(0.9)(x)`, `if`, `multiIf`, `INTERVAL 10 MINUTE`, `/` as float
//! division, ...) become DataFusion expressions or this module's UDFs.
//! Anything else that DataFusion does not know is refused when planning.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, Expr, FormatClause, Function, FunctionArg,
    FunctionArgExpr, FunctionArguments, Query, SetExpr, Statement, UnaryOperator, Value, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::{ClickHouseDialect, GenericDialect};
use datafusion::sql::sqlparser::parser::Parser;

use super::SqlError;

/// Output formats of the Query API (ClickHouse's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    Json,
    JsonEachRow,
    Csv,
    CsvWithNames,
    Tsv,
}

impl OutFormat {
    pub fn parse(name: &str) -> Result<OutFormat, SqlError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "json" => OutFormat::Json,
            "jsoneachrow" | "ndjson" => OutFormat::JsonEachRow,
            "csv" => OutFormat::Csv,
            "csvwithnames" => OutFormat::CsvWithNames,
            "tsv" | "tabseparated" => OutFormat::Tsv,
            _ => {
                return Err(SqlError::Bad(format!(
                    "FORMAT {name} is not supported (JSON, JSONEachRow, CSV, CSVWithNames, TSV are)"
                )))
            }
        })
    }
}

/// A parsed, rewritten query and the format it asked for.
pub struct Parsed {
    pub statement: Statement,
    pub format: Option<OutFormat>,
}

/// Parses one read-only query and rewrites it for DataFusion. `now` (Unix
/// seconds) is what `now()` and `today()` mean in it.
pub fn parse(sql: &str, now: i64) -> Result<Parsed, SqlError> {
    let (sql, trailing) = trailing_format(sql);
    let dialect = ClickHouseDialect {};
    let mut stmts = Parser::parse_sql(&dialect, sql)
        .map_err(|e| SqlError::Bad(format!("could not parse the query: {e}")))?;
    if stmts.len() != 1 {
        return Err(SqlError::Bad(format!(
            "expected exactly one statement, got {}",
            stmts.len()
        )));
    }
    let mut statement = stmts.remove(0);
    let format = match &mut statement {
        Statement::Query(q) => {
            if q.settings.is_some() {
                return Err(SqlError::Bad("SETTINGS is not supported".into()));
            }
            match q.format_clause.take() {
                Some(FormatClause::Identifier(id)) => Some(OutFormat::parse(&id.value)?),
                Some(FormatClause::Null) => {
                    return Err(SqlError::Bad("FORMAT Null is not supported".into()))
                }
                None => trailing.map(OutFormat::parse).transpose()?,
            }
        }
        _ => {
            return Err(SqlError::Bad(
                "only SELECT queries are allowed (the Query API is read-only)".into(),
            ))
        }
    };
    let mut err = None;
    let _ = visit_expressions_mut(&mut statement, |e| match rewrite(e, now) {
        Ok(()) => ControlFlow::Continue(()),
        Err(x) => {
            err = Some(x);
            ControlFlow::Break(())
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let mut conditions = Conditions(None);
    let _ = statement.visit(&mut conditions);
    if let Some(e) = conditions.0 {
        return Err(e);
    }
    Ok(Parsed { statement, format })
}

/// ClickHouse takes any number as a condition (`WHERE JSONHas(m, 'k')`,
/// `HAVING countIf(x)`), DataFusion only a Boolean: each `WHERE` and
/// `HAVING` operand that is not a comparison or another predicate becomes
/// `ch_bool(...)` (comparisons stay as they are, so the scan's pushdown
/// still sees them).
struct Conditions(Option<SqlError>);

impl VisitorMut for Conditions {
    type Break = ();

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Err(e) = truthy_set(&mut q.body) {
            self.0 = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn truthy_set(s: &mut SetExpr) -> Result<(), SqlError> {
    match s {
        SetExpr::Select(sel) => {
            for e in [sel.selection.as_mut(), sel.having.as_mut()]
                .into_iter()
                .flatten()
            {
                truthy(e)?;
            }
            Ok(())
        }
        SetExpr::SetOperation { left, right, .. } => {
            truthy_set(left)?;
            truthy_set(right)
        }
        _ => Ok(()),
    }
}

fn truthy(e: &mut Expr) -> Result<(), SqlError> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And | BinaryOperator::Or,
            right,
        } => {
            truthy(left)?;
            truthy(right)
        }
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: inner,
        }
        | Expr::Nested(inner) => truthy(inner),
        Expr::BinaryOp { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::Exists { .. } => Ok(()),
        other => {
            *other = expr(&format!("ch_bool({other})"))?;
            Ok(())
        }
    }
}

/// Parses rewritten text: standard SQL (its parts were rewritten already,
/// innermost first), in the generic dialect DataFusion plans.
/// A final `FORMAT <name>` taken off the text: sqlparser reads
/// `SELECT 1 FORMAT JSON` (no FROM) as a column aliased `FORMAT`.
fn trailing_format(sql: &str) -> (&str, Option<&str>) {
    let t = sql.trim_end().trim_end_matches(';').trim_end();
    let Some((head, name)) = t.rsplit_once(char::is_whitespace) else {
        return (sql, None);
    };
    let head = head.trim_end();
    let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric());
    match head
        .len()
        .checked_sub(6)
        .and_then(|i| head.get(i..).map(|k| (i, k)))
    {
        Some((i, kw)) if is_name && kw.eq_ignore_ascii_case("format") => {
            let before = &head[..i];
            if before.ends_with(char::is_whitespace) || before.ends_with(')') {
                return (before, Some(name));
            }
            (sql, None)
        }
        _ => (sql, None),
    }
}

fn expr(text: &str) -> Result<Expr, SqlError> {
    Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::Bad(format!("rewriting {text:?}: {e}")))
}

/// The plain positional arguments of a call, as SQL text in parentheses.
fn args_of(list: &FunctionArguments) -> Result<Vec<String>, SqlError> {
    match list {
        FunctionArguments::None => Ok(vec![]),
        FunctionArguments::Subquery(q) => Ok(vec![format!("({q})")]),
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(format!("({e})")),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Ok("*".into()),
                other => Err(SqlError::Bad(format!("unsupported argument {other}"))),
            })
            .collect(),
    }
}

fn arity(name: &str, args: &[String], n: std::ops::RangeInclusive<usize>) -> Result<(), SqlError> {
    if n.contains(&args.len()) {
        Ok(())
    } else {
        Err(SqlError::Bad(format!(
            "{name} takes {} to {} arguments, got {}",
            n.start(),
            n.end(),
            args.len()
        )))
    }
}

fn rewrite(e: &mut Expr, now: i64) -> Result<(), SqlError> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Divide,
            right,
        } => {
            // ClickHouse's `/` always divides as Float64.
            *e = expr(&format!(
                "CAST(({left}) AS DOUBLE) / CAST(({right}) AS DOUBLE)"
            ))?;
        }
        Expr::Interval(iv) => {
            // `INTERVAL 10 MINUTE` -> `INTERVAL '10 MINUTE'` (DataFusion's form).
            if let (Expr::Value(v), Some(unit)) = (iv.value.as_ref(), &iv.leading_field) {
                if let Value::Number(n, _) = &v.value {
                    let text = format!("{n} {unit}");
                    *iv.value = Expr::value(Value::SingleQuotedString(text));
                    iv.leading_field = None;
                }
            }
        }
        Expr::Function(f) => {
            if let Some(new) = function(f, now)? {
                *e = expr(&new)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The DataFusion text of a ClickHouse function call, if it differs.
fn function(f: &Function, now: i64) -> Result<Option<String>, SqlError> {
    if f.over.is_some() || f.name.0.len() != 1 {
        return Ok(None);
    }
    let name = f.name.to_string().to_ascii_lowercase();
    let distinct = matches!(&f.args, FunctionArguments::List(l) if l.duplicate_treatment.is_some());
    let a = args_of(&f.args)?;
    let params = args_of(&f.parameters)?;
    let quantile = |p: &str, x: &str| format!("percentile_cont({x}, {p})");
    let text = match name.as_str() {
        // Counts are UInt64, as in ClickHouse.
        "count" if a.is_empty() => "CAST(count(*) AS BIGINT UNSIGNED)".to_string(),
        "uniq" | "uniqexact" | "uniqcombined" | "uniqhll12" => {
            arity(&name, &a, 1..=1)?;
            format!("CAST(count(DISTINCT {}) AS BIGINT UNSIGNED)", a[0])
        }
        "countif" => {
            arity(&name, &a, 1..=1)?;
            format!(
                "CAST(count(CASE WHEN ch_bool({}) THEN 1 END) AS BIGINT UNSIGNED)",
                a[0]
            )
        }
        "sumif" | "avgif" | "minif" | "maxif" => {
            arity(&name, &a, 2..=2)?;
            format!(
                "{}(CASE WHEN ch_bool({}) THEN {} END)",
                &name[..3],
                a[1],
                a[0]
            )
        }
        "median" => {
            arity(&name, &a, 1..=1)?;
            quantile("0.5", &a[0])
        }
        "quantile" => {
            arity(&name, &a, 1..=1)?;
            arity("quantile's level", &params, 0..=1)?;
            quantile(params.first().map_or("0.5", |p| p.as_str()), &a[0])
        }
        "quantiles" => {
            arity(&name, &a, 1..=1)?;
            if params.is_empty() {
                return Err(SqlError::Bad(
                    "quantiles needs levels: quantiles(0.5, 0.9)(x)".into(),
                ));
            }
            let each: Vec<String> = params.iter().map(|p| quantile(p, &a[0])).collect();
            format!("ch_float_array({})", each.join(", "))
        }
        "tostartofminute" | "tostartofhour" | "tostartofday" => {
            arity(&name, &a, 1..=1)?;
            format!("date_trunc('{}', {})", &name[9..], a[0])
        }
        "tostartofmonth" | "tostartofyear" => {
            arity(&name, &a, 1..=1)?;
            format!("CAST(date_trunc('{}', {}) AS DATE)", &name[9..], a[0])
        }
        "tostartoffiveminutes" | "tostartoffiveminute" => {
            arity(&name, &a, 1..=1)?;
            format!("date_bin(INTERVAL '5 minutes', {})", a[0])
        }
        "tostartoffifteenminutes" => {
            arity(&name, &a, 1..=1)?;
            format!("date_bin(INTERVAL '15 minutes', {})", a[0])
        }
        "tostartofinterval" => {
            arity(&name, &a, 2..=2)?;
            format!("date_bin({}, {})", a[1], a[0])
        }
        "todate" => {
            arity(&name, &a, 1..=1)?;
            format!("CAST({} AS DATE)", a[0])
        }
        "todatetime" => {
            arity(&name, &a, 1..=1)?;
            format!("to_timestamp_seconds({})", a[0])
        }
        "tounixtimestamp" => {
            arity(&name, &a, 1..=1)?;
            format!("CAST(to_timestamp_seconds({}) AS BIGINT)", a[0])
        }
        "toyear" | "tomonth" | "todayofmonth" | "tohour" | "tominute" | "tosecond" => {
            arity(&name, &a, 1..=1)?;
            let part = match name.as_str() {
                "todayofmonth" => "day",
                other => &other[2..],
            };
            format!("CAST(date_part('{part}', {}) AS BIGINT)", a[0])
        }
        "now" => {
            arity(&name, &a, 0..=0)?;
            format!("to_timestamp_seconds({now})")
        }
        "today" => {
            arity(&name, &a, 0..=0)?;
            format!("CAST(to_timestamp_seconds({now}) AS DATE)")
        }
        "lowerutf8" | "upperutf8" => {
            arity(&name, &a, 1..=1)?;
            format!("{}({})", &name[..5], a[0])
        }
        "length" => {
            arity(&name, &a, 1..=1)?;
            format!("octet_length({})", a[0])
        }
        "empty" | "notempty" => {
            arity(&name, &a, 1..=1)?;
            let op = if name == "empty" { "=" } else { "<>" };
            format!("(octet_length({}) {op} 0)", a[0])
        }
        "position" | "locate" => {
            arity(&name, &a, 2..=2)?;
            format!("strpos({}, {})", a[0], a[1])
        }
        "positioncaseinsensitive" => {
            arity(&name, &a, 2..=2)?;
            format!("strpos(lower({}), lower({}))", a[0], a[1])
        }
        "match" => {
            arity(&name, &a, 2..=2)?;
            format!("regexp_like({}, {})", a[0], a[1])
        }
        "round" => {
            arity(&name, &a, 1..=2)?;
            format!(
                "ch_round({}, {})",
                a[0],
                a.get(1).map_or("0", |s| s.as_str())
            )
        }
        "if" => {
            arity(&name, &a, 3..=3)?;
            format!(
                "CASE WHEN ch_bool({}) THEN {} ELSE {} END",
                a[0], a[1], a[2]
            )
        }
        "multiif" => {
            if a.len() < 3 || a.len() % 2 == 0 {
                return Err(SqlError::Bad(
                    "multiIf takes cond1, then1, ..., else (an odd number >= 3 of arguments)"
                        .into(),
                ));
            }
            let mut s = "CASE".to_string();
            for pair in a[..a.len() - 1].chunks(2) {
                s.push_str(&format!(" WHEN ch_bool({}) THEN {}", pair[0], pair[1]));
            }
            s.push_str(&format!(" ELSE {} END", a[a.len() - 1]));
            s
        }
        "tostring" => cast(&name, &a, "VARCHAR")?,
        "toint64" | "toint32" | "touint64" | "touint32" => cast(&name, &a, "BIGINT")?,
        "tofloat64" | "tofloat32" => cast(&name, &a, "DOUBLE")?,
        "intdiv" => {
            arity(&name, &a, 2..=2)?;
            format!(
                "CAST(floor(CAST({} AS DOUBLE) / CAST({} AS DOUBLE)) AS BIGINT)",
                a[0], a[1]
            )
        }
        "jsonextractstring" | "jsonextractint" | "jsonextractfloat" | "jsonextractbool"
        | "jsonextractraw" | "jsonhas" => format!("{name}({})", a.join(", ")),
        _ => {
            if !params.is_empty() {
                return Err(SqlError::Bad(format!(
                    "parametric function {name}(...)(...) is not supported"
                )));
            }
            return Ok(None);
        }
    };
    if distinct && !text.contains("count(DISTINCT") {
        return Err(SqlError::Bad(format!(
            "{name}(DISTINCT ...) is not supported"
        )));
    }
    Ok(Some(text))
}

fn cast(name: &str, a: &[String], ty: &str) -> Result<String, SqlError> {
    arity(name, a, 1..=1)?;
    Ok(format!("CAST({} AS {ty})", a[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(q: &str) -> String {
        parse(q, 1_700_000_000).unwrap().statement.to_string()
    }

    #[test]
    fn clickhouse_forms_become_datafusion_forms() {
        assert!(sql("SELECT count() FROM t").contains("CAST(count(*) AS BIGINT UNSIGNED)"));
        assert!(sql("SELECT quantile(0.9)(x) FROM t").contains("percentile_cont((x), (0.9))"));
        assert!(sql("SELECT if(a, 1, 2) FROM t")
            .contains("CASE WHEN ch_bool((a)) THEN (1) ELSE (2) END"));
        assert!(sql("SELECT 1 FROM t WHERE a AND b = 1").contains("WHERE ch_bool(a) AND b = 1"));
        assert!(sql("SELECT now() - INTERVAL 10 MINUTE").contains("INTERVAL '10 MINUTE'"));
        assert!(sql("SELECT a / b FROM t").contains("CAST((a) AS DOUBLE)"));
        let p = parse("SELECT 1 FORMAT CSVWithNames", 0).unwrap();
        assert_eq!(p.format, Some(OutFormat::CsvWithNames));
        let p = parse("SELECT a FROM t FORMAT TSV;", 0).unwrap();
        assert_eq!(p.format, Some(OutFormat::Tsv));
        let p = parse("SELECT 'x FORMAT JSON' AS f", 0).unwrap();
        assert_eq!(p.format, None);
    }

    #[test]
    fn writes_and_unknown_forms_are_refused() {
        for q in [
            "INSERT INTO system_logs VALUES (1)",
            "DROP TABLE system_logs",
            "SELECT 1; SELECT 2",
            "SELECT 1 FORMAT Parquet",
            "SELECT histogram(5)(x) FROM t",
        ] {
            assert!(parse(q, 0).is_err(), "{q}");
        }
    }
}
