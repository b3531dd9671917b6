//! The GRIP side of a client's WebSocket (spec 6.3, 6.4): channels and their filters, subscription meta for
//! filters, the keep-alive and delayed messages that control messages configure, and `detach`.
//!
//! The backend drives this state with `c:` control messages; published `ws-message` items are checked
//! against it. Channel names are stored as published to (the route's `prefix` applied).

use std::time::{Duration, Instant};

use crate::buf::OutBuf;
use crate::grip::KeepAliveMode;
use crate::publish::{Item, WsType};
#[cfg(test)]
use crate::websocket::control::WsKeepAlive;
use crate::websocket::control::{parse_control, ControlMessage};
use crate::websocket::frame::MessageKind;
use crate::websocket::writer::{encode_frame, split_message};

/// A channel this connection listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsChannel {
    pub name: String,
    pub filters: Vec<String>,
    /// Subscribed through the target's `sub=` option: the backend cannot remove it.
    pub implicit: bool,
}

/// A message the proxy itself sends to the client (keep-alive, delayed message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnMessage {
    pub kind: WsType,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KeepAlive {
    message: OwnMessage,
    every: Duration,
    mode: KeepAliveMode,
    next_at: Instant,
}

/// What a control message asks of the session beyond this state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ControlEffects {
    pub subscribe: Vec<String>,
    pub unsubscribe: Vec<String>,
    /// Stop relaying client messages and close the backend side.
    pub detach: bool,
    /// Close the client with this code (a control message broke a limit).
    pub close: Option<(u16, &'static str)>,
}

#[derive(Debug)]
pub struct GripWs {
    /// The backend accepted the GRIP extension: `c:` messages are control, others need `prefix`.
    pub enabled: bool,
    pub prefix: String,
    /// The route's channel prefix.
    channel_prefix: String,
    pub channels: Vec<WsChannel>,
    pub meta: Vec<(String, String)>,
    subscription_max: usize,
    keep_alive: Option<KeepAlive>,
    delayed: Option<(Instant, OwnMessage)>,
    pub detached: bool,
}

/// Filters one subscription may name (Pushpin closes the connection with 1011 beyond this).
pub const FILTERS_MAX: usize = 5;
/// Meta entries one connection may set; further `set-meta` messages are ignored.
pub const META_MAX: usize = 32;

impl GripWs {
    pub fn new(channel_prefix: &str, subscription_max: usize) -> GripWs {
        GripWs {
            enabled: false,
            prefix: String::new(),
            channel_prefix: channel_prefix.to_string(),
            channels: Vec::new(),
            meta: Vec::new(),
            subscription_max,
            keep_alive: None,
            delayed: None,
            detached: false,
        }
    }

    /// Subscribe to the target's `sub=` channels (they work even without the GRIP extension). Returns the
    /// channel names to subscribe.
    pub fn subscribe_implicit(&mut self, names: &[String]) -> Vec<String> {
        let mut added = Vec::new();
        for name in names {
            let full = format!("{}{name}", self.channel_prefix);
            if self.channels.iter().any(|c| c.name == full) {
                continue;
            }
            self.channels.push(WsChannel {
                name: full.clone(),
                filters: Vec::new(),
                implicit: true,
            });
            added.push(full);
        }
        added
    }

    /// Apply one control message from the backend.
    pub fn apply(&mut self, msg: ControlMessage, now: Instant) -> ControlEffects {
        let mut fx = ControlEffects::default();
        match msg {
            ControlMessage::Subscribe { channel, filters } => {
                if filters.len() > FILTERS_MAX {
                    fx.close = Some((1011, "too many filters"));
                    return fx;
                }
                let full = format!("{}{channel}", self.channel_prefix);
                if let Some(existing) = self.channels.iter_mut().find(|c| c.name == full) {
                    existing.filters = filters;
                } else if self.channels.len() < self.subscription_max {
                    self.channels.push(WsChannel {
                        name: full.clone(),
                        filters,
                        implicit: false,
                    });
                    fx.subscribe.push(full);
                } else {
                    log::debug!(
                        "ws subscribe to {full} ignored: connection_subscription_max reached"
                    );
                }
            }
            ControlMessage::Unsubscribe { channel } => {
                let full = format!("{}{channel}", self.channel_prefix);
                if let Some(i) = self
                    .channels
                    .iter()
                    .position(|c| c.name == full && !c.implicit)
                {
                    self.channels.remove(i);
                    fx.unsubscribe.push(full);
                }
            }
            ControlMessage::Detach => {
                self.detached = true;
                fx.detach = true;
            }
            ControlMessage::SetMeta { name, value } => {
                self.meta.retain(|(k, _)| *k != name);
                if let Some(value) = value {
                    if self.meta.len() < META_MAX {
                        self.meta.push((name, value));
                    }
                }
            }
            ControlMessage::KeepAlive(ka) => {
                self.keep_alive = ka.map(|ka| {
                    let every = Duration::from_secs(ka.timeout_secs.max(1));
                    KeepAlive {
                        message: OwnMessage {
                            kind: ka.message_type,
                            content: ka.content,
                        },
                        every,
                        mode: ka.mode,
                        next_at: now + every,
                    }
                });
            }
            ControlMessage::SendDelayed {
                content,
                message_type,
                timeout_secs,
            } => {
                self.delayed = Some((
                    now + Duration::from_secs(timeout_secs.max(1)),
                    OwnMessage {
                        kind: message_type,
                        content,
                    },
                ));
            }
            ControlMessage::FlushDelayed => {
                if let Some((at, _)) = &mut self.delayed {
                    *at = now;
                }
            }
            ControlMessage::Session { .. } => {}
            ControlMessage::Unknown(kind) => {
                log::debug!("ws control message of unknown type {kind:?} ignored");
            }
        }
        fx
    }

    /// Whether a published item is for this connection on `channel`.
    pub fn wants(&self, item: &Item, channel: &str, subscribed: &dyn Fn(&str) -> bool) -> bool {
        let Some(ws) = &item.ws_message else {
            return false;
        };
        let Some(ch) = self.channels.iter().find(|c| c.name == channel) else {
            return false;
        };
        crate::grip::passes_filters(
            &ch.filters,
            &self.meta,
            item,
            ws.content_filters.as_ref(),
            subscribed,
        )
    }

    /// The client was just written to: an idle-mode keep-alive starts counting again.
    pub fn client_written(&mut self, now: Instant) {
        if let Some(ka) = &mut self.keep_alive {
            if ka.mode == KeepAliveMode::Idle {
                ka.next_at = now + ka.every;
            }
        }
    }

    /// The earliest time a keep-alive or delayed message is due.
    pub fn deadline(&self) -> Option<Instant> {
        let ka = self.keep_alive.as_ref().map(|k| k.next_at);
        let delayed = self.delayed.as_ref().map(|(at, _)| *at);
        match (ka, delayed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Messages due at `now`, in the order to send them.
    pub fn due(&mut self, now: Instant) -> Vec<OwnMessage> {
        let mut out = Vec::new();
        if self.delayed.as_ref().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, msg)) = self.delayed.take() {
                out.push(msg);
            }
        }
        if let Some(ka) = &mut self.keep_alive {
            if ka.next_at <= now {
                out.push(ka.message.clone());
                ka.next_at = now + ka.every;
            }
        }
        out
    }

    pub fn channel_names(&self) -> impl Iterator<Item = &str> {
        self.channels.iter().map(|c| c.name.as_str())
    }
}

/// What `backend_message` did with a message.
#[derive(Debug)]
pub enum BackendMessage {
    /// A control message was applied: the session acts on its effects.
    Control(ControlEffects),
    /// The message went on to the client.
    Relayed,
    /// Nothing reached the client: an unprefixed message, an ignored control message, or the client is
    /// being closed.
    Dropped,
}

/// A whole message from a GRIP backend: a `c:` control message (applied; its effects returned), a message
/// with the prefix (sent to the client without it, in frames of at most `max_frame` bytes), or an
/// unprefixed message (dropped, spec 6.1).
#[allow(clippy::too_many_arguments)]
pub fn backend_message(
    kind: MessageKind,
    data: &[u8],
    single_frame: bool,
    grip: &mut GripWs,
    client_out: &mut OutBuf,
    to_client: bool,
    max_frame: usize,
    now: Instant,
    log_prefix: u64,
) -> BackendMessage {
    if grip.enabled && kind == MessageKind::Text && data.starts_with(b"c:") {
        if !single_frame {
            log::debug!("ws {log_prefix}: fragmented control message ignored");
            return BackendMessage::Dropped;
        }
        return match parse_control(&data[2..]) {
            Ok(msg) => BackendMessage::Control(grip.apply(msg, now)),
            Err(e) => match e.close_code() {
                Some(code) => {
                    log::info!("ws {log_prefix}: control message refused, closing: {e}");
                    BackendMessage::Control(ControlEffects {
                        close: Some((code, "invalid control message")),
                        ..ControlEffects::default()
                    })
                }
                None => {
                    log::debug!("ws {log_prefix}: invalid control message ignored: {e}");
                    BackendMessage::Dropped
                }
            },
        };
    }
    let content = if grip.enabled {
        match data.strip_prefix(grip.prefix.as_bytes()) {
            Some(content) => content,
            None => {
                log::debug!("ws {log_prefix}: backend message without the prefix dropped");
                return BackendMessage::Dropped;
            }
        }
    } else {
        data
    };
    if !to_client {
        return BackendMessage::Dropped;
    }
    for f in split_message(kind, content, max_frame.max(1)) {
        encode_frame(client_out.vec(), f.opcode, f.fin, f.payload, None);
    }
    BackendMessage::Relayed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(channel: &str, filters: &[&str]) -> ControlMessage {
        ControlMessage::Subscribe {
            channel: channel.into(),
            filters: filters.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn subscribe_applies_the_route_prefix_and_the_subscription_cap() {
        let now = Instant::now();
        let mut g = GripWs::new("p-", 2);
        assert_eq!(g.apply(sub("a", &[]), now).subscribe, ["p-a"]);
        assert_eq!(
            g.apply(sub("a", &["skip-self"]), now).subscribe,
            Vec::<String>::new()
        );
        assert_eq!(g.channels[0].filters, ["skip-self"]);
        assert_eq!(g.apply(sub("b", &[]), now).subscribe, ["p-b"]);
        // Beyond connection_subscription_max: ignored silently, as Pushpin does.
        assert!(g.apply(sub("c", &[]), now).subscribe.is_empty());
        assert_eq!(g.channel_names().collect::<Vec<_>>(), ["p-a", "p-b"]);
        let fx = g.apply(
            ControlMessage::Unsubscribe {
                channel: "a".into(),
            },
            now,
        );
        assert_eq!(fx.unsubscribe, ["p-a"]);
    }

    #[test]
    fn too_many_filters_close_the_connection_with_1011() {
        let mut g = GripWs::new("", 10);
        let fx = g.apply(sub("a", &["a", "b", "c", "d", "e", "f"]), Instant::now());
        assert_eq!(fx.close.map(|c| c.0), Some(1011));
        assert!(g.channels.is_empty());
    }

    #[test]
    fn implicit_channels_cannot_be_unsubscribed() {
        let mut g = GripWs::new("", 10);
        assert_eq!(g.subscribe_implicit(&["fixed".into()]), ["fixed"]);
        let fx = g.apply(
            ControlMessage::Unsubscribe {
                channel: "fixed".into(),
            },
            Instant::now(),
        );
        assert!(fx.unsubscribe.is_empty());
        assert_eq!(g.channels.len(), 1);
    }

    #[test]
    fn keep_alive_in_idle_mode_waits_for_silence_and_interval_mode_does_not() {
        let t0 = Instant::now();
        let mut g = GripWs::new("", 10);
        g.apply(
            ControlMessage::KeepAlive(Some(WsKeepAlive {
                content: b"ka".to_vec(),
                message_type: WsType::Text,
                timeout_secs: 3,
                mode: KeepAliveMode::Idle,
            })),
            t0,
        );
        assert_eq!(g.deadline(), Some(t0 + Duration::from_secs(3)));
        g.client_written(t0 + Duration::from_secs(2));
        assert!(g.due(t0 + Duration::from_secs(3)).is_empty());
        let due = g.due(t0 + Duration::from_secs(5));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].content, b"ka");

        g.apply(
            ControlMessage::KeepAlive(Some(WsKeepAlive {
                content: b"tick".to_vec(),
                message_type: WsType::Ping,
                timeout_secs: 3,
                mode: KeepAliveMode::Interval,
            })),
            t0,
        );
        g.client_written(t0 + Duration::from_secs(2));
        assert_eq!(g.due(t0 + Duration::from_secs(3)).len(), 1);

        // Without content: keep-alives stop.
        g.apply(ControlMessage::KeepAlive(None), t0);
        assert_eq!(g.deadline(), None);
    }

    #[test]
    fn a_delayed_message_is_replaced_by_the_next_and_flushed_on_demand() {
        let t0 = Instant::now();
        let mut g = GripWs::new("", 10);
        let delayed = |c: &[u8]| ControlMessage::SendDelayed {
            content: c.to_vec(),
            message_type: WsType::Text,
            timeout_secs: 1,
        };
        g.apply(delayed(b"one"), t0);
        g.apply(delayed(b"two"), t0);
        assert!(g.due(t0).is_empty());
        g.apply(ControlMessage::FlushDelayed, t0);
        let due = g.due(t0);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].content, b"two");
        assert!(g.due(t0 + Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn set_meta_replaces_and_removes() {
        let now = Instant::now();
        let mut g = GripWs::new("", 10);
        let set = |v: Option<&str>| ControlMessage::SetMeta {
            name: "user".into(),
            value: v.map(str::to_string),
        };
        g.apply(set(Some("alice")), now);
        g.apply(set(Some("bob")), now);
        assert_eq!(g.meta, [("user".to_string(), "bob".to_string())]);
        g.apply(set(None), now);
        assert!(g.meta.is_empty());
    }
}
