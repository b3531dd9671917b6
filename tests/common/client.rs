//! The raw test client and its response type.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::wire::{bad, eof, field, fields, has_token, parse_fields, Wire};
use super::IO_TIMEOUT;

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
