//! Valid streams: text and binary messages in fragments of every length class, pings and
//! pongs between them, a close at the end, and exactly what each must produce.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::string::string_regex;
use proptest::test_runner::TestCaseResult;

use crate::common::wire::{
    client_frame, server_frame, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, TEXT,
};

use super::payloads::{binary_payload, text_payload};
use super::stream::{check_run, chunks, close_frame_from_server, feed, Chunks, Ev};

/// A ping or pong.
#[derive(Clone, Debug)]
pub struct ControlSpec {
    pub ping: bool,
    pub payload: Vec<u8>,
    pub mask: [u8; 4],
}

/// A data message: `len` payload bytes from `seed`, cut into fragments at `cuts`, with
/// control frames between the fragments.
#[derive(Clone, Debug)]
pub struct DataSpec {
    pub text: bool,
    pub len: usize,
    pub seed: u64,
    pub cuts: Vec<Index>,
    pub inside: Vec<(Index, ControlSpec)>,
    pub masks: Vec<[u8; 4]>,
}

#[derive(Clone, Debug)]
pub enum ItemSpec {
    Data(DataSpec),
    Control(ControlSpec),
}

#[derive(Clone, Debug)]
pub struct CloseSpec {
    pub code: Option<u16>,
    pub reason: String,
    pub mask: [u8; 4],
}

#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub items: Vec<ItemSpec>,
    pub close: CloseSpec,
    /// Bytes after the close frame, which must be ignored.
    pub trailing: Vec<u8>,
}

/// A frame to send, with what it belongs to.
#[derive(Clone, Debug)]
pub struct Planned {
    pub first: u8,
    pub payload: Vec<u8>,
    pub mask: [u8; 4],
    /// The index of the data message this frame carries a piece of.
    pub message: Option<usize>,
}

/// Where a planned frame landed in the stream.
#[derive(Clone, Debug)]
pub struct Placed {
    pub header_end: usize,
    pub end: usize,
}

pub fn serialize(plan: &[Planned]) -> (Vec<u8>, Vec<Placed>) {
    let mut bytes = Vec::new();
    let mut placed = Vec::new();
    for frame in plan {
        let encoded = client_frame(frame.first, &frame.payload, frame.mask);
        let header_len = encoded.len() - frame.payload.len();
        placed.push(Placed {
            header_end: bytes.len() + header_len,
            end: bytes.len() + encoded.len(),
        });
        bytes.extend(encoded);
    }
    (bytes, placed)
}

impl DataSpec {
    pub fn payload(&self) -> Vec<u8> {
        if self.text {
            text_payload(self.len, self.seed).into_bytes()
        } else {
            binary_payload(self.len, self.seed)
        }
    }

    pub fn event(&self, payload: Vec<u8>) -> Ev {
        if self.text {
            Ev::Text(String::from_utf8(payload).expect("generated text is UTF-8"))
        } else {
            Ev::Binary(payload)
        }
    }

    /// Plans the frames of this message (and the control frames between them).
    pub fn plan(&self, payload: &[u8], message: usize, plan: &mut Vec<Planned>) {
        let mut bounds: Vec<usize> = self.cuts.iter().map(|i| i.index(self.len + 1)).collect();
        bounds.push(0);
        bounds.push(self.len);
        bounds.sort_unstable();
        let fragments = bounds.len() - 1;
        let mut inside: Vec<(usize, &ControlSpec)> = self
            .inside
            .iter()
            .map(|(gap, control)| (gap.index(fragments), control))
            .collect();
        inside.sort_by_key(|(gap, _)| *gap);
        let mut inside = inside.into_iter().peekable();
        for (k, piece) in bounds.windows(2).enumerate() {
            let opcode = match (k, self.text) {
                (0, true) => TEXT,
                (0, false) => BINARY,
                _ => CONTINUATION,
            };
            let fin = if k + 1 == fragments { FIN } else { 0 };
            plan.push(Planned {
                first: fin | opcode,
                payload: payload[piece[0]..piece[1]].to_vec(),
                mask: self.masks[k % self.masks.len()],
                message: Some(message),
            });
            while let Some((_, control)) = inside.next_if(|(gap, _)| *gap == k) {
                plan.push(control.plan());
            }
        }
    }
}

impl ControlSpec {
    pub fn plan(&self) -> Planned {
        Planned {
            first: FIN | if self.ping { PING } else { PONG },
            payload: self.payload.clone(),
            mask: self.mask,
            message: None,
        }
    }
}

impl CloseSpec {
    pub fn payload(&self) -> Vec<u8> {
        match self.code {
            Some(code) => [&code.to_be_bytes()[..], self.reason.as_bytes()].concat(),
            None => Vec::new(),
        }
    }

    pub fn reply(&self) -> Vec<u8> {
        match self.code {
            Some(code) => close_frame_from_server(code),
            None => server_frame(FIN | CLOSE, &[]),
        }
    }
}

/// A valid stream with what it must produce.
pub struct Expected {
    pub bytes: Vec<u8>,
    pub events: Vec<Ev>,
    pub out: Vec<u8>,
}

impl StreamSpec {
    pub fn plan(&self) -> (Vec<Planned>, Vec<Ev>) {
        let mut plan = Vec::new();
        let mut events = Vec::new();
        for item in &self.items {
            match item {
                ItemSpec::Data(data) => {
                    let payload = data.payload();
                    data.plan(&payload, events.len(), &mut plan);
                    events.push(data.event(payload));
                }
                ItemSpec::Control(control) => plan.push(control.plan()),
            }
        }
        (plan, events)
    }

    pub fn expected(&self) -> Expected {
        let (plan, mut events) = self.plan();
        let (mut bytes, _) = serialize(&plan);
        let mut out = Vec::new();
        for frame in &plan {
            if frame.first == FIN | PING {
                out.extend(server_frame(FIN | PONG, &frame.payload));
            }
        }
        bytes.extend(client_frame(
            FIN | CLOSE,
            &self.close.payload(),
            self.close.mask,
        ));
        bytes.extend_from_slice(&self.trailing);
        events.push(Ev::Closed(self.close.code));
        out.extend(self.close.reply());
        Expected { bytes, events, out }
    }
}

pub fn mask() -> impl Strategy<Value = [u8; 4]> {
    prop_oneof![
        1 => Just([0; 4]),
        1 => Just([0xFF; 4]),
        8 => any::<[u8; 4]>(),
    ]
}

pub fn control_spec() -> impl Strategy<Value = ControlSpec> {
    (
        any::<bool>(),
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..=125),
            1 => prop::collection::vec(any::<u8>(), 125),
        ],
        mask(),
    )
        .prop_map(|(ping, payload, mask)| ControlSpec {
            ping,
            payload,
            mask,
        })
}

/// Payload lengths across the three length encodings (7-bit, 16-bit, 64-bit).
pub fn payload_len(big: bool) -> BoxedStrategy<usize> {
    if big {
        prop_oneof![
            3 => Just(0usize),
            8 => 1usize..=125,
            3 => prop::sample::select(vec![1, 125, 126, 127, 65535, 65536]),
            3 => 126usize..=1024,
            1 => 1025usize..=65535,
            2 => 65536usize..=70_000,
        ]
        .boxed()
    } else {
        prop_oneof![
            1 => Just(0usize),
            4 => 1usize..=125,
            1 => 126usize..=300,
        ]
        .boxed()
    }
}

pub fn data_spec(len: BoxedStrategy<usize>) -> impl Strategy<Value = DataSpec> {
    (
        any::<bool>(),
        len,
        any::<u64>(),
        prop::collection::vec(any::<Index>(), 0..4),
        prop::collection::vec((any::<Index>(), control_spec()), 0..3),
        prop::collection::vec(mask(), 1..4),
    )
        .prop_map(|(text, len, seed, cuts, inside, masks)| DataSpec {
            text,
            len,
            seed,
            cuts,
            inside,
            masks,
        })
}

pub fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999]
}

pub fn close_spec() -> impl Strategy<Value = CloseSpec> {
    (
        prop::option::weighted(0.8, close_code()),
        string_regex("[a-zA-Z0-9 .éß€😀]{0,30}").expect("a valid regex"),
        mask(),
    )
        .prop_map(|(code, reason, mask)| CloseSpec { code, reason, mask })
}

pub fn stream_spec(big: bool, max_items: usize) -> impl Strategy<Value = StreamSpec> {
    (
        prop::collection::vec(
            prop_oneof![
                4 => data_spec(payload_len(big)).prop_map(ItemSpec::Data),
                1 => control_spec().prop_map(ItemSpec::Control),
            ],
            0..=max_items,
        ),
        close_spec(),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(any::<u8>(), 1..40),
        ],
    )
        .prop_map(|(items, close, trailing)| StreamSpec {
            items,
            close,
            trailing,
        })
}

#[derive(Clone, Debug)]
pub struct ValidCase {
    pub stream: StreamSpec,
    pub chunks: Chunks,
}

pub fn valid_case(max_items: usize) -> impl Strategy<Value = ValidCase> {
    (stream_spec(true, max_items), chunks())
        .prop_map(|(stream, chunks)| ValidCase { stream, chunks })
}

/// Enough for any generated message.
pub const ROOMY_LIMIT: usize = 1 << 20;

pub fn check_valid_stream(case: &ValidCase) -> TestCaseResult {
    let expected = case.stream.expected();
    let run = feed(ROOMY_LIMIT, &expected.bytes, &case.chunks)?;
    let events = run.events();
    prop_assert!(
        events == expected.events,
        "events:\n  got:      {events:?}\n  expected: {:?}",
        expected.events
    );
    prop_assert!(
        run.out == expected.out,
        "out: got {} bytes, expected {} (the pongs in order, then the close reply)",
        run.out.len(),
        expected.out.len()
    );
    prop_assert!(run.finished, "not finished after the close frame");
    check_run(&run, ROOMY_LIMIT)
}
