//! The frame reader (and the assembler behind it) on arbitrary bytes, read the way a connection
//! reads them: a bounded buffer, refilled in pieces, unconsumed bytes kept.
//! Input: byte 0 = we are the client (bit 0), tight limits (bit 1), piece size (bits 2-7, 0 = fill
//! the buffer); the rest is what the peer sent.
#![no_main]

use holdfast::websocket::assemble::Assembler;
use holdfast::websocket::close::ProtocolError;
use holdfast::websocket::frame::{MessageKind, Role, CONTROL_FRAME_MAX, CONTROL_PAYLOAD_MAX};
use holdfast::websocket::limits::WsLimits;
use holdfast::websocket::reader::{Event, Reader};
use libfuzzer_sys::fuzz_target;

/// The connection's read buffer: room for a whole control frame and then some.
const BUF: usize = 2 * CONTROL_FRAME_MAX;

/// An event, owned, with a frame's payload pieces merged; `Message` is the assembler's output.
#[derive(Debug, PartialEq)]
enum Ev {
    Frame { kind: MessageKind, first: bool, fin: bool, len: u64 },
    Data { data: Vec<u8>, frame_end: bool, message_end: bool },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Message(MessageKind, Vec<u8>),
    TooBig,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Ev>,
    error: Option<ProtocolError>,
}

fn run(role: Role, limits: WsLimits, mut rest: &[u8], piece: usize) -> Outcome {
    let mut reader = Reader::new(role, limits);
    let mut asm = Assembler::new(limits.max_message);
    let mut asm_failed = false;
    let mut text = None;
    let mut buf: Vec<u8> = Vec::with_capacity(BUF);
    let mut events = Vec::new();
    loop {
        let n = piece.min(BUF - buf.len()).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let (full, len) = (buf.len() == BUF, buf.len());
            let (used, event) = match reader.read(&mut buf) {
                Ok(step) => step,
                Err(err) => {
                    assert!(matches!(err.code, 1002 | 1007 | 1009));
                    assert_eq!(reader.read(&mut buf), Err(err), "errors are sticky");
                    return Outcome { events, error: Some(err) };
                }
            };
            assert!(used <= len);
            let Some(event) = event else {
                // A full buffer always holds something the reader can use.
                assert!(used > 0 || !full, "stalled with a full buffer");
                buf.drain(..used);
                if used == 0 {
                    break;
                }
                continue;
            };
            record(&mut events, event, &limits);
            check_text(&mut text, &event);
            if !asm_failed {
                match asm.push(event) {
                    Ok(Some(msg)) => {
                        assert!(msg.data.len() <= limits.max_message);
                        if msg.kind == MessageKind::Text {
                            assert!(std::str::from_utf8(msg.data).is_ok());
                        }
                        events.push(Ev::Message(msg.kind, msg.data.to_vec()));
                    }
                    Ok(None) => {}
                    Err(err) => {
                        assert_eq!(err.code, 1009);
                        asm_failed = true;
                        events.push(Ev::TooBig);
                    }
                }
            }
            buf.drain(..used);
        }
        if rest.is_empty() {
            return Outcome { events, error: None };
        }
    }
}

/// Append `event` (merging a frame's payload pieces) after checking it against the limits and what
/// came before.
fn record(events: &mut Vec<Ev>, event: Event<'_>, limits: &WsLimits) {
    // Assembler output sits between reader events; look past it.
    let last = events.iter_mut().rev().find(|e| !matches!(e, Ev::Message(..) | Ev::TooBig));
    let open = matches!(last, Some(Ev::Data { frame_end: false, .. }));
    let owned = match event {
        Event::DataFrame { kind, first, fin, len } => {
            assert!(len <= limits.max_frame);
            Ev::Frame { kind, first, fin, len }
        }
        Event::Payload { data, frame_end, message_end } => {
            assert!(frame_end || !data.is_empty());
            match last {
                Some(Ev::Data { data: so_far, frame_end: f @ false, message_end: m }) => {
                    so_far.extend_from_slice(data);
                    (*f, *m) = (frame_end, message_end);
                }
                Some(Ev::Frame { .. }) => {
                    events.push(Ev::Data { data: data.to_vec(), frame_end, message_end })
                }
                other => panic!("payload after {other:?}"),
            }
            check_frame(events);
            return;
        }
        Event::Ping(p) => Ev::Ping(p.to_vec()),
        Event::Pong(p) => Ev::Pong(p.to_vec()),
        Event::Close { code, reason } => {
            assert!(reason.len() <= CONTROL_PAYLOAD_MAX - 2);
            assert!(code.is_some() || reason.is_empty());
            Ev::Close(code, reason.to_string())
        }
    };
    assert!(!open, "{owned:?} inside a frame's payload");
    if let Ev::Ping(p) | Ev::Pong(p) = &owned {
        assert!(p.len() <= CONTROL_PAYLOAD_MAX);
    }
    events.push(owned);
}

/// The frame just extended: its pieces never exceed its length, and end exactly at it.
fn check_frame(events: &[Ev]) {
    let frames: Vec<&Ev> = events.iter().filter(|e| !matches!(e, Ev::Message(..) | Ev::TooBig)).collect();
    let [.., Ev::Frame { fin, len, .. }, Ev::Data { data, frame_end, message_end }] = frames[..] else {
        panic!("payload without its frame");
    };
    assert!(data.len() as u64 <= *len);
    assert_eq!(*frame_end, data.len() as u64 == *len);
    assert_eq!(*message_end, *frame_end && *fin);
}

/// Text passed on, message by message, is always a prefix of valid UTF-8, and valid at its end.
fn check_text(text: &mut Option<Vec<u8>>, event: &Event<'_>) {
    match *event {
        Event::DataFrame { kind, first: true, .. } => {
            *text = (kind == MessageKind::Text).then(Vec::new);
        }
        Event::Payload { data, message_end, .. } => {
            if let Some(t) = text.as_mut() {
                t.extend_from_slice(data);
                match std::str::from_utf8(t) {
                    Ok(_) => {}
                    Err(e) => assert!(e.error_len().is_none() && !message_end, "{t:02x?}"),
                }
            }
        }
        _ => {}
    }
}

/// The outcome without the payload delivered before a mid-frame failure: how much of it came out
/// depends on how the input was split.
fn settled(mut outcome: Outcome) -> Outcome {
    if outcome.error.is_some() {
        if let Some(i) = outcome.events.iter().rposition(|e| !matches!(e, Ev::Message(..) | Ev::TooBig)) {
            if matches!(outcome.events[i], Ev::Data { frame_end: false, .. }) {
                outcome.events.truncate(i);
            }
        }
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let role = if config & 1 != 0 { Role::Client } else { Role::Server };
    let limits =
        if config & 2 != 0 { WsLimits { max_frame: 100, max_message: 150 } } else { WsLimits::default() };
    let piece = match usize::from(config >> 2) {
        0 => usize::MAX,
        n => n,
    };
    let split = settled(run(role, limits, stream, piece));
    let whole = settled(run(role, limits, stream, usize::MAX));
    assert_eq!(split, whole, "the outcome does not depend on how the bytes arrive");
});
