//! The ClickHouse backend's error, and how it becomes the model's.

use logpulse_model::Error as ModelError;

/// A failure talking to ClickHouse.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// No endpoint could be reached (refused, timed out, reset).
    #[error("ClickHouse unreachable ({endpoint}): {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// ClickHouse answered with an exception.
    #[error("ClickHouse error {code} ({endpoint}): {message}")]
    Server {
        endpoint: String,
        code: u32,
        message: String,
    },
    /// ClickHouse answered something this backend cannot read.
    #[error("unexpected answer from ClickHouse: {0}")]
    Decode(String),
    /// The backend is stopping or stopped.
    #[error("the ClickHouse backend is closed")]
    Closed,
}

/// Exception codes that mean "a node or shard cannot serve now" rather than
/// a fault of the query: network errors, timeouts, unavailable replicas,
/// too many parts or queries, read-only tables.
const UNAVAILABLE_CODES: [u32; 11] = [
    159,  // TIMEOUT_EXCEEDED
    202,  // TOO_MANY_SIMULTANEOUS_QUERIES
    209,  // SOCKET_TIMEOUT
    210,  // NETWORK_ERROR
    241,  // MEMORY_LIMIT_EXCEEDED
    242,  // TABLE_IS_READ_ONLY
    252,  // TOO_MANY_PARTS
    279,  // ALL_CONNECTION_TRIES_FAILED
    319,  // UNKNOWN_STATUS_OF_INSERT
    394,  // QUERY_WAS_CANCELLED
    1000, // POCO_EXCEPTION (e.g. connection refused by a shard)
];

impl Error {
    /// Whether another try (on this or another endpoint) may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Closed => true,
            Error::Server { code, .. } => UNAVAILABLE_CODES.contains(code),
            Error::Decode(_) => false,
        }
    }
}

impl From<Error> for ModelError {
    fn from(e: Error) -> ModelError {
        if matches!(e, Error::Server { code: 202, .. }) {
            tracing::warn!(error = %e, "ClickHouse busy");
            ModelError::Busy(format!("storage busy, retry shortly: {e}"))
        } else if e.is_unavailable() {
            tracing::warn!(error = %e, "ClickHouse unavailable");
            ModelError::Unavailable(format!("storage unavailable: {e}"))
        } else {
            tracing::error!(error = %e, "ClickHouse backend fault");
            ModelError::Internal("storage backend fault (see the daemon log)".into())
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
