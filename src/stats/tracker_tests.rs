use std::sync::Arc;

use super::*;
use crate::publish::{parse_publish_body, Item};

fn cfg(format: StatsFormat) -> TrackerConfig {
    TrackerConfig {
        from: "hf_1".into(),
        format,
        publish: true,
        conn_ttl: Duration::from_secs(120),
        conn_send: true,
        sub_ttl: Duration::from_secs(60),
        linger: Duration::from_secs(2),
        report_interval: Duration::from_secs(10),
        block_size: None,
    }
}

fn snap(conns: usize, requests: u64) -> Readings {
    Readings {
        conns,
        requests,
        counters: vec![("received", requests * 2), ("sent", requests * 3)],
    }
}

/// Decode the queued frames as (type, fields).
fn frames(t: &mut Tracker) -> Vec<(String, Value)> {
    t.take_frames()
        .into_iter()
        .map(|f| {
            let sp = f.iter().position(|&b| b == b' ').unwrap();
            let kind = String::from_utf8(f[..sp].to_vec()).unwrap();
            assert_eq!(f[sp + 1], b'T', "tnetstring frames start with T");
            (kind, tnetstring::decode_all(&f[sp + 2..]).unwrap())
        })
        .collect()
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {key} in {v:?}"))
        .to_string()
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_int).unwrap()
}

fn open(t: &mut Tracker, id: &str, now: Instant) {
    t.apply(
        StatsEvent::ConnOpen {
            id: id.into(),
            ws: false,
            peer: "10.0.0.7".parse().unwrap(),
            tls: false,
            route: None,
        },
        now,
    );
}

#[test]
fn connections_are_announced_refreshed_at_three_quarters_of_the_ttl_and_withdrawn() {
    let t0 = Instant::now();
    let mut t = Tracker::new(cfg(StatsFormat::Tnetstring), t0);
    open(&mut t, "hf_1:5", t0);
    let f = frames(&mut t);
    assert_eq!(f.len(), 1);
    let (kind, c) = &f[0];
    assert_eq!(kind, "conn");
    assert_eq!(s(c, "id"), "hf_1:5");
    assert_eq!(s(c, "type"), "http");
    assert_eq!(s(c, "peer-address"), "10.0.0.7");
    assert_eq!(s(c, "from"), "hf_1");
    assert_eq!(int(c, "ttl"), 120);
    assert!(c.get("ssl").is_none());
    assert!(t.is_connected("hf_1:5"));

    t.tick(t0 + Duration::from_secs(89), &snap(1, 0));
    assert!(frames(&mut t).iter().all(|(k, _)| k != "conn"));
    t.tick(t0 + Duration::from_secs(90), &snap(1, 0));
    let again: Vec<_> = frames(&mut t)
        .into_iter()
        .filter(|(k, _)| k == "conn")
        .collect();
    assert_eq!(again.len(), 1, "re-sent after 3/4 of 120 s");

    t.apply(
        StatsEvent::ConnClose {
            id: "hf_1:5".into(),
        },
        t0 + Duration::from_secs(91),
    );
    let f = frames(&mut t);
    assert_eq!(s(&f[0].1, "id"), "hf_1:5");
    assert_eq!(f[0].1.get("unavailable"), Some(&Value::Bool(true)));
    assert!(!t.is_connected("hf_1:5"));
    // A closed connection is not refreshed any more.
    t.tick(t0 + Duration::from_secs(200), &snap(0, 0));
    assert!(frames(&mut t).iter().all(|(k, _)| k != "conn"));
}

#[test]
fn stream_subscriptions_go_at_once_response_ones_linger() {
    let t0 = Instant::now();
    let mut t = Tracker::new(cfg(StatsFormat::Tnetstring), t0);
    let sub = |t: &mut Tracker, mode, ch: &str, delta, now| {
        t.apply(
            StatsEvent::Sub {
                mode,
                channel: ch.into(),
                delta,
            },
            now,
        )
    };
    sub(&mut t, Transport::HttpStream, "s", 1, t0);
    sub(&mut t, Transport::HttpStream, "s", 1, t0);
    let f = frames(&mut t);
    assert_eq!(f.len(), 1, "announced once, when the first subscriber came");
    assert_eq!(s(&f[0].1, "mode"), "stream");
    assert_eq!(s(&f[0].1, "channel"), "s");
    assert_eq!(int(&f[0].1, "subscribers"), 1);
    assert_eq!(int(&f[0].1, "ttl"), 60);
    sub(&mut t, Transport::HttpStream, "s", -1, t0);
    assert!(frames(&mut t).is_empty());
    sub(&mut t, Transport::HttpStream, "s", -1, t0);
    let f = frames(&mut t);
    assert_eq!(f[0].1.get("unavailable"), Some(&Value::Bool(true)));

    sub(&mut t, Transport::HttpResponse, "r", 1, t0);
    sub(&mut t, Transport::HttpResponse, "r", -1, t0);
    assert_eq!(frames(&mut t).len(), 1, "only the announcement");
    // The client polls again within the linger: no flapping.
    sub(
        &mut t,
        Transport::HttpResponse,
        "r",
        1,
        t0 + Duration::from_secs(1),
    );
    sub(
        &mut t,
        Transport::HttpResponse,
        "r",
        -1,
        t0 + Duration::from_secs(1),
    );
    t.tick(t0 + Duration::from_secs(2), &snap(0, 0));
    assert!(frames(&mut t).iter().all(|(k, _)| k != "sub"));
    t.tick(t0 + Duration::from_secs(3), &snap(0, 0));
    let gone: Vec<_> = frames(&mut t)
        .into_iter()
        .filter(|(k, _)| k == "sub")
        .collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(s(&gone[0].1, "mode"), "response");
    assert_eq!(gone[0].1.get("unavailable"), Some(&Value::Bool(true)));
}

#[test]
fn message_events_carry_receivers_per_format_present() {
    let t0 = Instant::now();
    let mut t = Tracker::new(cfg(StatsFormat::Tnetstring), t0);
    let body = br#"{"items":[{"channel":"c","id":"i1","formats":{"http-stream":{"content":"x"},"ws-message":{"content":"x"}}}]}"#;
    let items: Arc<[Arc<Item>]> = parse_publish_body(body)
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
    let tally = Tally::new(items, 1);
    tally.add(0, Transport::HttpStream, 3);
    assert!(tally.finish_one());
    t.delivered(&tally);
    let f = frames(&mut t);
    assert_eq!(f.len(), 2, "one per format the item carried: {f:?}");
    let stream = f
        .iter()
        .find(|(_, v)| s(v, "transport") == "http-stream")
        .unwrap();
    assert_eq!(stream.0, "message");
    assert_eq!(int(&stream.1, "count"), 3);
    assert_eq!(s(&stream.1, "item-id"), "i1");
    assert_eq!(s(&stream.1, "channel"), "c");
    let ws = f
        .iter()
        .find(|(_, v)| s(v, "transport") == "ws-message")
        .unwrap();
    assert_eq!(int(&ws.1, "count"), 0);
}

#[test]
fn activity_and_report_send_differences_for_their_interval() {
    let t0 = Instant::now();
    let mut t = Tracker::new(cfg(StatsFormat::Tnetstring), t0);
    t.tick(t0 + Duration::from_millis(50), &snap(2, 10));
    assert!(frames(&mut t).is_empty(), "activity waits for its 100 ms");
    // Requests made before the first activity tick are counted there, not taken as a base.
    t.tick(t0 + Duration::from_millis(100), &snap(2, 10));
    let f = frames(&mut t);
    assert_eq!(f[0].0, "activity");
    assert_eq!(int(&f[0].1, "count"), 10);
    t.tick(t0 + Duration::from_millis(200), &snap(4, 15));
    let f = frames(&mut t);
    assert_eq!(f[0].0, "activity");
    assert_eq!(int(&f[0].1, "count"), 5);
    t.tick(t0 + Duration::from_millis(300), &snap(4, 15));
    assert!(frames(&mut t).is_empty(), "no activity, no event");

    // 4 connections for the rest of 60 s: 4 connection-minutes (minus the first 300 ms at fewer).
    t.tick(t0 + Duration::from_secs(10), &snap(3, 20));
    let report = frames(&mut t)
        .into_iter()
        .find(|(k, _)| k == "report")
        .unwrap()
        .1;
    assert_eq!(int(&report, "connections"), 4);
    assert_eq!(int(&report, "received"), 40);
    assert_eq!(int(&report, "sent"), 60);
    assert_eq!(int(&report, "duration"), 10_000);
    t.tick(t0 + Duration::from_secs(20), &snap(3, 21));
    let report = frames(&mut t)
        .into_iter()
        .find(|(k, _)| k == "report")
        .unwrap()
        .1;
    assert_eq!(
        int(&report, "received"),
        2,
        "the second report counts its own interval"
    );
    assert_eq!(int(&report, "connections"), 3);
    // 0.2 s×2 + 9.7 s×4 + 10 s×3 = 69.2 connection-seconds: one whole minute so far.
    t.tick(t0 + Duration::from_secs(30), &snap(3, 21));
    let minutes: i64 = [&report].iter().map(|r| int(r, "minutes")).sum::<i64>();
    assert_eq!(minutes, 1);
}

#[test]
fn json_format_and_no_publishing_without_a_socket() {
    let t0 = Instant::now();
    let mut t = Tracker::new(cfg(StatsFormat::Json), t0);
    open(&mut t, "a", t0);
    let f = t.take_frames();
    assert!(
        f[0].starts_with(b"conn J{"),
        "{:?}",
        String::from_utf8_lossy(&f[0])
    );
    let doc: serde_json::Value = serde_json::from_slice(&f[0][6..]).unwrap();
    assert_eq!(doc["peer-address"], "10.0.0.7");

    let mut quiet = Tracker::new(
        TrackerConfig {
            publish: false,
            ..cfg(StatsFormat::Tnetstring)
        },
        t0,
    );
    open(&mut quiet, "a", t0);
    assert!(quiet.take_frames().is_empty());
    assert!(quiet.is_connected("a"), "conncheck still knows it");
}

#[test]
fn events_no_subscriber_wants_are_not_built_but_the_tables_are_kept() {
    let t0 = Instant::now();
    let mut t = Tracker::new(cfg(StatsFormat::Tnetstring), t0);
    let none: [&[u8]; 0] = [];
    t.set_subscriptions(none.iter().copied());
    open(&mut t, "a", t0);
    assert!(t.take_frames().is_empty());
    assert!(t.is_connected("a"), "conncheck still knows it");
    assert!(!t.wants("message"));

    // A subscriber of "conn " only (and one whose topic runs into the body) gets conn events, nothing else.
    let topics: [&[u8]; 2] = [b"conn ", b"sub T"];
    t.set_subscriptions(topics.iter().copied());
    assert!(t.wants("conn") && t.wants("sub") && !t.wants("conn-max") && !t.wants("report"));
    open(&mut t, "b", t0);
    t.tick(t0 + Duration::from_secs(10), &snap(1, 5));
    let kinds: Vec<String> = frames(&mut t).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["conn"]);
    // Without the space, "conn" also matches "conn-max", as it would on the wire.
    let bare: [&[u8]; 1] = [b"conn"];
    t.set_subscriptions(bare.iter().copied());
    assert!(t.wants("conn-max"));

    // The empty topic is everything.
    let all: [&[u8]; 1] = [b""];
    t.set_subscriptions(all.iter().copied());
    assert!(super::EVENT_TYPES.iter().all(|k| t.wants(k)));
}

#[test]
fn routes_with_an_explicit_id_name_their_connections_and_get_their_own_activity() {
    let t0 = Instant::now();
    let mut t = Tracker::new(cfg(StatsFormat::Tnetstring), t0);
    let api: Arc<str> = Arc::from("api");
    t.apply(
        StatsEvent::ConnOpen {
            id: "hf_1:3".into(),
            ws: false,
            peer: "10.0.0.7".parse().unwrap(),
            tls: false,
            route: Some(Arc::clone(&api)),
        },
        t0,
    );
    let f = frames(&mut t);
    assert_eq!(s(&f[0].1, "route"), "api");
    open(&mut t, "hf_1:4", t0);
    assert!(
        frames(&mut t)[0].1.get("route").is_none(),
        "no route without an explicit id"
    );

    // 5 requests in all, 3 of them on "api": one event per route, and one without a route for the rest.
    t.tick(t0 + Duration::from_millis(50), &snap(2, 0));
    t.apply(
        StatsEvent::Activity {
            route: Arc::clone(&api),
            count: 2,
        },
        t0,
    );
    t.apply(
        StatsEvent::Activity {
            route: api,
            count: 1,
        },
        t0,
    );
    t.tick(t0 + Duration::from_millis(100), &snap(2, 5));
    let acts: Vec<Value> = frames(&mut t)
        .into_iter()
        .filter(|(k, _)| k == "activity")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(acts.len(), 2, "{acts:?}");
    let routed = acts.iter().find(|v| v.get("route").is_some()).unwrap();
    assert_eq!(s(routed, "route"), "api");
    assert_eq!(int(routed, "count"), 3);
    let rest = acts.iter().find(|v| v.get("route").is_none()).unwrap();
    assert_eq!(int(rest, "count"), 2);
}
