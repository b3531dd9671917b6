//! The stats tracker driven by an arbitrary sequence of worker events and clock ticks. Invariants: it never
//! panics, its connection table matches a model of opens and closes, and every frame it queues is
//! `<type> T<tnetstring>` that decodes.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use holdfast::config::StatsFormat;
use holdfast::publish::tnetstring;
use holdfast::stats::{Readings, StatsEvent, Tracker, TrackerConfig, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut t = Tracker::new(
        TrackerConfig {
            from: "f".into(),
            format: StatsFormat::Tnetstring,
            publish: true,
            conn_ttl: Duration::from_secs(4),
            conn_send: data.first().is_some_and(|b| b & 1 == 0),
            sub_ttl: Duration::from_secs(4),
            linger: Duration::from_secs(2),
            report_interval: Duration::from_secs(3),
            block_size: None,
        },
        now,
    );
    let mut open: HashSet<String> = HashSet::new();
    let mut requests = 0u64;
    for pair in data.chunks(2) {
        let (op, arg) = (pair[0], pair.get(1).copied().unwrap_or(0));
        let id = format!("c{}", arg % 8);
        let channel = format!("ch{}", arg % 4);
        let mode = Transport::ALL[(arg as usize / 4) % 3];
        match op % 6 {
            0 => {
                t.apply(
                    StatsEvent::ConnOpen {
                        id: id.clone(),
                        ws: arg & 0x80 != 0,
                        peer: "127.0.0.1".parse().unwrap(),
                        tls: false,
                        route: None,
                    },
                    now,
                );
                open.insert(id);
            }
            1 => {
                t.apply(StatsEvent::ConnClose { id: id.clone() }, now);
                open.remove(&id);
            }
            2 => t.apply(StatsEvent::Sub { mode, channel, delta: 1 }, now),
            3 => t.apply(StatsEvent::Sub { mode, channel, delta: -1 }, now),
            4 => {
                now += Duration::from_millis(arg as u64 * 40);
                requests += arg as u64;
                let snap = Readings {
                    conns: open.len(),
                    requests,
                    counters: vec![("received", requests)],
                };
                t.tick(now, &snap);
            }
            _ => requests += 1,
        }
        assert_eq!(t.connections(), open.len());
        for frame in t.take_frames() {
            let sp = frame.iter().position(|&b| b == b' ').expect("type, space");
            assert_eq!(frame.get(sp + 1), Some(&b'T'));
            tnetstring::decode_all(&frame[sp + 2..]).expect("frame body decodes");
        }
    }
});
