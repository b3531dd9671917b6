//! Idle keep-alive connections to backends, per worker and per backend address.
//!
//! Policy: at most `max_per_addr` idle connections per address (the oldest is closed to make room), each kept at
//! most `idle_timeout`. Pooled sockets are deregistered from the poller, so a backend closing one is noticed only
//! when it is taken: `take` peeks at the socket and discards it if the backend has closed it or sent stray bytes.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

pub struct BackendPool {
    idle: HashMap<SocketAddr, Vec<(TcpStream, Instant)>>,
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

    /// The most recently used live connection to `addr`, if any.
    pub fn take(&mut self, addr: SocketAddr, now: Instant) -> Option<TcpStream> {
        let list = self.idle.get_mut(&addr)?;
        while let Some((sock, since)) = list.pop() {
            if now.saturating_duration_since(since) >= self.idle_timeout {
                continue;
            }
            let mut probe = [0u8; 1];
            match sock.peek(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(sock),
                _ => continue, // closed by the backend, or unexpected bytes: unusable
            }
        }
        None
    }

    pub fn put(&mut self, addr: SocketAddr, sock: TcpStream, now: Instant) {
        if self.max_per_addr == 0 {
            return;
        }
        let list = self.idle.entry(addr).or_default();
        if list.len() >= self.max_per_addr {
            list.remove(0);
        }
        list.push((sock, now));
    }

    /// Close connections idle for longer than the timeout.
    pub fn sweep(&mut self, now: Instant) {
        let timeout = self.idle_timeout;
        self.idle.retain(|_, list| {
            list.retain(|(_, since)| now.saturating_duration_since(*since) < timeout);
            !list.is_empty()
        });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair(listener: &TcpListener) -> (TcpStream, std::net::TcpStream) {
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        (TcpStream::from_std(client), server)
    }

    #[test]
    fn closed_and_expired_connections_are_not_handed_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let now = Instant::now();
        let mut pool = BackendPool::new(4, Duration::from_secs(30));

        let (live, _live_server) = pair(&listener);
        let (dead, dead_server) = pair(&listener);
        drop(dead_server);
        std::thread::sleep(Duration::from_millis(50));
        pool.put(addr, live, now);
        pool.put(addr, dead, now);
        assert_eq!(pool.len(), 2);
        // The dead one is on top (LIFO) and must be skipped.
        assert!(pool.take(addr, now).is_some());
        assert!(pool.take(addr, now).is_none());

        let (old, _old_server) = pair(&listener);
        pool.put(addr, old, now);
        pool.sweep(now + Duration::from_secs(31));
        assert!(pool.is_empty());
    }

    #[test]
    fn bounded_per_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let now = Instant::now();
        let mut pool = BackendPool::new(2, Duration::from_secs(30));
        let mut servers = Vec::new();
        for _ in 0..3 {
            let (c, s) = pair(&listener);
            servers.push(s);
            pool.put(addr, c, now);
        }
        assert_eq!(pool.len(), 2);
    }
}
