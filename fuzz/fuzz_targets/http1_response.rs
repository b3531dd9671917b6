//! Response head parsing and body framing per request method: what an origin controls.
#![no_main]

use holdfast::http1::{parse_response_head, response_body_kind, BodyKind, HeadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits::default();
    let Ok(parsed) = parse_response_head(data, &limits) else {
        return;
    };
    let Some((head, consumed)) = parsed else {
        assert!(data.len() < limits.max_head);
        return;
    };
    assert!(consumed <= data.len() && consumed <= limits.max_head);
    assert!((100..=999).contains(&head.code) && head.headers.len() <= limits.max_headers);
    assert_eq!(parse_response_head(&data[..consumed], &limits), Ok(Some((head.clone(), consumed))));
    let _ = head.keep_alive();
    // RFC 9112 6.3 items 1-2: these never carry a body, whatever the fields say.
    let bodiless = head.code < 200 || head.code == 204 || head.code == 304;
    for method in ["GET", "HEAD", "POST"] {
        let kind = response_body_kind(&head, method);
        if method == "HEAD" || bodiless {
            assert_eq!(kind, Ok(BodyKind::None));
        }
    }
});
