//! A QSettings-compatible INI reader, as Pushpin reads pushpin.conf.
//!
//! What is kept from QSettings (`QSettings::IniFormat` on Unix):
//! - `[section]` headers; `[General]` (any case) and keys before the first header share the
//!   section "General". Section and key names are case-sensitive.
//! - `key=value`, split at the first `=`; key and value trimmed.
//! - Values: `"..."` quotes keep spaces and commas and are removed; escapes `\a \b \f \n \r \t
//!   \v \" \' \? \\`, `\xHH..` and octal `\OOO`; any other escaped character is dropped, as Qt
//!   drops it. An unquoted `,` makes the value a list whose items are trimmed. An unquoted `;`
//!   ends the value (Qt treats the rest of the line as a comment). A leading `@@` reads as `@`,
//!   `@String(x)` and `@ByteArray(x)` as `x`, as Qt's variant decoding does.
//! - A repeated key: the last one wins.
//!
//! Where holdfast is stricter than Qt, which silently skips what it cannot read: a line that is
//! not a header, `key=value` or a comment (`#` or `;` first) is an error with its line number;
//! so are an unterminated quote and a trailing `\` (Qt's multi-line values are not supported).
//! `%XX` escapes in key names are not decoded (Pushpin uses none).

use std::collections::HashMap;

use super::error::ConfigError;

/// Largest config text accepted, in bytes.
pub const CONFIG_TEXT_MAX: usize = 1024 * 1024;
/// Most distinct keys one file may hold; far above any real pushpin.conf.
pub const INI_ENTRIES_MAX: usize = 10_000;
/// Name of the section that holds keys written before any `[section]` header.
pub const GENERAL_SECTION: &str = "General";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    /// The value as one string: quotes and escapes resolved, commas kept.
    text: String,
    /// The items when an unquoted comma made the value a list.
    list: Option<Vec<String>>,
    file: String,
    line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Section {
    name: String,
    entries: Vec<Entry>,
    by_key: HashMap<String, usize>,
}

/// Raw INI: sections → ordered keys → raw string value, with the file/line each key came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    sections: Vec<Section>,
    by_name: HashMap<String, usize>,
}

impl Ini {
    /// Parse one file's text. `file` only names the text in errors and in `keys()`.
    pub fn parse(text: &str, file: &str) -> Result<Ini, ConfigError> {
        if text.len() > CONFIG_TEXT_MAX {
            return Err(ConfigError::new(
                file,
                0,
                format!("larger than {CONFIG_TEXT_MAX} bytes"),
            ));
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ini = Ini::default();
        let mut entries = 0usize;
        let mut section = GENERAL_SECTION.to_string();
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index.saturating_add(1);
            let err = |reason: String| ConfigError::new(file, line_no, reason);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                section = parse_section_header(rest).map_err(err)?;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(
                    "expected [section], key=value or a comment line".to_string()
                ));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(err("empty key before '='".to_string()));
            }
            if key.contains(['"', ';', '[', ']']) {
                return Err(err(format!(
                    "invalid key {}",
                    super::error::quote_value(key)
                )));
            }
            let (text, list) = parse_value(value).map_err(err)?;
            let entry = Entry {
                key: key.to_string(),
                text,
                list,
                file: file.to_string(),
                line: line_no,
            };
            if ini.insert(&section, entry) {
                entries = entries.saturating_add(1);
                if entries > INI_ENTRIES_MAX {
                    return Err(ConfigError::new(
                        file,
                        line_no,
                        format!("more than {INI_ENTRIES_MAX} keys"),
                    ));
                }
            }
        }
        Ok(ini)
    }

    /// The value as one string (quotes and escapes resolved; for a list, commas kept).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entry(section, key).map(|e| e.text.as_str())
    }

    /// The value as a list: the items of a comma list, a single non-empty value as one item,
    /// an empty value as no items.
    pub fn get_list(&self, section: &str, key: &str) -> Option<Vec<String>> {
        self.entry(section, key).map(|e| match &e.list {
            Some(items) => items.clone(),
            None if e.text.is_empty() => Vec::new(),
            None => vec![e.text.clone()],
        })
    }

    /// Where a key was read from: (file, line).
    pub fn location(&self, section: &str, key: &str) -> Option<(&str, usize)> {
        self.entry(section, key).map(|e| (e.file.as_str(), e.line))
    }

    /// Every key in file order: (section, key, file, line).
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str, &str, usize)> {
        self.sections.iter().flat_map(|s| {
            s.entries
                .iter()
                .map(move |e| (s.name.as_str(), e.key.as_str(), e.file.as_str(), e.line))
        })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.sections.iter().map(|s| s.entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Merge `other` under self: keys present in self win (main file overrides included files).
    pub fn merge_under(&mut self, other: Ini) {
        for section in other.sections {
            for entry in section.entries {
                if self.entry(&section.name, &entry.key).is_none() {
                    self.insert(&section.name, entry);
                }
            }
        }
    }

    fn entry(&self, section: &str, key: &str) -> Option<&Entry> {
        let s = self.sections.get(*self.by_name.get(section)?)?;
        s.entries.get(*s.by_key.get(key)?)
    }

    /// Insert or replace; returns true when the key is new.
    fn insert(&mut self, section: &str, entry: Entry) -> bool {
        let index = match self.by_name.get(section) {
            Some(&i) => i,
            None => {
                self.sections.push(Section {
                    name: section.to_string(),
                    ..Section::default()
                });
                let i = self.sections.len() - 1;
                self.by_name.insert(section.to_string(), i);
                i
            }
        };
        let Some(s) = self.sections.get_mut(index) else {
            return false;
        };
        match s.by_key.get(&entry.key) {
            Some(&i) => {
                if let Some(slot) = s.entries.get_mut(i) {
                    *slot = entry;
                }
                false
            }
            None => {
                s.by_key.insert(entry.key.clone(), s.entries.len());
                s.entries.push(entry);
                true
            }
        }
    }
}

/// `rest` is a trimmed header line without its leading `[`.
fn parse_section_header(rest: &str) -> Result<String, String> {
    let Some((name, after)) = rest.split_once(']') else {
        return Err("section header without ']'".to_string());
    };
    let after = after.trim();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return Err("unexpected text after section header".to_string());
    }
    let name = name.trim();
    if name.is_empty() {
        return Err("empty section name".to_string());
    }
    if name.eq_ignore_ascii_case(GENERAL_SECTION) {
        return Ok(GENERAL_SECTION.to_string());
    }
    Ok(name.to_string())
}

/// Returns (text, list): the value read whole, and its items when an unquoted comma split it.
fn parse_value(raw: &str) -> Result<(String, Option<Vec<String>>), String> {
    let items = scan_value(raw, true)?;
    if items.len() < 2 {
        let text = items.into_iter().next().unwrap_or_default();
        return Ok((text, None));
    }
    let text = scan_value(raw, false)?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok((text, Some(items)))
}

fn skip_blanks(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
}

/// One pass over a value, following Qt's unescaping state machine. With `split`, unquoted
/// commas end an item; without, they are kept as text.
fn scan_value(raw: &str, split: bool) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    // Qt keeps trailing blanks of an item once any part of it was quoted.
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = raw.chars().peekable();
    skip_blanks(&mut chars);
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    return Err("trailing '\\': multi-line values are not supported".to_string());
                };
                unescape(e, &mut chars, &mut current)?;
            }
            '"' => {
                quoted = true;
                in_quotes = !in_quotes;
                if !in_quotes {
                    skip_blanks(&mut chars);
                }
            }
            ',' if split && !in_quotes => {
                finish_item(&mut current, quoted);
                items.push(std::mem::take(&mut current));
                quoted = false;
                skip_blanks(&mut chars);
            }
            ';' if !in_quotes => break,
            _ => current.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated '\"' in value".to_string());
    }
    finish_item(&mut current, quoted);
    items.push(current);
    Ok(items.into_iter().map(qt_variant_string).collect())
}

fn finish_item(item: &mut String, quoted: bool) {
    if !quoted {
        let kept = item.trim_end_matches([' ', '\t']).len();
        item.truncate(kept);
    }
}

/// Hex or octal escapes wider than this many digits are refused rather than overflowing.
const ESCAPE_DIGITS_MAX: usize = 8;

/// `e` is the character after a backslash.
fn unescape(
    e: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
) -> Result<(), String> {
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '"' | '?' | '\'' | '\\' => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        out.push(c);
        return Ok(());
    }
    let radix = match e {
        'x' => 16,
        '0'..='7' => 8,
        // Qt drops the escaped character.
        _ => return Ok(()),
    };
    let mut digits = String::new();
    if radix == 8 {
        digits.push(e);
    }
    while let Some(d) = chars.next_if(|d| d.is_digit(radix)) {
        digits.push(d);
        if digits.len() > ESCAPE_DIGITS_MAX {
            return Err("escape sequence too long".to_string());
        }
    }
    if digits.is_empty() {
        // `\x` with no hex digit: Qt drops it.
        return Ok(());
    }
    let code = u32::from_str_radix(&digits, radix).map_err(|_| "invalid escape sequence")?;
    let c = char::from_u32(code).ok_or("escape sequence is not a valid character")?;
    out.push(c);
    Ok(())
}

/// Qt stores typed values as `@Type(...)` and escapes a leading `@` as `@@`.
fn qt_variant_string(s: String) -> String {
    if let Some(rest) = s.strip_prefix("@@") {
        return format!("@{rest}");
    }
    for prefix in ["@String(", "@ByteArray("] {
        if let Some(inner) = s.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')) {
            return inner.to_string();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Ini {
        match Ini::parse(text, "t.conf") {
            Ok(ini) => ini,
            Err(e) => panic!("parse failed for {text:?}: {e}"),
        }
    }

    #[test]
    fn values_table() {
        // (value as written, get(), get_list())
        let cases: &[(&str, &str, &[&str])] = &[
            ("plain", "plain", &["plain"]),
            ("  spaced out  ", "spaced out", &["spaced out"]),
            ("", "", &[]),
            ("\"\"", "", &[]),
            ("\"  quoted  \"", "  quoted  ", &["  quoted  "]),
            ("\"a,b\"", "a,b", &["a,b"]),
            ("a,b", "a,b", &["a", "b"]),
            ("a , b ,c", "a , b ,c", &["a", "b", "c"]),
            ("a,,b", "a,,b", &["a", "", "b"]),
            ("\"x, y\", z", "x, y, z", &["x, y", "z"]),
            ("say \\\"hi\\\"", "say \"hi\"", &["say \"hi\""]),
            ("back\\\\slash", "back\\slash", &["back\\slash"]),
            ("tab\\there", "tab\there", &["tab\there"]),
            ("\\x41\\102", "AB", &["AB"]),
            ("drop\\qped", "dropped", &["dropped"]),
            ("value ; trailing comment", "value", &["value"]),
            ("\"in;quotes\"", "in;quotes", &["in;quotes"]),
            ("has#hash", "has#hash", &["has#hash"]),
            ("a=b=c", "a=b=c", &["a=b=c"]),
            ("\"a\" b", "ab", &["ab"]),
            ("@@at", "@at", &["@at"]),
            ("@String(s)", "s", &["s"]),
            (
                "truncate:0,append",
                "truncate:0,append",
                &["truncate:0", "append"],
            ),
            (
                "ipc://{rundir}/{ipc_prefix}stats",
                "ipc://{rundir}/{ipc_prefix}stats",
                &["ipc://{rundir}/{ipc_prefix}stats"],
            ),
        ];
        for (written, text, list) in cases {
            let ini = one(&format!("[s]\nk={written}\n"));
            assert_eq!(ini.get("s", "k"), Some(*text), "get for {written:?}");
            let want: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            assert_eq!(ini.get_list("s", "k"), Some(want), "list for {written:?}");
        }
    }

    #[test]
    fn sections_comments_and_general() {
        let text = "\u{feff}top=1\n\
                    # comment\n\
                    ; other comment\n\
                    \n\
                    \t[proxy]   # trailing comment\n\
                    routesfile = routes\r\n\
                    [ handler ]\n\
                    message_rate=2500\n\
                    [general]\n\
                    late=2\n\
                    [proxy]\n\
                    debug=true\n";
        let ini = one(text);
        assert_eq!(ini.get("General", "top"), Some("1"));
        assert_eq!(ini.get("General", "late"), Some("2"));
        assert_eq!(ini.get("proxy", "routesfile"), Some("routes"));
        assert_eq!(ini.get("handler", "message_rate"), Some("2500"));
        assert_eq!(ini.get("proxy", "debug"), Some("true"));
        assert_eq!(
            ini.get("Proxy", "debug"),
            None,
            "section names are case-sensitive"
        );
        assert_eq!(ini.get("proxy", "Debug"), None, "keys are case-sensitive");
        assert_eq!(ini.get("proxy", "missing"), None);
        let keys: Vec<_> = ini.keys().collect();
        assert_eq!(
            keys,
            vec![
                ("General", "top", "t.conf", 1),
                ("General", "late", "t.conf", 10),
                ("proxy", "routesfile", "t.conf", 6),
                ("proxy", "debug", "t.conf", 12),
                ("handler", "message_rate", "t.conf", 8),
            ]
        );
        assert_eq!(ini.len(), 5);
        assert_eq!(ini.location("proxy", "debug"), Some(("t.conf", 12)));
    }

    #[test]
    fn duplicate_key_last_wins_in_place() {
        let ini = one("[s]\na=1\nb=2\na=3\n");
        assert_eq!(ini.get("s", "a"), Some("3"));
        assert_eq!(ini.location("s", "a"), Some(("t.conf", 4)));
        let order: Vec<_> = ini.keys().map(|k| k.1).collect();
        assert_eq!(order, vec!["a", "b"]);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("[s]\nnot a key\n", 2, "expected [section]"),
            ("a=1\n[broken\n", 2, "without ']'"),
            ("[]\n", 1, "empty section"),
            ("[s] junk\n", 1, "after section header"),
            ("[s]\n\n\n = value\n", 4, "empty key"),
            ("[s]\nk=\"open\n", 2, "unterminated"),
            ("[s]\nk=abc\\\nnext=1\n", 2, "multi-line"),
            ("[s]\nk=\\x110000\n", 2, "not a valid character"),
            ("[s]\nk=\\x123456789\n", 2, "too long"),
            ("[s]\nk\"=1\n", 2, "invalid key"),
        ];
        for (text, line, reason) in cases {
            match Ini::parse(text, "bad.conf") {
                Ok(_) => panic!("{text:?} parsed"),
                Err(e) => {
                    assert_eq!(e.file, "bad.conf");
                    assert_eq!(e.line, *line, "{text:?}: {e}");
                    assert!(e.reason.contains(reason), "{text:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn size_and_entry_caps() {
        let big = "#".repeat(CONFIG_TEXT_MAX + 1);
        let e = Ini::parse(&big, "big.conf").err();
        assert_eq!(e.map(|e| e.line), Some(0));

        let mut many = String::from("[s]\n");
        for i in 0..=INI_ENTRIES_MAX {
            many.push_str(&format!("k{i}=1\n"));
        }
        let e = Ini::parse(&many, "many.conf").err();
        assert!(e.is_some_and(|e| e.reason.contains("keys")));

        // Re-assigning one key many times is not "many keys".
        let mut same = String::from("[s]\n");
        for _ in 0..=INI_ENTRIES_MAX {
            same.push_str("k=1\n");
        }
        assert!(Ini::parse(&same, "same.conf").is_ok());
    }

    #[test]
    fn merge_under_keeps_own_keys() {
        let mut main =
            Ini::parse("[global]\na=main\n[proxy]\nx=1\n", "main.conf").unwrap_or_default();
        let inc =
            Ini::parse("[global]\na=inc\nb=inc\n[handler]\ny=2\n", "inc.conf").unwrap_or_default();
        main.merge_under(inc);
        assert_eq!(main.get("global", "a"), Some("main"));
        assert_eq!(main.location("global", "a"), Some(("main.conf", 2)));
        assert_eq!(main.get("global", "b"), Some("inc"));
        assert_eq!(main.location("global", "b"), Some(("inc.conf", 3)));
        assert_eq!(main.get("handler", "y"), Some("2"));
        assert_eq!(main.get("proxy", "x"), Some("1"));
        assert_eq!(main.len(), 4);
    }
}
