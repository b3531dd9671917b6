//! What the backend sees of a client request (spec 4.1), what the client sees of a response, and backend
//! connection reuse.

mod common;

use std::time::Duration;

use common::*;

fn echo_backend() -> Backend {
    Backend::named("ok")
}

fn send(hf: &Holdfast, raw: &str) -> Response {
    fetch(hf.port, raw.as_bytes())
}

#[test]
fn hop_by_hop_headers_are_removed_end_to_end_ones_kept() {
    let be = echo_backend();
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let resp = send(
        &hf,
        "GET /h HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Private: secret\r\n\
         X-Public: yes\r\nAuthorization: Bearer t\r\nCookie: a=b\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    let req = be.last();
    for gone in [
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "X-Private",
    ] {
        assert!(
            req.headers_named(gone).is_empty(),
            "{gone} reached the backend: {:?}",
            req.headers
        );
    }
    assert_eq!(req.header("X-Public"), Some("yes"));
    assert_eq!(req.header("Authorization"), Some("Bearer t"));
    assert_eq!(req.header("Cookie"), Some("a=b"));
    assert_eq!(req.header("Host"), Some("a.test"));
    assert_eq!(req.version, "HTTP/1.1");
}

#[test]
fn response_hop_by_hop_headers_are_removed() {
    let be = Backend::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Hidden\r\nKeep-Alive: timeout=9\r\n\
              X-Hidden: h\r\nX-Shown: s\r\nSet-Cookie: c=1\r\n\r\nok"
                .to_vec(),
        )
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let resp = get(hf.port, "/");
    assert_eq!(resp.text(), "ok");
    assert_eq!(resp.header("X-Hidden"), None);
    assert_eq!(resp.header("Keep-Alive"), None);
    assert_eq!(resp.header("X-Shown"), Some("s"));
    assert_eq!(resp.header("Set-Cookie"), Some("c=1"));
}

#[test]
fn client_grip_headers_are_stripped() {
    let be = echo_backend();
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    send(
        &hf,
        "GET / HTTP/1.1\r\nHost: a.test\r\nGrip-Sig: forged\r\ngrip-channel: x\r\nGrip-Last: c; last-id=1\r\n\
         X-Grip-Like: kept\r\n\r\n",
    );
    let req = be.last();
    // holdfast may add its own Grip-* headers (a Grip-Sig of its own, say); none of the client's may pass.
    let sent_by_client = ["forged", "x", "c; last-id=1"];
    let grip: Vec<_> = req
        .headers
        .iter()
        .filter(|(n, v)| {
            n.to_ascii_lowercase().starts_with("grip-") && sent_by_client.contains(&v.as_str())
        })
        .collect();
    assert!(
        grip.is_empty(),
        "client Grip-* headers reached the backend: {grip:?}"
    );
    assert_eq!(req.header("X-Grip-Like"), Some("kept"));
}

#[test]
fn x_forwarded_for_truncate_and_append() {
    let be = echo_backend();
    let hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[proxy]\nx_forwarded_for=truncate:0,append",
    );
    send(
        &hf,
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 6.6.6.6, 7.7.7.7\r\n\r\n",
    );
    assert_eq!(
        be.last().headers_named("X-Forwarded-For"),
        vec!["127.0.0.1"]
    );
    send(&hf, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert_eq!(
        be.last().headers_named("X-Forwarded-For"),
        vec!["127.0.0.1"]
    );
}

#[test]
fn x_forwarded_for_append_keeps_existing_entries() {
    let be = echo_backend();
    let hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[proxy]\nx_forwarded_for=append",
    );
    send(&hf, "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\n");
    assert_eq!(
        be.last().headers_named("X-Forwarded-For"),
        vec!["1.2.3.4, 5.6.7.8, 127.0.0.1"]
    );
}

#[test]
fn x_forwarded_for_untouched_without_rules() {
    let be = echo_backend();
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    send(
        &hf,
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    );
    assert_eq!(be.last().headers_named("X-Forwarded-For"), vec!["1.2.3.4"]);
    send(&hf, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert!(be.last().headers_named("X-Forwarded-For").is_empty());
}

#[test]
fn x_forwarded_proto_accepted_and_set_both() {
    let be = echo_backend();
    let hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[proxy]\naccept_x_forwarded_protocol=true\nset_x_forwarded_protocol=true",
    );
    send(
        &hf,
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: https\r\n\r\n",
    );
    let req = be.last();
    assert_eq!(req.headers_named("X-Forwarded-Proto"), vec!["https"]);
    assert_eq!(req.headers_named("X-Forwarded-Protocol"), vec!["https"]);
    // A plain client claiming nothing gets nothing added.
    send(&hf, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    let req = be.last();
    assert!(req.headers_named("X-Forwarded-Proto").is_empty());
    assert!(req.headers_named("X-Forwarded-Protocol").is_empty());
}

#[test]
fn x_forwarded_proto_from_untrusted_clients_is_stripped() {
    let be = echo_backend();
    let hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[proxy]\nset_x_forwarded_protocol=proto-only",
    );
    // Not accepted, so the claim is dropped, and the connection is plain, so nothing is added.
    send(
        &hf,
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Protocol: https\r\n\r\n",
    );
    let req = be.last();
    assert!(
        req.headers_named("X-Forwarded-Proto").is_empty(),
        "{:?}",
        req.headers
    );
    assert!(req.headers_named("X-Forwarded-Protocol").is_empty());
}

#[test]
fn x_forwarded_proto_passes_through_when_no_option_is_on() {
    let be = echo_backend();
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    send(
        &hf,
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: https\r\n\r\n",
    );
    assert_eq!(be.last().headers_named("X-Forwarded-Proto"), vec!["https"]);
}

#[test]
fn cdn_loop_is_appended() {
    let be = echo_backend();
    let hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[proxy]\ncdn_loop=holdfast",
    );
    send(
        &hf,
        "GET / HTTP/1.1\r\nHost: a.test\r\nCDN-Loop: edge1\r\n\r\n",
    );
    assert_eq!(be.last().headers_named("CDN-Loop"), vec!["edge1, holdfast"]);
    send(&hf, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert_eq!(be.last().headers_named("CDN-Loop"), vec!["holdfast"]);
}

#[test]
fn backend_connection_is_reused_for_sequential_requests() {
    let be = Backend::start(|req| ok(&req.target));
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "[proxy]\nworkers=1");
    let mut c = Client::connect(hf.port);
    for i in 0..10 {
        c.send(&get_req(&format!("/{i}"), "a.test"));
        assert_eq!(c.read_response().text(), format!("/{i}"));
    }
    // A new client connection on the same worker takes the pooled backend connection too.
    for i in 10..15 {
        let resp = get(hf.port, &format!("/{i}"));
        assert_eq!(resp.text(), format!("/{i}"));
    }
    let reqs = be.wait_requests(15, IO_TIMEOUT);
    assert_eq!(
        be.connections(),
        1,
        "15 requests should share 1 backend connection"
    );
    assert!(reqs.iter().all(|r| r.conn == 1));
}

#[test]
fn backend_connection_with_request_bodies_is_reused() {
    let be = Backend::start(|req| ok(&req.body_text()));
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "[proxy]\nworkers=1");
    let mut c = Client::connect(hf.port);
    for i in 0..5 {
        let body = format!("body-{i}");
        c.send(
            format!(
                "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(c.read_response().text(), body);
        c.send(b"PUT / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(c.read_response().text(), "abc");
    }
    be.wait_requests(10, IO_TIMEOUT);
    assert_eq!(be.connections(), 1);
}

#[test]

fn backend_connection_is_reused_after_large_bodies() {
    const LEN: u64 = 4 << 20;
    let be = Backend::start(|req| {
        if req.target != "/big" {
            return ok(&format!("{} {}", req.body_len, req.body_is_pattern));
        }
        let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n").into_bytes();
        let start = out.len();
        out.resize(start + LEN as usize, 0);
        pattern_fill(0, &mut out[start..]);
        Reply::Raw(out)
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "[proxy]\nworkers=1");
    let mut c = Client::connect(hf.port);
    for _ in 0..3 {
        // A large request body, then a large response body, each followed by a small exchange.
        c.send(
            format!("POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: {LEN}\r\n\r\n")
                .as_bytes(),
        );
        write_pattern(&mut c.wire.stream, LEN, false).expect("upload");
        assert_eq!(c.read_response().text(), format!("{LEN} true"));
        c.send(&get_req("/small", "a.test"));
        assert_eq!(c.read_response().text(), "0 true");
        c.send(&get_req("/big", "a.test"));
        let mut v = Verifier::default();
        c.read_response_streaming("GET", &mut |d| v.feed(d))
            .expect("download");
        assert!(v.ok(LEN));
        c.send(&get_req("/small", "a.test"));
        assert_eq!(c.read_response().text(), "0 true");
    }
    let conns: Vec<usize> = be
        .wait_requests(12, IO_TIMEOUT)
        .iter()
        .map(|r| r.conn)
        .collect();
    assert_eq!(
        conns,
        vec![1; 12],
        "every request should reuse the one backend connection"
    );
}

#[test]
fn backend_closing_its_pooled_connection_is_survived() {
    // Every response says Connection: close, then the next request needs a new backend connection.
    let be = Backend::start(|req| {
        Reply::RawClose(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                req.target.len(),
                req.target
            )
            .into_bytes(),
        )
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "[proxy]\nworkers=1");
    let mut c = Client::connect(hf.port);
    for i in 0..5 {
        c.send(&get_req(&format!("/{i}"), "a.test"));
        let resp = c.read_response();
        assert_eq!(resp.text(), format!("/{i}"));
        assert!(!resp.closes(), "the backend's close is not the client's");
    }
    assert_eq!(be.connections(), 5);
}

#[test]
fn pool_survives_backend_restart_on_the_same_port() {
    let port;
    {
        let be = Backend::start(|req| ok(&req.target));
        port = be.port;
        let hf = Holdfast::start(&[&format!("* 127.0.0.1:{port}")], "[proxy]\nworkers=1");
        assert_eq!(get(hf.port, "/one").text(), "/one");
        // The backend goes away while its connection sits idle in the pool.
        drop(be);
        std::thread::sleep(Duration::from_millis(300));
        let listener = std::net::TcpListener::bind(("127.0.0.1", port));
        let Ok(listener) = listener else {
            return; // the port was taken meanwhile; nothing to test
        };
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(IO_TIMEOUT)).ok();
            let mut buf = [0u8; 4096];
            let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = std::io::Write::write_all(
                &mut s,
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh",
            );
            head
        });
        let resp = get(hf.port, "/two");
        assert_eq!(
            resp.status, 200,
            "a dead pooled connection must not fail the request"
        );
        assert_eq!(resp.text(), "fresh");
        let head = t.join().expect("backend thread");
        assert!(head.starts_with("GET /two "), "{head}");
    }
}
