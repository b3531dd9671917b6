//! The proxy session's `Socket` for mio's TCP stream, with byte counting.
//!
//! `CountedStream` adds every byte it reads or writes to its worker's `IoCounters` under the flow it was made
//! for (client or backend side). The worker owns all of its sockets, so those counters are written by one
//! thread and moved into the shared metrics once per loop.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::proxy::Socket;
use crate::stats::{Flow, IoCounters};

pub struct CountedStream {
    inner: TcpStream,
    io: Arc<IoCounters>,
    received: Flow,
    sent: Flow,
}

impl CountedStream {
    pub fn client(inner: TcpStream, io: Arc<IoCounters>) -> CountedStream {
        CountedStream {
            inner,
            io,
            received: Flow::ClientReceived,
            sent: Flow::ClientSent,
        }
    }

    pub fn backend(inner: TcpStream, io: Arc<IoCounters>) -> CountedStream {
        CountedStream {
            inner,
            io,
            received: Flow::BackendReceived,
            sent: Flow::BackendSent,
        }
    }

    /// Look at pending input without consuming it (not counted: the bytes are counted when read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }
}

impl Read for CountedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.io.add(self.received, n);
        }
        Ok(n)
    }
}

impl Write for CountedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.io.add(self.sent, n);
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        if n > 0 {
            self.io.add(self.sent, n);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Source for CountedStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.inner.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.inner.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.inner.deregister(registry)
    }
}

impl Socket for TcpStream {
    fn connect_result(&mut self) -> Option<io::Result<()>> {
        match self.take_error() {
            Ok(Some(e)) | Err(e) => return Some(Err(e)),
            Ok(None) => {}
        }
        match self.peer_addr() {
            Ok(_) => Some(Ok(())),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn shutdown_write(&mut self) {
        // The peer may already be gone; closing follows either way.
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Socket for CountedStream {
    fn connect_result(&mut self) -> Option<io::Result<()>> {
        self.inner.connect_result()
    }

    fn shutdown_write(&mut self) {
        self.inner.shutdown_write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_counted_under_their_side() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut far = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (near, _) = listener.accept().unwrap();
        near.set_nonblocking(true).unwrap();
        let io = Arc::new(IoCounters::default());
        let mut s = CountedStream::backend(TcpStream::from_std(near), Arc::clone(&io));

        assert_eq!(s.write(b"hello").unwrap(), 5);
        far.write_all(b"abc").unwrap();
        let mut got = [0u8; 3];
        let mut n = 0;
        // Loopback delivery is quick but not instantaneous.
        for _ in 0..1000 {
            match s.read(&mut got[n..]) {
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
            if n == 3 {
                break;
            }
        }
        assert_eq!(&got, b"abc");
        let mut flows = io.take();
        assert_eq!(flows[Flow::BackendSent.index()], 5);
        assert_eq!(flows[Flow::BackendReceived.index()], 3);
        assert_eq!(flows[Flow::ClientSent.index()], 0);
        // Taken means reset.
        flows = io.take();
        assert_eq!(flows, [0; 4]);
    }
}
