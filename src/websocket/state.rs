//! The closing handshake of one connection (RFC 6455 5.5.1, 7.1), as a small state machine the session
//! consults: whether to answer a Close, whether data may still be sent or read, and when the TCP
//! connection may go.
//!
//! The rules it encodes:
//!
//! * "If an endpoint receives a Close frame and did not previously send a Close frame, the endpoint MUST
//!   send a Close frame in response." The answer echoes the received code ("the endpoint typically echos
//!   the status code it received"), or is empty if the peer's Close had none.
//! * "After sending a Close frame, the application MUST NOT send any more data frames." Between receiving
//!   a Close and answering it, data may still go out: "an endpoint MAY send the remaining fragments [of
//!   its current message] before sending a Close frame".
//! * After receiving a Close, "a peer discards any further data received" (1.4).
//! * "After both sending and receiving a Close message, an endpoint considers the WebSocket connection
//!   closed and MUST close the underlying TCP connection", and (7.1.1) the server "SHOULD close it first":
//!   a server closes once its Close is flushed; a client waits for the server to close, with a timeout
//!   of the caller's choosing.
//! * On a protocol error the connection is failed (7.1.7): send a Close with the error's code if none
//!   was sent yet, and "MUST NOT continue to attempt to process data (including a responding Close
//!   frame)" — stop reading and close TCP once the Close is flushed, whichever role we are.

use super::frame::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseState {
    /// Call: send and read freely. Next: `CloseSent` (`send_close`), `CloseReceived` (`recv_close`),
    /// `Failed` (`fail`).
    Open,
    /// We sent a Close first. Call: keep reading until the peer's Close; send no data.
    /// Next: `Closed` (`recv_close`), `Failed`.
    CloseSent,
    /// The peer sent a Close first. Call: optionally finish the message being sent, then send the reply
    /// `recv_close` asked for; read nothing more. Next: `Closed` (`send_close`), `Failed`.
    CloseReceived,
    /// Both Closes exchanged. Call: close TCP as `teardown` says. Next: nothing.
    Closed,
    /// The connection was failed on a protocol error. Call: write our Close if `fail` asked for it, then
    /// close TCP. Next: nothing.
    Failed,
}

/// What to do with the TCP connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// The handshake is not over: keep the connection.
    Keep,
    /// Close TCP once everything queued (our Close included) is written.
    AfterFlush,
    /// Wait for the peer to close TCP (a client after a clean close); close anyway after a timeout.
    AwaitPeer,
}

/// The Close to send in reply to the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReply {
    /// The code to echo; `None` means an empty Close payload.
    pub code: Option<u16>,
}

/// Tracks the closing handshake; see the module docs.
#[derive(Debug, Clone)]
pub struct CloseHandshake {
    role: Role,
    state: CloseState,
    close_sent: bool,
}

impl CloseHandshake {
    pub fn new(role: Role) -> Self {
        CloseHandshake {
            role,
            state: CloseState::Open,
            close_sent: false,
        }
    }

    pub fn state(&self) -> CloseState {
        self.state
    }

    /// The peer's Close arrived with this code. Returns the Close to send in reply, if one is owed; the
    /// caller sends it (now, or after finishing its current message) and then calls `send_close`.
    pub fn recv_close(&mut self, code: Option<u16>) -> Option<CloseReply> {
        match self.state {
            CloseState::Open => {
                self.state = CloseState::CloseReceived;
                Some(CloseReply { code })
            }
            CloseState::CloseSent => {
                self.state = CloseState::Closed;
                None
            }
            // A reader reports at most one Close and nothing after it, and nothing is read once failed.
            CloseState::CloseReceived | CloseState::Closed | CloseState::Failed => None,
        }
    }

    /// We are about to write a Close frame. Returns false if one was already sent: write nothing then,
    /// since a connection carries at most one Close each way.
    pub fn send_close(&mut self) -> bool {
        if self.close_sent {
            return false;
        }
        self.close_sent = true;
        self.state = match self.state {
            CloseState::Open => CloseState::CloseSent,
            CloseState::CloseReceived => CloseState::Closed,
            other => other,
        };
        true
    }

    /// Fail the connection on a protocol error. Returns true if a Close (with the error's code) should
    /// still be written; either way nothing more is read and TCP closes after the flush.
    pub fn fail(&mut self) -> bool {
        self.state = CloseState::Failed;
        if self.close_sent {
            return false;
        }
        self.close_sent = true;
        true
    }

    /// Whether data frames may be sent.
    pub fn can_send_data(&self) -> bool {
        matches!(self.state, CloseState::Open | CloseState::CloseReceived)
    }

    /// Whether frames from the peer are still processed.
    pub fn can_read(&self) -> bool {
        matches!(self.state, CloseState::Open | CloseState::CloseSent)
    }

    /// What to do with the TCP connection in the current state.
    pub fn teardown(&self) -> Teardown {
        match (self.state, self.role) {
            (CloseState::Open | CloseState::CloseSent | CloseState::CloseReceived, _) => {
                Teardown::Keep
            }
            (CloseState::Closed, Role::Server) | (CloseState::Failed, _) => Teardown::AfterFlush,
            (CloseState::Closed, Role::Client) => Teardown::AwaitPeer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (state, can_send_data, can_read, teardown)
    fn snapshot(h: &CloseHandshake) -> (CloseState, bool, bool, Teardown) {
        (h.state(), h.can_send_data(), h.can_read(), h.teardown())
    }

    #[test]
    fn peer_closes_first() {
        for (role, end) in [
            (Role::Server, Teardown::AfterFlush),
            (Role::Client, Teardown::AwaitPeer),
        ] {
            let mut h = CloseHandshake::new(role);
            assert_eq!(snapshot(&h), (CloseState::Open, true, true, Teardown::Keep));
            assert_eq!(
                h.recv_close(Some(1001)),
                Some(CloseReply { code: Some(1001) })
            );
            // Data may still go out (to finish a message); nothing more is read.
            assert_eq!(
                snapshot(&h),
                (CloseState::CloseReceived, true, false, Teardown::Keep)
            );
            assert!(h.send_close());
            assert_eq!(snapshot(&h), (CloseState::Closed, false, false, end));
            assert!(!h.send_close(), "one Close each way");
        }
    }

    #[test]
    fn empty_close_is_echoed_empty() {
        let mut h = CloseHandshake::new(Role::Server);
        assert_eq!(h.recv_close(None), Some(CloseReply { code: None }));
    }

    #[test]
    fn we_close_first() {
        for (role, end) in [
            (Role::Server, Teardown::AfterFlush),
            (Role::Client, Teardown::AwaitPeer),
        ] {
            let mut h = CloseHandshake::new(role);
            assert!(h.send_close());
            assert_eq!(
                snapshot(&h),
                (CloseState::CloseSent, false, true, Teardown::Keep)
            );
            assert!(!h.send_close());
            assert_eq!(h.recv_close(Some(1000)), None, "no reply to the answer");
            assert_eq!(snapshot(&h), (CloseState::Closed, false, false, end));
        }
    }

    #[test]
    fn failing() {
        for role in [Role::Server, Role::Client] {
            let mut h = CloseHandshake::new(role);
            assert!(h.fail(), "a Close with the error code is still owed");
            assert_eq!(
                snapshot(&h),
                (CloseState::Failed, false, false, Teardown::AfterFlush)
            );
            assert!(!h.send_close());
            assert_eq!(h.recv_close(Some(1000)), None);
            assert_eq!(h.state(), CloseState::Failed);

            // Failing after our Close went out writes no second Close.
            let mut h = CloseHandshake::new(role);
            assert!(h.send_close());
            assert!(!h.fail());
            assert_eq!(h.teardown(), Teardown::AfterFlush);

            // Failing while an owed reply is pending sends the error Close instead of the echo.
            let mut h = CloseHandshake::new(role);
            assert!(h.recv_close(Some(1000)).is_some());
            assert!(h.fail());
            assert_eq!(h.teardown(), Teardown::AfterFlush);
        }
    }
}
