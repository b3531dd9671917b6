use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::publish::parse_publish_body;
use crate::websocket::frame::{apply_mask, read_header};

/// Frames in `bytes`: (opcode, fin, masked, payload unmasked). Panics on a partial frame.
fn frames(bytes: &[u8]) -> Vec<(OpCode, bool, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (h, n) = read_header(rest).unwrap().expect("whole header");
        let end = n + h.len as usize;
        let mut payload = rest[n..end].to_vec();
        if let Some(m) = h.mask {
            apply_mask(&mut payload, m, 0);
        }
        out.push((h.opcode, h.fin, h.mask.is_some(), payload));
        rest = &rest[end..];
    }
    out
}

fn client_frame(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, op, fin, payload, Some([1, 2, 3, 4]));
    v
}

fn server_frame(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, op, fin, payload, None);
    v
}

struct Bufs {
    client_in: InBuf,
    client_out: OutBuf,
    backend_in: InBuf,
    backend_out: OutBuf,
    counts: ConnCounts,
}

impl Bufs {
    fn new() -> Bufs {
        Bufs {
            client_in: InBuf::new(1 << 20),
            client_out: OutBuf::new(),
            backend_in: InBuf::new(1 << 20),
            backend_out: OutBuf::new(),
            counts: ConnCounts::default(),
        }
    }

    fn advance(&mut self, ws: &mut WsConn) {
        let cfg = ProxyConfig::from_settings(&crate::config::Settings::defaults()).unwrap();
        let mut io = WsIo {
            cfg: &cfg,
            client_in: &mut self.client_in,
            client_out: &mut self.client_out,
            client_eof: false,
            backend: Some(BackendIo {
                input: &mut self.backend_in,
                output: &mut self.backend_out,
                eof: false,
            }),
            counts: &mut self.counts,
        };
        ws.advance(&mut io, Instant::now());
    }

    fn take_client_out(&mut self) -> Vec<u8> {
        let v = self.client_out.data().to_vec();
        self.client_out.clear();
        v
    }

    fn take_backend_out(&mut self) -> Vec<u8> {
        let v = self.backend_out.data().to_vec();
        self.backend_out.clear();
        v
    }
}

fn passthrough(grip: Option<&str>) -> WsConn {
    let limits = WsLimits::default();
    let mut g = GripWs::new("", 10);
    if let Some(prefix) = grip {
        g.enabled = true;
        g.prefix = prefix.into();
    }
    let pt = Passthrough::new(limits, grip.is_some(), 1);
    WsConn::new(Peer::Backend(Box::new(pt)), g, limits, 1)
}

fn ws_item(channel: &str, content: &str) -> Arc<Item> {
    let json = format!(
        r#"{{"items":[{{"channel":"{channel}","formats":{{"ws-message":{{"content":"{content}"}}}}}}]}}"#
    );
    Arc::new(parse_publish_body(json.as_bytes()).unwrap().remove(0))
}

#[test]
fn client_frames_reach_the_backend_masked_with_their_fragmentation_kept() {
    let mut ws = passthrough(None);
    let mut b = Bufs::new();
    b.client_in
        .extend(&client_frame(OpCode::Text, false, b"ab"));
    b.client_in.extend(&client_frame(OpCode::Ping, true, b"p"));
    b.client_in
        .extend(&client_frame(OpCode::Continuation, true, b"cd"));
    b.advance(&mut ws);
    let got = frames(&b.take_backend_out());
    assert_eq!(
        got,
        [
            (OpCode::Text, false, true, b"ab".to_vec()),
            (OpCode::Ping, true, true, b"p".to_vec()),
            (OpCode::Continuation, true, true, b"cd".to_vec()),
        ]
    );
    assert!(b.client_in.is_empty());
}

#[test]
fn a_publish_waits_for_the_end_of_a_relayed_fragmented_message() {
    let mut ws = passthrough(None);
    ws.grip.subscribe_implicit(&["ch".into()]);
    let mut b = Bufs::new();
    b.backend_in
        .extend(&server_frame(OpCode::Text, false, b"part1 "));
    b.advance(&mut ws);
    assert!(ws.deliver(&ws_item("ch", "news"), "ch", &|_| true));
    b.advance(&mut ws);
    assert_eq!(
        frames(&b.take_client_out()),
        [(OpCode::Text, false, false, b"part1 ".to_vec())]
    );
    b.backend_in
        .extend(&server_frame(OpCode::Continuation, true, b"part2"));
    b.advance(&mut ws);
    assert_eq!(
        frames(&b.take_client_out()),
        [
            (OpCode::Continuation, true, false, b"part2".to_vec()),
            (OpCode::Text, true, false, b"news".to_vec()),
        ]
    );
}

#[test]
fn a_frame_split_anywhere_is_relayed_byte_exact() {
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    let wire = server_frame(OpCode::Binary, true, &payload);
    for cut in [1, 2, 3, 4, 10, 1500, wire.len() - 1] {
        let mut ws = passthrough(None);
        let mut b = Bufs::new();
        b.backend_in.extend(&wire[..cut]);
        b.advance(&mut ws);
        b.backend_in.extend(&wire[cut..]);
        b.advance(&mut ws);
        assert_eq!(b.take_client_out(), wire, "cut at {cut}");
    }
}

#[test]
fn grip_messages_need_the_prefix_and_control_messages_subscribe() {
    let mut ws = passthrough(Some("m:"));
    let mut b = Bufs::new();
    b.backend_in.extend(&server_frame(
        OpCode::Text,
        true,
        br#"c:{"type":"subscribe","channel":"x"}"#,
    ));
    b.backend_in
        .extend(&server_frame(OpCode::Text, true, b"no prefix"));
    b.backend_in
        .extend(&server_frame(OpCode::Text, false, b"m:hel"));
    b.backend_in
        .extend(&server_frame(OpCode::Continuation, true, b"lo"));
    b.advance(&mut ws);
    assert_eq!(ws.subscribe, ["x"]);
    assert_eq!(
        frames(&b.take_client_out()),
        [(OpCode::Text, true, false, b"hello".to_vec())]
    );
    // A fragmented control message is ignored.
    b.backend_in
        .extend(&server_frame(OpCode::Text, false, b"c:{\"type\":"));
    b.backend_in.extend(&server_frame(
        OpCode::Continuation,
        true,
        br#""subscribe","channel":"y"}"#,
    ));
    b.advance(&mut ws);
    assert_eq!(ws.subscribe, ["x"]);
}

/// WebSocket data messages counted by `Flow` (client received, client sent, backend received, backend sent).
fn messages(b: &Bufs) -> [u64; 4] {
    b.counts.ws_messages
}

#[test]
fn data_messages_are_counted_once_each_way_whatever_their_fragmentation() {
    let mut ws = passthrough(None);
    ws.grip.subscribe_implicit(&["ch".into()]);
    let mut b = Bufs::new();
    // From the client: a text message in two frames with a ping between, then a binary one.
    b.client_in
        .extend(&client_frame(OpCode::Text, false, b"ab"));
    b.client_in.extend(&client_frame(OpCode::Ping, true, b"p"));
    b.client_in
        .extend(&client_frame(OpCode::Continuation, true, b"cd"));
    b.client_in
        .extend(&client_frame(OpCode::Binary, true, b"\x01"));
    // From the backend: one message in three frames, and a pong.
    b.backend_in
        .extend(&server_frame(OpCode::Text, false, b"x"));
    b.backend_in
        .extend(&server_frame(OpCode::Continuation, false, b"y"));
    b.backend_in
        .extend(&server_frame(OpCode::Continuation, true, b"z"));
    b.backend_in.extend(&server_frame(OpCode::Pong, true, b""));
    b.advance(&mut ws);
    assert_eq!(frames(&b.take_backend_out()).len(), 4, "all relayed");
    assert_eq!(messages(&b), [2, 1, 1, 2]);
    // A publish is one more message to the client.
    assert!(ws.deliver(&ws_item("ch", "news"), "ch", &|_| true));
    b.advance(&mut ws);
    assert_eq!(messages(&b), [2, 2, 1, 2]);
}

#[test]
fn only_grip_messages_that_reach_the_client_count_as_sent_to_it() {
    let mut ws = passthrough(Some("m:"));
    let mut b = Bufs::new();
    b.backend_in.extend(&server_frame(
        OpCode::Text,
        true,
        br#"c:{"type":"subscribe","channel":"x"}"#,
    ));
    b.backend_in
        .extend(&server_frame(OpCode::Text, true, b"no prefix"));
    b.backend_in
        .extend(&server_frame(OpCode::Text, true, b"m:hello"));
    b.advance(&mut ws);
    assert_eq!(frames(&b.take_client_out()).len(), 1);
    assert_eq!(messages(&b), [0, 1, 3, 0]);
}

#[test]
fn a_slow_client_loses_the_oldest_queued_publishes() {
    let mut ws = passthrough(None);
    ws.grip.subscribe_implicit(&["ch".into()]);
    for i in 0..WS_QUEUE_MAX + 5 {
        assert!(ws.deliver(&ws_item("ch", &format!("m{i}")), "ch", &|_| true));
    }
    assert_eq!(ws.dropped, 5);
    assert_eq!(ws.queued(), WS_QUEUE_MAX);
    let mut b = Bufs::new();
    b.advance(&mut ws);
    let out = frames(&b.take_client_out());
    assert_eq!(out[0].3, b"m5");
}

#[test]
fn a_client_close_is_relayed_and_the_backend_answer_completes_it() {
    let mut ws = passthrough(None);
    let mut b = Bufs::new();
    let mut close = Vec::new();
    crate::websocket::close::write_close_payload(&mut close, 4001, "bye");
    b.client_in
        .extend(&client_frame(OpCode::Close, true, &close));
    b.advance(&mut ws);
    assert_eq!(
        frames(&b.take_backend_out()),
        [(OpCode::Close, true, true, close.clone())]
    );
    assert!(!ws.is_finished());
    b.backend_in
        .extend(&server_frame(OpCode::Close, true, &close));
    b.advance(&mut ws);
    assert_eq!(
        frames(&b.take_client_out()),
        [(OpCode::Close, true, false, close)]
    );
    assert!(ws.is_finished());
    assert!(!ws.wants_backend());
}

#[test]
fn zero_length_messages_pass_both_ways_and_do_not_hold_up_publishes() {
    let mut ws = passthrough(None);
    ws.grip.subscribe_implicit(&["ch".into()]);
    let mut b = Bufs::new();
    b.client_in.extend(&client_frame(OpCode::Text, true, b""));
    b.backend_in
        .extend(&server_frame(OpCode::Binary, true, b""));
    b.advance(&mut ws);
    assert_eq!(
        frames(&b.take_backend_out()),
        [(OpCode::Text, true, true, Vec::new())]
    );
    assert!(ws.deliver(&ws_item("ch", "after"), "ch", &|_| true));
    b.advance(&mut ws);
    assert_eq!(
        frames(&b.take_client_out()),
        [
            (OpCode::Binary, true, false, Vec::new()),
            (OpCode::Text, true, false, b"after".to_vec()),
        ]
    );
}
