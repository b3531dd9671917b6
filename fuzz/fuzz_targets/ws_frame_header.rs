//! Frame header decoding: the first bytes of every frame a WebSocket peer sends.
#![no_main]

use holdfast::websocket::frame::{read_header, write_header, HEADER_SIZE_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match read_header(data) {
        Ok(Some((header, used))) => {
            assert!(used <= data.len() && used <= HEADER_SIZE_MAX);
            // The header ends at `used`: what follows cannot change it, one byte less is incomplete.
            assert_eq!(read_header(&data[..used]), Ok(Some((header, used))));
            assert_eq!(read_header(&data[..used - 1]), Ok(None));
            // Re-encoding gives the same header, in the minimal form: byte for byte when the input
            // was minimal, shorter when it was not.
            let mut out = [0u8; HEADER_SIZE_MAX];
            let n = write_header(&header, &mut out);
            assert_eq!(n, header.encoded_len());
            assert_eq!(read_header(&out[..n]), Ok(Some((header, n))));
            if n == used {
                assert_eq!(out[..n], data[..used]);
            } else {
                assert!(n < used);
            }
        }
        Ok(None) => assert!(data.len() < HEADER_SIZE_MAX),
        // Every fault shows within the first three bytes (opcode and FIN, the 7-bit length, the top
        // byte of a 64-bit length), and is reported as soon as they are in.
        Err(e) => assert_eq!(read_header(&data[..data.len().min(3)]), Err(e)),
    }
});
