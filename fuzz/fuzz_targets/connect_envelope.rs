//! The Connect envelope codec (`stasis_proto::connect`), as envd reads request bodies and the
//! SDK reads envd's streams: bytes that may be anything, arriving in pieces of any size.
//!
//! Input: one control byte (low nibble: piece size - 1; high nibble: the size limit), then the
//! stream. Checks: no panic; every envelope taken out re-encodes to exactly the bytes it came
//! from, in order, and is within the limit; a size error names the declared size, which is over
//! the limit; what is left at the end is reported as truncated; `decode_single` accepts exactly
//! one whole uncompressed envelope and otherwise fails with a client-error code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stasis_proto::connect::{self, Code, EndStream, EnvelopeDecoder, EnvelopeError, ENVELOPE_HEADER_LEN};

fn limit(nibble: u8) -> usize {
    match nibble {
        0 => 0,
        1..=12 => 1 << nibble,
        _ => 1 << 20,
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, data)) = input.split_first() else { return };
    let piece = usize::from(ctl & 0x0f) + 1;
    let limit = limit(ctl >> 4);

    let mut dec = EnvelopeDecoder::new(limit);
    let mut consumed = 0;
    let mut failed = None;
    'feed: for chunk in data.chunks(piece) {
        dec.push(chunk);
        loop {
            match dec.next_envelope() {
                Ok(Some(env)) => {
                    assert!(env.data.len() <= limit, "{} bytes taken out under a limit of {limit}", env.data.len());
                    let bytes = connect::encode_envelope(env.flags, &env.data);
                    assert_eq!(&data[consumed..consumed + bytes.len()], &bytes[..], "envelope at offset {consumed}");
                    consumed += bytes.len();
                    if env.is_end_stream() {
                        // The SDK reads the end of a stream this way; any payload is fine.
                        let _ = connect::parse_json::<EndStream>(&env.data);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break 'feed;
                }
            }
        }
    }
    match failed {
        Some(EnvelopeError::TooLarge { size, limit: reported }) => {
            assert_eq!(reported, limit);
            assert!(size > limit);
            let header = &data[consumed..consumed + ENVELOPE_HEADER_LEN];
            assert_eq!(size, u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize);
        }
        Some(e @ EnvelopeError::Truncated(_)) => panic!("next_envelope reported {e}"),
        None => match dec.finish() {
            Ok(()) => assert_eq!(consumed, data.len()),
            Err(EnvelopeError::Truncated(left)) => assert_eq!(consumed + left, data.len()),
            Err(e) => panic!("finish reported {e}"),
        },
    }

    match connect::decode_single(data, limit) {
        Ok(env) => {
            assert!(!env.is_compressed());
            assert_eq!(connect::encode_envelope(env.flags, &env.data), data);
        }
        Err(e) => assert!(matches!(e.code, Code::InvalidArgument | Code::ResourceExhausted | Code::Unimplemented), "{e:?}"),
    }
});
