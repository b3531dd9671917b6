//! Header values made of parameterised items: `value; k=v; k2="quoted, with ;"`, possibly as a comma list.
//!
//! Used by Grip-Channel, Grip-Link, Grip-Keep-Alive, Grip-Set-Meta and Grip-Expose-Headers.
//!
//! Splitting rules (the same for `,` between items and `;` between parameters):
//! * a delimiter inside a double-quoted string does not split; inside quotes `\` escapes the next character;
//! * a segment whose first non-blank character is `<` is opaque up to the matching `>`, so a Grip-Link URL
//!   may contain `,` or `;` (Pushpin splits such URLs apart; when no `>` follows, the rule does not apply);
//! * an unterminated quote makes the rest of the input one segment, as Pushpin does.
//!
//! Splitting borrows from the input; only `parse_item`'s results are owned.

/// A quoted string was still open at the end of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unterminated;

/// Byte index of the first `delim` at or after `start` that is outside quotes and outside a leading `<...>`,
/// or `s.len()` when there is none.
fn find_delim(s: &[u8], delim: u8, start: usize) -> Result<usize, Unterminated> {
    let mut i = start;
    // A `<` opening the segment (after blanks) hides everything up to its `>`.
    while let Some(&c) = s.get(i) {
        if c == b' ' || c == b'\t' {
            i += 1;
        } else {
            break;
        }
    }
    if s.get(i) == Some(&b'<') {
        if let Some(off) = s
            .get(i..)
            .and_then(|rest| rest.iter().position(|&c| c == b'>'))
        {
            i += off + 1;
        }
    }
    let mut in_quote = false;
    while let Some(&c) = s.get(i) {
        if in_quote {
            if c == b'\\' {
                // Skipping one byte may land inside a multi-byte character; that is harmless because every
                // boundary returned is an ASCII delimiter, never a continuation byte.
                i += 1;
            } else if c == b'"' {
                in_quote = false;
            }
        } else if c == b'"' {
            in_quote = true;
        } else if c == delim {
            return Ok(i);
        }
        i += 1;
    }
    if in_quote {
        Err(Unterminated)
    } else {
        Ok(s.len())
    }
}

/// Iterator over the raw (untrimmed) segments of `s` separated by `delim`, quote-aware.
struct Segments<'a> {
    s: &'a str,
    pos: usize,
    delim: u8,
    done: bool,
}

impl<'a> Segments<'a> {
    fn new(s: &'a str, delim: u8) -> Self {
        Segments {
            s,
            pos: 0,
            delim,
            done: false,
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    /// The segment, and whether it ended inside an open quote.
    type Item = (&'a str, bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let bytes = self.s.as_bytes();
        let (end, open) = match find_delim(bytes, self.delim, self.pos) {
            Ok(end) => (end, false),
            Err(Unterminated) => (bytes.len(), true),
        };
        let seg = self.s.get(self.pos..end).unwrap_or("");
        if end >= bytes.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        Some((seg, open))
    }
}

/// Split a comma list, honouring quotes; items are trimmed and empty items dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    Segments::new(value, b',')
        .map(|(seg, _)| seg.trim())
        .filter(|seg| !seg.is_empty())
        .collect()
}

/// Parse one item: the first part (trimmed, kept raw: quotes and `<>` stay) and its `;` parameters.
///
/// Parameter names are returned as written (compare them case-insensitively); values are trimmed and
/// unquoted, `""` for a flag without `=`. Empty parameter segments (`a;;b`, a trailing `;`) are skipped.
pub fn parse_item(item: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut segs = Segments::new(item, b';');
    let (first, rest_start) = match segs.next() {
        Some((seg, false)) => (seg, if segs.done { item.len() } else { segs.pos }),
        // An open quote in the first part (keep-alive data may hold a lone `"`): fall back to Pushpin's rule,
        // which ends the first part at the first `;` whatever the quoting.
        Some((_, true)) => match item.find(';') {
            Some(at) => (item.get(..at).unwrap_or(""), at + 1),
            None => (item, item.len()),
        },
        None => ("", item.len()),
    };
    let mut params = Vec::new();
    if rest_start < item.len() {
        let rest = item.get(rest_start..).unwrap_or("");
        for (seg, open) in Segments::new(rest, b';') {
            if open {
                return Err(format!("unterminated quoted string in '{}'", seg.trim()));
            }
            let seg = seg.trim();
            if !seg.is_empty() {
                params.push(parse_param(seg)?);
            }
        }
    }
    Ok((first.trim().to_string(), params))
}

/// Parse one `name[=value]` parameter; the value is trimmed and unquoted, `""` when there is no `=`.
pub fn parse_param(seg: &str) -> Result<(String, String), String> {
    let (name, value) = match seg.find('=') {
        Some(at) => (seg.get(..at).unwrap_or(""), seg.get(at + 1..).unwrap_or("")),
        None => (seg, ""),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("missing parameter name in '{}'", seg.trim()));
    }
    Ok((name.to_string(), unquote(value.trim())?))
}

/// Remove the quotes of a quoted string, resolving `\` escapes; an unquoted value is returned as is.
pub fn unquote(value: &str) -> Result<String, String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_string());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => return Err(format!("unterminated quoted string {value}")),
            },
            '"' => {
                let trailing = inner.get(i + 1..).unwrap_or("");
                if !trailing.trim().is_empty() {
                    return Err(format!("unexpected text after quoted string {value}"));
                }
                return Ok(out);
            }
            _ => out.push(c),
        }
    }
    Err(format!("unterminated quoted string {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn split_list_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            (",, ,", &[]),
            ("a", &["a"]),
            (" a , b ,c ", &["a", "b", "c"]),
            ("a,,b", &["a", "b"]),
            ("a; x=\"1,2\", b", &["a; x=\"1,2\"", "b"]),
            ("a; x=\"q\\\",r\", b", &["a; x=\"q\\\",r\"", "b"]),
            // Unterminated quote: the rest is one item.
            ("a, b; x=\"1, c", &["a", "b; x=\"1, c"]),
            // A leading <...> is opaque.
            (
                "<http://x/?a=1,2;3>; rel=next, </g>; rel=gone",
                &["<http://x/?a=1,2;3>; rel=next", "</g>; rel=gone"],
            ),
            // `<` without a `>` is ordinary text.
            ("<a, b", &["<a", "b"]),
            // `<` not at the start of an item is ordinary text.
            ("x<a,b>", &["x<a", "b>"]),
            ("é,ü", &["é", "ü"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_list(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn parse_item_table() {
        type Want<'a> = Result<(&'a str, &'a [(&'a str, &'a str)]), ()>;
        let cases: &[(&str, Want)] = &[
            ("", Ok(("", &[]))),
            ("apple", Ok(("apple", &[]))),
            (
                " apple ; prev-id=item1 ; filter=f1",
                Ok(("apple", &[("prev-id", "item1"), ("filter", "f1")])),
            ),
            ("a; flag; k=", Ok(("a", &[("flag", ""), ("k", "")]))),
            ("a;;b=1;", Ok(("a", &[("b", "1")]))),
            ("a; k=\"x; y, z\"", Ok(("a", &[("k", "x; y, z")]))),
            ("a; k=\"say \\\"hi\\\"\"", Ok(("a", &[("k", "say \"hi\"")]))),
            ("a; k = v w ", Ok(("a", &[("k", "v w")]))),
            ("a; k=x=y", Ok(("a", &[("k", "x=y")]))),
            ("; timeout=3", Ok(("", &[("timeout", "3")]))),
            (
                "<http://a/;b>; rel=next",
                Ok(("<http://a/;b>", &[("rel", "next")])),
            ),
            ("<>; rel=next", Ok(("<>", &[("rel", "next")]))),
            ("\"a;b\"; k=v", Ok(("\"a;b\"", &[("k", "v")]))),
            // Open quote in the first part: first `;` ends it.
            ("\"ab; format=raw", Ok(("\"ab", &[("format", "raw")]))),
            (
                ":\\n\\n; format=cstring; timeout=3",
                Ok((":\\n\\n", &[("format", "cstring"), ("timeout", "3")])),
            ),
            ("a; k=\"open", Err(())),
            ("a; k=\"x\"junk", Err(())),
            ("a; k=\"x\\", Err(())),
            ("a; =v", Err(())),
        ];
        for (input, want) in cases {
            let got = parse_item(input);
            match want {
                Ok((first, params)) => {
                    assert_eq!(got, Ok((first.to_string(), p(params))), "input {input:?}");
                }
                Err(()) => assert!(got.is_err(), "input {input:?} gave {got:?}"),
            }
        }
    }

    #[test]
    fn unquote_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("plain", Some("plain")),
            ("", Some("")),
            ("\"\"", Some("")),
            ("\"a\\\\b\"", Some("a\\b")),
            ("\"é\\é\"", Some("éé")),
            ("\"x\"  ", Some("x")),
            ("\"", None),
            ("\"x\" y", None),
        ];
        for (input, want) in cases {
            assert_eq!(unquote(input).ok().as_deref(), *want, "input {input:?}");
        }
    }

    #[test]
    fn never_panics_on_byte_soup() {
        let alphabet = ['a', ';', ',', '"', '\\', '<', '>', '=', ' ', 'é', '\t'];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let mut x = seed;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[((x >> 33) % alphabet.len() as u64) as usize]);
            }
            for item in split_list(&s) {
                assert!(!item.is_empty());
                let _ = parse_item(item);
            }
            let _ = parse_item(&s);
        }
    }
}
