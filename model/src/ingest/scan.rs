//! The one-pass scanner of the common NDJSON row: one flat JSON object
//! (member values that are strings, numbers, `true`, `false` or `null`).
//!
//! It is a shortcut, never a second rule book: it answers `None` for
//! anything it does not fully understand (a nested object or array, an
//! escape in a key, a `\u` escape of a surrogate, a repeated known key, any
//! syntax error) and the caller then runs serde_json's path, which gives
//! the result and the quarantine reason exactly as before. When it answers,
//! the text is valid JSON and every member it hands out is the raw text that
//! serde_json's `RawValue` would have held: the same rows follow.
//! `engine/tests/parser_fuzz.rs` checks both paths against each other.

/// JSON's four white-space bytes.
#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Scans a flat object, calling `member(key, raw value)` for each member in
/// order; `member` answers false to give up (a repeated key). `None`: not a
/// flat object this scanner accepts (which says nothing about its validity).
pub fn scan_flat<'a>(
    text: &'a str,
    mut member: impl FnMut(&'a str, &'a str) -> bool,
) -> Option<()> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key_end, escaped) = string_end(b, i + 1)?;
        if escaped {
            return None;
        }
        let key = &text[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let start = i;
        i = match *b.get(i)? {
            b'"' => string_end(b, i + 1)?.0,
            b'-' | b'0'..=b'9' => number_end(b, i)?,
            b't' => literal_end(b, i, b"true")?,
            b'f' => literal_end(b, i, b"false")?,
            b'n' => literal_end(b, i, b"null")?,
            _ => return None,
        };
        if !member(key, &text[start..i]) {
            return None;
        }
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return (skip_ws(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

/// The end (after the closing quote) of the string whose text starts at
/// `i`, and whether it holds an escape. `None`: not valid, or a `\u` escape
/// of a surrogate (left to serde_json).
#[inline]
fn string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        let p = special(b, i)?;
        match b[p] {
            b'"' => return Some((p + 1, escaped)),
            b'\\' => {}
            // A control character must be escaped.
            _ => return None,
        }
        escaped = true;
        i = match *b.get(p + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => p + 2,
            b'u' => {
                let hex = b.get(p + 2..p + 6)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                // D800-DFFF: a surrogate; serde_json decides about pairs.
                if matches!(hex[0], b'd' | b'D')
                    && matches!(hex[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                {
                    return None;
                }
                p + 6
            }
            _ => return None,
        };
    }
}

/// The first `"`, `\\` or control character (< 0x20) at or after `i`,
/// eight bytes at a time (row strings are short: a SIMD search's set-up
/// costs more than it saves).
#[inline]
fn special(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Bytes of `w` below `n` (n <= 0x80) flag their high bit; the lowest
    // flagged byte is exact (borrows only run upwards), which is all we use.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * n as u64) & !w & HIGHS;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let hit = below(w ^ (ONES * b'"' as u64), 1)
            | below(w ^ (ONES * b'\\' as u64), 1)
            | below(w, 0x20);
        if hit != 0 {
            return Some(i + hit.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

/// The end of the JSON number at `i`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[inline]
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], i: usize| -> usize {
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    if b[i] == b'-' {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let j = digits(b, i + 1);
        if j == i + 1 {
            return None;
        }
        i = j;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let j = digits(b, i);
        if j == i {
            return None;
        }
        i = j;
    }
    // A number runs into the next token only through white space or a
    // delimiter; `01` or `1x` is not JSON.
    match b.get(i) {
        None => Some(i),
        Some(c) if is_ws(*c) || matches!(c, b',' | b'}') => Some(i),
        _ => None,
    }
}

#[inline]
fn literal_end(b: &[u8], i: usize, lit: &[u8]) -> Option<usize> {
    (b.get(i..i + lit.len())? == lit).then_some(i + lit.len())
}

#[cfg(test)]
mod tests {
    use super::scan_flat;

    fn members(text: &str) -> Option<Vec<(&str, &str)>> {
        let mut out = Vec::new();
        scan_flat(text, |k, v| {
            out.push((k, v));
            true
        })?;
        Some(out)
    }

    #[test]
    fn flat_objects_give_their_raw_members() {
        assert_eq!(
            members(r#" { "a" : "x\"y\u00e9" , "b":-1.5e+3,"c":true,"d":null,"e":0 } "#),
            Some(vec![
                ("a", r#""x\"y\u00e9""#),
                ("b", "-1.5e+3"),
                ("c", "true"),
                ("d", "null"),
                ("e", "0"),
            ])
        );
        assert_eq!(members("{}"), Some(vec![]));
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        for text in [
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a\u0062":1}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\uDC00"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":1x}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a":1}x"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a" 1}"#,
            r#"{"a":1"#,
            r#"{"a":"1"#,
            "[1]",
            "{\u{c}}",
        ] {
            assert_eq!(members(text), None, "{text}");
            // Everything accepted is valid JSON; spot-check the reverse here.
        }
        for text in [r#"{"a":"\ud7ff\ue000"}"#, r#"{"a":"\u0000"}"#] {
            assert!(members(text).is_some(), "{text}");
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
        }
    }
}
