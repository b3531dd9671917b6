//! Line tokenizer for the routes file (spec 3.1).
//!
//! A line is a list of space- or tab-separated tokens; each token is `value[,prop[=val]]...`.
//! Double quotes may open and close anywhere inside a token; quoted text is literal (spaces, tabs,
//! commas, `#` and `=` lose their meaning) and only `\\` and `\"` escapes are accepted there.
//! Outside quotes a backslash is an ordinary character, and `#` ends the line.
//!
//! Where this differs from Pushpin: Pushpin looks for the name/value `=` in the *decoded* text,
//! so a quoted `=` still splits (`"a=b"` is a prop there). Here a quoted `=` is literal, which is
//! what quoting is for; unquoted input behaves identically. Tabs also separate tokens (Pushpin only
//! splits on spaces).
//!
//! Every delimiter is ASCII, so each byte offset this code slices at is a UTF-8 boundary.

use std::fmt;

/// Longest line accepted, in bytes. Long enough for a route with many headers, short enough that a
/// hostile file can't make one line cost much.
pub const ROUTE_LINE_LEN_MAX: usize = 64 * 1024;
/// Most tokens (condition plus targets) on one line.
pub const TOKENS_PER_LINE_MAX: usize = 1024;
/// Most props on one token.
pub const PROPS_PER_TOKEN_MAX: usize = 1024;

/// One token of a routes line: its value and its props in file order. A flag prop (no `=`) has
/// value `""`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Token {
    pub value: String,
    pub props: Vec<(String, String)>,
}

/// What stopped a part of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartEnd {
    /// `,`: another prop follows.
    Comma,
    /// Space or tab: the token is over, another may follow.
    Space,
    /// `#` or end of line: nothing more on this line.
    Eol,
}

/// A decoded piece of a token between separators.
struct Part {
    text: String,
    /// Byte offset in `text` of the first *unquoted* `=`.
    eq: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenizeError {
    LineTooLong,
    TooManyTokens,
    TooManyProps,
    UnterminatedQuote(usize),
    BadEscape(usize),
    ExpectingProp(usize),
    EmptyPropName(usize),
}

impl fmt::Display for TokenizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TokenizeError::LineTooLong => {
                write!(f, "line longer than {ROUTE_LINE_LEN_MAX} bytes")
            }
            TokenizeError::TooManyTokens => {
                write!(f, "more than {TOKENS_PER_LINE_MAX} tokens on one line")
            }
            TokenizeError::TooManyProps => {
                write!(f, "more than {PROPS_PER_TOKEN_MAX} props on one token")
            }
            TokenizeError::UnterminatedQuote(col) => {
                write!(f, "unterminated quote (opened at column {col})")
            }
            TokenizeError::BadEscape(col) => write!(
                f,
                "bad escape at column {col} (only \\\\ and \\\" are allowed inside quotes)"
            ),
            TokenizeError::ExpectingProp(col) => {
                write!(f, "expecting prop after ',' at column {col}")
            }
            TokenizeError::EmptyPropName(col) => write!(f, "empty prop name at column {col}"),
        }
    }
}

/// Split one routes-file line into tokens. A blank or comment-only line gives an empty Vec.
/// The error is a one-line human reason (the caller adds source and line number).
pub fn tokenize_line(line: &str) -> Result<Vec<Token>, String> {
    tokenize(line).map_err(|e| e.to_string())
}

fn tokenize(line: &str) -> Result<Vec<Token>, TokenizeError> {
    if line.len() > ROUTE_LINE_LEN_MAX {
        return Err(TokenizeError::LineTooLong);
    }
    let bytes = line.as_bytes();
    let mut pos = 0usize;
    let mut tokens = Vec::new();

    loop {
        while matches!(bytes.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        match bytes.get(pos) {
            None | Some(b'#') => break,
            Some(_) => {}
        }
        if tokens.len() >= TOKENS_PER_LINE_MAX {
            return Err(TokenizeError::TooManyTokens);
        }

        let first_col = pos + 1;
        let (first, mut end) = read_part(line, &mut pos)?;
        let mut token = Token::default();
        if first.eq.is_some() {
            // `id=foo` as the first part: the value is empty and this part is already a prop.
            push_prop(&mut token, first, first_col)?;
        } else {
            token.value = first.text;
        }
        while end == PartEnd::Comma {
            let col = pos + 1;
            let (part, next_end) = read_part(line, &mut pos)?;
            push_prop(&mut token, part, col)?;
            end = next_end;
        }
        tokens.push(token);
        if end == PartEnd::Eol {
            break;
        }
    }
    Ok(tokens)
}

fn push_prop(token: &mut Token, part: Part, col: usize) -> Result<(), TokenizeError> {
    if part.text.is_empty() {
        return Err(TokenizeError::ExpectingProp(col));
    }
    if token.props.len() >= PROPS_PER_TOKEN_MAX {
        return Err(TokenizeError::TooManyProps);
    }
    let (name, value) = match part.eq {
        Some(eq) => match (part.text.get(..eq), part.text.get(eq + 1..)) {
            (Some(n), Some(v)) => (n.to_string(), v.to_string()),
            // `eq` always points at an ASCII '=' pushed by read_part.
            _ => unreachable!("'=' offset not on a char boundary"),
        },
        None => (part.text, String::new()),
    };
    if name.is_empty() {
        return Err(TokenizeError::EmptyPropName(col));
    }
    token.props.push((name, value));
    Ok(())
}

/// Read one part starting at `*pos`, leaving `*pos` on the byte after the part (past a comma, on a
/// space, on `#`, or at the end).
fn read_part(line: &str, pos: &mut usize) -> Result<(Part, PartEnd), TokenizeError> {
    let bytes = line.as_bytes();
    let mut text = String::new();
    let mut eq = None;
    let mut i = *pos;
    let mut run = i;

    let end = loop {
        let Some(&b) = bytes.get(i) else {
            text.push_str(slice(line, run, i));
            break PartEnd::Eol;
        };
        match b {
            b',' => {
                text.push_str(slice(line, run, i));
                i += 1;
                break PartEnd::Comma;
            }
            b' ' | b'\t' => {
                text.push_str(slice(line, run, i));
                break PartEnd::Space;
            }
            b'#' => {
                text.push_str(slice(line, run, i));
                break PartEnd::Eol;
            }
            b'=' => {
                if eq.is_none() {
                    text.push_str(slice(line, run, i));
                    eq = Some(text.len());
                    text.push('=');
                    run = i + 1;
                }
                i += 1;
            }
            b'"' => {
                text.push_str(slice(line, run, i));
                i = read_quoted(line, i, &mut text)?;
                run = i;
            }
            _ => i += 1,
        }
    };
    *pos = i;
    Ok((Part { text, eq }, end))
}

/// Decode a quoted section whose opening quote is at `open`; returns the offset after the closing
/// quote.
fn read_quoted(line: &str, open: usize, out: &mut String) -> Result<usize, TokenizeError> {
    let bytes = line.as_bytes();
    let mut i = open + 1;
    let mut run = i;
    loop {
        match bytes.get(i) {
            None => return Err(TokenizeError::UnterminatedQuote(open + 1)),
            Some(b'"') => {
                out.push_str(slice(line, run, i));
                return Ok(i + 1);
            }
            Some(b'\\') => {
                out.push_str(slice(line, run, i));
                match bytes.get(i + 1) {
                    Some(b'\\') => out.push('\\'),
                    Some(b'"') => out.push('"'),
                    None => return Err(TokenizeError::UnterminatedQuote(open + 1)),
                    Some(_) => return Err(TokenizeError::BadEscape(i + 1)),
                }
                i += 2;
                run = i;
            }
            Some(_) => i += 1,
        }
    }
}

/// `line[from..to]`, where both ends sit next to ASCII delimiters (or at the ends of the line).
fn slice(line: &str, from: usize, to: usize) -> &str {
    line.get(from..to).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(value: &str, props: &[(&str, &str)]) -> Token {
        Token {
            value: value.to_string(),
            props: props
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn accepted_lines() {
        let cases: Vec<(&str, Vec<Token>)> = vec![
            // Pushpin routesfiletest cases, in its order.
            ("apple", vec![tok("apple", &[])]),
            ("apple banana", vec![tok("apple", &[]), tok("banana", &[])]),
            (
                "  apple   banana  # comment",
                vec![tok("apple", &[]), tok("banana", &[])],
            ),
            (
                r#"apple,organic,type=gala,from="washington, \"usa\"""#,
                vec![tok(
                    "apple",
                    &[
                        ("organic", ""),
                        ("type", "gala"),
                        ("from", "washington, \"usa\""),
                    ],
                )],
            ),
            (
                "apple,organic banana cherry,type=bing",
                vec![
                    tok("apple", &[("organic", "")]),
                    tok("banana", &[]),
                    tok("cherry", &[("type", "bing")]),
                ],
            ),
            (",organic", vec![tok("", &[("organic", "")])]),
            ("type=gala", vec![tok("", &[("type", "gala")])]),
            // Blank and comment lines.
            ("", vec![]),
            ("   \t ", vec![]),
            ("# just a comment", vec![]),
            ("   # indented comment", vec![]),
            // `#` ends the line even inside a token, but not inside quotes.
            ("apple#banana", vec![tok("apple", &[])]),
            ("a,b=c#d e", vec![tok("a", &[("b", "c")])]),
            (
                r#"a,x="1 # 2" b"#,
                vec![tok("a", &[("x", "1 # 2")]), tok("b", &[])],
            ),
            // Quotes anywhere inside a token.
            (r#"a"b c"d"#, vec![tok("ab cd", &[])]),
            (r#""a b",c="x,y""#, vec![tok("a b", &[("c", "x,y")])]),
            (r#""" x"#, vec![tok("", &[]), tok("x", &[])]),
            (r#"a,"b"=c"#, vec![tok("a", &[("b", "c")])]),
            // Escapes.
            (r#""a\\b""#, vec![tok(r"a\b", &[])]),
            (r#""a\"b""#, vec![tok("a\"b", &[])]),
            (r#""\\\"""#, vec![tok("\\\"", &[])]),
            // A backslash outside quotes is literal.
            (r"a\b,c=\n", vec![tok(r"a\b", &[("c", r"\n")])]),
            // A quoted `=` is literal, in the value and in a prop.
            (r#""a=b" c"#, vec![tok("a=b", &[]), tok("c", &[])]),
            (r#"a,"x=y""#, vec![tok("a", &[("x=y", "")])]),
            (r#"a,h="X:a=b""#, vec![tok("a", &[("h", "X:a=b")])]),
            // Only the first unquoted `=` splits.
            ("a,h=x=y", vec![tok("a", &[("h", "x=y")])]),
            ("id=a=b", vec![tok("", &[("id", "a=b")])]),
            // Empty prop value.
            ("a,x=", vec![tok("a", &[("x", "")])]),
            // Tabs separate too.
            (
                "a\tb\t\tc",
                vec![tok("a", &[]), tok("b", &[]), tok("c", &[])],
            ),
            // Repeated props stay in order.
            (
                "a,sub=x,sub=y",
                vec![tok("a", &[("sub", "x"), ("sub", "y")])],
            ),
            // A comma after a target starts an option: one target, not two.
            ("* a:1,b:2", vec![tok("*", &[]), tok("a:1", &[("b:2", "")])]),
            // Non-ASCII passes through.
            (
                "é,ñ=ü \"ß x\"",
                vec![tok("é", &[("ñ", "ü")]), tok("ß x", &[])],
            ),
        ];
        for (line, want) in cases {
            assert_eq!(tokenize_line(line), Ok(want), "line {line:?}");
        }
    }

    #[test]
    fn rejected_lines() {
        let cases: &[(&str, &str)] = &[
            // Pushpin routesfiletest error cases.
            (r#"apple,organic,type="gala"#, "unterminated quote"),
            ("apple,organic,", "expecting prop"),
            ("apple,organic,=gala", "empty prop name"),
            // More of the same family.
            ("a,", "expecting prop"),
            ("a,=x", "empty prop name"),
            ("=x", "empty prop name"),
            ("a,,b", "expecting prop"),
            ("a, b", "expecting prop"),
            (r#"a,"""#, "expecting prop"),
            (r#"""#, "unterminated quote"),
            (r#""abc\"#, "unterminated quote"),
            (r#""a\nb""#, "bad escape"),
            (r#""a\tb""#, "bad escape"),
            (r#""a\'b""#, "bad escape"),
            (r#"x "\é""#, "bad escape"),
        ];
        for (line, reason) in cases {
            match tokenize_line(line) {
                Err(e) => assert!(e.contains(reason), "line {line:?}: got {e:?}"),
                Ok(t) => panic!("line {line:?} accepted as {t:?}"),
            }
        }
    }

    #[test]
    fn error_names_the_column() {
        assert_eq!(
            tokenize_line(r#"abc "x\q""#),
            Err(r#"bad escape at column 7 (only \\ and \" are allowed inside quotes)"#.to_string())
        );
        assert_eq!(
            tokenize_line("ab,cd,"),
            Err("expecting prop after ',' at column 7".to_string())
        );
    }

    #[test]
    fn limits() {
        let long = "a".repeat(ROUTE_LINE_LEN_MAX + 1);
        assert!(tokenize_line(&long).is_err());
        let at_limit = "a".repeat(ROUTE_LINE_LEN_MAX);
        assert_eq!(tokenize_line(&at_limit).map(|t| t.len()), Ok(1));

        let many_tokens = "a ".repeat(TOKENS_PER_LINE_MAX + 1);
        assert!(tokenize_line(&many_tokens).is_err());
        let ok_tokens = "a ".repeat(TOKENS_PER_LINE_MAX);
        assert_eq!(
            tokenize_line(&ok_tokens).map(|t| t.len()),
            Ok(TOKENS_PER_LINE_MAX)
        );

        let many_props = format!("a{}", ",p".repeat(PROPS_PER_TOKEN_MAX + 1));
        assert!(tokenize_line(&many_props).is_err());
        let ok_props = format!("a{}", ",p".repeat(PROPS_PER_TOKEN_MAX));
        assert_eq!(
            tokenize_line(&ok_props).map(|t| t[0].props.len()),
            Ok(PROPS_PER_TOKEN_MAX)
        );
    }
}
