//! Idle keep-alive connections to backends, per worker and per backend address.
//!
//! Pooled sockets stay registered with the poller under their backend slot, so the worker hears when a backend
//! closes one while it idles (the slot is marked dead) and reusing one costs no system call at all.
//! Policy: at most `max_per_addr` idle connections per address (the oldest is closed to make room), each kept
//! at most `idle_timeout`. A pooled connection that turns out dead anyway is retried once by the session.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::socket::CountedStream;

/// What the worker knows of a pooled socket from poll events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Good,
    /// A readable edge arrived: peek before reuse.
    Suspect,
    Dead,
}

pub struct Pooled {
    pub sock: CountedStream,
    /// The backend slot the socket is registered under.
    pub slot: usize,
    since: Instant,
}

pub struct BackendPool {
    idle: HashMap<SocketAddr, Vec<Pooled>>,
    max_per_addr: usize,
    idle_timeout: Duration,
}

impl BackendPool {
    pub fn new(max_per_addr: usize, idle_timeout: Duration) -> BackendPool {
        BackendPool {
            idle: HashMap::new(),
            max_per_addr,
            idle_timeout,
        }
    }

    /// The most recently used live connection to `addr`. Connections found dead or expired on the way are
    /// dropped and their slots appended to `freed`.
    pub fn take(
        &mut self,
        addr: SocketAddr,
        now: Instant,
        health: impl Fn(usize) -> Health,
        freed: &mut Vec<usize>,
    ) -> Option<Pooled> {
        let list = self.idle.get_mut(&addr)?;
        while let Some(p) = list.pop() {
            let usable = now.saturating_duration_since(p.since) < self.idle_timeout
                && match health(p.slot) {
                    Health::Good => true,
                    Health::Dead => false,
                    // Nothing to read means the edge was stale news of bytes already read.
                    Health::Suspect => {
                        matches!(p.sock.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                    }
                };
            if usable {
                return Some(p);
            }
            freed.push(p.slot);
        }
        None
    }

    /// Keep a connection; if the address is at its limit the oldest is dropped and its slot returned.
    pub fn put(
        &mut self,
        addr: SocketAddr,
        sock: CountedStream,
        slot: usize,
        now: Instant,
    ) -> Option<usize> {
        if self.max_per_addr == 0 {
            return Some(slot);
        }
        let list = self.idle.entry(addr).or_default();
        let evicted = if list.len() >= self.max_per_addr {
            Some(list.remove(0).slot)
        } else {
            None
        };
        list.push(Pooled {
            sock,
            slot,
            since: now,
        });
        evicted
    }

    /// Drop connections idle too long or marked dead; their slots go to `freed`.
    pub fn sweep(&mut self, now: Instant, dead: impl Fn(usize) -> bool, freed: &mut Vec<usize>) {
        let timeout = self.idle_timeout;
        self.idle.retain(|_, list| {
            list.retain(|p| {
                let keep = now.saturating_duration_since(p.since) < timeout && !dead(p.slot);
                if !keep {
                    freed.push(p.slot);
                }
                keep
            });
            !list.is_empty()
        });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::IoCounters;
    use mio::net::TcpStream;
    use std::net::TcpListener;
    use std::sync::Arc;

    fn pair(listener: &TcpListener) -> (CountedStream, std::net::TcpStream) {
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let io = Arc::new(IoCounters::default());
        (
            CountedStream::backend(TcpStream::from_std(client), io),
            server,
        )
    }

    #[test]
    fn dead_and_expired_connections_are_not_handed_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let now = Instant::now();
        let mut pool = BackendPool::new(4, Duration::from_secs(30));
        let mut servers = Vec::new();
        for slot in [1, 2] {
            let (c, s) = pair(&listener);
            servers.push(s);
            assert_eq!(pool.put(addr, c, slot, now), None);
        }
        let mut freed = Vec::new();
        // Slot 2 is on top (most recent) but dead: skipped, freed; slot 1 is handed out.
        let health = |slot| {
            if slot == 2 {
                Health::Dead
            } else {
                Health::Good
            }
        };
        let got = pool.take(addr, now, health, &mut freed).unwrap();
        assert_eq!(got.slot, 1);
        assert_eq!(freed, vec![2]);
        assert!(pool.take(addr, now, |_| Health::Good, &mut freed).is_none());

        let (c, s) = pair(&listener);
        servers.push(s);
        pool.put(addr, c, 3, now);
        freed.clear();
        pool.sweep(now + Duration::from_secs(31), |_| false, &mut freed);
        assert_eq!(freed, vec![3]);
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn bounded_per_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let now = Instant::now();
        let mut pool = BackendPool::new(2, Duration::from_secs(30));
        let mut servers = Vec::new();
        let mut evicted = Vec::new();
        for slot in 0..3 {
            let (c, s) = pair(&listener);
            servers.push(s);
            evicted.extend(pool.put(addr, c, slot, now));
        }
        assert_eq!(pool.len(), 2);
        assert_eq!(evicted, vec![0], "the oldest makes room");
    }
}
