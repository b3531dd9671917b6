//! The programmable in-test backend: records every request it receives and answers as the test says.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::pattern::Verifier;
use super::wire::{bad, field, fields, has_token, parse_fields, Wire};
use super::{BODY_RECORD_MAX, IO_TIMEOUT};

/// A request as the backend received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which backend TCP connection carried it (1, 2, ... in accept order).
    pub conn: usize,
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// The decoded body, up to `BODY_RECORD_MAX` bytes.
    pub body: Vec<u8>,
    pub body_len: u64,
    pub chunked: bool,
    pub trailers: Vec<String>,
    /// The body is exactly the first `body_len` pattern bytes.
    pub body_is_pattern: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        field(&self.headers, name)
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        fields(&self.headers, name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub type Writer = Box<dyn FnOnce(&mut TcpStream) -> io::Result<()> + Send>;

/// What the backend does with a request.
pub enum Reply {
    /// Status, extra headers and body, framed with Content-Length; the connection stays open.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Bytes written verbatim; the connection stays open for another request.
    Raw(Vec<u8>),
    /// Bytes written verbatim, then the connection is closed.
    RawClose(Vec<u8>),
    /// The closure writes whatever it likes; the connection is closed afterwards.
    Stream(Writer),
    /// Never answer; keep the connection open until the peer closes or the backend is dropped.
    Hang,
    /// Close without answering.
    Close,
}

/// 200 with a text body.
pub fn ok(body: &str) -> Reply {
    Reply::Full(200, Vec::new(), body.as_bytes().to_vec())
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

struct BackendState {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
    conns: AtomicUsize,
    body_bytes: AtomicU64,
    stop: AtomicBool,
}

pub struct Backend {
    pub port: u16,
    state: Arc<BackendState>,
    accept_thread: Option<thread::JoinHandle<()>>,
}

impl Backend {
    /// Answer every request with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(BackendState {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            conns: AtomicUsize::new(0),
            body_bytes: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let handler: Handler = Arc::new(handler);
        let st = Arc::clone(&state);
        let accept_thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if st.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let conn = st.conns.fetch_add(1, Ordering::AcqRel) + 1;
                let st = Arc::clone(&st);
                let handler = Arc::clone(&handler);
                thread::spawn(move || serve_conn(stream, conn, st, handler));
            }
        });
        Backend {
            port,
            state,
            accept_thread: Some(accept_thread),
        }
    }

    /// Answers every request with 200 and `name` as the body (to tell backends apart).
    pub fn named(name: &'static str) -> Backend {
        Backend::start(move |_| ok(name))
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn request_count(&self) -> usize {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Wait until `n` requests were received completely; panics after `timeout`.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut reqs = self
            .state
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while reqs.len() < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "backend saw {} of {n} requests within {timeout:?}",
                reqs.len()
            );
            reqs = self
                .state
                .arrived
                .wait_timeout(reqs, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        reqs.clone()
    }

    /// The last request received; panics if none arrives within IO_TIMEOUT.
    pub fn last(&self) -> Request {
        let n = self.request_count().max(1);
        self.wait_requests(n, IO_TIMEOUT)
            .pop()
            .expect("one request")
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.conns.load(Ordering::Acquire)
    }

    /// Request-body bytes read so far, over all requests (counted as they arrive).
    pub fn body_bytes(&self) -> u64 {
        self.state.body_bytes.load(Ordering::Acquire)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

/// Read with short timeouts so a stopped backend notices; `Ok(None)` when stopped or the peer closed.
fn read_head_polling(wire: &mut Wire, st: &BackendState) -> io::Result<Option<Vec<u8>>> {
    loop {
        match wire.read_head() {
            Ok(h) => return Ok(h),
            Err(e)
                if (e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::TimedOut)
                    && !st.stop.load(Ordering::Acquire) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
}

fn serve_conn(stream: TcpStream, conn: usize, st: Arc<BackendState>, handler: Handler) {
    let _ = stream.set_nodelay(true);
    // A short read timeout lets an idle connection notice `stop`; the head reader retries on it.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut wire = Wire::new(stream);
    loop {
        let head = match read_head_polling(&mut wire, &st) {
            Ok(Some(h)) => h,
            _ => return,
        };
        let _ = wire.stream.set_read_timeout(Some(IO_TIMEOUT));
        let Ok(req) = read_request(&mut wire, head, conn, &st) else {
            return;
        };
        let _ = wire
            .stream
            .set_read_timeout(Some(Duration::from_millis(100)));
        // Recorded before the handler runs, so a test can see a request its handler is still holding.
        {
            let mut reqs = st.requests.lock().unwrap_or_else(|p| p.into_inner());
            reqs.push(req.clone());
            st.arrived.notify_all();
        }
        let reply = handler(&req);
        let keep = match reply {
            Reply::Full(code, headers, body) => {
                let mut out = format!("HTTP/1.1 {code} {}\r\n", reason(code));
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
                {
                    out.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                for (n, v) in &headers {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                if req.method != "HEAD" {
                    bytes.extend_from_slice(&body);
                }
                wire.stream.write_all(&bytes).is_ok()
                    && !has_token(&req.headers, "Connection", "close")
            }
            Reply::Raw(bytes) => wire.stream.write_all(&bytes).is_ok(),
            Reply::RawClose(bytes) => {
                let _ = wire.stream.write_all(&bytes);
                false
            }
            Reply::Stream(f) => {
                let _ = f(&mut wire.stream);
                false
            }
            Reply::Hang => {
                let mut b = [0u8; 4096];
                while !st.stop.load(Ordering::Acquire) {
                    match wire.stream.read(&mut b) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                }
                false
            }
            Reply::Close => false,
        };
        if !keep {
            let _ = wire.stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn read_request(
    wire: &mut Wire,
    head: Vec<u8>,
    conn: usize,
    st: &BackendState,
) -> io::Result<Request> {
    let text = String::from_utf8(head).map_err(|_| bad("request head not UTF-8"))?;
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut start = lines[0].split(' ');
    let method = start.next().unwrap_or("").to_string();
    let target = start.next().unwrap_or("").to_string();
    let version = start.next().unwrap_or("").to_string();
    let headers = parse_fields(&lines[1..])?;
    let mut body = Vec::new();
    let mut verifier = Verifier::default();
    let mut sink = |d: &[u8]| {
        st.body_bytes.fetch_add(d.len() as u64, Ordering::AcqRel);
        verifier.feed(d);
        let room = BODY_RECORD_MAX.saturating_sub(body.len());
        body.extend_from_slice(&d[..d.len().min(room)]);
    };
    let chunked = has_token(&headers, "Transfer-Encoding", "chunked");
    let mut trailers = Vec::new();
    if chunked {
        trailers = wire.read_chunked_into(&mut sink)?;
    } else if let Some(cl) = field(&headers, "Content-Length") {
        let n: u64 = cl.parse().map_err(|_| bad("bad Content-Length"))?;
        wire.read_exact_into(n, &mut sink)?;
    }
    let body_len = verifier.len;
    Ok(Request {
        conn,
        method,
        target,
        version,
        headers,
        body,
        body_len,
        chunked,
        trailers,
        body_is_pattern: verifier.ok(body_len),
    })
}

pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Other",
    }
}
