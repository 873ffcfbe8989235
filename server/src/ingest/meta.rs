//! A record's `metadata` object, written as serde_json writes a `Map` of
//! its members (compact, keys in sorted order, a repeated key's last value)
//! without building the map: the shippers' mappings gather a few members
//! per record, and a map and its values per record cost more than the rest
//! of the mapping.

use serde_json::Value as Json;

/// A member's value.
pub enum Val<'r> {
    /// A JSON string.
    Str(&'r str),
    /// A JSON string, owned.
    String(String),
    /// Any JSON value.
    Json(Json),
    /// Text that is already compact JSON in serde_json's form.
    Raw(&'r str),
}

/// The members of one metadata object, in the order they were given.
#[derive(Default)]
pub struct Members<'r>(Vec<(&'r str, Val<'r>)>);

impl<'r> Members<'r> {
    pub fn push(&mut self, key: &'r str, v: Val<'r>) {
        self.0.push((key, v));
    }

    /// The object's text; `None` when it has no member.
    pub fn text(mut self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        // Stable: among equal keys the last given stays last.
        self.0.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::with_capacity(64);
        out.push(b'{');
        let n = self.0.len();
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i + 1 < n && self.0[i + 1].0 == *k {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            string(&mut out, k);
            out.push(b':');
            match v {
                Val::Str(s) => string(&mut out, s),
                Val::String(s) => string(&mut out, s),
                Val::Json(j) => serde_json::to_writer(&mut out, j).expect("a Vec takes it"),
                Val::Raw(r) => out.extend_from_slice(r.as_bytes()),
            }
        }
        out.push(b'}');
        Some(String::from_utf8(out).expect("JSON text of str parts is UTF-8"))
    }
}

/// A JSON string, escaped as serde_json escapes.
pub fn string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("a Vec takes it");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    #[test]
    fn the_text_is_what_serde_json_writes_for_the_same_map() {
        let mut m = Members::default();
        m.push("zeta", Val::Str("last \"quoted\"\n"));
        m.push("alpha", Val::Json(json!({"b": 1, "a": [true, null]})));
        m.push("mid", Val::String("é\u{1}".into()));
        m.push("alpha", Val::Raw(r#"{"x":2}"#));
        m.push("Mid", Val::Json(json!(1.5)));
        let mut map = Map::new();
        map.insert("zeta".into(), json!("last \"quoted\"\n"));
        map.insert("alpha".into(), json!({"b": 1, "a": [true, null]}));
        map.insert("mid".into(), json!("é\u{1}"));
        map.insert("alpha".into(), json!({"x": 2}));
        map.insert("Mid".into(), json!(1.5));
        assert_eq!(m.text().unwrap(), Json::Object(map).to_string());
        assert_eq!(Members::default().text(), None);
    }
}
