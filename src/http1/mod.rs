//! Sans-IO HTTP/1.1 codec: bytes in, parsed heads and payload ranges out; heads and framed bodies
//! appended to caller buffers. No sockets, no clocks, no allocation proportional to peer input
//! beyond the bounded head.
//!
//! * `head`: parse request/response heads (httparse), header helpers, keep-alive/Expect rules.
//! * `framing`: which body framing a head implies (RFC 9112 6).
//! * `decode`: incremental body decoder (Content-Length, chunked, close-delimited).
//! * `encode`: body encoder, head writers, reason phrases.
//! * `headers`: header field type, list/token helpers, hop-by-hop rules.
//!
//! Every entry point accepts arbitrary bytes without panicking; they are the fuzz targets.

mod decode;
mod encode;
mod framing;
mod head;
mod headers;

pub use decode::{
    BodyDecoder, BodyError, ChunkLimits, DecodeStep, CHUNK_EXTENSION_MAX, CHUNK_SIZE_DIGITS_MAX,
    TRAILERS_SIZE_MAX,
};
pub use encode::{
    reason_phrase, write_request_head, write_response_head, BodyEncoder, CHUNK_SIZE_MAX,
};
pub use framing::{request_body_kind, response_body_kind, BodyKind, FramingError};
pub use head::{
    parse_request_head, parse_response_head, release_header_pool, HeadError, HeadLimits,
    RequestHead, ResponseHead, HEADERS_MAX, HEAD_SIZE_MAX, URI_SIZE_MAX,
};
pub use headers::{
    connection_tokens, header_has_token, header_value, header_value_str, is_hop_by_hop,
    is_valid_header_name, is_valid_header_value, remove_headers, set_header, transfer_codings,
    Header, Version,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64 so failures reproduce.
    use crate::test_rng::XorShift64 as Rng;

    /// Mostly bytes that matter to HTTP framing, so the parsers get past their first checks.
    fn bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] =
            b"\r\n\r\n :;,0123456789abcdefABCDEF GET /HTTP/1.1\tchunked\x00\xff";
        let len = rng.below(max_len + 1);
        (0..len)
            .map(|_| {
                if rng.below(8) == 0 {
                    (rng.next() & 0xff) as u8
                } else {
                    ALPHABET[rng.below(ALPHABET.len())]
                }
            })
            .collect()
    }

    fn check_decoder(kind: BodyKind, limits: ChunkLimits, input: &[u8]) {
        let mut dec = BodyDecoder::new(kind, limits);
        let mut rest = input;
        // An error ends the stream; the caller would close the connection.
        while let Ok(step) = dec.decode(rest) {
            assert!(step.consumed <= rest.len());
            assert!(step.data.start <= step.data.end);
            assert!(step.data.end <= step.consumed);
            assert_eq!(step.done, dec.is_done());
            rest = &rest[step.consumed..];
            if step.consumed == 0 || step.done {
                break;
            }
        }
        let _ = dec.finish_on_eof();
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let small = HeadLimits {
            max_head: 64,
            max_headers: 3,
            max_uri: 16,
        };
        let tight = ChunkLimits {
            max_size_digits: 3,
            max_extension: 4,
            max_trailers: 10,
        };
        for i in 0..5000 {
            let mut input = bytes(&mut rng, 200);
            // Give a third of the cases a plausible start so header parsing gets exercised.
            if i % 3 == 0 {
                let mut framed = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n".to_vec();
                framed.extend_from_slice(&input);
                input = framed;
            }
            for limits in [HeadLimits::default(), small] {
                if let Ok(Some((head, consumed))) = parse_request_head(&input, &limits) {
                    assert!(consumed <= input.len() && consumed <= limits.max_head);
                    assert!(head.target.len() <= limits.max_uri);
                    assert!(head.headers.len() <= limits.max_headers);
                    let _ = head.keep_alive();
                    let _ = head.expects_continue();
                    let _ = connection_tokens(&head.headers);
                    if let Ok(kind) = request_body_kind(&head) {
                        check_decoder(kind, ChunkLimits::default(), &input[consumed..]);
                    }
                }
                if let Ok(Some((head, consumed))) = parse_response_head(&input, &limits) {
                    assert!(consumed <= input.len());
                    if let Ok(kind) = response_body_kind(&head, "GET") {
                        check_decoder(kind, tight, &input[consumed..]);
                    }
                }
            }
            for kind in [
                BodyKind::Chunked,
                BodyKind::Length(17),
                BodyKind::CloseDelimited,
                BodyKind::None,
            ] {
                check_decoder(kind, ChunkLimits::default(), &input);
                check_decoder(kind, tight, &input);
            }
        }
    }

    #[test]
    fn random_bodies_round_trip_chunked() {
        let mut rng = Rng(42);
        for _ in 0..300 {
            let pieces: Vec<Vec<u8>> = (0..rng.below(6)).map(|_| bytes(&mut rng, 300)).collect();
            let mut enc = BodyEncoder::new(BodyKind::Chunked);
            let mut wire = Vec::new();
            for p in &pieces {
                enc.encode(p, &mut wire).expect("ok");
            }
            enc.finish(&mut wire).expect("ok");
            let cut = rng.below(wire.len() + 1);
            let mut dec = BodyDecoder::new(BodyKind::Chunked, ChunkLimits::default());
            let mut got = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                pending.extend_from_slice(part);
                loop {
                    let step = dec.decode(&pending).expect("valid");
                    got.extend_from_slice(&pending[step.data.clone()]);
                    pending.drain(..step.consumed);
                    if step.consumed == 0 || step.done {
                        break;
                    }
                }
            }
            assert!(dec.is_done());
            assert!(pending.is_empty());
            assert_eq!(got, pieces.concat());
        }
    }
}
