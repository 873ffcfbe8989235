//! Elasticsearch `_bulk`: `index` and `create` actions whose documents
//! become `system_logs` rows (`document`), and the per-item answer
//! Elasticsearch gives (`answer`).

mod answer;
mod document;

use logpulse_model::ingest::{lines_of, Import, LogFields, Parsed};
use serde_json::Value as Json;

pub use answer::{response, version_document};
use document::{map, Doc};

/// A bulk action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// What happened to one action of a bulk body.
#[derive(Debug)]
pub struct Item {
    pub action: Action,
    /// `None`: the request's index.
    pub index: Option<String>,
    /// `None`: the import id and the item's position.
    pub id: Option<String>,
    /// `None`: stored; else why it was refused (quarantined or unsupported).
    pub error: Option<(&'static str, String)>,
}

/// The items of one bulk body, and what their answer needs besides.
#[derive(Debug)]
pub struct Items {
    pub default_index: String,
    pub import_id: String,
    pub list: Vec<Item>,
}

/// Parses a bulk body: rows into `out`, and an item per action. An action
/// line that is not JSON, or names an unknown action, refuses the whole
/// request (nothing is stored), as Elasticsearch does.
pub fn to_rows<'a>(
    body: &'a [u8],
    default_index: String,
    import: &Import,
    out: &mut Parsed<'a>,
) -> Result<Items, String> {
    let mut lines = lines_of(body)
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    // About one document per 256 bytes, as the Events API guesses rows.
    let guess = (body.len() / 256 + 1).min(1 << 16);
    out.rows.reserve(guess);
    let mut list = Vec::with_capacity(guess);
    while let Some(line) = lines.next() {
        let (action, index, id) = action(line)?;
        let error = match action {
            Action::Index | Action::Create => {
                let doc = lines.next().ok_or("the last action has no document")?;
                document(doc, import, out)
                    .err()
                    .map(|r| ("document_parsing_exception", r))
            }
            Action::Update => {
                lines.next();
                Some(("action_request_validation_exception", unsupported(action)))
            }
            Action::Delete => Some(("action_request_validation_exception", unsupported(action))),
        };
        list.push(Item {
            action,
            index,
            id,
            error,
        });
    }
    Ok(Items {
        default_index,
        import_id: import.id.to_string(),
        list,
    })
}

fn unsupported(action: Action) -> String {
    format!(
        "logpulse stores logs append-only: the {} action is not supported",
        action.name()
    )
}

/// An action line: the action, and its `_index` and `_id` if given.
fn action(line: &[u8]) -> Result<(Action, Option<String>, Option<String>), String> {
    // What shippers send for nearly every document.
    match line {
        br#"{"index":{}}"# => return Ok((Action::Index, None, None)),
        br#"{"create":{}}"# => return Ok((Action::Create, None, None)),
        _ => {}
    }
    let bad = |e: &dyn std::fmt::Display| format!("malformed action/metadata line: {e}");
    let v: serde_json::Map<String, Json> = serde_json::from_slice(line).map_err(|e| bad(&e))?;
    let mut it = v.into_iter();
    let (name, meta) = match (it.next(), it.next()) {
        (Some((name, Json::Object(meta))), None) => (name, meta),
        _ => return Err(bad(&"expected one action with an object")),
    };
    let action = match name.as_str() {
        "index" => Action::Index,
        "create" => Action::Create,
        "update" => Action::Update,
        "delete" => Action::Delete,
        other => {
            return Err(format!(
                "malformed action/metadata line: unknown action {other:?}"
            ))
        }
    };
    Ok((action, meta_str(&meta, "_index"), meta_str(&meta, "_id")))
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
        Ok(text) => match Doc::parse(text) {
            Err(e) => (LogFields::default(), vec![("", e)]),
            Ok(d) => map(d),
        },
    };
    let raw = || String::from_utf8_lossy(doc).into_owned();
    out.push_log(fields, errs, raw, import)
}
