//! The shipper protocols: each wire format is a thin module that turns a
//! request into [`LogFields`](logpulse_model::ingest::LogFields) per record,
//! which the Events API's row rules then check, quarantine or keep
//! ([`Parsed::push_log`](logpulse_model::ingest::Parsed::push_log)). The
//! HTTP handlers are in `routes/shippers.rs`, the syslog listeners in
//! `syslog/`.

pub mod elasticsearch;
pub mod loki;
pub mod meta;
pub mod otlp;
pub mod severity;
pub mod syslog;

/// Lower-case hex of bytes (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Unix nanoseconds to a DateTime column's seconds, by the row rules' range.
pub fn nanos_to_secs(nanos: u64) -> Result<u32, String> {
    logpulse_model::time::from_unix_f64((nanos / 1_000_000_000) as f64)
}

/// The pair under the first of `names` that is present.
pub fn pick<'v, V>(pairs: &'v [(String, V)], names: &[&str]) -> Option<&'v (String, V)> {
    names
        .iter()
        .find_map(|n| pairs.iter().find(|(k, _)| k == n))
}
