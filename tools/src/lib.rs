//! Offline tools of logpulse: `logpulse-replay` and `logpulse-compact`.
//!
//! Validation, quarantine and file formats come from `logpulse-engine`; the
//! tools only read inputs, schedule work and report.
#![deny(unsafe_code)]

/// Logs to stderr, filtered by `LOGPULSE_LOG` (default `warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOGPULSE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

pub mod compact;
pub mod input;
pub mod replay;
