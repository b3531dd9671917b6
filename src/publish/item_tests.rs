use super::*;

fn json_value(text: &str) -> Value {
    Value::from_json(&serde_json::from_str(text).expect("test JSON"))
}

/// The item as JSON input.
fn from_json(text: &str) -> Result<Item, String> {
    parse_item(&json_value(text), true, None)
}

/// The same structure as tnetstring input: strings become byte strings, as on the wire.
fn from_tnet(text: &str) -> Result<Item, String> {
    parse_item(&json_value(text), false, None)
}

fn stream(item: &Item) -> &HttpStreamFormat {
    item.http_stream.as_ref().expect("http-stream")
}

fn response(item: &Item) -> &HttpResponseFormat {
    item.http_response.as_ref().expect("http-response")
}

fn ws(item: &Item) -> &WsMessageFormat {
    item.ws_message.as_ref().expect("ws-message")
}

// Pushpin's publishitemtest, in both styles.
#[test]
fn parse_item_both_styles() {
    let text = r#"{"channel":"apple","id":"item1","prev-id":"item0",
        "meta":{"foo":"bar","bar":"baz"},
        "formats":{"http-stream":{"content":"hello world"}}}"#;
    for (style, got) in [("json", from_json(text)), ("tnet", from_tnet(text))] {
        let item = got.unwrap_or_else(|e| panic!("{style}: {e}"));
        assert_eq!(item.channel, "apple");
        assert_eq!(item.id.as_deref(), Some("item1"));
        assert_eq!(item.prev_id.as_deref(), Some("item0"));
        assert_eq!(
            item.meta,
            vec![
                ("bar".to_owned(), "baz".to_owned()),
                ("foo".to_owned(), "bar".to_owned())
            ]
        );
        assert_eq!(stream(&item).content, b"hello world");
        assert_eq!(stream(&item).action, Action::Send);
        assert!(item.http_response.is_none() && item.ws_message.is_none());
        assert_eq!(item.size, None);
        assert!(!item.no_seq);
    }
}

#[test]
fn full_item_every_field() {
    let item = from_json(
        r#"{"channel":"c","size":12,"no-seq":true,"formats":{
            "http-response":{"code":404,"reason":"Nope","headers":{"X-A":"1","Content-Type":"text/plain"},
                "body":"gone\n","content-filters":["build-id"]},
            "http-stream":{"content-bin":"AAH/","content-filters":[]},
            "ws-message":{"type":"binary","content":"m"}}}"#,
    )
    .unwrap();
    assert_eq!(item.size, Some(12));
    assert!(item.no_seq);
    assert_eq!(
        response(&item),
        &HttpResponseFormat {
            action: Action::Send,
            code: 404,
            reason: Some("Nope".to_owned()),
            headers: vec![
                ("Content-Type".to_owned(), b"text/plain".to_vec()),
                ("X-A".to_owned(), b"1".to_vec()),
            ],
            body: Some(b"gone\n".to_vec()),
            body_patch: None,
            content_filters: Some(vec!["build-id".to_owned()]),
        }
    );
    assert_eq!(
        stream(&item),
        &HttpStreamFormat {
            action: Action::Send,
            content: vec![0, 1, 0xff],
            content_filters: Some(vec![]),
        }
    );
    assert_eq!(ws(&item).kind, WsType::Binary);
    assert_eq!(ws(&item).content, b"m");
    assert_eq!(ws(&item).content_filters, None);
}

// Pushpin's publishformattest response cases.
#[test]
fn response_format_defaults_and_list_headers() {
    for parse in [from_json, from_tnet] {
        let item = parse(
            r#"{"channel":"c","formats":{"http-response":{"code":200,"reason":"OK",
            "headers":[["Content-Type","text/plain"],["Set-Cookie","a=1"],["Set-Cookie","b=2"]],
            "body":"hello world"}}}"#,
        )
        .unwrap();
        let r = response(&item);
        assert_eq!((r.code, r.reason.as_deref()), (200, Some("OK")));
        assert_eq!(
            r.headers,
            vec![
                ("Content-Type".to_owned(), b"text/plain".to_vec()),
                ("Set-Cookie".to_owned(), b"a=1".to_vec()),
                ("Set-Cookie".to_owned(), b"b=2".to_vec()),
            ]
        );
        assert_eq!(r.body.as_deref(), Some(&b"hello world"[..]));

        let item =
            parse(r#"{"channel":"c","formats":{"http-response":{"body":"other fields implied"}}}"#)
                .unwrap();
        let r = response(&item);
        assert_eq!((r.code, r.reason.as_deref()), (200, None));
        assert!(r.headers.is_empty());
        assert_eq!(r.content_filters, None);
        assert_eq!(r.body.as_deref(), Some(&b"other fields implied"[..]));
    }
}

#[test]
fn response_code_and_reason_table() {
    type Case<'a> = (&'a str, Result<(u16, Option<&'a str>), &'a str>);
    let cases: &[Case] = &[
        (r#""code":0"#, Ok((0, None))),
        (r#""code":999"#, Ok((999, None))),
        (r#""code":201.0"#, Ok((201, None))),
        (r#""code":200,"reason":"""#, Ok((200, None))),
        (r#""code":200,"reason":null"#, Ok((200, None))),
        (
            r#""reason":"Fine\tthanks""#,
            Ok((200, Some("Fine\tthanks"))),
        ),
        (
            r#""code":1000"#,
            Err("'http-response' contains 'code' with invalid value"),
        ),
        (
            r#""code":-1"#,
            Err("'http-response' contains 'code' with invalid value"),
        ),
        (
            r#""code":"200""#,
            Err("'http-response' contains 'code' with wrong type"),
        ),
        (
            r#""code":200.5"#,
            Err("'http-response' contains 'code' with wrong type"),
        ),
        (
            r#""code":null"#,
            Err("'http-response' contains 'code' with wrong type"),
        ),
        (
            r#""code":true"#,
            Err("'http-response' contains 'code' with wrong type"),
        ),
        (
            r#""reason":5"#,
            Err("'http-response' contains 'reason' with wrong type"),
        ),
        (
            r#""reason":"a\r\nX-Evil: 1""#,
            Err("'http-response' contains 'reason' with invalid value"),
        ),
        (
            r#""reason":"a\u0000""#,
            Err("'http-response' contains 'reason' with invalid value"),
        ),
    ];
    for (fields, want) in cases {
        let text =
            format!(r#"{{"channel":"c","formats":{{"http-response":{{{fields},"body":"x"}}}}}}"#);
        let got = from_json(&text).map(|i| {
            let r = response(&i);
            (r.code, r.reason.clone())
        });
        let want = want
            .map(|(c, r)| (c, r.map(str::to_owned)))
            .map_err(str::to_owned);
        assert_eq!(got, want, "{fields}");
    }
}

#[test]
fn response_headers_table() {
    type Case<'a> = (&'a str, Result<Vec<(&'a str, &'a str)>, &'a str>);
    let cases: &[Case] = &[
        (r#"[]"#, Ok(vec![])),
        (r#"{}"#, Ok(vec![])),
        (r#"[["A","1"],["A","2"]]"#, Ok(vec![("A", "1"), ("A", "2")])),
        (r#"{"X-Y":"z"}"#, Ok(vec![("X-Y", "z")])),
        (
            r#"[["!#$%&'*+-.^_`|~09azAZ",""]]"#,
            Ok(vec![("!#$%&'*+-.^_`|~09azAZ", "")]),
        ),
        (r#"{"A":"tab\tok"}"#, Ok(vec![("A", "tab\tok")])),
        (
            r#""Content-Type: x""#,
            Err("'http-response' contains 'headers' with wrong type"),
        ),
        (
            r#"null"#,
            Err("'http-response' contains 'headers' with wrong type"),
        ),
        (
            r#"["A","1"]"#,
            Err("headers contains element with wrong type"),
        ),
        (
            r#"[["A"]]"#,
            Err("headers contains list with wrong number of elements"),
        ),
        (
            r#"[["A","1","2"]]"#,
            Err("headers contains list with wrong number of elements"),
        ),
        (
            r#"[[1,"1"]]"#,
            Err("header contains name element with wrong type"),
        ),
        (
            r#"[["A",1]]"#,
            Err("header contains value element with wrong type"),
        ),
        (
            r#"[["Bad Name","1"]]"#,
            Err("header contains name element with invalid value"),
        ),
        (
            r#"[["","1"]]"#,
            Err("header contains name element with invalid value"),
        ),
        (
            r#"[["A:","1"]]"#,
            Err("header contains name element with invalid value"),
        ),
        (
            r#"[["A","1\r\nSet-Cookie: x"]]"#,
            Err("header contains value element with invalid value"),
        ),
        (
            r#"[["A","1\n"]]"#,
            Err("header contains value element with invalid value"),
        ),
        (r#"{"A":1}"#, Err("headers contains 'A' with wrong type")),
        (r#"{"A":null}"#, Err("headers contains 'A' with wrong type")),
        (
            r#"{"A\r\nB":"1"}"#,
            Err("headers contains 'A??B' with invalid name"),
        ),
        (
            r#"{"A":"x\u0000"}"#,
            Err("headers contains 'A' with invalid value"),
        ),
    ];
    for (headers, want) in cases {
        let text = format!(
            r#"{{"channel":"c","formats":{{"http-response":{{"headers":{headers},"body":"x"}}}}}}"#
        );
        let got = from_json(&text).map(|i| response(&i).headers.clone());
        let want = want
            .clone()
            .map(|hs| {
                hs.into_iter()
                    .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
                    .collect::<Vec<_>>()
            })
            .map_err(str::to_owned);
        assert_eq!(got, want, "{headers}");
    }
}

#[test]
fn tnetstring_header_map_duplicates_keep_the_last() {
    let headers = Value::Map(vec![
        (b"A".to_vec(), Value::Bytes(b"1".to_vec())),
        (b"B".to_vec(), Value::Bytes(b"2".to_vec())),
        (b"A".to_vec(), Value::Bytes(b"3".to_vec())),
    ]);
    let item = Value::Map(vec![
        (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
        (
            b"http-response".to_vec(),
            Value::Map(vec![
                (b"headers".to_vec(), headers),
                (b"body".to_vec(), Value::Bytes(vec![0xff])),
            ]),
        ),
    ]);
    let item = parse_item(&item, false, None).unwrap();
    assert_eq!(
        response(&item).headers,
        vec![
            ("A".to_owned(), b"3".to_vec()),
            ("B".to_owned(), b"2".to_vec())
        ]
    );
    assert_eq!(response(&item).body.as_deref(), Some(&[0xffu8][..]));
}

#[test]
fn many_repeated_map_keys_stay_linear() {
    let n = 60_000;
    let repeated = |value: &[u8]| {
        Value::Map(
            (0..n)
                .map(|i| {
                    (
                        format!("K{}", i % 2).into_bytes(),
                        Value::Bytes(value.to_vec()),
                    )
                })
                .collect(),
        )
    };
    let item = Value::Map(vec![
        (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
        (b"meta".to_vec(), repeated(b"m")),
        (
            b"http-response".to_vec(),
            Value::Map(vec![
                (b"headers".to_vec(), repeated(b"h")),
                (b"body".to_vec(), Value::Bytes(vec![])),
            ]),
        ),
    ]);
    let item = parse_item(&item, false, None).unwrap();
    assert_eq!(item.meta.len(), 2);
    assert_eq!(response(&item).headers.len(), 2);
}

#[test]
fn response_body_variants() {
    let patch_text = r#"[{"op":"replace","path":"/a","value":1}]"#;
    type Case<'a> = (&'a str, bool, Result<(Option<&'a [u8]>, bool), String>);
    let cases: &[Case] = &[
        (r#""body":"b""#, true, Ok((Some(b"b"), false))),
        (r#""body-bin":"AP8=""#, true, Ok((Some(b"\x00\xff"), false))),
        (r#""body-bin":"AP8""#, true, Ok((Some(b"\x00\xff"), false))),
        (
            r#""body-bin":"AP\n8=""#,
            true,
            Ok((Some(b"\x00\xff"), false)),
        ),
        (r#""body-bin":"_-8=""#, true, Ok((Some(b"\xff\xef"), false))),
        (r#""body-bin":"""#, true, Ok((Some(b""), false))),
        // body-bin wins over body, body over body-patch (Pushpin's order).
        (
            r#""body-bin":"eA==","body":"y""#,
            true,
            Ok((Some(b"x"), false)),
        ),
        (
            &format!(r#""body":"y","body-patch":{patch_text}"#),
            true,
            Ok((Some(b"y"), false)),
        ),
        (
            &format!(r#""body-patch":{patch_text}"#),
            true,
            Ok((None, true)),
        ),
        (
            &format!(r#""body-patch":{patch_text}"#),
            false,
            Ok((None, true)),
        ),
        // From tnetstring, body-bin is not a body field at all.
        (
            r#""body-bin":"eA==","body":"y""#,
            false,
            Ok((Some(b"y"), false)),
        ),
        (
            r#""body-bin":"eA==""#,
            false,
            Err("'http-response' does not contain 'body' or 'body-patch'".into()),
        ),
        (
            r#""code":200"#,
            true,
            Err("'http-response' does not contain 'body', 'body-bin', or 'body-patch'".into()),
        ),
        (
            r#""body":5"#,
            true,
            Err("'http-response' contains 'body' with wrong type".into()),
        ),
        (
            r#""body":null"#,
            true,
            Err("'http-response' contains 'body' with wrong type".into()),
        ),
        (
            r#""body-bin":5"#,
            true,
            Err("'http-response' contains 'body-bin' with wrong type".into()),
        ),
        (
            r#""body-bin":"not base64!""#,
            true,
            Err("'http-response' contains 'body-bin' with invalid value".into()),
        ),
        (
            r#""body-patch":{"op":"add"}"#,
            true,
            Err("'http-response' contains 'body-patch' with wrong type".into()),
        ),
    ];
    for (fields, json, want) in cases {
        let text = format!(r#"{{"channel":"c","formats":{{"http-response":{{{fields}}}}}}}"#);
        let got = parse_item(&json_value(&text), *json, None).map(|i| {
            let r = response(&i).clone();
            (r.body, r.body_patch)
        });
        match (got, want) {
            (Ok((body, patch)), Ok((want_body, want_patch))) => {
                assert_eq!(body.as_deref(), *want_body, "{fields}");
                assert_eq!(patch.is_some(), *want_patch, "{fields}");
                if let Some(p) = patch {
                    assert_eq!(
                        p,
                        serde_json::from_str::<serde_json::Value>(patch_text).unwrap()
                    );
                }
            }
            (got, want) => assert_eq!(got.map(|_| ()), want.clone().map(|_| ()), "{fields}"),
        }
    }
}

#[test]
fn non_send_actions_skip_the_content_fields() {
    for action in ["hint", "close", "refresh"] {
        let text = format!(
            r#"{{"channel":"c","formats":{{"http-response":{{"action":"{action}"}},
            "http-stream":{{"action":"{action}"}},"ws-message":{{"action":"{action}"}}}}}}"#
        );
        let item = from_json(&text).unwrap_or_else(|e| panic!("{action}: {e}"));
        let want = match action {
            "hint" => Action::Hint,
            "close" => Action::Close,
            _ => Action::Refresh,
        };
        assert_eq!(response(&item).action, want);
        assert_eq!(response(&item).body, None);
        assert_eq!(stream(&item).action, want);
        assert!(stream(&item).content.is_empty());
        assert_eq!(ws(&item).action, want);
    }
}

#[test]
fn action_table() {
    let cases: &[(&str, Result<Action, &str>)] = &[
        (r#""send""#, Ok(Action::Send)),
        (r#"null"#, Ok(Action::Send)),
        (r#""hint""#, Ok(Action::Hint)),
        // Pushpin's quirk: no reason at all (the API says `Invalid format: `).
        (r#""publish""#, Err("")),
        (r#""""#, Err("")),
        (r#""SEND""#, Err("")),
        (
            r#"1"#,
            Err("'http-stream' contains 'action' with wrong type"),
        ),
    ];
    for (action, want) in cases {
        let text = format!(
            r#"{{"channel":"c","formats":{{"http-stream":{{"action":{action},"content":"x"}}}}}}"#
        );
        let got = from_json(&text).map(|i| stream(&i).action);
        assert_eq!(got, want.map_err(str::to_owned), "{action}");
    }
}

#[test]
fn stream_format_table() {
    type Case<'a> = (&'a str, bool, Result<&'a [u8], &'a str>);
    let cases: &[Case] = &[
        (r#""content":"hello world""#, true, Ok(b"hello world")),
        (r#""content":"""#, true, Ok(b"")),
        (r#""content-bin":"aGk=""#, true, Ok(b"hi")),
        (r#""content-bin":"aGk=","content":"no""#, true, Ok(b"hi")),
        (r#""content-bin":"aGk=","content":"yes""#, false, Ok(b"yes")),
        (
            r#""content-bin":"aGk=""#,
            false,
            Err("'http-stream' does not contain 'content'"),
        ),
        (
            r#""content-filters":[]"#,
            true,
            Err("'http-stream' does not contain 'content' or 'content-bin'"),
        ),
        (
            r#""content":["x"]"#,
            true,
            Err("'http-stream' contains 'content' with wrong type"),
        ),
        (
            r#""content-bin":1"#,
            true,
            Err("'http-stream' contains 'content-bin' with wrong type"),
        ),
        (
            r#""content-bin":"a=b""#,
            true,
            Err("'http-stream' contains 'content-bin' with invalid value"),
        ),
        (
            r#""content":"x","content-filters":"build-id""#,
            true,
            Err("'http-stream' contains 'content-filters' with wrong type"),
        ),
        (
            r#""content":"x","content-filters":["a",1]"#,
            true,
            Err("content-filters contains element with wrong type"),
        ),
    ];
    for (fields, json, want) in cases {
        let text = format!(r#"{{"channel":"c","formats":{{"http-stream":{{{fields}}}}}}}"#);
        let got = parse_item(&json_value(&text), *json, None).map(|i| stream(&i).content.clone());
        assert_eq!(
            got,
            want.map(<[u8]>::to_vec).map_err(str::to_owned),
            "{fields}"
        );
    }
}

#[test]
fn content_filters_absent_empty_and_listed_differ() {
    let get = |fields: &str| {
        let text =
            format!(r#"{{"channel":"c","formats":{{"http-stream":{{"content":"x"{fields}}}}}}}"#);
        from_json(&text).map(|i| stream(&i).content_filters.clone())
    };
    assert_eq!(get(""), Ok(None));
    assert_eq!(get(r#","content-filters":[]"#), Ok(Some(vec![])));
    assert_eq!(
        get(r#","content-filters":["build-id","var-subst"]"#),
        Ok(Some(vec!["build-id".to_owned(), "var-subst".to_owned()]))
    );
}

// Pushpin's publishformattest WebSocket cases, plus the error texts.
#[test]
fn ws_send_table() {
    let long = "a".repeat(WS_CONTROL_PAYLOAD_MAX + 1);
    let max = "a".repeat(WS_CONTROL_PAYLOAD_MAX);
    type Case = (String, bool, Result<(WsType, Vec<u8>), &'static str>);
    let cases: Vec<Case> = vec![
        (
            r#""content":"hello world""#.into(),
            true,
            Ok((WsType::Text, b"hello world".to_vec())),
        ),
        (
            r#""type":"binary","content":"hello world""#.into(),
            true,
            Ok((WsType::Binary, b"hello world".to_vec())),
        ),
        (
            r#""content-bin":"aGk=""#.into(),
            true,
            Ok((WsType::Binary, b"hi".to_vec())),
        ),
        (
            r#""type":"text","content-bin":"aGk=""#.into(),
            true,
            Ok((WsType::Text, b"hi".to_vec())),
        ),
        // From tnetstring, content-bin is the raw bytes.
        (
            r#""content-bin":"hello world""#.into(),
            false,
            Ok((WsType::Binary, b"hello world".to_vec())),
        ),
        (r#""type":"ping""#.into(), true, Ok((WsType::Ping, vec![]))),
        (
            r#""type":"pong","content":"p""#.into(),
            true,
            Ok((WsType::Pong, b"p".to_vec())),
        ),
        (
            format!(r#""type":"ping","content":"{max}""#),
            true,
            Ok((WsType::Ping, max.clone().into_bytes())),
        ),
        (
            r#""type":null,"content":"t""#.into(),
            true,
            Ok((WsType::Text, b"t".to_vec())),
        ),
        (
            format!(r#""type":"ping","content":"{long}""#),
            true,
            Err("'ws-message' contains 'content' with invalid value"),
        ),
        (
            r#""type":"text""#.into(),
            true,
            Err("'ws-message' does not contain 'content' or 'content-bin'"),
        ),
        (
            r#""type":"binary""#.into(),
            false,
            Err("'ws-message' does not contain 'content' or 'content-bin'"),
        ),
        (
            r#""content-filters":[]"#.into(),
            true,
            Err("'ws-message' does not contain 'content' or 'content-bin'"),
        ),
        (
            r#""type":"close","content":"x""#.into(),
            true,
            Err("'ws-message' contains 'type' with unknown value"),
        ),
        (
            r#""type":"""#.into(),
            true,
            Err("'ws-message' contains 'type' with unknown value"),
        ),
        (
            r#""type":1,"content":"x""#.into(),
            true,
            Err("'ws-message' contains 'type' with wrong type"),
        ),
        (
            r#""content":1"#.into(),
            true,
            Err("'ws-message' contains 'content' with wrong type"),
        ),
        (
            r#""content-bin":1"#.into(),
            true,
            Err("'ws-message' contains 'content-bin' with wrong type"),
        ),
        (
            r#""content-bin":1"#.into(),
            false,
            Err("'ws-message' contains 'content-bin' with wrong type"),
        ),
        (
            r#""content-bin":"%%%""#.into(),
            true,
            Err("'ws-message' contains 'content-bin' with invalid value"),
        ),
        (
            r#""content":"x","content-filters":{}"#.into(),
            true,
            Err("'ws-message' contains 'content-filters' with wrong type"),
        ),
    ];
    for (fields, json, want) in cases {
        let text = format!(r#"{{"channel":"c","formats":{{"ws-message":{{{fields}}}}}}}"#);
        let got = parse_item(&json_value(&text), json, None).map(|i| {
            let w = ws(&i);
            (w.kind, w.content.clone())
        });
        assert_eq!(got, want.map_err(str::to_owned), "{fields}");
    }
}

#[test]
fn ws_close_table() {
    let long = "r".repeat(WS_CLOSE_REASON_MAX + 1);
    type Case = (
        String,
        Result<(Option<u16>, Option<&'static str>), &'static str>,
    );
    let cases: Vec<Case> = vec![
        (String::new(), Ok((None, None))),
        (r#","code":1001"#.into(), Ok((Some(1001), None))),
        (
            r#","code":4001,"reason":"pubclose""#.into(),
            Ok((Some(4001), Some("pubclose"))),
        ),
        (r#","code":0,"reason":"""#.into(), Ok((Some(0), None))),
        (
            r#","code":-1"#.into(),
            Err("'ws-message' contains 'code' with invalid value"),
        ),
        (
            r#","code":65536"#.into(),
            Err("'ws-message' contains 'code' with invalid value"),
        ),
        (
            r#","code":"1000""#.into(),
            Err("'ws-message' contains 'code' with wrong type"),
        ),
        (
            r#","reason":7"#.into(),
            Err("'ws-message' contains 'reason' with wrong type"),
        ),
        (
            format!(r#","reason":"{long}""#),
            Err("'ws-message' contains 'reason' with invalid value"),
        ),
    ];
    for (fields, want) in cases {
        let text =
            format!(r#"{{"channel":"c","formats":{{"ws-message":{{"action":"close"{fields}}}}}}}"#);
        let got = from_json(&text).map(|i| {
            let w = ws(&i);
            (w.close_code, w.close_reason.clone())
        });
        let want = want
            .map(|(c, r)| (c, r.map(str::to_owned)))
            .map_err(str::to_owned);
        assert_eq!(got, want, "{fields}");
    }
}

#[test]
fn item_level_errors_table() {
    let ok_formats = r#""formats":{"http-stream":{"content":"x"}}"#;
    let cases: Vec<(String, &str)> = vec![
        ("[]".into(), "publish item object is not an object"),
        (r#""c""#.into(), "publish item object is not an object"),
        (
            format!("{{{ok_formats}}}"),
            "publish item object does not contain 'channel'",
        ),
        (
            format!(r#"{{"channel":7,{ok_formats}}}"#),
            "publish item object contains 'channel' with wrong type",
        ),
        (
            format!(r#"{{"channel":null,{ok_formats}}}"#),
            "publish item object contains 'channel' with wrong type",
        ),
        (
            format!(r#"{{"channel":"",{ok_formats}}}"#),
            "publish item object contains 'channel' with invalid value",
        ),
        (
            format!(r#"{{"channel":"c","id":1,{ok_formats}}}"#),
            "publish item object contains 'id' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","prev-id":[],{ok_formats}}}"#),
            "publish item object contains 'prev-id' with wrong type",
        ),
        (r#"{"channel":"c"}"#.into(), "no formats specified"),
        (
            r#"{"channel":"c","formats":{}}"#.into(),
            "no formats specified",
        ),
        (
            r#"{"channel":"c","formats":{"sse":{}}}"#.into(),
            "no formats specified",
        ),
        // Top-level formats are ignored once `formats` is present.
        (
            r#"{"channel":"c","formats":{},"http-stream":{"content":"x"}}"#.into(),
            "no formats specified",
        ),
        (
            r#"{"channel":"c","formats":[]}"#.into(),
            "publish item object contains 'formats' with wrong type",
        ),
        (
            r#"{"channel":"c","formats":{"http-response":"x"}}"#.into(),
            "'http-response' is not an object",
        ),
        (
            r#"{"channel":"c","formats":{"http-stream":null}}"#.into(),
            "'http-stream' is not an object",
        ),
        (
            r#"{"channel":"c","formats":{"ws-message":[]}}"#.into(),
            "'ws-message' is not an object",
        ),
        // Formats are checked in a fixed order: response, stream, ws.
        (
            r#"{"channel":"c","formats":{"ws-message":{"type":1},"http-response":{"code":"x"}}}"#
                .into(),
            "'http-response' contains 'code' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","meta":[],{ok_formats}}}"#),
            "publish item object contains 'meta' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","meta":{{"user":1}},{ok_formats}}}"#),
            "'meta' contains 'user' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","meta":{{"a\nb":null}},{ok_formats}}}"#),
            "'meta' contains 'a?b' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","size":"1",{ok_formats}}}"#),
            "publish item object contains 'size' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","size":1.5,{ok_formats}}}"#),
            "publish item object contains 'size' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","size":-1,{ok_formats}}}"#),
            "publish item object contains 'size' with invalid value",
        ),
        (
            format!(r#"{{"channel":"c","no-seq":1,{ok_formats}}}"#),
            "publish item object contains 'no-seq' with wrong type",
        ),
        (
            format!(r#"{{"channel":"c","no-seq":"true",{ok_formats}}}"#),
            "publish item object contains 'no-seq' with wrong type",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(from_json(&text), Err(want.to_owned()), "json {text}");
        assert_eq!(from_tnet(&text), Err(want.to_owned()), "tnet {text}");
    }
}

#[test]
fn optional_fields_accept_null() {
    let item = from_json(
        r#"{"channel":"c","id":null,"prev-id":null,"meta":null,"formats":null,
        "http-stream":{"content":"x"}}"#,
    )
    .unwrap();
    assert_eq!((&item.id, &item.prev_id), (&None, &None));
    assert!(item.meta.is_empty());
    assert_eq!(stream(&item).content, b"x");
}

#[test]
fn legacy_top_level_formats() {
    let text = r#"{"channel":"c","http-stream":{"content":"s"},
        "http-response":{"body":"r"},"ws-message":{"content":"w"}}"#;
    for parse in [from_json, from_tnet] {
        let item = parse(text).unwrap();
        assert_eq!(stream(&item).content, b"s");
        assert_eq!(response(&item).body.as_deref(), Some(&b"r"[..]));
        assert_eq!(ws(&item).content, b"w");
    }
}

#[test]
fn channel_override_from_sub_frame() {
    let payload = json_value(r#"{"formats":{"http-stream":{"content":"x"}}}"#);
    assert_eq!(
        parse_item(&payload, true, Some("sub")).unwrap().channel,
        "sub"
    );
    assert_eq!(
        parse_item(&payload, true, None),
        Err("publish item object does not contain 'channel'".to_owned())
    );

    let with_channel =
        json_value(r#"{"channel":"inner","formats":{"http-stream":{"content":"x"}}}"#);
    assert_eq!(
        parse_item(&with_channel, false, Some("outer"))
            .unwrap()
            .channel,
        "outer"
    );
    // An empty first frame falls back to the payload's channel, as in Pushpin.
    assert_eq!(
        parse_item(&with_channel, false, Some("")).unwrap().channel,
        "inner"
    );
    // With an override the payload's channel is not read at all (Pushpin does the same).
    let bad = json_value(r#"{"channel":7,"formats":{"http-stream":{"content":"x"}}}"#);
    assert_eq!(parse_item(&bad, true, Some("sub")).unwrap().channel, "sub");
}

#[test]
fn meta_and_size() {
    let item = from_json(
        r#"{"channel":"c","meta":{"sender":"u1","skip_users":"a,b"},"size":0,"no-seq":false,
        "http-stream":{"content":"x"}}"#,
    )
    .unwrap();
    assert_eq!(
        item.meta,
        vec![
            ("sender".to_owned(), "u1".to_owned()),
            ("skip_users".to_owned(), "a,b".to_owned())
        ]
    );
    assert_eq!(item.size, Some(0));
    assert!(!item.no_seq);

    // tnetstring maps may repeat keys and carry non-UTF-8 bytes.
    let meta = |entries: Vec<(Vec<u8>, Value)>| {
        Value::Map(vec![
            (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
            (b"meta".to_vec(), Value::Map(entries)),
            (
                b"http-stream".to_vec(),
                Value::Map(vec![(b"content".to_vec(), Value::Bytes(vec![]))]),
            ),
        ])
    };
    let dup = meta(vec![
        (b"k".to_vec(), Value::Bytes(b"1".to_vec())),
        (b"k".to_vec(), Value::Bytes(b"2".to_vec())),
    ]);
    assert_eq!(
        parse_item(&dup, false, None).unwrap().meta,
        vec![("k".to_owned(), "2".to_owned())]
    );
    let bad_value = meta(vec![(b"k".to_vec(), Value::Bytes(vec![0xff]))]);
    assert_eq!(
        parse_item(&bad_value, false, None),
        Err("'meta' contains 'k' with invalid value".to_owned())
    );
    let bad_key = meta(vec![(vec![b'k', 0xff], Value::Bytes(vec![]))]);
    assert_eq!(
        parse_item(&bad_key, false, None),
        Err("'meta' contains 'k\u{fffd}' with invalid value".to_owned())
    );
}

#[test]
fn tnetstring_non_utf8_strings_are_invalid_values() {
    let item = |channel: Vec<u8>, id: Vec<u8>| {
        Value::Map(vec![
            (b"channel".to_vec(), Value::Bytes(channel)),
            (b"id".to_vec(), Value::Bytes(id)),
            (
                b"http-stream".to_vec(),
                Value::Map(vec![(b"content".to_vec(), Value::Bytes(vec![0xff]))]),
            ),
        ])
    };
    assert_eq!(
        parse_item(&item(vec![0xc3], b"i".to_vec()), false, None),
        Err("publish item object contains 'channel' with invalid value".to_owned())
    );
    assert_eq!(
        parse_item(&item(b"c".to_vec(), vec![0xc3]), false, None),
        Err("publish item object contains 'id' with invalid value".to_owned())
    );
    let ok = parse_item(&item(b"c".to_vec(), b"i".to_vec()), false, None).unwrap();
    assert_eq!(stream(&ok).content, vec![0xff]);
}

#[test]
fn body_patch_from_tnetstring_becomes_json() {
    let op = Value::Map(vec![
        (b"op".to_vec(), Value::Bytes(b"add".to_vec())),
        (b"path".to_vec(), Value::Bytes(b"/n".to_vec())),
        (b"value".to_vec(), Value::Int(3)),
    ]);
    let item = Value::Map(vec![
        (b"channel".to_vec(), Value::Bytes(b"c".to_vec())),
        (
            b"http-response".to_vec(),
            Value::Map(vec![(b"body-patch".to_vec(), Value::List(vec![op]))]),
        ),
    ]);
    let item = parse_item(&item, false, None).unwrap();
    assert_eq!(
        response(&item).body_patch,
        Some(serde_json::json!([{"op": "add", "path": "/n", "value": 3}]))
    );
}
