//! Listening sockets for the bench origins.

use std::io;
use std::net::SocketAddr;

/// Accept-queue length of an origin's listening socket. `std` fixes it at 128, which 1,000 concurrent stream
/// opens overflowed about 1,500 times per run: each overflow is a dropped handshake the proxy retransmits
/// after a second, so the origin, not the proxy, set the open rate. 4,096 is what holdfast itself asks for
/// (the kernel caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 4096;

/// A listening TCP socket on `addr` with `LISTEN_BACKLOG`.
pub fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(LISTEN_BACKLOG)?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_and_accepts() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(addr).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert!(peer.ip().is_loopback());
    }
}
