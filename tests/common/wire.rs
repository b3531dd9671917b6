//! A buffered reader over a TCP stream with just enough HTTP/1.1 framing for the tests, shared by the client
//! and the backend.

use std::io::{self, Read};
use std::net::TcpStream;

use super::HEAD_MAX;

pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

pub fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

pub fn eof(msg: &str) -> io::Error {
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

    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    /// Read more bytes; `Ok(0)` at end of stream.
    pub fn fill(&mut self) -> io::Result<usize> {
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

    pub fn consume(&mut self, n: usize) {
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

    pub fn read_line(&mut self) -> io::Result<Vec<u8>> {
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
    pub fn read_chunked_into(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Vec<String>> {
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
    pub fn read_to_eof_into(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
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

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Header lines of a head (after the start line), as (name, value).
pub fn parse_fields(lines: &[&str]) -> io::Result<Vec<(String, String)>> {
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

pub fn field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub fn fields<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

pub fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    fields(headers, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
