//! The reverse proxy: a client connection's state machine, request/response rewriting, routing.

mod config;
pub mod gone;
pub mod hold;
mod link;
mod local;
pub mod rewrite;
mod router;
mod session;
mod test_target;
pub mod ws;

pub use config::ProxyConfig;
pub use router::Router;
pub use session::{ConnectRequest, Endpoint, Env, Session, Socket, Want};
