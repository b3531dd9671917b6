//! GRIP WebSocket control messages (spec 6.3): a backend's text message `c:` followed by a JSON object asks
//! holdfast to subscribe, set meta, keep the client alive and so on. This module turns the JSON (the text
//! after `c:`) into a [`ControlMessage`]; acting on it is the session's business.
//!
//! The input is capped at [`CONTROL_MESSAGE_MAX`] bytes before serde_json sees it, and serde_json's own
//! nesting limit bounds the recursion. Errors are one line, in Pushpin's wording where it has one
//! ("grip control object contains 'x' with wrong type"); the session logs them and ignores the message,
//! except [`ControlError::TooManyFilters`], which Pushpin answers by closing the client with 1011.
//!
//! Decisions where Pushpin is loose or silent:
//! * An unknown `type` is not an error but [`ControlMessage::Unknown`], which the caller ignores with a
//!   debug log (spec 6.3). Pushpin's own parser fails on it, to the same effect.
//! * JSON `null` counts as an absent field, as in the instruct and publish parsers.
//! * Filter names are kept as given and not checked against the known ones: delivery ignores names it does
//!   not know (spec 5.3), as `proxy::hold` does for HTTP. Only their number is limited ([`FILTERS_MAX`]).
//! * A channel name must be non-empty and free of control characters (instruct refuses those too).
//! * `content-bin` wins over `content` when both are given (as in `ws-message`). It is standard base64,
//!   padding optional, as for instruct bodies; invalid base64 is an error where Qt dropped the garbage.
//! * Without `message-type`, `content-bin` is sent as a binary message and `content` as text. Pushpin
//!   intends that but, through a defaulting slip, sends both as text; a text frame carrying bytes that are
//!   not UTF-8 would make the client fail the connection, so the intent is followed here.
//! * Text content must be UTF-8 (it can only fail to be through `content-bin`), and ping/pong content must
//!   fit a control frame (125 bytes, RFC 6455 5.5). Both are checked here so that the frame writer never
//!   gets a message it cannot send.
//! * `timeout` is whole seconds for both `keep-alive` and `send-delayed` (Pushpin multiplies by 1000). A
//!   missing or zero timeout takes the default; a negative, fractional or non-number one is an error, and so
//!   is one above [`TIMEOUT_SECS_MAX`] (Pushpin's `int`). Every field present is checked, even in a
//!   keep-alive without content that only disables the keep-alive (Pushpin skips `timeout` then).
//! * `keep-alive` `mode`: `interval` selects interval mode and any other string idle mode, as in Pushpin.
//! * `keep-alive` with empty content (`"content": ""`) is a keep-alive of empty messages; only a missing
//!   content disables it. `send-delayed` without content sends an empty message, as Pushpin does.
//! * `session` with an empty `id` is the same as no `id`: it clears the session (spec 6.3).

use std::fmt;

use serde_json::{Map, Value};

use crate::grip::{decode_base64, KeepAliveMode, TIMEOUT_SECS_MAX};
use crate::publish::item::WS_CONTROL_PAYLOAD_MAX;
use crate::publish::WsType;

/// Largest control message (the JSON after `c:`) parsed; longer ones are refused unread.
pub const CONTROL_MESSAGE_MAX: usize = 65_536;
/// Most filters one `subscribe` may list (spec 5.3, 7.4); more is [`ControlError::TooManyFilters`].
pub const FILTERS_MAX: usize = 5;
/// `keep-alive` period when `timeout` is missing or zero (seconds).
pub const DEFAULT_KEEP_ALIVE_SECS: u64 = 55;
/// `send-delayed` delay when `timeout` is missing or zero (seconds).
pub const DEFAULT_SEND_DELAYED_SECS: u64 = 1;

/// Close code for a subscribe with too many filters (RFC 6455 7.4.1 "internal error", as Pushpin sends).
pub const TOO_MANY_FILTERS_CLOSE_CODE: u16 = 1011;

/// A keep-alive to set up: send `content` as a `message_type` message every `timeout_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsKeepAlive {
    pub content: Vec<u8>,
    pub message_type: WsType,
    /// At least 1.
    pub timeout_secs: u64,
    /// `Idle`: after `timeout_secs` without anything sent to the client. `Interval`: every `timeout_secs`.
    pub mode: KeepAliveMode,
}

/// One parsed control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    /// Subscribe to `channel` (the caller applies the route's prefix and the subscription limit).
    Subscribe {
        channel: String,
        /// At most [`FILTERS_MAX`], names as given.
        filters: Vec<String>,
    },
    Unsubscribe {
        channel: String,
    },
    /// Stop relaying client messages to the backend and close the backend side; keep delivering publishes.
    Detach,
    /// Set the session id (`Some`, non-empty) or clear it (`None`).
    Session {
        id: Option<String>,
    },
    /// Set subscription meta `name` (non-empty) to `value`, or delete it when `value` is `None`.
    SetMeta {
        name: String,
        value: Option<String>,
    },
    /// Start or replace the keep-alive (`Some`), or stop it (`None`: the message had no content).
    KeepAlive(Option<WsKeepAlive>),
    /// Send `content` after `timeout_secs` (at least 1) unless replaced or flushed first.
    SendDelayed {
        content: Vec<u8>,
        message_type: WsType,
        timeout_secs: u64,
    },
    /// Send the pending delayed message now.
    FlushDelayed,
    /// A `type` this module does not know; the caller ignores it (spec 6.3).
    Unknown(String),
}

/// Why a control message is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// Longer than [`CONTROL_MESSAGE_MAX`].
    TooLarge,
    /// Not JSON, not an object, or a field missing or of the wrong type or value; one line.
    Invalid(String),
    /// A `subscribe` listing more than [`FILTERS_MAX`] filters: the session closes the client with
    /// [`TOO_MANY_FILTERS_CLOSE_CODE`].
    TooManyFilters { channel: String },
}

impl ControlError {
    /// The close code the session answers this error with, when it is not simply ignored.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            ControlError::TooManyFilters { .. } => Some(TOO_MANY_FILTERS_CLOSE_CODE),
            ControlError::TooLarge | ControlError::Invalid(_) => None,
        }
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::TooLarge => write!(
                f,
                "grip control message exceeds {CONTROL_MESSAGE_MAX} bytes"
            ),
            ControlError::Invalid(reason) => f.write_str(reason),
            ControlError::TooManyFilters { channel } => write!(
                f,
                "too many filters for channel '{}' (at most {FILTERS_MAX})",
                channel.escape_debug()
            ),
        }
    }
}

impl std::error::Error for ControlError {}

/// The object's name in error messages, as Pushpin words them.
const OBJ: &str = "grip control object";

/// Parse the JSON of a control message (the text after `c:`).
pub fn parse_control(json: &[u8]) -> Result<ControlMessage, ControlError> {
    if json.len() > CONTROL_MESSAGE_MAX {
        return Err(ControlError::TooLarge);
    }
    let doc: Value = serde_json::from_slice(json)
        .map_err(|_| invalid("grip control message is not valid JSON"))?;
    let Value::Object(obj) = doc else {
        return Err(invalid("grip control packet is not an object"));
    };
    let kind = required_string(&obj, "type")?;
    match kind {
        "subscribe" => {
            let channel = channel(&obj)?;
            let filters = filters(&obj)?;
            if filters.len() > FILTERS_MAX {
                return Err(ControlError::TooManyFilters { channel });
            }
            Ok(ControlMessage::Subscribe { channel, filters })
        }
        "unsubscribe" => Ok(ControlMessage::Unsubscribe {
            channel: channel(&obj)?,
        }),
        "detach" => Ok(ControlMessage::Detach),
        "session" => Ok(ControlMessage::Session {
            id: optional_string(&obj, "id")?
                .filter(|id| !id.is_empty())
                .map(str::to_string),
        }),
        "set-meta" => {
            let name = required_string(&obj, "name")?;
            if name.is_empty() {
                return Err(invalid_value("name"));
            }
            Ok(ControlMessage::SetMeta {
                name: name.to_string(),
                value: optional_string(&obj, "value")?.map(str::to_string),
            })
        }
        "keep-alive" => keep_alive(&obj),
        "send-delayed" => {
            let content = content(&obj)?;
            let message_type = message_type(&obj, content.as_ref())?;
            let timeout_secs = timeout_secs(&obj, DEFAULT_SEND_DELAYED_SECS)?;
            Ok(ControlMessage::SendDelayed {
                content: content.map(|c| c.bytes).unwrap_or_default(),
                message_type,
                timeout_secs,
            })
        }
        "flush-delayed" => Ok(ControlMessage::FlushDelayed),
        other => Ok(ControlMessage::Unknown(other.to_string())),
    }
}

fn keep_alive(obj: &Map<String, Value>) -> Result<ControlMessage, ControlError> {
    let content = content(obj)?;
    let message_type = message_type(obj, content.as_ref())?;
    let timeout_secs = timeout_secs(obj, DEFAULT_KEEP_ALIVE_SECS)?;
    let mode = match optional_string(obj, "mode")? {
        Some("interval") => KeepAliveMode::Interval,
        _ => KeepAliveMode::Idle,
    };
    Ok(ControlMessage::KeepAlive(content.map(|c| WsKeepAlive {
        content: c.bytes,
        message_type,
        timeout_secs,
        mode,
    })))
}

fn channel(obj: &Map<String, Value>) -> Result<String, ControlError> {
    let channel = required_string(obj, "channel")?;
    if channel.is_empty() || channel.chars().any(char::is_control) {
        return Err(invalid_value("channel"));
    }
    Ok(channel.to_string())
}

fn filters(obj: &Map<String, Value>) -> Result<Vec<String>, ControlError> {
    match member(obj, "filters") {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|f| match f {
                Value::String(f) => Ok(f.clone()),
                _ => Err(invalid("filters contains value with wrong type")),
            })
            .collect(),
        Some(_) => Err(wrong_type("filters")),
    }
}

/// Message content and the field it came from.
struct Content {
    bytes: Vec<u8>,
    key: &'static str,
}

/// `content-bin` (base64) if present, else `content`; `None` when neither is.
fn content(obj: &Map<String, Value>) -> Result<Option<Content>, ControlError> {
    if let Some(bin) = optional_string(obj, "content-bin")? {
        let bytes = decode_base64(bin).ok_or_else(|| invalid_value("content-bin"))?;
        return Ok(Some(Content {
            bytes,
            key: "content-bin",
        }));
    }
    Ok(optional_string(obj, "content")?.map(|text| Content {
        bytes: text.as_bytes().to_vec(),
        key: "content",
    }))
}

/// `message-type`, defaulting by where the content came from, checked against the content it will carry.
fn message_type(
    obj: &Map<String, Value>,
    content: Option<&Content>,
) -> Result<WsType, ControlError> {
    let kind = match optional_string(obj, "message-type")? {
        None if content.is_some_and(|c| c.key == "content-bin") => WsType::Binary,
        None => WsType::Text,
        Some("text") => WsType::Text,
        Some("binary") => WsType::Binary,
        Some("ping") => WsType::Ping,
        Some("pong") => WsType::Pong,
        Some(_) => {
            return Err(invalid(format!(
                "{OBJ} contains 'message-type' with unknown value"
            )))
        }
    };
    if let Some(c) = content {
        let fits = match kind {
            // RFC 6455 5.6: "The "Payload data" of text frames ... MUST be encoded as UTF-8."
            WsType::Text => std::str::from_utf8(&c.bytes).is_ok(),
            // RFC 6455 5.5: "All control frames MUST have a payload length of 125 bytes or less".
            WsType::Ping | WsType::Pong => c.bytes.len() <= WS_CONTROL_PAYLOAD_MAX,
            WsType::Binary => true,
        };
        if !fits {
            return Err(invalid_value(c.key));
        }
    }
    Ok(kind)
}

/// `timeout` in whole seconds; missing or zero gives `default`.
fn timeout_secs(obj: &Map<String, Value>, default: u64) -> Result<u64, ControlError> {
    let Some(v) = member(obj, "timeout") else {
        return Ok(default);
    };
    let Value::Number(n) = v else {
        return Err(wrong_type("timeout"));
    };
    // Integral floats (`3.0`) are accepted, as serde_json gives them for some encoders' output.
    let secs = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=TIMEOUT_SECS_MAX as f64).contains(&f) => {
            Some(f as u64)
        }
        _ => None,
    };
    match secs {
        Some(0) => Ok(default),
        Some(s) if s <= TIMEOUT_SECS_MAX => Ok(s),
        _ => Err(invalid_value("timeout")),
    }
}

/// A member, with JSON `null` counted as absent.
fn member<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn optional_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ControlError> {
    match member(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(key)),
    }
}

fn required_string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, ControlError> {
    optional_string(obj, key)?.ok_or_else(|| invalid(format!("{OBJ} does not contain '{key}'")))
}

fn invalid(reason: impl Into<String>) -> ControlError {
    ControlError::Invalid(reason.into())
}

fn wrong_type(key: &str) -> ControlError {
    invalid(format!("{OBJ} contains '{key}' with wrong type"))
}

fn invalid_value(key: &str) -> ControlError {
    invalid(format!("{OBJ} contains '{key}' with invalid value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift64 as Rng;
    use ControlMessage as M;

    fn s(v: &str) -> String {
        v.to_string()
    }

    fn ka(content: &[u8], message_type: WsType, timeout_secs: u64, mode: KeepAliveMode) -> M {
        M::KeepAlive(Some(WsKeepAlive {
            content: content.to_vec(),
            message_type,
            timeout_secs,
            mode,
        }))
    }

    fn delayed(content: &[u8], message_type: WsType, timeout_secs: u64) -> M {
        M::SendDelayed {
            content: content.to_vec(),
            message_type,
            timeout_secs,
        }
    }

    #[test]
    fn every_variant_and_default() {
        use KeepAliveMode::{Idle, Interval};
        use WsType::{Binary, Ping, Pong, Text};
        let cases: Vec<(&str, M)> = vec![
            (
                r#"{"type":"subscribe","channel":"room"}"#,
                M::Subscribe {
                    channel: s("room"),
                    filters: vec![],
                },
            ),
            (
                r#"{"type":"subscribe","channel":"c","filters":["skip-self","x-unknown"]}"#,
                M::Subscribe {
                    channel: s("c"),
                    filters: vec![s("skip-self"), s("x-unknown")],
                },
            ),
            (
                r#"{"type":"subscribe","channel":"c","filters":["a","b","c","d","e"]}"#,
                M::Subscribe {
                    channel: s("c"),
                    filters: ["a", "b", "c", "d", "e"].map(s).to_vec(),
                },
            ),
            (
                r#"{"type":"subscribe","channel":"c","filters":null}"#,
                M::Subscribe {
                    channel: s("c"),
                    filters: vec![],
                },
            ),
            (
                r#"{"type":"unsubscribe","channel":"room"}"#,
                M::Unsubscribe { channel: s("room") },
            ),
            (r#"{"type":"detach"}"#, M::Detach),
            (r#"{"type":"detach","extra":[1,{}]}"#, M::Detach),
            (
                r#"{"type":"session","id":"s1"}"#,
                M::Session { id: Some(s("s1")) },
            ),
            (r#"{"type":"session","id":""}"#, M::Session { id: None }),
            (r#"{"type":"session"}"#, M::Session { id: None }),
            (
                r#"{"type":"set-meta","name":"user","value":"alice"}"#,
                M::SetMeta {
                    name: s("user"),
                    value: Some(s("alice")),
                },
            ),
            (
                r#"{"type":"set-meta","name":"user","value":""}"#,
                M::SetMeta {
                    name: s("user"),
                    value: Some(s("")),
                },
            ),
            (
                r#"{"type":"set-meta","name":"user"}"#,
                M::SetMeta {
                    name: s("user"),
                    value: None,
                },
            ),
            (
                r#"{"type":"set-meta","name":"user","value":null}"#,
                M::SetMeta {
                    name: s("user"),
                    value: None,
                },
            ),
            // The spec's live example, and the defaults.
            (
                r#"{"type":"keep-alive","content":"pingka","timeout":3}"#,
                ka(b"pingka", Text, 3, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"x"}"#,
                ka(b"x", Text, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"x","timeout":0}"#,
                ka(b"x", Text, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"x","timeout":7.0}"#,
                ka(b"x", Text, 7, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":""}"#,
                ka(b"", Text, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"x","mode":"interval"}"#,
                ka(b"x", Text, 55, Interval),
            ),
            (
                r#"{"type":"keep-alive","content":"x","mode":"idle"}"#,
                ka(b"x", Text, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"x","mode":"other"}"#,
                ka(b"x", Text, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content-bin":"AAE="}"#,
                ka(b"\x00\x01", Binary, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content-bin":"AAE"}"#,
                ka(b"\x00\x01", Binary, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content-bin":"aGk=","content":"ignored","message-type":"text"}"#,
                ka(b"hi", Text, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"p","message-type":"ping"}"#,
                ka(b"p", Ping, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"p","message-type":"pong"}"#,
                ka(b"p", Pong, 55, Idle),
            ),
            (
                r#"{"type":"keep-alive","content":"b","message-type":"binary"}"#,
                ka(b"b", Binary, 55, Idle),
            ),
            // No content: disable.
            (r#"{"type":"keep-alive"}"#, M::KeepAlive(None)),
            (
                r#"{"type":"keep-alive","content":null,"timeout":9,"mode":"interval"}"#,
                M::KeepAlive(None),
            ),
            (
                r#"{"type":"send-delayed","content":"later"}"#,
                delayed(b"later", Text, 1),
            ),
            (
                r#"{"type":"send-delayed","content":"later","timeout":30}"#,
                delayed(b"later", Text, 30),
            ),
            (
                r#"{"type":"send-delayed","content-bin":"/w==","timeout":0}"#,
                delayed(b"\xff", Binary, 1),
            ),
            (
                r#"{"type":"send-delayed","message-type":"ping"}"#,
                delayed(b"", Ping, 1),
            ),
            (r#"{"type":"send-delayed"}"#, delayed(b"", Text, 1)),
            (r#"{"type":"flush-delayed"}"#, M::FlushDelayed),
            // Unknown types are not errors.
            (
                r#"{"type":"auto-respond","match-content":"x"}"#,
                M::Unknown(s("auto-respond")),
            ),
            (r#"{"type":""}"#, M::Unknown(s(""))),
            (
                r#"{"type":"Subscribe","channel":"c"}"#,
                M::Unknown(s("Subscribe")),
            ),
            // Whitespace and a later duplicate key (serde_json keeps the last).
            (" {\"type\" : \"detach\" }\n", M::Detach),
            (r#"{"type":"subscribe","type":"detach"}"#, M::Detach),
        ];
        for (json, want) in cases {
            assert_eq!(parse_control(json.as_bytes()), Ok(want), "{json}");
        }
    }

    #[test]
    fn errors() {
        let obj = |rest: &str| format!("grip control object {rest}");
        let ping = |n: usize| {
            let content = "p".repeat(n);
            format!(r#"{{"type":"keep-alive","content":"{content}","message-type":"ping"}}"#)
        };
        let ping_126 = ping(126);
        assert!(matches!(
            parse_control(ping(125).as_bytes()),
            Ok(M::KeepAlive(Some(_)))
        ));
        let cases: Vec<(&str, String)> = vec![
            ("", s("grip control message is not valid JSON")),
            ("{", s("grip control message is not valid JSON")),
            (
                r#"{"type":"detach"} x"#,
                s("grip control message is not valid JSON"),
            ),
            ("[]", s("grip control packet is not an object")),
            (r#""detach""#, s("grip control packet is not an object")),
            ("null", s("grip control packet is not an object")),
            ("{}", obj("does not contain 'type'")),
            (r#"{"type":null}"#, obj("does not contain 'type'")),
            (r#"{"type":1}"#, obj("contains 'type' with wrong type")),
            (r#"{"type":"subscribe"}"#, obj("does not contain 'channel'")),
            (
                r#"{"type":"subscribe","channel":""}"#,
                obj("contains 'channel' with invalid value"),
            ),
            (
                r#"{"type":"subscribe","channel":"a\nb"}"#,
                obj("contains 'channel' with invalid value"),
            ),
            (
                r#"{"type":"subscribe","channel":7}"#,
                obj("contains 'channel' with wrong type"),
            ),
            (
                r#"{"type":"subscribe","channel":"c","filters":"skip-self"}"#,
                obj("contains 'filters' with wrong type"),
            ),
            (
                r#"{"type":"subscribe","channel":"c","filters":[1]}"#,
                s("filters contains value with wrong type"),
            ),
            (
                r#"{"type":"unsubscribe"}"#,
                obj("does not contain 'channel'"),
            ),
            (
                r#"{"type":"unsubscribe","channel":""}"#,
                obj("contains 'channel' with invalid value"),
            ),
            (
                r#"{"type":"session","id":5}"#,
                obj("contains 'id' with wrong type"),
            ),
            (
                r#"{"type":"set-meta","value":"v"}"#,
                obj("does not contain 'name'"),
            ),
            (
                r#"{"type":"set-meta","name":""}"#,
                obj("contains 'name' with invalid value"),
            ),
            (
                r#"{"type":"set-meta","name":"n","value":1}"#,
                obj("contains 'value' with wrong type"),
            ),
            (
                r#"{"type":"keep-alive","content":1}"#,
                obj("contains 'content' with wrong type"),
            ),
            (
                r#"{"type":"keep-alive","content-bin":"!!"}"#,
                obj("contains 'content-bin' with invalid value"),
            ),
            (
                r#"{"type":"keep-alive","content-bin":false}"#,
                obj("contains 'content-bin' with wrong type"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","message-type":"close"}"#,
                obj("contains 'message-type' with unknown value"),
            ),
            (
                r#"{"type":"keep-alive","message-type":"close"}"#,
                obj("contains 'message-type' with unknown value"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","message-type":1}"#,
                obj("contains 'message-type' with wrong type"),
            ),
            (&ping_126, obj("contains 'content' with invalid value")),
            // Not UTF-8 but sent as text.
            (
                r#"{"type":"keep-alive","content-bin":"/w==","message-type":"text"}"#,
                obj("contains 'content-bin' with invalid value"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","timeout":"3"}"#,
                obj("contains 'timeout' with wrong type"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","timeout":-1}"#,
                obj("contains 'timeout' with invalid value"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","timeout":1.5}"#,
                obj("contains 'timeout' with invalid value"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","timeout":2147483648}"#,
                obj("contains 'timeout' with invalid value"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","timeout":1e300}"#,
                obj("contains 'timeout' with invalid value"),
            ),
            (
                r#"{"type":"keep-alive","timeout":true}"#,
                obj("contains 'timeout' with wrong type"),
            ),
            (
                r#"{"type":"keep-alive","content":"x","mode":1}"#,
                obj("contains 'mode' with wrong type"),
            ),
            (
                r#"{"type":"send-delayed","content":"x","timeout":-5}"#,
                obj("contains 'timeout' with invalid value"),
            ),
            (
                r#"{"type":"send-delayed","content":["x"]}"#,
                obj("contains 'content' with wrong type"),
            ),
        ];
        for (json, want) in cases {
            let got = parse_control(json.as_bytes());
            assert_eq!(got, Err(ControlError::Invalid(want.clone())), "{json}");
            assert!(!want.contains('\n'));
            assert_eq!(got.err().and_then(|e| e.close_code()), None);
        }
    }

    #[test]
    fn too_many_filters_and_too_large() {
        let json = r#"{"type":"subscribe","channel":"c\"h","filters":["a","b","c","d","e","f"]}"#;
        let err = parse_control(json.as_bytes()).expect_err("six filters");
        assert_eq!(err, ControlError::TooManyFilters { channel: s("c\"h") });
        assert_eq!(err.close_code(), Some(1011));
        assert_eq!(
            err.to_string(),
            "too many filters for channel 'c\\\"h' (at most 5)"
        );

        let pad = |n: usize| format!(r#"{{"type":"detach","pad":"{}"}}"#, "x".repeat(n));
        let overhead = pad(0).len();
        let fits = pad(CONTROL_MESSAGE_MAX - overhead);
        assert_eq!(fits.len(), CONTROL_MESSAGE_MAX);
        assert_eq!(parse_control(fits.as_bytes()), Ok(M::Detach));
        let over = pad(CONTROL_MESSAGE_MAX - overhead + 1);
        assert_eq!(parse_control(over.as_bytes()), Err(ControlError::TooLarge));
        // Refused before parsing: garbage of that size gives the same error.
        assert_eq!(
            parse_control(&vec![b'['; CONTROL_MESSAGE_MAX + 1]),
            Err(ControlError::TooLarge)
        );
        assert!(!ControlError::TooLarge.to_string().contains('\n'));
    }

    /// A random JSON value drawn from the fields and values control messages use, nested a little.
    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        const STRINGS: [&str; 16] = [
            "subscribe",
            "unsubscribe",
            "detach",
            "session",
            "set-meta",
            "keep-alive",
            "send-delayed",
            "flush-delayed",
            "",
            "text",
            "binary",
            "ping",
            "interval",
            "aGk=",
            "!",
            "a\u{1}",
        ];
        match rng.below(if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => Value::from(rng.next() as i64 >> rng.below(64)),
            3 => Value::from(rng.below(1000) as f64 / 4.0),
            4 => Value::from(STRINGS[rng.below(STRINGS.len())]),
            5 => Value::Array(
                (0..rng.below(8))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(random_object(rng, depth + 1)),
        }
    }

    fn random_object(rng: &mut Rng, depth: usize) -> Map<String, Value> {
        const KEYS: [&str; 12] = [
            "type",
            "channel",
            "filters",
            "id",
            "name",
            "value",
            "content",
            "content-bin",
            "message-type",
            "timeout",
            "mode",
            "other",
        ];
        (0..rng.below(6))
            .map(|_| {
                (
                    KEYS[rng.below(KEYS.len())].to_string(),
                    random_value(rng, depth),
                )
            })
            .collect()
    }

    #[test]
    fn random_messages_keep_the_invariants() {
        let mut rng = Rng(0xc0ff_ee00_1234_5678);
        let mut accepted = 0;
        for i in 0..20_000 {
            let mut obj = random_object(&mut rng, 0);
            if i % 2 == 0 {
                // Half get a known type, so the per-type checks run.
                let types = [
                    "subscribe",
                    "keep-alive",
                    "send-delayed",
                    "set-meta",
                    "session",
                ];
                obj.insert(
                    "type".to_string(),
                    Value::from(types[rng.below(types.len())]),
                );
            }
            let mut json = serde_json::to_vec(&Value::Object(obj)).expect("serializes");
            // Sometimes damage the text, so the JSON error path runs too.
            if rng.below(8) == 0 && !json.is_empty() {
                let at = rng.below(json.len());
                json[at] = rng.next() as u8;
            }
            match parse_control(&json) {
                Ok(msg) => {
                    accepted += 1;
                    check_invariants(&msg);
                }
                Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
            }
        }
        assert!(accepted > 1000, "only {accepted} accepted");
    }

    fn check_invariants(msg: &ControlMessage) {
        let fits = |kind: WsType, content: &[u8]| match kind {
            WsType::Text => std::str::from_utf8(content).is_ok(),
            WsType::Ping | WsType::Pong => content.len() <= WS_CONTROL_PAYLOAD_MAX,
            WsType::Binary => true,
        };
        match msg {
            M::Subscribe { channel, filters } => {
                assert!(!channel.is_empty() && filters.len() <= FILTERS_MAX);
            }
            M::Unsubscribe { channel } => assert!(!channel.is_empty()),
            M::Session { id } => assert!(id.as_ref().is_none_or(|id| !id.is_empty())),
            M::SetMeta { name, .. } => assert!(!name.is_empty()),
            M::KeepAlive(Some(k)) => {
                assert!((1..=TIMEOUT_SECS_MAX).contains(&k.timeout_secs));
                assert!(fits(k.message_type, &k.content));
            }
            M::SendDelayed {
                content,
                message_type,
                timeout_secs,
            } => {
                assert!((1..=TIMEOUT_SECS_MAX).contains(timeout_secs));
                assert!(fits(*message_type, content));
            }
            M::KeepAlive(None) | M::Detach | M::FlushDelayed | M::Unknown(_) => {}
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        const ALPHABET: &[u8] = br#"{}[]:,"\ typechanelsubcrik-ontbi0123456789.eE-+nulltruefalse"#;
        let mut rng = Rng(0xfeed_f00d);
        for _ in 0..20_000 {
            let len = rng.below(80);
            let bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect();
            if let Ok(msg) = parse_control(&bytes) {
                check_invariants(&msg);
            }
        }
    }
}
