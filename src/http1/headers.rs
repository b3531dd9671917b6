//! Header fields and the list/token helpers shared by request and response heads.
//!
//! Header names keep the case they arrived with (some origins care when the proxy forwards them);
//! every lookup here compares names ASCII case-insensitively, as RFC 9110 5.1 requires.
//! Values stay raw bytes: RFC 9110 5.5 allows obs-text, which is not necessarily UTF-8.

/// The protocol version of a message head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The version as it appears on the wire, e.g. `"HTTP/1.1"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header field line: the name as received, the value as raw bytes (OWS around it removed by the parser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

impl Header {
    /// Convenience constructor for building outgoing heads.
    pub fn new(name: &str, value: &[u8]) -> Self {
        Header {
            name: name.to_string(),
            value: value.to_vec(),
        }
    }
}

/// The first value of the header `name` (case-insensitive).
pub fn header_value<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

/// Like [`header_value`], but `None` as well when the value is not UTF-8.
pub fn header_value_str<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    header_value(headers, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// Does any `name` header hold `token` as one of its comma-separated elements (case-insensitive)?
/// All lines of the field count: RFC 9110 5.3 makes repeated lines equivalent to one joined by commas.
pub fn header_has_token(headers: &[Header], name: &str, token: &str) -> bool {
    list_items(headers, name).any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

/// Non-empty, OWS-trimmed elements of every `name` line, in order.
/// RFC 9110 5.6.1: recipients must accept and ignore empty list elements.
pub(crate) fn list_items<'a>(
    headers: &'a [Header],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// Strip optional whitespace (SP / HTAB, RFC 9110 5.6.3) from both ends.
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |p| p + 1);
    bytes.get(start..end).unwrap_or(&[])
}

/// Remove every `name` header (case-insensitive).
pub fn remove_headers(headers: &mut Vec<Header>, name: &str) {
    headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
}

/// Replace all `name` headers with a single one holding `value`. It takes the place of the first
/// existing line (so the order the origin sees stays stable), or goes at the end if there was none.
pub fn set_header(headers: &mut Vec<Header>, name: &str, value: &[u8]) {
    match headers
        .iter()
        .position(|h| h.name.eq_ignore_ascii_case(name))
    {
        Some(first) => {
            if let Some(slot) = headers.get_mut(first) {
                slot.value = value.to_vec();
            }
            let mut index = 0;
            headers.retain(|h| {
                let keep = index <= first || !h.name.eq_ignore_ascii_case(name);
                index += 1;
                keep
            });
        }
        None => headers.push(Header::new(name, value)),
    }
}

/// Is `name` a hop-by-hop field that a proxy must not forward (case-insensitive)?
///
/// RFC 9110 7.6.1 names Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade.
/// Trailer is added because holdfast re-frames bodies and drops trailers, so announcing them would
/// be a lie. Proxy-Authenticate / Proxy-Authorization are deliberately *not* listed: RFC 9110 no
/// longer calls them hop-by-hop and Pushpin passes them through.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP_BY_HOP: [&str; 7] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Every field name listed in the Connection header(s): trimmed and lowercased, including `close`
/// and `keep-alive`. Elements that are not valid tokens cannot name a field and are skipped.
pub fn connection_tokens(head_headers: &[Header]) -> Vec<String> {
    list_items(head_headers, "connection")
        .filter(|item| item.iter().all(|&b| is_tchar(b)))
        .map(|item| String::from_utf8_lossy(item).to_ascii_lowercase())
        .collect()
}

/// The transfer codings of all Transfer-Encoding lines, in order, lowercased (parameters kept).
/// Useful when a response uses codings besides `chunked` that must be passed on.
pub fn transfer_codings(headers: &[Header]) -> Vec<String> {
    list_items(headers, "transfer-encoding")
        .map(|item| String::from_utf8_lossy(item).to_ascii_lowercase())
        .collect()
}

/// RFC 9110 5.6.2 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Is `name` a valid field name (RFC 9110 5.1: a non-empty token)? Check names from untrusted
/// sources (GRIP instructions, config) before handing them to the head writers, which write verbatim.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

/// Is `value` a valid field value (RFC 9110 5.5: VCHAR, obs-text, SP, HTAB)? A CR or LF here would
/// let the source of the value inject header lines, so check untrusted values before writing them.
pub fn is_valid_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter()
            .map(|(n, v)| Header::new(n, v.as_bytes()))
            .collect()
    }

    #[test]
    fn version_strings() {
        assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
        assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
    }

    #[test]
    fn lookup_is_case_insensitive_and_returns_first() {
        let h = hs(&[("Host", "a"), ("X-Thing", "1"), ("x-thing", "2")]);
        assert_eq!(header_value(&h, "HOST"), Some(&b"a"[..]));
        assert_eq!(header_value(&h, "x-THING"), Some(&b"1"[..]));
        assert_eq!(header_value(&h, "missing"), None);
        let bad = vec![Header::new("X", b"\xff\xfe")];
        assert_eq!(header_value(&bad, "x"), Some(&b"\xff\xfe"[..]));
        assert_eq!(header_value_str(&bad, "x"), None);
        assert_eq!(header_value_str(&h, "host"), Some("a"));
    }

    #[test]
    fn token_lists() {
        type Case = (&'static [(&'static str, &'static str)], &'static str, bool);
        let cases: &[Case] = &[
            (&[("Connection", "close")], "close", true),
            (&[("Connection", "Keep-Alive, CLOSE")], "close", true),
            (&[("Connection", " upgrade ,\tclose\t")], "close", true),
            (
                &[("Connection", "upgrade"), ("connection", "close")],
                "close",
                true,
            ),
            (&[("Connection", "closed")], "close", false),
            (&[("Connection", "x-close")], "close", false),
            (&[("Connection", ",,")], "close", false),
            (&[("Other", "close")], "close", false),
        ];
        for (headers, token, want) in cases {
            let h = hs(headers);
            assert_eq!(
                header_has_token(&h, "connection", token),
                *want,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn trim_ows_cases() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"   ", b""),
            (b" a ", b"a"),
            (b"\ta b\t", b"a b"),
            (b"ab", b"ab"),
        ];
        for (input, want) in cases {
            assert_eq!(trim_ows(input), *want);
        }
    }

    #[test]
    fn remove_and_set() {
        let mut h = hs(&[("A", "1"), ("b", "2"), ("a", "3"), ("C", "4"), ("A", "5")]);
        set_header(&mut h, "a", b"x");
        assert_eq!(h, hs(&[("A", "x"), ("b", "2"), ("C", "4")]));
        set_header(&mut h, "New", b"n");
        assert_eq!(h, hs(&[("A", "x"), ("b", "2"), ("C", "4"), ("New", "n")]));
        remove_headers(&mut h, "B");
        assert_eq!(h, hs(&[("A", "x"), ("C", "4"), ("New", "n")]));
        remove_headers(&mut h, "absent");
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn hop_by_hop_names() {
        for name in [
            "Connection",
            "KEEP-ALIVE",
            "proxy-connection",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "upgrade",
        ] {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in [
            "Content-Length",
            "Host",
            "Proxy-Authorization",
            "Trailers",
            "",
            "t",
        ] {
            assert!(!is_hop_by_hop(name), "{name}");
        }
    }

    #[test]
    fn connection_token_list() {
        let h = hs(&[
            ("Connection", "Keep-Alive, X-Foo ,, close"),
            ("Host", "x"),
            ("connection", "Upgrade, bad token"),
        ]);
        assert_eq!(
            connection_tokens(&h),
            vec!["keep-alive", "x-foo", "close", "upgrade"]
        );
        assert!(connection_tokens(&hs(&[("Host", "x")])).is_empty());
    }

    #[test]
    fn transfer_coding_list() {
        let h = hs(&[
            ("Transfer-Encoding", "GZIP, chunked"),
            ("transfer-encoding", "x;q=1"),
        ]);
        assert_eq!(transfer_codings(&h), vec!["gzip", "chunked", "x;q=1"]);
    }

    #[test]
    fn validators() {
        assert!(is_valid_header_name("X-Forwarded-For"));
        assert!(!is_valid_header_name(""));
        assert!(!is_valid_header_name("X Y"));
        assert!(!is_valid_header_name("X:"));
        assert!(!is_valid_header_name("X\r\nY"));
        assert!(is_valid_header_value(b"text/plain; charset=\"utf-8\""));
        assert!(is_valid_header_value(b""));
        assert!(is_valid_header_value(b"caf\xc3\xa9\t!"));
        assert!(!is_valid_header_value(b"a\r\nInjected: 1"));
        assert!(!is_valid_header_value(b"a\nb"));
        assert!(!is_valid_header_value(b"a\0b"));
        assert!(!is_valid_header_value(b"a\x7fb"));
    }
}
