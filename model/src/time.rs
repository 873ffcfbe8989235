//! DateTime parsing and formatting, as the API contract defines them.
//!
//! Stored timestamps are `u32` Unix seconds (ClickHouse `DateTime`), covering
//! 1970-01-01 00:00:00 to 2105-12-31 23:59:59.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Largest accepted timestamp: 2105-12-31 23:59:59 UTC.
pub const MAX_TIMESTAMP: i64 = 4_291_747_199;

/// Parses a DateTime given as text: `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS`
/// (optional fraction, optional `Z` or `±HH:MM`), `YYYY-MM-DD`, or Unix seconds
/// (integer or fractional). Fractions are truncated.
pub fn parse_datetime(text: &str) -> Result<u32, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty DateTime".into());
    }
    let secs = if looks_numeric(s) {
        parse_unix(s)?
    } else {
        parse_calendar(s)?
    };
    check_range(secs)
}

/// Parses a DateTime given as a JSON number (Unix seconds).
pub fn from_unix_f64(v: f64) -> Result<u32, String> {
    if !v.is_finite() {
        return Err("DateTime is not finite".into());
    }
    check_range(v.trunc() as i64).map_err(|_| format!("DateTime {v} out of range"))
}

fn check_range(secs: i64) -> Result<u32, String> {
    if (0..=MAX_TIMESTAMP).contains(&secs) {
        Ok(secs as u32)
    } else {
        Err(format!(
            "DateTime {secs} outside 1970-01-01 00:00:00..2105-12-31 23:59:59"
        ))
    }
}

fn looks_numeric(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit() || b == b'.') && body != "."
}

fn parse_unix(s: &str) -> Result<i64, String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) || int.is_empty() || int == "-" {
        return Err(format!("invalid Unix time {s:?}"));
    }
    let v: i64 = int
        .parse()
        .map_err(|_| format!("invalid Unix time {s:?}"))?;
    // A negative fractional time truncates towards zero, as ClickHouse does.
    Ok(v)
}

fn parse_calendar(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid DateTime {s:?}");
    if s.len() == 10 {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(bad)?
            .and_utc()
            .timestamp());
    }
    let b = s.as_bytes();
    // Byte 19 must start a character: `&s[..19]` below would panic otherwise.
    if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') || !s.is_char_boundary(19) {
        return Err(bad());
    }
    let base = match canonical_secs(&b[..19]) {
        Some(secs) => secs,
        None => NaiveDateTime::parse_from_str(&s[..19].replacen('T', " ", 1), "%Y-%m-%d %H:%M:%S")
            .map_err(|_| bad())?
            .and_utc()
            .timestamp(),
    };
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &r[digits..];
    }
    let offset_secs = parse_offset(rest).ok_or_else(bad)?;
    Ok(base - offset_secs)
}

/// `YYYY-MM-DD?HH:MM:SS` with every digit in place and every field in range,
/// without chrono (the ingest hot path). `None` for anything else, including
/// a leap second, which then goes through chrono as before.
fn canonical_secs(b: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
        })
    };
    let sep = b[10] == b' ' || b[10] == b'T';
    if !sep || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    const MONTH_DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = *MONTH_DAYS.get((m as usize).wrapping_sub(1))? + u32::from(leap && m == 2);
    if d == 0 || d > month_days {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = days_from_civil(y as i64, m, d);
    Some(days * 86_400 + (hh * 3600 + mm * 60 + ss) as i64)
}

/// Howard Hinnant's civil-to-days algorithm (days since 1970-01-01).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `""`, `Z`, `+HH:MM`, `-HH:MM`, `+HHMM` or `+HH` → seconds east of UTC.
fn parse_offset(s: &str) -> Option<i64> {
    let s = s.trim_start();
    if s.is_empty() || s == "Z" || s == "z" {
        return Some(0);
    }
    let sign = match s.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_datetime(secs: u32) -> String {
    let mut out = String::with_capacity(19);
    write_datetime(&mut out, secs);
    out
}

/// Appends `YYYY-MM-DD HH:MM:SS` to `out` without allocating.
pub fn write_datetime(out: &mut String, secs: u32) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, (rem / 60) % 60, rem % 60);
    let mut buf = [0u8; 19];
    put4(&mut buf[0..4], y as u32);
    buf[4] = b'-';
    put2(&mut buf[5..7], m);
    buf[7] = b'-';
    put2(&mut buf[8..10], d);
    buf[10] = b' ';
    put2(&mut buf[11..13], hh);
    buf[13] = b':';
    put2(&mut buf[14..16], mm);
    buf[16] = b':';
    put2(&mut buf[17..19], ss);
    out.push_str(std::str::from_utf8(&buf).expect("ascii digits"));
}

fn put2(b: &mut [u8], v: u32) {
    b[0] = b'0' + (v / 10) as u8;
    b[1] = b'0' + (v % 10) as u8;
}

fn put4(b: &mut [u8], v: u32) {
    put2(&mut b[0..2], v / 100);
    put2(&mut b[2..4], v % 100);
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The current time as Unix seconds, clamped into the DateTime range.
pub fn now() -> u32 {
    Utc::now().timestamp().clamp(0, MAX_TIMESTAMP) as u32
}

/// `YYYYMMDDHH` of an hour number (Unix seconds / 3600), used in file names.
pub fn hour_label(hour: u32) -> String {
    let dt: DateTime<Utc> = Utc
        .timestamp_opt(hour as i64 * 3600, 0)
        .single()
        .unwrap_or_default();
    dt.format("%Y%m%d%H").to_string()
}

/// The hour number of a `YYYYMMDDHH` label (the inverse of [`hour_label`]).
pub fn hour_from_label(label: &str) -> Option<u32> {
    let b = label.as_bytes();
    if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let text = format!(
        "{}-{}-{} {}:00:00",
        &label[0..4],
        &label[4..6],
        &label[6..8],
        &label[8..10]
    );
    let secs = canonical_secs(text.as_bytes())?;
    u32::try_from(secs / 3600).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_form() {
        let want = 1_685_629_800; // 2023-06-01 14:30:00
        for s in [
            "2023-06-01 14:30:00",
            "2023-06-01T14:30:00",
            "2023-06-01T14:30:00Z",
            "2023-06-01T14:30:00.987Z",
            "2023-06-01 14:30:00.5",
            "2023-06-01T16:30:00+02:00",
            "2023-06-01T12:30:00-02:00",
            "1685629800",
            "1685629800.9",
        ] {
            assert_eq!(parse_datetime(s), Ok(want), "{s}");
        }
        assert_eq!(parse_datetime("2023-06-01"), Ok(1_685_577_600));
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        for s in [
            "2106-01-01 00:00:00",
            "1969-12-31 23:59:59",
            "-1",
            "abc",
            "2023-13-01",
            "",
        ] {
            assert!(parse_datetime(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_datetime("2105-12-31 23:59:59"),
            Ok(MAX_TIMESTAMP as u32)
        );
    }

    #[test]
    fn canonical_fast_path_agrees_with_chrono() {
        let slow = |s: &str| {
            NaiveDateTime::parse_from_str(&s.replacen('T', " ", 1), "%Y-%m-%d %H:%M:%S")
                .ok()
                .map(|n| n.and_utc().timestamp())
        };
        let mut secs: i64 = -86_400 * 3;
        while secs < MAX_TIMESTAMP + 86_400 * 3 {
            let t = format_datetime(secs.clamp(0, u32::MAX as i64) as u32);
            assert_eq!(canonical_secs(t.as_bytes()), slow(&t), "{t}");
            secs += 3_599_999;
        }
        for s in [
            "2023-02-29 00:00:00",
            "2024-02-29 00:00:00",
            "2000-02-29 12:00:00",
            "1900-02-29 12:00:00",
            "2023-04-31 00:00:00",
            "2023-00-10 00:00:00",
            "2023-12-00 00:00:00",
            "2023-06-01 24:00:00",
            "2023-06-01 23:60:00",
            "2023-06-01 23:59:60",
            "2023-06-01T23:59:59",
            "2023-06-01x23:59:59",
        ] {
            let fast = canonical_secs(s.as_bytes());
            assert!(fast.is_none() || fast == slow(s), "{s}");
            assert_eq!(parse_calendar(s).ok(), slow(s), "{s}");
        }
    }

    #[test]
    fn hour_labels_round_trip() {
        for h in [0u32, 1, 468_000, 1_192_152] {
            assert_eq!(hour_from_label(&hour_label(h)), Some(h));
        }
        assert_eq!(hour_from_label("2023060124"), None);
        assert_eq!(hour_from_label("202306011"), None);
    }

    #[test]
    fn formats_like_clickhouse() {
        assert_eq!(format_datetime(1_685_629_800), "2023-06-01 14:30:00");
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(MAX_TIMESTAMP as u32), "2105-12-31 23:59:59");
    }
}
