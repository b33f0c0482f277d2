//! Any bytes: raw, a soup of frames with random fields (non-minimal lengths and bare length
//! claims included), or a valid stream mutated.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::string::string_regex;
use proptest::test_runner::TestCaseResult;

use crate::common::wire::{self, LenField, FIN};

use super::mutation::{mutate, mutation, Mutation};
use super::stream::{check_run, check_same, chunks, feed, Chunks};
use super::valid::{close_code, mask, stream_spec, StreamSpec, ROOMY_LIMIT};

#[derive(Clone, Debug)]
pub enum SoupLen {
    Minimal,
    Wide16,
    Wide64,
    /// A length field that does not match the payload that follows.
    Claim(u64),
}

#[derive(Clone, Debug)]
pub struct SoupFrame {
    pub first: u8,
    pub masked: bool,
    pub len: SoupLen,
    pub payload: Vec<u8>,
    pub mask: [u8; 4],
}

impl SoupFrame {
    pub fn bytes(&self) -> Vec<u8> {
        let actual = self.payload.len() as u64;
        let (len, field) = match self.len {
            SoupLen::Minimal => (actual, LenField::Shortest),
            SoupLen::Wide16 if actual <= 0xFFFF => (actual, LenField::Bits16),
            SoupLen::Wide16 | SoupLen::Wide64 => (actual, LenField::Bits64),
            SoupLen::Claim(claim) => (claim, LenField::Shortest),
        };
        let mask = self.masked.then_some(self.mask);
        let mut bytes = wire::header(self.first, len, field, mask);
        match mask {
            Some(key) => bytes.extend(wire::xor_mask(&self.payload, key, 0)),
            None => bytes.extend_from_slice(&self.payload),
        }
        bytes
    }
}

#[derive(Clone, Debug)]
pub enum Input {
    Raw(Vec<u8>),
    Soup(Vec<SoupFrame>),
    Mutated(StreamSpec, Vec<(Index, Mutation)>),
}

impl Input {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Input::Raw(bytes) => bytes.clone(),
            Input::Soup(frames) => frames.iter().flat_map(SoupFrame::bytes).collect(),
            Input::Mutated(stream, mutations) => mutate(stream.expected().bytes, mutations),
        }
    }
}

pub fn first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        8 => (any::<bool>(), prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]))
            .prop_map(|(fin, opcode)| if fin { FIN | opcode } else { opcode }),
        1 => any::<u8>(),
    ]
}

pub fn soup_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        4 => prop::collection::vec(any::<u8>(), 0..40),
        3 => string_regex(".{0,16}").expect("a valid regex").prop_map(String::into_bytes),
        // Close payloads: any code, any reason bytes.
        3 => (any::<u16>(), prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(code, reason)| [&code.to_be_bytes()[..], &reason].concat()),
        1 => (close_code(), Just(vec![0xFFu8]))
            .prop_map(|(code, reason)| [&code.to_be_bytes()[..], &reason].concat()),
        1 => prop::collection::vec(any::<u8>(), 1),
        1 => prop::collection::vec(any::<u8>(), 120..=200),
    ]
}

pub fn soup_frame() -> impl Strategy<Value = SoupFrame> {
    (
        first_byte(),
        prop::bool::weighted(0.9),
        prop_oneof![
            8 => Just(SoupLen::Minimal),
            1 => Just(SoupLen::Wide16),
            1 => Just(SoupLen::Wide64),
            1 => prop_oneof![0u64..=300, any::<u64>()].prop_map(SoupLen::Claim),
        ],
        soup_payload(),
        mask(),
    )
        .prop_map(|(first, masked, len, payload, mask)| SoupFrame {
            first,
            masked,
            len,
            payload,
            mask,
        })
}

pub fn input(scale: usize) -> impl Strategy<Value = Input> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64 * scale).prop_map(Input::Raw),
        3 => prop::collection::vec(soup_frame(), 0..8 * scale).prop_map(Input::Soup),
        3 => (
            stream_spec(false, 3 * scale),
            prop::collection::vec((any::<Index>(), mutation()), 1..=2 * scale),
        )
            .prop_map(|(stream, mutations)| Input::Mutated(stream, mutations)),
    ]
}

#[derive(Clone, Debug)]
pub struct AnyCase {
    pub max_message_size: usize,
    pub input: Input,
    pub chunks: Chunks,
}

pub fn any_case(scale: usize) -> impl Strategy<Value = AnyCase> {
    (
        prop_oneof![0usize..=64, 0usize..=2000, Just(ROOMY_LIMIT)],
        input(scale),
        chunks(),
    )
        .prop_map(|(max_message_size, input, chunks)| AnyCase {
            max_message_size,
            input,
            chunks,
        })
}

pub fn check_any_input(case: &AnyCase) -> TestCaseResult {
    let bytes = case.input.bytes();
    let max = case.max_message_size;
    let whole = feed(max, &bytes, &Chunks::whole())?;
    check_run(&whole, max)?;
    let chunked = feed(max, &bytes, &case.chunks)?;
    check_run(&chunked, max)?;
    check_same("chunked", &chunked, &whole)?;
    let bytewise = feed(max, &bytes, &Chunks::bytewise())?;
    check_same("bytewise", &bytewise, &whole)
}
