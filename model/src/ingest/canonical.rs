//! The canonical text of a JSON object or array stored in a String column
//! (`metadata`): compact, members in their given order, numbers and
//! literals as given, and strings escaped only where JSON requires it.
//!
//! Two clients that send the same object, one with `"ö"` and one with
//! `"\u00f6"` (Python's `json.dumps` default), store the same text. A string
//! is written the way serde_json writes one, so the metadata that the
//! shipper protocols build with serde_json is canonical too: `"` and `\` as
//! `\"` and `\\`; U+0008, U+000C, `\n`, `\r`, `\t` as these short escapes;
//! other control characters (U+0000-U+001F) as `\u00xx` (lower-case hex);
//! every other character as itself in UTF-8 (`\/` becomes `/`, a surrogate
//! pair becomes its character). A lone surrogate, which UTF-8 cannot hold,
//! stays escaped (`\udxxx`).

/// The canonical text of valid JSON text (see the module). Text that is not
/// valid JSON never panics; what it gives is unspecified.
pub fn canonical_json(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => i = string(raw, i + 1, &mut out),
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'"') {
                    i += 1;
                }
                out.push_str(&raw[start..i]);
            }
        }
    }
    out
}

/// Writes the string literal whose text starts at `i` (after its opening
/// quote); the index after its closing quote.
fn string(raw: &str, mut i: usize, out: &mut String) -> usize {
    let b = raw.as_bytes();
    out.push('"');
    loop {
        let run = memchr::memchr2(b'"', b'\\', &b[i..]).map_or(b.len(), |p| i + p);
        out.push_str(&raw[i..run]);
        if run >= b.len() {
            return run;
        }
        if b[run] == b'"' {
            out.push('"');
            return run + 1;
        }
        i = escape(raw, run, out);
    }
}

/// Writes the escape at `i` (its backslash) canonically; the index after it.
fn escape(raw: &str, i: usize, out: &mut String) -> usize {
    let b = raw.as_bytes();
    let c = match b.get(i + 1) {
        None => return b.len(),
        Some(b'u') => match hex4(b, i + 2) {
            None => {
                // Not valid JSON: kept as it came.
                out.push('\\');
                return i + 1;
            }
            Some(hi @ 0xD800..=0xDBFF) => match low_surrogate(b, i + 6) {
                Some(lo) => {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    push_char(char::from_u32(c).unwrap_or('\u{fffd}'), out);
                    return i + 12;
                }
                None => {
                    push_lone_surrogate(hi, out);
                    return i + 6;
                }
            },
            Some(lo @ 0xDC00..=0xDFFF) => {
                push_lone_surrogate(lo, out);
                return i + 6;
            }
            Some(c) => {
                push_char(char::from_u32(c).unwrap_or('\u{fffd}'), out);
                return i + 6;
            }
        },
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(_) => {
            // Not valid JSON: kept as it came.
            out.push('\\');
            return i + 1;
        }
    };
    push_char(c, out);
    i + 2
}

/// The value of the 4 hex digits at `i`.
fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
    if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// The low surrogate escaped at `i` (`\udc00`-`\udfff`), if there is one.
fn low_surrogate(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i..i + 2)? != b"\\u" {
        return None;
    }
    hex4(b, i + 2).filter(|c| (0xDC00..=0xDFFF).contains(c))
}

fn push_lone_surrogate(c: u32, out: &mut String) {
    out.push_str(&format!("\\u{c:04x}"));
}

/// A character inside a string literal, escaped only where JSON requires.
pub(super) fn push_char(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0'..='\u{1f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json;

    #[test]
    fn both_escapings_of_one_object_are_one_text() {
        let want = r#"{"path":"/söme","e":"😀"}"#;
        for given in [
            r#"{"path":"/söme","e":"😀"}"#,
            r#"{"path":"/s\u00f6me","e":"\ud83d\ude00"}"#,
            r#"{ "path" : "\/s\u00F6me" , "e" : "\uD83D\uDE00" }"#,
        ] {
            assert_eq!(canonical_json(given), want, "{given}");
        }
    }

    #[test]
    fn required_escapes_stay_and_take_one_form() {
        let cases = [
            (
                r#"["\"","\\","\n","\u0001"]"#,
                r#"["\"","\\","\n","\u0001"]"#,
            ),
            (
                r#"["\u0022","\u005c","\u000a","\u001F"]"#,
                r#"["\"","\\","\n","\u001f"]"#,
            ),
            (
                r#"["\b\f\r\t","\u0008\u000c\u000d\u0009"]"#,
                r#"["\b\f\r\t","\b\f\r\t"]"#,
            ),
            (
                r#"{"k\u00e9y":{"n":[1.50, -0, 1E3, true, null]}}"#,
                r#"{"kéy":{"n":[1.50,-0,1E3,true,null]}}"#,
            ),
            (
                "[\"\u{7f}\u{2028}\u{feff}\"]",
                "[\"\u{7f}\u{2028}\u{feff}\"]",
            ),
            (
                r#"["\ud800","\udc00x","\ud83d\u0041"]"#,
                r#"["\ud800","\udc00x","\ud83dA"]"#,
            ),
            (" [ \"a b\" , { } ] ", r#"["a b",{}]"#),
        ];
        for (given, want) in cases {
            assert_eq!(canonical_json(given), want, "{given}");
        }
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        // The shipper protocols build metadata with serde_json: the same text.
        let all: String = (0u32..0x80)
            .chain([0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
            .collect();
        let v = serde_json::json!({ "k": all, "nested": [all] });
        let text = v.to_string();
        assert_eq!(canonical_json(&text), text);
        let escaped: String = all
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let escaped = escaped.replace("\\u1f600", "\\ud83d\\ude00");
        let given = format!(r#"{{"k":"{escaped}","nested":["{escaped}"]}}"#);
        assert_eq!(canonical_json(&given), text);
    }

    #[test]
    fn broken_text_does_not_panic() {
        for s in [
            "\"\\",
            "\"\\u12",
            "\"\\ud83d\\u",
            "\"\\x\"",
            "\"é",
            "[\"\\uzzzz\"]",
        ] {
            let _ = canonical_json(s);
        }
    }
}
