//! Tokens: the admin token and scoped tokens (Tinybird's Tokens API), kept
//! by the backend's [`MetaStore`] (files in the data dir, or ClickHouse so
//! that every node of a cluster accepts them). Token values are compared in
//! constant time and never logged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderMap;
use parking_lot::RwLock;
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use logpulse_model::{MetaStore, TokenRecord};

/// The generated admin token's name in the [`MetaStore`], and its file in
/// the data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Shortest admin token accepted at start.
pub const ADMIN_TOKEN_MIN_LEN: usize = 16;
/// Most scoped tokens kept.
pub const TOKENS_MAX: usize = 1000;
/// Longest token name, in bytes.
pub const TOKEN_NAME_MAX: usize = 128;

/// One scope of a scoped token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(rename = "type")]
    pub kind: String,
    pub resource: String,
    #[serde(default)]
    pub filter: String,
}

/// Scope kinds accepted by `POST /v0/tokens`.
pub const SCOPE_KINDS: [&str; 3] = ["DATASOURCES:APPEND", "DATASOURCES:READ", "PIPES:READ"];

impl Scope {
    /// Parses `KIND:RESOURCE`, e.g. `DATASOURCES:APPEND:system_logs`.
    /// `exists(kind, resource)` says whether the pipe or data source named
    /// exists: a scope on nothing is refused.
    pub fn parse(s: &str, exists: impl Fn(&str, &str) -> bool) -> Result<Scope, String> {
        let (kind, resource) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid scope {s:?}"))?;
        if !SCOPE_KINDS.contains(&kind) || resource.is_empty() {
            return Err(format!(
                "invalid scope {s:?}: expected one of {} followed by :<name>",
                SCOPE_KINDS.join(", ")
            ));
        }
        if !exists(kind, resource) {
            return Err(format!("invalid scope {s:?}: no such {}", what(kind)));
        }
        Ok(Scope {
            kind: kind.into(),
            resource: resource.into(),
            filter: String::new(),
        })
    }
}

fn what(kind: &str) -> &'static str {
    if kind.starts_with("PIPES") {
        "pipe"
    } else {
        "data source"
    }
}

/// A token name is 1 to [`TOKEN_NAME_MAX`] bytes without control characters.
pub fn check_token_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > TOKEN_NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "invalid token name: 1 to {TOKEN_NAME_MAX} bytes without control characters"
        )));
    }
    Ok(())
}

/// Refuses a configured admin token that is blank, short or has spaces or
/// control characters in it.
pub fn check_admin_token(t: &str) -> anyhow::Result<()> {
    if t.len() < ADMIN_TOKEN_MIN_LEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!(
            "the admin token must be at least {ADMIN_TOKEN_MIN_LEN} characters without \
             spaces or control characters"
        );
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Token {
    pub name: String,
    pub token: String,
    pub scopes: Vec<Scope>,
}

/// Who a request is.
#[derive(Clone, Debug)]
pub enum Principal {
    Admin,
    Scoped(Vec<Scope>),
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Admin)
    }

    pub fn has(&self, kind: &str, resource: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Scoped(scopes) => scopes
                .iter()
                .any(|s| s.kind == kind && s.resource == resource),
        }
    }

    /// Errors with 403 unless the principal holds `kind:resource`.
    pub fn require(&self, kind: &str, resource: &str) -> Result<(), ApiError> {
        if self.has(kind, resource) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "token lacks the {kind}:{resource} scope"
            )))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this operation needs the admin token".into(),
            ))
        }
    }
}

pub struct Auth {
    admin: String,
    meta: Arc<dyn MetaStore>,
    tokens: RwLock<BTreeMap<String, Token>>,
    /// Creations and deletions by this node: a refresh that read the store
    /// before one of them does not overwrite it.
    changes: std::sync::atomic::AtomicU64,
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new random token value.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    format!(
        "lp.{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

impl Auth {
    /// Loads tokens; resolves the admin token from config, or the store's
    /// `admin-token`, generating it there on first start. Blocks.
    pub fn load(
        meta: Arc<dyn MetaStore>,
        data_dir: &Path,
        configured_admin: Option<String>,
    ) -> anyhow::Result<Auth> {
        let admin = match configured_admin {
            Some(t) => t,
            None => load_or_generate_admin(meta.as_ref(), data_dir)?,
        };
        check_admin_token(&admin)?;
        let tokens = read_tokens(meta.as_ref())?;
        Ok(Auth {
            admin,
            meta,
            tokens: RwLock::new(tokens),
            changes: Default::default(),
        })
    }

    /// Whether other nodes change the tokens too (see [`Self::refresh`]).
    pub fn shared(&self) -> bool {
        self.meta.shared()
    }

    /// Re-reads the tokens (other nodes' creations and deletions). Blocks.
    pub fn refresh(&self) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering;
        let before = self.changes.load(Ordering::Acquire);
        let tokens = read_tokens(self.meta.as_ref())?;
        let mut current = self.tokens.write();
        if self.changes.load(Ordering::Acquire) == before {
            *current = tokens;
        }
        Ok(())
    }

    /// The token of a request: `Authorization: Bearer <token>`, HTTP Basic
    /// whose password is the token (as Loki and Elasticsearch clients send),
    /// or the `token` parameter.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim());
        let basic = value.and_then(basic_password);
        let header = value
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest)
            })
            .map(str::trim)
            .or(basic.as_deref());
        let Some(token) = header.or(query_token).filter(|t| !t.is_empty()) else {
            return Err(ApiError::Unauthorized(
                "missing token: send Authorization: Bearer <token> or ?token=".into(),
            ));
        };
        if ct_eq(token, &self.admin) {
            return Ok(Principal::Admin);
        }
        let tokens = self.tokens.read();
        let mut found = None;
        for t in tokens.values() {
            if ct_eq(token, &t.token) {
                found = Some(t.scopes.clone());
            }
        }
        found
            .map(Principal::Scoped)
            .ok_or_else(|| ApiError::Forbidden("invalid token".into()))
    }

    /// The admin token, for the admin's own token listing.
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    pub fn list(&self) -> Vec<Token> {
        self.tokens.read().values().cloned().collect()
    }

    pub fn create(&self, name: &str, scopes: Vec<Scope>) -> Result<Token, ApiError> {
        check_token_name(name)?;
        let mut tokens = self.tokens.write();
        if tokens.contains_key(name) {
            return Err(ApiError::BadRequest(format!(
                "a token named {name:?} already exists"
            )));
        }
        if tokens.len() >= TOKENS_MAX {
            return Err(ApiError::BadRequest(format!(
                "at most {TOKENS_MAX} tokens: delete one first"
            )));
        }
        let t = Token {
            name: name.to_string(),
            token: generate_token(),
            scopes,
        };
        self.meta.put_token(&record(&t))?;
        tokens.insert(name.to_string(), t.clone());
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(t)
    }

    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        let mut tokens = self.tokens.write();
        if !tokens.contains_key(name) {
            return Err(ApiError::NotFound(format!("no token named {name:?}")));
        }
        self.meta.delete_token(name)?;
        tokens.remove(name);
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }
}

fn read_tokens(meta: &dyn MetaStore) -> anyhow::Result<BTreeMap<String, Token>> {
    let mut out = BTreeMap::new();
    for r in meta.tokens()? {
        let scopes: Vec<Scope> = serde_json::from_str(&r.scopes)
            .map_err(|e| anyhow::anyhow!("the scopes of token {:?}: {e}", r.name))?;
        out.insert(
            r.name.clone(),
            Token {
                name: r.name,
                token: r.token,
                scopes,
            },
        );
    }
    Ok(out)
}

/// The password of an `Authorization: Basic` value.
fn basic_password(v: &str) -> Option<String> {
    use base64::Engine;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

fn record(t: &Token) -> TokenRecord {
    TokenRecord {
        name: t.name.clone(),
        token: t.token.clone(),
        scopes: serde_json::to_string(&t.scopes).expect("scopes serialize"),
    }
}

/// The generated admin token: from the store, or made and stored there. A
/// store shared by several nodes also gets a copy in this node's data dir,
/// so that its operator reads it where the embedded backend keeps it.
fn load_or_generate_admin(meta: &dyn MetaStore, data_dir: &Path) -> anyhow::Result<String> {
    let token = meta.value_or_init(ADMIN_TOKEN_FILE, &generate_token)?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if meta.shared() {
        logpulse_engine::durability::rewrite_private(&path, format!("{token}\n").as_bytes())?;
    }
    tracing::info!(path = %path.display(), "admin token ready; read it from this file");
    Ok(token)
}
