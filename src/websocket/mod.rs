//! WebSocket (RFC 6455), sans-IO: frame codec, message protocol, handshakes, the WebSocket-over-HTTP event
//! format and GRIP control messages. Nothing here touches a socket; the reactor moves the bytes.

pub mod assemble;
pub mod close;
pub mod control;
pub mod events;
pub mod frame;
pub mod handshake;
pub mod limits;
pub mod reader;
pub mod state;
pub mod utf8;
pub mod writer;
