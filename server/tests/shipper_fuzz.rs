//! Fuzz targets of the shipper decoders (proptest): the syslog parser and
//! framer, the OTLP decoder, the Loki decoder and `_bulk` never panic on arbitrary
//! bytes, never allocate by a length they were told rather than one they
//! read, and account for every record: each becomes a row or a quarantine
//! row, never nothing. Cases per property: `LP_FUZZ_CASES` (default 2000).

use logpulse_model::ingest::{Import, Parsed};
use logpulse_model::Row;
use logpulse_server::ingest::syslog::{Frame, Framer};
use logpulse_server::ingest::{elasticsearch, loki, otlp, syslog};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use proptest::prelude::*;
use prost::Message;
use serde_json::json;

const IMPORT: Import<'static> = Import {
    id: "fuzz",
    now: 1_700_000_000,
};

fn cases() -> u32 {
    std::env::var("LP_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

fn accounted(out: &Parsed, records: usize) {
    assert_eq!(out.rows.len(), records);
    assert_eq!((out.successful + out.quarantined) as usize, records);
    let q = out
        .rows
        .iter()
        .filter(|r| matches!(r, Row::Quarantine(..)))
        .count();
    assert_eq!(q as u64, out.quarantined);
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn syslog_any_bytes_make_exactly_one_row(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                             prefix in prop::sample::select(vec!["", "<13>", "<191>1 ", "<34>Oct 11 22:14:15 ", "<9>app[1]: "])) {
        let mut msg = prefix.as_bytes().to_vec();
        msg.extend_from_slice(&bytes);
        let mut out = Parsed::default();
        syslog::push(&msg, "127.0.0.1".parse().unwrap(), IMPORT.now, 2026, &IMPORT, &mut out);
        accounted(&out, 1);
    }

    #[test]
    fn the_framer_makes_progress_and_never_overreads(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut f = Framer::default();
        let mut at = 0;
        while let Frame::Message { start, end, next } = f.next(&bytes, at) {
            prop_assert!(at <= start && start <= end && end <= bytes.len() && next > at && next <= bytes.len());
            at = next;
        }
    }

    #[test]
    fn otlp_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        for enc in [otlp::Encoding::Protobuf, otlp::Encoding::Json] {
            if let Ok(req) = otlp::decode(&bytes, enc) {
                let n: usize = req.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
                let mut out = Parsed::default();
                otlp::to_rows(&req, &IMPORT, &mut out);
                accounted(&out, n);
            }
        }
    }

    #[test]
    fn otlp_every_record_is_a_row_or_quarantined(
        recs in proptest::collection::vec((any::<u64>(), 0i32..30, "[a-zA-Z ]{0,8}", ".{0,40}", "[ a-z]{0,3}"), 0..20)
    ) {
        let mut req = ExportLogsServiceRequest::default();
        for (t, sev, text, body, service) in &recs {
            let record = LogRecord {
                time_unix_nano: *t, severity_number: *sev, severity_text: text.clone(),
                body: Some(AnyValue { value: Some(Value::StringValue(body.clone())) }),
                attributes: vec![kv("error.type", text)], ..Default::default()
            };
            req.resource_logs.push(ResourceLogs {
                resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Default::default() }),
                scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
                ..Default::default()
            });
        }
        let req = otlp::decode(&req.encode_to_vec(), otlp::Encoding::Protobuf).unwrap();
        let mut out = Parsed::default();
        otlp::to_rows(&req, &IMPORT, &mut out);
        accounted(&out, recs.len());
        for ((t, _, _, _, service), row) in recs.iter().zip(&out.rows) {
            let valid = *t >= 1_000_000_000 && *t / 1_000_000_000 <= 4_291_747_199 && !service.trim().is_empty();
            prop_assert_eq!(valid, matches!(row, Row::Log(_)), "{} {:?}", t, service);
        }
    }

    #[test]
    fn loki_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let snappy = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
        for entries in [loki::decode_json(&bytes), loki::decode_protobuf(&bytes, 1 << 20), loki::decode_protobuf(&snappy, 1 << 20)].into_iter().flatten() {
            let n = entries.len();
            let mut out = Parsed::default();
            loki::to_rows(entries, &IMPORT, &mut out);
            accounted(&out, n);
        }
    }

    #[test]
    fn bulk_documents_of_any_bytes_make_one_item_and_one_row(
        docs in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 1..300), 1..8),
        flat in proptest::collection::vec(("[a-z@._]{1,12}", "[ -~]{0,20}"), 0..6),
    ) {
        // Arbitrary bytes, and flat objects that the one-pass scanner takes.
        let objects = flat.iter().map(|(k, v)| format!("{{{}:{}}}", json!(k), json!(v)).into_bytes());
        let docs: Vec<Vec<u8>> = docs.into_iter().chain(objects).filter(|d| !d.trim_ascii().is_empty()).collect();
        let mut body = Vec::new();
        for d in &docs {
            body.extend_from_slice(b"{\"index\":{}}\n");
            body.extend_from_slice(d);
            body.push(b'\n');
        }
        let mut out = Parsed::default();
        let items = elasticsearch::to_rows(&body, "logs".into(), &IMPORT, &mut out).unwrap();
        accounted(&out, docs.len());
        prop_assert_eq!(items.list.len(), docs.len());
        let answer: serde_json::Value = serde_json::from_slice(&elasticsearch::response(&items, 1)).unwrap();
        prop_assert_eq!(answer["items"].as_array().unwrap().len(), docs.len());
    }

    #[test]
    fn loki_label_sets_never_panic(s in ".{0,80}") {
        let _ = loki::parse_labels(&s);
        let _ = loki::parse_labels(&format!("{{{s}}}"));
    }
}

#[test]
fn a_snappy_body_declaring_more_than_the_limit_is_refused_before_decompressing() {
    // Snappy's preamble: the uncompressed length as a varint (here 4 GiB - 1).
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    let e = loki::decode_protobuf(&body, 1 << 20).unwrap_err();
    assert!(e.contains("limit"), "{e}");
}
