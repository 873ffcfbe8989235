//! Tokens and named values in files of the data dir (the embedded backend):
//! `tokens.json` and one file per value (`admin-token`, `workspace-id`),
//! each written atomically and private (0600).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use logpulse_model::{Error, MetaStore, Result, TokenRecord};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The scoped tokens file.
pub const TOKENS_FILE: &str = "tokens.json";

pub struct FileMeta {
    dir: PathBuf,
    /// Serializes read-modify-write of the tokens file.
    lock: Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct StoredToken {
    name: String,
    token: String,
    scopes: serde_json::Value,
}

#[derive(Serialize, Deserialize, Default)]
struct TokensFile {
    tokens: Vec<StoredToken>,
}

fn internal(path: &Path, e: impl std::fmt::Display) -> Error {
    tracing::error!(path = %path.display(), error = %e, "token or value file");
    Error::Internal(format!("{}: {e}", path.display()))
}

impl FileMeta {
    pub fn new(dir: &Path) -> FileMeta {
        FileMeta {
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
        }
    }

    fn read_tokens(&self) -> Result<TokensFile> {
        let path = self.dir.join(TOKENS_FILE);
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| internal(&path, e)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(TokensFile::default()),
            Err(e) => Err(internal(&path, e)),
        }
    }

    fn write_tokens(&self, file: &TokensFile) -> Result<()> {
        let path = self.dir.join(TOKENS_FILE);
        let data = serde_json::to_vec_pretty(file).expect("tokens serialize");
        logpulse_engine::durability::rewrite_private(&path, &data).map_err(|e| internal(&path, e))
    }
}

impl MetaStore for FileMeta {
    fn value_or_init(&self, name: &str, init: &dyn Fn() -> String) -> Result<String> {
        let path = self.dir.join(name);
        if let Ok(v) = fs::read_to_string(&path) {
            if !v.trim().is_empty() {
                return Ok(v.trim().to_string());
            }
        }
        let v = init();
        logpulse_engine::durability::rewrite_private(&path, format!("{v}\n").as_bytes())
            .map_err(|e| internal(&path, e))?;
        Ok(v)
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        Ok(self
            .read_tokens()?
            .tokens
            .into_iter()
            .map(|t| TokenRecord {
                name: t.name,
                token: t.token,
                scopes: t.scopes.to_string(),
            })
            .collect())
    }

    fn put_token(&self, r: &TokenRecord) -> Result<()> {
        let _guard = self.lock.lock();
        let mut file = self.read_tokens()?;
        file.tokens.retain(|t| t.name != r.name);
        file.tokens.push(StoredToken {
            name: r.name.clone(),
            token: r.token.clone(),
            scopes: serde_json::from_str(&r.scopes)
                .map_err(|e| Error::Internal(format!("token scopes: {e}")))?,
        });
        file.tokens.sort_by(|a, b| a.name.cmp(&b.name));
        self.write_tokens(&file)
    }

    fn delete_token(&self, name: &str) -> Result<()> {
        let _guard = self.lock.lock();
        let mut file = self.read_tokens()?;
        file.tokens.retain(|t| t.name != name);
        self.write_tokens(&file)
    }

    fn shared(&self) -> bool {
        false
    }
}
