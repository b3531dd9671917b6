//! Numbers about the running server: the shared counters (read by Prometheus and the stats reports), the
//! per-publish delivery tally behind the `message` stats event, and the stats event model and encodings
//! (spec 1.4) that the ZeroMQ bridge publishes.

mod counts;
mod events;
mod metrics;
pub mod prometheus;
mod tally;
mod tracker;

pub use counts::{BackendError, ConnCounts, ConnType, Flow, IoCounters, LocalStats};
pub use events::StatsEvent;
pub use metrics::{Histogram, Metrics, MinuteCounter, Snapshot, LATENCY_BOUNDS_US};
pub use tally::Tally;
pub use tracker::{encode_event, Readings, Tracker, TrackerConfig, ACTIVITY_EVERY};

/// How a published item reached a connection (Pushpin's format names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    HttpResponse,
    HttpStream,
    WsMessage,
}

impl Transport {
    pub const ALL: [Transport; 3] = [
        Transport::HttpResponse,
        Transport::HttpStream,
        Transport::WsMessage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::HttpResponse => "http-response",
            Transport::HttpStream => "http-stream",
            Transport::WsMessage => "ws-message",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The subscription `mode` in stats for connections that receive this transport.
    pub fn mode(self) -> &'static str {
        match self {
            Transport::HttpResponse => "response",
            Transport::HttpStream => "stream",
            Transport::WsMessage => "ws",
        }
    }
}

/// Where a published item came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// The HTTP control API (`POST /publish`).
    Http,
    /// The ZeroMQ PULL socket (`push_in_spec`).
    Pull,
    /// The ZeroMQ SUB socket (`push_in_sub_specs`).
    Sub,
    /// The command socket's `publish` method.
    Command,
}

impl Input {
    pub const ALL: [Input; 4] = [Input::Http, Input::Pull, Input::Sub, Input::Command];

    pub fn as_str(self) -> &'static str {
        match self {
            Input::Http => "http",
            Input::Pull => "zmq-pull",
            Input::Sub => "zmq-sub",
            Input::Command => "zmq-command",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
