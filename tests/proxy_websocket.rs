//! WebSocket proxying over real sockets: handshake checks, passthrough to a WebSocket backend (frames, pings,
//! close codes, rejections), the GRIP extension (control messages, prefix, publishing), and the `test`
//! target's echo endpoint.

mod common;

use std::time::Duration;

use common::*;
use holdfast::websocket::frame::OpCode;

fn publish(hf: &Holdfast, body: &str) {
    let req = format!(
        "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = fetch(hf.control_port, req.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn ws_item(channel: &str, format: &str) -> String {
    format!(r#"{{"items":[{{"channel":"{channel}","formats":{{"ws-message":{format}}}}}]}}"#)
}

/// Publish until the connection gets it: the subscription is live a moment after the control message.
fn publish_until_received(hf: &Holdfast, peer: &mut WsPeer, channel: &str, text: &str) {
    peer.set_timeout(Duration::from_millis(200));
    for _ in 0..50 {
        publish(hf, &ws_item(channel, &format!(r#"{{"content":"{text}"}}"#)));
        if let Ok(m) = peer.try_msg() {
            assert_eq!(m, Msg::Text(text.into()));
            peer.set_timeout(IO_TIMEOUT);
            return;
        }
    }
    panic!("publish on {channel} never arrived");
}

#[test]
fn handshake_without_a_key_is_400_and_a_wrong_version_is_426_naming_13() {
    let backend = WsBackend::start(Answer::Accept(String::new()), echo_script);
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut c = Client::connect(hf.port);
    c.send(b"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400);
    assert_eq!(r.text().lines().count(), 1, "{}", r.text());

    let mut c = Client::connect(hf.port);
    c.send(
        format!(
            "GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {TEST_KEY}\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 426);
    assert_eq!(r.header("Sec-WebSocket-Version"), Some("13"));
    assert!(
        backend.conns.lock().unwrap().is_empty(),
        "a refused handshake reached the backend"
    );
}

#[test]
fn passthrough_relays_messages_fragments_and_large_frames_both_ways() {
    let backend = WsBackend::start(Answer::Accept(String::new()), echo_script);
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/chat?room=1", "Sec-WebSocket-Protocol: chat\r\n").ok();
    ws.text("hello");
    assert_eq!(ws.data_msg(), Msg::Text("hello".into()));
    ws.binary(&[0, 255, 1]);
    assert_eq!(ws.data_msg(), Msg::Binary(vec![0, 255, 1]));
    // A fragmented text message with a ping between its fragments.
    ws.send_frame(OpCode::Text, false, "frag".as_bytes());
    ws.send_frame(OpCode::Ping, true, b"mid");
    ws.send_frame(OpCode::Continuation, true, "mented ✓".as_bytes());
    assert_eq!(ws.msg(), Msg::Pong(b"mid".to_vec()));
    assert_eq!(ws.msg(), Msg::Text("fragmented ✓".into()));
    // 3 MiB in one frame: relayed as it streams (bigger than any buffer in the proxy).
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    ws.binary(&big);
    assert_eq!(ws.data_msg(), Msg::Binary(big));

    let conn = backend.conn(0);
    assert_eq!(conn.path(), "/chat?room=1");
    assert_eq!(
        conn.header("Sec-WebSocket-Protocol").as_deref(),
        Some("chat")
    );
    assert_eq!(
        conn.header("Sec-WebSocket-Extensions").as_deref(),
        Some("grip")
    );
    assert_ne!(
        conn.header("Sec-WebSocket-Key").as_deref(),
        Some(TEST_KEY),
        "backend got the client's key"
    );
}

#[test]
fn close_codes_and_reasons_cross_the_proxy_both_ways() {
    // Client-initiated: the backend sees the client's code and its answer completes the client's handshake.
    let backend = WsBackend::start(Answer::Accept(String::new()), echo_script);
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    ws.close(4006, "client says bye");
    assert_eq!(ws.msg(), Msg::Close(Some(4006), "client says bye".into()));
    assert!(
        ws.eof_within(Duration::from_secs(5)),
        "proxy did not close the TCP connection"
    );

    // Backend-initiated: the client's answer reaches the backend before holdfast lets go of it.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = std::sync::Arc::clone(&answered);
    let backend = WsBackend::start(Answer::Accept(String::new()), move |_, peer| {
        let _ = peer.try_msg();
        peer.close(4005, "backend says bye");
        *seen.lock().unwrap() = peer.try_msg().ok();
    });
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    ws.text("go");
    assert_eq!(ws.msg(), Msg::Close(Some(4005), "backend says bye".into()));
    ws.close(4005, "");
    assert!(ws.eof_within(Duration::from_secs(5)));
    assert!(
        wait_until(Duration::from_secs(5), || answered
            .lock()
            .unwrap()
            .is_some()),
        "the backend never got the client's Close"
    );
    assert_eq!(
        *answered.lock().unwrap(),
        Some(Msg::Close(Some(4005), String::new()))
    );
}

#[test]
fn a_non_101_answer_is_relayed_as_the_rejection_and_an_unreachable_backend_is_502() {
    let backend = WsBackend::start(
        Answer::Refuse(
            "403 Forbidden".into(),
            "Content-Type: text/plain\r\nX-Why: nope\r\n".into(),
            "not allowed\n".into(),
        ),
        echo_script,
    );
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let open = ws_connect(hf.port, "/", "");
    assert_eq!(open.status, 403);
    assert_eq!(open.header("X-Why").as_deref(), Some("nope"));
    assert!(open.head.ends_with("not allowed\n"), "{}", open.head);

    let dead = free_port();
    let hf = Holdfast::start(&[&format!("* 127.0.0.1:{dead}")], "");
    assert_eq!(ws_connect(hf.port, "/", "").status, 502);
}

#[test]
fn a_client_that_breaks_the_protocol_is_closed_with_1002() {
    let backend = WsBackend::start(Answer::Accept(String::new()), echo_script);
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    // An unmasked frame from a client (RFC 6455 5.1).
    ws.send_raw(&[0x81, 0x02, b'h', b'i']);
    assert!(matches!(ws.msg(), Msg::Close(Some(1002), _)));
    // Invalid UTF-8 in a text message.
    let mut ws = ws_connect(hf.port, "/", "").ok();
    ws.send_frame(OpCode::Text, true, &[0xce, 0xba, 0xed, 0xa0, 0x80]);
    assert!(matches!(ws.msg(), Msg::Close(Some(1007), _)));
}

#[test]
fn grip_backend_subscribes_by_control_message_and_publishes_reach_the_client() {
    let backend = WsBackend::start(
        Answer::Accept("Sec-WebSocket-Extensions: grip; message-prefix=\"m:\"\r\n".into()),
        |conn, peer| {
            let chan = conn.path().trim_start_matches("/grip/").to_string();
            loop {
                let Ok(m) = peer.try_msg() else { return };
                match m {
                    Msg::Text(t) if t == "subscribe" => {
                        peer.text(&format!(r#"c:{{"type":"subscribe","channel":"{chan}"}}"#));
                        peer.text("m:subscribed");
                    }
                    Msg::Text(t) if t == "unprefixed" => {
                        peer.text("no prefix: dropped");
                        peer.text("m:after");
                    }
                    Msg::Text(t) if t == "keepalive" => {
                        peer.text(r#"c:{"type":"keep-alive","content":"ka","timeout":1}"#);
                    }
                    Msg::Text(t) => peer.text(&format!("m:{t}")),
                    Msg::Close(c, r) => {
                        peer.close(c.unwrap_or(1000), &r);
                        return;
                    }
                    _ => {}
                }
            }
        },
    );
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/grip/room7", "").ok();
    // The grip extension is the backend's business, not the client's.
    ws.text("subscribe");
    assert_eq!(ws.data_msg(), Msg::Text("subscribed".into()));
    publish_until_received(&hf, &mut ws, "room7", "published one");
    publish(&hf, &ws_item("room7", r#"{"content-bin":"AAEC"}"#));
    assert_eq!(ws.data_msg(), Msg::Binary(vec![0, 1, 2]));
    ws.text("unprefixed");
    assert_eq!(ws.data_msg(), Msg::Text("after".into()));
    ws.text("keepalive");
    ws.set_timeout(Duration::from_secs(5));
    assert_eq!(ws.data_msg(), Msg::Text("ka".into()));
    // A publish with action close ends the client's connection with its code.
    publish(
        &hf,
        &ws_item("room7", r#"{"action":"close","code":4100,"reason":"done"}"#),
    );
    loop {
        match ws.msg() {
            Msg::Close(c, r) => {
                assert_eq!((c, r.as_str()), (Some(4100), "done"));
                break;
            }
            Msg::Text(t) if t == "ka" => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn the_test_target_echoes_and_delivers_publishes_on_its_channels() {
    let hf = Holdfast::start(&["* test"], "");
    let mut ws = ws_connect(hf.port, "/ws?channel=news", "").ok();
    ws.text("echo me");
    assert_eq!(ws.data_msg(), Msg::Text("echo me".into()));
    ws.send_frame(OpCode::Ping, true, b"p");
    assert_eq!(ws.msg(), Msg::Pong(b"p".to_vec()));
    publish_until_received(&hf, &mut ws, "news", "breaking");
    ws.close(1000, "");
    assert_eq!(ws.msg(), Msg::Close(Some(1000), String::new()));
    assert!(ws.eof_within(Duration::from_secs(5)));
    // Anything else on the test target is not a WebSocket resource.
    assert_eq!(ws_connect(hf.port, "/nope", "").status, 404);
}

// ---- WebSocket-over-HTTP ------------------------------------------------------------------------------------

/// Events in a request body: (type, content).
fn events_of(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    holdfast::websocket::events::parse_events(body)
        .expect("well-formed events")
        .iter()
        .map(|e| (e.kind.as_str().to_string(), e.content.to_vec()))
        .collect()
}

fn events_reply(extra: &[(&str, &str)], events: &[(&str, &[u8])]) -> Reply {
    let mut body = Vec::new();
    for (kind, content) in events {
        body.extend_from_slice(kind.as_bytes());
        if !content.is_empty() {
            body.extend_from_slice(format!(" {:x}\r\n", content.len()).as_bytes());
            body.extend_from_slice(content);
        }
        body.extend_from_slice(b"\r\n");
    }
    let mut headers = vec![(
        "Content-Type".to_string(),
        "application/websocket-events".to_string(),
    )];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Reply::Full(200, headers, body)
}

/// An over-HTTP answer that accepts OPEN and echoes TEXT events (no GRIP extension, no prefix).
fn echo_open_and_text(req: &Request) -> Reply {
    let mut out: Vec<(&str, Vec<u8>)> = Vec::new();
    for (kind, content) in events_of(&req.body) {
        match kind.as_str() {
            "OPEN" => out.push(("OPEN", Vec::new())),
            "TEXT" => out.push(("TEXT", content)),
            _ => {}
        }
    }
    let evs: Vec<(&str, &[u8])> = out.iter().map(|(k, c)| (*k, c.as_slice())).collect();
    events_reply(&[], &evs)
}

/// An over-HTTP echo backend with the GRIP extension: OPEN subscribes to "woh-chan" and sets meta; TEXT is
/// echoed with the `m:` prefix; PING gets PONG; CLOSE is answered with CLOSE.
fn woh_backend() -> Backend {
    Backend::start(|req| {
        let mut out: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut extra = vec![("Sec-WebSocket-Extensions", "grip")];
        for (kind, content) in events_of(&req.body) {
            match kind.as_str() {
                "OPEN" => {
                    out.push(("OPEN", Vec::new()));
                    out.push((
                        "TEXT",
                        br#"c:{"type":"subscribe","channel":"woh-chan"}"#.to_vec(),
                    ));
                    extra.push(("Set-Meta-User", "alice"));
                }
                "TEXT" => {
                    let mut c = b"m:".to_vec();
                    c.extend_from_slice(&content);
                    out.push(("TEXT", c));
                }
                "PING" => out.push(("PONG", content)),
                "CLOSE" => out.push(("CLOSE", content)),
                _ => {}
            }
        }
        let evs: Vec<(&str, &[u8])> = out.iter().map(|(k, c)| (*k, c.as_slice())).collect();
        events_reply(&extra, &evs)
    })
}

#[test]
fn over_http_opens_with_a_post_then_relays_messages_pings_and_closes_as_events() {
    let backend = woh_backend();
    let hf = Holdfast::start(&[&format!("* {},over_http", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/chat?x=1", "Cookie: a=b\r\n").ok();
    ws.text("hello");
    assert_eq!(ws.data_msg(), Msg::Text("hello".into()));
    ws.send_frame(OpCode::Ping, true, b"are you there");
    assert_eq!(ws.msg(), Msg::Pong(b"are you there".to_vec()));
    publish_until_received(&hf, &mut ws, "woh-chan", "pushed");
    ws.close(4001, "client done");
    assert_eq!(ws.msg(), Msg::Close(Some(4001), "client done".into()));
    assert!(ws.eof_within(Duration::from_secs(5)));

    let reqs = backend.requests();
    let open = &reqs[0];
    assert_eq!(
        (open.method.as_str(), open.target.as_str()),
        ("POST", "/chat?x=1")
    );
    assert_eq!(events_of(&open.body), [("OPEN".to_string(), Vec::new())]);
    assert_eq!(
        open.header("Content-Type"),
        Some("application/websocket-events")
    );
    assert_eq!(open.header("Cookie"), Some("a=b"));
    let cid = open
        .header("Connection-Id")
        .expect("Connection-Id")
        .to_string();
    assert!(reqs
        .iter()
        .all(|r| r.header("Connection-Id") == Some(cid.as_str())));
    // Meta set by the OPEN answer comes back on every later request.
    assert!(reqs[1..]
        .iter()
        .all(|r| r.header("Meta-User") == Some("alice")));
    let all: Vec<(String, Vec<u8>)> = reqs.iter().flat_map(|r| events_of(&r.body)).collect();
    assert!(all.contains(&("TEXT".into(), b"hello".to_vec())));
    assert!(all.contains(&("PING".into(), b"are you there".to_vec())));
    let mut close = 4001u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"client done");
    assert!(all.contains(&("CLOSE".into(), close)));
}

#[test]
fn over_http_refusal_is_relayed_and_clients_may_not_send_events_themselves() {
    let backend = Backend::start(|_| {
        Reply::Full(
            403,
            vec![("Content-Type".into(), "text/plain".into())],
            b"not allowed\n".to_vec(),
        )
    });
    let hf = Holdfast::start(&[&format!("* {},over_http", backend.target())], "");
    let open = ws_connect(hf.port, "/", "");
    assert_eq!(open.status, 403);
    assert!(open.head.ends_with("not allowed\n"));

    let body = "TEXT 2\r\nhi\r\n";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/websocket-events\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = fetch(hf.port, req.as_bytes());
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.text(),
        "Client not allowed to send WebSocket events directly.\n"
    );
    assert_eq!(
        backend.request_count(),
        1,
        "the forged events reached the backend"
    );
}

#[test]
fn over_http_messages_wait_for_the_outstanding_request_and_go_in_one_batch() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let backend = Backend::start(move |req| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        if n == 1 {
            // Hold the first message's request a while: the next messages queue up meanwhile.
            std::thread::sleep(Duration::from_millis(300));
        }
        echo_open_and_text(req)
    });
    let hf = Holdfast::start(&[&format!("* {},over_http", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    ws.text("one");
    std::thread::sleep(Duration::from_millis(50));
    ws.text("two");
    ws.text("three");
    for want in ["one", "two", "three"] {
        assert_eq!(ws.data_msg(), Msg::Text(want.into()));
    }
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 3, "OPEN, then one, then two and three together");
    assert_eq!(
        events_of(&reqs[2].body),
        [
            ("TEXT".to_string(), b"two".to_vec()),
            ("TEXT".to_string(), b"three".to_vec())
        ]
    );
}

#[test]
fn over_http_sends_disconnect_when_the_client_vanishes() {
    let backend = woh_backend();
    let hf = Holdfast::start(&[&format!("* {},over_http", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    ws.text("hi");
    assert_eq!(ws.data_msg(), Msg::Text("hi".into()));
    drop(ws); // no Close: the TCP connection just ends
    let got = wait_until(Duration::from_secs(5), || {
        backend
            .requests()
            .iter()
            .any(|r| events_of(&r.body).iter().any(|(k, _)| k == "DISCONNECT"))
    });
    assert!(got, "no DISCONNECT event reached the backend");
}

/// A GRIP WebSocket backend that runs each text message from the client as a script line:
/// `send X` replies `m:X`, `ctl JSON` sends `c:JSON`, anything else is echoed with the prefix.
fn scripted_grip_backend() -> WsBackend {
    WsBackend::start(
        Answer::Accept("Sec-WebSocket-Extensions: grip\r\n".into()),
        |_, peer| loop {
            let Ok(m) = peer.try_msg() else { return };
            match m {
                Msg::Text(t) => match t.split_once(' ') {
                    Some(("ctl", json)) => peer.text(&format!("c:{json}")),
                    Some(("send", x)) => peer.text(&format!("m:{x}")),
                    _ => peer.text(&format!("m:{t}")),
                },
                Msg::Close(c, r) => {
                    peer.close(c.unwrap_or(1000), &r);
                    return;
                }
                _ => {}
            }
        },
    )
}

#[test]
fn set_meta_feeds_the_skip_self_filter_and_send_delayed_waits_unless_flushed() {
    let backend = scripted_grip_backend();
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    ws.text(r#"ctl {"type":"set-meta","name":"user","value":"alice"}"#);
    ws.text(r#"ctl {"type":"subscribe","channel":"room","filters":["skip-self"]}"#);
    ws.text("send ready");
    assert_eq!(ws.data_msg(), Msg::Text("ready".into()));
    publish_until_received(&hf, &mut ws, "room", "probe");
    let item = |sender: &str, text: &str| {
        format!(
            r#"{{"items":[{{"channel":"room","meta":{{"sender":"{sender}"}},"formats":{{"ws-message":{{"content":"{text}"}}}}}}]}}"#
        )
    };
    publish(&hf, &item("alice", "from alice"));
    publish(&hf, &item("bob", "from bob"));
    assert_eq!(
        ws.data_msg(),
        Msg::Text("from bob".into()),
        "skip-self let alice's own message through"
    );

    ws.text(r#"ctl {"type":"send-delayed","content":"later","timeout":30}"#);
    ws.text("send now");
    assert_eq!(ws.data_msg(), Msg::Text("now".into()));
    ws.text(r#"ctl {"type":"flush-delayed"}"#);
    ws.set_timeout(Duration::from_secs(5));
    assert_eq!(ws.data_msg(), Msg::Text("later".into()));
}

#[test]
fn detach_closes_the_backend_side_but_publishes_still_reach_the_client() {
    let backend = scripted_grip_backend();
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    ws.text(r#"ctl {"type":"subscribe","channel":"news"}"#);
    ws.text("send subscribed");
    assert_eq!(ws.data_msg(), Msg::Text("subscribed".into()));
    ws.text(r#"ctl {"type":"detach"}"#);
    // Messages after the detach are discarded, so the client hears nothing back...
    ws.text("send anyone?");
    ws.set_timeout(Duration::from_millis(500));
    assert!(
        ws.try_msg().is_err(),
        "a message reached the backend after detach"
    );
    // ...but publishes still arrive, and pings are answered by holdfast itself.
    publish_until_received(&hf, &mut ws, "news", "still here");
    ws.send_frame(OpCode::Ping, true, b"p");
    assert_eq!(ws.msg(), Msg::Pong(b"p".to_vec()));
}

#[test]
fn frames_sent_with_the_handshake_are_not_lost() {
    let backend = WsBackend::start(Answer::Accept(String::new()), echo_script);
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], "");
    let mut frame = Vec::new();
    holdfast::websocket::writer::encode_frame(
        &mut frame,
        OpCode::Text,
        true,
        b"early",
        Some([9, 8, 7, 6]),
    );
    let extra = "X-Pad: 1\r\n\r\n";
    // The handshake and a first frame leave in one write.
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", hf.port)).unwrap();
    let mut req = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {TEST_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}"
    )
    .into_bytes();
    req.extend_from_slice(&frame);
    use std::io::Write;
    sock.write_all(&req).unwrap();
    let mut peer = ws_from_stream(sock);
    assert_eq!(peer.data_msg(), Msg::Text("early".into()));
}

#[test]
fn one_event_sends_each_message_in_its_own_request() {
    let backend = Backend::start(echo_open_and_text);
    let hf = Holdfast::start(
        &[&format!("* {},over_http,one_event", backend.target())],
        "",
    );
    let mut ws = ws_connect(hf.port, "/", "").ok();
    for m in ["a", "b", "c"] {
        ws.text(m);
    }
    for m in ["a", "b", "c"] {
        assert_eq!(ws.data_msg(), Msg::Text(m.into()));
    }
    let reqs = backend.requests();
    assert_eq!(reqs.len(), 4, "OPEN and one request per message");
    assert!(reqs[1..].iter().all(|r| events_of(&r.body).len() == 1));
}

#[test]
fn a_published_refresh_makes_an_over_http_connection_ask_its_backend() {
    let backend = woh_backend();
    let hf = Holdfast::start(&[&format!("* {},over_http", backend.target())], "");
    let mut ws = ws_connect(hf.port, "/", "").ok();
    publish_until_received(&hf, &mut ws, "woh-chan", "subscribed");
    let before = backend.request_count();
    publish(&hf, &ws_item("woh-chan", r#"{"action":"refresh"}"#));
    assert!(
        wait_until(Duration::from_secs(5), || backend.request_count() > before),
        "no request after the refresh"
    );
    let last = backend.last();
    assert!(last.body.is_empty(), "a refresh request carries no events");
    assert!(last.header("Connection-Id").is_some());
}
