//! OTLP/HTTP logs: an `ExportLogsServiceRequest`, in protobuf or in the
//! spec's JSON mapping, to `system_logs` rows, and the
//! `ExportLogsServiceResponse` that answers it.

use std::borrow::Cow;

use logpulse_model::ingest::{Import, LogFields, Parsed};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::{Map, Value as Json};

use super::meta::{Members, Val};
use super::{hex, nanos_to_secs, severity};

/// How a request (and so its answer) is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type`: JSON, protobuf, or `None` for anything else.
    pub fn of(content_type: &str) -> Option<Encoding> {
        let ct = content_type.split(';').next().unwrap_or("").trim();
        match ct.to_ascii_lowercase().as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

pub fn decode(body: &[u8], enc: Encoding) -> Result<ExportLogsServiceRequest, String> {
    match enc {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| format!("invalid OTLP protobuf: {e}")),
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| format!("invalid OTLP JSON: {e}"))
        }
    }
}

/// The answer: `partial_success` set when records went to quarantine.
pub fn response(rejected: u64, first_reason: Option<&str>, enc: Encoding) -> Vec<u8> {
    let resp = ExportLogsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: rejected as i64,
            error_message: format!(
                "{rejected} log records failed validation and were stored in \
                 system_logs_quarantine; first: {}",
                first_reason.unwrap_or("")
            ),
        }),
    };
    match enc {
        Encoding::Protobuf => resp.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&resp).expect("response serializes"),
    }
}

/// What a resource contributes to each of its records.
struct ResourceCols {
    service: Option<String>,
    host: Option<String>,
    resource_id: Option<String>,
    /// The other resource attributes, as JSON object text.
    rest: Option<String>,
}

/// Appends a row (or a quarantine row) per log record.
pub fn to_rows(req: &ExportLogsServiceRequest, import: &Import, out: &mut Parsed<'static>) {
    for rl in &req.resource_logs {
        let attrs = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let mut res = ResourceCols {
            service: None,
            host: None,
            resource_id: None,
            rest: None,
        };
        let mut rest = Map::new();
        for kv in attrs {
            match kv.key.as_str() {
                "service.name" => res.service = Some(text(&kv.value)),
                "host.name" => res.host = Some(text(&kv.value)),
                "resource_id" | "resource.id" => res.resource_id = Some(text(&kv.value)),
                _ => {
                    rest.insert(kv.key.clone(), json(kv.value.as_ref()));
                }
            }
        }
        res.rest = (!rest.is_empty()).then(|| Json::Object(rest).to_string());
        out.rows
            .reserve(rl.scope_logs.iter().map(|s| s.log_records.len()).sum());
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref();
            for rec in &sl.log_records {
                let fields = record_fields(rec, &res, scope.map(|s| (&*s.name, &*s.version)));
                let raw = || raw_record(rec, attrs, scope.map(|s| &*s.name));
                let _ = out.push_log(fields, Vec::new(), raw, import);
            }
        }
    }
}

fn record_fields(
    rec: &LogRecord,
    res: &ResourceCols,
    scope: Option<(&str, &str)>,
) -> LogFields<'static> {
    let mut f = LogFields {
        service: res.service.clone().map(Cow::Owned),
        server_id: res.host.clone().map(Cow::Owned),
        resource_id: res.resource_id.clone().map(Cow::Owned),
        ..Default::default()
    };
    let nanos = match rec.time_unix_nano {
        0 => rec.observed_time_unix_nano,
        t => t,
    };
    f.timestamp = (nanos != 0).then(|| nanos_to_secs(nanos));
    f.severity = Some(match severity::from_otlp_number(rec.severity_number) {
        Some(s) => Cow::Borrowed(s),
        None if rec.severity_text.trim().is_empty() => Cow::Borrowed(severity::DEFAULT),
        None => Cow::Owned(severity::from_text(&rec.severity_text).into_owned()),
    });
    f.message = Some(Cow::Owned(
        match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
            None => String::new(),
            Some(Value::StringValue(s)) => s.clone(),
            Some(_) => json(rec.body.as_ref()).to_string(),
        },
    ));
    let mut meta = Members::default();
    for kv in &rec.attributes {
        match kv.key.as_str() {
            "error.type" | "error.code" | "exception.type" if f.error_code.is_none() => {
                f.error_code = Some(Cow::Owned(text(&kv.value)))
            }
            "resource_id" | "resource.id" => f.resource_id = Some(Cow::Owned(text(&kv.value))),
            "host.name" if f.server_id.is_none() => f.server_id = Some(Cow::Owned(text(&kv.value))),
            _ => meta.push(&kv.key, member(kv.value.as_ref())),
        }
    }
    if !rec.trace_id.is_empty() {
        meta.push("trace_id", Val::String(hex(&rec.trace_id)));
    }
    if !rec.span_id.is_empty() {
        meta.push("span_id", Val::String(hex(&rec.span_id)));
    }
    if let Some((name, version)) = scope.filter(|(n, _)| !n.is_empty()) {
        meta.push("scope", Val::Str(name));
        if !version.is_empty() {
            meta.push("scope_version", Val::Str(version));
        }
    }
    if let Some(rest) = &res.rest {
        meta.push("resource", Val::Raw(rest));
    }
    f.metadata = meta.text().map(Cow::Owned);
    f
}

/// An attribute value as a metadata member: strings as they are.
fn member(v: Option<&AnyValue>) -> Val<'_> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => Val::Str(s),
        _ => Val::Json(json(v)),
    }
}

/// A quarantined record as JSON: the record in the OTLP JSON mapping, with
/// its resource attributes and scope name.
fn raw_record(rec: &LogRecord, resource: &[KeyValue], scope: Option<&str>) -> String {
    let mut v = serde_json::to_value(rec).unwrap_or(Json::Null);
    if let Json::Object(m) = &mut v {
        let res: Map<String, Json> = resource
            .iter()
            .map(|kv| (kv.key.clone(), json(kv.value.as_ref())))
            .collect();
        m.insert("resource".into(), Json::Object(res));
        if let Some(s) = scope {
            m.insert("scope".into(), Json::String(s.into()));
        }
    }
    v.to_string()
}

/// An attribute value as column text: strings as they are, others as JSON.
fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        None => String::new(),
        Some(_) => json(v.as_ref()).to_string(),
    }
}

/// An `AnyValue` as plain JSON (bytes as hex).
fn json(v: Option<&AnyValue>) -> Json {
    match v.and_then(|v| v.value.as_ref()) {
        None => Json::Null,
        Some(Value::StringValue(s)) => Json::String(s.clone()),
        Some(Value::BoolValue(b)) => Json::Bool(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => Json::from(*d),
        Some(Value::BytesValue(b)) => Json::String(hex(b)),
        Some(Value::ArrayValue(a)) => Json::Array(a.values.iter().map(|v| json(Some(v))).collect()),
        Some(Value::KvlistValue(kv)) => Json::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), json(kv.value.as_ref())))
                .collect(),
        ),
        Some(Value::StringValueStrindex(_)) => Json::Null,
    }
}
