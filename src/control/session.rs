//! One control-API connection: read a single request (bounded), hand it to the caller, write the answer, close.

use std::io;
use std::time::{Duration, Instant};

use super::http::{parse, ControlLimits, ControlRequest, Parsed};
use crate::buf::OutBuf;
use crate::proxy::{Endpoint, Socket};

/// A control request must arrive completely within this time.
pub const CONTROL_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Read granularity.
const READ_CHUNK: usize = 16 * 1024;

enum State {
    /// Call: bytes from the client. Next: Handling once a request is complete, Writing on a transport error.
    Reading {
        continued: bool,
    },
    /// Call: `respond`. Next: Writing.
    Handling,
    /// Call: writability. Next: Done once the response is flushed.
    Writing,
    Done,
}

pub struct ControlSession<S: Socket> {
    ep: Endpoint<S>,
    input: Vec<u8>,
    output: OutBuf,
    state: State,
    deadline: Instant,
    limits: ControlLimits,
    /// Whether `Accept` is checked (the control API's JSON or text answers) or ignored (the metrics endpoint,
    /// which has one format whatever the scraper lists).
    negotiate: bool,
}

/// What the worker should do after `process`.
#[derive(Debug, Default)]
pub struct ControlWant {
    pub request: Option<ControlRequest>,
    pub deadline: Option<Instant>,
    pub close: bool,
}

impl<S: Socket> ControlSession<S> {
    pub fn new(sock: S, limits: ControlLimits, now: Instant) -> ControlSession<S> {
        ControlSession {
            ep: Endpoint::new(sock),
            input: Vec::new(),
            output: OutBuf::new(),
            state: State::Reading { continued: false },
            deadline: now + CONTROL_REQUEST_TIMEOUT,
            limits,
            negotiate: true,
        }
    }

    /// The same one-request HTTP handling without `Accept` negotiation.
    pub fn plain(sock: S, limits: ControlLimits, now: Instant) -> ControlSession<S> {
        ControlSession {
            negotiate: false,
            ..ControlSession::new(sock, limits, now)
        }
    }

    pub fn set_ready(&mut self, readable: bool, writable: bool) {
        self.ep.readable |= readable;
        self.ep.writable |= writable;
    }

    /// The answer to the request handed out by `process`.
    pub fn respond(&mut self, bytes: Vec<u8>) {
        self.output.extend(&bytes);
        self.state = State::Writing;
    }

    pub fn process(&mut self, now: Instant) -> ControlWant {
        let mut want = ControlWant::default();
        if now >= self.deadline {
            self.state = State::Done;
        }
        if let State::Reading { continued } = self.state {
            // Never hold more than a maximal request: head limit + body limit + one read of slack.
            let cap = self.limits.max_headers_size + self.limits.max_body_size + READ_CHUNK;
            let mut eof = false;
            while self.ep.readable && self.input.len() < cap {
                let old = self.input.len();
                let n = READ_CHUNK.min(cap - old);
                self.input.resize(old + n, 0);
                match self.ep.sock.read(&mut self.input[old..]) {
                    Ok(0) => {
                        self.input.truncate(old);
                        eof = true;
                        break;
                    }
                    Ok(got) => self.input.truncate(old + got),
                    Err(e) => {
                        self.input.truncate(old);
                        if e.kind() == io::ErrorKind::WouldBlock {
                            self.ep.readable = false;
                        } else if e.kind() != io::ErrorKind::Interrupted {
                            eof = true;
                            break;
                        }
                    }
                }
            }
            match parse(&self.input, &self.limits, continued, self.negotiate) {
                Parsed::Incomplete if eof => self.state = State::Done,
                Parsed::Incomplete => {}
                Parsed::Continue => {
                    self.output.extend(b"HTTP/1.1 100 Continue\r\n\r\n");
                    self.state = State::Reading { continued: true };
                }
                Parsed::Error(bytes) => self.respond(bytes),
                Parsed::Request(req) => {
                    self.input = Vec::new();
                    self.state = State::Handling;
                    want.request = Some(req);
                }
            }
        }
        if self.ep.writable && !self.output.is_empty() {
            match self.output.write_to(&mut self.ep.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ep.writable = false,
                Err(_) => self.state = State::Done,
            }
        }
        if matches!(self.state, State::Writing) && self.output.is_empty() {
            self.ep.sock.shutdown_write();
            self.state = State::Done;
        }
        want.close = matches!(self.state, State::Done);
        want.deadline = Some(self.deadline);
        want
    }
}
