//! Publish envelopes: the HTTP control API body (spec 5.1), the command socket's `publish` args,
//! and single ZeroMQ PULL/SUB frames (spec 1.2).
//!
//! Requests are all-or-nothing: every item is validated before any is returned, so a caller
//! publishes either the whole batch or nothing.

use super::item::{parse_item, Item};
use super::tnetstring;
use super::value::Value;

/// Largest ZeroMQ publish frame accepted, prefix byte included.
pub const PUBLISH_FRAME_MAX: usize = tnetstring::TNET_SIZE_MAX + 1;

/// Parses a `POST /publish/` body. The error is the exact 400 body Pushpin sends, without its
/// trailing newline (`Body is not valid JSON.`, `Invalid format.`, `Invalid format: ...`).
///
/// The caller caps the body size (`push_in_http_max_body_size`) before calling.
pub fn parse_publish_body(body: &[u8]) -> Result<Vec<Item>, String> {
    let doc = Value::parse_json(body).map_err(|_| "Body is not valid JSON.".to_owned())?;
    if !doc.is_map() {
        return Err("Invalid format.".to_owned());
    }
    parse_items(&doc, true)
}

/// Parses an object holding `items` (the control API body, or the args of the command socket's
/// `publish` method, which come from tnetstring: `json` false). Errors carry the
/// `Invalid format: ` prefix, as both Pushpin paths report them.
pub fn parse_items(args: &Value, json: bool) -> Result<Vec<Item>, String> {
    if !args.is_map() {
        return Err("Invalid format.".to_owned());
    }
    let items = match args.get("items") {
        None => return Err("Invalid format: object does not contain 'items'".to_owned()),
        Some(Value::List(items)) => items,
        Some(_) => return Err("Invalid format: object contains 'items' with wrong type".to_owned()),
    };
    items
        .iter()
        .map(|v| parse_item(v, json, None).map_err(|e| format!("Invalid format: {e}")))
        .collect()
}

/// Parses one PULL frame, or a SUB message's payload frame with its first frame as
/// `channel_override`. A leading `J` means JSON, `T` tnetstring; any other first byte means the
/// whole frame is a tnetstring (legacy). The error is a one-line reason for the caller's log.
pub fn parse_zmq_frame(frame: &[u8], channel_override: Option<&str>) -> Result<Item, String> {
    if frame.len() > PUBLISH_FRAME_MAX {
        return Err(format!(
            "invalid format (frame larger than {PUBLISH_FRAME_MAX} bytes)"
        ));
    }
    let (value, json) = match frame.split_first() {
        Some((b'J', rest)) => {
            let doc = Value::parse_json(rest)
                .map_err(|_| "invalid format (json parse failed)".to_owned())?;
            if !doc.is_map() {
                return Err("invalid format (not a valid json object)".to_owned());
            }
            (doc, true)
        }
        Some((b'T', rest)) => (decode_tnet(rest)?, false),
        _ => (decode_tnet(frame)?, false),
    };
    parse_item(&value, json, channel_override).map_err(|e| format!("invalid format: {e}"))
}

fn decode_tnet(input: &[u8]) -> Result<Value, String> {
    tnetstring::decode_all(input)
        .map_err(|e| format!("invalid format (tnetstring parse failed: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::item::{Action, WsType};

    fn tnet(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        tnetstring::encode(v, &mut out);
        out
    }

    fn b(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    #[test]
    fn body_error_texts() {
        let cases: &[(&str, &str)] = &[
            ("", "Body is not valid JSON."),
            (r#"{"items": ["#, "Body is not valid JSON."),
            (r#"{"items": []} x"#, "Body is not valid JSON."),
            ("{'items': []}", "Body is not valid JSON."),
            (r#"["not", "an", "object"]"#, "Invalid format."),
            ("5", "Invalid format."),
            ("null", "Invalid format."),
            (r#"{"things": []}"#, "Invalid format: object does not contain 'items'"),
            (
                r#"{"items": {"channel": "x"}}"#,
                "Invalid format: object contains 'items' with wrong type",
            ),
            (
                r#"{"items": null}"#,
                "Invalid format: object contains 'items' with wrong type",
            ),
            (
                r#"{"items": [{"formats": {"http-stream": {"content": "x"}}}]}"#,
                "Invalid format: publish item object does not contain 'channel'",
            ),
            (r#"{"items": [{"channel": "c"}]}"#, "Invalid format: no formats specified"),
            (
                r#"{"items": [{"channel": "c", "formats": {}}]}"#,
                "Invalid format: no formats specified",
            ),
            (
                r#"{"items": [{"channel": "c", "formats": {"http-stream": {}}}]}"#,
                "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'",
            ),
            (
                r#"{"items": [{"channel": "c", "formats": {"http-response": {}}}]}"#,
                "Invalid format: 'http-response' does not contain 'body', 'body-bin', or 'body-patch'",
            ),
            (
                r#"{"items": [{"channel": 7, "formats": {"http-stream": {"content": "x"}}}]}"#,
                "Invalid format: publish item object contains 'channel' with wrong type",
            ),
            (
                r#"{"items": [{"channel": "c", "formats": {"http-stream": {"action": "bogus"}}}]}"#,
                "Invalid format: ",
            ),
            (r#"{"items": [5]}"#, "Invalid format: publish item object is not an object"),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_publish_body(body.as_bytes()),
                Err((*want).to_owned()),
                "{body}"
            );
        }
        assert_eq!(
            parse_publish_body(b"\xff\xfe"),
            Err("Body is not valid JSON.".to_owned())
        );
    }

    #[test]
    fn body_items_parse_in_order() {
        let body = br#"{"items": [
            {"channel": "a", "formats": {"http-stream": {"content": "one\n"}}},
            {"channel": "b", "formats": {"http-stream": {"content-bin": "AAE="}}},
            {"channel": "a", "http-response": {"body": "legacy"}}
        ]}"#;
        let items = parse_publish_body(body).unwrap();
        let channels: Vec<&str> = items.iter().map(|i| i.channel.as_str()).collect();
        assert_eq!(channels, ["a", "b", "a"]);
        let content = |i: usize| {
            items
                .get(i)
                .and_then(|it| it.http_stream.as_ref())
                .map(|s| s.content.clone())
        };
        assert_eq!(content(0), Some(b"one\n".to_vec()));
        assert_eq!(content(1), Some(vec![0, 1]));
        assert_eq!(
            items
                .get(2)
                .and_then(|it| it.http_response.as_ref())
                .and_then(|r| r.body.clone()),
            Some(b"legacy".to_vec())
        );
        assert_eq!(parse_publish_body(br#"{"items": []}"#), Ok(vec![]));
    }

    #[test]
    fn one_bad_item_fails_the_batch() {
        let body = br#"{"items": [
            {"channel": "a", "formats": {"http-stream": {"content": "valid\n"}}},
            {"channel": "a"}
        ]}"#;
        assert_eq!(
            parse_publish_body(body),
            Err("Invalid format: no formats specified".to_owned())
        );
    }

    #[test]
    fn gripcontrol_style_body() {
        // What the Python gripcontrol library sends for publish_http_response.
        let body = br#"{"items": [{"channel": "lp", "formats": {"http-response":
            {"code": 200, "headers": {"X-Lib": "gripcontrol"}, "body": "lib response\n"}}}]}"#;
        let items = parse_publish_body(body).unwrap();
        let r = items
            .first()
            .and_then(|i| i.http_response.clone())
            .expect("response format");
        assert_eq!(
            r.headers,
            vec![("X-Lib".to_owned(), b"gripcontrol".to_vec())]
        );
        assert_eq!(r.body, Some(b"lib response\n".to_vec()));
    }

    #[test]
    fn command_args_are_tnetstring_style() {
        let args = map(vec![(
            "items",
            Value::List(vec![map(vec![
                ("channel", b("zc")),
                (
                    "formats",
                    map(vec![(
                        "ws-message",
                        map(vec![("content-bin", Value::Bytes(vec![0, 0xff]))]),
                    )]),
                ),
            ])]),
        )]);
        let items = parse_items(&args, false).unwrap();
        let w = items
            .first()
            .and_then(|i| i.ws_message.clone())
            .expect("ws-message");
        assert_eq!((w.kind, w.content), (WsType::Binary, vec![0, 0xff]));
        assert_eq!(
            parse_items(&map(vec![]), false),
            Err("Invalid format: object does not contain 'items'".to_owned())
        );
        assert_eq!(
            parse_items(&map(vec![("items", b("x"))]), false),
            Err("Invalid format: object contains 'items' with wrong type".to_owned())
        );
        assert_eq!(
            parse_items(&b("x"), false),
            Err("Invalid format.".to_owned())
        );
    }

    #[test]
    fn zmq_frame_encodings() {
        let item = map(vec![
            ("channel", b("c")),
            (
                "formats",
                map(vec![("http-stream", map(vec![("content", b("x\n"))]))]),
            ),
        ]);
        let mut t_frame = b"T".to_vec();
        t_frame.extend(tnet(&item));
        let bare = tnet(&item);
        let j_frame = br#"J{"channel":"c","formats":{"http-stream":{"content":"x\n"}}}"#.to_vec();
        for frame in [t_frame, bare, j_frame] {
            let got = parse_zmq_frame(&frame, None).unwrap();
            assert_eq!(got.channel, "c");
            assert_eq!(
                got.http_stream.map(|s| (s.action, s.content)),
                Some((Action::Send, b"x\n".to_vec()))
            );
        }

        // Legacy bare tnetstring without `formats` (spec 5.6).
        let legacy = tnet(&map(vec![
            ("channel", b("c")),
            ("http-stream", map(vec![("content", b("y"))])),
        ]));
        assert_eq!(
            parse_zmq_frame(&legacy, None)
                .unwrap()
                .http_stream
                .map(|s| s.content),
            Some(b"y".to_vec())
        );
    }

    #[test]
    fn zmq_sub_payload_takes_channel_from_first_frame() {
        let payload = br#"J{"formats":{"http-stream":{"content":"via sub\n"}}}"#;
        assert_eq!(parse_zmq_frame(payload, Some("zs")).unwrap().channel, "zs");
        let mut t = b"T".to_vec();
        t.extend(tnet(&map(vec![(
            "formats",
            map(vec![("http-stream", map(vec![("content", b("t"))]))]),
        )])));
        assert_eq!(parse_zmq_frame(&t, Some("zs")).unwrap().channel, "zs");
        assert_eq!(
            parse_zmq_frame(&t, None),
            Err("invalid format: publish item object does not contain 'channel'".to_owned())
        );
    }

    #[test]
    fn zmq_content_bin_is_base64_only_in_json() {
        let j = br#"J{"channel":"c","formats":{"ws-message":{"content-bin":"aGk="}}}"#;
        assert_eq!(
            parse_zmq_frame(j, None)
                .unwrap()
                .ws_message
                .map(|w| w.content),
            Some(b"hi".to_vec())
        );
        let t = tnet(&map(vec![
            ("channel", b("c")),
            (
                "formats",
                map(vec![("ws-message", map(vec![("content-bin", b("aGk="))]))]),
            ),
        ]));
        assert_eq!(
            parse_zmq_frame(&t, None)
                .unwrap()
                .ws_message
                .map(|w| w.content),
            Some(b"aGk=".to_vec())
        );
    }

    #[test]
    fn zmq_frame_errors() {
        let cases: Vec<(Vec<u8>, String)> = vec![
            (
                b"".to_vec(),
                "invalid format (tnetstring parse failed: truncated tnetstring)".into(),
            ),
            (b"J".to_vec(), "invalid format (json parse failed)".into()),
            (b"J{".to_vec(), "invalid format (json parse failed)".into()),
            (
                b"J[1]".to_vec(),
                "invalid format (not a valid json object)".into(),
            ),
            (
                b"T".to_vec(),
                "invalid format (tnetstring parse failed: truncated tnetstring)".into(),
            ),
            (
                b"T10:abc,".to_vec(),
                "invalid format (tnetstring parse failed: truncated tnetstring)".into(),
            ),
            (
                b"T0:~0:~".to_vec(),
                "invalid format (tnetstring parse failed: trailing data after tnetstring)".into(),
            ),
            (
                b"x".to_vec(),
                "invalid format (tnetstring parse failed: bad tnetstring length prefix)".into(),
            ),
            (
                b"T0:~".to_vec(),
                "invalid format: publish item object is not an object".into(),
            ),
            (
                b"J{\"channel\":\"c\"}".to_vec(),
                "invalid format: no formats specified".into(),
            ),
            (
                vec![b'T'; PUBLISH_FRAME_MAX + 1],
                format!("invalid format (frame larger than {PUBLISH_FRAME_MAX} bytes)"),
            ),
        ];
        for (frame, want) in cases {
            let shown = String::from_utf8_lossy(frame.get(..20).unwrap_or(&frame)).into_owned();
            assert_eq!(parse_zmq_frame(&frame, None), Err(want), "{shown}");
        }
    }

    /// xorshift64 for the no-panic loops.
    use crate::test_rng::XorShift64 as Rng;

    fn pick<'a>(rng: &mut Rng, from: &[&'a [u8]]) -> &'a [u8] {
        let i = (rng.next() % from.len() as u64) as usize;
        from.get(i).copied().unwrap_or_default()
    }

    const KEYS: &[&str] = &[
        "items",
        "channel",
        "id",
        "prev-id",
        "formats",
        "http-stream",
        "http-response",
        "ws-message",
        "content",
        "content-bin",
        "body",
        "body-bin",
        "body-patch",
        "headers",
        "code",
        "reason",
        "action",
        "type",
        "meta",
        "size",
        "no-seq",
        "content-filters",
    ];
    const WORDS: &[&str] = &[
        "c", "", "send", "hint", "close", "refresh", "text", "binary", "ping", "pong", "AAE=",
        "%%", "X-A", "a\r\nb", "build-id",
    ];

    /// A random JSON value drawn from publish vocabulary, so the item parser sees plausible
    /// shapes with wrong types and values in every field.
    fn json_shape(rng: &mut Rng, depth: usize) -> serde_json::Value {
        use serde_json::Value as J;
        let word = |rng: &mut Rng, from: &[&str]| {
            let i = (rng.next() % from.len() as u64) as usize;
            from.get(i).copied().unwrap_or_default().to_owned()
        };
        match rng.next() % if depth >= 4 { 5 } else { 8 } {
            0 => J::Null,
            1 => J::Bool(rng.next() % 2 == 0),
            2 => J::from((rng.next() % 2000) as i64 - 1000),
            3 | 4 => J::String(word(rng, WORDS)),
            5 => J::Array(
                (0..rng.next() % 4)
                    .map(|_| json_shape(rng, depth + 1))
                    .collect(),
            ),
            _ => J::Object(
                (0..rng.next() % 5)
                    .map(|_| (word(rng, KEYS), json_shape(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    /// Random byte strings, publish-shaped JSON, and random splices of tnetstring fragments.
    fn fuzz_inputs(seed: u64, count: usize) -> Vec<Vec<u8>> {
        const TNET_PARTS: &[&[u8]] = &[
            b"7:channel,",
            b"1:c,",
            b"7:formats,",
            b"11:http-stream,",
            b"13:http-response,",
            b"10:ws-message,",
            b"7:content,",
            b"11:content-bin,",
            b"4:body,",
            b"7:headers,",
            b"4:code,",
            b"3:200#",
            b"0:~",
            b"4:true!",
            b"0:}",
            b"0:]",
            b"}",
            b"]",
            b":",
            b"9",
            b"99999999999:",
        ];
        let mut rng = Rng(seed);
        (0..count)
            .map(|i| {
                let parts = 1 + (rng.next() % 24) as usize;
                let mut out = Vec::new();
                match i % 3 {
                    0 => (0..parts * 3).for_each(|_| out.push(rng.next() as u8)),
                    1 => {
                        let formats = json_shape(&mut rng, 1);
                        let other = json_shape(&mut rng, 1);
                        let body = serde_json::json!({"items": [
                            {"channel": "c", "formats": formats},
                            other,
                        ]});
                        out = serde_json::to_vec(&body).unwrap_or_default();
                    }
                    _ => (0..parts).for_each(|_| {
                        let n = rng.next() % 40;
                        let len = out.len().to_string();
                        match n {
                            // Wrap what we have so far, making plausible nesting.
                            0..=3 => {
                                let mut wrapped = len.into_bytes();
                                wrapped.push(b':');
                                wrapped.append(&mut out);
                                wrapped.push(if n < 2 { b'}' } else { b']' });
                                out = wrapped;
                            }
                            _ => out.extend_from_slice(pick(&mut rng, TNET_PARTS)),
                        }
                    }),
                }
                out
            })
            .collect()
    }

    #[test]
    fn random_inputs_never_panic() {
        let (mut deep_body, mut deep_frame) = (0, 0);
        for input in fuzz_inputs(0x1234_5678_9abc_def1, 4000) {
            if let Err(e) = parse_publish_body(&input) {
                deep_body += usize::from(e.starts_with("Invalid format: "));
            }
            if let Err(e) = parse_zmq_frame(&input, None) {
                deep_frame += usize::from(e.starts_with("invalid format: "));
            }
            let _ = parse_zmq_frame(&input, Some("c"));
            let _ = tnetstring::decode(&input);
            let mut j = b"J".to_vec();
            j.extend_from_slice(&input);
            let _ = parse_zmq_frame(&j, None);
            if let Ok(v) = tnetstring::decode_all(&input) {
                // Anything that decodes also round-trips.
                assert_eq!(tnetstring::decode_all(&tnet(&v)), Ok(v));
            }
        }
        // The generator must reach the item parser, not just the JSON/tnetstring front ends.
        assert!(
            deep_body > 50 && deep_frame > 50,
            "{deep_body} {deep_frame}"
        );
    }
}
