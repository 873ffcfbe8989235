//! One `_bulk` document to a row's fields: ECS fields, dotted or nested,
//! and the Events API's aliases; what no column takes becomes `metadata`.

use std::borrow::Cow;

use logpulse_model::ingest::value::{datetime, first, string, FieldError};
use logpulse_model::ingest::{scan_flat, LogFields};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ingest::severity;

/// The top-level members of a document (key, raw JSON text of the value),
/// keys borrowed where unescaped. A repeated key keeps every occurrence;
/// lookups see the first.
#[derive(Debug)]
pub struct Doc<'a>(Vec<(Cow<'a, str>, &'a str)>);

impl<'a> Doc<'a> {
    /// Parses a document: the one-pass scanner for a flat object (the
    /// common case), else serde_json, which also words the error.
    pub fn parse(text: &'a str) -> Result<Doc<'a>, String> {
        let mut members = Vec::with_capacity(8);
        let flat = scan_flat(text, |k, v| {
            members.push((Cow::Borrowed(k), v));
            true
        });
        match flat {
            Some(()) => Ok(Doc(members)),
            None => serde_json::from_str::<Doc>(text).map_err(|e| format!("invalid document: {e}")),
        }
    }

    /// The raw JSON text of the member `key`.
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// Every member name a column may come from.
const KEYS: [&str; 33] = [
    "timestamp",
    "@timestamp",
    "time",
    "ts",
    "created", // 0-4
    "service.name",
    "service",
    "app_name",
    "app",
    "service_name", // 5-9
    "log.level",
    "log",
    "severity",
    "levelname",
    "level",
    "log_level", // 10-15
    "host.name",
    "host",
    "server_id",
    "hostname", // 16-19
    "message",
    "msg",
    "formatted_message", // 20-22
    "error_code",
    "error.type",
    "error",
    "error.code",
    "exception.type",
    "exception", // 23-28
    "resource_id",
    "resource.id",
    "resource", // 29-31
    "metadata", // 32
];

/// The index of `key` in [`KEYS`] (a match: every member of every
/// document is looked up).
fn slot(key: &str) -> Option<usize> {
    Some(match key {
        "timestamp" => 0,
        "@timestamp" => 1,
        "time" => 2,
        "ts" => 3,
        "created" => 4,
        "service.name" => 5,
        "service" => 6,
        "app_name" => 7,
        "app" => 8,
        "service_name" => 9,
        "log.level" => 10,
        "log" => 11,
        "severity" => 12,
        "levelname" => 13,
        "level" => 14,
        "log_level" => 15,
        "host.name" => 16,
        "host" => 17,
        "server_id" => 18,
        "hostname" => 19,
        "message" => 20,
        "msg" => 21,
        "formatted_message" => 22,
        "error_code" => 23,
        "error.type" => 24,
        "error" => 25,
        "error.code" => 26,
        "exception.type" => 27,
        "exception" => 28,
        "resource_id" => 29,
        "resource.id" => 30,
        "resource" => 31,
        "metadata" => 32,
        _ => return None,
    })
}

/// The first occurrence of each member of [`KEYS`], and which of them a
/// column took (a bit per slot).
struct Known<'a> {
    raw: [Option<&'a str>; KEYS.len()],
    used: u64,
}

impl<'a> Known<'a> {
    fn of(d: &Doc<'a>) -> Known<'a> {
        let mut k = Known {
            raw: [None; KEYS.len()],
            used: 0,
        };
        for (key, v) in &d.0 {
            if let Some(i) = slot(key) {
                k.raw[i].get_or_insert(*v);
            }
        }
        k
    }

    /// The first of `slots` whose value is present and not an object.
    fn plain(&mut self, slots: &[usize]) -> Option<&'a str> {
        slots.iter().find_map(|&i| {
            let v = first(&[self.raw[i]]).filter(|v| !v.starts_with('{'))?;
            self.used |= 1 << i;
            Some(v)
        })
    }

    /// A field under a dotted name (`service.name`, slot `dotted`) or
    /// nested (`{"service":{"name":..}}`, slot `parent`, member `child`).
    fn ecs(&mut self, dotted: usize, parent: usize, child: &str) -> Option<&'a str> {
        if let Some(v) = first(&[self.raw[dotted]]) {
            self.used |= 1 << dotted;
            return Some(v);
        }
        let obj = self.raw[parent].filter(|v| v.starts_with('{'))?;
        let inner: Doc = serde_json::from_str(obj).ok()?;
        let v = first(&[inner.get(child)])?;
        if inner.0.len() == 1 {
            self.used |= 1 << parent;
        }
        Some(v)
    }
}

/// The row's fields and the problems found with their types.
pub fn map<'a>(d: Doc<'a>) -> (LogFields<'a>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut k = Known::of(&d);
    let ts = k.plain(&[0, 1, 2, 3, 4]);
    let service = k.ecs(5, 6, "name").or_else(|| k.plain(&[6, 7, 8, 9]));
    let level = k
        .ecs(10, 11, "level")
        .or_else(|| k.plain(&[12, 13, 14, 15]));
    let host = k.ecs(16, 17, "name").or_else(|| k.plain(&[18, 17, 19]));
    let message = k.plain(&[20, 21, 22]);
    let error = k
        .plain(&[23])
        .or_else(|| k.ecs(24, 25, "type"))
        .or_else(|| k.ecs(26, 25, "code"))
        .or_else(|| k.ecs(27, 28, "type"));
    let resource = k.plain(&[29]).or_else(|| k.ecs(30, 31, "id"));
    let meta = k.plain(&[32]);
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
        // A level already in its stored form keeps its borrowed text.
        Some(s) if *severity::from_text(&s) == *s => s,
        Some(s) => Cow::Owned(severity::from_text(&s).into_owned()),
        None => Cow::Borrowed(severity::DEFAULT),
    });
    if f.metadata.is_none() {
        f.metadata = rest(&d, k.used).map(Cow::Owned);
    }
    (f, errs)
}

/// The members no column took (`used`: a bit per slot of [`KEYS`]), as
/// one canonical JSON object.
fn rest(d: &Doc, used: u64) -> Option<String> {
    let taken = |k: &str| slot(k).is_some_and(|i| used & (1 << i) != 0);
    let mut text = String::from("{");
    for (k, v) in d.0.iter().filter(|(k, _)| !taken(k)) {
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(&**k).expect("a string serializes"));
        text.push(':');
        text.push_str(v);
    }
    (text.len() > 1).then(|| {
        text.push('}');
        logpulse_model::ingest::canonical_json(&text)
    })
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
                    out.push((k.0, m.next_value::<&'de RawValue>()?.get()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_its_slot() {
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(slot(k), Some(i), "{k}");
        }
        assert_eq!(slot("services"), None);
    }

    /// The one-pass path and serde_json's give the same fields.
    #[test]
    fn both_parsers_map_a_document_alike() {
        let docs = [
            r#"{"@timestamp":"2026-11-30T10:00:00Z","service.name":"api","log.level":"warning","message":"m","x":1}"#,
            r#"{"timestamp":1700000000,"service":"a","service":"b","message":"dup","host.name":"h"}"#,
            r#"{"timestamp":1700000000,"app":"x","msg":"caf\u00e9 \"q\"","error.type":"E1","k":null,"b":true}"#,
            r#" { "ts" : 1700000000 , "service_name" : "s" , "message" : "" } "#,
        ];
        for text in docs {
            let fast = Doc::parse(text).unwrap();
            let slow: Doc = serde_json::from_str(text).unwrap();
            assert_eq!(fast.0, slow.0, "{text}");
            assert_eq!(
                format!("{:?}", map(fast)),
                format!("{:?}", map(slow)),
                "{text}"
            );
        }
        assert!(Doc::parse(r#"{"a":1,}"#)
            .unwrap_err()
            .starts_with("invalid document"));
    }
}
