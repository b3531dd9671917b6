//! Resolving `Grip-Link` URLs (next and gone links, spec 4.9 and 4.11) against the client's request.
//!
//! A link whose scheme, host and port equal the original request's goes through the same route as that
//! request; any other link goes to its own host. Pure functions, so the rules are tested without sockets.

/// Where a link points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// Same scheme, host and port as the client's request: path and query to send through its route.
    SameOrigin { path: String },
    /// Elsewhere: the link's own authority.
    Other {
        tls: bool,
        host: String,
        port: u16,
        /// The `Host` header value for the request (host, plus the port when it is not the default).
        authority: String,
        path: String,
    },
}

/// Longest link URL accepted (a hostile backend could name anything).
const LINK_URL_MAX: usize = 8 * 1024;

/// Resolve `url` against the client's request: its `Host` header value, whether it came over TLS, and its
/// request target (origin-form path, for relative links).
pub fn resolve_link(
    url: &str,
    base_host: &str,
    base_tls: bool,
    base_target: &str,
) -> Result<LinkTarget, String> {
    if url.is_empty() || url.len() > LINK_URL_MAX || url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("invalid link URL {url:?}"));
    }
    let absolute = if let Some(rest) = url.strip_prefix("http://") {
        Some((false, rest))
    } else if let Some(rest) = url.strip_prefix("https://") {
        Some((true, rest))
    } else if let Some(rest) = url.strip_prefix("//") {
        Some((base_tls, rest))
    } else if url.contains("://") {
        return Err(format!("link URL {url:?} has an unsupported scheme"));
    } else {
        None
    };
    let Some((tls, rest)) = absolute else {
        return Ok(LinkTarget::SameOrigin {
            path: relative_path(url, base_target),
        });
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = match path.strip_prefix('?') {
        Some(q) => format!("/?{q}"),
        None if path.is_empty() => "/".to_string(),
        None => path.to_string(),
    };
    let (host, port) = split_authority(authority, tls)
        .ok_or_else(|| format!("link URL {url:?} has an invalid host or port"))?;
    let same = tls == base_tls
        && split_authority(base_host, base_tls)
            .is_some_and(|(h, p)| p == port && h.eq_ignore_ascii_case(&host));
    if same {
        return Ok(LinkTarget::SameOrigin { path });
    }
    let default_port = if tls { 443 } else { 80 };
    let authority = if port == default_port {
        bracket(&host)
    } else {
        format!("{}:{port}", bracket(&host))
    };
    Ok(LinkTarget::Other {
        tls,
        host,
        port,
        authority,
        path,
    })
}

/// A path relative to the request target's folder (or a query relative to the target's path).
fn relative_path(url: &str, base_target: &str) -> String {
    if url.starts_with('/') {
        return url.to_string();
    }
    let base_path = base_target.split(['?', '#']).next().unwrap_or("/");
    if let Some(query) = url.strip_prefix('?') {
        return format!("{base_path}?{query}");
    }
    let folder = match base_path.rfind('/') {
        Some(i) => &base_path[..=i],
        None => "/",
    };
    let mut out = format!("{folder}{url}");
    // Drop "./" segments and fold "../" ones, as a browser would; never climb above the root.
    let mut segments: Vec<&str> = Vec::new();
    let (path, query) = match out.find('?') {
        Some(i) => (out[..i].to_string(), Some(out[i..].to_string())),
        None => (out.clone(), None),
    };
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    out = format!("/{}", segments.join("/"));
    if trailing && out.len() > 1 {
        out.push('/');
    }
    if let Some(q) = query {
        out.push_str(&q);
    }
    out
}

/// `host[:port]` or `[v6][:port]` to (host without brackets, port).
fn split_authority(authority: &str, tls: bool) -> Option<(String, u16)> {
    let default_port = if tls { 443 } else { 80 };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0)?,
        None => default_port,
    };
    Some((host.to_ascii_lowercase(), port))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(path: &str) -> Result<LinkTarget, String> {
        Ok(LinkTarget::SameOrigin { path: path.into() })
    }

    #[test]
    fn relative_and_same_origin_links_use_the_request_route() {
        let cases: &[(&str, &str, bool, &str, &str)] = &[
            ("/next2", "example.com", false, "/next1", "/next2"),
            ("/n?since=5", "example.com", false, "/a/b", "/n?since=5"),
            (
                "next2",
                "example.com",
                false,
                "/stream/next1?x=1",
                "/stream/next2",
            ),
            ("../up", "example.com", false, "/a/b/c", "/a/up"),
            ("../../../../x", "example.com", false, "/a/b", "/x"),
            ("./here/", "example.com", false, "/a/b", "/a/here/"),
            (
                "?page=2",
                "example.com",
                false,
                "/list?page=1",
                "/list?page=2",
            ),
            ("http://example.com/n", "example.com", false, "/", "/n"),
            ("http://EXAMPLE.com:80/n", "example.com", false, "/", "/n"),
            (
                "http://example.com:8000/n",
                "example.com:8000",
                false,
                "/",
                "/n",
            ),
            ("https://example.com/n", "example.com:443", true, "/", "/n"),
            ("//example.com/n?q", "example.com", false, "/", "/n?q"),
            ("http://example.com", "example.com", false, "/", "/"),
            ("http://example.com?q=1", "example.com", false, "/", "/?q=1"),
            ("http://[::1]:7999/n", "[::1]:7999", false, "/", "/n"),
        ];
        for &(url, host, tls, target, want) in cases {
            assert_eq!(
                resolve_link(url, host, tls, target),
                same(want),
                "{url} from {host} {target}"
            );
        }
    }

    #[test]
    fn links_elsewhere_name_their_own_authority() {
        let other = |tls: bool, host: &str, port: u16, authority: &str, path: &str| {
            Ok(LinkTarget::Other {
                tls,
                host: host.into(),
                port,
                authority: authority.into(),
                path: path.into(),
            })
        };
        assert_eq!(
            resolve_link("http://127.0.0.1:9000/n", "example.com", false, "/"),
            other(false, "127.0.0.1", 9000, "127.0.0.1:9000", "/n")
        );
        // Same host, other port or scheme: not the same origin.
        assert_eq!(
            resolve_link("http://example.com:81/n", "example.com", false, "/"),
            other(false, "example.com", 81, "example.com:81", "/n")
        );
        assert_eq!(
            resolve_link("https://example.com/n", "example.com", false, "/"),
            other(true, "example.com", 443, "example.com", "/n")
        );
        assert_eq!(
            resolve_link("http://[::1]/n", "example.com", false, "/"),
            other(false, "::1", 80, "[::1]", "/n")
        );
    }

    #[test]
    fn bad_links_are_errors_not_guesses() {
        for url in [
            "",
            "ftp://example.com/x",
            "http://",
            "http://:80/x",
            "http://example.com:0/x",
            "http://example.com:99999/x",
            "http://user@example.com/x",
            "http://[::1/x",
            "/has space",
            "/ctl\u{7f}",
        ] {
            assert!(
                resolve_link(url, "example.com", false, "/").is_err(),
                "{url:?} should be refused"
            );
        }
        let long = format!("/{}", "a".repeat(LINK_URL_MAX));
        assert!(resolve_link(&long, "example.com", false, "/").is_err());
    }
}
