//! `contains`: a case-insensitive substring of `message`, shared by
//! `recent_logs` and the live tail so both select the same rows.

/// A needle, lower-cased once. Matching lower-cases the haystack with
/// Unicode rules (`str::to_lowercase`), unless both are ASCII.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contains {
    needle: String,
}

impl Contains {
    pub fn new(needle: &str) -> Contains {
        Contains {
            needle: needle.to_lowercase(),
        }
    }

    pub fn needle(&self) -> &str {
        &self.needle
    }

    pub fn matches(&self, message: &str) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        if message.is_ascii() && self.needle.is_ascii() {
            let n = self.needle.as_bytes();
            return message
                .as_bytes()
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n));
        }
        message.to_lowercase().contains(&self.needle)
    }
}

#[cfg(test)]
mod tests {
    use super::Contains;

    #[test]
    fn matches_ignoring_case() {
        let c = Contains::new("TimeOut");
        assert!(c.matches("upstream timeout after 3 s"));
        assert!(c.matches("TIMEOUT"));
        assert!(!c.matches("time out"));
        assert!(Contains::new("ÉCHEC").matches("un échec grave"));
        assert!(Contains::new("").matches(""));
        assert!(!Contains::new("x").matches(""));
    }
}
