//! Fuzzes the ingest parser and the DateTime parser with proptest:
//! `ingest::parse_body` on arbitrary bytes, on JSON-ish byte soup, and on
//! NDJSON bodies of generated rows (random mixes of columns, aliases, value
//! types, valid and invalid values), for both data sources; and
//! `time::parse_datetime` on arbitrary text and on generated DateTimes in
//! every accepted form. Properties: never a panic; one result per non-blank
//! line (or per value of a multi-line body), `successful + quarantined` equal
//! to it and rows in line order; every valid row obeys the contract's rules
//! and, for generated rows, equals what an independent model of the contract
//! expects (aliases, null, trimming, upper-casing, numbers as text, canonical
//! compact JSON metadata, DateTime forms and range); every quarantine row carries its
//! raw line and fits in a segment record.
//!
//! Cases per property: `LP_FUZZ_CASES` (default 2000). Each test prints the
//! number of executions.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use logpulse_engine::row::Encode;
use logpulse_engine::segment::format::MAX_BODY_LEN;
use logpulse_engine::{DataSource, LogRow, QuarantineRow, Row, ThresholdRow};
use logpulse_model::ingest::{parse_body, parse_log, Import, ROW_BYTES_MAX};
use logpulse_model::time::{parse_datetime, MAX_TIMESTAMP};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::value::RawValue;

const NOW: u32 = 1_700_000_000;
const IMPORT: Import<'static> = Import {
    id: "fuzz-import",
    now: NOW,
};

fn cases() -> u32 {
    std::env::var("LP_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// Runs `strategy` through `test` for `cases()` cases; returns executions.
fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> u64 {
    let execs = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let res = runner.run(&strategy, |v| {
        execs.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    let n = execs.load(Ordering::Relaxed);
    if let Err(e) = res {
        panic!("{name}: {e} (after {n} executions)");
    }
    println!("parser_fuzz: {name}: {n} executions, no failure");
    n
}

// ---------------------------------------------------------------- counting

fn non_blank_lines(body: &[u8]) -> Vec<&[u8]> {
    body.split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .collect()
}

/// How many results a body must give: one per non-blank line; or, when its
/// first non-blank line is an incomplete JSON value (a pretty-printed
/// object), one per value of the leading stream of values plus one per
/// non-blank line after them.
fn expected_results(body: &[u8]) -> usize {
    let Some(first) = non_blank_lines(body).first().copied() else {
        return 0;
    };
    match serde_json::from_slice::<&serde_json::value::RawValue>(first) {
        Err(e) if e.is_eof() => {}
        _ => return non_blank_lines(body).len(),
    }
    let mut stream =
        serde_json::Deserializer::from_slice(body).into_iter::<&serde_json::value::RawValue>();
    let mut values = 0;
    let mut end = 0;
    while let Some(Ok(_)) = stream.next() {
        values += 1;
        end = stream.byte_offset();
    }
    values + non_blank_lines(&body[end..]).len()
}

// ------------------------------------------------------ generic row checks

fn check_log_rules(r: &LogRow<'_>) -> Result<(), TestCaseError> {
    prop_assert!(r.timestamp as i64 <= MAX_TIMESTAMP);
    prop_assert!(!r.service.is_empty() && r.service.trim() == r.service);
    prop_assert!(
        r.service.len() <= 128,
        "service of {} bytes",
        r.service.len()
    );
    prop_assert!(!r.severity.is_empty() && r.severity.trim() == r.severity);
    prop_assert_eq!(r.severity.to_uppercase(), r.severity.to_string());
    let size: usize = [
        &r.service,
        &r.severity,
        &r.server_id,
        &r.message,
        &r.error_code,
        &r.resource_id,
        &r.metadata,
    ]
    .iter()
    .map(|s| s.len())
    .sum();
    prop_assert!(size <= ROW_BYTES_MAX, "row of {} bytes stored", size);
    Ok(())
}

fn check_threshold_rules(t: &ThresholdRow) -> Result<(), TestCaseError> {
    prop_assert!(!t.service.is_empty() && t.service.trim() == t.service);
    prop_assert!(!t.severity.is_empty() && t.severity.trim() == t.severity);
    prop_assert_eq!(t.severity.to_uppercase(), t.severity.clone());
    prop_assert!(t.threshold_per_minute.is_finite() && t.threshold_per_minute > 0.0);
    prop_assert!(t.active <= 1);
    prop_assert!(t.updated_at as i64 <= MAX_TIMESTAMP);
    Ok(())
}

fn check_quarantine(
    ds: DataSource,
    qds: DataSource,
    q: &QuarantineRow,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(Some(qds), ds.quarantine());
    prop_assert!(!q.error.is_empty(), "quarantine row without a reason");
    prop_assert_eq!(q.error.len(), q.error_column.len());
    prop_assert_eq!(q.import_id.as_str(), IMPORT.id);
    prop_assert_eq!(q.insertion_date, NOW);
    // The engine must be able to store it: a record body is at most
    // MAX_BODY_LEN bytes.
    let mut buf = Vec::new();
    Row::Quarantine(qds, q.clone()).encode_into(&mut buf);
    prop_assert!(
        buf.len() <= MAX_BODY_LEN,
        "quarantine row of {} bytes cannot be stored",
        buf.len()
    );
    Ok(())
}

/// Parses `body` for `ds` and checks everything that holds for any input.
fn check_body<'a>(ds: DataSource, body: &'a [u8]) -> Result<Vec<Row<'a>>, TestCaseError> {
    let p = parse_body(ds, body, &IMPORT);
    prop_assert_eq!(p.rows.len() as u64, p.successful + p.quarantined);
    prop_assert_eq!(
        p.rows.len(),
        expected_results(body),
        "results for {:?}",
        String::from_utf8_lossy(body)
    );
    let mut ok = 0;
    for r in &p.rows {
        match (ds, r) {
            (DataSource::SystemLogs, Row::Log(l)) => {
                check_log_rules(l)?;
                ok += 1;
            }
            (DataSource::Thresholds, Row::Threshold(t)) => {
                check_threshold_rules(t)?;
                ok += 1;
            }
            (_, Row::Quarantine(qds, q)) => check_quarantine(ds, *qds, q)?,
            (ds, r) => prop_assert!(false, "{:?} row from a {:?} body", r.datasource(), ds),
        }
    }
    prop_assert_eq!(ok, p.successful);
    Ok(p.rows)
}

// ----------------------------------------------------------- byte bodies

#[test]
fn arbitrary_bytes_never_panic_and_every_line_is_accounted_for() {
    let n = fuzz(
        "arbitrary bytes",
        prop::collection::vec(any::<u8>(), 0..600),
        |body| {
            check_body(DataSource::SystemLogs, &body)?;
            check_body(DataSource::Thresholds, &body)?;
            Ok(())
        },
    );
    assert!(n > 0);
}

/// Fragments of JSON, rows and DateTimes glued together at random.
fn jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\n", "\r\n", " ", "\t", "null", "true", "1",
        "-", "0.5", "1e400", "\"timestamp\"", "\"service\"", "\"severity\"", "\"message\"",
        "\"metadata\"", "\"level\"", "\"msg\"", "\"threshold_per_minute\"", "\"active\"",
        "\"2023-06-01 14:30:00\"", "\"2023-06-01T14:30:00.5+02:00\"", "1685629800", "\"auth\"",
        "\"error\"", "\"\\u0000\"", "\"\\ud800\"", "\u{0}", "é", "\u{feff}", "\u{2028}", "\x7f",
        "{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"a\",\"severity\":\"e\",\"message\":\"m\"}",
        "{\"service\":\"a\",\"severity\":\"e\",\"threshold_per_minute\":2}",
    ]);
    let piece = prop_oneof![
        8 => token.prop_map(|t| t.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

#[test]
fn jsonish_byte_soup_never_panics_and_every_line_is_accounted_for() {
    fuzz("JSON-ish byte soup", jsonish_bytes(), |body| {
        check_body(DataSource::SystemLogs, &body)?;
        check_body(DataSource::Thresholds, &body)?;
        Ok(())
    });
}

// ------------------------------------------------------ generated log rows

/// A JSON value given for a column, and what the contract makes of it.
#[derive(Clone, Debug)]
struct Val {
    json: String,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Null,
    /// A JSON string with this text.
    Str(String),
    /// A number or boolean: stored as its JSON text.
    Scalar,
    /// An object or array, and its compact JSON text.
    Json(String),
}

fn string_val() -> impl Strategy<Value = Val> {
    let text = prop_oneof![
        16 => "[a-zA-Z0-9 _.-]{0,12}",
        1 => Just(String::new()),
        1 => Just("   ".to_string()),
        1 => Just("  padded  ".to_string()),
        1 => Just("ñandú ☃ 日本".to_string()),
        1 => Just("quote \" backslash \\ newline \n tab \t nul \u{0}".to_string()),
        1 => Just("x".repeat(128)),
        1 => Just("y".repeat(129)),
        1 => Just("z".repeat(32)),
        1 => Just("w".repeat(33)),
        1 => Just("error".to_string()),
        1 => Just("\u{2028}\u{feff}".to_string()),
    ];
    prop_oneof![
        16 => text.prop_map(|s| Val { json: serde_json::to_string(&s).unwrap(), kind: Kind::Str(s) }),
        1 => prop::sample::select(vec!["42", "-7", "3.25", "1e3", "true", "false", "0"])
            .prop_map(|s| Val { json: s.to_string(), kind: Kind::Scalar }),
        1 => Just(Val { json: "null".into(), kind: Kind::Null }),
        // \u escapes (a surrogate pair too), as Python's json.dumps sends text.
        1 => Just(Val { json: r#""caf\u00e9 \ud83d\ude00 \u0041\/""#.into(), kind: Kind::Str("café 😀 A/".into()) }),
        1 => prop::sample::select(vec![
            ("{ \"ip\" : \"1.2.3.4\", \"n\": [1, 2 ,3] }", "{\"ip\":\"1.2.3.4\",\"n\":[1,2,3]}"),
            ("[ ]", "[]"),
            ("{\"a b\": \" c d \"}", "{\"a b\":\" c d \"}"),
            // Canonical text: escapes JSON does not require are written out.
            (r#"{"p": "\/s\u00f6me", "e": ["\ud83d\ude00"]}"#, r#"{"p":"/söme","e":["😀"]}"#),
            (r#"[ "\"\\\n\u0001", "\u0022\u005c\u000A\u0009" ]"#, r#"["\"\\\n\u0001","\"\\\n\t"]"#),
        ])
        .prop_map(|(j, c)| Val { json: j.to_string(), kind: Kind::Json(c.to_string()) }),
    ]
}

/// A DateTime value: its JSON and the Unix seconds it means (None: invalid).
#[derive(Clone, Debug)]
struct TsVal {
    json: String,
    secs: Option<Option<u32>>, // None: null (absent); Some(None): invalid
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn month_days(y: i64, m: i64) -> i64 {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][m as usize - 1]
}

/// A DateTime text in one of the contract's forms, and its value if in range.
fn datetime_text() -> impl Strategy<Value = (String, Option<u32>)> {
    (
        1960i64..2110,
        1i64..=12,
        1i64..=31,
        0i64..24,
        0i64..60,
        0i64..60,
        0usize..8,
        prop::option::of("[0-9]{1,9}"),
        prop::option::of((
            prop::bool::ANY,
            0i64..24,
            prop::sample::select(vec![0i64, 30, 45]),
        )),
    )
        .prop_map(|(y, m, d, hh, mm, ss, form, frac, off)| {
            let d = d.min(month_days(y, m));
            let date = format!("{y:04}-{m:02}-{d:02}");
            let base = days_from_civil(y, m, d) * 86_400;
            let secs = base + hh * 3600 + mm * 60 + ss;
            let (text, value) = match form {
                0 => (date, base),
                1 => (format!("{date} {hh:02}:{mm:02}:{ss:02}"), secs),
                2 => (format!("{date}T{hh:02}:{mm:02}:{ss:02}"), secs),
                3 => (format!("{date}T{hh:02}:{mm:02}:{ss:02}Z"), secs),
                4 | 5 => {
                    let f = frac.map(|f| format!(".{f}")).unwrap_or_default();
                    let sep = if form == 4 { ' ' } else { 'T' };
                    let (text_off, off_secs) = match off {
                        None => (String::new(), 0),
                        Some((neg, h, mi)) => (
                            format!("{}{h:02}:{mi:02}", if neg { '-' } else { '+' }),
                            (h * 3600 + mi * 60) * if neg { -1 } else { 1 },
                        ),
                    };
                    (
                        format!("{date}{sep}{hh:02}:{mm:02}:{ss:02}{f}{text_off}"),
                        secs - off_secs,
                    )
                }
                6 => (secs.to_string(), secs),
                _ => (
                    format!("{secs}.{}", frac.unwrap_or_else(|| "5".into())),
                    secs,
                ),
            };
            let ok = (0..=MAX_TIMESTAMP).contains(&value);
            (text, ok.then_some(value as u32))
        })
}

fn ts_val() -> impl Strategy<Value = TsVal> {
    prop_oneof![
        6 => datetime_text().prop_map(|(t, v)| TsVal {
            json: serde_json::to_string(&t).unwrap(),
            secs: Some(v),
        }),
        1 => (0i64..=4_400_000_000).prop_map(|n| TsVal {
            json: n.to_string(),
            secs: Some((n <= MAX_TIMESTAMP).then_some(n as u32)),
        }),
        1 => (0u32..2_000_000_000, 1u32..1000).prop_map(|(n, f)| TsVal {
            json: format!("{n}.{f}"),
            secs: Some(Some(n)),
        }),
        1 => prop::sample::select(vec![
            "\"\"", "\" \"", "\"yesterday\"", "\"2023-02-29 00:00:00\"", "\"2023-06-01 24:00:00\"",
            "\"2023-06-01 12:60:00\"", "\"2023/06/01\"", "\"2023-06-01T12:00:00+25:00\"",
            "\"1969-12-31 23:59:59\"", "\"2106-01-01 00:00:00\"", "\"1970-01-01 00:30:00+01:00\"",
            "-1", "true", "{}", "[]", "\"2023-06-01 12:00\"", "\"2023-06-01 12:00:00 UTC\"",
        ])
        .prop_map(|s| TsVal { json: s.to_string(), secs: Some(None) }),
        1 => Just(TsVal { json: "null".into(), secs: None }),
    ]
}

/// A generated object: (key, value JSON) pairs in order.
#[derive(Clone, Debug)]
struct GenLog {
    timestamp: Vec<(&'static str, TsVal)>,
    strings: Vec<(&'static str, Val)>,
    extra: Vec<(String, String)>,
}

const TS_KEYS: [&str; 5] = ["timestamp", "@timestamp", "time", "ts", "created"];
const GROUPS: [(&str, &[&str]); 7] = [
    ("service", &["service", "app_name", "app", "service_name"]),
    ("severity", &["severity", "levelname", "level", "log_level"]),
    ("message", &["message", "msg", "formatted_message"]),
    ("server_id", &["server_id", "host", "hostname"]),
    ("error_code", &["error_code"]),
    ("resource_id", &["resource_id"]),
    ("metadata", &["metadata"]),
];

fn gen_log() -> impl Strategy<Value = GenLog> {
    // A column's own key is usually there, an alias less often: a good
    // share of rows is valid, and aliases still compete with their column.
    let likely = |first: bool| if first { 80u8 } else { 20 };
    let ts = prop::collection::vec((0u8..100, ts_val()), TS_KEYS.len()).prop_map(move |v| {
        v.into_iter()
            .zip(TS_KEYS)
            .enumerate()
            .filter(|(i, ((p, _), _))| *p < likely(*i == 0))
            .map(|(_, ((_, t), k))| (k, t))
            .collect::<Vec<_>>()
    });
    let all_keys: Vec<(&'static str, bool)> = GROUPS
        .iter()
        .flat_map(|(_, ks)| ks.iter().enumerate().map(|(i, k)| (*k, i == 0)))
        .collect();
    let n = all_keys.len();
    let strings = prop::collection::vec((0u8..100, string_val()), n).prop_map(move |v| {
        v.into_iter()
            .zip(all_keys.clone())
            .filter(|((p, _), (_, first))| *p < likely(*first))
            .map(|((_, s), (k, _))| (k, s))
            .collect::<Vec<_>>()
    });
    let extra = prop::collection::vec(
        (
            prop::sample::select(vec!["extra", "Service", "MESSAGE", "nested", "lvl"]),
            prop::sample::select(vec![
                "1",
                "\"x\"",
                "null",
                "{\"service\":\"inner\"}",
                "[[[]]]",
            ]),
        )
            .prop_map(|(k, v)| (k.to_string(), v.to_string())),
        0..3,
    );
    (ts, strings, extra).prop_map(|(timestamp, strings, mut extra)| {
        // Distinct extra keys (a duplicate key is an invalid row of its own).
        let mut seen = std::collections::HashSet::new();
        extra.retain(|(k, _)| seen.insert(k.clone()));
        GenLog {
            timestamp,
            strings,
            extra,
        }
    })
}

impl GenLog {
    fn line(&self, spaced: bool) -> String {
        let sep = if spaced { ", " } else { "," };
        let colon = if spaced { " : " } else { ":" };
        let mut parts: Vec<String> = Vec::new();
        for (k, t) in &self.timestamp {
            parts.push(format!("\"{k}\"{colon}{}", t.json));
        }
        for (k, v) in &self.strings {
            parts.push(format!("\"{k}\"{colon}{}", v.json));
        }
        for (k, v) in &self.extra {
            parts.push(format!("\"{k}\"{colon}{v}"));
        }
        format!("{{{}}}", parts.join(sep))
    }

    /// The first present (non-null) value of a column's keys.
    fn first(&self, keys: &[&str]) -> Option<&Val> {
        keys.iter().find_map(|k| {
            self.strings
                .iter()
                .find(|(key, v)| key == k && v.kind != Kind::Null)
                .map(|(_, v)| v)
        })
    }

    /// What the contract says the row is: `Some(row)` if valid.
    fn expected(&self) -> Option<LogRow<'static>> {
        let ts = TS_KEYS.iter().find_map(|k| {
            self.timestamp
                .iter()
                .find(|(key, t)| key == k && t.secs.is_some())
                .map(|(_, t)| t.secs.unwrap())
        });
        let timestamp = ts??;
        let text = |v: &Val, allow_json: bool| -> Option<String> {
            match &v.kind {
                Kind::Str(s) => Some(s.clone()),
                Kind::Scalar => Some(v.json.clone()),
                Kind::Json(c) if allow_json => Some(c.clone()),
                Kind::Json(_) => None,
                Kind::Null => unreachable!(),
            }
        };
        let group = |name: &str| GROUPS.iter().find(|g| g.0 == name).unwrap().1;
        let required = |name: &str| self.first(group(name)).and_then(|v| text(v, false));
        let optional = |name: &str, json: bool| match self.first(group(name)) {
            None => Some(String::new()),
            Some(v) => text(v, json),
        };
        let service = required("service")?.trim().to_string();
        if service.is_empty() || service.len() > 128 {
            return None;
        }
        let severity = required("severity")?.trim().to_string();
        if severity.is_empty() || severity.len() > 32 {
            return None;
        }
        let row = LogRow {
            timestamp,
            service: Cow::Owned(service),
            severity: Cow::Owned(severity.to_uppercase()),
            message: Cow::Owned(required("message")?),
            server_id: Cow::Owned(optional("server_id", false)?),
            error_code: Cow::Owned(optional("error_code", false)?),
            resource_id: Cow::Owned(optional("resource_id", false)?),
            metadata: Cow::Owned(optional("metadata", true)?),
        };
        Some(row)
    }
}

#[test]
fn generated_log_rows_are_stored_as_the_contract_says() {
    let body = (
        prop::collection::vec((gen_log(), prop::bool::ANY), 1..12),
        prop::collection::vec(
            prop::sample::select(vec![
                "",
                "   ",
                "\t",
                "\r",
                "garbage",
                "{\"a\":",
                "[1,2]",
                "\"str\"",
                "{}",
                "{\"service\":\"x\",\"service\":\"y\"}",
                "\u{0}\u{0}",
            ]),
            0..4,
        ),
        any::<u64>(),
    );
    let (valid, invalid) = (AtomicU64::new(0), AtomicU64::new(0));
    fuzz("generated system_logs rows", body, |(rows, junk, salt)| {
        // The first line is always a generated row (a complete object), so
        // every non-blank line is one result, in order.
        let mut lines: Vec<(String, Option<Option<LogRow<'static>>>)> = rows
            .iter()
            .map(|(g, spaced)| (g.line(*spaced), Some(g.expected())))
            .collect();
        for (i, j) in junk.iter().enumerate() {
            let at = 1 + (salt as usize >> (i * 8)) % lines.len();
            lines.insert(at.min(lines.len()), (j.to_string(), None));
        }
        let body = lines
            .iter()
            .map(|l| l.0.as_str())
            .collect::<Vec<_>>()
            .join(if salt & 1 == 0 { "\n" } else { "\r\n" });
        let got = check_body(DataSource::SystemLogs, body.as_bytes())?;
        let results: Vec<&(String, Option<Option<LogRow>>)> = lines
            .iter()
            .filter(|l| !l.0.trim_ascii().is_empty())
            .collect();
        prop_assert_eq!(got.len(), results.len());
        for (row, (line, want)) in got.iter().zip(results) {
            match (row, want) {
                (Row::Log(r), Some(Some(w))) => {
                    prop_assert_eq!(r, w, "line {}", line);
                    valid.fetch_add(1, Ordering::Relaxed);
                }
                (Row::Quarantine(_, q), Some(None)) | (Row::Quarantine(_, q), None) => {
                    prop_assert_eq!(q.raw.as_str(), line.trim_ascii(), "raw line kept");
                    invalid.fetch_add(1, Ordering::Relaxed);
                }
                (Row::Log(r), None) => {
                    // A junk line that happens to be a valid row ({} is not).
                    prop_assert!(false, "junk line {:?} stored as {:?}", line, r)
                }
                (r, w) => prop_assert!(false, "line {}: got {:?}, expected {:?}", line, r, w),
            }
        }
        Ok(())
    });
    println!(
        "parser_fuzz: generated system_logs rows: {} stored exactly as the model expects, {} quarantined with their raw line",
        valid.into_inner(),
        invalid.into_inner()
    );
}

// -------------------------------------------------- generated thresholds

#[derive(Clone, Debug)]
struct GenThreshold {
    fields: Vec<(&'static str, String)>,
    expected: Option<ThresholdRow>,
}

fn gen_threshold() -> impl Strategy<Value = GenThreshold> {
    let key = prop_oneof![
        16 => "[a-zA-Z][a-zA-Z0-9_]{0,8}".prop_map(|s| (serde_json::to_string(&s).unwrap(), Some(s))),
        1 => Just(("\"  spaced out \"".to_string(), Some("  spaced out ".to_string()))),
        1 => Just(("\"\"".to_string(), None)),
        1 => Just(("\"  \"".to_string(), None)),
        1 => Just(("17".to_string(), Some("17".to_string()))),
        1 => Just(("{}".to_string(), None)),
    ];
    let threshold = prop_oneof![
        3 => prop::sample::select(vec![
            ("1", Some(1.0)),
            ("0.5", Some(0.5)),
            ("\"2.5\"", Some(2.5)),
            ("\" 3 \"", Some(3.0)),
            ("1e3", Some(1000.0)),
        ]),
        1 => prop::sample::select(vec![
            ("0", None),
            ("-1", None),
            ("\"abc\"", None),
            ("\"\"", None),
            ("true", None),
            ("{}", None),
            ("\"inf\"", None),
            ("\"NaN\"", None),
            ("1e400", None),
        ]),
    ];
    let active = prop_oneof![
        3 => prop::sample::select(vec![
            ("0", Some(0u8)),
            ("1", Some(1)),
            ("true", Some(1)),
            ("false", Some(0)),
            ("\"0\"", Some(0)),
            ("\" TRUE \"", Some(1)),
        ]),
        1 => prop::sample::select(vec![
            ("2", None),
            ("\"yes\"", None),
            ("-1", None),
            ("0.5", None),
            ("[]", None),
        ]),
    ];
    (
        prop::option::weighted(0.92, key.clone()),
        prop::option::weighted(0.92, key),
        prop::option::weighted(0.92, threshold),
        prop::option::of(active),
        prop::option::of(ts_val()),
    )
        .prop_map(|(service, severity, threshold, active, updated)| {
            let mut fields = Vec::new();
            let mut valid = true;
            let mut push = |k: &'static str, json: String| fields.push((k, json));
            let service = match service {
                Some((j, v)) => {
                    push("service", j);
                    v.map(|s| s.trim().to_string())
                }
                None => None,
            };
            let severity = match severity {
                Some((j, v)) => {
                    push("severity", j);
                    v.map(|s| s.trim().to_uppercase())
                }
                None => None,
            };
            let threshold = match threshold {
                Some((j, v)) => {
                    push("threshold_per_minute", j.to_string());
                    v
                }
                None => None,
            };
            let active = match active {
                Some((j, v)) => {
                    push("active", j.to_string());
                    v
                }
                None => Some(1),
            };
            let updated_at = match updated {
                Some(t) => {
                    push("updated_at", t.json.clone());
                    match t.secs {
                        None => Some(NOW),
                        Some(v) => v,
                    }
                }
                None => Some(NOW),
            };
            valid &= service.as_ref().is_some_and(|s| !s.is_empty());
            valid &= severity.as_ref().is_some_and(|s| !s.is_empty());
            let expected = match (valid, threshold, active, updated_at) {
                (true, Some(t), Some(a), Some(u)) => Some(ThresholdRow {
                    service: service.unwrap(),
                    severity: severity.unwrap(),
                    threshold_per_minute: t,
                    active: a,
                    updated_at: u,
                }),
                _ => None,
            };
            GenThreshold { fields, expected }
        })
}

#[test]
fn generated_threshold_rows_are_stored_as_the_contract_says() {
    let (valid, invalid) = (AtomicU64::new(0), AtomicU64::new(0));
    fuzz(
        "generated log_anomaly_thresholds rows",
        prop::collection::vec(gen_threshold(), 1..10),
        |rows| {
            let lines: Vec<String> = rows
                .iter()
                .map(|g| {
                    let inner: Vec<String> = g
                        .fields
                        .iter()
                        .map(|(k, v)| format!("\"{k}\": {v}"))
                        .collect();
                    format!("{{{}}}", inner.join(", "))
                })
                .collect();
            let body = lines.join("\n");
            let got = check_body(DataSource::Thresholds, body.as_bytes())?;
            prop_assert_eq!(got.len(), rows.len());
            for ((row, g), line) in got.iter().zip(&rows).zip(&lines) {
                match (row, &g.expected) {
                    (Row::Threshold(t), Some(w)) => {
                        prop_assert_eq!(t, w, "line {}", line);
                        valid.fetch_add(1, Ordering::Relaxed);
                    }
                    (Row::Quarantine(_, q), None) => {
                        prop_assert_eq!(q.raw.as_str(), line.as_str());
                        invalid.fetch_add(1, Ordering::Relaxed);
                    }
                    (r, w) => prop_assert!(false, "line {}: got {:?}, expected {:?}", line, r, w),
                }
            }
            Ok(())
        },
    );
    println!(
        "parser_fuzz: generated log_anomaly_thresholds rows: {} stored exactly as the model expects, {} quarantined with their raw line",
        valid.into_inner(),
        invalid.into_inner()
    );
}

// ------------------------------------------------------------ DateTimes

#[test]
fn parse_datetime_never_panics_and_agrees_with_the_contract() {
    fuzz("parse_datetime on arbitrary text", any::<String>(), |s| {
        if let Ok(v) = parse_datetime(&s) {
            prop_assert!(v as i64 <= MAX_TIMESTAMP);
        }
        Ok(())
    });
    let mixed = prop::collection::vec(
        prop::sample::select(vec![
            "2023",
            "-",
            "06",
            "01",
            " ",
            "T",
            "14",
            ":",
            "30",
            "00",
            ".",
            "123",
            "Z",
            "+",
            "02",
            "é",
            "日",
            "\u{0}",
            "9",
            "99999999999999999999",
            "e",
            "\n",
        ]),
        0..14,
    )
    .prop_map(|v| v.concat());
    fuzz("parse_datetime on DateTime-ish text", mixed, |s| {
        if let Ok(v) = parse_datetime(&s) {
            prop_assert!(v as i64 <= MAX_TIMESTAMP);
        }
        Ok(())
    });
    fuzz(
        "parse_datetime on generated DateTimes",
        datetime_text(),
        |(s, want)| {
            let got = parse_datetime(&s).ok();
            prop_assert_eq!(got, want, "{:?}", s);
            let padded = format!("  {s} ");
            prop_assert_eq!(parse_datetime(&padded).ok(), want, "{:?}", padded);
            Ok(())
        },
    );
}

// ------------------------------------------------------ hostile extremes

#[test]
fn hostile_lines_are_quarantined_and_storable() {
    let good = "{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"a\",\"severity\":\"info\",\"message\":\"ok\"}";
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_field = format!(
        "{{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"a\",\"severity\":\"e\",\"message\":\"m\",\"extra\":{}1{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let deep_metadata = format!(
        "{{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"a\",\"severity\":\"e\",\"message\":\"m\",\"metadata\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let big_message = |n: usize| {
        format!(
            "{{\"timestamp\":\"2023-06-01 14:30:00\",\"service\":\"a\",\"severity\":\"e\",\"message\":\"{}\"}}",
            "m".repeat(n)
        )
    };
    let huge_garbage = "é".repeat(3 << 20); // 6 MiB of two-byte characters
    for (name, line, must_quarantine) in [
        ("10000 nested arrays", deep_array.clone(), true),
        // Valid JSON: an unknown field is ignored however deep, and metadata
        // is kept as its (compact) text.
        ("10000 nested objects in an extra field", deep_field, false),
        ("10000 nested arrays in metadata", deep_metadata, false),
        ("a 2 MiB message", big_message(2 << 20), true),
        ("a 5 MiB message", big_message(5 << 20), true),
        (
            "a message just under 1 MiB",
            big_message((1 << 20) - 200),
            false,
        ),
        ("6 MiB of non-JSON text", huge_garbage, true),
        ("NUL bytes", "\u{0}{\u{0}}\u{0}".to_string(), true),
    ] {
        let body = format!("{good}\n{line}\n{good}\n");
        for ds in [DataSource::SystemLogs, DataSource::Thresholds] {
            let p = parse_body(ds, body.as_bytes(), &IMPORT);
            assert_eq!(p.successful + p.quarantined, 3, "{name}");
            if ds == DataSource::SystemLogs {
                assert_eq!(p.successful, if must_quarantine { 2 } else { 3 }, "{name}");
            }
            for r in &p.rows {
                let mut buf = Vec::new();
                r.encode_into(&mut buf);
                assert!(
                    buf.len() <= MAX_BODY_LEN,
                    "{name}: a {:?} row of {} bytes cannot be stored (record limit {MAX_BODY_LEN})",
                    r.datasource(),
                    buf.len()
                );
                if let Row::Quarantine(_, q) = r {
                    assert!(
                        !q.raw.is_empty(),
                        "{name}: quarantine row without its raw line"
                    );
                    assert!(
                        q.raw == good || line.starts_with(&q.raw),
                        "{name}: raw is not (a prefix of) its line: {:?}",
                        &q.raw[..q.raw.len().min(100)]
                    );
                }
            }
        }
    }
    // Invalid UTF-8 between good lines.
    let mut body = format!("{good}\n").into_bytes();
    body.extend_from_slice(b"{\"message\":\"\xff\xfe\"}\n\xc3\x28\n");
    body.extend_from_slice(good.as_bytes());
    let p = parse_body(DataSource::SystemLogs, &body, &IMPORT);
    assert_eq!((p.successful, p.quarantined), (2, 2));
    println!("parser_fuzz: hostile lines: 8 kinds x 2 data sources, plus invalid UTF-8");
}

/// The one-pass scanner of flat rows is a shortcut: every line must give
/// what serde_json's two-pass path (`parse_log` on the validated value)
/// gives, the same row or the same quarantine reasons.
#[test]
fn every_line_gives_what_the_serde_json_path_gives() {
    let lines = prop_oneof![
        jsonish_bytes(),
        (gen_log(), any::<bool>()).prop_map(|(g, spaced)| g.line(spaced).into_bytes()),
    ];
    fuzz("fast path against serde_json", lines, |bytes| {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Ok(());
        };
        for line in text
            .split('\n')
            .map(|l| l.trim_ascii())
            .filter(|l| !l.is_empty())
        {
            let p = parse_body(DataSource::SystemLogs, line.as_bytes(), &IMPORT);
            let want: Result<LogRow, Vec<String>> = match serde_json::from_str::<&RawValue>(line) {
                Err(e) => Err(vec![format!("invalid JSON: {e}")]),
                Ok(v) => parse_log(v).map_err(|errs| errs.into_iter().map(|(_, m)| m).collect()),
            };
            match (&p.rows[..], want) {
                ([Row::Log(got)], Ok(want)) => prop_assert_eq!(got, &want, "{}", line),
                ([Row::Quarantine(_, q)], Err(want)) => {
                    prop_assert_eq!(&q.error, &want, "{}", line)
                }
                (got, want) => prop_assert!(false, "{line}: got {got:?}, serde_json path {want:?}"),
            }
        }
        Ok(())
    });
}
