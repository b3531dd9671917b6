//! Request head parsing and the framing decision: the first bytes any client controls.
#![no_main]

use holdfast::http1::{parse_request_head, request_body_kind, HeadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits::default();
    match parse_request_head(data, &limits) {
        Ok(Some((head, consumed))) => {
            assert!(consumed <= data.len() && consumed <= limits.max_head);
            assert!(head.target.len() <= limits.max_uri && head.headers.len() <= limits.max_headers);
            // The head ends at `consumed`: what follows (body, next request) must not change it.
            let again = parse_request_head(&data[..consumed], &limits);
            assert_eq!(again, Ok(Some((head.clone(), consumed))));
            let _ = (head.keep_alive(), head.expects_continue());
            let _ = request_body_kind(&head);
        }
        // Incomplete is only allowed while the head could still fit.
        Ok(None) => assert!(data.len() < limits.max_head),
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
