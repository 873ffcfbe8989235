//! The engine's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong inside the engine.
///
/// Callers can tell a full disk ([`Error::DiskFull`]) from a corrupt file
/// ([`Error::Corrupt`]) from a writer that refused further work after an I/O
/// failure ([`Error::Poisoned`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("disk full while writing {path}")]
    DiskFull { path: PathBuf },
    #[error("corrupt data in {path} at byte offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{path} has format version {found}, this build reads version {expected}")]
    Version {
        path: PathBuf,
        found: u16,
        expected: u16,
    },
    #[error("data dir {path} is locked by another process ({holder})")]
    Locked { path: PathBuf, holder: String },
    #[error("index error: {0}")]
    Index(String),
    #[error("writer stopped after an earlier i/o failure: {0}")]
    Poisoned(String),
    #[error("engine is shutting down")]
    ShuttingDown,
    #[error("write queue is full")]
    Busy,
    #[error("free disk space ({free} bytes) is under min_free_disk_bytes ({floor}): appends are refused until space is freed")]
    LowDisk { free: u64, floor: u64 },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it happened on, recognising ENOSPC.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if source.raw_os_error() == Some(28) || source.kind() == io::ErrorKind::StorageFull {
            Error::DiskFull { path }
        } else {
            Error::Io { path, source }
        }
    }

    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// What the server is told: whose fault it is, in the backend-neutral error.
/// Faults of the store are logged here with their detail (file, offset).
impl From<Error> for logpulse_model::Error {
    fn from(e: Error) -> logpulse_model::Error {
        use logpulse_model::Error as M;
        match e {
            Error::Busy => M::Busy("ingestion is behind; retry later".into()),
            Error::DiskFull { .. } => M::Unavailable("disk full: rows were not stored".into()),
            Error::LowDisk { .. } => M::Unavailable(e.to_string()),
            Error::ShuttingDown => M::Unavailable("shutting down".into()),
            Error::Poisoned(_) => {
                tracing::error!(error = %e, "storage refuses writes after an i/o failure");
                M::Unavailable(
                    "storage stopped accepting writes after an i/o error; see the daemon log"
                        .into(),
                )
            }
            Error::Invalid(m) => M::Client(m),
            other => {
                tracing::error!(error = %other, "storage error");
                M::Internal(format!("storage error: {other}"))
            }
        }
    }
}
