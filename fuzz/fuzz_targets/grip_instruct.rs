//! GRIP instructions from a backend: Grip-* headers (values from the input) and an instruct body.
#![no_main]

use holdfast::grip::{parse_instruct, InstructLimits};
use holdfast::http1::{is_valid_header_value, Header};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 12] = [
    "Grip-Hold", "Grip-Channel", "Grip-Timeout", "Grip-Keep-Alive", "Grip-Set-Meta", "Grip-Status",
    "Grip-Link", "Grip-Expose-Headers", "Content-Type", "X-Other", "Content-Length", "grip-channel",
];

fuzz_target!(|data: &[u8]| {
    // Layout: [code byte] then NUL-separated "<name index byte><value>" fields, then 0xff, then the body.
    let (head, body) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let code = if head.first().is_some_and(|b| b % 2 == 0) { 200 } else { 202 };
    let headers: Vec<Header> = head
        .get(1..)
        .unwrap_or(&[])
        .split(|&b| b == 0)
        .filter_map(|f| f.split_first())
        // Only values the HTTP parser can produce: a backend's headers have been through it.
        .filter(|(_, v)| is_valid_header_value(v))
        .map(|(&n, v)| Header::new(NAMES[n as usize % NAMES.len()], v))
        .collect();
    let limits = InstructLimits { subscription_max: 20, filters_max: 5 };
    match parse_instruct(code, "OK", &headers, body, &limits) {
        Ok(inst) => {
            assert!(inst.code <= 999);
            assert!(inst.headers.iter().all(|h| !h.name.to_ascii_lowercase().starts_with("grip-")));
            assert!(inst.headers.iter().all(|h| !h.value.iter().any(|&b| b == b'\r' || b == b'\n')));
            if let Some(hold) = &inst.hold {
                assert!(hold.channels.len() <= limits.subscription_max);
                assert!(hold.channels.iter().all(|c| !c.name.is_empty() && c.filters.len() <= limits.filters_max));
                assert!(hold.keep_alive.as_ref().is_none_or(|k| !k.data.is_empty()));
            }
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
