//! Hostile and broken client input: every case gets a clear one-line answer with `Connection: close` (or, for
//! an idle client, a silent close), the connection ends, and the proxy keeps serving.

mod common;

use std::time::Duration;

use common::*;

/// Send `raw` on a fresh connection and check the proxy's own error answer and the close that follows.
fn expect_error(hf: &mut Holdfast, raw: &[u8], code: u16, text: &str) -> Response {
    let mut c = Client::connect(hf.port);
    c.send(raw);
    let resp = c.read_response();
    assert_eq!(
        resp.status,
        code,
        "status for {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(80)])
    );
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert!(
        resp.closes(),
        "an error on bad input announces Connection: close"
    );
    let body = resp.text();
    assert!(
        body.ends_with('\n') && body.matches('\n').count() == 1,
        "one line: {body:?}"
    );
    assert_eq!(body.trim_end(), text);
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "the connection is closed after the error"
    );
    assert!(hf.alive(), "holdfast died on bad input");
    resp
}

/// The proxy still answers normal requests.
fn still_serving(hf: &Holdfast, backend: &Backend) {
    let before = backend.request_count();
    let resp = get(hf.port, "/still-ok");
    assert_eq!(resp.status, 200);
    assert_eq!(backend.request_count(), before + 1);
}

fn setup(extra_ini: &str) -> (Backend, Holdfast) {
    let backend = Backend::start(|req| ok(&format!("{} {}", req.target, req.body_len)));
    let hf = Holdfast::start(&[&format!("* {}", backend.target())], extra_ini);
    (backend, hf)
}

#[test]
fn head_larger_than_client_buffer_size_gets_431() {
    let (backend, mut hf) = setup("[runner]\nclient_buffer_size=2048");
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n",
        "x".repeat(3000)
    );
    expect_error(
        &mut hf,
        raw.as_bytes(),
        431,
        "header block exceeds the size limit",
    );
    // Just under the limit is fine.
    let raw = format!(
        "GET /fits HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n",
        "x".repeat(1800)
    );
    let resp = fetch(hf.port, raw.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(backend.last().target, "/fits");
}

#[test]
fn head_larger_than_client_buffer_size_sent_slowly_gets_431() {
    let (backend, mut hf) = setup("[runner]\nclient_buffer_size=1024");
    let mut c = Client::connect(hf.port);
    c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n");
    // Header lines trickle in without ever ending the head.
    let mut got = None;
    for _ in 0..100 {
        if c.try_send(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
            .is_err()
        {
            break;
        }
        if !c.silent_for(Duration::from_millis(5)) {
            got = Some(c.read_response());
            break;
        }
    }
    let resp = got.expect("the proxy answers once the head outgrows client_buffer_size");
    assert_eq!(resp.status, 431);
    assert_eq!(resp.text(), "header block exceeds the size limit\n");
    assert!(resp.closes());
    assert_eq!(backend.request_count(), 0);
    still_serving(&hf, &backend);
    assert!(hf.alive());
}

#[test]
fn malformed_request_line_gets_400() {
    let (backend, mut hf) = setup("");
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\nHost: a.test\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: a.test\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: a.test\r\n\r\n",
    ] {
        let mut c = Client::connect(hf.port);
        c.send(raw);
        let resp = c.read_response();
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(raw));
        assert!(resp.closes());
        let body = resp.text();
        assert!(body.starts_with("malformed message head"), "{body:?}");
        assert_eq!(body.matches('\n').count(), 1);
        assert!(c.closed_within(Duration::from_secs(5)));
    }
    assert!(hf.alive());
    assert_eq!(backend.request_count(), 0);
    still_serving(&hf, &backend);
}

#[test]
fn malformed_header_gets_400() {
    let (backend, mut hf) = setup("");
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: a.test\r\nNo colon here\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a.test\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Ctl: a\x00b\r\n\r\n",
    ] {
        let mut c = Client::connect(hf.port);
        c.send(raw);
        let resp = c.read_response();
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(raw));
        assert!(resp.closes());
        assert!(
            resp.text().starts_with("malformed message head"),
            "{:?}",
            resp.text()
        );
        assert!(c.closed_within(Duration::from_secs(5)));
    }
    assert!(hf.alive());
    assert_eq!(backend.request_count(), 0);
    still_serving(&hf, &backend);
}

#[test]
fn malformed_chunk_size_gets_400() {
    let (backend, mut hf) = setup("");
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
        "invalid chunk size",
    );
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY\r\n0\r\n\r\n",
        400,
        "chunk not terminated by CRLF",
    );
    still_serving(&hf, &backend);
}

#[test]
fn oversized_chunk_trailers_get_400() {
    let (backend, mut hf) = setup("");
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: {}\r\n\r\n",
        "t".repeat(20_000)
    );
    expect_error(&mut hf, raw.as_bytes(), 400, "chunked trailers too large");
    still_serving(&hf, &backend);
}

#[test]
fn content_length_with_transfer_encoding_gets_400() {
    let (backend, mut hf) = setup("");
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "both Content-Length and Transfer-Encoding present",
    );
    assert_eq!(
        backend.request_count(),
        0,
        "an ambiguous request never reaches the backend"
    );
    still_serving(&hf, &backend);
}

#[test]
fn conflicting_content_lengths_get_400() {
    let (backend, mut hf) = setup("");
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        "conflicting Content-Length values",
    );
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5, 7\r\n\r\nhello",
        400,
        "conflicting Content-Length values",
    );
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: -1\r\n\r\n",
        400,
        "invalid Content-Length",
    );
    assert_eq!(backend.request_count(), 0);
    still_serving(&hf, &backend);
}

#[test]
fn unsupported_transfer_coding_gets_501() {
    let (backend, mut hf) = setup("");
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "unsupported transfer coding",
    );
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        "unsupported transfer coding",
    );
    assert_eq!(backend.request_count(), 0);
    still_serving(&hf, &backend);
}

#[test]
fn declared_body_over_client_max_body_size_gets_413() {
    let (backend, mut hf) = setup("[holdfast]\nclient_max_body_size=1000");
    expect_error(
        &mut hf,
        b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1001\r\n\r\n",
        413,
        "request body exceeds 1000 bytes",
    );
    assert_eq!(backend.request_count(), 0);
    // Exactly the limit passes.
    let mut raw = b"POST /max HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000\r\n\r\n".to_vec();
    raw.extend_from_slice(&[b'a'; 1000]);
    let resp = fetch(hf.port, &raw);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "/max 1000");
}

#[test]
fn chunked_body_over_client_max_body_size_gets_413() {
    let (backend, mut hf) = setup("[holdfast]\nclient_max_body_size=1000");
    let mut raw = b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(b"190\r\n");
        raw.extend_from_slice(&[b'b'; 0x190]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    expect_error(&mut hf, &raw, 413, "request body exceeds 1000 bytes");
    still_serving(&hf, &backend);
}

#[test]
fn missing_host_in_http11_gets_400() {
    let (backend, mut hf) = setup("");
    expect_error(
        &mut hf,
        b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
        400,
        "HTTP/1.1 request without a Host header",
    );
    still_serving(&hf, &backend);
}

#[test]
fn request_target_too_long_gets_414() {
    let (backend, mut hf) = setup("");
    let raw = format!("GET /{} HTTP/1.1\r\nHost: a.test\r\n\r\n", "p".repeat(5000));
    expect_error(
        &mut hf,
        raw.as_bytes(),
        414,
        "request target exceeds the length limit",
    );
    still_serving(&hf, &backend);
}

#[test]
fn too_many_header_fields_get_431() {
    let (backend, mut hf) = setup("");
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: a.test\r\n");
    for i in 0..100 {
        raw.push_str(&format!("X-H{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    expect_error(&mut hf, raw.as_bytes(), 431, "too many header fields");
    still_serving(&hf, &backend);
}

#[test]
fn idle_client_is_closed_silently() {
    let (backend, hf) = setup("[holdfast]\nclient_idle_timeout_ms=300");
    // Never sends a byte.
    let mut c = Client::connect(hf.port);
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "idle connection closed"
    );
    // Idle after a completed request: closed too, without an unsolicited response.
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/once", "a.test"));
    assert_eq!(c.read_response().status, 200);
    assert!(
        c.silent_for(Duration::from_millis(100)),
        "nothing is sent to an idle client"
    );
    assert!(c.closed_within(Duration::from_secs(5)));
    still_serving(&hf, &backend);
}

#[test]
fn started_request_past_the_timeout_gets_408() {
    let (backend, mut hf) =
        setup("[holdfast]\nclient_request_timeout_ms=300\nclient_idle_timeout_ms=5000");
    let mut c = Client::connect(hf.port);
    c.send(b"GET /slow HTTP/1.1\r\nHost: a.test\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 408);
    assert_eq!(resp.text(), "request head not received within 0.3 s\n");
    assert!(resp.closes());
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(hf.alive());
    assert_eq!(backend.request_count(), 0);
    still_serving(&hf, &backend);
}

#[test]
fn client_closing_mid_body_does_not_hurt_the_proxy() {
    let (backend, mut hf) = setup("");
    for _ in 0..5 {
        let mut c = Client::connect(hf.port);
        c.send(b"POST /cut HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\npartial");
        drop(c);
    }
    for _ in 0..5 {
        let mut c = Client::connect(hf.port);
        c.send(b"GET /cut-head HTTP/1.1\r\nHost: a");
        drop(c);
    }
    assert!(hf.alive());
    still_serving(&hf, &backend);
}

#[test]
fn random_garbage_never_kills_the_proxy() {
    let (backend, mut hf) =
        setup("[holdfast]\nclient_request_timeout_ms=500\nclient_idle_timeout_ms=500");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let pieces: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"/",
        b" HTTP/1.1",
        b" HTTP/1.0",
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"Host: a\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"0\r\n",
        b"ffffffffffffffffff\r\n",
        b":",
        b" ",
        b"\x00",
        b"\xff",
        b"abc",
        b"Expect: 100-continue\r\n",
        b"Connection: close\r\n",
    ];
    for _ in 0..60 {
        let mut raw = Vec::new();
        for _ in 0..(x % 12 + 1) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            raw.extend_from_slice(pieces[(x % pieces.len() as u64) as usize]);
        }
        let mut c = Client::connect(hf.port);
        let _ = c.try_send(&raw);
        let _ = c.wire.stream.shutdown(std::net::Shutdown::Write);
        // Whatever the answer, it must come and the connection must end.
        c.set_read_timeout(Duration::from_secs(5));
        let mut sink = Vec::new();
        let r = std::io::Read::read_to_end(&mut c.wire.stream, &mut sink);
        let ended = match r {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            ended,
            "connection not ended for {:?}",
            String::from_utf8_lossy(&raw)
        );
        assert!(
            hf.alive(),
            "holdfast died on {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    still_serving(&hf, &backend);
}

#[test]
fn expect_100_continue_with_a_body_over_the_limit_gets_413_without_100() {
    let (backend, hf) = setup("[holdfast]\nclient_max_body_size=1000");
    let mut c = Client::connect(hf.port);
    c.send(
        b"PUT / HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
    );
    let resp = c.read_response();
    assert_eq!(
        resp.status, 413,
        "the client is told no before it sends the body"
    );
    assert_eq!(resp.text(), "request body exceeds 1000 bytes\n");
    assert!(c.closed_within(Duration::from_secs(5)));
    still_serving(&hf, &backend);
}
