//! The built-in `test` route target (spec section 7.8): lets a newcomer try holdfast with no backend.

/// The path the test handler sees: the route's `path_beg` (without its trailing slash) is stripped.
pub fn local_path<'a>(path: &'a str, path_beg: Option<&str>) -> &'a str {
    let prefix = path_beg.map(|p| p.trim_end_matches('/')).unwrap_or("");
    let rest = path.strip_prefix(prefix).unwrap_or(path);
    if rest.is_empty() {
        "/"
    } else {
        rest
    }
}

/// The answer for a plain (non-holding) test resource: (status, body line).
pub fn answer(path: &str) -> (u16, &'static str) {
    match path {
        "/" => (200, "Hello from the Pushpin test handler!"),
        "/response" | "/stream" | "/ws" => (
            501,
            "This test resource needs GRIP holds, which holdfast does not have yet.",
        ),
        _ => (404, "no such test resource"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_beg_is_stripped() {
        assert_eq!(local_path("/test/stream", Some("/test/")), "/stream");
        assert_eq!(local_path("/test", Some("/test/")), "/");
        assert_eq!(local_path("/", None), "/");
        assert_eq!(answer("/"), (200, "Hello from the Pushpin test handler!"));
        assert_eq!(answer("/nope").0, 404);
    }
}
