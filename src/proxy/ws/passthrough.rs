//! The backend half of a passthrough WebSocket (spec 6.1): frames from the client re-masked toward the
//! backend, frames from the backend relayed to the client, and, when the backend accepted the GRIP
//! extension, its messages read whole for `c:` control messages and the message prefix.

use std::time::Instant;

use super::grip::{backend_message, BackendMessage, ControlEffects, GripWs};
use crate::buf::{InBuf, OutBuf};
use crate::stats::{ConnCounts, Flow};
use crate::websocket::assemble::Assembler;
use crate::websocket::close::ProtocolError;
use crate::websocket::frame::{FrameHeader, MessageKind, OpCode, Role};
use crate::websocket::limits::WsLimits;
use crate::websocket::reader::{Event, Reader};
use crate::websocket::writer::{append_masked, encode_close, encode_frame, encode_header};

/// What one `read` found on the backend connection.
#[derive(Debug)]
pub enum Read {
    /// Nothing to read until more bytes arrive.
    Nothing,
    /// Bytes moved; `relaying` says a relayed message to the client is open (deliveries wait).
    Moved { relaying: bool },
    /// A control message was applied; the session acts on its effects.
    Control(ControlEffects),
    /// The backend's Close.
    Closed { code: Option<u16>, reason: String },
}

pub struct Passthrough {
    rx: Reader,
    /// GRIP messages collected whole (`None` until the backend accepts the extension).
    msg: Option<Assembler>,
    /// The message being collected arrived as one frame (control messages must).
    single_frame: bool,
    /// A message relayed frame by frame to the client is open.
    relaying: bool,
    /// Inside a relayed frame's payload toward the client: nothing else may be written there now.
    to_client_frame_left: u64,
    /// The client frame being relayed to the backend: its mask, and payload bytes still to come.
    mask: [u8; 4],
    mask_offset: usize,
    to_backend_frame_left: u64,
    close_sent: bool,
    close_received: bool,
    /// A close was asked for while a frame toward the backend was half written.
    close_wanted: bool,
    done: bool,
    log_prefix: u64,
    /// WebSocket messages each way; `WsConn` moves them to the session's counts.
    pub counts: ConnCounts,
}

impl Passthrough {
    /// `grip_prefix` is the message prefix when the backend accepted the GRIP extension.
    pub fn new(limits: WsLimits, grip: bool, log_prefix: u64) -> Passthrough {
        Passthrough {
            rx: Reader::new(Role::Client, limits),
            msg: grip.then(|| Assembler::new(limits.max_message)),
            single_frame: false,
            relaying: false,
            to_client_frame_left: 0,
            mask: [0; 4],
            mask_offset: 0,
            to_backend_frame_left: 0,
            close_sent: false,
            close_received: false,
            close_wanted: false,
            done: false,
            log_prefix,
            counts: ConnCounts::default(),
        }
    }

    /// Both Closes crossed, or the connection failed: the backend socket can go.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn finish(&mut self) {
        self.done = true;
    }

    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// A Close may still be written toward the backend.
    pub fn can_send(&self) -> bool {
        !self.done && !self.close_sent
    }

    /// Whether a frame may be written to the client now (not inside a relayed frame's payload).
    pub fn client_frame_boundary(&self) -> bool {
        self.to_client_frame_left == 0
    }

    /// Ask for a Close toward the backend (a publish closed the client).
    pub fn want_close(&mut self) {
        self.close_wanted = true;
    }

    /// Write our Close toward the backend, unless a relayed frame is half written (then the socket is just
    /// dropped: a Close there would corrupt the frame).
    pub fn send_close(&mut self, out: &mut OutBuf, code: Option<u16>, reason: &str) {
        if self.close_sent || self.done {
            return;
        }
        if self.to_backend_frame_left > 0 {
            self.done = true;
            return;
        }
        self.close_sent = true;
        encode_close(out.vec(), code, reason, Some(crate::rand::mask()));
        if self.close_received {
            self.done = true;
        }
    }

    /// Send a Close asked for with `want_close` once it can go.
    pub fn flush_wanted_close(&mut self, out: &mut OutBuf) {
        if self.close_wanted && self.to_backend_frame_left == 0 {
            self.close_wanted = false;
            self.send_close(out, Some(crate::websocket::close::NORMAL), "");
        }
    }

    /// Re-encode one client event (not Close) toward the backend, masked with a fresh key per frame.
    pub fn relay_client_event(&mut self, ev: Event, out: &mut OutBuf) {
        if self.close_sent || self.done {
            return;
        }
        match ev {
            Event::DataFrame {
                kind,
                first,
                fin,
                len,
            } => {
                if first {
                    self.counts.message(Flow::BackendSent);
                }
                self.mask = crate::rand::mask();
                self.mask_offset = 0;
                self.to_backend_frame_left = len;
                let header = data_frame_header(kind, first, fin, len, Some(self.mask));
                encode_header(out.vec(), &header);
            }
            Event::Payload { data, .. } => {
                append_masked(out.vec(), data, self.mask, self.mask_offset);
                self.mask_offset += data.len();
                self.to_backend_frame_left -= (data.len() as u64).min(self.to_backend_frame_left);
            }
            Event::Ping(p) => {
                encode_frame(out.vec(), OpCode::Ping, true, p, Some(crate::rand::mask()))
            }
            Event::Pong(p) => {
                encode_frame(out.vec(), OpCode::Pong, true, p, Some(crate::rand::mask()))
            }
            Event::Close { .. } => {}
        }
    }

    /// Read one step from the backend's bytes. `client_closing` says the client was sent a Close (nothing
    /// more may be written to it).
    pub fn read(
        &mut self,
        input: &mut InBuf,
        client_out: &mut OutBuf,
        grip: &mut GripWs,
        client_closing: bool,
        now: Instant,
    ) -> Result<Read, ProtocolError> {
        let to_client = !client_closing && !grip.detached;
        let (used, event) = self.rx.read(input.data_mut())?;
        if let Some(Event::DataFrame { first: true, .. }) = event {
            self.counts.message(Flow::BackendReceived);
        }
        let result = match event {
            None if used == 0 => Read::Nothing,
            None => Read::Moved {
                relaying: self.relaying,
            },
            Some(Event::Close { code, reason }) => {
                self.close_received = true;
                if self.close_sent {
                    self.done = true;
                }
                Read::Closed {
                    code,
                    reason: reason.to_string(),
                }
            }
            Some(Event::Ping(p)) => {
                if to_client {
                    encode_frame(client_out.vec(), OpCode::Ping, true, p, None);
                }
                Read::Moved {
                    relaying: self.relaying,
                }
            }
            Some(Event::Pong(p)) => {
                if to_client {
                    encode_frame(client_out.vec(), OpCode::Pong, true, p, None);
                }
                Read::Moved {
                    relaying: self.relaying,
                }
            }
            Some(ev) => match &mut self.msg {
                Some(assembler) => {
                    if let Event::DataFrame {
                        first: true, fin, ..
                    } = ev
                    {
                        self.single_frame = fin;
                    }
                    let single = self.single_frame;
                    match assembler.push(ev)? {
                        None => Read::Moved { relaying: false },
                        Some(m) => match backend_message(
                            m.kind,
                            m.data,
                            single,
                            grip,
                            client_out,
                            to_client,
                            usize::MAX,
                            now,
                            self.log_prefix,
                        ) {
                            BackendMessage::Control(fx) => Read::Control(fx),
                            BackendMessage::Relayed => {
                                self.counts.message(Flow::ClientSent);
                                Read::Moved { relaying: false }
                            }
                            BackendMessage::Dropped => Read::Moved { relaying: false },
                        },
                    }
                }
                None => {
                    self.relay_to_client(ev, client_out, to_client);
                    Read::Moved {
                        relaying: self.relaying,
                    }
                }
            },
        };
        input.consume(used);
        Ok(result)
    }

    /// Plain relay of a data frame (no GRIP): header first, payload as it comes.
    fn relay_to_client(&mut self, ev: Event, out: &mut OutBuf, to_client: bool) {
        match ev {
            Event::DataFrame {
                kind,
                first,
                fin,
                len,
            } => {
                self.relaying = true;
                self.to_client_frame_left = len;
                if to_client {
                    encode_header(out.vec(), &data_frame_header(kind, first, fin, len, None));
                    if first {
                        self.counts.message(Flow::ClientSent);
                    }
                }
            }
            Event::Payload {
                data, message_end, ..
            } => {
                if to_client {
                    out.extend(data);
                }
                self.to_client_frame_left -= (data.len() as u64).min(self.to_client_frame_left);
                if message_end {
                    self.relaying = false;
                }
            }
            _ => {}
        }
    }
}

/// The header of a relayed data frame: the message's opcode on its first frame, Continuation after.
fn data_frame_header(
    kind: MessageKind,
    first: bool,
    fin: bool,
    len: u64,
    mask: Option<[u8; 4]>,
) -> FrameHeader {
    FrameHeader {
        fin,
        rsv: 0,
        opcode: if first {
            kind.opcode()
        } else {
            OpCode::Continuation
        },
        mask,
        len,
    }
}
