//! The proxy session's `Socket` trait for mio's TCP stream.

use std::io;
use std::net::Shutdown;

use mio::net::TcpStream;

use crate::proxy::Socket;

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
