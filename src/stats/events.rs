//! What the workers report to the stats tracker in the bridge: connections coming and going, and
//! subscriptions per mode and channel changing.

use std::net::IpAddr;
use std::sync::Arc;

use super::Transport;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsEvent {
    /// A client connection is open (`ws`: it is a WebSocket now).
    ConnOpen {
        id: String,
        ws: bool,
        peer: IpAddr,
        tls: bool,
        /// The explicit id of the route its latest request took (sent again when it changes).
        route: Option<Arc<str>>,
    },
    /// Client requests on a route with an explicit id (per-route `activity`).
    Activity {
        route: Arc<str>,
        count: u32,
    },
    ConnClose {
        id: String,
    },
    /// One connection started (`+1`) or stopped (`-1`) listening on `channel` as `mode`.
    Sub {
        mode: Transport,
        channel: String,
        delta: i32,
    },
}
