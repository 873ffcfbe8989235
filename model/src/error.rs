//! The one error every backend reports through [`crate::Storage`].
//!
//! It says whose fault a failure is, which is all the server needs to answer
//! it: a client's mistake (400), too much at once (429), storage that cannot
//! serve now and will again (503), or a fault of the store itself (500). A
//! backend logs the detail of an internal fault where it happens; the message
//! here is what the client is told.

/// A failure of a storage call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is wrong; retrying it unchanged fails again.
    #[error("{0}")]
    Client(String),
    /// The backend is behind: retry shortly.
    #[error("{0}")]
    Busy(String),
    /// The backend cannot serve now (full disk, shutting down, a database
    /// node down) and is expected to recover; nothing was stored.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the store (corrupt file, unexpected I/O error, a database
    /// answering nonsense). Never the client's fault.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
