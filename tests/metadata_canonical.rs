//! Proves that a JSON object or array given for `metadata` is stored as one
//! canonical text, whatever escaping the client chose: compact, members in
//! their given order, numbers as given, strings escaped only where JSON
//! requires (`"`, `\`, control characters), every other character as itself
//! in UTF-8. Over HTTP: the Events API (NDJSON and a pretty-printed body),
//! the import route, and Elasticsearch `_bulk` (whose unmapped fields become
//! metadata) all store the same text, read back with `recent_logs`.

mod common;

use common::*;

const TS: &str = "2023-06-01 14:30:00";

/// A raw NDJSON row of `service` with the raw JSON `metadata`.
fn row(service: &str, message: &str, metadata: &str) -> String {
    format!(
        r#"{{"timestamp":"{TS}","service":"{service}","severity":"INFO","message":"{message}","metadata":{metadata}}}"#
    )
}

/// `metadata` of the rows of `service`, by message.
fn metadata_of(d: &Daemon, service: &str) -> Vec<(String, String)> {
    let v = d.pipe_json("recent_logs", &[("service", service), ("limit", "100")]);
    let mut got: Vec<(String, String)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("message"), s("metadata"))
        })
        .collect();
    got.sort();
    got
}

#[test]
fn both_escapings_of_one_object_read_back_identical() {
    let d = Daemon::start();
    let want = r#"{"path":"/söme","emoji":"😀","n":[1.50,-0,1E3],"k":{"é":true}}"#;
    let given = [
        // As itself in UTF-8 (what most clients send).
        r#"{"path":"/söme","emoji":"😀","n":[1.50,-0,1E3],"k":{"é":true}}"#,
        // Python's json.dumps default: non-ASCII as \u escapes, a surrogate pair.
        r#"{"path": "/s\u00f6me", "emoji": "\ud83d\ude00", "n": [1.50, -0, 1E3], "k": {"\u00e9": true}}"#,
        // Upper-case hex, an escaped solidus, pretty-printed.
        "{\n  \"path\" : \"\\/s\\u00F6me\",\n  \"emoji\" : \"\\uD83D\\uDE00\",\n  \"n\" : [ 1.50 , -0 , 1E3 ],\n  \"k\" : { \"\\u00E9\" : true }\n}",
    ];
    let body: Vec<String> = given
        .iter()
        .enumerate()
        .map(|(i, m)| row("canon", &format!("m{i}"), &m.replace('\n', " ")))
        .collect();
    let r = d.post(
        "/v0/events?name=system_logs&wait=true",
        body.join("\n").as_bytes(),
    );
    assert_eq!(counts(&r.ok_json()), (3, 0));
    // A body that is one pretty-printed object (the multi-line path).
    let pretty = row("canon", "m3", given[2]);
    let r = d.post("/v0/events?name=system_logs&wait=true", pretty.as_bytes());
    assert_eq!(counts(&r.ok_json()), (1, 0));
    let got = metadata_of(&d, "canon");
    assert_eq!(got.len(), 4);
    for (msg, meta) in &got {
        assert_eq!(meta, want, "{msg}");
    }
}

#[test]
fn escapes_json_requires_stay_in_one_form() {
    let d = Daemon::start();
    let cases = [
        (
            r#"["\"","\\","\n","\u0001","\t\r\b\f"]"#,
            r#"["\"","\\","\n","\u0001","\t\r\b\f"]"#,
        ),
        (
            r#"["\u0022","\u005C","\u000a","\u0001","\u0009\u000d\u0008\u000c"]"#,
            r#"["\"","\\","\n","\u0001","\t\r\b\f"]"#,
        ),
        (
            r#"{"a\"b":"\u001f\u007f"}"#,
            "{\"a\\\"b\":\"\\u001f\u{7f}\"}",
        ),
    ];
    let body: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (m, _))| row("esc", &format!("e{i}"), m))
        .collect();
    let r = d.post(
        "/v0/events?name=system_logs&wait=true",
        body.join("\n").as_bytes(),
    );
    assert_eq!(counts(&r.ok_json()), (3, 0));
    let got = metadata_of(&d, "esc");
    for (i, (_, want)) in cases.iter().enumerate() {
        assert_eq!(got[i], (format!("e{i}"), want.to_string()));
    }
    // What is stored is valid JSON that means what was sent.
    for (i, (given, _)) in cases.iter().enumerate() {
        let sent: serde_json::Value = serde_json::from_str(given).unwrap();
        let stored: serde_json::Value = serde_json::from_str(&got[i].1).unwrap();
        assert_eq!(sent, stored);
    }
}

#[test]
fn import_and_bulk_store_the_same_canonical_text() {
    let d = Daemon::start();
    let escaped = r#"{"path":"/s\u00f6me","e":"\ud83d\ude00","q":"\"\\\n"}"#;
    let want = r#"{"path":"/söme","e":"😀","q":"\"\\\n"}"#;
    let r = d.post(
        "/v0/datasources?name=system_logs&mode=append&format=ndjson",
        row("imp", "import", escaped).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(metadata_of(&d, "imp"), [("import".into(), want.into())]);
    // `_bulk`: a metadata object as given, and unmapped fields gathered into metadata.
    let body = format!(
        "{{\"index\":{{}}}}\n{}\n{{\"index\":{{}}}}\n{{\"timestamp\":\"{TS}\",\"service\":\"es\",\"message\":\"extra\",\"path\":\"/s\\u00f6me\",\"e\":\"\\ud83d\\ude00\",\"q\":\"\\\"\\\\\\n\"}}\n",
        row("es", "given", escaped)
    );
    let r = d.post("/es/_bulk?wait=true", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["errors"], false, "{}", r.text());
    // (`_bulk` keeps an object-valued `metadata` field among the gathered
    // fields, as README's mapping table says.)
    assert_eq!(
        metadata_of(&d, "es"),
        [
            ("extra".into(), want.into()),
            ("given".into(), format!(r#"{{"metadata":{want}}}"#))
        ]
    );
}
