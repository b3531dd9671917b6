//! Process lifecycle: graceful shutdown, routes reloads (SIGHUP and file watching) with requests in flight,
//! the client_maxconn backlog, start-up errors and the command line.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A backend that answers `name` after `delay`, counting requests in progress.
fn slow_backend(name: &'static str, delay: Duration) -> (Backend, Arc<AtomicUsize>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&in_flight);
    let be = Backend::start(move |_| {
        f.fetch_add(1, Ordering::AcqRel);
        thread::sleep(delay);
        f.fetch_sub(1, Ordering::AcqRel);
        ok(name)
    });
    (be, in_flight)
}

fn refused(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_err()
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let (be, in_flight) = slow_backend("finished", Duration::from_millis(1500));
    let mut hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let port = hf.port;
    let client = thread::spawn(move || {
        let mut c = Client::connect(port);
        c.send(&get_req("/slow", "a.test"));
        let resp = c.read_response();
        let closed = c.closed_within(Duration::from_secs(3));
        (resp, closed)
    });
    assert!(wait_until(Duration::from_secs(5), || in_flight
        .load(Ordering::Acquire)
        == 1));
    let sent_at = Instant::now();
    hf.sigterm();
    // New connections are refused while the old request is still being served.
    assert!(
        wait_until(Duration::from_millis(800), || refused(port)),
        "still accepting connections after SIGTERM"
    );
    assert_eq!(
        in_flight.load(Ordering::Acquire),
        1,
        "the slow request should still be in flight"
    );
    let (resp, closed) = client.join().expect("client thread");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "finished");
    assert!(
        resp.closes(),
        "a response finished while draining says Connection: close"
    );
    assert!(closed, "the connection is closed after the last response");
    let status = hf
        .wait_exit(Duration::from_secs(5))
        .expect("holdfast exits after draining");
    assert!(status.success(), "exit status {status}");
    assert!(sent_at.elapsed() < Duration::from_secs(5));
}

#[test]
fn sigterm_with_only_idle_connections_exits_promptly() {
    let be = Backend::named("ok");
    let mut hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[holdfast]\nshutdown_grace_ms=20000",
    );
    let mut idle = Client::connect(hf.port);
    idle.send(&get_req("/", "a.test"));
    assert_eq!(idle.read_response().status, 200);
    let _never_sent = Client::connect(hf.port);
    let start = Instant::now();
    hf.sigterm();
    let status = hf
        .wait_exit(Duration::from_secs(5))
        .expect("idle connections must not hold shutdown for the whole grace period");
    assert!(status.success(), "exit status {status}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    assert!(idle.closed_within(Duration::from_secs(2)));
}

#[test]
fn sigint_also_stops_cleanly() {
    let be = Backend::named("ok");
    let mut hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    assert_eq!(get(hf.port, "/").status, 200);
    let status = std::process::Command::new("kill")
        .arg("-INT")
        .arg(hf.pid().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let status = hf
        .wait_exit(Duration::from_secs(5))
        .expect("exits on SIGINT");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_grace_period_bounds_a_hung_request() {
    let be = Backend::start(|_| Reply::Hang);
    let mut hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[holdfast]\nshutdown_grace_ms=500\nbackend_response_timeout_ms=60000",
    );
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/hang", "a.test"));
    be.wait_requests(1, IO_TIMEOUT);
    let start = Instant::now();
    hf.sigterm();
    let status = hf
        .wait_exit(Duration::from_secs(5))
        .expect("exits after the grace period");
    assert!(status.success(), "exit status {status}");
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "gave up too early: {:?}",
        start.elapsed()
    );
    assert!(c.closed_within(Duration::from_secs(2)));
}

#[test]
fn sighup_reload_keeps_requests_in_flight_and_applies_new_routes() {
    let (old, in_flight) = slow_backend("old", Duration::from_millis(1200));
    let new = Backend::named("new");
    // Only the signal may trigger the reload in this test.
    let hf = Holdfast::start(
        &[&format!("* {}", old.target())],
        "[holdfast]\nroutes_check_interval_ms=3600000",
    );
    let port = hf.port;
    let clients: Vec<_> = (0..6)
        .map(|i| {
            thread::spawn(move || {
                let mut c = Client::connect(port);
                c.send(&get_req(&format!("/inflight/{i}"), "a.test"));
                let first = c.read_response();
                // The same keep-alive connection, after the reload.
                c.send(&get_req("/after", "a.test"));
                let second = c.read_response();
                (first, second)
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(5), || in_flight.load(Ordering::Acquire)
            == 6),
        "requests in flight: {}",
        in_flight.load(Ordering::Acquire)
    );
    hf.write_routes(&[&format!("* {}", new.target())]);
    hf.sighup();
    assert!(
        hf.wait_log("routes: loaded", Duration::from_secs(5)),
        "no reload logged"
    );
    assert_eq!(
        in_flight.load(Ordering::Acquire),
        6,
        "reload happened while requests were in flight"
    );
    // New connections see the new routes at once.
    assert_eq!(get(port, "/fresh").text(), "new");
    for c in clients {
        let (first, second) = c.join().expect("client thread");
        assert_eq!(
            (first.status, first.text()),
            (200, "old".to_string()),
            "in-flight request dropped"
        );
        assert_eq!(
            second.text(),
            "new",
            "a kept-alive connection uses the new routes"
        );
    }
}

#[test]
fn sighup_with_a_broken_routes_file_keeps_the_old_routes() {
    let old = Backend::named("old");
    let new = Backend::named("new");
    let hf = Holdfast::start(
        &[&format!("* {}", old.target())],
        "[holdfast]\nroutes_check_interval_ms=3600000",
    );
    hf.write_routes(&[&format!("* {},bogus=\"unterminated", new.target())]);
    hf.sighup();
    assert!(
        hf.wait_log("keeping the previous routes", Duration::from_secs(5)),
        "the bad file was not reported"
    );
    assert!(
        hf.log().contains("routes:1:") || hf.log().contains("routes: line 1"),
        "error names the line"
    );
    assert_eq!(get(hf.port, "/").text(), "old");
    // Fixing the file and signalling again applies it.
    hf.write_routes(&[&format!("* {}", new.target())]);
    hf.sighup();
    assert!(wait_until(Duration::from_secs(5), || get(hf.port, "/")
        .text()
        == "new"));
}

#[test]
fn routes_file_change_is_picked_up_without_a_signal() {
    let old = Backend::named("old");
    let new = Backend::named("new");
    let hf = Holdfast::start(
        &[&format!("* {}", old.target())],
        "[holdfast]\nroutes_check_interval_ms=100",
    );
    assert_eq!(get(hf.port, "/").text(), "old");
    // Make sure the modification time differs even on a coarse clock.
    thread::sleep(Duration::from_millis(20));
    hf.write_routes(&[&format!("* {}", new.target())]);
    assert!(
        wait_until(Duration::from_secs(5), || get(hf.port, "/").text() == "new"),
        "routes file change not picked up:\n{}",
        hf.log()
    );
}

#[test]
fn client_maxconn_makes_new_connections_wait_not_fail() {
    let be = Backend::start(|req| ok(&req.target));
    let hf = Holdfast::start(
        &[&format!("* {}", be.target())],
        "[runner]\nclient_maxconn=2\n[proxy]\nworkers=1",
    );
    // The readiness probe's connection may still be counted for a moment.
    thread::sleep(Duration::from_millis(200));
    let mut a = Client::connect(hf.port);
    a.send(&get_req("/a", "a.test"));
    assert_eq!(a.read_response().text(), "/a");
    let mut b = Client::connect(hf.port);
    b.send(&get_req("/b", "a.test"));
    assert_eq!(b.read_response().text(), "/b");
    // The third connection completes in the kernel backlog but is not served yet.
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/c", "a.test"));
    assert!(
        c.silent_for(Duration::from_millis(500)),
        "served beyond client_maxconn"
    );
    assert_eq!(be.request_count(), 2);
    drop(a);
    let resp = c
        .try_read_response("GET")
        .expect("the waiting connection is served once another closes (not reset)");
    assert_eq!(resp.text(), "/c");
    b.send(&get_req("/b2", "a.test"));
    assert_eq!(b.read_response().text(), "/b2");
}

#[test]
fn control_api_listens_on_the_configured_port() {
    let be = Backend::named("ok");
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let resp = fetch(
        hf.control_port,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "Pushpin API\n");
}

// ---- start-up and command line ------------------------------------------------------------------------------

fn write_conf(dir: &TempDir, conf: &str, routes: &str) -> String {
    std::fs::write(dir.0.join("pushpin.conf"), conf).expect("write conf");
    std::fs::write(dir.0.join("routes"), routes).expect("write routes");
    dir.0.join("pushpin.conf").display().to_string()
}

#[test]
fn config_error_exits_non_zero_naming_file_and_line() {
    let dir = TempDir::new();
    let conf = format!(
        "[runner]\nhttp_port=127.0.0.1:{}\nclient_maxconn=lots\n[proxy]\nroutesfile=routes\n[handler]\npush_in_http_port={}\n",
        free_port(),
        free_port()
    );
    let path = write_conf(&dir, &conf, "* 127.0.0.1:1\n");
    let (code, _out, err) = run_holdfast(&["--config", &path], &dir.0, Duration::from_secs(10));
    assert_ne!(code, Some(0), "stderr: {err}");
    assert!(code.is_some(), "killed by a signal? stderr: {err}");
    assert!(
        err.contains("pushpin.conf:3:"),
        "stderr should name file:line: {err}"
    );
    assert!(err.contains("client_maxconn"), "{err}");
}

#[test]
fn routes_error_at_start_exits_non_zero_naming_file_and_line() {
    let dir = TempDir::new();
    let conf = format!(
        "[runner]\nhttp_port=127.0.0.1:{}\n[proxy]\nroutesfile=routes\n[handler]\npush_in_http_port={}\n",
        free_port(),
        free_port()
    );
    let path = write_conf(
        &dir,
        &conf,
        "# comment\n* 127.0.0.1:1\n*,path_beg=\"/x 127.0.0.1:2\n",
    );
    let (code, _out, err) = run_holdfast(&["--config", &path], &dir.0, Duration::from_secs(10));
    assert_ne!(code, Some(0), "stderr: {err}");
    assert!(code.is_some());
    assert!(
        err.contains("routes:3:"),
        "stderr should name routes:3: {err}"
    );
}

#[test]
fn missing_config_file_exits_non_zero() {
    let dir = TempDir::new();
    let path = dir.0.join("nope.conf").display().to_string();
    let (code, _out, err) = run_holdfast(&["--config", &path], &dir.0, Duration::from_secs(10));
    assert_ne!(code, Some(0));
    assert!(err.contains("nope.conf"), "{err}");
}

#[test]
fn port_in_use_exits_non_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = TempDir::new();
    let conf = format!(
        "[runner]\nhttp_port=127.0.0.1:{port}\n[proxy]\nroutesfile=routes\n[handler]\npush_in_http_port={}\n",
        free_port()
    );
    let path = write_conf(&dir, &conf, "* 127.0.0.1:1\n");
    let (code, _out, err) = run_holdfast(&["--config", &path], &dir.0, Duration::from_secs(10));
    assert_ne!(code, Some(0));
    assert!(err.contains(&port.to_string()), "{err}");
}

#[test]
fn help_and_version() {
    let dir = TempDir::new();
    for flag in ["--help", "-h"] {
        let (code, out, _) = run_holdfast(&[flag], &dir.0, Duration::from_secs(5));
        assert_eq!(code, Some(0));
        assert!(out.contains("Usage:"), "{out}");
        for opt in ["--config", "--port", "--route", "--workers", "--log-level"] {
            assert!(out.contains(opt), "--help does not mention {opt}");
        }
    }
    for flag in ["--version", "-V"] {
        let (code, out, _) = run_holdfast(&[flag], &dir.0, Duration::from_secs(5));
        assert_eq!(code, Some(0));
        assert_eq!(
            out.trim(),
            format!("holdfast {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn bad_command_line_exits_non_zero_with_a_reason() {
    let dir = TempDir::new();
    for (args, needle) in [
        (&["--bogus"][..], "unknown option"),
        (&["--workers", "zero"][..], "--workers"),
        (&["--config"][..], "--config needs a value"),
    ] {
        let (code, _, err) = run_holdfast(args, &dir.0, Duration::from_secs(5));
        assert!(matches!(code, Some(c) if c != 0), "{args:?}: {code:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn port_flag_overrides_the_config() {
    let be = Backend::named("via --port");
    let port = free_port();
    let hf = Holdfast::start_with(
        &[&format!("* {}", be.target())],
        "",
        &["--port", &format!("127.0.0.1:{port}")],
    );
    let resp = get(port, "/");
    assert_eq!(resp.text(), "via --port");
    drop(hf);
}
