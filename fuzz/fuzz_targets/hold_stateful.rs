//! A held connection and the worker's channel index driven by random operations: deliveries, time, slow
//! client writes, shutdown; subscribe, unsubscribe, close. Checks bounds, well-formed output, and that no
//! subscription survives its connection.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast::buf::OutBuf;
use holdfast::grip::{parse_instruct, ConnRef, InstructLimits, Subscriptions};
use holdfast::http1::{BodyDecoder, BodyKind, ChunkLimits, Header, Version};
use holdfast::proxy::hold::{Hold, Outcome, HELD_QUEUE_MAX};
use holdfast::publish::{parse_publish_body, Item};
use libfuzzer_sys::fuzz_target;

const ITEMS: &str = r#"{"items":[
 {"channel":"a","formats":{"http-stream":{"content":"one\n"},"http-response":{"body":"r\n"}}},
 {"channel":"b","meta":{"sender":"me"},"formats":{"http-stream":{"content":"from me\n"}}},
 {"channel":"a","formats":{"http-stream":{"action":"close"}}},
 {"channel":"a","formats":{"http-response":{"action":"hint"}}},
 {"channel":"b","formats":{"http-stream":{"content":"%(user)s\n","content-filters":["var-subst"]}}},
 {"channel":"a","formats":{"http-response":{"code":203,"headers":{"X-P":"1"},"body":"pub\n"}}}]}"#;

fn items() -> Vec<Arc<Item>> {
    parse_publish_body(ITEMS.as_bytes()).unwrap().into_iter().map(Arc::new).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, ops)) = data.split_first() else { return };
    let items = items();
    let stream = mode & 1 == 0;
    let headers = vec![
        Header::new("Grip-Hold", if stream { b"stream" } else { b"response" }),
        Header::new("Grip-Channel", b"a, b; filter=skip-self; filter=var-subst"),
        Header::new("Grip-Set-Meta", b"user=me"),
        Header::new("Grip-Keep-Alive", b"ka; timeout=2"),
    ];
    let inst = parse_instruct(200, "OK", &headers, b"start\n", &InstructLimits::default()).unwrap();
    let start = Instant::now();
    let mut now = start;
    let mut out = OutBuf::new();
    let mut wire = Vec::new();
    let mut hold = Hold::start(inst, "", &[], Version::Http11, true, now, &mut out).unwrap();
    let mut finished = false;
    let mut retried = false;

    // The channel index, against a model.
    let mut subs = Subscriptions::new();
    let mut model: HashMap<usize, HashSet<&str>> = HashMap::new();

    for &op in ops {
        let arg = (op >> 3) as usize;
        if retried && op & 7 < 6 {
            continue;
        }
        match op & 7 {
            0 | 1 => {
                let item = &items[arg % items.len()];
                hold.deliver(item, &item.channel, &|_| false);
            }
            2 => match hold.pump(&mut out) {
                Outcome::Finished => finished = true,
                // The session would make the request again with a new hold; this one is done with.
                Outcome::Retry => retried = true,
                Outcome::Held => {}
            },
            3 => {
                now += Duration::from_millis(100 * arg as u64);
                if hold.on_time(now, start, &mut out) == Outcome::Finished {
                    finished = true;
                }
            }
            4 => {
                // The client takes some bytes.
                let n = out.data().len().min(arg * 64 + 1);
                wire.extend_from_slice(&out.data()[..n]);
                drain(&mut out, n);
            }
            5 => {
                hold.finish_now(&mut out);
                finished = true;
            }
            6 => {
                let conn = ConnRef { key: arg % 8, generation: 1 };
                let ch = ["a", "b", "c"][arg % 3];
                subs.subscribe(ch, conn);
                model.entry(conn.key).or_default().insert(ch);
            }
            _ => {
                let key = arg % 8;
                let conn = ConnRef { key, generation: 1 };
                // Close: every channel of the connection goes.
                for ch in model.remove(&key).unwrap_or_default() {
                    subs.unsubscribe(ch, conn);
                }
            }
        }
        assert!(out.len() <= 64 * 1024 + 4096, "write queue must stay bounded");
        assert!(hold.dropped <= hold.delivered + HELD_QUEUE_MAX as u64 * 256);
        let members: usize = model.values().map(|s| s.len()).sum();
        assert_eq!(subs.member_count(), members);
        if finished {
            // Once finished, a hold stays finished and writes nothing more.
            let before = out.len();
            assert_eq!(hold.pump(&mut out), Outcome::Finished);
            assert_eq!(out.len(), before);
        }
    }
    // Close every connection: nothing may remain subscribed.
    for (key, chans) in model.drain() {
        for ch in chans {
            subs.unsubscribe(ch, ConnRef { key, generation: 1 });
        }
    }
    assert_eq!(subs.member_count(), 0);
    assert_eq!(subs.channel_count(), 0);

    // Everything written for a stream hold is a well-formed chunked body after the head.
    wire.extend_from_slice(out.data());
    if stream {
        let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        let mut dec = BodyDecoder::new(BodyKind::Chunked, ChunkLimits::default());
        let mut input = &wire[head_end..];
        loop {
            let step = dec.decode(input).expect("well-formed chunked stream");
            input = &input[step.consumed..];
            if step.done || step.consumed == 0 {
                break;
            }
        }
        assert!(input.is_empty() || dec.is_done());
    }
});

fn drain(out: &mut OutBuf, n: usize) {
    struct Take(usize);
    impl std::io::Write for Take {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let k = buf.len().min(self.0);
            self.0 -= k;
            Ok(k)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let _ = out.write_to(&mut Take(n));
}
