//! Turning raw JSON values into column values, per the contract's rules.

use std::borrow::Cow;

use super::canonical::canonical_json;
use crate::time::{from_unix_f64, parse_datetime};

/// A column's problem: (column, message).
pub type FieldError = (&'static str, String);

/// A raw value (valid JSON text) that is absent or JSON `null` counts as absent.
pub fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|r| *r != "null")
}

/// The first present value among a column and its aliases.
pub fn first<'a>(vals: &[Option<&'a str>]) -> Option<&'a str> {
    vals.iter().copied().find_map(present)
}

/// A String column: strings as their text, numbers and booleans as their
/// JSON text; objects and arrays only where `allow_json`, as their canonical
/// text ([`canonical_json`]).
pub fn string<'a>(
    col: &'static str,
    raw: &'a str,
    allow_json: bool,
) -> Result<Cow<'a, str>, FieldError> {
    match raw.as_bytes()[0] {
        b'"' => {
            let inner = &raw[1..raw.len() - 1];
            match memchr::memchr(b'\\', inner.as_bytes()) {
                None => Ok(Cow::Borrowed(inner)),
                Some(first) => match unescape_simple(inner, first) {
                    Some(s) => Ok(Cow::Owned(s)),
                    None => serde_json::from_str::<String>(raw)
                        .map(Cow::Owned)
                        .map_err(|e| (col, e.to_string())),
                },
            }
        }
        b'{' | b'[' if allow_json => Ok(Cow::Owned(canonical_json(raw))),
        b'{' | b'[' => Err((col, "expected a string, got a JSON object or array".into())),
        _ => Ok(Cow::Borrowed(raw)),
    }
}

/// Unescapes the inside of a JSON string literal that serde_json already
/// validated, starting at its first backslash. `None` for `\\u` escapes (left
/// to serde_json, which also handles surrogate pairs).
fn unescape_simple(inner: &str, first: usize) -> Option<String> {
    let b = inner.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    let mut next = Some(first);
    while let Some(p) = next {
        out.push_str(&inner[i..p]);
        out.push(match b.get(p + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => return None,
        });
        i = p + 2;
        next = memchr::memchr(b'\\', &b[i..]).map(|q| q + i);
    }
    out.push_str(&inner[i..]);
    Some(out)
}

/// A DateTime column: a string in any accepted form, or Unix seconds.
pub fn datetime(col: &'static str, raw: &str) -> Result<u32, FieldError> {
    match raw.as_bytes()[0] {
        b'"' => {
            let s = string(col, raw, false)?;
            parse_datetime(&s).map_err(|e| (col, e))
        }
        b'-' | b'0'..=b'9' => {
            if let Ok(i) = raw.parse::<i64>() {
                parse_datetime(&i.to_string()).map_err(|e| (col, e))
            } else {
                let f: f64 = raw
                    .parse()
                    .map_err(|_| (col, format!("invalid DateTime {raw}")))?;
                from_unix_f64(f).map_err(|e| (col, e))
            }
        }
        _ => Err((col, format!("invalid DateTime {raw}"))),
    }
}

/// A Float64 column: a JSON number or a numeric string.
pub fn float(col: &'static str, raw: &str) -> Result<f64, FieldError> {
    let text = if raw.starts_with('"') {
        string(col, raw, false)?.trim().to_string()
    } else {
        raw.to_string()
    };
    text.parse::<f64>()
        .map_err(|_| (col, format!("invalid Float64 {raw}")))
}

/// A UInt8 boolean-ish column: 0/1, true/false (also as strings).
pub fn flag(col: &'static str, raw: &str) -> Result<u8, FieldError> {
    let text = if raw.starts_with('"') {
        string(col, raw, false)?.trim().to_ascii_lowercase()
    } else {
        raw.to_string()
    };
    match text.as_str() {
        "1" | "true" => Ok(1),
        "0" | "false" => Ok(0),
        _ => Err((col, format!("expected 0 or 1, got {raw}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_unescape_agrees_with_serde_json() {
        for lit in [
            r#""{\"ip\": \"192.168.1.1\"}""#,
            r#""a\\b\/c\n\r\t\b\f""#,
            r#""\\\\\"""#,
            r#""ünï\"cødé\\""#,
            r#""mixed \u00e9 and \n""#,
            r#""pair \ud83d\ude00""#,
        ] {
            let want: String = serde_json::from_str(lit).unwrap();
            assert_eq!(string("c", lit, false).unwrap(), want, "{lit}");
        }
    }
}
