//! Property tests of the sans-I/O core: `frame`, `protocol` and `http`, with no sockets.
//!
//! Inputs for the decoder are built by hand, byte by byte from RFC 6455 §5.2 with the
//! test-side encoder in `common/wire.rs`, never with the library's encoder (except in the encode/decode round trip, whose subject that
//! encoder is), so an encoder bug cannot hide behind the same bug in the tests. A counting
//! global allocator measures the heap the protocol holds, so the memory limits are checked,
//! not inferred.
//!
//! `cargo test --test properties` runs each property for 500 to 2,000 cases (about 5 s in
//! debug on two cores); `PROPTEST_CASES=N` runs N cases of each instead. Failing cases are
//! shrunk and printed, not written to a regressions file.
//!
//! The two `#[ignore]`d tests `fuzz_protocol` and `fuzz_http` are the fuzz entry points: they
//! loop the same checks over random, structured and mutated inputs for `FUZZ_SECONDS`
//! (default 60, both at once on two threads) and print the seed that replays a run with
//! `FUZZ_SEED`. `--release` runs about 30 times as many cases as a debug build:
//!
//! ```text
//! FUZZ_SECONDS=60 cargo test --release --test properties -- --ignored fuzz_ --nocapture
//! ```

mod common;

use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::string::string_regex;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestCaseResult, TestRunner};

use common::wire::{
    self, client_frame, server_frame, LenField, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, TEXT,
};
use pure_ws::error::ProtocolError;
use pure_ws::frame::{apply_mask, encode_frame, encode_header, FrameHeader, Opcode};
use pure_ws::http::{HeadReader, Rejection, Request};
use pure_ws::protocol::{Event, Message, Protocol};

// ---------------------------------------------------------------------------------------
// Heap accounting: a counting allocator, so "never allocates past the limits" is measured,
// not inferred. Only allocations made on the current thread while tracking is on count.

mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static TRACKING: Cell<bool> = const { Cell::new(false) };
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn note(delta: isize) {
        let _ = TRACKING.try_with(|tracking| {
            if tracking.get() {
                let _ = LIVE.try_with(|live| {
                    let now = live.get() + delta;
                    live.set(now);
                    let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
                });
            }
        });
    }

    // SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping
    // touches only const-initialised thread-locals without destructors, which never allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() {
                note(layout.size() as isize);
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                note(layout.size() as isize);
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            note(-(layout.size() as isize));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() {
                note(new_size as isize - layout.size() as isize);
            }
            new
        }
    }

    /// Forgets everything counted so far on this thread.
    pub fn reset() {
        LIVE.with(|live| live.set(0));
        PEAK.with(|peak| peak.set(0));
    }

    /// The most bytes held at once by tracked allocations since `reset`.
    pub fn peak() -> usize {
        PEAK.with(|peak| peak.get()).max(0) as usize
    }

    /// Counts this thread's allocations until dropped (also when unwinding from a panic).
    pub struct Tracked(());

    impl Tracked {
        pub fn start() -> Tracked {
            TRACKING.with(|tracking| tracking.set(true));
            Tracked(())
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            TRACKING.with(|tracking| tracking.set(false));
        }
    }
}

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

// ---------------------------------------------------------------------------------------
// Configuration.

/// `cases` test cases unless `PROPTEST_CASES` says otherwise; failures are not persisted.
fn config(cases: u32) -> Config {
    let mut config = Config::default(); // reads PROPTEST_CASES and the other PROPTEST_* vars
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

// ---------------------------------------------------------------------------------------
// Frames built by hand (RFC 6455 §5.2), with the shared test-side encoder.

/// The server's close frame with `code` and no reason.
fn close_frame_from_server(code: u16) -> Vec<u8> {
    server_frame(FIN | CLOSE, &code.to_be_bytes())
}

// ---------------------------------------------------------------------------------------
// Deterministic payloads from a seed, so big cases print (and shrink) as a length and a seed.

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `range` (inclusive), which must not be empty.
    fn within(&mut self, low: u32, high: u32) -> u32 {
        low + (self.next() % u64::from(high - low + 1)) as u32
    }
}

fn binary_payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Valid UTF-8 of exactly `len` bytes, mixing 1- to 4-byte code points.
fn text_payload(len: usize, seed: u64) -> String {
    let mut rng = SplitMix(seed);
    let mut text = String::with_capacity(len);
    while text.len() < len {
        let room = (len - text.len()).min(4) as u32;
        let code = match rng.within(1, room) {
            1 => rng.within(0, 0x7F),
            2 => rng.within(0x80, 0x7FF),
            3 => match rng.within(0x800, 0xFFFF - 0x800) {
                // Skip the surrogates D800..=DFFF.
                c if c >= 0xD800 => c + 0x800,
                c => c,
            },
            _ => rng.within(0x1_0000, 0x10_FFFF),
        };
        text.push(char::from_u32(code).expect("not a surrogate"));
    }
    text
}

// ---------------------------------------------------------------------------------------
// What the protocol said, as owned values.

#[derive(Clone, PartialEq, Eq)]
enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Closed(Option<u16>),
    Failed(ProtocolError),
}

impl Ev {
    fn from_event(event: Event<'_>) -> Ev {
        match event {
            Event::Message(Message::Text(text)) => Ev::Text(text.to_string()),
            Event::Message(Message::Binary(bytes)) => Ev::Binary(bytes.to_vec()),
            Event::Closed { code } => Ev::Closed(code),
            Event::Failed(err) => Ev::Failed(err),
        }
    }

    fn is_message(&self) -> bool {
        matches!(self, Ev::Text(_) | Ev::Binary(_))
    }

    fn message_len(&self) -> usize {
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
struct Step {
    consumed: Range<usize>,
    event: Ev,
}

/// Everything one delivery of a byte stream produced.
struct Run {
    steps: Vec<Step>,
    out: Vec<u8>,
    /// The most heap the protocol (and `out`, reserved up front) held at once.
    heap_peak: usize,
    finished: bool,
}

impl Run {
    fn events(&self) -> Vec<Ev> {
        self.steps.iter().map(|step| step.event.clone()).collect()
    }
}

/// A chunking: piece sizes (each at least 1), used in turn and then cycled.
#[derive(Clone, Debug)]
struct Chunks(Vec<usize>);

impl Chunks {
    fn whole() -> Chunks {
        Chunks(vec![usize::MAX])
    }

    fn bytewise() -> Chunks {
        Chunks(vec![1])
    }
}

fn chunks() -> impl Strategy<Value = Chunks> {
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
fn feed(max_message_size: usize, input: &[u8], chunks: &Chunks) -> Result<Run, TestCaseError> {
    // `receive` may unmask consumed bytes in place, so each delivery gets its own copy.
    let mut input = input.to_vec();
    let mut protocol = Protocol::new(max_message_size);
    // Reserved up front: every reply is shorter than the frame that caused it (plus one
    // close frame), so `out` never grows inside `receive` and the heap count is the
    // protocol's own.
    let mut out = Vec::with_capacity(input.len() + 16);
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
            let tracked = heap::Tracked::start();
            let (used, event) = protocol.receive(&mut input[at..end], &mut out);
            drop(tracked);
            let event = event.map(Ev::from_event);
            prop_assert!(
                used <= end - at,
                "receive used {used} of {} bytes",
                end - at
            );
            // A call may return an event without consuming anything (a refused header is
            // left in place to be skimmed), but the next call must then move on: the
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
fn check_run(run: &Run, max_message_size: usize) -> TestCaseResult {
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
                Ev::Failed(err) => err.close_code().to_be_bytes().to_vec(),
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
fn parse_server_frames(mut out: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, TestCaseError> {
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
fn check_same(label: &str, run: &Run, reference: &Run) -> TestCaseResult {
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

// ---------------------------------------------------------------------------------------
// Valid streams: text and binary messages in fragments, pings and pongs, a close at the end.

/// A ping or pong.
#[derive(Clone, Debug)]
struct ControlSpec {
    ping: bool,
    payload: Vec<u8>,
    mask: [u8; 4],
}

/// A data message: `len` payload bytes from `seed`, cut into fragments at `cuts`, with
/// control frames between the fragments.
#[derive(Clone, Debug)]
struct DataSpec {
    text: bool,
    len: usize,
    seed: u64,
    cuts: Vec<Index>,
    inside: Vec<(Index, ControlSpec)>,
    masks: Vec<[u8; 4]>,
}

#[derive(Clone, Debug)]
enum ItemSpec {
    Data(DataSpec),
    Control(ControlSpec),
}

#[derive(Clone, Debug)]
struct CloseSpec {
    code: Option<u16>,
    reason: String,
    mask: [u8; 4],
}

#[derive(Clone, Debug)]
struct StreamSpec {
    items: Vec<ItemSpec>,
    close: CloseSpec,
    /// Bytes after the close frame, which must be ignored.
    trailing: Vec<u8>,
}

/// A frame to send, with what it belongs to.
#[derive(Clone, Debug)]
struct Planned {
    first: u8,
    payload: Vec<u8>,
    mask: [u8; 4],
    /// The index of the data message this frame carries a piece of.
    message: Option<usize>,
}

/// Where a planned frame landed in the stream.
#[derive(Clone, Debug)]
struct Placed {
    header_end: usize,
    end: usize,
}

fn serialize(plan: &[Planned]) -> (Vec<u8>, Vec<Placed>) {
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
    fn payload(&self) -> Vec<u8> {
        if self.text {
            text_payload(self.len, self.seed).into_bytes()
        } else {
            binary_payload(self.len, self.seed)
        }
    }

    fn event(&self, payload: Vec<u8>) -> Ev {
        if self.text {
            Ev::Text(String::from_utf8(payload).expect("generated text is UTF-8"))
        } else {
            Ev::Binary(payload)
        }
    }

    /// Plans the frames of this message (and the control frames between them).
    fn plan(&self, payload: &[u8], message: usize, plan: &mut Vec<Planned>) {
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
    fn plan(&self) -> Planned {
        Planned {
            first: FIN | if self.ping { PING } else { PONG },
            payload: self.payload.clone(),
            mask: self.mask,
            message: None,
        }
    }
}

impl CloseSpec {
    fn payload(&self) -> Vec<u8> {
        match self.code {
            Some(code) => [&code.to_be_bytes()[..], self.reason.as_bytes()].concat(),
            None => Vec::new(),
        }
    }

    fn reply(&self) -> Vec<u8> {
        match self.code {
            Some(code) => close_frame_from_server(code),
            None => server_frame(FIN | CLOSE, &[]),
        }
    }
}

/// A valid stream with what it must produce.
struct Expected {
    bytes: Vec<u8>,
    events: Vec<Ev>,
    out: Vec<u8>,
}

impl StreamSpec {
    fn plan(&self) -> (Vec<Planned>, Vec<Ev>) {
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

    fn expected(&self) -> Expected {
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

fn mask() -> impl Strategy<Value = [u8; 4]> {
    prop_oneof![
        1 => Just([0; 4]),
        1 => Just([0xFF; 4]),
        8 => any::<[u8; 4]>(),
    ]
}

fn control_spec() -> impl Strategy<Value = ControlSpec> {
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
fn payload_len(big: bool) -> BoxedStrategy<usize> {
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

fn data_spec(len: BoxedStrategy<usize>) -> impl Strategy<Value = DataSpec> {
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

fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999]
}

fn close_spec() -> impl Strategy<Value = CloseSpec> {
    (
        prop::option::weighted(0.8, close_code()),
        string_regex("[a-zA-Z0-9 .éß€😀]{0,30}").expect("a valid regex"),
        mask(),
    )
        .prop_map(|(code, reason, mask)| CloseSpec { code, reason, mask })
}

fn stream_spec(big: bool, max_items: usize) -> impl Strategy<Value = StreamSpec> {
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
struct ValidCase {
    stream: StreamSpec,
    chunks: Chunks,
}

fn valid_case(max_items: usize) -> impl Strategy<Value = ValidCase> {
    (stream_spec(true, max_items), chunks())
        .prop_map(|(stream, chunks)| ValidCase { stream, chunks })
}

/// Enough for any generated message.
const ROOMY_LIMIT: usize = 1 << 20;

fn check_valid_stream(case: &ValidCase) -> TestCaseResult {
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

// ---------------------------------------------------------------------------------------
// Any bytes: raw, a soup of frames with random fields, or a valid stream mutated.

#[derive(Clone, Debug)]
enum SoupLen {
    Minimal,
    Wide16,
    Wide64,
    /// A length field that does not match the payload that follows.
    Claim(u64),
}

#[derive(Clone, Debug)]
struct SoupFrame {
    first: u8,
    masked: bool,
    len: SoupLen,
    payload: Vec<u8>,
    mask: [u8; 4],
}

impl SoupFrame {
    fn bytes(&self) -> Vec<u8> {
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
enum Mutation {
    Flip(u8),
    Set(u8),
    Insert(u8),
    Delete,
    Truncate,
}

/// Applies each mutation at its position in turn.
fn mutate(mut bytes: Vec<u8>, mutations: &[(Index, Mutation)]) -> Vec<u8> {
    for (at, mutation) in mutations {
        let i = at.index(bytes.len() + 1);
        match *mutation {
            Mutation::Insert(byte) => bytes.insert(i, byte),
            _ if i == bytes.len() => {}
            Mutation::Flip(bit) => bytes[i] ^= 1 << (bit % 8),
            Mutation::Set(byte) => bytes[i] = byte,
            Mutation::Delete => {
                bytes.remove(i);
            }
            Mutation::Truncate => bytes.truncate(i),
        }
    }
    bytes
}

#[derive(Clone, Debug)]
enum Input {
    Raw(Vec<u8>),
    Soup(Vec<SoupFrame>),
    Mutated(StreamSpec, Vec<(Index, Mutation)>),
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Input::Raw(bytes) => bytes.clone(),
            Input::Soup(frames) => frames.iter().flat_map(SoupFrame::bytes).collect(),
            Input::Mutated(stream, mutations) => mutate(stream.expected().bytes, mutations),
        }
    }
}

fn first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        8 => (any::<bool>(), prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]))
            .prop_map(|(fin, opcode)| if fin { FIN | opcode } else { opcode }),
        1 => any::<u8>(),
    ]
}

fn soup_payload() -> impl Strategy<Value = Vec<u8>> {
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

fn soup_frame() -> impl Strategy<Value = SoupFrame> {
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

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (0u8..8).prop_map(Mutation::Flip),
        2 => any::<u8>().prop_map(Mutation::Set),
        2 => any::<u8>().prop_map(Mutation::Insert),
        2 => Just(Mutation::Delete),
        1 => Just(Mutation::Truncate),
    ]
}

fn input(scale: usize) -> impl Strategy<Value = Input> {
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
struct AnyCase {
    max_message_size: usize,
    input: Input,
    chunks: Chunks,
}

fn any_case(scale: usize) -> impl Strategy<Value = AnyCase> {
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

fn check_any_input(case: &AnyCase) -> TestCaseResult {
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

// ---------------------------------------------------------------------------------------
// Limits: messages around a small limit, and huge length claims.

#[derive(Clone, Debug)]
struct LimitCase {
    max_message_size: usize,
    messages: Vec<DataSpec>,
    close_code: u16,
    close_mask: [u8; 4],
    chunks: Chunks,
}

fn limit_case() -> impl Strategy<Value = LimitCase> {
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

fn check_limit(case: &LimitCase) -> TestCaseResult {
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
            expected.truncate(message);
            expected.push(Ev::Failed(ProtocolError::MessageTooBig { limit: max }));
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
            prop_assert_eq!(
                ProtocolError::MessageTooBig { limit: max }.close_code(),
                1009
            );
            prop_assert_eq!(run.out, close_frame_from_server(1009));
            // The rest of the refused frame and of its message is skipped, and the peer's
            // close frame finishes the connection.
            prop_assert!(
                run.finished,
                "the peer's close frame was not found after 1009"
            );
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
struct ClaimCase {
    max_message_size: usize,
    /// A first fragment (text or binary, not final) already received.
    first_fragment: Option<(bool, usize)>,
    claim: u64,
    wide: bool,
    fin: bool,
    text: bool,
    mask: [u8; 4],
    chunks: Chunks,
}

fn claim_case() -> impl Strategy<Value = ClaimCase> {
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

fn check_claim(case: &ClaimCase) -> TestCaseResult {
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
    let too_big = ProtocolError::MessageTooBig { limit: max };
    prop_assert_eq!(&events, &vec![Ev::Failed(too_big)]);
    prop_assert_eq!(too_big.close_code(), 1009);
    prop_assert_eq!(&run.out, &close_frame_from_server(1009));
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

// ---------------------------------------------------------------------------------------
// Invalid UTF-8 fails in the call that brings the byte that makes the text impossible.

#[derive(Clone, Debug)]
struct BadTextCase {
    prefix: String,
    bad: Vec<u8>,
    suffix: Vec<u8>,
    cuts: Vec<Index>,
    masks: Vec<[u8; 4]>,
    close_code: u16,
    chunks: Chunks,
}

fn bad_utf8() -> impl Strategy<Value = Vec<u8>> {
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

fn bad_text_case() -> impl Strategy<Value = BadTextCase> {
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
enum Invalid {
    /// At this byte: no continuation can make the text valid any more.
    At(usize),
    /// Only at the end: the last code point is cut short.
    AtEnd,
}

fn first_invalid(text: &[u8]) -> Option<Invalid> {
    let err = std::str::from_utf8(text).err()?;
    let start = err.valid_up_to();
    (start + 1..=text.len().min(start + 4))
        .find(|&end| std::str::from_utf8(&text[..end]).is_err_and(|err| err.error_len().is_some()))
        .map_or(Some(Invalid::AtEnd), |end| Some(Invalid::At(end - 1)))
}

fn check_bad_text(case: &BadTextCase) -> TestCaseResult {
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
    prop_assert_eq!(run.events(), vec![Ev::Failed(ProtocolError::InvalidUtf8)]);
    prop_assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
    let failed = &run.steps[0];
    prop_assert!(
        failed.consumed.contains(&decisive),
        "1007 came from the call that consumed {:?}, not from the one that brought byte {} \
         (where the text became impossible)",
        failed.consumed,
        decisive
    );
    prop_assert_eq!(&run.out, &close_frame_from_server(1007));
    prop_assert!(
        run.finished,
        "the peer's close frame was not found after 1007"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Encoding and masking.

fn opcode() -> impl Strategy<Value = Opcode> {
    prop::sample::select(vec![
        Opcode::Continuation,
        Opcode::Text,
        Opcode::Binary,
        Opcode::Close,
        Opcode::Ping,
        Opcode::Pong,
    ])
}

#[derive(Clone, Debug)]
struct RoundTripCase {
    opcode: Opcode,
    len: usize,
    seed: u64,
    mask: [u8; 4],
}

/// Lengths up to this get a real payload; longer ones round-trip the header only.
const MATERIALIZED: usize = 200_000;

fn round_trip_case() -> impl Strategy<Value = RoundTripCase> {
    (opcode(), any::<u64>(), mask())
        .prop_flat_map(|(opcode, seed, mask)| {
            let len = if opcode.is_control() {
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
    let mut header = Vec::new();
    encode_header(&mut header, case.opcode, case.len, Some(case.mask));
    // The encoder agrees with the RFC, byte for byte.
    let len = case.len as u64;
    let by_hand = wire::header(
        FIN | case.opcode.to_wire(),
        len,
        LenField::Shortest,
        Some(case.mask),
    );
    prop_assert_eq!(&header, &by_hand);
    let header_len = header.len();
    let mut frame = header;
    let payload = (case.len <= MATERIALIZED).then(|| binary_payload(case.len, case.seed));
    if let Some(payload) = &payload {
        let start = frame.len();
        frame.extend_from_slice(payload);
        apply_mask(&mut frame[start..], case.mask, 0);
    }
    let (parsed, parsed_len) = FrameHeader::parse_client(&frame)
        .map_err(|err| TestCaseError::fail(format!("parse_client: {err:?}")))?
        .ok_or_else(|| TestCaseError::fail("a whole header parsed as incomplete"))?;
    prop_assert_eq!(parsed_len, header_len);
    prop_assert_eq!(
        parsed,
        FrameHeader {
            fin: true,
            opcode: case.opcode,
            mask: Some(case.mask),
            payload_len: len,
        }
    );
    for cut in 0..header_len {
        prop_assert_eq!(
            FrameHeader::parse_client(&frame[..cut]),
            Ok(None),
            "cut {}",
            cut
        );
    }
    if let Some(payload) = &payload {
        let mut decoded = frame[header_len..].to_vec();
        apply_mask(&mut decoded, parsed.mask.expect("masked"), 0);
        prop_assert!(&decoded == payload, "the payload did not round-trip");
        // A server frame of the same payload is refused from a client: it is unmasked.
        let mut server = Vec::new();
        encode_frame(&mut server, case.opcode, payload);
        prop_assert_eq!(
            FrameHeader::parse_client(&server),
            Err(ProtocolError::Unmasked)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// HTTP: the head reader and the request parser.

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just("\r\n"), 3 => Just("\n"), 1 => Just("\r")]
}

/// Request heads that are mostly well-formed, with wrong parts mixed in.
fn head_bytes() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        4 => prop::sample::select(vec!["GET", "HEAD", "POST", "OPTIONS"]).prop_map(String::from),
        1 => string_regex("[A-Za-z!#(]{0,8}").expect("a valid regex"),
    ];
    let target = prop_oneof![
        4 => prop::sample::select(vec!["/", "/?q=1", "*", "http://x/", "/a/b", "x"])
            .prop_map(String::from),
        1 => string_regex("[ -~]{0,20}").expect("a valid regex"),
    ];
    let version = prop_oneof![
        4 => prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/1.9", "HTTP/2.0", "HTTP/1."])
            .prop_map(String::from),
        1 => string_regex(".{0,9}").expect("a valid regex"),
    ];
    let name = prop_oneof![
        4 => prop::sample::select(vec!["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "host"])
            .prop_map(String::from),
        1 => string_regex("[ -~]{0,12}").expect("a valid regex"),
    ];
    let header = (
        name,
        prop::sample::select(vec![":", ": ", " : ", ":\t", ""]),
        string_regex("[ -~\t]{0,30}|.{0,8}").expect("a valid regex"),
        eol(),
    )
        .prop_map(|(name, colon, value, eol)| format!("{name}{colon}{value}{eol}"));
    (
        prop::collection::vec(eol(), 0..3),
        method,
        prop::sample::select(vec![" ", " ", " ", "  ", "\t"]),
        target,
        version,
        eol(),
        prop::collection::vec(header, 0..6),
        prop::option::weighted(0.8, eol()),
        prop::collection::vec(any::<u8>(), 0..10),
    )
        .prop_map(
            |(leading, method, sep, target, version, eol, headers, end, trailing)| {
                let mut head = leading.concat();
                head.push_str(&format!("{method}{sep}{target}{sep}{version}{eol}"));
                head.push_str(&headers.concat());
                head.push_str(end.unwrap_or(""));
                let mut bytes = head.into_bytes();
                bytes.extend(trailing);
                bytes
            },
        )
}

fn http_data(scale: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..100 * scale),
        1 => prop::collection::vec(
            prop::sample::select(vec![b'\r', b'\n', b'a', b':', b' ', b'G']), 0..50 * scale),
        4 => head_bytes(),
        2 => (head_bytes(), prop::collection::vec((any::<Index>(), mutation()), 1..4)).prop_map(
            |(bytes, mutations)| mutate(bytes, &mutations)
        ),
    ]
}

#[derive(Clone, Debug)]
struct HeadCase {
    data: Vec<u8>,
    max_bytes: usize,
    max_lines: usize,
    chunks: Chunks,
}

fn head_case(scale: usize) -> impl Strategy<Value = HeadCase> {
    (
        http_data(scale),
        prop_oneof![0usize..=400, Just(8192)],
        prop_oneof![0usize..=8, Just(100)],
        chunks(),
    )
        .prop_map(|(data, max_bytes, max_lines, chunks)| HeadCase {
            data,
            max_bytes,
            max_lines,
            chunks,
        })
}

#[derive(Clone, Debug, PartialEq)]
enum HeadOutcome {
    /// The head ends after this many bytes of the data.
    Complete(usize),
    Rejected(Rejection),
    /// All the data was taken and more is needed.
    Incomplete,
}

/// Pushes `data` chunk by chunk, as the server does, until the head is complete or refused.
fn read_head(case: &HeadCase, chunks: &Chunks) -> Result<(HeadOutcome, Vec<u8>), TestCaseError> {
    let mut reader = HeadReader::new(case.max_bytes, case.max_lines);
    let mut pos = 0;
    let mut sizes = chunks.0.iter().cycle();
    let mut outcome = HeadOutcome::Incomplete;
    while pos < case.data.len() {
        let end = pos
            .saturating_add(*sizes.next().expect("a chunk size"))
            .min(case.data.len());
        let result = reader.push(&case.data[pos..end]);
        prop_assert!(
            reader.head().len() <= case.max_bytes,
            "{} bytes retained with a {}-byte limit",
            reader.head().len(),
            case.max_bytes
        );
        match result {
            Ok(Some(n)) => {
                prop_assert!(
                    (1..=end - pos).contains(&n),
                    "head ends {n} bytes into a {}-byte push",
                    end - pos
                );
                outcome = HeadOutcome::Complete(pos + n);
                break;
            }
            Ok(None) => pos = end,
            Err(rejection) => {
                outcome = HeadOutcome::Rejected(rejection);
                break;
            }
        }
    }
    Ok((outcome, reader.head().to_vec()))
}

fn check_head(case: &HeadCase) -> TestCaseResult {
    let (outcome, head) = read_head(case, &Chunks::whole())?;
    for (label, chunks) in [("chunked", &case.chunks), ("bytewise", &Chunks::bytewise())] {
        let (other, other_head) = read_head(case, chunks)?;
        prop_assert_eq!(&other, &outcome, "{} outcome", label);
        prop_assert!(other_head == head, "{label}: a different head was retained");
    }
    if let HeadOutcome::Complete(end) = outcome {
        // The head is the data up to its end, less any empty lines before the request line.
        prop_assert!(
            case.data[..end].ends_with(&head),
            "the head is not the data's"
        );
        prop_assert!(head.ends_with(b"\n"), "the head does not end a line");
        let body = &head[..head.len() - 1];
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        prop_assert!(
            body.is_empty() || body.ends_with(b"\n"),
            "the head does not end with an empty line"
        );
        prop_assert!(
            !head.starts_with(b"\n") && !head.starts_with(b"\r\n"),
            "the head starts with an empty line"
        );
    }
    // Whatever came out, parsing it never panics, and gives the same answer twice.
    let parsed = Request::parse(&head).map(|r| format!("{r:?}"));
    prop_assert_eq!(parsed, Request::parse(&head).map(|r| format!("{r:?}")));
    Ok(())
}

/// A well-formed head and its parts.
#[derive(Clone, Debug)]
struct GoodHead {
    method: String,
    path: String,
    query: Option<String>,
    minor: u8,
    headers: Vec<(String, String, &'static str)>,
    end: &'static str,
}

impl GoodHead {
    fn bytes(&self) -> Vec<u8> {
        let query = self
            .query
            .as_deref()
            .map_or(String::new(), |q| format!("?{q}"));
        let mut head = format!(
            "{} {}{query} HTTP/1.{}\r\n",
            self.method, self.path, self.minor
        );
        for (name, value, eol) in &self.headers {
            head.push_str(&format!("{name}:{value}{eol}"));
        }
        head.push_str(self.end);
        head.into_bytes()
    }
}

fn good_head() -> impl Strategy<Value = GoodHead> {
    (
        string_regex("[A-Za-z!#$%&'*+.^_`|~-]{1,8}").expect("a valid regex"),
        string_regex("/[A-Za-z0-9/._~%-]{0,20}").expect("a valid regex"),
        prop::option::of(string_regex("[a-z0-9=&/?]{0,10}").expect("a valid regex")),
        0u8..=9,
        prop::collection::vec(
            (
                string_regex("[A-Za-z0-9-]{1,12}").expect("a valid regex"),
                string_regex("[ \t]{0,2}[!-~]([ -~]{0,20}[!-~])?[ \t]{0,2}|[ \t]{0,3}")
                    .expect("a valid regex"),
                prop_oneof![Just("\r\n"), Just("\n")],
            ),
            0..8,
        ),
        prop_oneof![Just("\r\n"), Just("\n")],
    )
        .prop_map(|(method, path, query, minor, mut headers, end)| {
            // HTTP/1.1 requires exactly one Host header.
            headers.retain(|(name, _, _)| !name.eq_ignore_ascii_case("host"));
            headers.insert(0, ("Host".to_string(), " example".to_string(), "\r\n"));
            GoodHead {
                method,
                path,
                query,
                minor,
                headers,
                end,
            }
        })
}

fn check_good_head(head: &GoodHead, chunks: &Chunks) -> TestCaseResult {
    let bytes = head.bytes();
    let case = HeadCase {
        data: bytes.clone(),
        max_bytes: 8192,
        max_lines: 100,
        chunks: chunks.clone(),
    };
    let (outcome, read) = read_head(&case, chunks)?;
    prop_assert_eq!(outcome, HeadOutcome::Complete(bytes.len()));
    prop_assert!(read == bytes, "the head read differs from the head sent");
    let request =
        Request::parse(&read).map_err(|r| TestCaseError::fail(format!("refused: {r:?}")))?;
    prop_assert_eq!(request.method, head.method.as_str());
    prop_assert_eq!(request.path, head.path.as_str());
    prop_assert_eq!(request.minor_version, head.minor);
    for (name, _, _) in &head.headers {
        let expected: Vec<&str> = head
            .headers
            .iter()
            .filter(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, _)| v.trim_matches([' ', '\t']))
            .collect();
        let got: Vec<&str> = request.headers(name).collect();
        prop_assert_eq!(got, expected, "header {}", name);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The properties. The default case counts keep the debug run to a few seconds.

proptest! {
    #![proptest_config(config(2000))]

    /// Any bytes, in any chunking: no panic, progress on every call, and exactly the events
    /// and bytes out of the same bytes delivered whole (and one at a time).
    #[test]
    fn any_bytes_in_any_chunking_give_the_same_events_and_output(case in any_case(1)) {
        check_any_input(&case)?;
    }

    /// The head reader: the same outcome and head in any chunking, never more retained
    /// than its limit; the parser never panics on what it gives.
    #[test]
    fn head_reader_is_chunking_invariant_and_bounded(case in head_case(1)) {
        check_head(&case)?;
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
        apply_mask(&mut pieces[..split], key, offset);
        apply_mask(&mut pieces[split..], key, offset + split);
        prop_assert_eq!(&pieces, &wire::xor_mask(&data, key, offset));
        apply_mask(&mut pieces, key, offset);
        prop_assert_eq!(pieces, data);
    }

    /// The request parser never panics, whatever the bytes.
    #[test]
    fn request_parse_never_panics(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            string_regex("(.{0,12}[\r\n: ]){0,12}").expect("a valid regex").prop_map(String::into_bytes),
            head_bytes(),
        ]
    ) {
        let _ = Request::parse(&data);
    }
}

proptest! {
    // Round trips of up to 200 kB payloads, and well-formed heads.
    #![proptest_config(config(500))]

    /// Encoding a masked header and masking the payload, then parsing and unmasking, is the
    /// identity for every opcode, length class and mask.
    #[test]
    fn encode_then_decode_is_the_identity(case in round_trip_case()) {
        check_round_trip(&case)?;
    }

    /// A well-formed head, in any chunking, is read whole and parsed into its parts.
    #[test]
    fn a_well_formed_head_parses_into_its_parts(head in good_head(), chunks in chunks()) {
        check_good_head(&head, &chunks)?;
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

// ---------------------------------------------------------------------------------------
// Fuzz entry points: the same checks in a loop for a bounded time.

#[derive(Clone, Debug)]
enum ProtocolFuzzCase {
    Any(AnyCase),
    Valid(ValidCase),
    Limit(LimitCase),
    Claim(ClaimCase),
    BadText(BadTextCase),
}

fn protocol_fuzz_case() -> impl Strategy<Value = ProtocolFuzzCase> {
    prop_oneof![
        8 => any_case(4).prop_map(ProtocolFuzzCase::Any),
        2 => valid_case(8).prop_map(ProtocolFuzzCase::Valid),
        1 => limit_case().prop_map(ProtocolFuzzCase::Limit),
        1 => claim_case().prop_map(ProtocolFuzzCase::Claim),
        1 => bad_text_case().prop_map(ProtocolFuzzCase::BadText),
    ]
}

fn check_protocol_fuzz_case(case: ProtocolFuzzCase) -> TestCaseResult {
    match case {
        ProtocolFuzzCase::Any(case) => check_any_input(&case),
        ProtocolFuzzCase::Valid(case) => check_valid_stream(&case),
        ProtocolFuzzCase::Limit(case) => check_limit(&case),
        ProtocolFuzzCase::Claim(case) => check_claim(&case),
        ProtocolFuzzCase::BadText(case) => check_bad_text(&case),
    }
}

#[derive(Clone, Debug)]
enum HttpFuzzCase {
    Head(HeadCase),
    Good(GoodHead, Chunks),
}

fn http_fuzz_case() -> impl Strategy<Value = HttpFuzzCase> {
    prop_oneof![
        4 => head_case(8).prop_map(HttpFuzzCase::Head),
        1 => (good_head(), chunks()).prop_map(|(head, chunks)| HttpFuzzCase::Good(head, chunks)),
    ]
}

fn check_http_fuzz_case(case: HttpFuzzCase) -> TestCaseResult {
    match case {
        HttpFuzzCase::Head(case) => check_head(&case),
        HttpFuzzCase::Good(head, chunks) => check_good_head(&head, &chunks),
    }
}

/// Runs `check` on cases from `strategy` in batches until `FUZZ_SECONDS` (default 60) are
/// up. Batch `k` uses seed `FUZZ_SEED + k` (a random base by default), so the failing batch
/// replays with `FUZZ_SEED=<its seed>`. A failure is shrunk (for at most a minute) to a
/// minimal case and panics.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> TestCaseResult) {
    let seconds = env_u64("FUZZ_SECONDS").unwrap_or(60);
    let base = env_u64("FUZZ_SEED").unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_secs() ^ (u64::from(now.subsec_nanos()) << 32)
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let batch = 64;
    let mut cases = 0u64;
    eprintln!("{name}: {seconds} s from FUZZ_SEED={base}");
    for k in 0u64.. {
        if k > 0 && Instant::now() >= deadline {
            break;
        }
        let seed = base.wrapping_add(k);
        let mut runner = TestRunner::new(Config {
            cases: batch,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            // Keep the run bounded even when a failure takes long to shrink.
            max_shrink_time: 60_000,
            ..Config::default()
        });
        if let Err(err) = runner.run(&strategy, &check) {
            panic!("{name}: failed after {cases} cases; replay with FUZZ_SEED={seed}\n{err}");
        }
        cases += u64::from(batch);
    }
    eprintln!(
        "{name}: {cases} cases in {:.1} s, no failure",
        started.elapsed().as_secs_f64()
    );
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

#[test]
#[ignore = "fuzz loop: FUZZ_SECONDS=60 cargo test --release --test properties -- --ignored fuzz_"]
fn fuzz_protocol() {
    fuzz(
        "fuzz_protocol",
        protocol_fuzz_case(),
        check_protocol_fuzz_case,
    );
}

#[test]
#[ignore = "fuzz loop: FUZZ_SECONDS=60 cargo test --release --test properties -- --ignored fuzz_"]
fn fuzz_http() {
    fuzz("fuzz_http", http_fuzz_case(), check_http_fuzz_case);
}
