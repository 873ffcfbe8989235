//! Elasticsearch `_bulk`: `index` and `create` actions whose documents
//! become `system_logs` rows (ECS fields, dotted or nested, and the Events
//! API's aliases), and the per-item answer Elasticsearch gives.

use std::borrow::Cow;

use logpulse_model::ingest::value::{datetime, first, string, FieldError};
use logpulse_model::ingest::{Import, LogFields, Parsed};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value as Json};

use super::severity;

/// What happened to one action of a bulk body.
#[derive(Debug)]
pub struct Item {
    pub action: String,
    pub index: String,
    pub id: String,
    /// `None`: stored; else why it was refused (quarantined or unsupported).
    pub error: Option<(&'static str, String)>,
}

/// Parses a bulk body: rows into `out`, and an item per action. An action
/// line that is not JSON, or names an unknown action, refuses the whole
/// request (nothing is stored), as Elasticsearch does.
pub fn to_rows<'a>(
    body: &'a [u8],
    default_index: &str,
    import: &Import,
    out: &mut Parsed<'a>,
) -> Result<Vec<Item>, String> {
    let mut lines = body
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    let mut items = Vec::new();
    while let Some(line) = lines.next() {
        let (action, meta) = action(line)?;
        let index = meta_str(&meta, "_index").unwrap_or_else(|| default_index.to_string());
        let id = meta_str(&meta, "_id").unwrap_or_else(|| format!("{}-{}", import.id, items.len()));
        let mut item = Item {
            action: action.clone(),
            index,
            id,
            error: None,
        };
        match action.as_str() {
            "index" | "create" => {
                let doc = lines.next().ok_or("the last action has no document")?;
                item.error = document(doc, import, out)
                    .err()
                    .map(|r| ("document_parsing_exception", r));
            }
            "update" => {
                lines.next();
                item.error = Some(("action_request_validation_exception", unsupported(&action)));
            }
            "delete" => {
                item.error = Some(("action_request_validation_exception", unsupported(&action)))
            }
            other => {
                return Err(format!(
                    "malformed action/metadata line: unknown action {other:?}"
                ))
            }
        }
        items.push(item);
    }
    Ok(items)
}

fn unsupported(action: &str) -> String {
    format!("logpulse stores logs append-only: the {action} action is not supported")
}

fn action(line: &[u8]) -> Result<(String, serde_json::Map<String, Json>), String> {
    let bad = |e: &dyn std::fmt::Display| format!("malformed action/metadata line: {e}");
    let v: serde_json::Map<String, Json> = serde_json::from_slice(line).map_err(|e| bad(&e))?;
    let mut it = v.into_iter();
    match (it.next(), it.next()) {
        (Some((action, Json::Object(meta))), None) => Ok((action, meta)),
        _ => Err(bad(&"expected one action with an object")),
    }
}

fn meta_str(meta: &serde_json::Map<String, Json>, key: &str) -> Option<String> {
    match meta.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One document's row, or the reason it went to quarantine.
fn document<'a>(doc: &'a [u8], import: &Import, out: &mut Parsed<'a>) -> Result<(), String> {
    let (fields, errs) = match std::str::from_utf8(doc) {
        Err(e) => (
            LogFields::default(),
            vec![("", format!("invalid UTF-8 at byte {}", e.valid_up_to()))],
        ),
        Ok(text) => match serde_json::from_str::<Doc>(text) {
            Err(e) => (
                LogFields::default(),
                vec![("", format!("invalid document: {e}"))],
            ),
            Ok(d) => map(d),
        },
    };
    let raw = || String::from_utf8_lossy(doc).into_owned();
    out.push_log(fields, errs, raw, import)
}

/// The top-level fields of a document, keys borrowed where unescaped.
struct Doc<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Doc<'a> {
    /// The raw JSON text of the field `key`.
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.get())
    }
}

/// A field under a dotted name (`service.name`) or nested (`{"service":{"name":..}}`).
fn ecs<'a>(d: &Doc<'a>, parent: &str, child: &str, used: &mut Vec<String>) -> Option<&'a str> {
    let dotted = format!("{parent}.{child}");
    if let Some(v) = first(&[d.get(&dotted)]) {
        used.push(dotted);
        return Some(v);
    }
    let obj = d.get(parent).filter(|v| v.starts_with('{'))?;
    let inner: Doc = serde_json::from_str(obj).ok()?;
    let v = first(&[inner.get(child)])?;
    if inner.0.len() == 1 {
        used.push(parent.to_string());
    }
    Some(v)
}

fn map<'a>(d: Doc<'a>) -> (LogFields<'a>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut used: Vec<String> = Vec::new();
    let plain = |keys: &[&str], used: &mut Vec<String>| {
        let k = keys
            .iter()
            .find(|k| first(&[d.get(k)]).is_some_and(|v| !v.starts_with('{')))?;
        used.push(k.to_string());
        d.get(k)
    };
    let ts = plain(
        &["timestamp", "@timestamp", "time", "ts", "created"],
        &mut used,
    );
    let service = ecs(&d, "service", "name", &mut used)
        .or_else(|| plain(&["service", "app_name", "app", "service_name"], &mut used));
    let level = ecs(&d, "log", "level", &mut used)
        .or_else(|| plain(&["severity", "levelname", "level", "log_level"], &mut used));
    let host = ecs(&d, "host", "name", &mut used)
        .or_else(|| plain(&["server_id", "host", "hostname"], &mut used));
    let message = plain(&["message", "msg", "formatted_message"], &mut used);
    let error = plain(&["error_code"], &mut used)
        .or_else(|| ecs(&d, "error", "type", &mut used))
        .or_else(|| ecs(&d, "error", "code", &mut used))
        .or_else(|| ecs(&d, "exception", "type", &mut used));
    let resource =
        plain(&["resource_id"], &mut used).or_else(|| ecs(&d, "resource", "id", &mut used));
    let meta = plain(&["metadata"], &mut used);
    let mut col = |c: &'static str, v: Option<&'a str>, json: bool| {
        v.and_then(|v| string(c, v, json).map_err(|e| errs.push(e)).ok())
    };
    let mut f = LogFields {
        timestamp: ts.map(|t| datetime("timestamp", t).map_err(|(_, m)| m)),
        service: col("service", service, false),
        severity: col("severity", level, false),
        message: col("message", message, false),
        server_id: col("server_id", host, false),
        error_code: col("error_code", error, false),
        resource_id: col("resource_id", resource, false),
        metadata: col("metadata", meta, true),
    };
    f.severity = Some(match f.severity {
        Some(s) => Cow::Owned(severity::from_text(&s).into_owned()),
        None => Cow::Borrowed(severity::DEFAULT),
    });
    if f.metadata.is_none() {
        let rest: Vec<String> =
            d.0.iter()
                .filter(|(k, _)| !used.iter().any(|u| u == k))
                .map(|(k, v)| format!("{}:{}", Json::String(k.to_string()), v.get()))
                .collect();
        if !rest.is_empty() {
            let text = format!("{{{}}}", rest.join(","));
            f.metadata = Some(Cow::Owned(logpulse_model::ingest::canonical_json(&text)));
        }
    }
    (f, errs)
}

impl<'de: 'a, 'a> Deserialize<'de> for Doc<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Doc<'de>, M::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Key<'de>>()? {
                    out.push((k.0, m.next_value::<&'de RawValue>()?));
                }
                Ok(Doc(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A map key, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The bulk answer: `took`, `errors`, an item per action.
pub fn response(items: &[Item], took_ms: u64) -> Json {
    let errors = items.iter().any(|it| it.error.is_some());
    let mut seq = 0u64;
    let items: Vec<Json> = items
        .iter()
        .map(|it| {
            let body = match &it.error {
                None => {
                    seq += 1;
                    json!({"_index": it.index, "_id": it.id, "_version": 1, "result": "created",
                        "_shards": {"total": 1, "successful": 1, "failed": 0},
                        "_seq_no": seq - 1, "_primary_term": 1, "status": 201})
                }
                Some((kind, reason)) => json!({"_index": it.index, "_id": it.id, "status": 400,
                    "error": {"type": kind, "reason": reason}}),
            };
            json!({ it.action.clone(): body })
        })
        .collect();
    json!({"took": took_ms, "errors": errors, "items": items})
}

/// The answer to `GET /es/`: the version document clients check on connect.
pub fn version_document(cluster_uuid: &str) -> Json {
    json!({
        "name": "logpulse",
        "cluster_name": "logpulse",
        "cluster_uuid": cluster_uuid,
        "version": {
            "number": "8.11.0",
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "logpulse",
            "build_date": "2023-11-04T10:04:57.184859352Z",
            "build_snapshot": false,
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })
}
