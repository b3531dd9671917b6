//! The Prometheus endpoint (`prometheus_port`) over real sockets: the exposition answers any request, and its
//! counters and gauges follow what clients, backends and publishers do.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

/// One scrape: every sample as `name{labels}` (labels as rendered) to its value, plus the raw answer.
struct Scrape {
    samples: HashMap<String, f64>,
    resp: Response,
}

impl Scrape {
    /// The value of a sample; panics if it is missing (a metric vanishing is a bug too).
    fn get(&self, series: &str) -> f64 {
        match self.samples.get(series) {
            Some(v) => *v,
            None => panic!("no sample {series} in:\n{}", self.resp.text()),
        }
    }
}

fn scrape_path(port: u16, path: &str) -> Scrape {
    let resp = fetch(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: metrics\r\n\r\n").as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut samples = HashMap::new();
    for line in resp.text().lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().expect("numeric sample");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    Scrape { samples, resp }
}

fn scrape(port: u16) -> Scrape {
    scrape_path(port, "/metrics")
}

/// Scrape until `ok` holds (workers flush their counts once per loop, so a change shows up within one).
fn scrape_until(port: u16, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
    let mut last = None;
    let found = wait_until(Duration::from_secs(5), || {
        let s = scrape(port);
        let hit = ok(&s);
        last = Some(s);
        hit
    });
    let s = last.expect("at least one scrape");
    assert!(found, "{what}; last scrape:\n{}", s.resp.text());
    s
}

fn publish(hf: &Holdfast, body: &str) {
    let req = format!(
        "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = fetch(hf.control_port, req.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// One chunk of a chunked body.
fn read_chunk(c: &mut Client) -> Vec<u8> {
    let size = c.wire.read_line().expect("chunk size line");
    let size = usize::from_str_radix(std::str::from_utf8(&size).expect("ascii"), 16).expect("hex");
    let mut data = Vec::new();
    c.wire
        .read_exact_into(size as u64, &mut |d| data.extend_from_slice(d))
        .expect("chunk data");
    assert!(c.wire.read_line().expect("chunk end").is_empty());
    data
}

/// A backend that holds `/stream` as a GRIP stream on channel `news` and answers anything else with `hi`.
fn grip_backend() -> Backend {
    Backend::start(|req| {
        if req.target.starts_with("/stream") {
            Reply::Full(
                200,
                vec![
                    ("Content-Type".into(), "text/plain".into()),
                    ("Grip-Hold".into(), "stream".into()),
                    ("Grip-Channel".into(), "news".into()),
                ],
                b"[open]\n".to_vec(),
            )
        } else {
            ok("hi")
        }
    })
}

fn start_with_metrics(routes: &[&str], extra: &str) -> (Holdfast, u16) {
    let metrics_port = free_port();
    let hf = Holdfast::start(
        routes,
        &format!("[handler]\nprometheus_port=127.0.0.1:{metrics_port}\n{extra}"),
    );
    (hf, metrics_port)
}

#[test]
fn counters_and_gauges_follow_requests_holds_and_publishes() {
    let be = grip_backend();
    let (hf, mp) = start_with_metrics(&[&format!("* {}", be.target())], "");

    // The harness's readiness probe connected to the client port: wait until its close was noticed.
    let s0 = scrape_until(mp, "no client connection open", |s| {
        s.get("connection_connected") == 0.0
    });
    assert_eq!(
        s0.resp.header("Content-Type"),
        Some("text/plain; version=0.0.4")
    );
    assert_eq!(s0.get("request_received"), 0.0);
    assert_eq!(s0.get("held_connections{mode=\"stream\"}"), 0.0);
    assert_eq!(s0.get("publish_latency_seconds_count"), 0.0);

    // A proxied request: one more request, bytes and head bytes both ways on both sides.
    let resp = get(hf.port, "/plain");
    assert_eq!(resp.text(), "hi");
    // Each worker adds its counts once per loop, so the response may reach the client a moment before the
    // loop that wrote it has added its byte counts: wait for the whole exchange, not just the request.
    let s1 = scrape_until(mp, "the exchange is counted", |s| {
        s.get("request_received") == 1.0
            && s.get("bytes_total{side=\"backend\",direction=\"received\"}") > 0.0
            && s.get("header_bytes_total{side=\"client\",direction=\"sent\"}") > 0.0
    });
    for side in ["client", "backend"] {
        for dir in ["received", "sent"] {
            let labels = format!("{{side=\"{side}\",direction=\"{dir}\"}}");
            let total = s1.get(&format!("bytes_total{labels}"));
            let heads = s1.get(&format!("header_bytes_total{labels}"));
            assert!(heads > 0.0, "{side} {dir} head bytes");
            assert!(
                total >= heads,
                "{side} {dir}: {total} bytes, {heads} in heads"
            );
        }
    }
    // "hi" is the only body byte the backend sent.
    assert_eq!(
        s1.get("bytes_total{side=\"backend\",direction=\"received\"}")
            - s1.get("header_bytes_total{side=\"backend\",direction=\"received\"}"),
        2.0
    );
    assert_eq!(s1.get("backend_errors_total{kind=\"connect\"}"), 0.0);

    // A stream hold: held, subscribed, and counted as an open HTTP connection.
    let mut stream = Client::connect(hf.port);
    stream.send(&get_req("/stream", "a.test"));
    let head = stream.wire.read_head().expect("head").expect("a head");
    assert!(
        head.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    assert_eq!(read_chunk(&mut stream), b"[open]\n");
    // The earlier request's connection is closed by now, but the worker may not have noticed yet.
    let s2 = scrape_until(mp, "the stream is held, the only connection", |s| {
        s.get("held_connections{mode=\"stream\"}") == 1.0 && s.get("connection_connected") == 1.0
    });
    assert_eq!(s2.get("request_received"), 2.0);
    assert_eq!(s2.get("subscriptions{mode=\"stream\"}"), 1.0);
    assert_eq!(s2.get("subscribed_channels"), 1.0);
    assert_eq!(s2.get("connections{type=\"http\"}"), 1.0);
    assert_eq!(s2.get("connection_connected"), 1.0);
    assert_eq!(s2.get("held_connections{mode=\"response\"}"), 0.0);

    // A publish over HTTP reaches the stream: received by input, delivered by transport, latency observed.
    let item = r#"{"items":[{"channel":"news","formats":{"http-stream":{"content":"hello\n"}}}]}"#;
    publish(&hf, item);
    assert_eq!(read_chunk(&mut stream), b"hello\n");
    let s3 = scrape_until(mp, "the delivery is counted", |s| {
        s.get("message_sent") == 1.0
    });
    assert_eq!(s3.get("message_received"), 1.0);
    assert_eq!(s3.get("messages_received_total{input=\"http\"}"), 1.0);
    assert_eq!(s3.get("messages_received_total{input=\"zmq-pull\"}"), 0.0);
    assert_eq!(
        s3.get("messages_delivered_total{transport=\"http-stream\"}"),
        1.0
    );
    assert_eq!(
        s3.get("messages_delivered_total{transport=\"http-response\"}"),
        0.0
    );
    assert_eq!(s3.get("publish_latency_seconds_count"), 1.0);
    assert_eq!(s3.get("publish_latency_seconds_bucket{le=\"+Inf\"}"), 1.0);
    assert!(s3.get("publish_latency_seconds_sum") >= 0.0);

    // The client leaves: the gauges go back to zero, the counters stay.
    drop(stream);
    let s4 = scrape_until(mp, "the stream is gone", |s| {
        s.get("held_connections{mode=\"stream\"}") == 0.0 && s.get("connection_connected") == 0.0
    });
    assert_eq!(s4.get("subscriptions{mode=\"stream\"}"), 0.0);
    assert_eq!(s4.get("subscribed_channels"), 0.0);
    assert_eq!(s4.get("message_sent"), 1.0);
    assert_eq!(s4.get("request_received"), 2.0);
}

#[test]
fn websocket_connections_and_messages_are_counted() {
    let backend = WsBackend::start(Answer::Accept(String::new()), echo_script);
    let (hf, mp) = start_with_metrics(&[&format!("* {}", backend.target())], "");
    let mut peer = ws_connect(hf.port, "/ws", "").ok();
    // `http` also waits for the harness's readiness probe to be noticed closed.
    let s = scrape_until(mp, "the upgrade is counted", |s| {
        s.get("connections{type=\"ws\"}") == 1.0 && s.get("connections{type=\"http\"}") == 0.0
    });
    assert_eq!(s.get("connections{type=\"http\"}"), 0.0);
    assert_eq!(s.get("held_connections{mode=\"ws\"}"), 1.0);

    peer.text("one");
    assert_eq!(peer.data_msg(), Msg::Text("one".into()));
    peer.text("two");
    assert_eq!(peer.data_msg(), Msg::Text("two".into()));
    scrape_until(mp, "two messages each way on each side", |s| {
        ["client", "backend"].iter().all(|side| {
            ["received", "sent"].iter().all(|dir| {
                s.get(&format!(
                    "websocket_messages_total{{side=\"{side}\",direction=\"{dir}\"}}"
                )) == 2.0
            })
        })
    });
    peer.close(1000, "");
    scrape_until(mp, "the WebSocket is gone", |s| {
        s.get("connections{type=\"ws\"}") == 0.0 && s.get("held_connections{mode=\"ws\"}") == 0.0
    });
}

#[test]
fn an_unreachable_backend_counts_a_connect_error_and_a_bad_gateway() {
    let closed = free_port();
    let (hf, mp) = start_with_metrics(&[&format!("* 127.0.0.1:{closed}")], "");
    assert_eq!(get(hf.port, "/").status, 502);
    let s = scrape_until(mp, "the failure is counted", |s| {
        s.get("backend_errors_total{kind=\"bad_gateway\"}") == 1.0
    });
    assert_eq!(s.get("backend_errors_total{kind=\"connect\"}"), 1.0);
    assert_eq!(s.get("backend_errors_total{kind=\"timeout\"}"), 0.0);
}

#[test]
fn the_prefix_names_every_metric_and_any_path_or_head_is_answered() {
    let (_hf, mp) = start_with_metrics(&["* test"], "prometheus_prefix=pushpin_\n");
    let s = scrape_path(mp, "/anything/at/all?x=1");
    assert!(!s.samples.is_empty());
    for name in s.samples.keys() {
        assert!(name.starts_with("pushpin_"), "{name}");
    }
    for line in s.resp.text().lines().filter(|l| l.starts_with('#')) {
        assert!(
            line.starts_with("# HELP pushpin_") || line.starts_with("# TYPE pushpin_"),
            "{line}"
        );
    }
    assert_eq!(s.get("pushpin_request_received"), 0.0);

    let mut c = Client::connect(mp);
    c.send(b"HEAD / HTTP/1.1\r\nHost: m\r\n\r\n");
    let head = c.read_response_to("HEAD");
    assert_eq!(head.status, 200);
    assert!(c.closed_within(Duration::from_secs(5)), "no body follows");
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("Content-Type"),
        Some("text/plain; version=0.0.4")
    );
}

#[test]
fn metrics_requests_keep_the_control_apis_http_rules() {
    let (_hf, mp) = start_with_metrics(&["* test"], "");
    // A body without Content-Length is refused as by Pushpin's servers, and the connection closed.
    let resp = fetch(mp, b"POST / HTTP/1.1\r\nHost: m\r\n\r\n");
    assert_eq!(resp.status, 411);
    // A head over the 8192-byte limit is refused.
    let big = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(9000));
    let resp = fetch(mp, big.as_bytes());
    assert_eq!(resp.status, 400);
    assert_eq!(resp.text(), "Request header too large.\n");
    // Accept is not negotiated: OpenMetrics-only scrapers still get the text format.
    let resp = fetch(
        mp,
        b"GET / HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("# TYPE request_received counter\n"));
}

#[test]
fn an_ipc_prometheus_port_is_refused_at_start_up() {
    let dir = TempDir::new();
    let conf = format!(
        "[runner]\nhttp_port=127.0.0.1:{}\n[handler]\npush_in_http_port={}\nprometheus_port=ipc://{}/metrics\n",
        free_port(),
        free_port(),
        dir.0.display()
    );
    let path = dir.0.join("pushpin.conf");
    std::fs::write(&path, conf).expect("write config");
    let path = path.display().to_string();
    let (code, _out, err) = run_holdfast(&["--config", &path], &dir.0, Duration::from_secs(10));
    assert_ne!(code, Some(0), "stderr: {err}");
    assert!(code.is_some(), "killed by a signal? stderr: {err}");
    assert!(err.contains("prometheus_port"), "{err}");
    assert!(err.contains("ipc://"), "{err}");
}
