//! Properties of the protocol state machine over whole byte streams, with no sockets: any
//! bytes in any chunking give the same events and output, valid streams give exactly their
//! messages, pongs and close, and the size limit and UTF-8 fail at the very byte that
//! decides. `cargo test --test protocol_properties` runs each for 500 to 2,000 cases;
//! `PROPTEST_CASES=N` runs N cases of each instead. Failing cases are shrunk and printed,
//! not written to a regressions file.

mod common;
mod props;

use proptest::prelude::*;

use props::any_bytes::{any_case, check_any_input};
use props::config;
use props::limits::{check_claim, check_limit, claim_case, limit_case};
use props::utf8::{bad_text_case, check_bad_text};
use props::valid::{check_valid_stream, valid_case};

proptest! {
    #![proptest_config(config(2000))]

    /// Any bytes, in any chunking: no panic, progress on every call, and exactly the events
    /// and bytes out of the same bytes delivered whole (and one at a time).
    #[test]
    fn any_bytes_in_any_chunking_give_the_same_events_and_output(case in any_case(1)) {
        check_any_input(&case)?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// The header of a frame that takes a message past the limit fails with 1009 in the call
    /// that completes the header, before any payload arrives, and costs no memory.
    #[test]
    fn a_length_claim_past_the_limit_fails_with_1009_from_the_header(case in claim_case()) {
        check_claim(&case)?;
    }

    /// Messages up to the limit are delivered; the first frame past it fails with 1009, and
    /// the peer's close frame is still found after the skipped rest.
    #[test]
    fn messages_past_the_limit_fail_with_1009_and_none_is_delivered(case in limit_case()) {
        check_limit(&case)?;
    }

    /// Invalid UTF-8 fails with 1007 in the very call that brings the byte that makes the
    /// text impossible (or the end of the message, for a code point cut short by it).
    #[test]
    fn invalid_utf8_fails_with_1007_in_the_call_that_brings_it(case in bad_text_case()) {
        check_bad_text(&case)?;
    }
}

proptest! {
    // Valid streams carry messages of up to 70 kB.
    #![proptest_config(config(500))]

    /// A valid stream (text and binary messages in fragments of every length class, pings
    /// and pongs between them, random masks) in any chunking: exactly its messages in
    /// order, a pong per ping with its payload, and Closed with a close reply at the end.
    #[test]
    fn a_valid_stream_in_any_chunking_gives_its_messages_pongs_and_close(
        case in valid_case(6)
    ) {
        check_valid_stream(&case)?;
    }
}
