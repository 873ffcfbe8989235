//! One severity normalisation for the shipper protocols (OTLP, Loki,
//! `_bulk`, syslog). The Events API keeps the contract's rule: stored as
//! given, upper-cased.

use std::borrow::Cow;

/// Severity of a record that names none.
pub const DEFAULT: &str = "INFO";

/// A text level: `warning`→WARN, `err`/`error`→ERROR, `fatal`, `crit`,
/// `critical`, `emerg`, `alert`, `panic`→CRITICAL, `notice`,
/// `information`→INFO, `trace`→DEBUG; anything else upper-cased (by the row
/// rules, which also trim).
pub fn from_text(text: &str) -> Cow<'_, str> {
    let t = text.trim();
    // Already in its stored form: what most senders send.
    if matches!(t, "INFO" | "WARN" | "ERROR" | "DEBUG" | "CRITICAL") {
        return Cow::Borrowed(t);
    }
    let known = [
        ("warning", "WARN"),
        ("warn", "WARN"),
        ("err", "ERROR"),
        ("error", "ERROR"),
        ("fatal", "CRITICAL"),
        ("crit", "CRITICAL"),
        ("critical", "CRITICAL"),
        ("emerg", "CRITICAL"),
        ("alert", "CRITICAL"),
        ("panic", "CRITICAL"),
        ("notice", "INFO"),
        ("information", "INFO"),
        ("info", "INFO"),
        ("trace", "DEBUG"),
        ("debug", "DEBUG"),
    ];
    match known.iter().find(|(k, _)| t.eq_ignore_ascii_case(k)) {
        Some((_, v)) => Cow::Borrowed(v),
        None => Cow::Borrowed(t),
    }
}

/// [`from_text`] of a column's value, which is kept as it is (borrowed or
/// owned, no copy) when it is already in its stored form.
pub fn normalize(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(t) => from_text(t),
        Cow::Owned(t) if from_text(&t) == t.as_str() => Cow::Owned(t),
        Cow::Owned(t) => Cow::Owned(from_text(&t).into_owned()),
    }
}

/// An OTLP `severity_number`: 1-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20
/// ERROR, 21-24 CRITICAL; `None` for 0 (unspecified) and out of range.
pub fn from_otlp_number(n: i32) -> Option<&'static str> {
    Some(match n {
        1..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "CRITICAL",
        _ => return None,
    })
}

/// A syslog severity (the low three bits of PRI): 0-2 CRITICAL, 3 ERROR,
/// 4 WARN, 5-6 INFO, 7 DEBUG.
pub fn from_syslog(severity: u8) -> &'static str {
    match severity {
        0..=2 => "CRITICAL",
        3 => "ERROR",
        4 => "WARN",
        5 | 6 => "INFO",
        _ => "DEBUG",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_table() {
        for (t, want) in [
            ("warning", "WARN"),
            ("err", "ERROR"),
            ("Error", "ERROR"),
            ("fatal", "CRITICAL"),
            ("crit", "CRITICAL"),
            ("critical", "CRITICAL"),
            ("EMERG", "CRITICAL"),
            ("alert", "CRITICAL"),
            ("panic", "CRITICAL"),
            ("notice", "INFO"),
            ("information", "INFO"),
            ("trace", "DEBUG"),
            ("verbose", "verbose"),
        ] {
            assert_eq!(from_text(t), want, "{t}");
            assert_eq!(normalize(Cow::Owned(t.to_string())), want, "{t}");
        }
        let bands = [(1, 8, "DEBUG"), (9, 12, "INFO"), (13, 16, "WARN")];
        for (lo, hi, want) in bands
            .into_iter()
            .chain([(17, 20, "ERROR"), (21, 24, "CRITICAL")])
        {
            for n in lo..=hi {
                assert_eq!(from_otlp_number(n), Some(want), "{n}");
            }
        }
        assert_eq!(from_otlp_number(0), None);
        assert_eq!(from_otlp_number(25), None);
        let pri = [
            "CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG",
        ];
        for (s, want) in pri.iter().enumerate() {
            assert_eq!(from_syslog(s as u8), *want);
        }
    }
}
