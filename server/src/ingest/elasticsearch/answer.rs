//! What Elasticsearch answers: the bulk answer (`took`, `errors`, an item
//! per action) and the version document clients check on connect.

use serde_json::{json, Value as Json};

use super::Items;
use crate::ingest::meta::string;

/// The bulk answer, written straight into its bytes: one item per action,
/// a stored one as Elasticsearch words it (`result`, `_seq_no`, status
/// 201), a refused one with status 400 and an `error` object.
pub fn response(items: &Items, took_ms: u64) -> Vec<u8> {
    let errors = items.list.iter().any(|it| it.error.is_some());
    let mut out = Vec::with_capacity(64 + items.list.len() * 220);
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(br#"{"took":"#);
    out.extend_from_slice(num.format(took_ms).as_bytes());
    out.extend_from_slice(match errors {
        true => br#","errors":true,"items":["#.as_slice(),
        false => br#","errors":false,"items":["#.as_slice(),
    });
    let mut default_index = Vec::new();
    string(&mut default_index, &items.default_index);
    let mut seq = 0u64;
    for (n, it) in items.list.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(it.action.name().as_bytes());
        out.extend_from_slice(br#"":{"_index":"#);
        match &it.index {
            Some(index) => string(&mut out, index),
            None => out.extend_from_slice(&default_index),
        }
        out.extend_from_slice(br#","_id":"#);
        match &it.id {
            Some(id) => string(&mut out, id),
            None => {
                // The import id is alphanumeric: nothing to escape.
                out.push(b'"');
                out.extend_from_slice(items.import_id.as_bytes());
                out.push(b'-');
                out.extend_from_slice(num.format(n).as_bytes());
                out.push(b'"');
            }
        }
        match &it.error {
            None => {
                out.extend_from_slice(
                    br#","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":"#,
                );
                out.extend_from_slice(num.format(seq).as_bytes());
                out.extend_from_slice(br#","_primary_term":1,"status":201}}"#);
                seq += 1;
            }
            Some((kind, reason)) => {
                out.extend_from_slice(br#","status":400,"error":{"type":"#);
                string(&mut out, kind);
                out.extend_from_slice(br#","reason":"#);
                string(&mut out, reason);
                out.extend_from_slice(b"}}}");
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::elasticsearch::{Action, Item};

    #[test]
    fn the_answer_is_json_with_an_item_per_action() {
        let items = Items {
            default_index: "logs".into(),
            import_id: "imp".into(),
            list: vec![
                Item {
                    action: Action::Index,
                    index: None,
                    id: None,
                    error: None,
                },
                Item {
                    action: Action::Create,
                    index: Some("a\"b".into()),
                    id: Some("x1".into()),
                    error: Some(("document_parsing_exception", "bad \n row".into())),
                },
                Item {
                    action: Action::Index,
                    index: None,
                    id: Some("x2".into()),
                    error: None,
                },
            ],
        };
        let v: Json = serde_json::from_slice(&response(&items, 7)).unwrap();
        assert_eq!(v["took"], 7);
        assert_eq!(v["errors"], true);
        let first = &v["items"][0]["index"];
        assert_eq!(first["_index"], "logs");
        assert_eq!(first["_id"], "imp-0");
        assert_eq!(first["status"], 201);
        assert_eq!(first["_seq_no"], 0);
        assert_eq!(first["_shards"]["successful"], 1);
        let bad = &v["items"][1]["create"];
        assert_eq!(bad["_index"], "a\"b");
        assert_eq!(bad["status"], 400);
        assert_eq!(bad["error"]["reason"], "bad \n row");
        assert_eq!(v["items"][2]["index"]["_seq_no"], 1);
    }
}
