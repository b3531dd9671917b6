//! The token map of a worker's `mio::Poll`, in one place.
//!
//! `Token(0)` is the worker's `Waker`; listeners take the next `LISTENERS_MAX` tokens; every other token names
//! a socket of a connection: `CONN_BASE + (generation << 25 | slab_key << 1 | side)`. A connection owns up to
//! two sockets (client and backend), hence the side bit. The generation is bumped whenever a slab slot is
//! reused, so an event that was queued for the previous occupant of a slot is recognised and dropped.

use mio::Token;

pub const WAKER: Token = Token(0);
pub const LISTENER_BASE: usize = 1;
pub const LISTENERS_MAX: usize = 64;
const CONN_BASE: usize = LISTENER_BASE + LISTENERS_MAX;

/// Slab keys must fit 24 bits: at most 16 M connections per worker.
pub const CONN_KEY_MAX: usize = (1 << 24) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Backend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Waker,
    Listener(usize),
    Conn {
        key: usize,
        generation: u32,
        side: Side,
    },
}

pub fn listener(index: usize) -> Token {
    debug_assert!(index < LISTENERS_MAX);
    Token(LISTENER_BASE + index)
}

pub fn conn(key: usize, generation: u32, side: Side) -> Token {
    debug_assert!(key <= CONN_KEY_MAX);
    let side_bit = match side {
        Side::Client => 0,
        Side::Backend => 1,
    };
    Token(CONN_BASE + (((generation as usize) << 25) | (key << 1) | side_bit))
}

pub fn decode(token: Token) -> TokenKind {
    let t = token.0;
    if t == WAKER.0 {
        TokenKind::Waker
    } else if t < CONN_BASE {
        TokenKind::Listener(t - LISTENER_BASE)
    } else {
        let v = t - CONN_BASE;
        TokenKind::Conn {
            key: (v >> 1) & CONN_KEY_MAX,
            generation: (v >> 25) as u32,
            side: if v & 1 == 0 {
                Side::Client
            } else {
                Side::Backend
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode(WAKER), TokenKind::Waker);
        assert_eq!(decode(listener(3)), TokenKind::Listener(3));
        for &(key, generation, side) in &[
            (0usize, 0u32, Side::Client),
            (CONN_KEY_MAX, u32::MAX, Side::Backend),
            (12345, 77, Side::Backend),
        ] {
            assert_eq!(
                decode(conn(key, generation, side)),
                TokenKind::Conn {
                    key,
                    generation,
                    side
                }
            );
        }
    }
}
