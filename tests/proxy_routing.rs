//! Route selection and route/target options, fail-over between targets, and the proxy's own 502/504 answers.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn text_of(hf: &Holdfast, raw: &[u8]) -> (u16, String) {
    let resp = fetch(hf.port, raw);
    (resp.status, resp.text())
}

fn get_host(hf: &Holdfast, path: &str, host: &str) -> (u16, String) {
    text_of(hf, &get_req(path, host))
}

#[test]
fn host_routes_win_over_catch_all_and_ignore_case_and_port() {
    let any = Backend::named("any");
    let api = Backend::named("api");
    let hf = Holdfast::start(
        &[
            &format!("* {}", any.target()),
            &format!("api.example.test {}", api.target()),
        ],
        "",
    );
    assert_eq!(get_host(&hf, "/", "api.example.test"), (200, "api".into()));
    assert_eq!(
        get_host(&hf, "/", "API.Example.Test:8080"),
        (200, "api".into())
    );
    assert_eq!(get_host(&hf, "/", "other.test"), (200, "any".into()));
    // The absolute-form target's host decides, as for a forward proxy request.
    let raw = b"GET http://api.example.test/x HTTP/1.1\r\nHost: other.test\r\n\r\n";
    assert_eq!(text_of(&hf, raw), (200, "api".into()));
    assert_eq!(
        api.last().target,
        "/x",
        "absolute-form is sent on as origin-form"
    );
}

#[test]
fn host_with_rules_does_not_fall_back_to_catch_all() {
    let any = Backend::named("any");
    let h = Backend::named("h");
    let hf = Holdfast::start(
        &[
            &format!("* {}", any.target()),
            &format!("h.test,path_beg=/only {}", h.target()),
        ],
        "",
    );
    assert_eq!(get_host(&hf, "/only/x", "h.test"), (200, "h".into()));
    assert_eq!(
        get_host(&hf, "/elsewhere", "h.test"),
        (502, "Route not found\n".into())
    );
    assert_eq!(any.request_count(), 0);
}

#[test]
fn longest_path_beg_wins() {
    let root = Backend::named("root");
    let api = Backend::named("api");
    let v2 = Backend::named("v2");
    let hf = Holdfast::start(
        &[
            &format!("* {}", root.target()),
            &format!("*,path_beg=/api/v2 {}", v2.target()),
            &format!("*,path_beg=/api {}", api.target()),
        ],
        "",
    );
    assert_eq!(get_host(&hf, "/api/v2/items?q=1", "a.test").1, "v2");
    assert_eq!(get_host(&hf, "/api/v1", "a.test").1, "api");
    assert_eq!(
        get_host(&hf, "/apix", "a.test").1,
        "api",
        "plain prefix compare"
    );
    assert_eq!(get_host(&hf, "/", "a.test").1, "root");
    assert_eq!(v2.last().target, "/api/v2/items?q=1");
}

#[test]
fn proto_condition_separates_http_from_websocket() {
    let ws = Backend::named("ws");
    let http = Backend::named("http");
    let hf = Holdfast::start(
        &[
            &format!("*,proto=ws {}", ws.target()),
            &format!("*,proto=http {}", http.target()),
        ],
        "",
    );
    assert_eq!(get_host(&hf, "/", "a.test"), (200, "http".into()));
    let upgrade = b"GET /sock HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let resp = fetch(hf.port, upgrade);
    // The ws route's backend gets the handshake; a plain HTTP answer is relayed as the rejection.
    assert_eq!((resp.status, resp.text()), (200, "ws".to_string()));
    assert_eq!(
        http.request_count(),
        1,
        "the http-only route never sees a WebSocket request"
    );
    assert_eq!(ws.request_count(), 1);
}

#[test]
fn ssl_condition_uses_accepted_x_forwarded_proto() {
    let tls = Backend::named("tls");
    let plain = Backend::named("plain");
    let hf = Holdfast::start(
        &[
            &format!("*,ssl=yes {}", tls.target()),
            &format!("* {}", plain.target()),
        ],
        "[proxy]\naccept_x_forwarded_protocol=true",
    );
    assert_eq!(get_host(&hf, "/", "a.test").1, "plain");
    let raw = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: https\r\n\r\n";
    assert_eq!(text_of(&hf, raw).1, "tls");
}

#[test]
fn ssl_condition_ignores_x_forwarded_proto_unless_accepted() {
    let tls = Backend::named("tls");
    let plain = Backend::named("plain");
    let hf = Holdfast::start(
        &[
            &format!("*,ssl=yes {}", tls.target()),
            &format!("* {}", plain.target()),
        ],
        "",
    );
    let raw = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: https\r\n\r\n";
    assert_eq!(text_of(&hf, raw).1, "plain");
}

#[test]
fn route_id_selected_by_pushpin_route_header() {
    let normal = Backend::named("normal");
    let alt = Backend::named("alt");
    let hidden = Backend::named("hidden");
    let hf = Holdfast::start(
        &[
            &format!("* {}", normal.target()),
            &format!("*,id=alt,path_beg=/ {}", alt.target()),
            &format!("id=hidden {}", hidden.target()),
        ],
        "[proxy]\naccept_pushpin_route=true",
    );
    assert_eq!(
        get_host(&hf, "/", "a.test").1,
        "alt",
        "longer path_beg wins normally"
    );
    let raw = b"GET /x HTTP/1.1\r\nHost: a.test\r\nPushpin-Route: hidden\r\n\r\n";
    assert_eq!(text_of(&hf, raw), (200, "hidden".into()));
    assert_eq!(
        hidden.last().header("Pushpin-Route"),
        None,
        "the header is consumed"
    );
    let raw = b"GET /x HTTP/1.1\r\nHost: a.test\r\nPushpin-Route: nope\r\n\r\n";
    assert_eq!(
        text_of(&hf, raw),
        (502, "Route not found\n".into()),
        "an unknown id does not fall back"
    );
}

#[test]
fn pushpin_route_header_is_ignored_unless_enabled() {
    let normal = Backend::named("normal");
    let hidden = Backend::named("hidden");
    let hf = Holdfast::start(
        &[
            &format!("* {}", normal.target()),
            &format!("id=hidden {}", hidden.target()),
        ],
        "",
    );
    let raw = b"GET /x HTTP/1.1\r\nHost: a.test\r\nPushpin-Route: hidden\r\n\r\n";
    assert_eq!(text_of(&hf, raw).1, "normal");
}

#[test]
fn path_rem_and_replace_beg_rewrite_the_path() {
    let be = Backend::start(|req| ok(&req.target));
    let hf = Holdfast::start(
        &[
            &format!("*,path_beg=/api,path_rem=4 {}", be.target()),
            &format!("*,path_beg=/old/,replace_beg=/new/ {}", be.target()),
            &format!("* {}", be.target()),
        ],
        "",
    );
    assert_eq!(get_host(&hf, "/api/users?id=7", "a.test").1, "/users?id=7");
    assert_eq!(get_host(&hf, "/api", "a.test").1, "/");
    assert_eq!(get_host(&hf, "/old/page?x", "a.test").1, "/new/page?x");
    assert_eq!(get_host(&hf, "/keep/me", "a.test").1, "/keep/me");
}

#[test]
fn as_host_and_target_host_set_the_host_header() {
    let be = Backend::start(|req| ok(req.header("Host").unwrap_or("-")));
    let hf = Holdfast::start(
        &[
            &format!("*,path_beg=/as,as_host=inner.example:8080 {}", be.target()),
            &format!("*,path_beg=/th {},host=target.example", be.target()),
            &format!("* {}", be.target()),
        ],
        "",
    );
    assert_eq!(get_host(&hf, "/as", "outer.test").1, "inner.example:8080");
    assert_eq!(get_host(&hf, "/th", "outer.test").1, "target.example");
    assert_eq!(
        get_host(&hf, "/", "outer.test").1,
        "outer.test",
        "kept as sent"
    );
}

#[test]
fn header_option_sets_replaces_and_removes() {
    let be = Backend::named("ok");
    let hf = Holdfast::start(
        &[&format!(
            "*,header=X-Route:hello,header=\"X-Spaced:a b c\",header=User-Agent:,header=X-Replace:new {}",
            be.target()
        )],
        "",
    );
    let raw = b"GET / HTTP/1.1\r\nHost: a.test\r\nUser-Agent: curl\r\nX-Replace: old\r\n\r\n";
    assert_eq!(text_of(&hf, raw).0, 200);
    let req = be.last();
    assert_eq!(req.headers_named("X-Route"), vec!["hello"]);
    assert_eq!(req.headers_named("X-Spaced"), vec!["a b c"]);
    assert_eq!(req.headers_named("X-Replace"), vec!["new"]);
    assert!(
        req.headers_named("User-Agent").is_empty(),
        "empty value removes"
    );
}

#[test]
fn no_grip_passes_accept_encoding_and_grip_routes_strip_it() {
    let be = Backend::start(|req| ok(req.header("Accept-Encoding").unwrap_or("none")));
    let hf = Holdfast::start(
        &[
            &format!("*,path_beg=/raw,no_grip {}", be.target()),
            &format!("* {}", be.target()),
        ],
        "",
    );
    let raw = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: a.test\r\nAccept-Encoding: gzip\r\n\r\n").into_bytes()
    };
    assert_eq!(text_of(&hf, &raw("/raw")).1, "gzip");
    assert_eq!(text_of(&hf, &raw("/grip")).1, "none");
}

#[test]
fn failover_to_next_target_on_connect_error() {
    let live = Backend::named("live");
    let dead1 = free_port();
    let dead2 = free_port();
    let hf = Holdfast::start(
        &[&format!(
            "* 127.0.0.1:{dead1} 127.0.0.1:{dead2} {}",
            live.target()
        )],
        "",
    );
    for _ in 0..3 {
        assert_eq!(get_host(&hf, "/", "a.test"), (200, "live".into()));
    }
}

#[test]
fn all_targets_down_gives_502_with_detail_in_debug_mode() {
    let dead1 = free_port();
    let dead2 = free_port();
    let routes = [format!("* 127.0.0.1:{dead1} 127.0.0.1:{dead2}")];
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();

    let quiet = Holdfast::start(&routes, "");
    let resp = get(quiet.port, "/");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.text(), "Error while proxying to origin.\n");
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));

    let debug = Holdfast::start(&routes, "[proxy]\ndebug=true");
    let resp = get(debug.port, "/");
    assert_eq!(resp.status, 502);
    let text = resp.text();
    assert!(
        text.starts_with("Unable to connect to any targets. Tried: "),
        "{text:?}"
    );
    assert!(text.contains(&format!("127.0.0.1:{dead1}")), "{text:?}");
    assert!(text.contains(&format!("127.0.0.1:{dead2}")), "{text:?}");
    assert_eq!(text.matches('\n').count(), 1);
}

#[test]
fn no_failover_after_the_backend_accepted() {
    // The first target accepts and hangs up without answering: that is not a connect error.
    let rude = Backend::start(|_| Reply::Close);
    let spare = Backend::named("spare");
    let hf = Holdfast::start(&[&format!("* {} {}", rude.target(), spare.target())], "");
    let resp = get(hf.port, "/");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.text(), "Error while proxying to origin.\n");
    assert_eq!(rude.request_count(), 1);
    assert_eq!(spare.request_count(), 0);
}

#[test]
fn ssl_target_is_refused_with_a_clear_reason() {
    let be = Backend::named("never");
    let hf = Holdfast::start(&[&format!("* {},ssl", be.target())], "[proxy]\ndebug=true");
    let resp = get(hf.port, "/");
    assert_eq!(resp.status, 502);
    assert!(
        resp.text().contains("TLS to backends is not supported yet"),
        "{:?}",
        resp.text()
    );
    assert_eq!(be.connections(), 0);
}

#[test]
fn ssl_target_fails_over_to_a_plain_one() {
    let be = Backend::named("plain");
    let hf = Holdfast::start(&[&format!("* {},ssl {}", be.target(), be.target())], "");
    assert_eq!(get(hf.port, "/"), (200, "plain".to_string()));
}

impl PartialEq<(u16, String)> for Response {
    fn eq(&self, other: &(u16, String)) -> bool {
        self.status == other.0 && self.text() == other.1
    }
}

#[test]
fn backend_connect_failure_gives_502() {
    let dead = free_port();
    let hf = Holdfast::start(&[&format!("* 127.0.0.1:{dead}")], "");
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/", "a.test"));
    let resp = c.read_response();
    assert_eq!(resp.status, 502);
    assert_eq!(resp.text(), "Error while proxying to origin.\n");
    // A bodiless request can keep its connection after a local error.
    if !resp.closes() {
        c.send(&get_req("/again", "a.test"));
        assert_eq!(c.read_response().status, 502);
    }
}

#[test]
fn backend_timeout_gives_504() {
    let be = Backend::start(|_| Reply::Hang);
    let hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[holdfast]\nbackend_response_timeout_ms=300",
    );
    let start = Instant::now();
    let resp = get(hf.port, "/slow");
    assert_eq!(resp.status, 504);
    assert_eq!(resp.text(), "Timed out waiting for the origin.\n");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn no_route_gives_502_route_not_found() {
    let be = Backend::named("x");
    let hf = Holdfast::start(&[&format!("only.test {}", be.target())], "");
    let resp = get(hf.port, "/");
    assert_eq!(resp.status, 502);
    assert_eq!(resp.text(), "Route not found\n");
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert_eq!(be.connections(), 0);
}

#[test]
fn command_line_routes_replace_the_routes_file() {
    let file = Backend::named("file");
    let cli = Backend::named("cli");
    let route = format!("* {}", cli.target());
    let hf = Holdfast::start_with(&[&format!("* {}", file.target())], "", &["--route", &route]);
    assert_eq!(get(hf.port, "/"), (200, "cli".to_string()));
    assert_eq!(file.request_count(), 0);
}

#[test]
fn malformed_backend_responses_give_502_and_the_proxy_survives() {
    let be = Backend::start(|req| match req.target.as_str() {
        "/garbage" => Reply::RawClose(b"this is not http\r\n\r\n".to_vec()),
        "/two-lengths" => Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        ),
        "/bad-status" => Reply::RawClose(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        "/huge-head" => {
            let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..20_000 {
                raw.extend_from_slice(format!("X-Filler-{i}: v\r\n").as_bytes());
            }
            raw.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            Reply::RawClose(raw)
        }
        _ => ok("fine"),
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    for path in ["/garbage", "/two-lengths", "/bad-status", "/huge-head"] {
        let resp = get(hf.port, path);
        assert_eq!(resp.status, 502, "{path}");
        assert_eq!(resp.text(), "Error while proxying to origin.\n", "{path}");
    }
    assert_eq!(get(hf.port, "/ok").text(), "fine");
}

#[test]
fn each_proxied_request_writes_one_access_line_with_route_target_status_and_bytes() {
    let api = Backend::named("api");
    let hf = Holdfast::start(&[&format!("*,id=main {}", api.target())], "");
    assert_eq!(get_host(&hf, "/logged?a=1", "x.test"), (200, "api".into()));
    assert_eq!(get_host(&hf, "/logged?a=1", "x.test"), (200, "api".into()));
    let line = format!("GET /logged?a=1 -> {} route=main code=200 ", api.target());
    assert!(
        hf.wait_log(&line, Duration::from_secs(5)),
        "no access line like {line:?} in:\n{}",
        hf.log()
    );
    let log = hf.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&line)).collect();
    assert_eq!(lines.len(), 2, "one line per request:\n{log}");
    for l in lines {
        assert!(l.starts_with("[INFO] 20"), "level and timestamp first: {l}");
        // Then the bytes sent to the client (head and body) and the duration.
        let rest = l.split(&line).nth(1).unwrap_or("");
        let (bytes, duration) = rest.split_once(' ').unwrap_or(("", ""));
        assert!(bytes.parse::<u64>().is_ok_and(|b| b > 3), "bytes: {l}");
        assert!(duration.ends_with("ms"), "duration last: {l}");
    }
}
