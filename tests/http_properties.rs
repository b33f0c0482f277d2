//! Properties of the HTTP request head, with no sockets: the head reader gives the same
//! outcome in any chunking and never retains more than its limit, and the request parser
//! never panics and parses a well-formed head into its parts.

mod common;
mod props;

use proptest::prelude::*;
use proptest::string::string_regex;

use props::config;
use props::http::{
    check_good_head, check_head, good_head, head_bytes, head_case, with_control_character,
};
use props::library::parse_request;
use props::stream::chunks;

proptest! {
    #![proptest_config(config(2000))]

    /// The head reader: the same outcome and head in any chunking, never more retained
    /// than its limit; the parser never panics on what it gives.
    #[test]
    fn head_reader_is_chunking_invariant_and_bounded(case in head_case(1)) {
        check_head(&case)?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// The request parser never panics, whatever the bytes.
    #[test]
    fn request_parse_never_panics(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            string_regex("(.{0,12}[\r\n: ]){0,12}").expect("a valid regex").prop_map(String::into_bytes),
            head_bytes(),
        ]
    ) {
        let _ = parse_request(&data);
    }
}

proptest! {
    // Well-formed heads.
    #![proptest_config(config(500))]

    /// A well-formed head, in any chunking, is read whole and parsed into its parts.
    #[test]
    fn a_well_formed_head_parses_into_its_parts(head in good_head(), chunks in chunks()) {
        check_good_head(&head, &chunks)?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// A well-formed head with a control character (anything below 0x20 but a tab and
    /// LF, which ends a line, or 0x7F) put into its target or one header value is
    /// refused with 400, never parsed.
    #[test]
    fn a_control_character_in_a_field_is_refused(
        head in good_head(),
        place in any::<prop::sample::Index>(),
        control in prop_oneof![0u8..0x09, 0x0Bu8..0x20, Just(0x7Fu8)],
    ) {
        let bytes = with_control_character(&head, place, control);
        let refused = parse_request(&bytes).map(|_| ()).map_err(|r| r.status().0);
        prop_assert_eq!(refused, Err(400), "{:?}", String::from_utf8_lossy(&bytes));
    }
}
