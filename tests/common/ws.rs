//! WebSocket test peers over blocking sockets: a client (masks what it sends) and a backend server that
//! records each connection's handshake and runs a script. Frames are encoded with holdfast's own codec, whose
//! unit tests check it against RFC 6455 (and Autobahn checks the proxy from outside).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use holdfast::websocket::close::write_close_payload;
use holdfast::websocket::frame::{apply_mask, read_header, FrameHeader, OpCode};
use holdfast::websocket::handshake::accept_key;
use holdfast::websocket::writer::encode_frame;

use super::IO_TIMEOUT;

/// One frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub opcode: OpCode,
    pub fin: bool,
    pub masked: bool,
    pub payload: Vec<u8>,
}

/// A whole message (fragments joined) or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

/// A WebSocket connection end over a blocking socket.
pub struct WsPeer {
    pub sock: TcpStream,
    buf: Vec<u8>,
    /// Mask outgoing frames (we are the client).
    client: bool,
    /// A fragmented message being received: (is text, data so far).
    partial: Option<(bool, Vec<u8>)>,
}

impl WsPeer {
    fn new(sock: TcpStream, leftover: Vec<u8>, client: bool) -> WsPeer {
        sock.set_read_timeout(Some(IO_TIMEOUT)).ok();
        sock.set_write_timeout(Some(IO_TIMEOUT)).ok();
        WsPeer {
            sock,
            buf: leftover,
            client,
            partial: None,
        }
    }

    pub fn send_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        let mut out = Vec::new();
        let mask = self.client.then_some([0x37, 0xfa, 0x21, 0x3d]);
        encode_frame(&mut out, opcode, fin, payload, mask);
        self.sock.write_all(&out).expect("write frame");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("write raw");
    }

    pub fn text(&mut self, s: &str) {
        self.send_frame(OpCode::Text, true, s.as_bytes());
    }

    pub fn binary(&mut self, b: &[u8]) {
        self.send_frame(OpCode::Binary, true, b);
    }

    pub fn close(&mut self, code: u16, reason: &str) {
        let mut payload = Vec::new();
        write_close_payload(&mut payload, code, reason);
        self.send_frame(OpCode::Close, true, &payload);
    }

    pub fn set_timeout(&mut self, t: Duration) {
        self.sock.set_read_timeout(Some(t)).ok();
    }

    /// The next frame, or the read error (timeout, EOF as `UnexpectedEof`).
    pub fn try_frame(&mut self) -> io::Result<Frame> {
        loop {
            if let Ok(Some((h, n))) = read_header(&self.buf) {
                let total = n + h.len as usize;
                if self.buf.len() >= total {
                    let mut payload = self.buf[n..total].to_vec();
                    if let Some(mask) = h.mask {
                        apply_mask(&mut payload, mask, 0);
                    }
                    self.buf.drain(..total);
                    return Ok(frame_of(&h, payload));
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.sock.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn frame(&mut self) -> Frame {
        self.try_frame().expect("read frame")
    }

    /// The next message or control frame, or the read error. Control frames between the fragments of a
    /// message are returned as they come; the message continues on the next call.
    pub fn try_msg(&mut self) -> io::Result<Msg> {
        loop {
            let f = self.try_frame()?;
            match f.opcode {
                OpCode::Ping => return Ok(Msg::Ping(f.payload)),
                OpCode::Pong => return Ok(Msg::Pong(f.payload)),
                OpCode::Close => {
                    let p = &f.payload;
                    return Ok(if p.len() >= 2 {
                        Msg::Close(
                            Some(u16::from_be_bytes([p[0], p[1]])),
                            String::from_utf8_lossy(&p[2..]).into_owned(),
                        )
                    } else {
                        Msg::Close(None, String::new())
                    });
                }
                OpCode::Continuation => {
                    let (_, data) = self
                        .partial
                        .as_mut()
                        .expect("continuation without a message");
                    data.extend_from_slice(&f.payload);
                }
                OpCode::Text | OpCode::Binary => {
                    assert!(
                        self.partial.is_none(),
                        "new message inside a fragmented one"
                    );
                    self.partial = Some((f.opcode == OpCode::Text, f.payload));
                }
            }
            if f.fin {
                let (text, data) = self.partial.take().expect("message");
                return Ok(if text {
                    Msg::Text(String::from_utf8(data).expect("text is UTF-8"))
                } else {
                    Msg::Binary(data)
                });
            }
        }
    }

    pub fn msg(&mut self) -> Msg {
        self.try_msg().expect("read message")
    }

    /// The next message, skipping pings and pongs.
    pub fn data_msg(&mut self) -> Msg {
        loop {
            match self.msg() {
                Msg::Ping(_) | Msg::Pong(_) => continue,
                m => return m,
            }
        }
    }

    /// Whether the peer closed the TCP connection (EOF) within `t`, skipping frames.
    pub fn eof_within(&mut self, t: Duration) -> bool {
        self.set_timeout(t);
        loop {
            match self.try_frame() {
                Ok(_) => continue,
                Err(e) => return e.kind() == io::ErrorKind::UnexpectedEof,
            }
        }
    }
}

fn frame_of(h: &FrameHeader, payload: Vec<u8>) -> Frame {
    Frame {
        opcode: h.opcode,
        fin: h.fin,
        masked: h.mask.is_some(),
        payload,
    }
}

/// Read an HTTP head off `sock`; returns it and the bytes that followed it.
fn read_head(sock: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return Ok((head, buf[end + 4..].to_vec()));
        }
        let n = sock.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A handshake's answer: status, head text (with body, if any, for non-101) and the connection.
pub struct WsOpen {
    pub status: u16,
    pub head: String,
    pub peer: Option<WsPeer>,
}

impl WsOpen {
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(&self.head, name)
    }

    pub fn ok(self) -> WsPeer {
        assert_eq!(self.status, 101, "handshake refused:\n{}", self.head);
        self.peer.expect("connection")
    }
}

/// A header's value in a raw head (first match, case-insensitive).
pub fn header_in(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

pub const TEST_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Open a WebSocket to holdfast with extra request lines (`Name: value\r\n` each).
pub fn ws_connect(port: u16, path: &str, extra: &str) -> WsOpen {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(IO_TIMEOUT)).ok();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {TEST_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    sock.write_all(req.as_bytes()).expect("send handshake");
    let (mut head, rest) = read_head(&mut sock).expect("handshake answer");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    if status != 101 {
        // Keep the body (short error texts) with the head for the assertions.
        let len: usize = header_in(&head, "Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = rest;
        while body.len() < len {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        head.push_str(&String::from_utf8_lossy(&body));
        return WsOpen {
            status,
            head,
            peer: None,
        };
    }
    assert_eq!(
        header_in(&head, "Sec-WebSocket-Accept").as_deref(),
        Some(std::str::from_utf8(&accept_key(TEST_KEY.as_bytes())).unwrap()),
        "{head}"
    );
    WsOpen {
        status,
        head,
        peer: Some(WsPeer::new(sock, rest, true)),
    }
}

/// Finish a handshake written by hand on `sock`: read the 101 and wrap the connection.
pub fn ws_from_stream(mut sock: TcpStream) -> WsPeer {
    sock.set_read_timeout(Some(IO_TIMEOUT)).ok();
    let (head, rest) = read_head(&mut sock).expect("handshake answer");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    WsPeer::new(sock, rest, true)
}

/// One connection a `WsBackend` accepted.
#[derive(Debug, Clone)]
pub struct BackendConn {
    pub head: String,
}

impl BackendConn {
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(&self.head, name)
    }

    pub fn path(&self) -> String {
        self.head.split(' ').nth(1).unwrap_or("").to_string()
    }
}

/// How the backend answers a handshake.
#[derive(Clone)]
pub enum Answer {
    /// 101, with these extra header lines.
    Accept(String),
    /// A non-101 answer: status line rest, extra headers, body.
    Refuse(String, String, String),
}

type Script = dyn Fn(&BackendConn, &mut WsPeer) + Send + Sync;

/// A WebSocket backend on an ephemeral port; each connection runs `script` after the handshake.
pub struct WsBackend {
    pub port: u16,
    pub conns: Arc<Mutex<Vec<BackendConn>>>,
}

impl WsBackend {
    pub fn start(
        answer: Answer,
        script: impl Fn(&BackendConn, &mut WsPeer) + Send + Sync + 'static,
    ) -> WsBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().unwrap().port();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let seen = Arc::clone(&conns);
        thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { continue };
                let seen = Arc::clone(&seen);
                let script = Arc::clone(&script);
                let answer = answer.clone();
                thread::spawn(move || {
                    sock.set_read_timeout(Some(IO_TIMEOUT)).ok();
                    let Ok((head, rest)) = read_head(&mut sock) else {
                        return;
                    };
                    let conn = BackendConn { head };
                    seen.lock().unwrap().push(conn.clone());
                    match answer {
                        Answer::Accept(extra) => {
                            let key = conn.header("Sec-WebSocket-Key").unwrap_or_default();
                            let accept = accept_key(key.as_bytes());
                            let resp = format!(
                                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                                 Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
                                std::str::from_utf8(&accept).unwrap()
                            );
                            if sock.write_all(resp.as_bytes()).is_err() {
                                return;
                            }
                            let mut peer = WsPeer::new(sock, rest, false);
                            script(&conn, &mut peer);
                        }
                        Answer::Refuse(status, extra, body) => {
                            let resp = format!(
                                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = sock.write_all(resp.as_bytes());
                        }
                    }
                });
            }
        });
        WsBackend { port, conns }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn conn(&self, i: usize) -> BackendConn {
        let ok = super::wait_until(IO_TIMEOUT, || self.conns.lock().unwrap().len() > i);
        assert!(ok, "backend connection {i} never came");
        self.conns.lock().unwrap()[i].clone()
    }
}

/// A script that echoes every message and answers pings, and answers a Close with the same code.
pub fn echo_script(_: &BackendConn, peer: &mut WsPeer) {
    loop {
        let Ok(m) = peer.try_msg() else { return };
        match m {
            Msg::Text(t) => peer.text(&t),
            Msg::Binary(b) => peer.binary(&b),
            Msg::Ping(p) => peer.send_frame(OpCode::Pong, true, &p),
            Msg::Pong(_) => {}
            Msg::Close(code, reason) => {
                match code {
                    Some(c) => peer.close(c, &reason),
                    None => peer.send_frame(OpCode::Close, true, &[]),
                }
                return;
            }
        }
    }
}
