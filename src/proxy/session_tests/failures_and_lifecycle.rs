//! Session tests, continued: route and backend failures, timeouts, the client connection's lifecycle,
//! draining, `Expect: 100-continue`, and the counts a session reports for metrics.

use super::*;
#[test]
fn route_not_found_is_a_502_and_the_connection_stays() {
    let mut h = Harness::with("only.test 127.0.0.1:9999\n", base_cfg());
    h.client.feed(b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
    let want = h.process();
    assert_eq!(want.connect, None);
    assert_eq!(
        text(&h.client.take_written()),
        local("502 Bad Gateway", "Route not found", false)
    );
    assert!(!want.close && !h.client.is_shut());

    h.client.feed(b"GET /x HTTP/1.1\r\nHost: only.test\r\n\r\n");
    let want = h.process();
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: target(),
            pooled_ok: true
        })
    );
}

// ---- backend failures ----------------------------------------------------------------------------------------

/// How a connection attempt fails: before a socket exists, or when the socket reports the outcome.
#[derive(Clone, Copy, Debug)]
enum ConnectFailure {
    Immediate,
    Async,
}

fn fail_connect(h: &mut Harness, how: ConnectFailure, to: SocketAddr) {
    match how {
        ConnectFailure::Immediate => h.connect_failed(ErrorKind::ConnectionRefused),
        ConnectFailure::Async => {
            let be = FakeSock::connecting();
            h.attach(&be, to, false);
            let want = h.process();
            assert_eq!(want.connect, None);
            be.finish_connect(Err(ErrorKind::ConnectionRefused));
        }
    }
}

#[test]
fn connect_failure_fails_over_to_the_next_target_then_answers_502() {
    for how in [ConnectFailure::Immediate, ConnectFailure::Async] {
        let mut h = Harness::with(ROUTES_FAILOVER, base_cfg());
        h.client.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let want = h.process();
        assert_eq!(
            want.connect,
            Some(ConnectRequest {
                addr: target(),
                pooled_ok: true
            })
        );
        fail_connect(&mut h, how, target());
        let want = h.process();
        assert_eq!(
            want.connect,
            Some(ConnectRequest {
                addr: second_target(),
                pooled_ok: true
            }),
            "{how:?}"
        );
        assert_eq!(h.client.written_len(), 0, "{how:?}");

        fail_connect(&mut h, how, second_target());
        let want = h.process();
        assert_eq!(want.connect, None, "{how:?}");
        assert_eq!(
            text(&h.client.take_written()),
            local("502 Bad Gateway", ORIGIN_ERROR_TEXT, false),
            "{how:?}"
        );
        assert!(!want.close && !h.client.is_shut(), "{how:?}");
    }
}

#[test]
fn debug_mode_names_the_targets_tried() {
    let mut cfg = base_cfg();
    cfg.debug = true;
    let mut h = Harness::with(ROUTES, cfg);
    h.client.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    h.process();
    h.connect_failed(ErrorKind::ConnectionRefused);
    h.process();
    let got = text(&h.client.take_written());
    assert!(got.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{got}");
    assert!(
        got.contains(
            "\r\n\r\nUnable to connect to any targets. Tried: 127.0.0.1:9999 (connect failed: "
        ),
        "{got}"
    );
}

#[test]
fn connect_timeout_fails_over() {
    let mut h = Harness::with(ROUTES_FAILOVER, base_cfg());
    h.client.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    h.process();
    let be = FakeSock::connecting();
    h.attach(&be, target(), false);
    let want = h.process();
    let deadline = h.now + h.cfg.backend_connect_timeout;
    assert_eq!(want.deadline, Some(deadline));
    h.set_time(deadline - Duration::from_millis(1));
    assert_eq!(h.process().connect, None);
    h.set_time(deadline);
    let want = h.process();
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: second_target(),
            pooled_ok: true
        })
    );
    assert!(!be.held_elsewhere(), "the stalled attempt is abandoned");
}

#[test]
fn backend_closing_without_a_response_is_a_502() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.close_input();
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        local("502 Bad Gateway", ORIGIN_ERROR_TEXT, false)
    );
    assert!(!want.close && !want.release_backend);
    assert_eq!(want.connect, None, "a fresh connection is not retried");
}

#[test]
fn backend_sending_garbage_is_a_502() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(b"SSH-2.0-OpenSSH\r\n\r\n");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        local("502 Bad Gateway", ORIGIN_ERROR_TEXT, false)
    );
    assert!(!want.release_backend && !be.held_elsewhere());
}

#[test]
fn response_head_timeout_is_a_504() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    assert!(be.written_len() > 0);
    let deadline = h.now + h.cfg.backend_response_timeout;
    h.set_time(deadline - Duration::from_millis(1));
    let want = h.process();
    assert_eq!(want.deadline, Some(deadline));
    assert_eq!(h.client.written_len(), 0);
    h.set_time(deadline);
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        local(
            "504 Gateway Timeout",
            "Timed out waiting for the origin.",
            false
        )
    );
    assert!(!want.close && !want.release_backend);
    assert!(!be.held_elsewhere());
    assert_eq!(want.deadline, Some(h.now + h.cfg.client_idle_timeout));
}

#[test]
fn stalled_response_body_closes_after_the_backend_idle_timeout() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
    );
    let deadline = h.now + h.cfg.backend_idle_timeout;
    assert_eq!(want.deadline, Some(deadline));
    h.set_time(deadline);
    let want = h.process();
    assert!(
        want.close,
        "a truncated body can only be signalled by closing"
    );
    assert_eq!(h.client.written_len(), 0);
}

#[test]
fn backend_closing_mid_body_closes_the_client() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
    let want = h.process();
    assert!(!want.close);
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
    );
    be.close_input();
    let want = h.process();
    assert!(
        want.close,
        "a truncated body can only be signalled by closing"
    );
    assert_eq!(h.client.written_len(), 0);
}

#[test]
fn pooled_backend_that_went_away_is_retried_once_on_a_fresh_connection() {
    // (how the pooled connection fails, label)
    type Breaker = fn(&FakeSock);
    let failures: &[(Breaker, &str)] = &[
        (|s: &FakeSock| s.close_input(), "closed"),
        (
            |s: &FakeSock| s.break_with(ErrorKind::ConnectionReset),
            "reset",
        ),
    ];
    for (fail, what) in failures {
        let mut h = Harness::new();
        h.client.feed(b"GET /r HTTP/1.1\r\nHost: h\r\n\r\n");
        let want = h.process();
        assert_eq!(
            want.connect,
            Some(ConnectRequest {
                addr: target(),
                pooled_ok: true
            })
        );
        let stale = FakeSock::open();
        fail(&stale);
        h.attach(&stale, target(), true);
        let want = h.process();
        assert_eq!(
            want.connect,
            Some(ConnectRequest {
                addr: target(),
                pooled_ok: false
            }),
            "{what}: retry, and not from the pool"
        );
        assert_eq!(h.client.written_len(), 0, "{what}");
        assert!(!stale.held_elsewhere(), "{what}");

        let fresh = FakeSock::connecting();
        h.attach(&fresh, target(), false);
        h.process();
        fresh.finish_connect(Ok(()));
        h.process();
        assert_eq!(
            text(&fresh.take_written()),
            "GET /r HTTP/1.1\r\nHost: h\r\n\r\n",
            "{what}"
        );
        // The retry is not retried again.
        fresh.close_input();
        let want = h.process();
        assert_eq!(want.connect, None, "{what}");
        assert_eq!(
            text(&h.client.take_written()),
            local("502 Bad Gateway", ORIGIN_ERROR_TEXT, false),
            "{what}"
        );
    }
}

#[test]
fn pooled_backend_failure_with_a_request_body_is_not_retried() {
    let mut h = Harness::new();
    h.client
        .feed(b"POST /r HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
    h.process();
    let stale = FakeSock::open();
    stale.close_input();
    h.attach(&stale, target(), true);
    let want = h.process();
    assert_eq!(want.connect, None);
    assert_eq!(
        text(&h.client.take_written()),
        local("502 Bad Gateway", ORIGIN_ERROR_TEXT, true)
    );
}

// ---- client-side timeouts ------------------------------------------------------------------------------------

#[test]
fn idle_client_is_closed_after_the_idle_timeout() {
    let mut h = Harness::new();
    let want = h.process();
    let deadline = h.base + h.cfg.client_idle_timeout;
    assert_eq!(want.deadline, Some(deadline));
    h.set_time(deadline - Duration::from_millis(1));
    assert!(!h.process().close);
    h.set_time(deadline);
    let want = h.process();
    assert!(want.close);
    assert_eq!(h.client.written_len(), 0, "an idle close sends nothing");
}

#[test]
fn slow_request_head_gets_a_408() {
    let mut h = Harness::new();
    h.advance(Duration::from_secs(1));
    h.client.feed(b"GET / HTTP/1.1\r\nHo");
    let want = h.process();
    let deadline = h.now + h.cfg.client_request_timeout;
    assert_eq!(want.deadline, Some(deadline));
    h.advance(Duration::from_secs(5));
    h.client.feed(b"st: h\r\n");
    let want = h.process();
    assert_eq!(
        want.deadline,
        Some(deadline),
        "trickling bytes does not extend the head deadline"
    );
    h.set_time(deadline);
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        local(
            "408 Request Timeout",
            "request head not received within 30 s",
            true
        )
    );
    assert!(h.client.is_shut());
    assert!(!want.close);
    h.client.close_input();
    assert!(h.process().close);
}

#[test]
fn client_closing_an_idle_connection_ends_the_session() {
    let mut h = Harness::new();
    h.process();
    h.client.close_input();
    assert!(h.process().close);
}

#[test]
fn client_half_close_after_a_request_still_gets_the_response() {
    let mut h = Harness::new();
    h.client.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    let want = h.process();
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: target(),
            pooled_ok: true
        })
    );
    h.client.close_input();
    let be = FakeSock::open();
    h.attach(&be, target(), false);
    let want = h.process();
    assert!(
        !want.close,
        "a half-closed client still waits for its answer"
    );
    assert_eq!(
        text(&be.take_written()),
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    );
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    if want.release_backend {
        h.take_backend();
    }
    assert!(h.process().close);
}

#[test]
fn client_connection_close_is_honoured() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        target(),
    );
    assert_eq!(
        text(&be.take_written()),
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    );
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    assert!(
        want.release_backend,
        "the client's choice does not stop the backend being pooled"
    );
    h.take_backend();
    let want = h.process();
    assert!(h.client.is_shut());
    assert!(!want.close);
    h.client.close_input();
    assert!(h.process().close);
}

#[test]
fn backend_keep_alive_decides_pooling() {
    // (response from the backend, pooled)
    let cases: &[(&str, bool)] = &[
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            false,
        ),
        ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
        (
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
            true,
        ),
    ];
    for (response, pooled) in cases {
        let mut h = Harness::new();
        let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
        be.feed(response.as_bytes());
        let want = h.process();
        assert_eq!(
            text(&h.client.take_written()),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "{response:?}"
        );
        assert_eq!(want.release_backend, *pooled, "{response:?}");
        if !pooled {
            assert!(!be.held_elsewhere(), "{response:?}: closed, not kept");
        }
        assert!(!want.close && !h.client.is_shut(), "{response:?}");
    }
}

#[test]
fn early_response_before_the_request_body_ends_closes_the_client() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nfirst",
        target(),
    );
    be.take_written();
    be.feed(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nnope");
    let want = h.process();
    assert!(
        !want.release_backend,
        "a backend still owed body bytes is not reusable"
    );
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope",
        "the client is told the connection ends, since the rest of its body cannot be skipped"
    );
    assert!(h.client.is_shut());
}

// ---- an end of stream that arrives together with the last bytes ------------------------------------------------

#[test]
fn eof_arriving_with_the_last_backend_bytes_is_noticed() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    // A backend that writes its close-delimited response and closes: data and FIN come in one poll event.
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc");
    be.close_input();
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n0\r\n\r\n"
    );
    assert!(!want.close);
    assert_eq!(want.deadline, Some(h.now + h.cfg.client_idle_timeout));
}

#[test]
fn client_eof_arriving_with_the_request_is_noticed() {
    let mut h = Harness::new();
    // `printf 'GET ...' | nc -N`: the request and the FIN come in one poll event.
    h.client.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    h.client.close_input();
    let want = h.process();
    assert!(want.connect.is_some());
    let be = FakeSock::open();
    h.attach(&be, target(), false);
    h.process();
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    if want.release_backend {
        h.take_backend();
    }
    assert!(
        h.process().close,
        "the session ends instead of idling until client_idle_timeout"
    );
}

// ---- draining ------------------------------------------------------------------------------------------------

#[test]
fn draining_closes_an_idle_session() {
    for through_env in [false, true] {
        let mut h = Harness::new();
        assert!(!h.process().close);
        if through_env {
            h.draining = true;
        } else {
            h.session.begin_drain();
        }
        let want = h.process();
        assert!(want.close, "through_env={through_env}");
        assert_eq!(h.client.written_len(), 0);
    }
}

#[test]
fn draining_during_an_exchange_finishes_it_with_connection_close() {
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    h.session.begin_drain();
    let want = h.process();
    assert!(!want.close, "the request in flight is finished first");
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    if want.release_backend {
        h.take_backend();
    }
    let want = h.process();
    assert!(h.client.is_shut());
    assert!(!want.close);
    h.client.close_input();
    assert!(h.process().close);
}

#[test]
fn draining_does_not_start_a_pipelined_request() {
    let mut h = Harness::new();
    let be = h.send_to_backend(
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        target(),
    );
    be.take_written();
    h.session.begin_drain();
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA");
    let want = h.process();
    if want.release_backend {
        h.take_backend();
    }
    let want = h.process();
    assert_eq!(want.connect, None);
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA"
    );
    assert!(h.client.is_shut());
}

// ---- Expect: 100-continue ------------------------------------------------------------------------------------

#[test]
fn expect_continue_is_answered_before_the_body_is_forwarded() {
    let mut h = Harness::new();
    h.client
        .feed(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 100 Continue\r\n\r\n"
    );
    assert_eq!(
        want.connect,
        Some(ConnectRequest {
            addr: target(),
            pooled_ok: true
        })
    );
    let be = FakeSock::open();
    h.attach(&be, target(), false);
    h.process();
    assert_eq!(
        text(&be.take_written()),
        "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
        "Expect is the proxy's business, not the backend's"
    );
    h.client.feed(b"hello");
    h.process();
    assert_eq!(text(&be.take_written()), "hello");
    be.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let want = h.process();
    assert_eq!(
        text(&h.client.take_written()),
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "one 100 Continue only"
    );
    assert!(want.release_backend);
}

#[test]
fn expect_continue_is_not_sent_for_an_empty_body_or_http10() {
    for request in [
        &b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n"[..],
        &b"GET /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"[..],
        &b"POST /e HTTP/1.0\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"[..],
    ] {
        let mut h = Harness::new();
        h.client.feed(request);
        let want = h.process();
        assert!(want.connect.is_some());
        assert_eq!(h.client.written_len(), 0, "{}", text(request));
    }
}

#[test]
fn error_after_a_partly_written_continue_keeps_the_stream_well_formed() {
    let mut h = Harness::new();
    h.client.block_writes();
    h.client.allow_write(5);
    h.client
        .feed(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let want = h.process();
    assert!(want.connect.is_some());
    assert_eq!(h.client.written_len(), 5);
    h.connect_failed(ErrorKind::ConnectionRefused);
    h.client.allow_write(usize::MAX);
    h.process();
    assert_eq!(
        text(&h.client.take_written()),
        format!(
            "HTTP/1.1 100 Continue\r\n\r\n{}",
            local("502 Bad Gateway", ORIGIN_ERROR_TEXT, true)
        )
    );
}

// ---- counts for the metrics -------------------------------------------------------------------------------------

/// Length of the HTTP head at the start of `wire` (through the blank line).
fn head_len(wire: &[u8]) -> u64 {
    let end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    (end + 4) as u64
}

fn header_bytes(h: &Harness, flow: Flow) -> u64 {
    h.counts.header_bytes[flow.index()]
}

#[test]
fn head_bytes_are_counted_apart_from_bodies_on_both_sides() {
    let mut h = Harness::new();
    let request = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
    let be = h.send_to_backend(request, target());
    let to_backend = be.take_written();
    assert!(to_backend.ends_with(b"abc"));
    be.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Backend: b1\r\n\r\nhello");
    assert!(h.process().release_backend);
    h.take_backend();
    let to_client = h.client.take_written();
    assert!(to_client.ends_with(b"hello"));

    assert_eq!(h.counts.requests, 1);
    assert_eq!(header_bytes(&h, Flow::ClientReceived), head_len(request));
    assert_eq!(header_bytes(&h, Flow::BackendSent), head_len(&to_backend));
    assert_eq!(
        header_bytes(&h, Flow::BackendReceived),
        head_len(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Backend: b1\r\n\r\n")
    );
    assert_eq!(header_bytes(&h, Flow::ClientSent), head_len(&to_client));
    assert_eq!(h.counts.backend_errors, [0, 0, 0]);
    assert_eq!(h.counts.ws_messages, [0, 0, 0, 0]);

    // A second request on the same connection counts again; a local answer's head counts, its body not.
    h.client
        .feed(b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n");
    h.process();
    let answer = h.client.take_written();
    assert!(answer.starts_with(b"HTTP/1.1 400 "), "{}", text(&answer));
    assert_eq!(h.counts.requests, 2);
    assert_eq!(
        header_bytes(&h, Flow::ClientSent),
        head_len(&to_client) + head_len(&answer)
    );
}

#[test]
fn backend_failures_are_counted_by_kind() {
    let errors = |h: &Harness| {
        let e = h.counts.backend_errors;
        (
            e[BackendError::Connect.index()],
            e[BackendError::Timeout.index()],
            e[BackendError::BadGateway.index()],
        )
    };

    // Two refused targets, then a 502: each attempt counts, and so does the 502.
    let mut h = Harness::with(ROUTES_FAILOVER, base_cfg());
    h.client.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    h.process();
    fail_connect(&mut h, ConnectFailure::Immediate, target());
    h.process();
    fail_connect(&mut h, ConnectFailure::Async, second_target());
    h.process();
    assert!(text(&h.client.take_written()).starts_with("HTTP/1.1 502 "));
    assert_eq!(errors(&h), (2, 0, 1));

    // No response head in time: a 504.
    let mut h = Harness::new();
    h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    h.set_time(h.now + h.cfg.backend_response_timeout);
    h.process();
    assert!(text(&h.client.take_written()).starts_with("HTTP/1.1 504 "));
    assert_eq!(errors(&h), (0, 1, 0));

    // Garbage instead of a response: a 502.
    let mut h = Harness::new();
    let be = h.send_to_backend(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", target());
    be.feed(b"SSH-2.0-OpenSSH\r\n\r\n");
    h.process();
    assert_eq!(errors(&h), (0, 0, 1));

    // A route that does not exist is the client's problem, not a backend's.
    let mut h = Harness::with("host.test 127.0.0.1:9999\n", base_cfg());
    h.client.feed(b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n");
    h.process();
    assert!(text(&h.client.take_written()).starts_with("HTTP/1.1 502 "));
    assert_eq!(errors(&h), (0, 0, 0));
    assert_eq!(h.counts.requests, 1);
}
