//! Size caps for WebSocket traffic, in one place.
//!
//! The two caps bound different things:
//!
//! * `max_frame` is a sanity bound on a single frame's declared payload length. A relayed frame is
//!   streamed through in whatever pieces the socket delivers (see [`super::reader::Reader`]), so its size costs
//!   no memory; the cap only refuses absurd lengths (a 2^62-byte frame is an attack or a bug, never a
//!   message) before a single payload byte is accepted. Exceeding it closes with 1009.
//! * `max_message` bounds memory: it applies only where a whole message is collected into a buffer
//!   ([`super::assemble::Assembler`]: WebSocket-over-HTTP events, GRIP control messages). Exceeding it closes
//!   with 1009 as well, and is detected at the frame header when the declared length already
//!   overshoots, so no byte past the cap is ever buffered.
//!
//! Both bounds are inclusive: a frame of exactly `max_frame` bytes and a message of exactly
//! `max_message` bytes are accepted.

/// Default cap on one frame's payload length: 16 MiB.
pub const FRAME_PAYLOAD_MAX: u64 = 16 * 1024 * 1024;

/// Default cap on an assembled message: 1 MiB, sized for a small host where many connections may be
/// collecting messages at once.
pub const MESSAGE_SIZE_MAX: usize = 1024 * 1024;

/// Caps for one direction of one connection; see the module docs for what each bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsLimits {
    /// Largest accepted frame payload, in bytes (inclusive).
    pub max_frame: u64,
    /// Largest message the [`super::assemble::Assembler`] collects, in bytes (inclusive).
    pub max_message: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_frame: FRAME_PAYLOAD_MAX,
            max_message: MESSAGE_SIZE_MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let limits = WsLimits::default();
        assert_eq!(limits.max_frame, 16_777_216);
        assert_eq!(limits.max_message, 1_048_576);
    }
}
