//! bench-ws-backend: a WebSocket echo origin for the Autobahn runs and the WebSocket benchmarks.
//!
//! * A WebSocket handshake (`Upgrade: websocket`) gets a 101, then every frame is echoed back as it is
//!   (same opcode and fragmentation, unmasked), pings are answered with pongs, and a Close is echoed and
//!   ends the connection. Frames are echoed whole, so the backend accepts anything up to `FRAME_MAX`.
//! * A `POST` of `application/websocket-events` (WebSocket-over-HTTP) is answered with the same events:
//!   OPEN with OPEN, TEXT/BINARY echoed, PING with PONG, CLOSE with CLOSE, DISCONNECT with DISCONNECT.
//!
//! With `--grip`, both kinds accept the GRIP extension, subscribe the connection to the channel named by
//! `?channel=` (default "bench") on open, and prefix echoed messages with `m:`.
//!
//! Each thread runs its own `mio::Poll` over a clone of one listening socket, like bench-backend.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use holdfast_bench::grip::channel_of;
use holdfast_bench::ws::{
    accept_key, parse_events, parse_header, unmask, write_event, write_frame, write_header,
    OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
};
use holdfast_bench::Options;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const CONNS_MAX: usize = 32 * 1024;
/// Largest frame echoed (Autobahn 9.1.6 sends 16 MiB in one frame).
const FRAME_MAX: u64 = 32 * 1024 * 1024;
const HEAD_MAX: usize = 64 * 1024;
const BODY_MAX: usize = 64 * 1024 * 1024;
/// Unsent bytes a connection may queue before the server stops reading from it.
const OUT_MAX: usize = 4 * 1024 * 1024;
const READ_CHUNK: usize = 256 * 1024;
const LISTENER: Token = Token(usize::MAX);
const EVENTS_TYPE: &str = "application/websocket-events";

const USAGE: &str = "usage: bench-ws-backend --port P [--bind ADDR] [--threads N|auto] [--grip]";

enum Mode {
    Http,
    Ws,
}

struct Conn {
    stream: TcpStream,
    mode: Mode,
    input: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    closing: bool,
    /// GRIP mode: the message being echoed began (the prefix goes on its first frame only).
    in_message: bool,
}

fn find(buf: &[u8], pat: &[u8]) -> Option<usize> {
    buf.windows(pat.len()).position(|w| w == pat)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn subscribe_message(target: &str) -> String {
    let channel = channel_of(target.as_bytes());
    format!(r#"c:{{"type":"subscribe","channel":"{channel}"}}"#)
}

impl Conn {
    /// Handle what is buffered. Returns false when the connection should close now.
    fn process(&mut self, grip: bool) -> bool {
        loop {
            if self.out.len() - self.out_pos >= OUT_MAX || self.closing {
                return true;
            }
            let progressed = match self.mode {
                Mode::Http => match self.http(grip) {
                    Some(p) => p,
                    None => return false,
                },
                Mode::Ws => self.ws_frame(grip),
            };
            if !progressed {
                return true;
            }
        }
    }

    /// One request, if whole. `None`: malformed.
    fn http(&mut self, grip: bool) -> Option<bool> {
        let Some(end) = find(&self.input, b"\r\n\r\n") else {
            return if self.input.len() > HEAD_MAX {
                None
            } else {
                Some(false)
            };
        };
        let head = String::from_utf8_lossy(&self.input[..end + 4]).into_owned();
        let target = head.split(' ').nth(1).unwrap_or("/").to_string();
        if header(&head, "Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
            self.input.drain(..end + 4);
            let accept = accept_key(header(&head, "Sec-WebSocket-Key").unwrap_or(""));
            let ext = if grip {
                "Sec-WebSocket-Extensions: grip\r\n"
            } else {
                ""
            };
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\n{ext}\r\n"
            );
            self.out.extend_from_slice(resp.as_bytes());
            if grip {
                write_frame(
                    &mut self.out,
                    true,
                    OP_TEXT,
                    subscribe_message(&target).as_bytes(),
                    None,
                );
            }
            self.mode = Mode::Ws;
            return Some(true);
        }
        let len: usize = header(&head, "Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if len > BODY_MAX {
            return None;
        }
        if self.input.len() < end + 4 + len {
            return Some(false);
        }
        let body: Vec<u8> = self.input[end + 4..end + 4 + len].to_vec();
        self.input.drain(..end + 4 + len);
        if header(&head, "Content-Type") != Some(EVENTS_TYPE) {
            self.out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n",
            );
            return Some(true);
        }
        let events = parse_events(&body)?;
        let mut reply = Vec::new();
        for ev in &events {
            match ev.kind.as_str() {
                "OPEN" => {
                    write_event(&mut reply, "OPEN", b"");
                    if grip {
                        write_event(&mut reply, "TEXT", subscribe_message(&target).as_bytes());
                    }
                }
                "TEXT" | "BINARY" if grip => {
                    let mut c = b"m:".to_vec();
                    c.extend_from_slice(&ev.content);
                    write_event(&mut reply, &ev.kind, &c);
                }
                "TEXT" | "BINARY" | "CLOSE" | "DISCONNECT" => {
                    write_event(&mut reply, &ev.kind, &ev.content)
                }
                "PING" => write_event(&mut reply, "PONG", &ev.content),
                _ => {}
            }
        }
        let ext = if grip {
            "Sec-WebSocket-Extensions: grip\r\n"
        } else {
            ""
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {EVENTS_TYPE}\r\n{ext}Content-Length: {}\r\n\r\n",
            reply.len()
        );
        self.out.extend_from_slice(resp.as_bytes());
        self.out.extend_from_slice(&reply);
        Some(true)
    }

    /// Echo one whole frame, if buffered.
    fn ws_frame(&mut self, grip: bool) -> bool {
        let Some(h) = parse_header(&self.input) else {
            return false;
        };
        if h.len > FRAME_MAX {
            self.closing = true;
            return false;
        }
        let total = h.header_len + h.len as usize;
        if self.input.len() < total {
            return false;
        }
        let mut payload = self.input[h.header_len..total].to_vec();
        self.input.drain(..total);
        if let Some(mask) = h.mask {
            unmask(&mut payload, mask, 0);
        }
        match h.opcode {
            OP_PING => write_frame(&mut self.out, true, OP_PONG, &payload, None),
            OP_PONG => {}
            OP_CLOSE => {
                write_frame(&mut self.out, true, OP_CLOSE, &payload, None);
                self.closing = true;
            }
            op => {
                let prefix: &[u8] = if grip && op != OP_CONT && !self.in_message {
                    b"m:"
                } else {
                    b""
                };
                self.in_message = !h.fin;
                write_header(
                    &mut self.out,
                    h.fin,
                    op,
                    (prefix.len() + payload.len()) as u64,
                    None,
                );
                self.out.extend_from_slice(prefix);
                self.out.extend_from_slice(&payload);
            }
        }
        true
    }

    fn read(&mut self, scratch: &mut [u8]) -> io::Result<ReadEnd> {
        loop {
            if self.out.len() - self.out_pos >= OUT_MAX {
                return Ok(ReadEnd::Full);
            }
            match self.stream.read(scratch) {
                Ok(0) => return Ok(ReadEnd::Eof),
                Ok(n) => {
                    self.input.extend_from_slice(&scratch[..n]);
                    if self.input.len() >= READ_CHUNK {
                        // Echo what arrived before reading more, so input stays bounded by a frame.
                        return Ok(ReadEnd::Full);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadEnd::Drained),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Returns false to drop the connection.
    fn drive(&mut self, scratch: &mut [u8], grip: bool) -> bool {
        loop {
            let read = match self.read(scratch) {
                Ok(r) => r,
                Err(_) => return false,
            };
            if !self.process(grip) || self.flush().is_err() {
                return false;
            }
            if read == ReadEnd::Eof || (self.closing && self.out.is_empty()) {
                return false;
            }
            if read == ReadEnd::Drained || self.out.len() - self.out_pos >= OUT_MAX {
                // Wait for the next readable (or writable, once the output drains) event.
                return true;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    Drained,
    Full,
    Eof,
}

fn serve(listener: std::net::TcpListener, grip: bool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut events = Events::with_capacity(1024);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    let mut stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let idx = match free.pop() {
                        Some(i) => i,
                        None if conns.len() < CONNS_MAX => {
                            conns.push(None);
                            conns.len() - 1
                        }
                        None => continue,
                    };
                    let _ = stream.set_nodelay(true);
                    if poll
                        .registry()
                        .register(
                            &mut stream,
                            Token(idx),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_err()
                    {
                        free.push(idx);
                        continue;
                    }
                    conns[idx] = Some(Conn {
                        stream,
                        mode: Mode::Http,
                        input: Vec::new(),
                        out: Vec::new(),
                        out_pos: 0,
                        closing: false,
                        in_message: false,
                    });
                }
                continue;
            }
            let idx = ev.token().0;
            let keep = match conns.get_mut(idx) {
                Some(Some(conn)) => conn.drive(&mut scratch, grip),
                _ => continue,
            };
            if !keep {
                conns[idx] = None;
                free.push(idx);
            }
        }
    }
}

fn run() -> Result<(), String> {
    let opts = Options::parse(
        std::env::args().skip(1),
        &["--port", "--bind", "--threads"],
        &["--help", "--grip"],
    )
    .map_err(|e| format!("{e}\n{USAGE}"))?;
    if opts.flag("--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let port: u16 = opts.number("--port", 0).map_err(|e| e.to_string())?;
    if port == 0 {
        return Err(format!("--port is required\n{USAGE}"));
    }
    let bind = opts.value("--bind").unwrap_or("127.0.0.1");
    let threads = match opts.value("--threads") {
        Some("auto") => std::thread::available_parallelism().map_or(1, |n| n.get()),
        _ => opts
            .number("--threads", 1usize)
            .map_err(|e| e.to_string())?,
    };
    let grip = opts.flag("--grip");
    let addr: SocketAddr = format!("{bind}:{port}")
        .parse()
        .map_err(|_| format!("bad bind address {bind:?}"))?;
    let listener = holdfast_bench::listen::listen(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut handles = Vec::new();
    for _ in 0..threads.max(1) {
        let clone = listener.try_clone().map_err(|e| e.to_string())?;
        handles.push(std::thread::spawn(move || serve(clone, grip)));
    }
    eprintln!("bench-ws-backend: listening on {addr} with {threads} thread(s), grip={grip}");
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("poll failed: {e}")),
            Err(_) => return Err("a worker thread panicked".into()),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-ws-backend: {e}");
            ExitCode::FAILURE
        }
    }
}
