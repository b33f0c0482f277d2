//! Properties of the frame codec (RFC 6455 §5.2–5.3), with no sockets: the library's
//! header encoder and parser agree with the RFC byte for byte, and its masking equals the
//! byte-at-a-time definition however it is split.

mod common;
mod props;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestCaseResult};

use common::wire::{self, LenField, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, TEXT};
use props::config;
use props::library::{self, Header};
use props::payloads::binary_payload;
use props::valid::mask;

/// Every opcode RFC 6455 §5.2 defines, as its wire value.
fn opcode() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG])
}

#[derive(Clone, Debug)]
struct RoundTripCase {
    opcode: u8,
    len: usize,
    seed: u64,
    mask: [u8; 4],
}

/// Lengths up to this get a real payload; longer ones round-trip the header only.
const MATERIALIZED: usize = 200_000;

fn round_trip_case() -> impl Strategy<Value = RoundTripCase> {
    (opcode(), any::<u64>(), mask())
        .prop_flat_map(|(opcode, seed, mask)| {
            // RFC 6455 §5.5: control frames (opcodes 0x8 and up) carry at most 125 bytes.
            let len = if opcode & 0x8 != 0 {
                (0usize..=125).boxed()
            } else {
                prop_oneof![
                    Just(0usize),
                    1usize..=125,
                    prop::sample::select(vec![125usize, 126, 127, 65535, 65536]),
                    126usize..=65535,
                    65536usize..=MATERIALIZED,
                    65536usize..=(i64::MAX as usize),
                ]
                .boxed()
            };
            (Just((opcode, seed, mask)), len)
        })
        .prop_map(|((opcode, seed, mask), len)| RoundTripCase {
            opcode,
            len,
            seed,
            mask,
        })
}

fn check_round_trip(case: &RoundTripCase) -> TestCaseResult {
    let header = library::encode_header(case.opcode, case.len, case.mask);
    // The encoder agrees with the RFC, byte for byte.
    let len = case.len as u64;
    let by_hand = wire::header(FIN | case.opcode, len, LenField::Shortest, Some(case.mask));
    prop_assert_eq!(&header, &by_hand);
    let header_len = header.len();
    let mut frame = header;
    let payload = (case.len <= MATERIALIZED).then(|| binary_payload(case.len, case.seed));
    if let Some(payload) = &payload {
        let start = frame.len();
        frame.extend_from_slice(payload);
        library::apply_mask(&mut frame[start..], case.mask, 0);
    }
    let (parsed, parsed_len) = library::parse_client_header(&frame)
        .map_err(|err| TestCaseError::fail(format!("parse_client: {err:?}")))?
        .ok_or_else(|| TestCaseError::fail("a whole header parsed as incomplete"))?;
    prop_assert_eq!(parsed_len, header_len);
    prop_assert_eq!(
        parsed,
        Header {
            fin: true,
            opcode: case.opcode,
            mask: Some(case.mask),
            payload_len: len,
        }
    );
    for cut in 0..header_len {
        prop_assert_eq!(
            library::parse_client_header(&frame[..cut]),
            Ok(None),
            "cut {}",
            cut
        );
    }
    if let Some(payload) = &payload {
        let mut decoded = frame[header_len..].to_vec();
        library::apply_mask(&mut decoded, parsed.mask.expect("masked"), 0);
        prop_assert!(&decoded == payload, "the payload did not round-trip");
        // A server frame of the same payload is refused from a client: it is unmasked.
        let server = library::encode_frame(case.opcode, payload);
        prop_assert_eq!(
            library::parse_client_header(&server),
            Err(library::UNMASKED)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    /// Masking in two pieces at any offset equals the byte-at-a-time definition, and
    /// masking twice restores the data.
    #[test]
    fn apply_mask_in_pieces_equals_the_definition(
        data in prop::collection::vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        offset in prop_oneof![0usize..16, any::<u32>().prop_map(|o| o as usize)],
        split in any::<Index>(),
    ) {
        let split = split.index(data.len() + 1);
        let mut pieces = data.clone();
        library::apply_mask(&mut pieces[..split], key, offset);
        library::apply_mask(&mut pieces[split..], key, offset + split);
        prop_assert_eq!(&pieces, &wire::xor_mask(&data, key, offset));
        library::apply_mask(&mut pieces, key, offset);
        prop_assert_eq!(pieces, data);
    }
}

proptest! {
    // Round trips of up to 200 kB payloads.
    #![proptest_config(config(500))]

    /// Encoding a masked header and masking the payload, then parsing and unmasking, is the
    /// identity for every opcode, length class and mask.
    #[test]
    fn encode_then_decode_is_the_identity(case in round_trip_case()) {
        check_round_trip(&case)?;
    }
}
