//! Holdfast: a realtime reverse proxy speaking GRIP, a drop-in replacement for Pushpin.
//!
//! The library target exposes the sans-IO cores (HTTP/1.1 codec, routes and config parsers) to tests and fuzz
//! targets; the binary is a thin `main` over `server`.
#![forbid(unsafe_code)]

pub mod buf;
pub mod cli;
pub mod config;
pub mod control;
pub mod deadlines;
pub mod grip;
pub mod http1;
pub mod logging;
pub mod memory;
pub mod proxy;
pub mod publish;
pub mod publish_cli;
pub mod rand;
pub mod reactor;
pub mod routes;
pub mod server;
pub mod stats;
#[cfg(test)]
mod test_rng;
pub mod websocket;
pub mod zmq_bridge;
