//! A worker's stats reporting: connection and subscription events collected during one loop and handed to the
//! bridge in one message at the end of it (one lock and at most one wake-up per loop, whatever the load).
//!
//! Policy when the bridge's queue is full: the loop's events are dropped, counted in `stats_dropped` and
//! logged at most once a second. Only stats suffer; subscription forwarding has its own never-lost path.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::shared::{BridgeMsg, Shared};
use crate::logging::WarnLimit;
use crate::stats::{StatsEvent, Transport};

/// How a connection was announced to stats: the id it was announced under and whether as a WebSocket. It is
/// withdrawn under that same id, whatever its session knows by then (a WebSocket-over-HTTP connection that
/// has finished is no longer a WebSocket, and has forgotten its `Connection-Id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Announced {
    pub name: String,
    pub ws: bool,
    /// The route it was last announced with.
    pub route: Option<Arc<str>>,
}

/// Events queued per loop before the rest of that loop's are counted as dropped.
const EVENTS_PER_LOOP_MAX: usize = 65_536;

pub(super) struct Reporter {
    enabled: bool,
    events: Vec<StatsEvent>,
    dropped: u64,
    warn_limit: WarnLimit,
}

impl Reporter {
    pub fn new(enabled: bool) -> Reporter {
        Reporter {
            enabled,
            events: Vec::new(),
            dropped: 0,
            warn_limit: WarnLimit::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn push(&mut self, ev: StatsEvent) {
        if self.events.len() < EVENTS_PER_LOOP_MAX {
            self.events.push(ev);
        } else {
            self.dropped += 1;
        }
    }

    /// A connection opened; `None` when stats are off (nothing to withdraw later).
    pub fn announce(
        &mut self,
        name: String,
        ws: bool,
        peer: IpAddr,
        tls: bool,
    ) -> Option<Announced> {
        if !self.enabled {
            return None;
        }
        self.push(StatsEvent::ConnOpen {
            id: name.clone(),
            ws,
            peer,
            tls,
            route: None,
        });
        Some(Announced {
            name,
            ws,
            route: None,
        })
    }

    /// The connection became a WebSocket: withdraw its HTTP identity and announce it under `name`.
    pub fn reannounce_as_ws(
        &mut self,
        a: &mut Announced,
        name: String,
        peer: IpAddr,
        tls: bool,
        route: Option<&Arc<str>>,
    ) {
        let old = std::mem::replace(&mut a.name, name.clone());
        a.ws = true;
        a.route = route.cloned();
        self.push(StatsEvent::ConnClose { id: old });
        self.push(StatsEvent::ConnOpen {
            id: name,
            ws: true,
            peer,
            tls,
            route: a.route.clone(),
        });
    }

    /// The connection's latest request took another route: announce it again with that `route`.
    pub fn reroute(
        &mut self,
        a: &mut Announced,
        peer: IpAddr,
        tls: bool,
        route: Option<&Arc<str>>,
    ) {
        a.route = route.cloned();
        self.push(StatsEvent::ConnOpen {
            id: a.name.clone(),
            ws: a.ws,
            peer,
            tls,
            route: a.route.clone(),
        });
    }

    /// Requests on a route with an explicit id, for that route's `activity`.
    pub fn activity(&mut self, route: &Arc<str>, count: u32) {
        // Consecutive requests on one route (the common case) add up in one event.
        if let Some(StatsEvent::Activity {
            route: last,
            count: n,
        }) = self.events.last_mut()
        {
            if Arc::ptr_eq(last, route) {
                *n = n.saturating_add(count);
                return;
            }
        }
        self.push(StatsEvent::Activity {
            route: Arc::clone(route),
            count,
        });
    }

    /// The connection closed.
    pub fn withdraw(&mut self, a: Announced) {
        self.push(StatsEvent::ConnClose { id: a.name });
    }

    pub fn sub(&mut self, mode: Transport, channel: &str, delta: i32) {
        if self.enabled {
            self.push(StatsEvent::Sub {
                mode,
                channel: channel.to_string(),
                delta,
            });
        }
    }

    /// Hand this loop's events to the bridge.
    pub fn flush(&mut self, shared: &Shared, now: Instant) {
        if self.events.is_empty() && self.dropped == 0 {
            return;
        }
        let mut lost = std::mem::take(&mut self.dropped);
        if !self.events.is_empty() {
            let events = std::mem::take(&mut self.events);
            let n = events.len() as u64;
            let pushed = shared
                .bridge
                .get()
                .is_some_and(|b| b.push(BridgeMsg::Stats(events)).is_ok());
            if !pushed {
                lost += n;
            }
        }
        if lost == 0 {
            return;
        }
        shared
            .stats
            .stats_dropped
            .fetch_add(lost, Ordering::Relaxed);
        if self.warn_limit.allow(now) {
            log::warn!("stats: bridge queue full; {lost} stats events dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[test]
    fn a_connection_is_withdrawn_under_the_id_it_was_last_announced_under() {
        let mut r = Reporter::new(true);
        let mut a = r
            .announce("hf:7".into(), false, peer(), false)
            .expect("stats are on");
        r.reannounce_as_ws(&mut a, "c0ffee-cid".into(), peer(), false, None);
        // By the time it closes, the session may no longer know its Connection-Id: nothing is asked of it.
        r.withdraw(a);
        let open = |id: &str, ws| StatsEvent::ConnOpen {
            id: id.into(),
            ws,
            peer: peer(),
            tls: false,
            route: None,
        };
        let close = |id: &str| StatsEvent::ConnClose { id: id.into() };
        assert_eq!(
            r.events,
            [
                open("hf:7", false),
                close("hf:7"),
                open("c0ffee-cid", true),
                close("c0ffee-cid")
            ]
        );
    }

    #[test]
    fn a_new_route_is_announced_again_and_requests_add_up_per_route() {
        let mut r = Reporter::new(true);
        let mut a = r.announce("hf:9".into(), false, peer(), false).unwrap();
        let api: Arc<str> = Arc::from("api");
        r.activity(&api, 1);
        r.activity(&api, 2);
        r.reroute(&mut a, peer(), false, Some(&api));
        assert_eq!(a.route.as_deref(), Some("api"));
        assert_eq!(
            r.events[1..],
            [
                StatsEvent::Activity {
                    route: Arc::clone(&api),
                    count: 3
                },
                StatsEvent::ConnOpen {
                    id: "hf:9".into(),
                    ws: false,
                    peer: peer(),
                    tls: false,
                    route: Some(api),
                }
            ]
        );
    }

    #[test]
    fn nothing_is_announced_with_stats_off() {
        let mut r = Reporter::new(false);
        assert_eq!(r.announce("hf:1".into(), false, peer(), false), None);
        assert!(r.events.is_empty());
    }
}
