//! WebSocket-over-HTTP event bodies (`application/websocket-events`), as a backend sends them.
#![no_main]

use holdfast::websocket::events::{decode_close, encode_event, parse_events, EventKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_events(data) {
        Ok(events) => {
            // Every event's content is a piece of the body.
            let total: usize = events.iter().map(|e| e.content.len()).sum();
            assert!(total <= data.len());
            // Re-encoding is canonical and parses back to the same events.
            let mut again = Vec::new();
            for e in &events {
                encode_event(&mut again, e.kind, e.content);
            }
            assert_eq!(parse_events(&again).as_deref(), Ok(&events[..]));
            for e in events.iter().filter(|e| e.kind == EventKind::Close) {
                if let Ok(Some((code, reason))) = decode_close(e.content) {
                    assert_eq!(2 + reason.len(), e.content.len());
                    assert_eq!(code.to_be_bytes(), [e.content[0], e.content[1]]);
                }
            }
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
