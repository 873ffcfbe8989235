//! Loki push (`POST /loki/api/v1/push`): JSON, or protobuf compressed with
//! snappy as Promtail and Alloy send it, to `system_logs` rows.

use std::borrow::Cow;
use std::collections::BTreeMap;

use logpulse_model::ingest::{Import, LogFields, Parsed};
use prost::Message;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::{nanos_to_secs, pick, severity};

/// Loki's `pkg/push/push.proto`, field for field (the gogoproto options
/// that only shape Go code are left out).
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// One log line with its stream's labels, whatever the encoding.
#[derive(Debug)]
pub struct Entry {
    /// The stream's labels, or why they do not parse.
    pub labels: Result<Vec<(String, String)>, String>,
    pub time: Result<u32, String>,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// A snappy-compressed protobuf `PushRequest`, decompressing at most `max` bytes.
pub fn decode_protobuf(body: &[u8], max: usize) -> Result<Vec<Entry>, String> {
    let len = snap::raw::decompress_len(body).map_err(|e| format!("invalid snappy body: {e}"))?;
    if len > max {
        return Err(format!(
            "decompressed body is larger than the {max}-byte limit"
        ));
    }
    let data = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("invalid snappy body: {e}"))?;
    let req =
        proto::PushRequest::decode(&data[..]).map_err(|e| format!("invalid push protobuf: {e}"))?;
    let mut out = Vec::new();
    for s in req.streams {
        let labels = parse_labels(&s.labels);
        for e in s.entries {
            let time = match e.timestamp {
                Some(t) if t.seconds >= 0 => nanos_to_secs(t.seconds as u64 * 1_000_000_000),
                Some(t) => Err(format!("timestamp {} out of range", t.seconds)),
                None => Err("entry has no timestamp".into()),
            };
            let metadata = e
                .structured_metadata
                .into_iter()
                .map(|l| (l.name, l.value))
                .collect();
            out.push(Entry {
                labels: labels.clone(),
                time,
                line: e.line,
                metadata,
            });
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct PushJson<'a> {
    #[serde(borrow, default)]
    streams: Vec<StreamJson<'a>>,
}

#[derive(Deserialize)]
struct StreamJson<'a> {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    #[serde(borrow, default)]
    values: Vec<&'a RawValue>,
}

/// A JSON push body. An entry that is not `[ts, line]` or `[ts, line, {metadata}]`
/// becomes an entry with a bad time and its JSON text as line, to be quarantined.
pub fn decode_json(body: &[u8]) -> Result<Vec<Entry>, String> {
    let req: PushJson =
        serde_json::from_slice(body).map_err(|e| format!("invalid push JSON: {e}"))?;
    let mut out = Vec::new();
    for s in req.streams {
        let labels: Vec<(String, String)> = s.stream.into_iter().collect();
        for v in s.values {
            out.push(
                match serde_json::from_str::<(String, String, Option<Map<String, Json>>)>(v.get())
                    .or_else(|_| {
                        serde_json::from_str::<(String, String)>(v.get()).map(|(a, b)| (a, b, None))
                    }) {
                    Ok((ts, line, meta)) => Entry {
                        labels: Ok(labels.clone()),
                        time: ts
                            .parse::<u64>()
                            .map_err(|_| format!("invalid timestamp {ts:?}"))
                            .and_then(nanos_to_secs),
                        line,
                        metadata: meta
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, text(v)))
                            .collect(),
                    },
                    Err(e) => Entry {
                        labels: Ok(labels.clone()),
                        time: Err(format!("invalid entry: {e}")),
                        line: v.get().to_string(),
                        metadata: Vec::new(),
                    },
                },
            );
        }
    }
    Ok(out)
}

fn text(v: Json) -> String {
    match v {
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// A Prometheus-style label set: `{name="value", other="v\"2"}`.
pub fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    let bad = || format!("invalid label set {s:?}");
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(bad)?;
        let name = name.trim();
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if name.is_empty() || !name.chars().all(ok) {
            return Err(bad());
        }
        let mut chars = after.trim_start().char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(bad());
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err(bad()),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(bad)?;
        out.push((name.to_string(), value));
        rest = after.trim_start()[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

const SERVICE: &[&str] = &[
    "service_name",
    "service",
    "app",
    "application",
    "job",
    "container",
];
const LEVEL: &[&str] = &["level", "detected_level", "severity"];
const HOST: &[&str] = &["host", "hostname", "instance"];
const ERROR: &[&str] = &["error.type", "error.code", "exception.type"];
const RESOURCE: &[&str] = &["resource_id", "resource.id"];

/// Appends a row (or a quarantine row) per entry.
pub fn to_rows(entries: Vec<Entry>, import: &Import, out: &mut Parsed<'static>) {
    for e in entries {
        let mut errs = Vec::new();
        let labels = e.labels.as_ref().map(Vec::as_slice).unwrap_or_else(|m| {
            errs.push(("", m.clone()));
            &[]
        });
        let meta = &e.metadata[..];
        // Which (structured metadata?, name) each column was taken from.
        let mut used: Vec<(bool, &str)> = Vec::new();
        let mut take = |names: &[&str], from_meta: bool| {
            let found = from_meta.then(|| pick(meta, names).map(|kv| (true, kv)));
            let (m, (k, v)) = found
                .flatten()
                .or_else(|| pick(labels, names).map(|kv| (false, kv)))?;
            used.push((m, k.as_str()));
            Some(Cow::Owned(v.clone()))
        };
        let fields = LogFields {
            timestamp: Some(e.time.clone()),
            service: take(SERVICE, false),
            severity: Some(
                take(LEVEL, true).map_or(Cow::Borrowed(severity::DEFAULT), severity::normalize),
            ),
            message: Some(Cow::Owned(e.line.clone())),
            server_id: take(HOST, true),
            error_code: take(ERROR, true),
            resource_id: take(RESOURCE, true),
            metadata: None,
        };
        let fields = LogFields {
            metadata: metadata(labels, meta, &used),
            ..fields
        };
        let raw = || raw_entry(&e);
        let _ = out.push_log(fields, errs, raw, import);
    }
}

/// The labels and structured metadata not mapped to a column, as one JSON
/// object (structured metadata wins over a label of the same name).
fn metadata(
    labels: &[(String, String)],
    meta: &[(String, String)],
    used: &[(bool, &str)],
) -> Option<Cow<'static, str>> {
    let labels = labels.iter().map(|kv| (false, kv));
    let m: Map<String, Json> = labels
        .chain(meta.iter().map(|kv| (true, kv)))
        .filter(|(m, (k, _))| !used.contains(&(*m, k.as_str())))
        .map(|(_, kv)| kv)
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    (!m.is_empty()).then(|| Cow::Owned(Json::Object(m).to_string()))
}

fn raw_entry(e: &Entry) -> String {
    let labels: Map<String, Json> = match &e.labels {
        Ok(l) => l
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
        Err(m) => [("invalid".to_string(), Json::String(m.clone()))]
            .into_iter()
            .collect(),
    };
    let meta: Map<String, Json> = e
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    serde_json::json!({"stream": labels, "line": e.line, "structured_metadata": meta}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_parse_with_escapes() {
        let l = parse_labels(r#"{job="api", msg="a \"q\" \\ b", level="warn"}"#).unwrap();
        assert_eq!(l[0], ("job".into(), "api".into()));
        assert_eq!(l[1].1, r#"a "q" \ b"#);
        assert_eq!(l[2], ("level".into(), "warn".into()));
        assert_eq!(parse_labels("{}").unwrap(), vec![]);
        for bad in [
            "job=\"x\"",
            "{job=x}",
            "{job=\"x}",
            "{=\"x\"}",
            "{a b=\"c\"}",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
    }
}
