//! Tests for the frame reader: header rules split at every byte, fail-fast UTF-8, writer round trips,
//! and a no-panic loop over mostly-valid noise.

use super::*;
use crate::test_rng::XorShift64 as Rng;
use crate::websocket::close::{INVALID_DATA, PROTOCOL_ERROR, TOO_BIG};
use crate::websocket::writer::{encode_close, encode_frame, split_message};
use MessageKind::{Binary, Text};
use OpCode as O;

const MASK: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];

/// A reader event, owned; payload pieces of one frame are merged into one `Data`.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Frame {
        kind: MessageKind,
        first: bool,
        fin: bool,
        len: u64,
    },
    Data {
        data: Vec<u8>,
        frame_end: bool,
        message_end: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

use Ev::{Close, Data, Ping, Pong};

fn frame(kind: MessageKind, first: bool, fin: bool, len: u64) -> Ev {
    Ev::Frame {
        kind,
        first,
        fin,
        len,
    }
}

/// The `Data` closing a frame.
fn data(bytes: &[u8], message_end: bool) -> Ev {
    Data {
        data: bytes.to_vec(),
        frame_end: true,
        message_end,
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Ev>,
    error: Option<ProtocolError>,
}

/// Feed `parts` the reactor's way (keep what was not consumed, append the next read, call until
/// `(0, None)`), checking the per-call invariants.
fn feed(role: Role, limits: WsLimits, parts: &[&[u8]]) -> Outcome {
    let mut reader = Reader::new(role, limits);
    let mut pending: Vec<u8> = Vec::new();
    let mut events: Vec<Ev> = Vec::new();
    for part in parts {
        pending.extend_from_slice(part);
        loop {
            let len = pending.len();
            let (n, event) = match reader.read(&mut pending) {
                Ok(step) => step,
                Err(err) => {
                    assert!([PROTOCOL_ERROR, INVALID_DATA, TOO_BIG].contains(&err.code));
                    assert_eq!(reader.read(&mut pending), Err(err), "errors are sticky");
                    return Outcome {
                        events,
                        error: Some(err),
                    };
                }
            };
            assert!(n <= len);
            let progressed = n > 0 || event.is_some();
            if let Some(event) = event {
                record(&mut events, event, &limits);
            }
            pending.drain(..n);
            if !progressed {
                break;
            }
        }
    }
    Outcome {
        events,
        error: None,
    }
}

/// Append `event`, merging payload pieces and checking what any event must satisfy.
fn record(events: &mut Vec<Ev>, event: Event<'_>, limits: &WsLimits) {
    let owned = match event {
        Event::DataFrame {
            kind,
            first,
            fin,
            len,
        } => {
            assert!(len <= limits.max_frame);
            Ev::Frame {
                kind,
                first,
                fin,
                len,
            }
        }
        Event::Payload {
            data,
            frame_end,
            message_end,
        } => {
            assert!(frame_end || !data.is_empty(), "empty piece inside a frame");
            assert!(frame_end || !message_end);
            match events.last_mut() {
                Some(Data {
                    data: so_far,
                    frame_end: open @ false,
                    message_end: end,
                }) => {
                    so_far.extend_from_slice(data);
                    *open = frame_end;
                    *end = message_end;
                }
                Some(Ev::Frame { .. }) => events.push(Data {
                    data: data.to_vec(),
                    frame_end,
                    message_end,
                }),
                other => panic!("payload after {other:?}"),
            }
            // A frame's pieces add up to its declared length.
            if let [.., Ev::Frame { len, fin, .. }, Data {
                data,
                frame_end,
                message_end,
            }] = &events[..]
            {
                assert!(data.len() as u64 <= *len);
                assert_eq!(*frame_end, data.len() as u64 == *len);
                assert_eq!(*message_end, *frame_end && *fin);
            }
            return;
        }
        Event::Ping(p) => Ping(p.to_vec()),
        Event::Pong(p) => Pong(p.to_vec()),
        Event::Close { code, reason } => Close(code, reason.to_string()),
    };
    if let Ev::Ping(p) | Ev::Pong(p) = &owned {
        assert!(p.len() <= 125);
    }
    if !matches!(owned, Data { .. }) {
        assert!(
            !matches!(
                events.last(),
                Some(Data {
                    frame_end: false,
                    ..
                })
            ),
            "{owned:?} inside a frame's payload"
        );
    }
    events.push(owned);
}

/// The outcome without the payload a frame delivered before failing mid-frame: how much of it came
/// out depends on where the input was split (see `utf8_fails_on_the_chunk_with_the_bad_byte`).
fn settled(mut outcome: Outcome) -> Outcome {
    if outcome.error.is_some() {
        if let Some(Data {
            frame_end: false, ..
        }) = outcome.events.last()
        {
            outcome.events.pop();
        }
    }
    outcome
}

/// The same (settled) outcome for the whole input, every two-way split and byte-by-byte delivery.
fn all_splits(role: Role, limits: WsLimits, wire: &[u8]) -> Outcome {
    let whole = settled(feed(role, limits, &[wire]));
    for cut in 0..=wire.len() {
        let split = settled(feed(role, limits, &[&wire[..cut], &wire[cut..]]));
        assert_eq!(split, whole, "{role:?} split at {cut} of {wire:02x?}");
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(
        settled(feed(role, limits, &bytes)),
        whole,
        "{role:?} byte by byte"
    );
    whole
}

/// A frame to write: opcode, FIN, payload.
type Spec<'a> = (OpCode, bool, &'a [u8]);

/// Frames as `from` would send them: masked from a client, plain from a server.
fn wire(from: Role, frames: &[Spec<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(opcode, fin, payload) in frames {
        encode_frame(
            &mut out,
            opcode,
            fin,
            payload,
            from.writes_masked().then_some(MASK),
        );
    }
    out
}

fn small() -> WsLimits {
    WsLimits {
        max_frame: 10,
        max_message: 10,
    }
}

#[test]
fn valid_streams() {
    let cases: Vec<(Vec<Spec>, Vec<Ev>)> = vec![
        (
            vec![(O::Text, true, b"Hello")],
            vec![frame(Text, true, true, 5), data(b"Hello", true)],
        ),
        (
            vec![(O::Binary, true, b"")],
            vec![frame(Binary, true, true, 0), data(b"", true)],
        ),
        (
            vec![
                (O::Text, false, b"Hel"),
                (O::Ping, true, b"hi"),
                (O::Continuation, true, b"lo"),
            ],
            vec![
                frame(Text, true, false, 3),
                data(b"Hel", false),
                Ping(b"hi".to_vec()),
                frame(Text, false, true, 2),
                data(b"lo", true),
            ],
        ),
        // A zero-length final frame ends the message through its empty `Payload`.
        (
            vec![
                (O::Binary, false, b"ab"),
                (O::Continuation, false, b""),
                (O::Continuation, true, b""),
            ],
            vec![
                frame(Binary, true, false, 2),
                data(b"ab", false),
                frame(Binary, false, false, 0),
                data(b"", false),
                frame(Binary, false, true, 0),
                data(b"", true),
            ],
        ),
        // A character split across two frames is fine: validity is per message.
        (
            vec![
                (O::Text, false, &[0xe2, 0x82]),
                (O::Continuation, true, &[0xac]),
            ],
            vec![
                frame(Text, true, false, 2),
                data(&[0xe2, 0x82], false),
                frame(Text, false, true, 1),
                data(&[0xac], true),
            ],
        ),
        (
            vec![
                (O::Pong, true, b""),
                (O::Ping, true, &[7; 125]),
                (O::Close, true, b"\x03\xe8bye"),
            ],
            vec![
                Pong(vec![]),
                Ping(vec![7; 125]),
                Close(Some(1000), "bye".into()),
            ],
        ),
        (
            vec![(O::Close, true, b"")],
            vec![Close(None, String::new())],
        ),
        // A Close may interrupt a fragmented message.
        (
            vec![(O::Text, false, b"a"), (O::Close, true, b"\x03\xe9")],
            vec![
                frame(Text, true, false, 1),
                data(b"a", false),
                Close(Some(1001), String::new()),
            ],
        ),
        // Exactly max_frame (10) is allowed.
        (
            vec![(O::Binary, true, b"0123456789")],
            vec![frame(Binary, true, true, 10), data(b"0123456789", true)],
        ),
    ];
    for (frames, want) in cases {
        for (role, from) in [(Role::Server, Role::Client), (Role::Client, Role::Server)] {
            let input = wire(from, &frames);
            let got = all_splits(role, small(), &input);
            assert_eq!(
                got,
                Outcome {
                    events: want.clone(),
                    error: None
                },
                "{frames:?}"
            );
        }
    }
}

#[test]
fn larger_lengths_stream_through() {
    for len in [126usize, 65535, 65536, 100_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let input = wire(Role::Client, &[(OpCode::Binary, true, &payload)]);
        let parts: Vec<&[u8]> = input.chunks(4093).collect();
        let got = feed(Role::Server, WsLimits::default(), &parts);
        let want = vec![frame(Binary, true, true, len as u64), data(&payload, true)];
        assert_eq!(
            got,
            Outcome {
                events: want,
                error: None
            },
            "{len}"
        );
    }
}

#[test]
fn invalid_streams() {
    let masked_header = |b0: u8, len7: u8| vec![b0, 0x80 | len7, 1, 2, 3, 4];
    let text = |fin, p: &'static [u8]| (O::Text, fin, p);
    // (role reading, input, events before the error, error)
    let mut cases: Vec<(Role, Vec<u8>, Vec<Ev>, ProtocolError)> = vec![
        (
            Role::Server,
            masked_header(0xC1, 0),
            vec![],
            ProtocolError::protocol("reserved bits set"),
        ),
        (
            Role::Server,
            masked_header(0xA2, 0),
            vec![],
            ProtocolError::protocol("reserved bits set"),
        ),
        (
            Role::Client,
            vec![0x91, 0x00],
            vec![],
            ProtocolError::protocol("reserved bits set"),
        ),
        (
            Role::Server,
            wire(Role::Server, &[text(true, b"hi")]),
            vec![],
            ProtocolError::protocol("unmasked frame from client"),
        ),
        (
            Role::Server,
            wire(Role::Server, &[(O::Ping, true, b"")]),
            vec![],
            ProtocolError::protocol("unmasked frame from client"),
        ),
        (
            Role::Client,
            wire(Role::Client, &[text(true, b"hi")]),
            vec![],
            ProtocolError::protocol("masked frame from server"),
        ),
        (
            Role::Server,
            masked_header(0x83, 0),
            vec![],
            ProtocolError::protocol("reserved opcode"),
        ),
        (
            Role::Client,
            vec![0x8F, 0x00],
            vec![],
            ProtocolError::protocol("reserved opcode"),
        ),
        (
            Role::Server,
            masked_header(0x09, 0),
            vec![],
            ProtocolError::protocol("fragmented control frame"),
        ),
        (
            Role::Client,
            vec![0x88, 126, 0, 126],
            vec![],
            ProtocolError::protocol("control frame too long"),
        ),
        (
            Role::Client,
            vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0],
            vec![],
            ProtocolError::protocol("frame length overflow"),
        ),
        (
            Role::Server,
            wire(Role::Client, &[(O::Continuation, true, b"x")]),
            vec![],
            ProtocolError::protocol("continuation without a message"),
        ),
        (
            Role::Server,
            wire(Role::Client, &[text(false, b"ab"), text(true, b"c")]),
            vec![frame(Text, true, false, 2), data(b"ab", false)],
            ProtocolError::protocol("new message inside a fragmented one"),
        ),
        (
            Role::Client,
            wire(
                Role::Server,
                &[
                    (O::Binary, false, b""),
                    (O::Ping, true, b""),
                    (O::Binary, true, b""),
                ],
            ),
            vec![
                frame(Binary, true, false, 0),
                data(b"", false),
                Ping(vec![]),
            ],
            ProtocolError::protocol("new message inside a fragmented one"),
        ),
        (
            Role::Client,
            wire(
                Role::Server,
                &[(O::Binary, true, b"a"), (O::Continuation, true, b"b")],
            ),
            vec![frame(Binary, true, true, 1), data(b"a", true)],
            ProtocolError::protocol("continuation without a message"),
        ),
        // One byte over max_frame fails at the header, with no payload in sight.
        (
            Role::Server,
            masked_header(0x82, 11),
            vec![],
            ProtocolError::too_big("frame too big"),
        ),
        (
            Role::Client,
            vec![0x02, 127, 0, 0, 0, 1, 0, 0, 0, 0],
            vec![],
            ProtocolError::too_big("frame too big"),
        ),
        (
            Role::Client,
            wire(Role::Server, &[(O::Close, true, b""), (O::Ping, true, b"")]),
            vec![Close(None, String::new())],
            ProtocolError::protocol("data after close"),
        ),
        (
            Role::Server,
            wire(Role::Client, &[(O::Close, true, b"\x03")]),
            vec![],
            ProtocolError::protocol("close payload of one byte"),
        ),
        (
            Role::Server,
            wire(Role::Client, &[(O::Close, true, b"\x03\xed")]),
            vec![],
            ProtocolError::protocol("invalid close code"),
        ),
        (
            Role::Client,
            wire(Role::Server, &[(O::Close, true, b"\x03\xe8\xff")]),
            vec![],
            ProtocolError::invalid_data("close reason is not UTF-8"),
        ),
        // Text ending inside a character, including through an empty final frame.
        (
            Role::Client,
            wire(Role::Server, &[text(true, b"ok\xe2\x82")]),
            vec![frame(Text, true, true, 4)],
            ProtocolError::invalid_data("text ends inside a character"),
        ),
        (
            Role::Server,
            wire(
                Role::Client,
                &[text(false, b"ok\xe2"), (O::Continuation, true, b"")],
            ),
            vec![
                frame(Text, true, false, 3),
                data(b"ok\xe2", false),
                frame(Text, false, true, 0),
            ],
            ProtocolError::invalid_data("text ends inside a character"),
        ),
    ];
    // Everything above is refused whatever comes after it.
    for case in cases.iter_mut() {
        case.1
            .extend_from_slice(&wire(Role::Server, &[(O::Binary, true, b"tail")]));
    }
    for (role, input, events, error) in cases {
        let got = all_splits(role, small(), &input);
        assert_eq!(
            got,
            Outcome {
                events,
                error: Some(error)
            },
            "{role:?} {input:02x?}"
        );
    }
}

/// The chunk holding the first impossible byte fails; everything delivered before it is a valid
/// prefix. Autobahn 6.4.1's payload, with the fault at payload byte 12.
#[test]
fn utf8_fails_on_the_chunk_with_the_bad_byte() {
    let payload = [
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65,
        0x64, 0x69, 0x74, 0x65, 0x64,
    ];
    let bad_at = 12;
    for from in [Role::Client, Role::Server] {
        let role = if from == Role::Client {
            Role::Server
        } else {
            Role::Client
        };
        let input = wire(from, &[(OpCode::Text, true, &payload)]);
        let header_len = input.len() - payload.len();
        for cut in 0..=input.len() {
            let got = feed(role, WsLimits::default(), &[&input[..cut], &input[cut..]]);
            assert_eq!(
                got.error,
                Some(ProtocolError::invalid_data("invalid UTF-8 in text"))
            );
            // The first part's payload is delivered unless it holds the bad byte.
            let delivered = if cut > header_len + bad_at {
                0
            } else {
                cut.saturating_sub(header_len)
            };
            let mut want = vec![frame(Text, true, true, payload.len() as u64)];
            if delivered > 0 {
                want.push(Data {
                    data: payload[..delivered].to_vec(),
                    frame_end: false,
                    message_end: false,
                });
            }
            assert_eq!(got.events, want, "{from:?} cut {cut}");
        }
    }
}

#[test]
fn control_frames_wait_until_whole() {
    let input = wire(Role::Client, &[(OpCode::Ping, true, b"abc")]);
    let mut reader = Reader::new(Role::Server, WsLimits::default());
    for cut in 0..input.len() {
        let mut part = input[..cut].to_vec();
        assert_eq!(reader.read(&mut part), Ok((0, None)), "cut {cut}");
        assert_eq!(part, input[..cut], "nothing unmasked early");
    }
    let mut whole = input.clone();
    assert_eq!(
        reader.read(&mut whole),
        Ok((input.len(), Some(Event::Ping(b"abc"))))
    );
}

#[test]
fn reader_flags() {
    let mut reader = Reader::new(Role::Client, WsLimits::default());
    let mut input = wire(Role::Server, &[(OpCode::Text, false, b"ab")]);
    assert!(!reader.in_message());
    let (n, _) = reader.read(&mut input).unwrap();
    assert!(reader.in_message());
    input.drain(..n);
    assert_eq!(reader.read(&mut input).unwrap().0, 2);
    assert!(reader.in_message(), "fragmented message still open");
    let mut rest = wire(
        Role::Server,
        &[
            (OpCode::Continuation, true, b""),
            (OpCode::Close, true, b""),
        ],
    );
    let mut total = 0;
    while let (n, Some(_)) = reader.read(&mut rest[total..]).unwrap() {
        total += n;
    }
    assert!(!reader.in_message());
    assert!(reader.close_received());
}

/// Random messages, randomly fragmented with control frames in between, written by the writer for
/// either role and read back in random pieces.
#[test]
fn writer_reader_round_trip() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for round in 0..400 {
        let (role, from) = if round % 2 == 0 {
            (Role::Server, Role::Client)
        } else {
            (Role::Client, Role::Server)
        };
        let mut input = Vec::new();
        let mut want = Vec::new();
        for _ in 0..rng.below(6) {
            let kind = if rng.below(2) == 0 { Text } else { Binary };
            let msg: Vec<u8> = match kind {
                Text => "ascii é € 🦀 ".repeat(rng.below(40)).into_bytes(),
                Binary => (0..rng.below(3000)).map(|_| rng.next() as u8).collect(),
            };
            let max = 1 + rng.below(msg.len() + 1);
            let mut first = true;
            for frag in split_message(kind, &msg, max) {
                if rng.below(4) == 0 {
                    let ping: Vec<u8> = (0..rng.below(126)).map(|_| rng.next() as u8).collect();
                    let mask = from
                        .writes_masked()
                        .then(|| (rng.next() as u32).to_le_bytes());
                    encode_frame(&mut input, OpCode::Ping, true, &ping, mask);
                    want.push(Ping(ping));
                }
                let mask = from
                    .writes_masked()
                    .then(|| (rng.next() as u32).to_le_bytes());
                encode_frame(&mut input, frag.opcode, frag.fin, frag.payload, mask);
                want.push(frame(kind, first, frag.fin, frag.payload.len() as u64));
                want.push(data(frag.payload, frag.fin));
                first = false;
            }
        }
        if rng.below(2) == 0 {
            let code = 1000 + rng.below(4) as u16;
            let mask = from
                .writes_masked()
                .then(|| (rng.next() as u32).to_le_bytes());
            encode_close(&mut input, Some(code), "done", mask);
            want.push(Close(Some(code), "done".into()));
        }
        let mut parts = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + 1 + rng.below(700)).min(input.len());
            parts.push(&input[pos..end]);
            pos = end;
        }
        let got = feed(role, WsLimits::default(), &parts);
        assert_eq!(
            got,
            Outcome {
                events: want,
                error: None
            },
            "round {round}"
        );
    }
}

/// Mostly-valid frames with corruption, and plain noise, for both roles and tight limits: no panic,
/// `feed`'s invariants hold, and text passed on is always a prefix of valid UTF-8.
#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let text_source = "aé€🦀".repeat(40);
    let mut errors = 0;
    for round in 0..4000 {
        let role = if round % 2 == 0 {
            Role::Server
        } else {
            Role::Client
        };
        let from = if rng.below(16) == 0 {
            role
        } else if role == Role::Server {
            Role::Client
        } else {
            Role::Server
        };
        let limits = if rng.below(2) == 0 {
            small()
        } else {
            WsLimits::default()
        };
        let mut input = Vec::new();
        // Mostly a well-formed frame sequence (so later frames get read), with now and then a frame
        // of any opcode and FIN, or noise.
        let mut open: Option<MessageKind> = None;
        let mut text_pos = 0;
        for _ in 0..rng.below(10) {
            if rng.below(20) == 0 {
                input.extend((0..rng.below(20)).map(|_| rng.next() as u8));
                continue;
            }
            let any_bits = (rng.below(24) == 0).then(|| rng.below(16) as u8);
            let opcode = match (any_bits, rng.below(30)) {
                (Some(bits), _) => OpCode::from_bits(bits).unwrap_or(OpCode::Binary),
                (None, 0) => OpCode::Close,
                (None, 1..=6) => [OpCode::Ping, OpCode::Pong][rng.below(2)],
                (None, _) if open.is_some() => OpCode::Continuation,
                (None, _) => [OpCode::Text, OpCode::Binary][rng.below(2)],
            };
            let fin = opcode.is_control() || rng.below(3) > 0;
            let cap = if opcode.is_control() {
                126
            } else {
                limits.max_frame.min(40) as usize + 2
            };
            let mut len = rng.below(cap);
            let kind = match opcode {
                OpCode::Text => Some(Text),
                OpCode::Binary => Some(Binary),
                OpCode::Continuation => open,
                _ => None,
            };
            if kind.is_some() && !opcode.is_control() {
                open = (!fin).then_some(kind).flatten();
            }
            let payload: Vec<u8> = if kind == Some(Text) && rng.below(6) > 0 {
                if opcode == OpCode::Text {
                    text_pos = 0;
                }
                // A message's frames carry consecutive bytes of valid text, ending on a boundary.
                while fin && !text_source.is_char_boundary(text_pos + len) {
                    len += 1;
                }
                let piece = text_source.as_bytes()[text_pos..text_pos + len].to_vec();
                text_pos += len;
                piece
            } else if opcode == OpCode::Close && rng.below(2) == 0 {
                (1000 + rng.below(5) as u16).to_be_bytes().to_vec()
            } else {
                (0..len).map(|_| rng.next() as u8).collect()
            };
            let mask = from
                .writes_masked()
                .then(|| (rng.next() as u32).to_le_bytes());
            let at = input.len();
            encode_frame(&mut input, opcode, fin, &payload, mask);
            if let Some(bits) = any_bits {
                input[at] = (input[at] & 0x70) | bits | if rng.below(2) == 0 { 0x80 } else { 0 };
            }
        }
        if !input.is_empty() && rng.below(4) == 0 {
            let at = rng.below(input.len());
            input[at] ^= 1 << rng.below(8);
        }
        let mut parts = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + 1 + rng.below(30)).min(input.len());
            parts.push(&input[pos..end]);
            pos = end;
        }
        let got = feed(role, limits, &parts);
        errors += usize::from(got.error.is_some());
        // Text handed on, message by message, never contains a byte that rules out valid UTF-8.
        let mut text: Option<Vec<u8>> = None;
        for ev in &got.events {
            match ev {
                Ev::Frame {
                    kind: Text,
                    first: true,
                    ..
                } => text = Some(Vec::new()),
                Ev::Frame {
                    kind: Binary,
                    first: true,
                    ..
                } => text = None,
                Data {
                    data, message_end, ..
                } => {
                    if let Some(t) = text.as_mut() {
                        t.extend_from_slice(data);
                        match std::str::from_utf8(t) {
                            Ok(_) => {}
                            Err(e) => {
                                assert!(e.error_len().is_none() && !message_end, "{t:02x?}")
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert!(errors > 1000 && errors < 3500, "{errors} of 4000 failed");
}
