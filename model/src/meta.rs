//! What the server keeps beside the rows: scoped tokens and a few named
//! values (the workspace id, a generated admin token). The embedded backend
//! keeps them in files of its data dir; a backend shared by several
//! `logpulsed` nodes keeps them in the database, so that every node accepts
//! the same tokens and reports the same workspace.

use crate::error::Result;

/// A scoped token as stored: the server's own encoding of its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    pub token: String,
    /// JSON array of the token's scopes.
    pub scopes: String,
}

/// Like [`crate::Storage`], every method may block: call them on the
/// blocking pool.
pub trait MetaStore: Send + Sync + 'static {
    /// The value stored under `name`; when there is none, `init()` is stored
    /// and returned. When nodes race, every one of them ends with the value
    /// stored first.
    fn value_or_init(&self, name: &str, init: &dyn Fn() -> String) -> Result<String>;
    /// Every token, by name.
    fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Stores a new token.
    fn put_token(&self, record: &TokenRecord) -> Result<()>;
    /// Removes a token.
    fn delete_token(&self, name: &str) -> Result<()>;
    /// Whether other nodes change it too (the server then re-reads the
    /// tokens every second).
    fn shared(&self) -> bool;
}
