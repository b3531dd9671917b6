//! The command socket's ZRPC requests: hostile tnetstrings from any client that can reach the port.
//! Every frame must decode to a call or a failure with a known condition, and the reply for it must be a
//! tnetstring that decodes again and echoes the id.
#![no_main]

use holdfast::publish::{tnetstring, Value};
use holdfast::zmq_bridge::command::{failure, parse_request, success};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req = parse_request(data);
    let reply = match &req.call {
        Ok(_) => success(req.id.as_ref(), Value::Null),
        Err(f) => {
            assert!(
                ["bad-request", "method-not-found"].contains(&f.condition),
                "unexpected condition {}",
                f.condition
            );
            failure(req.id.as_ref(), f)
        }
    };
    let back = tnetstring::decode_all(&reply).expect("a reply must decode");
    assert_eq!(back.get("id"), req.id.as_ref());
    assert_eq!(back.get("success"), Some(&Value::Bool(req.call.is_ok())));
});
