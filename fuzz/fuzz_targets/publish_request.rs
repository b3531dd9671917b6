//! The control API's publish body and the ZeroMQ publish frame: JSON and tnetstring from publishers.
#![no_main]

use holdfast::publish::value::Value;
use holdfast::publish::{parse_publish_body, parse_zmq_frame, tnetstring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_publish_body(data) {
        Ok(items) => {
            for item in &items {
                assert!(!item.channel.is_empty());
                assert!(item.http_response.is_some() || item.http_stream.is_some() || item.ws_message.is_some());
                if let Some(r) = &item.http_response {
                    assert!(r.code <= 999);
                    assert!(r.headers.iter().all(|(_, v)| !v.iter().any(|&b| b == b'\r' || b == b'\n')));
                }
            }
        }
        // Every 400 text is one line, as the API answers with it.
        Err(e) => assert!(!e.contains('\n') && (e.starts_with("Invalid format") || e.starts_with("Body is not"))),
    }
    // The direct JSON parse agrees with serde_json's own tree converted: same value, same refusals.
    let reference = serde_json::from_slice::<serde_json::Value>(data).map(|v| Value::from_json(&v));
    assert_eq!(Value::parse_json(data).ok(), reference.ok());
    let _ = parse_zmq_frame(data, None);
    let _ = parse_zmq_frame(data, Some("chan"));
    // tnetstring: whatever decodes re-encodes to something that decodes to the same value, in full.
    if let Ok((value, used)) = tnetstring::decode(data) {
        assert!(used <= data.len());
        let mut out = Vec::new();
        tnetstring::encode(&value, &mut out);
        assert_eq!(tnetstring::decode(&out), Ok((value, out.len())));
    }
});
