//! GRIP WebSocket control messages: the JSON after `c:` in a backend's text message.
#![no_main]

use holdfast::grip::TIMEOUT_SECS_MAX;
use holdfast::publish::WsType;
use holdfast::websocket::control::{
    parse_control, ControlError, ControlMessage, CONTROL_MESSAGE_MAX, FILTERS_MAX,
};
use libfuzzer_sys::fuzz_target;

/// The message could go out as a frame: text is UTF-8, ping/pong content fits a control frame.
fn sendable(kind: WsType, content: &[u8]) -> bool {
    match kind {
        WsType::Text => std::str::from_utf8(content).is_ok(),
        WsType::Ping | WsType::Pong => content.len() <= 125,
        WsType::Binary => true,
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_control(data) {
        Ok(msg) => {
            assert!(data.len() <= CONTROL_MESSAGE_MAX);
            match msg {
                ControlMessage::Subscribe { channel, filters } => {
                    assert!(!channel.is_empty() && !channel.chars().any(char::is_control));
                    assert!(filters.len() <= FILTERS_MAX);
                }
                ControlMessage::Unsubscribe { channel } => assert!(!channel.is_empty()),
                ControlMessage::Session { id } => assert!(id.is_none_or(|id| !id.is_empty())),
                ControlMessage::SetMeta { name, .. } => assert!(!name.is_empty()),
                ControlMessage::KeepAlive(Some(k)) => {
                    assert!((1..=TIMEOUT_SECS_MAX).contains(&k.timeout_secs));
                    assert!(sendable(k.message_type, &k.content));
                }
                ControlMessage::SendDelayed { content, message_type, timeout_secs } => {
                    assert!((1..=TIMEOUT_SECS_MAX).contains(&timeout_secs));
                    assert!(sendable(message_type, &content));
                }
                ControlMessage::KeepAlive(None)
                | ControlMessage::Detach
                | ControlMessage::FlushDelayed
                | ControlMessage::Unknown(_) => {}
            }
        }
        Err(e) => {
            assert!(!e.to_string().contains('\n'));
            assert_eq!(e.close_code().is_some(), matches!(e, ControlError::TooManyFilters { .. }));
            assert_eq!(matches!(e, ControlError::TooLarge), data.len() > CONTROL_MESSAGE_MAX);
        }
    }
});
