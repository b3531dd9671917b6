//! HTTP/1.1 behaviour through the proxy over real loopback sockets: framing both ways, keep-alive,
//! pipelining, HTTP/1.0 clients, HEAD/204/304 and Expect: 100-continue.

mod common;

use std::thread;
use std::time::Duration;

use common::*;

fn proxy_to(backend: &Backend) -> Holdfast {
    Holdfast::start(&[&format!("* {}", backend.target())], "")
}

#[test]
fn content_length_bodies_both_ways() {
    let backend = Backend::start(|req| {
        let body = format!("got {} bytes: {}", req.body_len, req.body_text());
        ok(&body)
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 11\r\n\r\nhello world");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.framing, Framing::Length);
    assert_eq!(resp.text(), "got 11 bytes: hello world");
    assert_eq!(resp.header("Content-Length"), Some("25"));
    let req = backend.last();
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/upload");
    assert_eq!(req.header("Content-Length"), Some("11"));
    assert!(!req.chunked);
    assert_eq!(req.body, b"hello world");
}

#[test]
fn chunked_request_is_decoded_and_forwarded_chunked() {
    let backend = Backend::start(|req| ok(&req.body_text()));
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    // Extensions and trailers are legal and must not end up in the payload.
    c.send(
        b"POST /c HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello world");
    let req = backend.last();
    assert!(req.chunked, "backend should see a chunked body");
    assert_eq!(req.header("Content-Length"), None);
    assert_eq!(req.body, b"hello world");
    // The connection is still usable after a chunked request.
    c.send(&get_req("/after", "a.test"));
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn chunked_response_is_relayed_chunked() {
    let backend = Backend::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
              4;name=v\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Checksum: 1\r\n\r\n"
                .to_vec(),
        )
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/", "a.test"));
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.framing, Framing::Chunked);
    assert_eq!(resp.text(), "abcdefg");
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert_eq!(resp.headers_named("Transfer-Encoding"), vec!["chunked"]);
    c.send(&get_req("/again", "a.test"));
    assert_eq!(c.read_response().text(), "abcdefg");
    assert_eq!(
        backend.connections(),
        1,
        "chunked response keeps the backend connection"
    );
}

#[test]
fn close_delimited_response_is_rechunked_for_http11_clients() {
    let backend = Backend::start(|_| {
        Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close".to_vec())
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/1", "a.test"));
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.framing, Framing::Chunked);
    assert_eq!(resp.text(), "until close");
    assert!(
        !resp.closes(),
        "the client connection survives a close-delimited backend body"
    );
    c.send(&get_req("/2", "a.test"));
    let resp = c.read_response();
    assert_eq!(resp.text(), "until close");
    assert_eq!(backend.connections(), 2);
}

#[test]
fn close_delimited_response_to_http10_client_ends_with_close() {
    let backend = Backend::start(|_| {
        Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nold school".to_vec())
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(b"GET /x HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.framing, Framing::Close);
    assert_eq!(resp.text(), "old school");
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn head_response_has_no_body_and_keeps_the_connection() {
    let backend = Backend::start(|req| {
        if req.method == "HEAD" {
            Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Kind: head\r\n\r\n".to_vec())
        } else {
            ok("body")
        }
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(b"HEAD /h HTTP/1.1\r\nHost: a.test\r\n\r\n");
    let resp = c.read_response_to("HEAD");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Length"), Some("1234"));
    assert_eq!(resp.header("X-Kind"), Some("head"));
    // If the proxy sent body bytes after the HEAD response, they would corrupt this next response.
    c.send(&get_req("/g", "a.test"));
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "body");
    assert_eq!(backend.requests()[0].method, "HEAD");
}

#[test]
fn status_204_and_304_have_no_body() {
    let backend = Backend::start(|req| match req.target.as_str() {
        "/204" => Reply::Raw(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n".to_vec()),
        "/304" => Reply::Raw(
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n".to_vec(),
        ),
        _ => ok("plain"),
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/204", "a.test"));
    let resp = c.read_response();
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("X-A"), Some("1"));
    assert_eq!(resp.header("Transfer-Encoding"), None);
    c.send(&get_req("/304", "a.test"));
    let resp = c.read_response();
    assert_eq!(resp.status, 304);
    assert_eq!(resp.header("ETag"), Some("\"v1\""));
    c.send(&get_req("/plain", "a.test"));
    let resp = c.read_response();
    assert_eq!(
        resp.text(),
        "plain",
        "stray body bytes would have broken this response"
    );
    assert!(c.silent_for(Duration::from_millis(200)));
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let backend = Backend::start(|req| ok(&req.target));
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    for i in 0..20 {
        c.send(&get_req(&format!("/n/{i}"), "a.test"));
        let resp = c.read_response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), format!("/n/{i}"));
        assert!(!resp.closes());
    }
    c.send(b"GET /last HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.text(), "/last");
    assert!(resp.closes(), "Connection: close is honoured");
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let backend = Backend::start(|req| {
        // The first request is the slowest: a proxy that answered out of order would show it.
        if req.target == "/1" {
            thread::sleep(Duration::from_millis(300));
        }
        ok(&format!("{} {}", req.target, req.body_text()))
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(
        b"GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n\
          POST /2 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc\
          POST /3 HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n\
          GET /4 HTTP/1.1\r\nHost: a.test\r\n\r\n",
    );
    let texts: Vec<String> = (0..4).map(|_| c.read_response().text()).collect();
    assert_eq!(texts, vec!["/1 ", "/2 abc", "/3 de", "/4 "]);
    let order: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(order, vec!["/1", "/2", "/3", "/4"]);
}

#[test]
fn http10_client_without_host_is_served_and_closed() {
    let backend = Backend::start(|req| ok(&req.version));
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(b"GET /ten HTTP/1.0\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.text(),
        "HTTP/1.1",
        "the backend is spoken to in HTTP/1.1"
    );
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "HTTP/1.0 without keep-alive closes"
    );
    let req = backend.last();
    assert_eq!(req.target, "/ten");
    assert!(
        req.header("Host").is_some(),
        "a Host header is supplied to the backend"
    );
}

#[test]
fn http10_keep_alive_is_honoured() {
    let backend = Backend::start(|req| ok(&req.target));
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    for path in ["/a", "/b"] {
        c.send(
            format!("GET {path} HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n")
                .as_bytes(),
        );
        let resp = c.read_response();
        assert_eq!(resp.text(), path);
        assert_eq!(resp.header("Connection"), Some("keep-alive"));
        assert_eq!(resp.framing, Framing::Length);
    }
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let backend = Backend::start(|req| ok(&req.body_text()));
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(b"PUT /e HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n");
    // A well-behaved client waits for the interim response before sending the body.
    let interim = c.read_response();
    assert_eq!(interim.status, 100);
    c.send(b"payload");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "payload");
    let req = backend.last();
    assert_eq!(req.header("Expect"), None, "Expect is not forwarded");
    assert_eq!(req.body, b"payload");
}

#[test]
fn expect_100_continue_without_a_body_gets_no_interim_response() {
    let backend = Backend::start(|_| ok("done"));
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(b"GET /e HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "done");
}

#[test]
fn response_interim_1xx_from_backend_is_not_relayed_twice() {
    // The backend sends its own 100 Continue before the final answer; the client must get one final response.
    let backend = Backend::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        )
    });
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    c.send(b"POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n\r\nx");
    let resp = c.read_response();
    assert_eq!(resp.status, 201);
    assert_eq!(resp.text(), "ok");
    c.send(&get_req("/next", "a.test"));
    assert_eq!(c.read_response().status, 201);
}

#[test]
fn many_concurrent_clients_each_get_their_own_answer() {
    let backend = Backend::start(|req| {
        thread::sleep(Duration::from_millis(20));
        ok(&req.target)
    });
    let hf = proxy_to(&backend);
    let port = hf.port;
    let handles: Vec<_> = (0..32)
        .map(|i| {
            thread::spawn(move || {
                let mut c = Client::connect(port);
                for j in 0..5 {
                    let path = format!("/c{i}/r{j}");
                    c.send(&get_req(&path, "a.test"));
                    let resp = c.read_response();
                    assert_eq!(resp.text(), path);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    assert_eq!(backend.request_count(), 160);
}

#[test]
fn client_half_close_after_a_request_gets_the_answer_and_a_prompt_close() {
    let backend = Backend::start(|_| ok("bye"));
    let hf = proxy_to(&backend);
    let mut c = Client::connect(hf.port);
    // Like `printf 'GET ...' | nc`: the request and the client's FIN arrive together.
    c.send(&get_req("/half", "a.test"));
    c.wire
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "bye");
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "the proxy should close once the half-closed client has its answer"
    );
}
