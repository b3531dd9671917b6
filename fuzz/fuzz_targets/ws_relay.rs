//! The proxy's WebSocket state machine (`proxy::ws::WsConn`) driven by arbitrary operations: client bytes,
//! backend bytes, publishes, time, end-of-stream on either side, and partial drains of the write queues.
//! Input: byte 0 picks the peer (passthrough, passthrough with GRIP, the echo endpoint, WebSocket-over-HTTP);
//! then operations of one code byte plus, for byte-carrying ones, a length byte and that many bytes.
//!
//! Asserts: no panic; the write queues stay bounded (the relay stops reading while its output is over
//! the limit, so neither queue can grow past it by more than one step's worth); a finished connection
//! writes nothing more; the published-message queue stays within its cap.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use holdfast::buf::{InBuf, OutBuf};
use holdfast::config::Settings;
use holdfast::http1::parse_request_head;
use holdfast::proxy::ws::{
    BackendIo, GripWs, OverHttp, Passthrough, Peer, WohSetup, WsConn, WsIo, WS_QUEUE_MAX,
};
use holdfast::proxy::{ProxyConfig, Router};
use holdfast::publish::parse_publish_body;
use holdfast::routes::RouteTable;
use holdfast::stats::ConnCounts;
use holdfast::websocket::limits::WsLimits;
use libfuzzer_sys::fuzz_target;

/// Bytes one step may add to a queue beyond the point where reading stops: the largest message the
/// limits allow, a published message, and framing.
const STEP_SLACK: usize = 96 * 1024;
const OUT_LIMIT: usize = 64 * 1024;

fn conn(mode: u8, limits: WsLimits, now: Instant) -> WsConn {
    let mut grip = GripWs::new("", 10);
    grip.subscribe_implicit(&["ch".to_string()]);
    let peer = match mode % 4 {
        0 => Peer::Backend(Box::new(Passthrough::new(limits, false, 1))),
        1 => {
            grip.enabled = true;
            grip.prefix = "m:".into();
            Peer::Backend(Box::new(Passthrough::new(limits, true, 1)))
        }
        2 => Peer::Echo,
        _ => {
            let (table, _) = RouteTable::parse("* 127.0.0.1:1,over_http\n", "fuzz").unwrap();
            let (router, _) = Router::new(table).unwrap();
            let head = parse_request_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Default::default())
                .unwrap()
                .unwrap()
                .0;
            let setup = WohSetup {
                head,
                router: Arc::new(router),
                route_idx: 0,
                candidates: vec![("127.0.0.1:1".parse().unwrap(), 0)],
                peer: "127.0.0.1".parse().unwrap(),
                tls: false,
                trusted: false,
                client_accept: [b'a'; 28],
                max_message: limits.max_message,
            };
            Peer::OverHttp(Box::new(OverHttp::new(setup, mode & 4 != 0, now, 1)))
        }
    };
    WsConn::new(peer, grip, limits, 1)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut ops)) = data.split_first() else {
        return;
    };
    let cfg = ProxyConfig::from_settings(&Settings::defaults()).unwrap();
    let limits = WsLimits {
        max_frame: 64 * 1024,
        max_message: 16 * 1024,
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut ws = conn(mode, limits, now);
    let item = Arc::new(
        parse_publish_body(br#"{"items":[{"channel":"ch","formats":{"ws-message":{"content":"pub"}}}]}"#)
            .unwrap()
            .remove(0),
    );
    let mut client_in = InBuf::new(32 * 1024);
    let mut client_out = OutBuf::new();
    let mut backend_in = InBuf::new(32 * 1024);
    let mut backend_out = OutBuf::new();
    let mut counts = ConnCounts::default();
    let (mut client_eof, mut backend_eof) = (false, false);
    let mut finished_at: Option<(usize, usize)> = None;
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op % 8 {
            0 | 1 => {
                let Some((&len, rest)) = ops.split_first() else { break };
                let n = (len as usize).min(rest.len());
                let target = if op % 8 == 0 { &mut client_in } else { &mut backend_in };
                target.extend(&rest[..n]);
                ops = &rest[n..];
            }
            2 => {
                let queued = ws.deliver(&item, "ch", &|_| true);
                assert!(!(queued && ws.is_finished()), "a finished connection took a publish");
                assert!(ws.queued() <= WS_QUEUE_MAX);
            }
            3 => {
                let Some((&secs, rest)) = ops.split_first() else { break };
                ops = rest;
                now += Duration::from_millis(secs as u64 * 100);
                let mut io = WsIo {
                    cfg: &cfg,
                    client_in: &mut client_in,
                    client_out: &mut client_out,
                    client_eof,
                    backend: Some(BackendIo {
                        input: &mut backend_in,
                        output: &mut backend_out,
                        eof: backend_eof,
                    }),
                    counts: &mut counts,
                };
                ws.on_time(&mut io, now);
            }
            4 => client_eof = true,
            5 => backend_eof = true,
            6 => {
                // The sockets took some bytes.
                let Some((&n, rest)) = ops.split_first() else { break };
                ops = rest;
                let mut sink = SinkN(n as usize * 64);
                let _ = client_out.write_to(&mut sink);
                let mut sink = SinkN(n as usize * 64);
                let _ = backend_out.write_to(&mut sink);
            }
            _ => {}
        }
        let mut io = WsIo {
            cfg: &cfg,
            client_in: &mut client_in,
            client_out: &mut client_out,
            client_eof,
            backend: Some(BackendIo {
                input: &mut backend_in,
                output: &mut backend_out,
                eof: backend_eof,
            }),
            counts: &mut counts,
        };
        ws.advance(&mut io, now);
        if let Some(w) = ws.over_http() {
            w.connect = None;
            if std::mem::take(&mut w.release) || std::mem::take(&mut w.drop_backend) {
                backend_in.consume(backend_in.len());
            }
        }
        ws.subscribe.clear();
        ws.unsubscribe.clear();
        assert!(client_out.len() <= OUT_LIMIT + STEP_SLACK, "client queue {}", client_out.len());
        assert!(backend_out.len() <= OUT_LIMIT + STEP_SLACK + 64 * 1024, "backend queue {}", backend_out.len());
        match finished_at {
            Some((c, b)) => {
                assert!(client_out.len() <= c, "wrote to the client after finishing");
                assert!(backend_out.len() <= b, "wrote to the backend after finishing");
                finished_at = Some((client_out.len(), backend_out.len()));
            }
            None if ws.is_finished() => finished_at = Some((client_out.len(), backend_out.len())),
            None => {}
        }
    }
});

/// A writer that takes at most `n` bytes, then would block.
struct SinkN(usize);

impl std::io::Write for SinkN {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.0);
        self.0 -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
