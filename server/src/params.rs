//! Request parameters from the query string and, for pipes, a form-encoded
//! or JSON body. Parsing never fails as a whole: a bad value is a 400 that
//! names its parameter when the handler asks for it.

use logpulse_model::time::parse_datetime;

use crate::error::ApiError;

#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn from_query(query: Option<&str>) -> Params {
        let mut p = Params::default();
        if let Some(q) = query {
            p.add_form(q.as_bytes());
        }
        p
    }

    /// Adds `a=1&b=2` pairs (invalid percent-escapes are kept literally).
    pub fn add_form(&mut self, body: &[u8]) {
        self.pairs
            .extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }

    /// Adds the members of a JSON object body; strings as they are, other
    /// scalars as their JSON text, arrays as repeated parameters.
    pub fn add_json(&mut self, body: &[u8]) -> Result<(), ApiError> {
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))?;
        let serde_json::Value::Object(obj) = v else {
            return Err(ApiError::BadRequest(
                "JSON request body must be an object".into(),
            ));
        };
        for (k, v) in obj {
            let items = match v {
                serde_json::Value::Array(a) => a,
                other => vec![other],
            };
            for item in items {
                let text = match item {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => continue,
                    other => other.to_string(),
                };
                self.pairs.push((k.clone(), text));
            }
        }
        Ok(())
    }

    /// The first non-empty value of a parameter (empty means absent).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    pub fn datetime(&self, name: &str) -> Result<Option<u32>, ApiError> {
        self.get(name)
            .map(|v| {
                parse_datetime(v)
                    .map_err(|e| ApiError::BadRequest(format!("parameter {name}: {e}")))
            })
            .transpose()
    }

    /// An Int parameter within `min..=max`.
    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: i64 = v.trim().parse().map_err(|_| {
            ApiError::BadRequest(format!("parameter {name}: {v:?} is not an integer"))
        })?;
        if n < min || n > max {
            return Err(ApiError::BadRequest(format!(
                "parameter {name}: {n} is outside {min}..={max}"
            )));
        }
        Ok(n)
    }

    /// A finite Float parameter within `min..=max`.
    pub fn float(&self, name: &str, default: f64, min: f64, max: f64) -> Result<f64, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let x: f64 = v
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| {
                ApiError::BadRequest(format!("parameter {name}: {v:?} is not a number"))
            })?;
        if x < min || x > max {
            return Err(ApiError::BadRequest(format!(
                "parameter {name}: {x} is outside {min}..={max}"
            )));
        }
        Ok(x)
    }

    /// A boolean parameter: true/false/1/0.
    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(v) => Err(ApiError::BadRequest(format!(
                "parameter {name}: {v:?} is not true/false/1/0"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_bodies() {
        let mut p = Params::from_query(Some(
            "limit=5&severity=&start_time=2023-06-01%2000:00:00&x=%zz",
        ));
        assert_eq!(p.int("limit", 100, 1, 10000).unwrap(), 5);
        assert_eq!(p.get("severity"), None);
        assert_eq!(p.datetime("start_time").unwrap(), Some(1_685_577_600));
        assert!(p.int("limit", 100, 6, 10).is_err());
        p.add_json(br#"{"service":"auth","limit2":7,"wait":true}"#)
            .unwrap();
        assert_eq!(p.get("service"), Some("auth"));
        assert_eq!(p.int("limit2", 0, 0, 10).unwrap(), 7);
        assert!(p.bool("wait").unwrap());
        let err = Params::from_query(Some("end_time=nope"))
            .datetime("end_time")
            .unwrap_err();
        assert!(err.to_string().contains("end_time"));
    }
}
