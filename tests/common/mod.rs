//! Harness for the loopback integration tests: a holdfast process in a temporary directory, a programmable
//! in-test backend, and a raw HTTP/1.1 client with its own small response parser.
//!
//! Every wait is bounded (`IO_TIMEOUT` on sockets, explicit deadlines elsewhere), so a hang fails a test
//! instead of blocking the suite. When a test panics, the holdfast log is printed by `Drop`.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Socket read/write timeout for test clients and the backend.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long holdfast may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Request-body bytes a backend keeps per request (the rest is only counted and checked against the pattern).
pub const BODY_RECORD_MAX: usize = 4 * 1024 * 1024;
/// Largest head either side of the harness accepts.
const HEAD_MAX: usize = 1024 * 1024;

// ---- small utilities ----------------------------------------------------------------------------------------

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Poll `f` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn unique_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "holdfast-itest-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ))
}

/// Write through a temporary file and a rename, so holdfast never reads a half-written file.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename temp file");
}

// ---- the holdfast process ------------------------------------------------------------------------------------

pub struct Holdfast {
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    pub control_port: u16,
    log_path: PathBuf,
}

/// Base configuration; `extra_ini` lines override or extend it key by key.
fn compose_ini(port: u16, control_port: u16, extra: &str) -> String {
    let mut sections: Vec<(String, Vec<(String, String)>)> = vec![
        (
            "runner".into(),
            vec![("http_port".into(), format!("127.0.0.1:{port}"))],
        ),
        ("proxy".into(), vec![("routesfile".into(), "routes".into())]),
        (
            "handler".into(),
            vec![
                ("push_in_http_addr".into(), "127.0.0.1".into()),
                ("push_in_http_port".into(), control_port.to_string()),
            ],
        ),
    ];
    let mut current = String::from("runner");
    for line in extra.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        let (k, v) = line.split_once('=').expect("extra ini lines are key=value");
        let idx = match sections.iter().position(|(s, _)| *s == current) {
            Some(i) => i,
            None => {
                sections.push((current.clone(), Vec::new()));
                sections.len() - 1
            }
        };
        let keys = &mut sections[idx].1;
        match keys.iter_mut().find(|(key, _)| key == k.trim()) {
            Some(slot) => slot.1 = v.trim().to_string(),
            None => keys.push((k.trim().to_string(), v.trim().to_string())),
        }
    }
    let mut out = String::new();
    for (name, keys) in sections {
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in keys {
            out.push_str(&format!("{k}={v}\n"));
        }
        out.push('\n');
    }
    out
}

impl Holdfast {
    /// Start holdfast with these routes-file lines and extra INI (`[section]` / `key=value` lines).
    pub fn start(routes: &[&str], extra_ini: &str) -> Holdfast {
        Holdfast::start_with(routes, extra_ini, &[])
    }

    /// As `start`, with extra command-line arguments.
    pub fn start_with(routes: &[&str], extra_ini: &str, args: &[&str]) -> Holdfast {
        let mut last = String::new();
        // A port picked as free may be taken by a concurrent test before holdfast binds it: try again.
        for _ in 0..4 {
            match Holdfast::try_start(routes, extra_ini, args) {
                Ok(h) => return h,
                Err(log) if log.contains("cannot listen") => last = log,
                Err(log) => panic!("holdfast did not start:\n{log}"),
            }
        }
        panic!("holdfast could not bind its ports:\n{last}");
    }

    fn try_start(routes: &[&str], extra_ini: &str, args: &[&str]) -> Result<Holdfast, String> {
        let dir = unique_dir("hf");
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let port = free_port();
        let control_port = free_port();
        std::fs::write(
            dir.join("pushpin.conf"),
            compose_ini(port, control_port, extra_ini),
        )
        .expect("write config");
        let mut routes_text = routes.join("\n");
        routes_text.push('\n');
        std::fs::write(dir.join("routes"), routes_text).expect("write routes");
        let log_path = dir.join("holdfast.log");
        let log = std::fs::File::create(&log_path).expect("create log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast"));
        cmd.arg("--config").arg(dir.join("pushpin.conf"));
        if !args.iter().any(|a| a.starts_with("--log-level")) {
            cmd.arg("--log-level").arg("3");
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn holdfast");
        // `--port` replaces the configured listener: wait on that one instead.
        let port_arg = args
            .iter()
            .position(|a| *a == "--port")
            .and_then(|i| args.get(i + 1).copied())
            .or_else(|| args.iter().find_map(|a| a.strip_prefix("--port=")));
        let port = port_arg
            .and_then(|p| p.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(port);
        let mut h = Holdfast {
            child: Some(child),
            dir,
            port,
            control_port,
            log_path,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = h.try_wait() {
                let log = h.log();
                return Err(format!("exited early with {status}:\n{log}"));
            }
            if h.log().contains("started ") {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("not started after {START_TIMEOUT:?}:\n{}", h.log()));
            }
            thread::sleep(Duration::from_millis(10));
        }
        // Workers are up; the listener accepts once they poll.
        let addr = h.addr();
        if !wait_until(START_TIMEOUT, || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        }) {
            return Err(format!("port {port} does not accept:\n{}", h.log()));
        }
        Ok(h)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn routes_path(&self) -> PathBuf {
        self.dir.join("routes")
    }

    pub fn write_routes(&self, lines: &[&str]) {
        let mut text = lines.join("\n");
        text.push('\n');
        write_atomic(&self.routes_path(), &text);
    }

    /// Everything holdfast wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    pub fn sighup(&self) {
        self.signal("HUP");
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Still running (no panic, no abort)?
    pub fn alive(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    pub fn vm_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("{field} not in /proc status"))
    }
}

impl Drop for Holdfast {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(150);
            eprintln!(
                "---- holdfast log (last {} lines) ----\n{}\n----",
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run the binary to completion with these arguments (for --help, --version, config errors).
pub fn run_holdfast(args: &[&str], cwd: &Path, timeout: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn holdfast");
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("holdfast {args:?} did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let d = unique_dir("tmp");
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- byte pattern for large bodies ---------------------------------------------------------------------------

/// Block length of the pattern; prime, so blocks never line up with buffer or chunk sizes.
const PATTERN_BLOCK: u64 = 65_521;

fn pattern_base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..PATTERN_BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    })
}

/// Fill `out` with the pattern bytes at stream offsets `pos..`. Each block starts with its index, so a lost,
/// repeated or reordered block is detected.
pub fn pattern_fill(mut pos: u64, mut out: &mut [u8]) {
    let base = pattern_base();
    while !out.is_empty() {
        let block = pos / PATTERN_BLOCK;
        let off = (pos % PATTERN_BLOCK) as usize;
        let n = out.len().min(PATTERN_BLOCK as usize - off);
        let (now, rest) = out.split_at_mut(n);
        now.copy_from_slice(&base[off..off + n]);
        let tag = block.to_le_bytes();
        for (i, b) in now.iter_mut().enumerate() {
            let at = off + i;
            if at >= 8 {
                break;
            }
            *b = tag[at];
        }
        pos += n as u64;
        out = rest;
    }
}

/// Checks a received stream against the pattern without buffering it.
#[derive(Debug, Default, Clone)]
pub struct Verifier {
    pub len: u64,
    pub bad_at: Option<u64>,
}

impl Verifier {
    pub fn feed(&mut self, mut data: &[u8]) {
        let base = pattern_base();
        while !data.is_empty() {
            let block = self.len / PATTERN_BLOCK;
            let off = (self.len % PATTERN_BLOCK) as usize;
            let n = data.len().min(PATTERN_BLOCK as usize - off);
            let (now, rest) = data.split_at(n);
            if self.bad_at.is_none() {
                let tag = block.to_le_bytes();
                let head = 8usize.saturating_sub(off).min(n);
                let head_ok = (0..head).all(|i| now[i] == tag[off + i]);
                if !head_ok || now[head..] != base[off + head..off + n] {
                    self.bad_at = Some(self.len);
                }
            }
            self.len += n as u64;
            data = rest;
        }
    }

    /// The bytes seen are exactly the first `len` pattern bytes.
    pub fn ok(&self, len: u64) -> bool {
        self.bad_at.is_none() && self.len == len
    }
}

/// Write `n` pattern bytes, framed as chunked (chunks of odd sizes) or raw.
pub fn write_pattern(w: &mut impl Write, n: u64, chunked: bool) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut pos = 0u64;
    let mut turn = 0usize;
    while pos < n {
        // Vary the write size so framing boundaries move around.
        let size = [256 * 1024, 100_003, 7_777, 65_536][turn % 4];
        turn += 1;
        let len = (n - pos).min(size as u64) as usize;
        pattern_fill(pos, &mut buf[..len]);
        if chunked {
            w.write_all(format!("{len:x}\r\n").as_bytes())?;
            w.write_all(&buf[..len])?;
            w.write_all(b"\r\n")?;
        } else {
            w.write_all(&buf[..len])?;
        }
        pos += len as u64;
    }
    if chunked {
        w.write_all(b"0\r\n\r\n")?;
    }
    Ok(())
}

// ---- buffered wire reader (shared by client and backend) -----------------------------------------------------

pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn eof(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, msg.to_string())
}

impl Wire {
    pub fn new(stream: TcpStream) -> Wire {
        Wire {
            stream,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Read more bytes; `Ok(0)` at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                if self.buf.len() >= HEAD_MAX {
                    return Err(bad("head too large for the test harness"));
                }
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// The next head, up to and including the blank line. `Ok(None)` on a clean end of stream before any byte.
    pub fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut scanned: usize = 0;
        loop {
            let data = self.buffered();
            if let Some(i) = find(&data[scanned.saturating_sub(3)..], b"\r\n\r\n") {
                let end = scanned.saturating_sub(3) + i + 4;
                let head = data[..end].to_vec();
                self.consume(end);
                return Ok(Some(head));
            }
            scanned = data.len();
            if self.fill()? == 0 {
                if scanned == 0 {
                    return Ok(None);
                }
                return Err(eof("end of stream inside a head"));
            }
        }
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(self.buffered(), b"\r\n") {
                let line = self.buffered()[..i].to_vec();
                self.consume(i + 2);
                return Ok(line);
            }
            if self.buffered().len() > 64 * 1024 {
                return Err(bad("line too long"));
            }
            if self.fill()? == 0 {
                return Err(eof("end of stream inside a line"));
            }
        }
    }

    /// Exactly `n` body bytes into `sink`.
    pub fn read_exact_into(&mut self, mut n: u64, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if !self.has_buffered() && self.fill()? == 0 {
                return Err(eof("end of stream inside a body"));
            }
            let data = self.buffered();
            let take = data.len().min(n.min(usize::MAX as u64) as usize);
            sink(&data[..take]);
            self.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    /// A chunked body; returns the trailer lines.
    fn read_chunked_into(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Vec<String>> {
        loop {
            let line = self.read_line()?;
            let line = String::from_utf8(line).map_err(|_| bad("chunk size not UTF-8"))?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let t = self.read_line()?;
                    if t.is_empty() {
                        return Ok(trailers);
                    }
                    trailers.push(String::from_utf8_lossy(&t).into_owned());
                }
            }
            self.read_exact_into(size, sink)?;
            if !self.read_line()?.is_empty() {
                return Err(bad("chunk data not followed by CRLF"));
            }
        }
    }

    /// Everything until the peer closes.
    fn read_to_eof_into(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        loop {
            if self.has_buffered() {
                let n = self.buffered().len();
                sink(self.buffered());
                self.consume(n);
            }
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Header lines of a head (after the start line), as (name, value).
fn parse_fields(lines: &[&str]) -> io::Result<Vec<(String, String)>> {
    lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l
                .split_once(':')
                .ok_or_else(|| bad(format!("header line without colon: {l:?}")))?;
            Ok((n.to_string(), v.trim().to_string()))
        })
        .collect()
}

fn field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn fields<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    fields(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

// ---- client --------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length,
    Chunked,
    Close,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
    pub trailers: Vec<String>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        field(&self.headers, name)
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        fields(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The response announces the end of the connection.
    pub fn closes(&self) -> bool {
        has_token(&self.headers, "Connection", "close")
    }
}

pub struct Client {
    pub wire: Wire,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(5),
        )
        .expect("connect to holdfast");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            wire: Wire::new(stream),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.wire.stream.write_all(bytes).expect("send to holdfast");
    }

    /// Send, tolerating the server having closed already.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wire.stream.write_all(bytes)
    }

    pub fn set_read_timeout(&mut self, t: Duration) {
        self.wire.stream.set_read_timeout(Some(t)).expect("timeout");
    }

    /// The next response to a non-HEAD request (1xx responses are returned on their own).
    pub fn read_response(&mut self) -> Response {
        self.read_response_to("GET")
    }

    pub fn read_response_to(&mut self, method: &str) -> Response {
        self.try_read_response(method)
            .unwrap_or_else(|e| panic!("reading a response: {e}"))
    }

    pub fn try_read_response(&mut self, method: &str) -> io::Result<Response> {
        let mut body = Vec::new();
        let mut resp = self.read_response_streaming(method, &mut |d| body.extend_from_slice(d))?;
        resp.body = body;
        Ok(resp)
    }

    /// Read a response, handing its body to `sink` piece by piece instead of keeping it.
    pub fn read_response_streaming(
        &mut self,
        method: &str,
        sink: &mut dyn FnMut(&[u8]),
    ) -> io::Result<Response> {
        let head = self
            .wire
            .read_head()?
            .ok_or_else(|| eof("connection closed before a response"))?;
        let text = String::from_utf8(head).map_err(|_| bad("response head not UTF-8"))?;
        let lines: Vec<&str> = text.split("\r\n").collect();
        let mut start = lines[0].splitn(3, ' ');
        let version = start.next().unwrap_or("").to_string();
        let status: u16 = start
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {:?}", lines[0])))?;
        let reason = start.next().unwrap_or("").to_string();
        let headers = parse_fields(&lines[1..])?;
        let mut resp = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            framing: Framing::None,
            trailers: Vec::new(),
        };
        if (100..200).contains(&status) || status == 204 || status == 304 || method == "HEAD" {
            return Ok(resp);
        }
        if has_token(&resp.headers, "Transfer-Encoding", "chunked") {
            resp.framing = Framing::Chunked;
            resp.trailers = self.wire.read_chunked_into(sink)?;
        } else if let Some(cl) = resp.header("Content-Length") {
            let n: u64 = cl.parse().map_err(|_| bad("bad Content-Length"))?;
            resp.framing = Framing::Length;
            self.wire.read_exact_into(n, sink)?;
        } else {
            resp.framing = Framing::Close;
            self.wire.read_to_eof_into(sink)?;
        }
        Ok(resp)
    }

    /// Whether the server closes the connection (EOF or reset) within `timeout`, with no further bytes.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        if self.wire.has_buffered() {
            return false;
        }
        self.set_read_timeout(timeout);
        let mut b = [0u8; 1];
        let r = self.wire.stream.read(&mut b);
        self.set_read_timeout(IO_TIMEOUT);
        match r {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }

    /// Nothing arrives (and the connection stays open) for `dur`.
    pub fn silent_for(&mut self, dur: Duration) -> bool {
        if self.wire.has_buffered() {
            return false;
        }
        self.set_read_timeout(dur);
        let mut b = [0u8; 1];
        let r = self.wire.stream.peek(&mut b);
        self.set_read_timeout(IO_TIMEOUT);
        matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut)
    }
}

/// A one-line GET request with Host.
pub fn get_req(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// One request on a fresh connection.
pub fn fetch(port: u16, raw: &[u8]) -> Response {
    let mut c = Client::connect(port);
    c.send(raw);
    c.read_response()
}

/// GET `path` with `Host: host` on a fresh connection.
pub fn get(port: u16, path: &str) -> Response {
    fetch(port, &get_req(path, "example.test"))
}

// ---- backend ---------------------------------------------------------------------------------------------------

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
