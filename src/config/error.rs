//! The one error type of the config module: where (file, line) and why.

use std::fmt;

/// How many characters of an offending value an error message quotes; the rest is cut so that a
/// hostile or binary value cannot flood the log.
pub const ERROR_VALUE_MAX: usize = 64;

/// A configuration problem. `line` is 1-based, or 0 when the problem is not tied to one line
/// (unreadable file, file too large, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: &str, line: usize, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Quote a value for an error message, cut to `ERROR_VALUE_MAX` characters, with control
/// characters escaped so the message stays on one line.
/// Text from a config file shown in a message: control characters escaped so a message stays one line.
pub(super) fn escape_text(value: &str) -> String {
    if !value.chars().any(char::is_control) {
        return value.to_string();
    }
    value
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

pub(super) fn quote_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(ERROR_VALUE_MAX) + 8);
    out.push('"');
    for (n, c) in value.chars().enumerate() {
        if n == ERROR_VALUE_MAX {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_line() {
        let e = ConfigError::new("a.conf", 3, "bad");
        assert_eq!(e.to_string(), "a.conf:3: bad");
        let e = ConfigError::new("a.conf", 0, "too large");
        assert_eq!(e.to_string(), "a.conf: too large");
    }

    #[test]
    fn escape_text_keeps_messages_on_one_line() {
        assert_eq!(escape_text("plain/path"), "plain/path");
        assert_eq!(escape_text("a\nb\rc"), "a\\nb\\rc");
        assert_eq!(escape_text("é"), "é");
    }

    #[test]
    fn quote_value_cuts_and_escapes() {
        assert_eq!(quote_value("abc"), "\"abc\"");
        assert_eq!(quote_value("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(ERROR_VALUE_MAX + 10);
        let q = quote_value(&long);
        assert_eq!(q.len(), ERROR_VALUE_MAX + 5);
        assert!(q.ends_with("...\""));
    }
}
