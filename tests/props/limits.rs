//! Limits: messages around a small size limit, and huge length claims, which must fail
//! with 1009 from the header alone.

use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;

use crate::common::wire::{self, client_frame, LenField, BINARY, CLOSE, CONTINUATION, FIN, TEXT};

use super::library::{close_code_of, message_too_big};
use super::stream::{
    check_run, chunks, close_frame_from_server, failure_close_from_server, feed, Chunks, Ev,
};
use super::valid::{close_code, data_spec, mask, serialize, DataSpec};

#[derive(Clone, Debug)]
pub struct LimitCase {
    pub max_message_size: usize,
    pub messages: Vec<DataSpec>,
    pub close_code: u16,
    pub close_mask: [u8; 4],
    pub chunks: Chunks,
}

pub fn limit_case() -> impl Strategy<Value = LimitCase> {
    prop_oneof![Just(1000usize), 0usize..=300]
        .prop_flat_map(|max| {
            let len = prop_oneof![
                3 => 0..=max + 100,
                1 => prop::sample::select(vec![max.saturating_sub(1), max, max + 1]),
            ]
            .boxed();
            (
                Just(max),
                prop::collection::vec(data_spec(len), 1..5),
                close_code(),
                mask(),
                chunks(),
            )
        })
        .prop_map(
            |(max_message_size, messages, close_code, close_mask, chunks)| LimitCase {
                max_message_size,
                messages: messages
                    .into_iter()
                    .map(|mut m| {
                        m.inside.clear(); // only data frames: the limit is the subject
                        m
                    })
                    .collect(),
                close_code,
                close_mask,
                chunks,
            },
        )
}

pub fn check_limit(case: &LimitCase) -> TestCaseResult {
    let max = case.max_message_size;
    let mut plan = Vec::new();
    let mut expected = Vec::new();
    for (i, message) in case.messages.iter().enumerate() {
        let payload = message.payload();
        message.plan(&payload, i, &mut plan);
        expected.push(message.event(payload));
    }
    let (mut bytes, placed) = serialize(&plan);
    bytes.extend(client_frame(
        FIN | CLOSE,
        &case.close_code.to_be_bytes(),
        case.close_mask,
    ));
    // The first frame that takes its message past the limit is refused from its header.
    let mut so_far = vec![0usize; case.messages.len()];
    let refused = plan.iter().enumerate().find_map(|(i, frame)| {
        let message = frame.message?;
        so_far[message] += frame.payload.len();
        (so_far[message] > max).then_some((i, message))
    });
    let run = feed(max, &bytes, &case.chunks)?;
    check_run(&run, max)?;
    let events = run.events();
    match refused {
        None => {
            expected.push(Ev::Closed(Some(case.close_code)));
            prop_assert!(
                events == expected,
                "events:\n  got:      {events:?}\n  expected: {expected:?}"
            );
            prop_assert_eq!(run.out, close_frame_from_server(case.close_code));
        }
        Some((frame, message)) => {
            let too_big = message_too_big(max);
            expected.truncate(message);
            expected.push(Ev::Failed(too_big));
            prop_assert!(
                events == expected,
                "events:\n  got:      {events:?}\n  expected: {expected:?}"
            );
            let failed = run.steps.last().expect("a Failed step");
            prop_assert!(
                failed.consumed.contains(&(placed[frame].header_end - 1)),
                "1009 came from the call that consumed {:?}, not from the one that completed \
                 the header ending at {}",
                failed.consumed,
                placed[frame].header_end
            );
            prop_assert_eq!(close_code_of(too_big), 1009);
            prop_assert_eq!(run.out, failure_close_from_server(too_big));
            // RFC 6455 §7.1.7: once failed, the protocol reads nothing more.
            prop_assert!(
                run.finished,
                "the protocol still reads after 1009 (RFC 6455 §7.1.7)"
            );
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct ClaimCase {
    pub max_message_size: usize,
    /// A first fragment (text or binary, not final) already received.
    pub first_fragment: Option<(bool, usize)>,
    pub claim: u64,
    pub wide: bool,
    pub fin: bool,
    pub text: bool,
    pub mask: [u8; 4],
    pub chunks: Chunks,
}

pub fn claim_case() -> impl Strategy<Value = ClaimCase> {
    prop_oneof![Just(1000usize), 0usize..=2000]
        .prop_flat_map(|max| {
            (
                Just(max),
                prop::option::of((any::<bool>(), 0..=max)),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                mask(),
                chunks(),
            )
        })
        .prop_flat_map(|(max, first_fragment, wide, fin, text, mask, chunks)| {
            let room = (max - first_fragment.map_or(0, |(_, len)| len)) as u64;
            let claim = prop_oneof![
                room + 1..=room + 300,
                room + 1..=u64::MAX >> 1,
                Just(u64::MAX >> 1),
            ];
            (
                Just((max, first_fragment, wide, fin, text, mask, chunks)),
                claim,
            )
        })
        .prop_map(
            |((max_message_size, first_fragment, wide, fin, text, mask, chunks), claim)| {
                ClaimCase {
                    max_message_size,
                    first_fragment,
                    claim,
                    wide,
                    fin,
                    text,
                    mask,
                    chunks,
                }
            },
        )
}

pub fn check_claim(case: &ClaimCase) -> TestCaseResult {
    let max = case.max_message_size;
    let mut bytes = Vec::new();
    let mut held = 0;
    let opcode = match case.first_fragment {
        Some((text, len)) => {
            let first = if text { TEXT } else { BINARY };
            bytes.extend(client_frame(first, &vec![b'a'; len], case.mask));
            held = len;
            CONTINUATION
        }
        None if case.text => TEXT,
        None => BINARY,
    };
    let first = if case.fin { FIN | opcode } else { opcode };
    let field = if case.wide {
        LenField::Bits64
    } else {
        LenField::Shortest
    };
    bytes.extend(wire::header(first, case.claim, field, Some(case.mask)));
    // Only the header: the refusal must not wait for a single payload byte.
    let run = feed(max, &bytes, &case.chunks)?;
    let events = run.events();
    let too_big = message_too_big(max);
    prop_assert_eq!(&events, &vec![Ev::Failed(too_big)]);
    prop_assert_eq!(close_code_of(too_big), 1009);
    prop_assert_eq!(&run.out, &failure_close_from_server(too_big));
    prop_assert!(
        run.steps[0].consumed.end == bytes.len(),
        "1009 came from a call that consumed {:?}; the header ends at {}",
        run.steps[0].consumed,
        bytes.len()
    );
    prop_assert!(
        run.heap_peak <= held,
        "a {}-byte claim cost {} bytes of heap ({held} bytes of payload had arrived)",
        case.claim,
        run.heap_peak
    );
    Ok(())
}
