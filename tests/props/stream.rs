//! Feeding a byte stream to the protocol chunk by chunk, as the server does (`feed`), the
//! protocol's events as the tests' own `Ev`, and what every delivery of any input must
//! satisfy.

use std::fmt;
use std::ops::Range;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestCaseResult};

use crate::common::wire::{server_frame, CLOSE, FIN, PONG};

use super::heap;
use super::library::{close_code_of, reason_of, Core, ProtocolError};

/// The server's close frame with `code` and no reason: its answer to the peer's close.
pub fn close_frame_from_server(code: u16) -> Vec<u8> {
    server_frame(FIN | CLOSE, &code.to_be_bytes())
}

/// The payload of the server's close frame reporting `err`: its code, then the rule.
pub fn failure_payload(err: ProtocolError) -> Vec<u8> {
    [
        &close_code_of(err).to_be_bytes()[..],
        reason_of(err).as_bytes(),
    ]
    .concat()
}

/// The server's close frame reporting `err`.
pub fn failure_close_from_server(err: ProtocolError) -> Vec<u8> {
    server_frame(FIN | CLOSE, &failure_payload(err))
}

/// What the protocol said, as owned values.
#[derive(Clone, PartialEq, Eq)]
pub enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Closed(Option<u16>),
    Failed(ProtocolError),
}

impl Ev {
    pub fn is_message(&self) -> bool {
        matches!(self, Ev::Text(_) | Ev::Binary(_))
    }

    pub fn message_len(&self) -> usize {
        match self {
            Ev::Text(text) => text.len(),
            Ev::Binary(bytes) => bytes.len(),
            _ => 0,
        }
    }
}

/// Short even for 70 kB messages: the length and the first bytes.
impl fmt::Debug for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ev::Text(text) => {
                let end = (0..=text.len().min(24))
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                write!(f, "Text({} bytes: {:?}..)", text.len(), &text[..end])
            }
            Ev::Binary(bytes) => write!(
                f,
                "Binary({} bytes: {:02x?}..)",
                bytes.len(),
                &bytes[..bytes.len().min(12)]
            ),
            Ev::Closed(code) => write!(f, "Closed({code:?})"),
            Ev::Failed(err) => write!(f, "Failed({err:?})"),
        }
    }
}

/// One event and the stream bytes consumed by the call that returned it.
#[derive(Clone, Debug)]
pub struct Step {
    pub consumed: Range<usize>,
    pub event: Ev,
}

/// Everything one delivery of a byte stream produced.
pub struct Run {
    pub steps: Vec<Step>,
    pub out: Vec<u8>,
    /// The most heap the protocol (and `out`, reserved up front) held at once.
    pub heap_peak: usize,
    pub finished: bool,
}

impl Run {
    pub fn events(&self) -> Vec<Ev> {
        self.steps.iter().map(|step| step.event.clone()).collect()
    }
}

/// A chunking: piece sizes (each at least 1), used in turn and then cycled.
#[derive(Clone, Debug)]
pub struct Chunks(pub Vec<usize>);

impl Chunks {
    pub fn whole() -> Chunks {
        Chunks(vec![usize::MAX])
    }

    pub fn bytewise() -> Chunks {
        Chunks(vec![1])
    }
}

pub fn chunks() -> impl Strategy<Value = Chunks> {
    prop::collection::vec(
        prop_oneof![
            4 => 1usize..=8,
            3 => 1usize..=300,
            1 => 1usize..=80_000,
        ],
        1..10,
    )
    .prop_map(Chunks)
}

/// Feeds `input` to a fresh protocol chunk by chunk, as the server does: each chunk is
/// handed to `receive` again and again until it is used up. Fails the test case if a call
/// takes more than it was given, or if calls stop making progress.
pub fn feed(max_message_size: usize, input: &[u8], chunks: &Chunks) -> Result<Run, TestCaseError> {
    // `receive` may unmask consumed bytes in place, so each delivery gets its own copy.
    let mut input = input.to_vec();
    let mut protocol = Core::new(max_message_size);
    // Reserved up front: every reply is shorter than the frame that caused it, plus one
    // close frame of at most 127 bytes (a control frame's payload is at most 125), so `out`
    // never grows inside `receive` and the heap count is the protocol's own.
    let mut out = Vec::with_capacity(input.len() + 127);
    let mut steps = Vec::new();
    heap::reset();
    let mut pos = 0;
    let mut sizes = chunks.0.iter().cycle();
    while pos < input.len() {
        let end = pos
            .saturating_add(*sizes.next().expect("a chunk size"))
            .min(input.len());
        let mut at = pos;
        let mut stalled = 0;
        while at < end {
            let (used, event) = protocol.receive(&mut input[at..end], &mut out);
            prop_assert!(
                used <= end - at,
                "receive used {used} of {} bytes",
                end - at
            );
            // A call may return an event without consuming anything (a refused header is
            // left in place), but the next call must then move on: the
            // server calls `receive` until its input is used up.
            stalled = if used == 0 { stalled + 1 } else { 0 };
            prop_assert!(
                stalled == 0 || (stalled == 1 && event.is_some()),
                "receive made no progress at stream offset {} (event {event:?}): a caller \
                 that loops until its input is used up would spin forever",
                at
            );
            if let Some(event) = event {
                steps.push(Step {
                    consumed: at..at + used,
                    event,
                });
            }
            at += used;
        }
        pos = end;
    }
    Ok(Run {
        steps,
        out,
        heap_peak: heap::peak(),
        finished: protocol.is_finished(),
    })
}

/// Checks what every delivery of any input must satisfy.
pub fn check_run(run: &Run, max_message_size: usize) -> TestCaseResult {
    let events = run.events();
    for event in &events {
        prop_assert!(
            event.message_len() <= max_message_size,
            "a {}-byte message passed the {max_message_size}-byte limit",
            event.message_len()
        );
    }
    prop_assert!(
        run.heap_peak <= max_message_size,
        "the protocol held {} bytes of heap with a {max_message_size}-byte limit",
        run.heap_peak
    );
    // Once the connection failed or closed, no message comes out; Closed is the very last.
    if let Some(first_end) = events.iter().position(|e| !e.is_message()) {
        prop_assert!(
            !events[first_end..].iter().any(Ev::is_message),
            "a message after {:?}: {events:?}",
            events[first_end]
        );
        if let Some(closed) = events.iter().position(|e| matches!(e, Ev::Closed(_))) {
            prop_assert_eq!(
                closed,
                events.len() - 1,
                "events after Closed: {:?}",
                events
            );
        }
    }
    // `out` is unmasked server frames: pongs, then at most one close frame, last, whose
    // code is the one the first terminal event called for.
    let frames = parse_server_frames(&run.out)?;
    let closes: Vec<_> = frames.iter().filter(|(op, _)| *op == CLOSE).collect();
    prop_assert!(closes.len() <= 1, "{} close frames sent", closes.len());
    let terminal = events.iter().find(|e| !e.is_message());
    match (terminal, closes.first()) {
        (None, None) => {}
        (Some(terminal), Some((_, payload))) => {
            prop_assert_eq!(
                frames.last().map(|f| f.0),
                Some(CLOSE),
                "frames after close"
            );
            let expected = match terminal {
                Ev::Failed(err) => failure_payload(*err),
                Ev::Closed(Some(code)) => code.to_be_bytes().to_vec(),
                _ => Vec::new(),
            };
            prop_assert_eq!(payload, &expected, "close payload after {:?}", terminal);
        }
        (terminal, close) => {
            return Err(TestCaseError::fail(format!(
                "terminal event {terminal:?} but close frame {close:?}"
            )));
        }
    }
    for (opcode, _) in &frames {
        prop_assert!(
            *opcode == PONG || *opcode == CLOSE,
            "sent opcode {opcode:#x}"
        );
    }
    if let Some(Ev::Closed(_)) = events.last() {
        prop_assert!(run.finished, "Closed but not finished");
    }
    Ok(())
}

/// Splits `out` into (opcode, payload) server frames: FIN, no RSV, unmasked, <= 125 bytes.
pub fn parse_server_frames(mut out: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, TestCaseError> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        prop_assert!(out.len() >= 2, "truncated frame in out");
        prop_assert_eq!(out[0] & 0xF0, FIN, "first byte {:#04x}", out[0]);
        prop_assert!(out[1] <= 125, "second byte {:#04x}", out[1]);
        let len = usize::from(out[1]);
        prop_assert!(out.len() >= 2 + len, "truncated payload in out");
        frames.push((out[0] & 0x0F, out[2..2 + len].to_vec()));
        out = &out[2 + len..];
    }
    Ok(frames)
}

/// Compares two deliveries of the same bytes: same events, same bytes out.
pub fn check_same(label: &str, run: &Run, reference: &Run) -> TestCaseResult {
    let (events, expected) = (run.events(), reference.events());
    prop_assert!(
        events == expected,
        "{label}: events differ from the whole delivery:\n  {label}: {events:?}\n  whole: {expected:?}"
    );
    if run.out != reference.out {
        let at = run
            .out
            .iter()
            .zip(&reference.out)
            .position(|(a, b)| a != b)
            .unwrap_or(run.out.len().min(reference.out.len()));
        return Err(TestCaseError::fail(format!(
            "{label}: out differs from the whole delivery at byte {at} ({} vs {} bytes)",
            run.out.len(),
            reference.out.len()
        )));
    }
    prop_assert_eq!(
        run.finished,
        reference.finished,
        "{}: is_finished differs",
        label
    );
    Ok(())
}
