//! Invalid UTF-8 fails with 1007 in the call that brings the byte that makes the text
//! impossible.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::string::string_regex;
use proptest::test_runner::TestCaseResult;

use crate::common::wire::{client_frame, CLOSE, FIN};

use super::library::{close_code_of, INVALID_UTF8};
use super::stream::{check_run, chunks, failure_close_from_server, feed, Chunks, Ev};
use super::valid::{close_code, mask, serialize, DataSpec};

#[derive(Clone, Debug)]
pub struct BadTextCase {
    pub prefix: String,
    pub bad: Vec<u8>,
    pub suffix: Vec<u8>,
    pub cuts: Vec<Index>,
    pub masks: Vec<[u8; 4]>,
    pub close_code: u16,
    pub chunks: Chunks,
}

pub fn bad_utf8() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0x80u8..=0xBF).prop_map(|b| vec![b]), // a lone continuation byte
        (0xC0u8..=0xC1, 0x80u8..=0xBF).prop_map(|(a, b)| vec![a, b]), // overlong, 2 bytes
        (0xF5u8..=0xFF).prop_map(|b| vec![b]), // never a lead byte
        (0x80u8..=0x9F).prop_map(|b| vec![0xE0, b, 0x80]), // overlong, 3 bytes
        (0xA0u8..=0xBF).prop_map(|b| vec![0xED, b, 0x80]), // a surrogate
        (0x80u8..=0x8F).prop_map(|b| vec![0xF0, b, 0x80, 0x80]), // overlong, 4 bytes
        (0x90u8..=0xBF).prop_map(|b| vec![0xF4, b, 0x80, 0x80]), // past U+10FFFF
        (0xC2u8..=0xF4, 0u8..=0x7F).prop_map(|(a, b)| vec![a, b]), // cut short by ASCII
        (0xE1u8..=0xEC).prop_map(|a| vec![a, 0x80]), // possibly cut short by the end
        Just(vec![0xF0, 0x9F, 0x98]),          // 3 of 4 bytes of an emoji
    ]
}

pub fn bad_text_case() -> impl Strategy<Value = BadTextCase> {
    (
        string_regex(".{0,40}").expect("a valid regex"),
        bad_utf8(),
        prop_oneof![
            2 => Just(Vec::new()),
            2 => string_regex(".{0,20}").expect("a valid regex").prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..20),
        ],
        prop::collection::vec(any::<Index>(), 0..4),
        prop::collection::vec(mask(), 1..4),
        close_code(),
        chunks(),
    )
        .prop_map(
            |(prefix, bad, suffix, cuts, masks, close_code, chunks)| BadTextCase {
                prefix,
                bad,
                suffix,
                cuts,
                masks,
                close_code,
                chunks,
            },
        )
}

/// Where text stops being a prefix of valid UTF-8.
#[derive(Debug, PartialEq)]
pub enum Invalid {
    /// At this byte: no continuation can make the text valid any more.
    At(usize),
    /// Only at the end: the last code point is cut short.
    AtEnd,
}

pub fn first_invalid(text: &[u8]) -> Option<Invalid> {
    let err = std::str::from_utf8(text).err()?;
    let start = err.valid_up_to();
    (start + 1..=text.len().min(start + 4))
        .find(|&end| std::str::from_utf8(&text[..end]).is_err_and(|err| err.error_len().is_some()))
        .map_or(Some(Invalid::AtEnd), |end| Some(Invalid::At(end - 1)))
}

pub fn check_bad_text(case: &BadTextCase) -> TestCaseResult {
    let payload = [case.prefix.as_bytes(), &case.bad, &case.suffix].concat();
    let message = DataSpec {
        text: true,
        len: payload.len(),
        seed: 0,
        cuts: case.cuts.clone(),
        inside: Vec::new(),
        masks: case.masks.clone(),
    };
    let mut plan = Vec::new();
    message.plan(&payload, 0, &mut plan);
    let (mut bytes, placed) = serialize(&plan);
    bytes.extend(client_frame(
        FIN | CLOSE,
        &case.close_code.to_be_bytes(),
        case.masks[0],
    ));
    // The stream offset of the byte that decides: the impossible byte, or the end of the
    // final frame when only the last code point is cut short.
    let decisive = match first_invalid(&payload) {
        None => {
            // The suffix completed the sequence: it is just a valid message.
            let run = feed(1 << 20, &bytes, &case.chunks)?;
            let text = String::from_utf8(payload).expect("checked");
            prop_assert_eq!(
                run.events(),
                vec![Ev::Text(text), Ev::Closed(Some(case.close_code))]
            );
            return Ok(());
        }
        Some(Invalid::AtEnd) => placed.last().expect("a frame").end - 1,
        Some(Invalid::At(index)) => {
            let mut start = 0;
            plan.iter()
                .zip(&placed)
                .find_map(|(frame, place)| {
                    let found = (index < start + frame.payload.len())
                        .then(|| place.header_end + index - start);
                    start += frame.payload.len();
                    found
                })
                .expect("the index is in some frame")
        }
    };
    let run = feed(1 << 20, &bytes, &case.chunks)?;
    check_run(&run, 1 << 20)?;
    prop_assert_eq!(run.events(), vec![Ev::Failed(INVALID_UTF8)]);
    prop_assert_eq!(close_code_of(INVALID_UTF8), 1007);
    let failed = &run.steps[0];
    prop_assert!(
        failed.consumed.contains(&decisive),
        "1007 came from the call that consumed {:?}, not from the one that brought byte {} \
         (where the text became impossible)",
        failed.consumed,
        decisive
    );
    prop_assert_eq!(&run.out, &failure_close_from_server(INVALID_UTF8));
    prop_assert!(
        run.finished,
        "the protocol still reads after 1007 (RFC 6455 §7.1.7)"
    );
    Ok(())
}
