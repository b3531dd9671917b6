use super::*;

fn h(name: &str, value: &str) -> Header {
    Header::new(name, value.as_bytes())
}

fn limits() -> InstructLimits {
    InstructLimits::default()
}

fn parse(headers: &[Header], body: &str) -> Result<Instruct, InstructError> {
    parse_instruct(200, "OK", headers, body.as_bytes(), &limits())
}

fn ok(headers: &[Header], body: &str) -> Instruct {
    match parse(headers, body) {
        Ok(i) => i,
        Err(e) => panic!("unexpected error {e} for {headers:?}"),
    }
}

fn hold(i: &Instruct) -> &Hold {
    match &i.hold {
        Some(hold) => hold,
        None => panic!("expected a hold in {i:?}"),
    }
}

fn names(channels: &[Channel]) -> Vec<&str> {
    channels.iter().map(|c| c.name.as_str()).collect()
}

fn ch(name: &str, prev_id: Option<&str>, filters: &[&str]) -> Channel {
    Channel {
        name: name.to_string(),
        prev_id: prev_id.map(str::to_string),
        filters: filters.iter().map(|f| f.to_string()).collect(),
    }
}

fn meta(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const INSTRUCT: &str = "application/grip-instruct";

// ---- Pushpin's instructtest cases ----

#[test]
fn no_hold() {
    let mut headers = vec![h("Content-Type", "text/plain"), h("Grip-Channel", "test")];
    let i = ok(&headers, "hello world");
    assert_eq!(i.hold, None);
    assert_eq!((i.code, i.reason.as_str()), (200, "OK"));
    assert_eq!(i.headers, vec![h("Content-Type", "text/plain")]);
    assert_eq!(i.body, b"hello world");
    assert_eq!(i.unheld_channels, vec![ch("test", None, &[])]);
    assert_eq!((i.next_link, i.gone_link), (None, None));

    headers.push(h("Grip-Status", "404"));
    let i = ok(&headers, "hello world");
    assert_eq!(i.hold, None);
    assert_eq!((i.code, i.reason.as_str()), (404, "Not Found"));

    headers.pop();
    headers.push(h("Grip-Status", "404 Nothing To See Here"));
    let i = ok(&headers, "hello world");
    assert_eq!((i.code, i.reason.as_str()), (404, "Nothing To See Here"));
    assert_eq!(i.headers, vec![h("Content-Type", "text/plain")]);

    let body = r#"{"response":{"code": 200,"headers":{"Content-Type":"text/plain"},"body":"hello world"}}"#;
    let i = ok(&[h("Content-Type", INSTRUCT)], body);
    assert_eq!(i.hold, None);
    assert_eq!((i.code, i.reason.as_str()), (200, "OK"));
    assert_eq!(i.headers, vec![h("Content-Type", "text/plain")]);
    assert_eq!(i.body, b"hello world");
}

#[test]
fn response_hold() {
    let headers = [
        h("Content-Type", "text/plain"),
        h("Grip-Hold", "response"),
        h("Grip-Channel", "apple"),
        h("Grip-Channel", "banana, cherry"),
        h("Grip-Timeout", "120"),
        h("Grip-Set-Meta", "foo=bar, bar=baz"),
    ];
    let i = ok(&headers, "hello world");
    let hd = hold(&i);
    assert_eq!(hd.mode, HoldMode::Response);
    assert_eq!(names(&hd.channels), ["apple", "banana", "cherry"]);
    assert_eq!(hd.timeout_secs, 120);
    assert_eq!(hd.meta, meta(&[("foo", "bar"), ("bar", "baz")]));
    assert_eq!(hd.keep_alive, None);
    assert_eq!(i.headers, vec![h("Content-Type", "text/plain")]);
    assert_eq!(i.body, b"hello world");
    assert!(i.unheld_channels.is_empty());

    let body = r#"{"hold":{"mode":"response","channels":[{"name":"test"}],"timeout":120,
        "meta":{"foo":"bar","bar":"baz"}},
        "response":{"code": 200,"headers":{"Content-Type":"text/plain"},"body":"hello world"}}"#;
    let i = ok(&[h("Content-Type", INSTRUCT)], body);
    let hd = hold(&i);
    assert_eq!(hd.mode, HoldMode::Response);
    assert_eq!(names(&hd.channels), ["test"]);
    assert_eq!(hd.timeout_secs, 120);
    // serde_json's map is ordered by key.
    assert_eq!(hd.meta, meta(&[("bar", "baz"), ("foo", "bar")]));
    assert_eq!((i.code, i.reason.as_str()), (200, "OK"));
    assert_eq!(i.headers, vec![h("Content-Type", "text/plain")]);
    assert_eq!(i.body, b"hello world");
}

#[test]
fn response_hold_channel_params() {
    let want = vec![
        ch("apple", Some("item1"), &["f1"]),
        ch("banana", None, &["f2"]),
        ch("cherry", None, &["f1", "f2"]),
    ];
    let headers = [
        h("Content-Type", "text/plain"),
        h("Grip-Hold", "response"),
        h("Grip-Channel", "apple; prev-id=item1; filter=f1"),
        h(
            "Grip-Channel",
            "banana; filter=f2, cherry; filter=f1; filter=f2",
        ),
    ];
    let i = ok(&headers, "hello world");
    assert_eq!(hold(&i).channels, want);
    assert_eq!(i.headers, vec![h("Content-Type", "text/plain")]);

    let body = r#"{"hold":{"mode":"response","channels":[
        {"name":"apple","prev-id":"item1","filters":["f1"]},
        {"name":"banana","filters":["f2"]},
        {"name":"cherry","filters":["f1","f2"]}]},
        "response":{"code": 200,"headers":{"Content-Type":"text/plain"},"body":"hello world"}}"#;
    let i = ok(&[h("Content-Type", INSTRUCT)], body);
    assert_eq!(hold(&i).mode, HoldMode::Response);
    assert_eq!(hold(&i).channels, want);
    assert_eq!(i.body, b"hello world");
}

#[test]
fn stream_hold() {
    let headers = [
        h("Content-Type", "text/plain"),
        h("Grip-Hold", "stream"),
        h("Grip-Channel", "apple"),
        h("Grip-Channel", "banana, cherry"),
    ];
    let i = ok(&headers, "hello world");
    assert_eq!(hold(&i).mode, HoldMode::Stream);
    assert_eq!(names(&hold(&i).channels), ["apple", "banana", "cherry"]);
    assert_eq!(hold(&i).timeout_secs, DEFAULT_HOLD_TIMEOUT_SECS);
    assert_eq!(i.headers, vec![h("Content-Type", "text/plain")]);
    assert_eq!(i.body, b"hello world");

    let body = r#"{"hold":{"mode":"stream","channels":[{"name":"test"}]},
        "response":{"code": 200,"headers":{"Content-Type":"text/plain"},"body":"hello world"}}"#;
    let i = ok(&[h("Content-Type", INSTRUCT)], body);
    assert_eq!(hold(&i).mode, HoldMode::Stream);
    assert_eq!(names(&hold(&i).channels), ["test"]);
    assert_eq!((i.code, i.reason.as_str()), (200, "OK"));
    assert_eq!(i.body, b"hello world");
}

#[test]
fn stream_hold_keep_alive() {
    let base = [
        h("Content-Type", "text/plain"),
        h("Grip-Hold", "stream"),
        h("Grip-Channel", "test"),
    ];
    let i = ok(&base, "hello world");
    assert_eq!(hold(&i).keep_alive, None);

    let ka = |value: &str| {
        let mut headers = base.to_vec();
        headers.push(h("Grip-Keep-Alive", value));
        hold(&ok(&headers, "")).keep_alive.clone()
    };
    let want = |data: &[u8], timeout_secs, mode| {
        Some(KeepAlive {
            data: data.to_vec(),
            timeout_secs,
            mode,
        })
    };
    use KeepAliveMode::{Idle, Interval};
    assert_eq!(ka("ping1\\n; timeout=10"), want(b"ping1\\n", 10, Idle));
    assert_eq!(ka("ping2\\n; format=cstring"), want(b"ping2\n", 55, Idle));
    assert_eq!(ka("cGluZzMK; format=base64"), want(b"ping3\n", 55, Idle));
    assert_eq!(
        ka("ping4\\n; mode=interval"),
        want(b"ping4\\n", 55, Interval)
    );
}

// ---- Header-by-header tables ----

#[test]
fn keep_alive_table() {
    use KeepAliveMode::{Idle, Interval};
    // (value, Ok((data, timeout, mode)) or Err(message))
    type Want = Result<(&'static [u8], u64, KeepAliveMode), &'static str>;
    let cases: &[(&str, Want)] = &[
        (
            ":\\n\\n; format=cstring; timeout=3",
            Ok((b":\n\n", 3, Idle)),
        ),
        ("x; format=raw", Ok((b"x", 55, Idle))),
        ("x; format=", Ok((b"x", 55, Idle))),
        ("x; mode=idle", Ok((b"x", 55, Idle))),
        ("x; mode=", Ok((b"x", 55, Idle))),
        ("x; mode=interval; timeout=20", Ok((b"x", 20, Interval))),
        ("x; timeout=0", Ok((b"x", 1, Idle))),
        ("x; timeout=+4", Ok((b"x", 4, Idle))),
        ("a,b; timeout=2", Ok((b"a,b", 2, Idle))),
        (
            "{\"a\":\"b;c\"}; timeout=2",
            Ok((b"{\"a\":\"b;c\"}", 2, Idle)),
        ),
        ("a\\\\b\\r\\n; format=cstring", Ok((b"a\\b\r\n", 55, Idle))),
        ("\\x41\\x7a\\x00; format=cstring", Ok((b"Az\0", 55, Idle))),
        ("a\\tb\\qc; format=cstring", Ok((b"abc", 55, Idle))),
        ("cGluZw; format=base64", Ok((b"ping", 55, Idle))),
        ("cGluZw==; format=base64", Ok((b"ping", 55, Idle))),
        ("; timeout=3", Err("Grip-Keep-Alive cannot be empty")),
        (
            "\\q; format=cstring",
            Err("Grip-Keep-Alive cannot be empty"),
        ),
        (
            "x\\; format=cstring",
            Err("failed to parse Grip-Keep-Alive cstring format"),
        ),
        (
            "\\x4; format=cstring",
            Err("failed to parse Grip-Keep-Alive cstring format"),
        ),
        (
            "\\xZZ; format=cstring",
            Err("failed to parse Grip-Keep-Alive cstring format"),
        ),
        (
            "not base64!; format=base64",
            Err("failed to parse Grip-Keep-Alive base64 format"),
        ),
        ("x; format=hex", Err("no such Grip-Keep-Alive format 'hex'")),
        (
            "x; mode=sometimes",
            Err("no such Grip-Keep-Alive mode 'sometimes'"),
        ),
        (
            "x; timeout=abc",
            Err("failed to parse Grip-Keep-Alive timeout value"),
        ),
        (
            "x; timeout=99999999999",
            Err("failed to parse Grip-Keep-Alive timeout value"),
        ),
        (
            "x; timeout=-2",
            Err("Grip-Keep-Alive timeout has invalid value"),
        ),
    ];
    for (value, want) in cases {
        let headers = [h("Grip-Hold", "stream"), h("Grip-Keep-Alive", value)];
        match (parse(&headers, ""), want) {
            (Ok(i), Ok((data, timeout_secs, mode))) => assert_eq!(
                hold(&i).keep_alive,
                Some(KeepAlive {
                    data: data.to_vec(),
                    timeout_secs: *timeout_secs,
                    mode: *mode
                }),
                "value {value:?}"
            ),
            (Err(e), Err(message)) => {
                assert_eq!(e.message, *message, "value {value:?}");
                assert_eq!(e.header.as_deref(), Some("Grip-Keep-Alive"));
            }
            (got, _) => panic!("value {value:?}: got {got:?}, want {want:?}"),
        }
    }
    // An empty header value means no keep-alive; only the first header counts.
    let i = ok(&[h("Grip-Hold", "stream"), h("Grip-Keep-Alive", "")], "");
    assert_eq!(hold(&i).keep_alive, None);
    let headers = [
        h("Grip-Hold", "stream"),
        h("Grip-Keep-Alive", "one"),
        h("Grip-Keep-Alive", "two"),
    ];
    assert_eq!(
        hold(&ok(&headers, ""))
            .keep_alive
            .as_ref()
            .map(|k| k.data.clone()),
        Some(b"one".to_vec())
    );
}

#[test]
fn timeout_table() {
    let cases: &[(Option<&str>, Result<u64, &str>)] = &[
        (None, Ok(55)),
        (Some("120"), Ok(120)),
        (Some(" 7 "), Ok(7)),
        (Some("+8"), Ok(8)),
        (Some("5"), Ok(5)),
        (Some("4"), Ok(5)),
        (Some("0"), Ok(5)),
        (Some("-0"), Ok(5)),
        (Some("2147483647"), Ok(2_147_483_647)),
        (Some("2147483648"), Err("failed to parse Grip-Timeout")),
        (Some(""), Err("failed to parse Grip-Timeout")),
        (Some("1.5"), Err("failed to parse Grip-Timeout")),
        (Some("ten"), Err("failed to parse Grip-Timeout")),
        (Some("-1"), Err("Grip-Timeout has invalid value")),
    ];
    for (value, want) in cases {
        let mut headers = vec![h("Grip-Hold", "response")];
        if let Some(v) = value {
            headers.push(h("Grip-Timeout", v));
        }
        match (parse(&headers, ""), want) {
            (Ok(i), Ok(t)) => assert_eq!(hold(&i).timeout_secs, *t, "value {value:?}"),
            (Err(e), Err(m)) => {
                assert_eq!(e.message, *m, "value {value:?}");
                assert_eq!(e.header.as_deref(), Some("Grip-Timeout"));
            }
            (got, _) => panic!("value {value:?}: got {got:?}"),
        }
    }
}

#[test]
fn hold_table() {
    let cases: &[(&str, Option<HoldMode>)] = &[
        ("response", Some(HoldMode::Response)),
        ("stream", Some(HoldMode::Stream)),
    ];
    for (value, want) in cases {
        assert_eq!(ok(&[h("grip-hold", value)], "").hold.map(|x| x.mode), *want);
    }
    for bad in ["Response", "STREAM", "", "long-poll", "response "] {
        let e = parse(&[h("Grip-Hold", bad)], "").unwrap_err();
        assert_eq!(e.header.as_deref(), Some("Grip-Hold"), "value {bad:?}");
        assert_eq!(
            e.message,
            "Grip-Hold must be set to either 'response' or 'stream'"
        );
        assert_eq!(e.to_string(), e.message);
    }
}

#[test]
fn channel_table() {
    let l = InstructLimits {
        subscription_max: 3,
        filters_max: 2,
    };
    let run = |values: &[&str]| {
        let mut headers = vec![h("Grip-Hold", "response")];
        headers.extend(values.iter().map(|v| h("Grip-Channel", v)));
        parse_instruct(200, "OK", &headers, b"", &l).map(|i| hold(&i).channels.clone())
    };
    // Duplicates merge, first wins; beyond the limit channels are dropped silently.
    assert_eq!(
        run(&["a; prev-id=1", "b, a; prev-id=2", "c, d, e"]),
        Ok(vec![
            ch("a", Some("1"), &[]),
            ch("b", None, &[]),
            ch("c", None, &[])
        ])
    );
    assert_eq!(
        run(&["x; filter=f1; filter=f2"]),
        Ok(vec![ch("x", None, &["f1", "f2"])])
    );
    assert_eq!(
        run(&["x; FILTER=a; Prev-Id=\"7,8\"; other=1; flag"]),
        Ok(vec![ch("x", Some("7,8"), &["a"])])
    );
    assert_eq!(run(&[""]), Ok(vec![]));
    let errors: &[(&[&str], &str)] = &[
        (
            &["x; filter=1; filter=2; filter=3"],
            "too many filters for channel 'x'",
        ),
        (&["; prev-id=1"], "channel name cannot be empty"),
        (
            &["x; prev-id=\"open"],
            "failed to parse Grip-Channel: unterminated quoted string in 'prev-id=\"open'",
        ),
        (
            &["x; =1"],
            "failed to parse Grip-Channel: missing parameter name in '=1'",
        ),
    ];
    for (values, message) in errors {
        let e = run(values).unwrap_err();
        assert_eq!(e.message, *message, "values {values:?}");
        assert_eq!(e.header.as_deref(), Some("Grip-Channel"));
    }
    // Default limits: five filters are fine, six are not.
    let five = "c; filter=1; filter=2; filter=3; filter=4; filter=5";
    assert!(parse(&[h("Grip-Hold", "stream"), h("Grip-Channel", five)], "").is_ok());
    let six = format!("{five}; filter=6");
    assert_eq!(
        parse(&[h("Grip-Hold", "stream"), h("Grip-Channel", &six)], "")
            .unwrap_err()
            .message,
        "too many filters for channel 'c'"
    );
    // A hold with no channel is legal.
    assert!(hold(&ok(&[h("Grip-Hold", "response")], ""))
        .channels
        .is_empty());
    // Twenty channels by default.
    let many: Vec<String> = (0..30).map(|n| format!("ch{n}")).collect();
    let i = ok(
        &[
            h("Grip-Hold", "stream"),
            h("Grip-Channel", &many.join(", ")),
        ],
        "",
    );
    assert_eq!(hold(&i).channels.len(), 20);
    assert_eq!(hold(&i).channels[19].name, "ch19");
}

#[test]
fn set_meta_table() {
    type Want = Result<&'static [(&'static str, &'static str)], &'static str>;
    let cases: &[(&[&str], Want)] = &[
        (&["user=alice"], Ok(&[("user", "alice")])),
        (
            &["user = alice , x=\"a, b; c\""],
            Ok(&[("user", "alice"), ("x", "a, b; c")]),
        ),
        (&["k=1", "k=2, j=3"], Ok(&[("k", "2"), ("j", "3")])),
        (&["flag"], Ok(&[("flag", "")])),
        (&["k=v; ignored=1"], Ok(&[("k", "v")])),
        (&[""], Ok(&[])),
        (
            &["=v"],
            Err("failed to parse Grip-Set-Meta: missing parameter name in '=v'"),
        ),
        (&["; a=b"], Err("Grip-Set-Meta cannot be empty")),
        (
            &["k=\"open"],
            Err("failed to parse Grip-Set-Meta: unterminated quoted string \"open"),
        ),
    ];
    for (values, want) in cases {
        let mut headers = vec![h("Grip-Hold", "response")];
        headers.extend(values.iter().map(|v| h("Grip-Set-Meta", v)));
        match (parse(&headers, ""), want) {
            (Ok(i), Ok(m)) => assert_eq!(hold(&i).meta, meta(m), "values {values:?}"),
            (Err(e), Err(m)) => {
                assert_eq!(e.message, *m, "values {values:?}");
                assert_eq!(e.header.as_deref(), Some("Grip-Set-Meta"));
            }
            (got, _) => panic!("values {values:?}: got {got:?}"),
        }
    }
    let at_max: Vec<String> = (0..META_ENTRIES_MAX).map(|n| format!("k{n}=v")).collect();
    assert!(parse(
        &[
            h("Grip-Hold", "response"),
            h("Grip-Set-Meta", &at_max.join(","))
        ],
        ""
    )
    .is_ok());
    let over = format!("{},extra=1", at_max.join(","));
    let e = parse(&[h("Grip-Hold", "response"), h("Grip-Set-Meta", &over)], "").unwrap_err();
    assert_eq!(e.message, "too many meta entries (at most 100)");
}

#[test]
fn status_table() {
    // `None`: the value is an error.
    let cases: &[(&str, Option<(u16, &str)>)] = &[
        ("201 Made It", Some((201, "Made It"))),
        ("404", Some((404, "Not Found"))),
        ("204 ", Some((204, "No Content"))),
        ("203", Some((203, "Non-Authoritative Information"))),
        ("299", Some((299, "Undefined Reason"))),
        ("0", Some((0, "Undefined Reason"))),
        ("999 Max", Some((999, "Max"))),
        ("500 a  b", Some((500, "a  b"))),
        ("", Some((200, "OK"))),
        ("1000", None),
        ("-1", None),
        ("abc", None),
        ("20x OK", None),
        ("200 bad\u{1}", None),
    ];
    for (value, want) in cases {
        let got = parse(&[h("Grip-Status", value)], "");
        match want {
            Some((code, reason)) => {
                let i = got.unwrap_or_else(|e| panic!("value {value:?}: {e}"));
                assert_eq!(
                    (i.code, i.reason.as_str()),
                    (*code, *reason),
                    "value {value:?}"
                );
            }
            None => {
                let e = got.unwrap_err();
                assert_eq!(e.header.as_deref(), Some("Grip-Status"), "value {value:?}");
            }
        }
    }
    assert_eq!(
        parse(&[h("Grip-Status", "abc")], "").unwrap_err().message,
        "Grip-Status contains invalid status code"
    );
    // Without Grip-Status the backend's status passes through, and an empty reason gets the phrase.
    let i = parse_instruct(418, "", &[h("Grip-Channel", "x")], b"", &limits()).unwrap();
    assert_eq!((i.code, i.reason.as_str()), (418, "Undefined Reason"));
    let i = parse_instruct(503, "Busy", &[h("Grip-Channel", "x")], b"", &limits()).unwrap();
    assert_eq!((i.code, i.reason.as_str()), (503, "Busy"));
}

#[test]
fn link_table() {
    let next = |url: &str, timeout_secs| {
        Some(NextLink {
            url: url.to_string(),
            timeout_secs,
        })
    };
    type Want = Result<(Option<NextLink>, Option<&'static str>), &'static str>;
    let cases: Vec<(&[&str], Want)> = vec![
        (&["</next>; rel=next"], Ok((next("/next", 120), None))),
        (
            &["<http://b/n?x=1,2;3>; rel=next; timeout=10"],
            Ok((next("http://b/n?x=1,2;3", 10), None)),
        ),
        (&["</g>; rel=gone"], Ok((None, Some("/g")))),
        (
            &["</n>; rel=next, </g>; rel=gone"],
            Ok((next("/n", 120), Some("/g"))),
        ),
        (
            &["</n1>; rel=next", "</n2>; rel=\"next\"; timeout=0"],
            Ok((next("/n2", 0), None)),
        ),
        (&["</n>; rel=NEXT"], Ok((next("/n", 120), None))),
        (&["</n>"], Ok((None, None))),
        (&["bare-no-brackets"], Ok((None, None))),
        (&["</n>; rel=prev"], Ok((None, None))),
        (&["</n>; title=x"], Ok((None, None))),
        (&["/n; rel=next"], Err("failed to parse Grip-Link value")),
        (&["<>; rel=next"], Err("failed to parse Grip-Link value")),
        (&["</n; rel=next"], Err("failed to parse Grip-Link value")),
        (
            &["</a b>; rel=next"],
            Err("Grip-Link contains invalid link"),
        ),
        (
            &["</n>; rel=next; timeout=x"],
            Err("failed to parse Grip-Link timeout value"),
        ),
        (
            &["</n>; rel=next; timeout=-5"],
            Err("Grip-Link timeout has invalid value"),
        ),
    ];
    for (values, want) in cases {
        let headers: Vec<Header> = values.iter().map(|v| h("Grip-Link", v)).collect();
        match (parse(&headers, ""), want) {
            (Ok(i), Ok((n, g))) => {
                assert_eq!(i.next_link, n, "values {values:?}");
                assert_eq!(i.gone_link.as_deref(), g, "values {values:?}");
                assert!(i.headers.is_empty());
            }
            (Err(e), Err(m)) => {
                assert_eq!(e.message, m, "values {values:?}");
                assert_eq!(e.header.as_deref(), Some("Grip-Link"));
            }
            (got, _) => panic!("values {values:?}: got {got:?}"),
        }
    }
}

#[test]
fn expose_headers_and_stripping() {
    let headers = [
        h("Content-Type", "text/plain"),
        h("X-Keep", "1"),
        h("x-drop", "2"),
        h("Server", "s"),
        h("Content-Length", "11"),
        h("Grip-Hold", "response"),
        h("Grip-Expose-Headers", "x-keep, content-length"),
        h("grip-expose-headers", "SERVER, Grip-Hold"),
        h("grip-unknown", "z"),
    ];
    let i = ok(&headers, "hello world");
    assert_eq!(i.headers, vec![h("X-Keep", "1"), h("Server", "s")]);

    // Without a whitelist every non-Grip header except Content-Length passes, in order, duplicates kept.
    let headers = [
        h("Set-Cookie", "a=1"),
        h("GRIP-CHANNEL", "c"),
        h("content-length", "0"),
        h("Set-Cookie", "b=2"),
        h("Gripper", "not grip"),
    ];
    let i = ok(&headers, "");
    assert_eq!(
        i.headers,
        vec![
            h("Set-Cookie", "a=1"),
            h("Set-Cookie", "b=2"),
            h("Gripper", "not grip")
        ]
    );
}

#[test]
fn non_utf8_grip_values_are_errors() {
    for name in [
        "Grip-Hold",
        "Grip-Channel",
        "Grip-Timeout",
        "Grip-Keep-Alive",
        "Grip-Set-Meta",
        "Grip-Status",
        "Grip-Link",
        "Grip-Expose-Headers",
    ] {
        let e = parse(&[Header::new(name, b"\xff\xfe")], "").unwrap_err();
        assert_eq!(e.header.as_deref(), Some(name));
        assert_eq!(e.message, format!("{name} is not valid UTF-8"));
    }
    // Non-Grip headers may carry any bytes.
    let i = ok(&[Header::new("X-Bin", b"\xff"), h("Grip-Channel", "c")], "");
    assert_eq!(i.headers, vec![Header::new("X-Bin", b"\xff")]);
}

#[test]
fn is_grip_response_table() {
    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[], false),
        (&[("Content-Type", "text/plain")], false),
        (&[("Content-Type", "application/grip-instruct")], true),
        (
            &[("content-type", " Application/GRIP-Instruct ; charset=utf-8")],
            true,
        ),
        (&[("Content-Type", "application/grip-instructions")], false),
        (&[("grip-hold", "response")], true),
        (&[("X-A", "1"), ("GRIP-Whatever", "")], true),
        (&[("Gripe", "x")], false),
        (&[("Grip", "x")], false),
    ];
    for (list, want) in cases {
        let headers: Vec<Header> = list.iter().map(|(n, v)| h(n, v)).collect();
        assert_eq!(is_grip_response(&headers), *want, "headers {list:?}");
    }
}

// ---- application/grip-instruct ----

#[test]
fn instruct_live_observed_202() {
    let body = r#"{"hold":{"channels":[{"name":"t"}],"timeout":6},
        "response":{"code":202,"headers":{"X-I":"yes"},"body":"timeout body\n"}}"#;
    let headers = [
        h("Content-Type", "application/grip-instruct"),
        h("Content-Length", "999"),
        h("Server", "backend"),
    ];
    let i = ok(&headers, body);
    let hd = hold(&i);
    assert_eq!(hd.mode, HoldMode::Response);
    assert_eq!(hd.timeout_secs, 6);
    assert_eq!((i.code, i.reason.as_str()), (202, "Accepted"));
    assert_eq!(i.headers, vec![h("X-I", "yes")]);
    assert_eq!(i.body, b"timeout body\n");
}

#[test]
fn instruct_combines_with_grip_headers() {
    let body = r#"{"hold":{"mode":"stream","channels":[{"name":"b"},{"name":"a"}],
        "keep-alive":{"content":"ka\n","timeout":0},"meta":{"user":"u2"}}}"#;
    let headers = [
        h("Content-Type", "application/grip-instruct; charset=utf-8"),
        h("Grip-Channel", "a; prev-id=1"),
        h("Grip-Set-Meta", "user=u1, other=o"),
        h("Grip-Link", "</next>; rel=next; timeout=30"),
        h("Grip-Status", "201 Made It"),
        h("Grip-Keep-Alive", "hdr; mode=idle"),
        h("X-Real", "dropped"),
    ];
    let i = ok(&headers, body);
    let hd = hold(&i);
    assert_eq!(hd.mode, HoldMode::Stream);
    assert_eq!(
        hd.channels,
        vec![ch("a", Some("1"), &[]), ch("b", None, &[])]
    );
    assert_eq!(hd.meta, meta(&[("user", "u2"), ("other", "o")]));
    assert_eq!(
        hd.keep_alive,
        Some(KeepAlive {
            data: b"ka\n".to_vec(),
            timeout_secs: 1,
            mode: KeepAliveMode::Interval
        })
    );
    assert_eq!(
        i.next_link
            .as_ref()
            .map(|n| (n.url.as_str(), n.timeout_secs)),
        Some(("/next", 30))
    );
    // No `response`: Grip-Status still applies, the real headers and body are discarded.
    assert_eq!((i.code, i.reason.as_str()), (201, "Made It"));
    assert!(i.headers.is_empty());
    assert!(i.body.is_empty());

    // A JSON code resets Grip-Status's reason.
    let i = ok(
        &[h("Content-Type", INSTRUCT), h("Grip-Status", "201 Made It")],
        r#"{"response":{"code":404}}"#,
    );
    assert_eq!((i.code, i.reason.as_str()), (404, "Not Found"));
    let i = ok(
        &[h("Content-Type", INSTRUCT)],
        r#"{"response":{"code":404,"reason":"Gone Fishing"}}"#,
    );
    assert_eq!((i.code, i.reason.as_str()), (404, "Gone Fishing"));
    let i = ok(
        &[h("Content-Type", INSTRUCT)],
        r#"{"response":{"reason":"Fine"}}"#,
    );
    assert_eq!((i.code, i.reason.as_str()), (200, "Fine"));
    let i = ok(&[h("Content-Type", INSTRUCT)], "{}");
    assert_eq!((i.code, i.reason.as_str(), i.hold), (200, "OK", None));
}

#[test]
fn instruct_response_forms() {
    let body = r#"{"response":{"headers":[["A","1"],["a","2"],["Grip-X","no"],["Content-Length","5"]],
        "body-bin":"aGk=","body":"ignored"}}"#;
    let i = ok(&[h("Content-Type", INSTRUCT)], body);
    assert_eq!(i.headers, vec![h("A", "1"), h("a", "2")]);
    assert_eq!(i.body, b"hi");
    let i = ok(
        &[h("Content-Type", INSTRUCT)],
        r#"{"response":{"body":"caf\u00e9","headers":{}}}"#,
    );
    assert_eq!(i.body, "café".as_bytes());
    // Nulls count as absent.
    let body = r#"{"hold":{"mode":null,"channels":[{"name":"c","prev-id":null,"filters":null}],"timeout":null,
        "keep-alive":null,"meta":null},"response":{"code":null,"reason":null,"headers":null,"body":null}}"#;
    let i = ok(&[h("Content-Type", INSTRUCT)], body);
    assert_eq!(hold(&i).channels, vec![ch("c", None, &[])]);
    assert_eq!(hold(&i).timeout_secs, 55);
    // Integral floats are integers; keep-alive content-bin wins over content; empty content sets none.
    let body = r#"{"hold":{"channels":[],"timeout":10.0,"keep-alive":{"content-bin":"eA==","content":"y"}}}"#;
    let i = ok(&[h("Content-Type", INSTRUCT)], body);
    assert_eq!(hold(&i).timeout_secs, 10);
    assert_eq!(
        hold(&i)
            .keep_alive
            .as_ref()
            .map(|k| (k.data.clone(), k.timeout_secs)),
        Some((b"x".to_vec(), 55))
    );
    let body = r#"{"hold":{"channels":[],"keep-alive":{"timeout":5}}}"#;
    assert_eq!(
        hold(&ok(&[h("Content-Type", INSTRUCT)], body)).keep_alive,
        None
    );
}

#[test]
fn instruct_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "not json",
            "failed to parse application/grip-instruct content as JSON",
        ),
        (
            "",
            "failed to parse application/grip-instruct content as JSON",
        ),
        ("[1]", "instruct must be an object"),
        (r#"{"hold":1}"#, "instruct contains 'hold' with wrong type"),
        (r#"{"hold":{}}"#, "hold does not contain 'channels'"),
        (
            r#"{"hold":{"channels":{}}}"#,
            "hold contains 'channels' with wrong type",
        ),
        (
            r#"{"hold":{"mode":"poll","channels":[]}}"#,
            "hold 'mode' must be set to either 'response' or 'stream'",
        ),
        (
            r#"{"hold":{"mode":1,"channels":[]}}"#,
            "hold contains 'mode' with wrong type",
        ),
        (r#"{"hold":{"channels":["x"]}}"#, "channel is not an object"),
        (
            r#"{"hold":{"channels":[{}]}}"#,
            "channel does not contain 'name'",
        ),
        (
            r#"{"hold":{"channels":[{"name":5}]}}"#,
            "channel contains 'name' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[{"name":""}]}}"#,
            "channel name cannot be empty",
        ),
        (
            r#"{"hold":{"channels":[{"name":"a\r\nX: y"}]}}"#,
            "channel name 'a\\r\\nX: y' contains invalid characters",
        ),
        (
            r#"{"hold":{"channels":[{"name":"a","prev-id":"1\n"}]}}"#,
            "prev-id for channel 'a' contains invalid characters",
        ),
        (
            r#"{"hold":{"channels":[{"name":"a","prev-id":1}]}}"#,
            "channel contains 'prev-id' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[{"name":"a","filters":"f"}]}}"#,
            "channel contains 'filters' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[{"name":"a","filters":[1]}]}}"#,
            "filters contains value with wrong type",
        ),
        (
            r#"{"hold":{"channels":[{"name":"a","filters":["1","2","3","4","5","6"]}]}}"#,
            "too many filters for channel 'a'",
        ),
        (
            r#"{"hold":{"channels":[],"timeout":-1}}"#,
            "hold contains 'timeout' with invalid value",
        ),
        (
            r#"{"hold":{"channels":[],"timeout":-1.0}}"#,
            "hold contains 'timeout' with invalid value",
        ),
        (
            r#"{"hold":{"channels":[],"timeout":1e300}}"#,
            "hold contains 'timeout' with invalid value",
        ),
        (
            r#"{"hold":{"channels":[],"timeout":3000000000}}"#,
            "hold contains 'timeout' with invalid value",
        ),
        (
            r#"{"hold":{"channels":[],"timeout":1.5}}"#,
            "hold contains 'timeout' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[],"timeout":"5"}}"#,
            "hold contains 'timeout' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[],"keep-alive":"x"}}"#,
            "hold contains 'keep-alive' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[],"keep-alive":{"content":1}}}"#,
            "keep-alive contains 'content' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[],"keep-alive":{"content-bin":"!!"}}}"#,
            "keep-alive contains 'content-bin' with invalid value",
        ),
        (
            r#"{"hold":{"channels":[],"keep-alive":{"content":"x","timeout":-3}}}"#,
            "keep-alive contains 'timeout' with invalid value",
        ),
        (
            r#"{"hold":{"channels":[],"meta":[]}}"#,
            "hold contains 'meta' with wrong type",
        ),
        (
            r#"{"hold":{"channels":[],"meta":{"k":1}}}"#,
            "'meta' contains 'k' with wrong type",
        ),
        (
            r#"{"response":1}"#,
            "instruct contains 'response' with wrong type",
        ),
        (
            r#"{"response":{"code":"200"}}"#,
            "response contains 'code' with wrong type",
        ),
        (
            r#"{"response":{"code":1000}}"#,
            "response contains 'code' with invalid value",
        ),
        (
            r#"{"response":{"code":-1}}"#,
            "response contains 'code' with invalid value",
        ),
        (
            r#"{"response":{"reason":7}}"#,
            "response contains 'reason' with wrong type",
        ),
        (
            r#"{"response":{"reason":"OK\r\nX: y"}}"#,
            "status reason contains invalid characters",
        ),
        (
            r#"{"response":{"headers":"x"}}"#,
            "response contains 'headers' with wrong type",
        ),
        (
            r#"{"response":{"headers":[1]}}"#,
            "headers contains element with wrong type",
        ),
        (
            r#"{"response":{"headers":[["a"]]}}"#,
            "headers contains list with wrong number of elements",
        ),
        (
            r#"{"response":{"headers":[[1,"v"]]}}"#,
            "header contains name element with wrong type",
        ),
        (
            r#"{"response":{"headers":[["a",1]]}}"#,
            "header contains value element with wrong type",
        ),
        (
            r#"{"response":{"headers":{"a":1}}}"#,
            "headers contains 'a' with wrong type",
        ),
        (
            r#"{"response":{"headers":{"X":"a\r\nSet-Cookie: evil"}}}"#,
            "header 'X' contains invalid characters",
        ),
        (
            r#"{"response":{"headers":[["X","a\nb"]]}}"#,
            "header 'X' contains invalid characters",
        ),
        (
            r#"{"response":{"headers":[["X","a\u0000b"]]}}"#,
            "header 'X' contains invalid characters",
        ),
        (
            r#"{"response":{"headers":{"Bad Name":"v"}}}"#,
            "header name 'Bad Name' is invalid",
        ),
        (
            r#"{"response":{"headers":{"X:\r\nY":"v"}}}"#,
            "header name 'X:\\r\\nY' is invalid",
        ),
        (
            r#"{"response":{"headers":{"":"v"}}}"#,
            "header name '' is invalid",
        ),
        (
            r#"{"response":{"body":1}}"#,
            "response contains 'body' with wrong type",
        ),
        (
            r#"{"response":{"body-bin":"%%%"}}"#,
            "response contains 'body-bin' with invalid value",
        ),
    ];
    for (body, message) in cases {
        let e = parse(&[h("Content-Type", INSTRUCT)], body).unwrap_err();
        assert_eq!(e.message, *message, "body {body}");
        assert_eq!(e.header, None, "body {body}");
    }
    let e = parse_instruct(
        201,
        "Created",
        &[h("Content-Type", INSTRUCT)],
        b"{}",
        &limits(),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "response code for application/grip-instruct content must be 200"
    );
    // The size cap is checked before parsing: valid JSON just over the limit is refused.
    let mut big = String::from("{\"response\":{\"body\":\"");
    while big.len() < INSTRUCT_BODY_MAX - 4 {
        big.push('a');
    }
    big.push_str("\"}}");
    assert!(parse(&[h("Content-Type", INSTRUCT)], &big).is_ok());
    big.insert(1, ' ');
    big.insert(1, ' ');
    assert!(big.len() > INSTRUCT_BODY_MAX);
    assert_eq!(
        parse(&[h("Content-Type", INSTRUCT)], &big)
            .unwrap_err()
            .message,
        "application/grip-instruct content too large (over 100000 bytes)"
    );
    // Deeply nested JSON is refused by serde_json's recursion limit, not by a stack overflow.
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    assert!(parse(&[h("Content-Type", INSTRUCT)], &deep).is_err());
}

#[test]
fn header_errors_come_in_pushpin_order() {
    // Grip-Hold is checked before Grip-Channel, which is checked before Grip-Timeout.
    let headers = [
        h("Grip-Timeout", "x"),
        h("Grip-Channel", "; a=1"),
        h("Grip-Hold", "bad"),
    ];
    assert_eq!(
        parse(&headers, "").unwrap_err().header.as_deref(),
        Some("Grip-Hold")
    );
    assert_eq!(
        parse(&headers[..2], "").unwrap_err().header.as_deref(),
        Some("Grip-Channel")
    );
}

// ---- Robustness ----

use crate::test_rng::XorShift64Star as Rng;

trait Pick {
    fn index(&mut self, n: usize) -> usize;
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str;
}

impl Pick for Rng {
    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.index(items.len());
        items.get(i).copied().unwrap_or("")
    }
}

#[test]
fn never_panics_on_random_responses() {
    let names = [
        "Grip-Hold",
        "Grip-Channel",
        "Grip-Timeout",
        "Grip-Keep-Alive",
        "Grip-Set-Meta",
        "Grip-Status",
        "Grip-Link",
        "Grip-Expose-Headers",
        "Content-Type",
        "Content-Length",
        "X-Other",
        "grip-hold",
    ];
    let atoms = [
        "response",
        "stream",
        "a",
        "ch",
        ";",
        ",",
        "=",
        "\"",
        "\\",
        "<",
        ">",
        " ",
        "prev-id",
        "filter",
        "format",
        "cstring",
        "base64",
        "raw",
        "timeout",
        "mode",
        "interval",
        "rel",
        "next",
        "gone",
        "-1",
        "0",
        "5",
        "999",
        "1000",
        "99999999999",
        "\\x4",
        "\\x41",
        "é",
        "\u{0}",
        "application/grip-instruct",
        "</n>",
        "user",
        "<",
        "\t",
    ];
    let json_atoms = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"hold\"",
        "\"response\"",
        "\"channels\"",
        "\"name\"",
        "\"mode\"",
        "\"stream\"",
        "\"timeout\"",
        "\"keep-alive\"",
        "\"content-bin\"",
        "\"meta\"",
        "\"code\"",
        "\"headers\"",
        "\"body\"",
        "\"body-bin\"",
        "\"filters\"",
        "1",
        "-1",
        "1.5",
        "null",
        "true",
        "\"x\"",
        "\"\\r\\n\"",
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut accepted = 0;
    for _ in 0..4000 {
        let mut headers = Vec::new();
        for _ in 0..rng.index(6) {
            let mut value = Vec::new();
            for _ in 0..rng.index(8) {
                value.extend_from_slice(rng.pick(&atoms).as_bytes());
            }
            if rng.index(20) == 0 {
                value.push(0xff);
            }
            headers.push(Header::new(rng.pick(&names), &value));
        }
        let body: String = if rng.index(2) == 0 {
            // Mostly-valid instruct JSON with random edits.
            let mut s = String::new();
            for _ in 0..rng.index(30) {
                s.push_str(rng.pick(&json_atoms));
            }
            s
        } else {
            let base = r#"{"hold":{"mode":"stream","channels":[{"name":"c","filters":["f"]}],"keep-alive":{"content":"k"}},"response":{"code":202,"headers":[["A","b"]],"body":"x"}}"#;
            let cut = rng.index(base.len() + 1);
            base.get(..cut).unwrap_or(base).to_string()
        };
        if rng.index(3) == 0 {
            headers.push(h("Content-Type", INSTRUCT));
        }
        let code = [200u16, 200, 404, 0, 999][rng.index(5)];
        let l = InstructLimits {
            subscription_max: rng.index(4),
            filters_max: rng.index(3),
        };
        if let Ok(i) = parse_instruct(code, "R", &headers, body.as_bytes(), &l) {
            accepted += 1;
            // Invariants that must hold for every accepted instruct.
            assert!(i.headers.iter().all(|x| keep_for_client(&x.name)));
            assert!(i.code <= 999);
            assert!(!i.reason.is_empty());
            if let Some(hd) = &i.hold {
                assert!(hd.channels.len() <= l.subscription_max);
                assert!(hd.timeout_secs >= MIN_HOLD_TIMEOUT_SECS);
                assert!(hd
                    .channels
                    .iter()
                    .all(|c| !c.name.is_empty() && c.filters.len() <= l.filters_max));
                if let Some(ka) = &hd.keep_alive {
                    assert!(!ka.data.is_empty() && ka.timeout_secs >= 1);
                }
            }
        }
    }
    // The generator must exercise the success path too, not only errors.
    assert!(accepted > 400, "only {accepted} accepted");
}
