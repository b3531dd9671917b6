//! Bodies stream through bounded buffers: 1 GiB each way with the proxy's peak RSS checked, backpressure from a
//! slow client, bytes forwarded before the sender finishes, and a backend dying mid-response.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Peak resident memory the proxy may reach while streaming, whatever the body size.
const RSS_PEAK_MAX_KIB: u64 = 64 * 1024;

fn check_rss(hf: &Holdfast, what: &str) {
    let hwm = hf.vm_kib("VmHWM");
    eprintln!(
        "{what}: holdfast VmHWM {} KiB, VmRSS {} KiB",
        hwm,
        hf.vm_kib("VmRSS")
    );
    assert!(
        hwm < RSS_PEAK_MAX_KIB,
        "{what}: peak RSS {hwm} KiB exceeds {RSS_PEAK_MAX_KIB} KiB"
    );
}

fn upload(chunked: bool, len: u64) {
    let be = Backend::start(|req| {
        ok(&format!(
            "{} {} {}",
            req.body_len, req.body_is_pattern, req.chunked
        ))
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let mut c = Client::connect(hf.port);
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {len}")
    };
    let start = Instant::now();
    c.send(format!("POST /up HTTP/1.1\r\nHost: a.test\r\n{framing}\r\n\r\n").as_bytes());
    write_pattern(&mut c.wire.stream, len, chunked).expect("upload body");
    let resp = c.read_response();
    eprintln!(
        "upload {len} bytes (chunked={chunked}) took {:?}",
        start.elapsed()
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.text(),
        format!("{len} true {chunked}"),
        "backend's view: length, content, framing"
    );
    check_rss(&hf, "upload");
}

fn download(framing: &'static str, len: u64) {
    let be = Backend::start(move |_| {
        Reply::Stream(Box::new(move |s| {
            match framing {
                "length" => s.write_all(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
                )?,
                "chunked" => {
                    s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?
                }
                _ => s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?,
            }
            write_pattern(s, len, framing == "chunked")
        }))
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let mut c = Client::connect(hf.port);
    let start = Instant::now();
    c.send(&get_req("/down", "a.test"));
    let mut v = Verifier::default();
    let resp = c
        .read_response_streaming("GET", &mut |d| v.feed(d))
        .expect("download");
    eprintln!(
        "download {len} bytes ({framing}) took {:?}",
        start.elapsed()
    );
    assert_eq!(resp.status, 200);
    assert_eq!(v.bad_at, None, "corrupted body");
    assert_eq!(v.len, len);
    check_rss(&hf, "download");
}

// 100 MiB stays below what the session's step budget can cut (see the 1 GiB tests) while still far above the
// RSS limit, so a proxy that buffered whole bodies would fail these.

#[test]
fn upload_100mib_content_length_with_flat_rss() {
    upload(false, 100 * MIB);
}

#[test]
fn upload_100mib_chunked_with_flat_rss() {
    upload(true, 100 * MIB);
}

#[test]
fn download_100mib_content_length_with_flat_rss() {
    download("length", 100 * MIB);
}

#[test]
fn download_100mib_chunked_with_flat_rss() {
    download("chunked", 100 * MIB);
}

#[test]
fn upload_1gib_content_length_with_flat_rss() {
    upload(false, GIB);
}

#[test]
fn upload_1gib_chunked_with_flat_rss() {
    upload(true, GIB);
}

#[test]
fn download_1gib_content_length_with_flat_rss() {
    download("length", GIB);
}

#[test]
fn download_1gib_chunked_with_flat_rss() {
    download("chunked", GIB);
}

#[test]
fn download_100mib_close_delimited_with_flat_rss() {
    download("close", 100 * MIB);
}

#[test]
fn slow_client_stalls_the_backend_instead_of_growing_memory() {
    // Under 128 MiB after the pause, so the step-budget bug (see the 1 GiB tests) cannot cut it.
    const LEN: u64 = 100 * MIB;
    let written = Arc::new(AtomicU64::new(0));
    let w = Arc::clone(&written);
    let be = Backend::start(move |_| {
        let w = Arc::clone(&w);
        Reply::Stream(Box::new(move |s| {
            s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n").as_bytes())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut pos = 0;
            while pos < LEN {
                let n = (LEN - pos).min(buf.len() as u64) as usize;
                pattern_fill(pos, &mut buf[..n]);
                s.write_all(&buf[..n])?;
                pos += n as u64;
                w.store(pos, Ordering::Release);
            }
            Ok(())
        }))
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/slow-reader", "a.test"));
    let mut v = Verifier::default();
    let mut stalled = None;
    let resp = c
        .read_response_streaming("GET", &mut |d| {
            v.feed(d);
            if stalled.is_none() && v.len >= 4 * MIB {
                // Stop reading for a while: the backend must be held back, not buffered for.
                thread::sleep(Duration::from_millis(700));
                let w1 = written.load(Ordering::Acquire);
                thread::sleep(Duration::from_millis(700));
                let w2 = written.load(Ordering::Acquire);
                stalled = Some((v.len, w1, w2));
            }
        })
        .expect("read the body");
    assert_eq!(resp.status, 200);
    assert!(v.ok(LEN), "body corrupted or short: {:?}", v);
    let (read, w1, w2) = stalled.expect("the pause happened");
    eprintln!("client had read {read}, backend had written {w1} then {w2}");
    assert!(
        w2 - w1 < MIB,
        "backend kept writing while the client was not reading: {w1} -> {w2}"
    );
    // Kernel socket buffers on loopback may hold tens of MiB; the proxy itself must add almost nothing.
    assert!(
        w2 - read < 64 * MIB,
        "backend got {} bytes ahead of the client",
        w2 - read
    );
    assert!(w2 < LEN, "the whole body was buffered somewhere");
    check_rss(&hf, "slow reader");
}

#[test]
fn slow_backend_reader_holds_back_the_client_upload() {
    // The backend reads nothing for a while: the client's writes must block, not fill the proxy's memory.
    const LEN: u64 = 100 * MIB;
    let (tx, rx) = mpsc::channel::<()>();
    // A raw backend that reads the head, then nothing until released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let t = thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(IO_TIMEOUT)).ok();
        let mut wire = Wire::new(s);
        wire.read_head().expect("head").expect("a request");
        let _ = rx.recv_timeout(Duration::from_secs(8));
        let mut v = Verifier::default();
        let r = wire.read_exact_into(LEN, &mut |d| v.feed(d));
        let _ = wire
            .stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        (v, r.is_ok())
    });
    let hf = Holdfast::start(&[&format!("* 127.0.0.1:{port}")], "");
    let mut c = Client::connect(hf.port);
    c.send(format!("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: {LEN}\r\n\r\n").as_bytes());
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut stream = c.wire.stream.try_clone().expect("clone");
    let (s2, d2) = (Arc::clone(&sent), Arc::clone(&done));
    let writer = thread::spawn(move || {
        stream.set_write_timeout(Some(Duration::from_secs(20))).ok();
        let mut buf = vec![0u8; 64 * 1024];
        let mut pos = 0;
        while pos < LEN {
            let n = (LEN - pos).min(buf.len() as u64) as usize;
            pattern_fill(pos, &mut buf[..n]);
            if stream.write_all(&buf[..n]).is_err() {
                break;
            }
            pos += n as u64;
            s2.store(pos, Ordering::Release);
        }
        d2.store(true, Ordering::Release);
    });
    thread::sleep(Duration::from_millis(700));
    let a = sent.load(Ordering::Acquire);
    thread::sleep(Duration::from_millis(700));
    let b = sent.load(Ordering::Acquire);
    eprintln!("client sent {a} then {b} while the backend was not reading");
    assert!(b - a < MIB, "client writes kept succeeding: {a} -> {b}");
    assert!(b < 64 * MIB, "the proxy accepted {b} bytes nobody read");
    check_rss(&hf, "slow backend reader");
    tx.send(()).expect("release the backend");
    writer.join().expect("writer");
    assert!(done.load(Ordering::Acquire));
    let resp = c.read_response();
    assert_eq!(resp.text(), "ok");
    let (v, complete) = t.join().expect("backend thread");
    assert!(complete && v.ok(LEN), "backend got a damaged body: {v:?}");
}

#[test]
fn response_bytes_reach_the_client_before_the_backend_finishes() {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let released = Arc::new(AtomicBool::new(false));
    let rel = Arc::clone(&released);
    let be = Backend::start(move |_| {
        let rx = Arc::clone(&rx);
        let rel = Arc::clone(&rel);
        Reply::Stream(Box::new(move |s| {
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")?;
            s.flush()?;
            // Wait for the client to confirm it has the first chunk.
            let got = rx
                .lock()
                .map(|r| r.recv_timeout(Duration::from_secs(5)).is_ok())
                .unwrap_or(false);
            rel.store(got, Ordering::Release);
            s.write_all(b"6\r\nsecond\r\n0\r\n\r\n")
        }))
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let mut c = Client::connect(hf.port);
    c.send(&get_req("/trickle", "a.test"));
    let mut body = Vec::new();
    let resp = c
        .read_response_streaming("GET", &mut |d| {
            if body.is_empty() {
                let _ = tx.send(());
            }
            body.extend_from_slice(d);
        })
        .expect("response");
    assert_eq!(resp.status, 200);
    assert_eq!(body, b"firstsecond");
    assert!(
        released.load(Ordering::Acquire),
        "the first chunk was held back until the backend finished"
    );
}

#[test]
fn request_bytes_reach_the_backend_before_the_client_finishes() {
    let be = Backend::start(|req| ok(&format!("{}", req.body_len)));
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let mut c = Client::connect(hf.port);
    c.send(b"POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2000\r\n\r\n");
    c.send(&[b'a'; 1000]);
    assert!(
        wait_until(Duration::from_secs(5), || be.body_bytes() >= 1000),
        "the first half of the body did not reach the backend (got {})",
        be.body_bytes()
    );
    c.send(&[b'b'; 1000]);
    assert_eq!(c.read_response().text(), "2000");
}

#[test]
fn backend_dying_mid_body_closes_the_client_without_faking_an_end() {
    let be = Backend::start(|req| {
        let chunked = req.target == "/chunked";
        Reply::Stream(Box::new(move |s| {
            if chunked {
                s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                s.write_all(format!("{:x}\r\n", 100_000).as_bytes())?;
                s.write_all(&vec![b'x'; 50_000])?;
            } else {
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")?;
                s.write_all(&vec![b'x'; 100_000])?;
            }
            Ok(()) // then the connection is closed mid-body
        }))
    });
    let mut hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    for path in ["/length", "/chunked"] {
        let mut c = Client::connect(hf.port);
        c.send(&get_req(path, "a.test"));
        c.set_read_timeout(Duration::from_secs(5));
        let mut got = 0u64;
        let r = c.read_response_streaming("GET", &mut |d| got += d.len() as u64);
        let kind = r.as_ref().err().map(|e| e.kind());
        assert!(
            matches!(
                kind,
                Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset)
            ),
            "{path}: a truncated body must end in a prompt close, not {kind:?} (got {got} bytes)"
        );
        assert!(got <= 100_000, "{path}: {got}");
        assert!(hf.alive());
    }
    assert!(hf.alive());
}

#[test]
fn large_bodies_both_ways_on_one_keep_alive_connection() {
    let be = Backend::start(|req| {
        let n = req.body_len;
        let good = req.body_is_pattern;
        Reply::Raw({
            let mut out =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nX-Good: {good}\r\n\r\n")
                    .into_bytes();
            let mut buf = vec![0u8; n as usize];
            pattern_fill(0, &mut buf);
            out.extend_from_slice(&buf);
            out
        })
    });
    let hf = Holdfast::start(&[&format!("* {}", be.target())], "");
    let mut c = Client::connect(hf.port);
    for len in [0u64, 1, 65_535, 65_536, 1_000_003, 8 * MIB] {
        c.send(
            format!("POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: {len}\r\n\r\n")
                .as_bytes(),
        );
        let mut s = c.wire.stream.try_clone().expect("clone");
        let w = thread::spawn(move || write_pattern(&mut s, len, false));
        let mut v = Verifier::default();
        let resp = c
            .read_response_streaming("POST", &mut |d| v.feed(d))
            .expect("response");
        w.join().expect("writer").expect("write");
        assert_eq!(resp.header("X-Good"), Some("true"), "len {len}");
        assert!(v.ok(len), "len {len}: {v:?}");
    }
    assert_eq!(be.request_count(), 6);
}
