//! The built-in `test` route target (spec section 7.8): lets a newcomer try holdfast with no backend.
//!
//! `/` greets; `/response` long-polls and `/stream` streams on the channels named by `?channel=` (default
//! `test`), exactly as if a backend had answered with GRIP instructions; anything else is 404.

use crate::grip::{parse_instruct, Instruct, InstructLimits};
use crate::http1::Header;

/// Channels one test request may name.
const TEST_CHANNELS_MAX: usize = 20;

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
        "/ws" => (400, "Expected a WebSocket upgrade request."),
        _ => (404, "no such test resource"),
    }
}

/// The channels a test request names with `?channel=` (default `test`).
pub fn channels(target: &str) -> Vec<String> {
    let mut channels: Vec<String> = query_values(target, "channel")
        .into_iter()
        .filter(|c| {
            !c.is_empty() && !c.contains([',', ';', '"']) && !c.chars().any(char::is_control)
        })
        .take(TEST_CHANNELS_MAX)
        .collect();
    if channels.is_empty() {
        channels.push("test".into());
    }
    channels
}

/// Instructions for `/response` and `/stream`, as a GRIP backend would give them.
pub fn hold_instruct(path: &str, target: &str, subscription_max: usize) -> Option<Instruct> {
    let (mode, body): (&str, &[u8]) = match path {
        "/response" => ("response", b"nothing for now\n"),
        "/stream" => ("stream", b"[stream opened]\n"),
        _ => return None,
    };
    let channels = channels(target);
    let headers = vec![
        Header::new("Content-Type", b"text/plain"),
        Header::new("Grip-Hold", mode.as_bytes()),
        Header::new("Grip-Channel", channels.join(", ").as_bytes()),
    ];
    let limits = InstructLimits {
        subscription_max,
        filters_max: 5,
    };
    parse_instruct(200, "OK", &headers, body, &limits).ok()
}

/// Percent-decoded values of a query parameter.
fn query_values(target: &str, name: &str) -> Vec<String> {
    let Some((_, query)) = target.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grip::HoldMode;

    #[test]
    fn path_beg_is_stripped() {
        assert_eq!(local_path("/test/stream", Some("/test/")), "/stream");
        assert_eq!(local_path("/test", Some("/test/")), "/");
        assert_eq!(local_path("/", None), "/");
        assert_eq!(answer("/"), (200, "Hello from the Pushpin test handler!"));
        assert_eq!(answer("/nope").0, 404);
    }

    #[test]
    fn holds_on_the_named_channels() {
        let inst = hold_instruct("/stream", "/stream?channel=a&channel=b%20c&x=1", 20).unwrap();
        let hold = inst.hold.unwrap();
        assert_eq!(hold.mode, HoldMode::Stream);
        let names: Vec<_> = hold.channels.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b c"]);
        assert_eq!(inst.body, b"[stream opened]\n");

        let inst = hold_instruct("/response", "/response", 20).unwrap();
        let hold = inst.hold.unwrap();
        assert_eq!(hold.mode, HoldMode::Response);
        assert_eq!(hold.channels[0].name, "test");
        assert_eq!(inst.body, b"nothing for now\n");
        assert!(hold_instruct("/other", "/other", 20).is_none());
    }

    #[test]
    fn percent_decoding_is_lenient() {
        for (input, want) in [
            ("a%20b", "a b"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("a+b", "a b"),
            ("%4", "%4"),
        ] {
            assert_eq!(percent_decode(input), want, "{input}");
        }
    }
}
