//! The on-disk body encoding of rows (the row types are the model's).
//!
//! A record body is the row in bincode with varint integers
//! ([`body_options`]); field order is part of the format (docs/format.md).

use bincode::Options;
use serde::Deserialize;

pub use logpulse_model::{DataSource, LogRow, QuarantineRow, Row, ThresholdRow};

/// The leading fields of an encoded [`LogRow`]: enough to index it.
#[derive(Debug, Deserialize)]
pub struct LogHead<'a> {
    pub timestamp: u32,
    pub service: &'a str,
    pub severity: &'a str,
}

/// Encoding a row into a record body.
pub trait Encode {
    /// An upper bound of the encoded body's length, for sizing buffers.
    fn encoded_len_hint(&self) -> usize;
    /// Appends the record body (bincode) to `out`.
    fn encode_into(&self, out: &mut Vec<u8>);
}

impl Encode for Row<'_> {
    fn encoded_len_hint(&self) -> usize {
        match self {
            Row::Log(r) => r.text_bytes() + 7 * 9 + 5,
            Row::Threshold(t) => t.service.len() + t.severity.len() + 40,
            Row::Quarantine(_, q) => {
                q.raw.len()
                    + q.import_id.len()
                    + q.error
                        .iter()
                        .chain(&q.error_column)
                        .map(|s| s.len() + 9)
                        .sum::<usize>()
                    + 40
            }
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let opts = body_options();
        let res = match self {
            Row::Log(r) => opts.serialize_into(&mut *out, r),
            Row::Threshold(t) => opts.serialize_into(&mut *out, t),
            Row::Quarantine(_, q) => opts.serialize_into(&mut *out, q),
        };
        res.expect("serializing into a Vec cannot fail");
    }
}

/// bincode options of record bodies: varint integers, little endian,
/// trailing bytes allowed (so that a prefix such as [`LogHead`] decodes).
pub fn body_options() -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
        .allow_trailing_bytes()
}

pub fn decode_log(body: &[u8]) -> Result<LogRow<'_>, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

pub fn decode_log_head(body: &[u8]) -> Result<LogHead<'_>, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

pub fn decode_threshold(body: &[u8]) -> Result<ThresholdRow, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

pub fn decode_quarantine(body: &[u8]) -> Result<QuarantineRow, String> {
    body_options().deserialize(body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_row_round_trips_and_head_decodes() {
        let row = LogRow {
            timestamp: 1_685_629_800,
            service: "auth".into(),
            severity: "ERROR".into(),
            message: "failed \"x\"".into(),
            ..Default::default()
        };
        let mut buf = Vec::new();
        Row::Log(row.clone()).encode_into(&mut buf);
        assert_eq!(decode_log(&buf).unwrap(), row);
        let head = decode_log_head(&buf).unwrap();
        assert_eq!(
            (head.timestamp, head.service, head.severity),
            (row.timestamp, "auth", "ERROR")
        );
    }
}
