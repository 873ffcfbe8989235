//! Offline tools of logpulse: `logpulse-replay` and `logpulse-compact`.
//!
//! Validation, quarantine and file formats come from `logpulse-engine`; the
//! tools only read inputs, schedule work and report.
#![deny(unsafe_code)]

pub mod compact;
pub mod input;
pub mod replay;
