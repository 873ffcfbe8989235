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

/// Every member name a column may come from (ECS dotted names are
/// `Ecs*`): each member of a document is looked up once, into its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Timestamp,
    AtTimestamp,
    Time,
    Ts,
    Created,
    EcsServiceName,
    Service,
    AppName,
    App,
    ServiceName,
    EcsLogLevel,
    Log,
    Severity,
    Levelname,
    Level,
    LogLevel,
    EcsHostName,
    Host,
    ServerId,
    Hostname,
    Message,
    Msg,
    FormattedMessage,
    ErrorCode,
    EcsErrorType,
    Error,
    EcsErrorCode,
    EcsExceptionType,
    Exception,
    ResourceId,
    EcsResourceId,
    Resource,
    Metadata,
}

/// How many [`Slot`]s there are.
const SLOTS: usize = Slot::Metadata as usize + 1;

/// The slot of a member name (a match: every member of every document is
/// looked up).
fn slot(key: &str) -> Option<Slot> {
    use Slot::*;
    Some(match key {
        "timestamp" => Timestamp,
        "@timestamp" => AtTimestamp,
        "time" => Time,
        "ts" => Ts,
        "created" => Created,
        "service.name" => EcsServiceName,
        "service" => Service,
        "app_name" => AppName,
        "app" => App,
        "service_name" => ServiceName,
        "log.level" => EcsLogLevel,
        "log" => Log,
        "severity" => Severity,
        "levelname" => Levelname,
        "level" => Level,
        "log_level" => LogLevel,
        "host.name" => EcsHostName,
        "host" => Host,
        "server_id" => ServerId,
        "hostname" => Hostname,
        "message" => Message,
        "msg" => Msg,
        "formatted_message" => FormattedMessage,
        "error_code" => ErrorCode,
        "error.type" => EcsErrorType,
        "error" => Error,
        "error.code" => EcsErrorCode,
        "exception.type" => EcsExceptionType,
        "exception" => Exception,
        "resource_id" => ResourceId,
        "resource.id" => EcsResourceId,
        "resource" => Resource,
        "metadata" => Metadata,
        _ => return None,
    })
}

/// The first occurrence of each [`Slot`] among a document's members, and
/// which of them a column took (a bit per key).
struct Known<'a> {
    raw: [Option<&'a str>; SLOTS],
    used: u64,
}

impl<'a> Known<'a> {
    fn of(d: &Doc<'a>) -> Known<'a> {
        let mut k = Known {
            raw: [None; SLOTS],
            used: 0,
        };
        for (key, v) in &d.0 {
            if let Some(i) = slot(key) {
                k.raw[i as usize].get_or_insert(*v);
            }
        }
        k
    }

    /// The first of `keys` whose value is present and not an object.
    fn plain(&mut self, keys: &[Slot]) -> Option<&'a str> {
        keys.iter().find_map(|&key| {
            let v = first(&[self.raw[key as usize]]).filter(|v| !v.starts_with('{'))?;
            self.used |= 1 << key as usize;
            Some(v)
        })
    }

    /// A field under a dotted name (`service.name`) or nested
    /// (`{"service":{"name":..}}`: `parent`, its member `child`).
    fn ecs(&mut self, dotted: Slot, parent: Slot, child: &str) -> Option<&'a str> {
        if let Some(v) = first(&[self.raw[dotted as usize]]) {
            self.used |= 1 << dotted as usize;
            return Some(v);
        }
        let obj = self.raw[parent as usize].filter(|v| v.starts_with('{'))?;
        let inner: Doc = serde_json::from_str(obj).ok()?;
        let v = first(&[inner.get(child)])?;
        if inner.0.len() == 1 {
            self.used |= 1 << parent as usize;
        }
        Some(v)
    }
}

/// The row's fields and the problems found with their types.
pub fn map<'a>(d: Doc<'a>) -> (LogFields<'a>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut k = Known::of(&d);
    use Slot::*;
    let ts = k.plain(&[Timestamp, AtTimestamp, Time, Ts, Created]);
    let service = k
        .ecs(EcsServiceName, Service, "name")
        .or_else(|| k.plain(&[Service, AppName, App, ServiceName]));
    let level = k
        .ecs(EcsLogLevel, Log, "level")
        .or_else(|| k.plain(&[Severity, Levelname, Level, LogLevel]));
    let host = k
        .ecs(EcsHostName, Host, "name")
        .or_else(|| k.plain(&[ServerId, Host, Hostname]));
    let message = k.plain(&[Message, Msg, FormattedMessage]);
    let error = k
        .plain(&[ErrorCode])
        .or_else(|| k.ecs(EcsErrorType, Error, "type"))
        .or_else(|| k.ecs(EcsErrorCode, Error, "code"))
        .or_else(|| k.ecs(EcsExceptionType, Exception, "type"));
    let resource = k
        .plain(&[ResourceId])
        .or_else(|| k.ecs(EcsResourceId, Resource, "id"));
    let meta = k.plain(&[Metadata]);
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
    f.severity = Some(
        f.severity
            .map_or(Cow::Borrowed(severity::DEFAULT), severity::normalize),
    );
    if f.metadata.is_none() {
        f.metadata = rest(&d, k.used).map(Cow::Owned);
    }
    (f, errs)
}

/// The members no column took (`used`: a bit per [`Slot`]), as one
/// canonical JSON object.
fn rest(d: &Doc, used: u64) -> Option<String> {
    let taken = |k: &str| slot(k).is_some_and(|i| used & (1 << i as usize) != 0);
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
    fn every_key_has_its_own_slot() {
        let names = [
            "timestamp",
            "@timestamp",
            "time",
            "ts",
            "created",
            "service.name",
            "service",
            "app_name",
            "app",
            "service_name",
            "log.level",
            "log",
            "severity",
            "levelname",
            "level",
            "log_level",
            "host.name",
            "host",
            "server_id",
            "hostname",
            "message",
            "msg",
            "formatted_message",
            "error_code",
            "error.type",
            "error",
            "error.code",
            "exception.type",
            "exception",
            "resource_id",
            "resource.id",
            "resource",
            "metadata",
        ];
        for (i, k) in names.iter().enumerate() {
            assert_eq!(slot(k).map(|s| s as usize), Some(i), "{k}");
        }
        assert_eq!(names.len(), SLOTS);
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
