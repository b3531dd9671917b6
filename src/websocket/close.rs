//! Close frames: status codes, payload parsing and building, and the error that fails a connection.
//!
//! A Close payload is empty, or a 2-byte big-endian status code followed by a UTF-8 reason (RFC 6455
//! 5.5.1). Receiving an invalid one fails the connection: a malformed payload or an unusable code with
//! 1002, a reason that is not UTF-8 with 1007.
//!
//! Which codes a peer may send (RFC 6455 7.4 and the IANA "WebSocket Close Code Number" registry):
//!
//! | codes | received |
//! |---|---|
//! | 1000-1003, 1007-1011 | valid (RFC 6455) |
//! | 1012-1014 | valid (registered later: service restart, try again later, bad gateway) |
//! | 1004, 1005, 1006, 1015 | invalid: reserved, or meant only for reporting, never for the wire |
//! | 0-999, 1016-2999 | invalid: unused or reserved for future protocol revisions |
//! | 3000-4999 | valid (libraries, frameworks, applications) |
//! | 5000 and up | invalid: outside every range RFC 6455 defines |

use std::fmt;

/// 1000: the purpose of the connection was fulfilled.
pub const NORMAL: u16 = 1000;
/// 1001: an endpoint is going away (server shutdown, page navigation).
pub const GOING_AWAY: u16 = 1001;
/// 1002: the peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: a data type the endpoint cannot accept.
pub const UNSUPPORTED: u16 = 1003;
/// 1007: message data inconsistent with its type (text that is not UTF-8).
pub const INVALID_DATA: u16 = 1007;
/// 1008: a message that violates the endpoint's policy.
pub const POLICY: u16 = 1008;
/// 1009: a message too big to process.
pub const TOO_BIG: u16 = 1009;
/// 1011: the server hit an unexpected condition.
pub const INTERNAL: u16 = 1011;

/// Longest reason that fits a Close payload next to its 2-byte code.
pub const CLOSE_REASON_MAX: usize = super::frame::CONTROL_PAYLOAD_MAX - 2;

/// The peer broke RFC 6455: the connection fails, and the close frame we send says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    /// Status code for our Close frame: [`PROTOCOL_ERROR`], [`INVALID_DATA`] or [`TOO_BIG`].
    pub code: u16,
    /// Short reason, also usable as the Close frame's reason text.
    pub reason: &'static str,
}

impl ProtocolError {
    /// A 1002 (protocol error).
    pub const fn protocol(reason: &'static str) -> Self {
        ProtocolError {
            code: PROTOCOL_ERROR,
            reason,
        }
    }

    /// A 1007 (invalid payload data).
    pub const fn invalid_data(reason: &'static str) -> Self {
        ProtocolError {
            code: INVALID_DATA,
            reason,
        }
    }

    /// A 1009 (message too big).
    pub const fn too_big(reason: &'static str) -> Self {
        ProtocolError {
            code: TOO_BIG,
            reason,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

impl std::error::Error for ProtocolError {}

/// Whether a peer may put `code` in a Close frame; see the module docs for the table.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Parse a received Close payload into its status code (`None` when the payload is empty) and reason.
pub fn parse_close_payload(payload: &[u8]) -> Result<(Option<u16>, &str), ProtocolError> {
    match payload {
        [] => Ok((None, "")),
        // RFC 6455 5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
        // integer ... representing a status code".
        [_] => Err(ProtocolError::protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            // RFC 6455 7.4.1 on 1005/1006/1015: "MUST NOT be set as a status code in a Close control
            // frame by an endpoint"; unassigned codes are not ours to accept either.
            if !is_valid_close_code(code) {
                return Err(ProtocolError::protocol("invalid close code"));
            }
            // RFC 6455 5.5.1: the body after the code "MAY contain UTF-8-encoded data"; 8.1 makes
            // anything that is not valid UTF-8 a failure.
            let reason = std::str::from_utf8(reason)
                .map_err(|_| ProtocolError::invalid_data("close reason is not UTF-8"))?;
            Ok((Some(code), reason))
        }
    }
}

/// The longest prefix of `reason` that fits a Close payload: at most [`CLOSE_REASON_MAX`] bytes, cut at
/// a character boundary so the result stays valid UTF-8.
pub fn fit_close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(CLOSE_REASON_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Append a Close payload for `code` and `reason` (cut by [`fit_close_reason`]) to `out`; returns the
/// bytes appended, at most 125.
///
/// `code` is written as given: a caller passing a code from elsewhere (a GRIP control message, say)
/// checks it with [`is_valid_close_code`] first. To close without a code, send an empty payload.
pub fn write_close_payload(out: &mut Vec<u8>, code: u16, reason: &str) -> usize {
    let reason = fit_close_reason(reason);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    2 + reason.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_code_table() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        let invalid = [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 5001, 65535,
        ];
        for code in valid {
            assert!(is_valid_close_code(code), "{code}");
            let payload = code.to_be_bytes();
            assert_eq!(parse_close_payload(&payload), Ok((Some(code), "")));
        }
        for code in invalid {
            assert!(!is_valid_close_code(code), "{code}");
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(b"bye");
            assert_eq!(
                parse_close_payload(&payload),
                Err(ProtocolError::protocol("invalid close code"))
            );
        }
        // Exhaustive agreement with the ranges, so no code slips between the two lists above.
        let count = (0..=u16::MAX).filter(|&c| is_valid_close_code(c)).count();
        assert_eq!(count, 4 + 8 + 2000);
    }

    #[test]
    fn close_payload_shapes() {
        assert_eq!(parse_close_payload(b""), Ok((None, "")));
        assert_eq!(
            parse_close_payload(b"\x03"),
            Err(ProtocolError::protocol("close payload of one byte"))
        );
        assert_eq!(parse_close_payload(b"\x03\xe8"), Ok((Some(1000), "")));
        assert_eq!(
            parse_close_payload(b"\x03\xe9going"),
            Ok((Some(1001), "going"))
        );
        assert_eq!(
            parse_close_payload(b"\x0f\xa0h\xc3\xa9llo"),
            Ok((Some(4000), "héllo"))
        );
        let bad_utf8 = [0x03, 0xe8, b'o', 0xc3, 0x28];
        let err = parse_close_payload(&bad_utf8).unwrap_err();
        assert_eq!(err.code, INVALID_DATA);
        // An invalid code is reported before the reason is looked at.
        let both = [0x03, 0xed, 0xff];
        assert_eq!(parse_close_payload(&both).unwrap_err().code, PROTOCOL_ERROR);
    }

    #[test]
    fn built_payloads_fit_and_parse_back() {
        let long_ascii = "x".repeat(300);
        // 'é' is two bytes: 61 of them put a boundary at 122 and 124, never at 123.
        let long_accents = "é".repeat(61);
        let cases: &[(u16, &str, &str)] = &[
            (NORMAL, "", ""),
            (GOING_AWAY, "shutting down", "shutting down"),
            (POLICY, &long_ascii, &long_ascii[..123]),
            (TOO_BIG, &long_accents, &long_accents[..122]),
            (4321, &"€".repeat(41), &"€".repeat(41)),
            (INTERNAL, &"€".repeat(42), &"€".repeat(41)),
        ];
        for (code, reason, want) in cases {
            let mut out = b"prefix".to_vec();
            let n = write_close_payload(&mut out, *code, reason);
            assert_eq!(n, out.len() - 6);
            assert!(n <= 125);
            assert_eq!(parse_close_payload(&out[6..]), Ok((Some(*code), *want)));
        }
    }

    #[test]
    fn named_codes() {
        assert_eq!(
            [
                NORMAL,
                GOING_AWAY,
                PROTOCOL_ERROR,
                UNSUPPORTED,
                INVALID_DATA,
                POLICY,
                TOO_BIG,
                INTERNAL
            ],
            [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011]
        );
        for code in [
            NORMAL,
            GOING_AWAY,
            PROTOCOL_ERROR,
            UNSUPPORTED,
            INVALID_DATA,
            POLICY,
            TOO_BIG,
            INTERNAL,
        ] {
            assert!(is_valid_close_code(code));
        }
        assert_eq!(ProtocolError::too_big("x").to_string(), "x (1009)");
    }
}
