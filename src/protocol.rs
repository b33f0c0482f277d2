//! The per-connection state machine of RFC 6455, server role, sans I/O: bytes in, events
//! and bytes out.
//!
//! [`Protocol::receive`] takes whatever bytes arrived, in any chunking, and returns how many
//! it consumed and at most one [`Event`]; a message it announces is read with
//! [`Protocol::message`]. Frames the protocol answers itself (pongs, close replies) and the
//! headers of the frames the application sends ([`Protocol::send_header`]) are appended to
//! the caller's `out` buffer. It never touches a socket, a clock or a thread, so tests can
//! feed it one frame split over 300 calls or 200 frames in one.
//!
//! Payloads are streamed: each chunk is unmasked as it arrives, and text is checked for
//! UTF-8 before the call returns, so a bad byte fails the connection the moment it arrives
//! rather than at the end of its message.

use std::ops::Range;

use crate::close::{CloseCode, ClosePayload};
use crate::error::ProtocolError;
use crate::frame::{self, apply_mask, FrameHeader, Opcode, MAX_HEADER_LEN};
use crate::inspect::{Direction, FrameRecord, Preview, Record};
use crate::Status;

/// A complete message from the peer, borrowed from the protocol, or from the input when it
/// arrived whole in one read, until the next call to [`Protocol::receive`].
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message: valid UTF-8 by construction.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

/// The two kinds of data message (RFC 6455 §5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text, opcode 0x1.
    Text,
    /// Arbitrary bytes, opcode 0x2.
    Binary,
}

impl MessageKind {
    fn opcode(self) -> Opcode {
        match self {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

impl Message<'_> {
    /// Whether this is a text or a binary message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Text(_) => MessageKind::Text,
            Message::Binary(_) => MessageKind::Binary,
        }
    }
}

/// What a call to [`Protocol::receive`] or [`Protocol::receive_eof`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole data message arrived: [`Protocol::message`] returns it until the next call.
    Message,
    /// The peer started the close handshake, with this code if it sent one. The reply is
    /// in `out`; nothing more is read: flush `out`, then close TCP.
    Closed {
        /// The code the peer sent.
        code: Option<CloseCode>,
    },
    /// The peer broke the protocol. The close frame for `err.close_code()` is in `out`;
    /// nothing more is read: flush `out`, then close TCP.
    Failed(ProtocolError),
    /// The peer's byte stream ended with no close frame: RFC 6455 §7.1.5 calls this an
    /// abnormal closure, code 1006.
    Abnormal,
}

/// Where a connection is in its life (RFC 6455 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and read on only to find the peer's (§7.1.2).
    Closing,
    /// The close handshake is over, or the peer's stream ended: nothing more is read.
    Closed,
    /// We failed the connection (§7.1.7): our close frame is queued, nothing more is read.
    Failed,
}

/// Refused: a data frame or ping asked for after a close frame was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOpen;

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug)]
struct FrameInProgress {
    header: FrameHeader,
    /// Payload bytes received so far: also the mask phase of the next byte.
    received: u64,
}

impl FrameInProgress {
    fn remaining(&self) -> u64 {
        self.header.payload_len - self.received
    }
}

/// The data message being received: one type, so which buffer is live is never in doubt.
#[derive(Debug)]
enum Assembly {
    /// No message in progress. Holds the last message's (cleared) buffer for the next one.
    Idle(Vec<u8>),
    /// A text message: the valid UTF-8 so far, and a code point cut by a chunk's end.
    Text(String, Utf8Tail),
    /// A binary message.
    Binary(Vec<u8>),
}

/// The first bytes of a code point whose last bytes have not arrived yet (at most 3), with
/// room for the 4th that completes it.
#[derive(Clone, Copy, Debug, Default)]
struct Utf8Tail {
    bytes: [u8; 4],
    len: usize,
}

/// How the message announced by the last [`Event::Message`] is held.
#[derive(Clone, Debug)]
enum Delivered {
    /// In the protocol's [`Assembly`].
    Assembled,
    /// A single-frame binary message, unmasked where it lay in the input: `input[range]`.
    InPlace(Range<usize>),
}

/// A frame whose header was just read.
enum Frame {
    /// Its payload is still to come.
    InProgress(FrameInProgress),
    /// A whole single-frame binary message, already unmasked in the input.
    WholeBinary(Range<usize>),
}

/// What a step of the parser completed.
enum Completed {
    Message(Delivered),
    Closed(Option<CloseCode>),
    Failed(ProtocolError),
}

/// A message buffer larger than this is spare memory once its message is delivered: it is
/// kept for the next message (a client sending many large messages reuses warm pages), and
/// handed back by [`Protocol::release_spare_memory`] when the shell sees the connection go
/// quiet, so an idle connection does not keep the largest message it ever received.
const RETAINED_CAPACITY: usize = 256 * 1024;

/// One WebSocket connection, server role.
#[derive(Debug)]
pub struct Protocol {
    max_message_size: usize,
    state: State,
    /// A header that arrived in pieces: at most 14 bytes are ever held.
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<FrameInProgress>,
    assembly: Assembly,
    /// The payload of the control frame being received (§5.5: at most 125 bytes).
    control: [u8; 125],
    control_len: usize,
    /// The message the last call announced; it is let go of by the next call.
    delivered: Option<Delivered>,
    /// Records for the trace and the inspector, once [`Protocol::record`] asked for them.
    recording: Option<Box<Recording>>,
}

/// Frames and failures kept for the trace and the frame inspector.
#[derive(Debug, Default)]
struct Recording {
    /// The frame whose payload is arriving.
    current: Option<FrameRecord>,
    /// The bytes that broke a rule, when they are not simply the current frame's header
    /// or payload: a header that did not parse, or the place text stopped being UTF-8.
    offending: Option<Preview>,
    /// What is complete, in order, until the shell takes it.
    done: Vec<Record>,
}

impl Recording {
    /// Files the current frame, complete.
    fn finish_frame(&mut self) {
        if let Some(frame) = self.current.take() {
            self.done.push(Record::Frame(frame));
        }
    }

    /// Files the failure for `err` with the bytes that showed it: the header that did not
    /// parse, the header a rule refused, or the payload that broke one.
    fn fail(&mut self, err: ProtocolError) {
        let header_rule = matches!(
            err,
            ProtocolError::ContinuationWithoutStart
                | ProtocolError::DataInsideFragmentedMessage
                | ProtocolError::MessageTooBig { .. }
        );
        let frame = self.current.or(match self.done.last() {
            Some(Record::Frame(frame)) if frame.direction == Direction::Received => Some(*frame),
            _ => None,
        });
        let bytes = match (self.offending.take(), frame) {
            (Some(bytes), _) => bytes,
            (None, Some(frame)) if header_rule => Preview::of(frame.header()),
            (None, Some(frame)) => frame.payload,
            (None, None) => Preview::new(),
        };
        self.finish_frame();
        self.done.push(Record::Failure(err, bytes));
    }
}

impl Protocol {
    /// A protocol for a fresh connection, accepting data messages of at most
    /// `max_message_size` payload bytes (larger ones fail with close code 1009).
    pub fn new(max_message_size: usize) -> Protocol {
        Protocol {
            max_message_size,
            state: State::Open,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            assembly: Assembly::Idle(Vec::new()),
            control: [0; 125],
            control_len: 0,
            delivered: None,
            recording: None,
        }
    }

    /// Starts keeping a [`Record`] of every frame the peer sends, every control frame the
    /// protocol sends, and a failure, for [`Protocol::take_records`]. The data frames the
    /// application sends are the application's to record. Off, it costs a branch a frame.
    pub fn record(&mut self) {
        self.recording.get_or_insert_with(Box::default);
    }

    /// The records completed since the last call (none unless [`Protocol::record`] was
    /// called). A frame's record is complete once its whole payload has arrived.
    pub fn take_records(&mut self) -> Vec<Record> {
        match &mut self.recording {
            Some(recording) => std::mem::take(&mut recording.done),
            None => Vec::new(),
        }
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the protocol keeps a large message buffer (over 256 KiB) between messages:
    /// no message is in progress, or the last one was delivered already.
    pub fn holds_spare_memory(&self) -> bool {
        let between = self.delivered.is_some() || matches!(self.assembly, Assembly::Idle(_));
        between && self.assembly.capacity() > RETAINED_CAPACITY
    }

    /// Frees a large message buffer kept between messages (and lets go of the delivered
    /// message that filled it); the shell calls this when the connection goes quiet.
    /// Returns whether there was one.
    pub fn release_spare_memory(&mut self) -> bool {
        let spare = self.holds_spare_memory();
        if spare {
            self.delivered = None;
            self.assembly = Assembly::Idle(Vec::new());
        }
        spare
    }

    /// Consumes a prefix of `input` and returns how many bytes it took, with the event those
    /// bytes completed, if any. Call again with the rest of the input until it is used up.
    ///
    /// A single-frame binary message that lies whole in `input` is unmasked where it lies
    /// and handed out from there, without a copy; so `input` is mutable, and the consumed
    /// bytes may be changed. Bytes that are not consumed are never touched.
    pub fn receive(&mut self, input: &mut [u8], out: &mut Vec<u8>) -> (usize, Option<Event>) {
        if self.delivered.take().is_some() {
            self.assembly.reset();
        }
        let (used, completed) = self.step(input, out);
        let event = match completed {
            None => None,
            Some(Completed::Message(delivered)) => {
                self.delivered = Some(delivered);
                Some(Event::Message)
            }
            Some(Completed::Closed(code)) => Some(Event::Closed { code }),
            Some(Completed::Failed(err)) => self.fail(err, out),
        };
        (used, event)
    }

    /// The message announced by the last call to [`Protocol::receive`], if it announced one.
    /// `input` must be the slice that call was given.
    pub fn message<'a>(&'a self, input: &'a [u8]) -> Option<Message<'a>> {
        match (self.delivered.as_ref()?, &self.assembly) {
            (Delivered::InPlace(range), _) => Some(Message::Binary(input.get(range.clone())?)),
            (Delivered::Assembled, Assembly::Text(text, _)) => Some(Message::Text(text)),
            (Delivered::Assembled, Assembly::Binary(bytes)) => Some(Message::Binary(bytes)),
            (Delivered::Assembled, Assembly::Idle(_)) => None,
        }
    }

    /// Tells the protocol that the peer's byte stream ended. While the connection is open
    /// that is an abnormal closure; once a close frame was sent or received it is expected.
    pub fn receive_eof(&mut self) -> Option<Event> {
        let was_open = self.state == State::Open;
        if matches!(self.state, State::Open | State::Closing) {
            self.state = State::Closed;
        }
        was_open.then_some(Event::Abnormal)
    }

    /// Appends the header of a one-frame data message of `len` payload bytes to `out`; the
    /// payload must follow it on the wire.
    ///
    /// RFC 6455 §5.5.1: "After sending a Close frame, the endpoint MUST NOT send any further
    /// data frames." Once a close frame was sent or received this refuses with [`NotOpen`].
    pub fn send_header(
        &self,
        kind: MessageKind,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), NotOpen> {
        if self.state != State::Open {
            return Err(NotOpen);
        }
        frame::encode_header(out, kind.opcode(), len, None);
        Ok(())
    }

    /// Sends a ping (for keepalive), at most 125 bytes of `payload`, while open.
    pub fn send_ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), NotOpen> {
        if self.state != State::Open {
            return Err(NotOpen);
        }
        self.send_control(Opcode::Ping, &payload[..payload.len().min(125)], out);
        Ok(())
    }

    /// Starts the close handshake from our side (1001 when a peer stops answering, say).
    pub fn close(&mut self, payload: ClosePayload, out: &mut Vec<u8>) -> Result<(), NotOpen> {
        if self.state != State::Open {
            return Err(NotOpen);
        }
        self.send_close(Some(payload), out);
        self.state = State::Closing;
        Ok(())
    }

    /// Fails the connection for `err` (RFC 6455 §7.1.7): queues the close frame that reports
    /// it, if none was sent yet, and stops reading for good.
    fn fail(&mut self, err: ProtocolError, out: &mut Vec<u8>) -> Option<Event> {
        let was_open = self.state == State::Open;
        self.state = State::Failed;
        if let Some(recording) = &mut self.recording {
            recording.fail(err);
        }
        if was_open {
            self.send_close(Some(ClosePayload::code(err.close_code())), out);
        }
        // While closing, our close frame is out already: the failure has nothing to report.
        was_open.then_some(Event::Failed(err))
    }

    /// Parses frames from `input` until one completes an event or the input runs out.
    fn step(&mut self, input: &mut [u8], out: &mut Vec<u8>) -> (usize, Option<Completed>) {
        let mut used = 0;
        loop {
            // RFC 6455 §7.1.7: an endpoint that fails the connection "MUST NOT continue to
            // attempt to process data (including a responding Close frame) from the remote
            // endpoint". Once failed, or closed, every byte is consumed unread.
            if matches!(self.state, State::Closed | State::Failed) {
                return (input.len(), None);
            }
            let frame = match self.frame.take() {
                Some(frame) => frame,
                None => match self.read_header(&mut used, input) {
                    Ok(Some(Frame::InProgress(frame))) => frame,
                    Ok(Some(Frame::WholeBinary(range))) => {
                        let delivered = Delivered::InPlace(range);
                        return (used, Some(Completed::Message(delivered)));
                    }
                    Ok(None) => return (used, None),
                    Err(err) => return (used, Some(Completed::Failed(err))),
                },
            };
            let take = usize::try_from(frame.remaining())
                .map_or(input.len() - used, |left| left.min(input.len() - used));
            let chunk = &mut input[used..used + take];
            used += take;
            let frame = FrameInProgress {
                received: frame.received + take as u64,
                ..frame
            };
            if let Err(err) = self.take_payload(&frame, chunk) {
                return (used, Some(Completed::Failed(err)));
            }
            if frame.remaining() > 0 {
                self.frame = Some(frame);
                return (used, None);
            }
            if let Some(recording) = &mut self.recording {
                recording.finish_frame();
            }
            if let Some(completed) = self.finish_frame(&frame.header, out) {
                return (used, Some(completed));
            }
        }
    }

    /// Reads the next frame header from `input[*used..]` (it may arrive in pieces) and
    /// checks it against the message state. Returns `None` while it is incomplete.
    fn read_header(
        &mut self,
        used: &mut usize,
        input: &mut [u8],
    ) -> Result<Option<Frame>, ProtocolError> {
        let (header, len) = match self.gather_header(&input[*used..]) {
            Ok(Status::Complete(done)) => done,
            Ok(Status::Partial) => {
                *used = input.len();
                return Ok(None);
            }
            Err(err) => {
                self.note_unparsed(&input[*used..]);
                return Err(err);
            }
        };
        *used += len;
        if let Some(recording) = &mut self.recording {
            recording.current = Some(FrameRecord::received(&header));
        }
        if let Some(end) = self.whole_binary_end(&header, *used, input.len()) {
            // The fast path: a whole binary message in this read is unmasked where it
            // lies and handed out from there, with no copy.
            let range = *used..end;
            self.note_on_wire(&input[range.clone()]);
            apply_mask(&mut input[range.clone()], header.mask, 0);
            self.note_unmasked(&input[range.clone()]);
            if let Some(recording) = &mut self.recording {
                recording.finish_frame();
            }
            *used = end;
            return Ok(Some(Frame::WholeBinary(range)));
        }
        self.start_frame(&header)?;
        let frame = FrameInProgress {
            header,
            received: 0,
        };
        Ok(Some(Frame::InProgress(frame)))
    }

    /// Parses a header from `input`, or from the bytes of it gathered by earlier calls.
    fn gather_header(
        &mut self,
        input: &[u8],
    ) -> Result<Status<(FrameHeader, usize)>, ProtocolError> {
        if self.header_len == 0 {
            // The common case: the whole header is in this read.
            if let Status::Complete(done) = FrameHeader::parse_client(input)? {
                return Ok(Status::Complete(done));
            }
        }
        // Gather the header byte by byte: it is at most 14 bytes long, and stopping exactly
        // at its end leaves the payload in `input` for the caller.
        for (at, &byte) in input.iter().enumerate() {
            self.header[self.header_len] = byte;
            self.header_len += 1;
            if let Status::Complete((header, _)) =
                FrameHeader::parse_client(&self.header[..self.header_len])?
            {
                self.header_len = 0;
                return Ok(Status::Complete((header, at + 1)));
            }
        }
        Ok(Status::Partial)
    }

    /// Checks a new frame against the message state before any of its payload is read.
    fn start_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        if header.opcode.is_control() {
            self.control_len = 0;
            return Ok(());
        }
        self.assembly.start(header.opcode)?;
        // Judge the size from the header, before a single payload byte is read: a claim of
        // 2^63 bytes must cost nothing. The message buffer only grows as bytes arrive.
        let limit = self.max_message_size as u64;
        let so_far = self.assembly.len() as u64;
        if header.payload_len > limit - so_far.min(limit) {
            return Err(ProtocolError::MessageTooBig {
                limit: self.max_message_size,
            });
        }
        Ok(())
    }

    /// Where the payload ends if `header` starts a single-frame binary message, within the
    /// size limit and with no other message in progress, that lies whole in an input of
    /// `len` bytes from `start`: every check `start_frame` would make passes, and the
    /// message needs no assembly. Text always goes through [`Assembly::push`], so UTF-8 has
    /// one path.
    fn whole_binary_end(&self, header: &FrameHeader, start: usize, len: usize) -> Option<usize> {
        let single = header.fin
            && header.opcode == Opcode::Binary
            && matches!(self.assembly, Assembly::Idle(_))
            && header.payload_len <= self.max_message_size as u64;
        let end = start.checked_add(usize::try_from(header.payload_len).ok()?)?;
        (single && end <= len && self.state == State::Open).then_some(end)
    }

    /// Unmasks one chunk of the current frame's payload (in place: these bytes are
    /// consumed) and stores it.
    fn take_payload(
        &mut self,
        frame: &FrameInProgress,
        chunk: &mut [u8],
    ) -> Result<(), ProtocolError> {
        let offset = (frame.received - chunk.len() as u64) % 4;
        self.note_on_wire(chunk);
        apply_mask(chunk, frame.header.mask, offset as usize);
        self.note_unmasked(chunk);
        if frame.header.opcode.is_control() {
            let start = self.control_len;
            self.control[start..start + chunk.len()].copy_from_slice(chunk);
            self.control_len += chunk.len();
            Ok(())
        } else {
            let pushed = self.assembly.push(chunk, frame.remaining());
            if pushed.is_err() {
                self.note_bad_text(chunk);
            }
            pushed
        }
    }

    /// Acts on a frame whose payload is complete.
    fn finish_frame(&mut self, header: &FrameHeader, out: &mut Vec<u8>) -> Option<Completed> {
        match header.opcode {
            Opcode::Close => Some(self.receive_close(out)),
            // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
            // frame in response, unless it already received a Close frame." So a ping that
            // arrives while our own close frame waits for its answer still gets its pong.
            Opcode::Ping if matches!(self.state, State::Open | State::Closing) => {
                let (payload, len) = (self.control, self.control_len);
                self.send_control(Opcode::Pong, &payload[..len], out);
                None
            }
            // RFC 6455 §5.5.3: "A response to an unsolicited Pong frame is not expected."
            Opcode::Ping | Opcode::Pong => None,
            Opcode::Text | Opcode::Binary | Opcode::Continuation if header.fin => {
                match self.assembly.finish() {
                    Err(err) => Some(Completed::Failed(err)),
                    Ok(()) if self.state == State::Open => {
                        Some(Completed::Message(Delivered::Assembled))
                    }
                    // A message that completes after our close frame is dropped unread.
                    Ok(()) => {
                        self.assembly.reset();
                        None
                    }
                }
            }
            Opcode::Text | Opcode::Binary | Opcode::Continuation => None,
        }
    }

    /// Appends a control frame the protocol sends itself (a pong, a ping, a close) to `out`.
    fn send_control(&mut self, opcode: Opcode, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        frame::encode_frame(out, opcode, payload);
        if let Some(recording) = &mut self.recording {
            let header = &out[start..out.len() - payload.len()];
            let sent = FrameRecord::sent(header, &[payload]);
            recording.done.push(Record::Frame(sent));
        }
    }

    /// Appends a close frame with `payload` (or an empty one): every close frame the
    /// protocol sends goes through here.
    fn send_close(&mut self, payload: Option<ClosePayload>, out: &mut Vec<u8>) {
        let start = out.len();
        frame::encode_close(out, payload);
        if let Some(recording) = &mut self.recording {
            // A control frame's header is 2 bytes: its payload is at most 125.
            let (header, payload) = out[start..].split_at(2);
            let sent = FrameRecord::sent(header, &[payload]);
            recording.done.push(Record::Frame(sent));
        }
    }

    /// Keeps the first payload bytes of the current frame as they came, masked.
    fn note_on_wire(&mut self, chunk: &[u8]) {
        if let Some(current) = self.recording.as_mut().and_then(|r| r.current.as_mut()) {
            current.on_wire.extend(chunk);
        }
    }

    /// Keeps the first payload bytes of the current frame unmasked.
    fn note_unmasked(&mut self, chunk: &[u8]) {
        if let Some(current) = self.recording.as_mut().and_then(|r| r.current.as_mut()) {
            current.payload.extend(chunk);
        }
    }

    /// Keeps the bytes around the place where a chunk of text stopped being UTF-8 (up to
    /// 8 before it and 8 from it), for the trace.
    fn note_bad_text(&mut self, chunk: &[u8]) {
        if let Some(recording) = &mut self.recording {
            // A chunk that is valid on its own failed on the code point cut before it.
            let at = std::str::from_utf8(chunk)
                .err()
                .map_or(0, |err| err.valid_up_to());
            let window = &chunk[at.saturating_sub(8)..(at + 8).min(chunk.len())];
            recording.offending = Some(Preview::of(window));
        }
    }

    /// Keeps the bytes of a header that broke a rule before it was whole.
    fn note_unparsed(&mut self, input: &[u8]) {
        if let Some(recording) = &mut self.recording {
            let seen = if self.header_len > 0 {
                &self.header[..self.header_len]
            } else {
                &input[..input.len().min(MAX_HEADER_LEN)]
            };
            // The header's first bytes, up to the one that broke the rule.
            let end = (1..=seen.len())
                .find(|&end| FrameHeader::parse_client(&seen[..end]).is_err())
                .unwrap_or(seen.len());
            recording.current = None;
            recording.offending = Some(Preview::of(&seen[..end]));
        }
    }

    /// A close frame arrived: the peer is done with this connection, whatever it says.
    fn receive_close(&mut self, out: &mut Vec<u8>) -> Completed {
        let parsed = ClosePayload::parse(&self.control[..self.control_len]);
        if self.state == State::Closing {
            // The answer to our own close frame: the handshake is over.
            self.state = State::Closed;
            return match parsed {
                Ok(payload) => Completed::Closed(payload.map(|p| p.code)),
                Err(err) => Completed::Failed(err),
            };
        }
        match parsed {
            Ok(payload) => {
                // RFC 6455 §5.5.1: "the endpoint typically echos the status code it
                // received". This server echoes the code, without the reason.
                let code = payload.map(|p| p.code);
                self.send_close(code.map(ClosePayload::code), out);
                self.state = State::Closed;
                Completed::Closed(code)
            }
            Err(err) => Completed::Failed(err),
        }
    }
}

impl Assembly {
    /// Starts a message with a text or binary frame, or continues one with a continuation.
    fn start(&mut self, opcode: Opcode) -> Result<(), ProtocolError> {
        match (opcode, &mut *self) {
            (Opcode::Continuation, Assembly::Text(..) | Assembly::Binary(_)) => Ok(()),
            // RFC 6455 §5.4: a continuation frame only continues a started message...
            (Opcode::Continuation, Assembly::Idle(_)) => {
                Err(ProtocolError::ContinuationWithoutStart)
            }
            // ...and "the fragments of one message MUST NOT be interleaved between the
            // fragments of another message".
            (_, Assembly::Text(..) | Assembly::Binary(_)) => {
                Err(ProtocolError::DataInsideFragmentedMessage)
            }
            (_, Assembly::Idle(buffer)) => {
                let buffer = std::mem::take(buffer);
                *self = if opcode == Opcode::Text {
                    // An empty buffer is valid UTF-8, so this hands the allocation over.
                    Assembly::Text(
                        String::from_utf8(buffer).unwrap_or_default(),
                        Utf8Tail::default(),
                    )
                } else {
                    Assembly::Binary(buffer)
                };
                Ok(())
            }
        }
    }

    /// Payload bytes of the message so far.
    fn len(&self) -> usize {
        match self {
            Assembly::Idle(_) => 0,
            Assembly::Text(text, tail) => text.len() + tail.len,
            Assembly::Binary(bytes) => bytes.len(),
        }
    }

    /// Appends an unmasked chunk of the message; `frame_left` bytes of its frame follow.
    fn push(&mut self, chunk: &[u8], frame_left: u64) -> Result<(), ProtocolError> {
        let needed = self.len() + chunk.len();
        match self {
            Assembly::Idle(_) => Ok(()),
            Assembly::Binary(bytes) => {
                bytes.reserve_exact(growth(bytes.len(), bytes.capacity(), needed, frame_left));
                bytes.extend_from_slice(chunk);
                Ok(())
            }
            Assembly::Text(text, tail) => {
                text.reserve_exact(growth(text.len(), text.capacity(), needed, frame_left));
                push_utf8(text, tail, chunk)
            }
        }
    }

    /// Ends the message. RFC 6455 §8.1: a text message whose bytes are not valid UTF-8
    /// fails the connection; here, one that ends inside a code point.
    fn finish(&self) -> Result<(), ProtocolError> {
        match self {
            Assembly::Text(_, tail) if tail.len > 0 => Err(ProtocolError::InvalidUtf8),
            _ => Ok(()),
        }
    }

    /// Back to idle, keeping the buffer (cleared) for the next message.
    fn reset(&mut self) {
        if let Assembly::Idle(_) = self {
            return;
        }
        let mut buffer = match std::mem::replace(self, Assembly::Idle(Vec::new())) {
            Assembly::Idle(buffer) | Assembly::Binary(buffer) => buffer,
            Assembly::Text(text, _) => text.into_bytes(),
        };
        buffer.clear();
        *self = Assembly::Idle(buffer);
    }

    /// The capacity of the message buffer, whichever kind it holds.
    fn capacity(&self) -> usize {
        match self {
            Assembly::Idle(bytes) | Assembly::Binary(bytes) => bytes.capacity(),
            Assembly::Text(text, _) => text.capacity(),
        }
    }
}

/// How much a message buffer of `len` bytes and `capacity` must grow to hold `needed`:
/// geometrically, so a large message is copied O(1) times, but never past the end of the
/// current frame, whose length is known, so the buffer stays within what actually arrives.
fn growth(len: usize, capacity: usize, needed: usize, frame_left: u64) -> usize {
    if needed <= capacity {
        return 0;
    }
    let frame_end = (needed as u64).saturating_add(frame_left);
    let doubled = (capacity as u64 * 2).max(4096);
    doubled.min(frame_end).max(needed as u64) as usize - len
}

/// Appends text as it arrives, checking each byte once: the one UTF-8 path. A code point
/// cut by the end of a chunk waits in `tail` for the rest; what can no longer become valid
/// UTF-8 fails in the call that brings it.
fn push_utf8(
    text: &mut String,
    tail: &mut Utf8Tail,
    mut chunk: &[u8],
) -> Result<(), ProtocolError> {
    if tail.len > 0 {
        let width = utf8_width(tail.bytes[0]);
        let take = (width - tail.len).min(chunk.len());
        tail.bytes[tail.len..tail.len + take].copy_from_slice(&chunk[..take]);
        tail.len += take;
        chunk = &chunk[take..];
        match std::str::from_utf8(&tail.bytes[..tail.len]) {
            Ok(code_point) => {
                text.push_str(code_point);
                tail.len = 0;
            }
            Err(err) if err.error_len().is_none() => return Ok(()),
            Err(_) => return Err(ProtocolError::InvalidUtf8),
        }
    }
    let (whole, cut) = chunk.split_at(cut_code_point_start(chunk));
    let whole = std::str::from_utf8(whole).map_err(|_| ProtocolError::InvalidUtf8)?;
    text.push_str(whole);
    if std::str::from_utf8(cut).is_err_and(|err| err.error_len().is_some()) {
        return Err(ProtocolError::InvalidUtf8);
    }
    tail.bytes[..cut.len()].copy_from_slice(cut);
    tail.len = cut.len();
    Ok(())
}

/// The length of the UTF-8 sequence a lead byte starts (1 for bytes that start none).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// Where a code point cut by the end of `bytes` starts, or `bytes.len()` if none is cut.
/// UTF-8 is self-synchronising: the lead byte is among the last three.
fn cut_code_point_start(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let at = bytes.len() - back;
        if bytes[at] & 0xC0 != 0x80 {
            return if utf8_width(bytes[at]) > back {
                at
            } else {
                bytes.len()
            };
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let mut out = Vec::new();
        frame::encode_header(&mut out, Opcode::Text, payload.len(), Some(key));
        out[0] = (u8::from(fin) << 7) | opcode;
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    /// Feeds `input` in `chunk`-byte pieces and describes every event.
    fn events(protocol: &mut Protocol, input: &[u8], chunk: usize) -> (Vec<String>, Vec<u8>) {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        let mut input = input.to_vec();
        for piece in input.chunks_mut(chunk) {
            let mut at = 0;
            while at < piece.len() {
                let (used, event) = protocol.receive(&mut piece[at..], &mut out);
                match event {
                    Some(Event::Message) => {
                        let message = protocol.message(&piece[at..]).expect("a message");
                        seen.push(format!("{message:?}"));
                    }
                    Some(event) => seen.push(format!("{event:?}")),
                    None => {}
                }
                at += used;
            }
        }
        (seen, out)
    }

    /// Feeds `input` whole to a fresh protocol and returns its events and output.
    fn run(max_message_size: usize, input: &[u8]) -> (Vec<String>, Vec<u8>) {
        events(
            &mut Protocol::new(max_message_size),
            input,
            input.len().max(1),
        )
    }

    #[test]
    fn the_same_stream_gives_the_same_events_in_any_chunking() {
        let mut input = client_frame(false, 0x1, "héllo ".as_bytes());
        input.extend(client_frame(true, 0x9, b"p"));
        input.extend(client_frame(true, 0x0, "wörld".as_bytes()));
        input.extend(client_frame(true, 0x2, &[0; 300]));
        input.extend(client_frame(true, 0x8, &[0x03, 0xE8]));
        let whole = run(1 << 20, &input);
        assert_eq!(whole.0.len(), 3);
        assert_eq!(whole.0[0], r#"Text("héllo wörld")"#);
        assert_eq!(whole.0[2], "Closed { code: Some(CloseCode(1000)) }");
        for chunk in 1..input.len() {
            assert_eq!(
                events(&mut Protocol::new(1 << 20), &input, chunk),
                whole,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_whole_single_frame_binary_message_is_unmasked_where_it_lies() {
        let mut protocol = Protocol::new(1 << 20);
        let mut input = client_frame(true, 0x2, b"in place");
        let next = client_frame(true, 0x1, b"next");
        input.extend_from_slice(&next[..5]);
        let mut out = Vec::new();
        let (used, event) = protocol.receive(&mut input, &mut out);
        assert_eq!(event, Some(Event::Message));
        assert_eq!(protocol.message(&input), Some(Message::Binary(b"in place")));
        assert_eq!(protocol.assembly.len(), 0);
        assert!(
            matches!(&protocol.assembly, Assembly::Idle(b) if b.capacity() == 0),
            "the payload was copied"
        );
        assert_eq!(
            &input[used..],
            &next[..5],
            "unconsumed bytes must stay as they were"
        );
    }

    #[test]
    fn a_huge_length_claim_allocates_nothing() {
        let mut protocol = Protocol::new(usize::MAX);
        let mut header = vec![0x82, 0xFF];
        header.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        let mut out = Vec::new();
        let header_len = header.len();
        assert_eq!(protocol.receive(&mut header, &mut out), (header_len, None));
        protocol.receive(&mut [0; 10], &mut out);
        assert!(
            matches!(&protocol.assembly, Assembly::Binary(b) if b.capacity() <= 4096),
            "{:?}",
            protocol.assembly.len()
        );
    }

    #[test]
    fn a_million_empty_fragments_cost_no_memory() {
        let mut protocol = Protocol::new(1 << 20);
        let mut out = Vec::new();
        let empty = client_frame(false, 0x0, b"");
        let mut stream = client_frame(false, 0x1, b"");
        stream.extend(empty.repeat(1000));
        let stream_len = stream.len();
        assert_eq!(protocol.receive(&mut stream, &mut out), (stream_len, None));
        let mut batch = empty.repeat(1000);
        for _ in 0..1000 {
            let batch_len = batch.len();
            assert_eq!(protocol.receive(&mut batch, &mut out), (batch_len, None));
        }
        assert!(matches!(&protocol.assembly, Assembly::Text(t, _) if t.capacity() == 0));
        let mut last = client_frame(true, 0x0, b"end");
        let (_, event) = protocol.receive(&mut last, &mut out);
        assert_eq!(event, Some(Event::Message));
        assert_eq!(protocol.message(&last), Some(Message::Text("end")));
        assert!(out.is_empty());
    }

    #[test]
    fn message_buffer_grows_only_with_arriving_bytes() {
        let mut protocol = Protocol::new(64 << 20);
        let payload = vec![7; 8 << 20];
        let mut frame = client_frame(true, 0x2, &payload);
        let mut out = Vec::new();
        protocol.receive(&mut frame[..14 + 100_000], &mut out);
        let capacity = |p: &Protocol| match &p.assembly {
            Assembly::Binary(bytes) => bytes.capacity(),
            other => panic!("{other:?}"),
        };
        assert!(
            capacity(&protocol) <= 2 * 100_000,
            "{}",
            capacity(&protocol)
        );
        let (_, event) = protocol.receive(&mut frame[14 + 100_000..], &mut out);
        assert_eq!(event, Some(Event::Message));
        assert_eq!(protocol.message(&[]), Some(Message::Binary(&payload)));
        assert!(capacity(&protocol) <= payload.len() + 4096);
    }

    #[test]
    fn a_large_buffer_is_kept_between_messages_until_released() {
        let mut protocol = Protocol::new(1 << 20);
        let payload = vec![1; 300 * 1024];
        let frame = client_frame(true, 0x2, &payload);
        let mut out = Vec::new();
        for _ in 0..2 {
            // In two reads, so the message is assembled rather than handed out in place.
            let mut frame = frame.clone();
            let (first, second) = frame.split_at_mut(1000);
            protocol.receive(first, &mut out);
            assert_eq!(protocol.receive(second, &mut out).1, Some(Event::Message));
            assert!(protocol.holds_spare_memory());
        }
        assert_eq!(protocol.message(&[]), Some(Message::Binary(&payload)));
        assert!(protocol.release_spare_memory());
        assert_eq!(protocol.message(&[]), None, "the released message is gone");
        assert!(!protocol.holds_spare_memory());
        assert_eq!(protocol.assembly.capacity(), 0);
        assert!(!protocol.release_spare_memory());
    }

    #[test]
    fn invalid_utf8_fails_in_the_call_that_brings_it() {
        let mut protocol = Protocol::new(1 << 20);
        let mut frame = client_frame(
            true,
            0x1,
            &[b"abc".as_slice(), &[0xF8], &[b'x'; 100]].concat(),
        );
        let mut out = Vec::new();
        assert_eq!(protocol.receive(&mut frame[..6 + 3], &mut out), (9, None));
        let (_, event) = protocol.receive(&mut frame[9..10], &mut out);
        assert_eq!(event, Some(Event::Failed(ProtocolError::InvalidUtf8)));
        assert_eq!(out, [0x88, 0x02, 0x03, 0xEF]);
    }

    #[test]
    fn a_code_point_cut_by_a_chunk_is_not_an_error() {
        let mut protocol = Protocol::new(1 << 20);
        let mut frame = client_frame(true, 0x1, "€€".as_bytes());
        let mut out = Vec::new();
        for i in 0..frame.len() - 1 {
            assert_eq!(
                protocol.receive(&mut frame[i..i + 1], &mut out),
                (1, None),
                "byte {i}"
            );
        }
        let last = frame.len() - 1;
        let (_, event) = protocol.receive(&mut frame[last..], &mut out);
        assert_eq!(event, Some(Event::Message));
        assert_eq!(protocol.message(&[]), Some(Message::Text("€€")));
    }

    /// RFC 6455 §7.1.7: once failed, nothing more is processed, not even a close frame.
    #[test]
    fn after_failing_nothing_is_processed_not_even_a_close() {
        let mut protocol = Protocol::new(10);
        let mut out = Vec::new();
        let mut stream = client_frame(true, 0x2, &[1; 50]);
        stream.extend(client_frame(true, 0x9, b"ping"));
        stream.extend(client_frame(true, 0x1, b"text"));
        stream.extend(client_frame(true, 0x8, &[0x03, 0xE8]));
        let stream_len = stream.len();
        let (used, event) = protocol.receive(&mut stream, &mut out);
        assert_eq!(
            event,
            Some(Event::Failed(ProtocolError::MessageTooBig { limit: 10 }))
        );
        assert_eq!(protocol.state(), State::Failed);
        let (rest, event) = protocol.receive(&mut stream[used..], &mut out);
        assert_eq!((used + rest, event), (stream_len, None));
        assert_eq!(
            out,
            [0x88, 0x02, 0x03, 0xF1],
            "only our close frame is sent"
        );
        assert_eq!(protocol.receive_eof(), None);
    }

    #[test]
    fn our_own_close_waits_for_the_peers() {
        let mut protocol = Protocol::new(10);
        let mut out = Vec::new();
        let payload = ClosePayload {
            code: CloseCode::GOING_AWAY,
            reason: "ping timeout",
        };
        assert_eq!(protocol.close(payload, &mut out), Ok(()));
        assert_eq!(&out[..4], [0x88, 14, 0x03, 0xE9]);
        assert_eq!(&out[4..], b"ping timeout");
        assert_eq!(protocol.state(), State::Closing);
        assert_eq!(protocol.send_ping(b"late", &mut out), Err(NotOpen));
        assert_eq!(
            protocol.send_header(MessageKind::Text, 4, &mut out),
            Err(NotOpen)
        );
        // Data that crosses our close is read past; a ping still gets its pong (§5.5.2).
        let mut stream = client_frame(true, 0x1, b"late");
        stream.extend(client_frame(true, 0x9, b"p"));
        stream.extend(client_frame(true, 0x8, &[0x03, 0xE9]));
        let (events, pong) = events(&mut protocol, &stream, stream.len());
        assert_eq!(events, ["Closed { code: Some(CloseCode(1001)) }"]);
        assert_eq!(
            pong,
            [0x8A, 0x01, b'p'],
            "only the pong was sent after our close"
        );
        assert_eq!(protocol.state(), State::Closed);
    }

    #[test]
    fn eof_while_open_is_an_abnormal_closure() {
        let mut protocol = Protocol::new(10);
        assert_eq!(protocol.receive_eof(), Some(Event::Abnormal));
        assert_eq!(protocol.state(), State::Closed);
        let mut closing = Protocol::new(10);
        closing
            .close(ClosePayload::code(CloseCode::GOING_AWAY), &mut Vec::new())
            .unwrap();
        assert_eq!(closing.receive_eof(), None);
    }

    #[test]
    fn replies_get_the_shortest_header_while_open() {
        let mut protocol = Protocol::new(10);
        let mut out = Vec::new();
        protocol
            .send_header(MessageKind::Binary, 70_000, &mut out)
            .unwrap();
        assert_eq!(out, [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        out.clear();
        protocol
            .send_header(MessageKind::Text, 5, &mut out)
            .unwrap();
        assert_eq!(out, [0x81, 5]);
        let (_, _) = protocol.receive(&mut client_frame(true, 0x8, b""), &mut out);
        assert_eq!(
            protocol.send_header(MessageKind::Text, 5, &mut out),
            Err(NotOpen),
            "no data frame after the close handshake"
        );
    }

    /// The close frames that report errors: 1002, 1007 and 1009, with no reason.
    const PROTOCOL_ERROR: [u8; 4] = [0x88, 0x02, 0x03, 0xEA];
    const INVALID_PAYLOAD: [u8; 4] = [0x88, 0x02, 0x03, 0xEF];
    const TOO_BIG: [u8; 4] = [0x88, 0x02, 0x03, 0xF1];

    /// Feeds `input` to a protocol with a 10-byte message limit and checks that it fails
    /// with `err` and sends exactly `close`, whatever the chunking.
    fn assert_fails(input: &[u8], err: ProtocolError, close: [u8; 4]) {
        for chunk in 1..=input.len() {
            let (events, out) = events(&mut Protocol::new(10), input, chunk);
            assert_eq!(
                events,
                [format!("{:?}", Event::Failed(err))],
                "chunk {chunk}"
            );
            assert_eq!(out, close, "chunk {chunk}");
        }
    }

    /// One test per protocol error, named after the rule, with the exact close frame.
    macro_rules! fails_with {
        ($($name:ident: $input:expr => $err:expr, $close:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_fails(&$input, $err, $close);
            }
        )*};
    }

    fails_with! {
        rejects_reserved_bits: [0xC1, 0x80, 0, 0, 0, 0]
            => ProtocolError::ReservedBits, PROTOCOL_ERROR;
        rejects_reserved_opcodes: [0x83, 0x80, 0, 0, 0, 0]
            => ProtocolError::UnknownOpcode, PROTOCOL_ERROR;
        rejects_unmasked_client_frames: [0x81, 0x00]
            => ProtocolError::Unmasked, PROTOCOL_ERROR;
        rejects_fragmented_control_frames: client_frame(false, 0x9, b"")
            => ProtocolError::FragmentedControl, PROTOCOL_ERROR;
        rejects_control_frames_over_125_bytes: [0x89, 0xFE, 0, 126]
            => ProtocolError::ControlTooLong, PROTOCOL_ERROR;
        rejects_a_64_bit_length_with_the_top_bit_set: [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]
            => ProtocolError::LengthTopBit, PROTOCOL_ERROR;
        rejects_a_continuation_without_a_message: client_frame(true, 0x0, b"x")
            => ProtocolError::ContinuationWithoutStart, PROTOCOL_ERROR;
        rejects_a_new_message_inside_a_fragmented_one:
            [client_frame(false, 0x1, b"a"), client_frame(true, 0x1, b"b")].concat()
            => ProtocolError::DataInsideFragmentedMessage, PROTOCOL_ERROR;
        rejects_a_one_byte_close_payload: client_frame(true, 0x8, &[3])
            => ProtocolError::ClosePayloadOneByte, PROTOCOL_ERROR;
        rejects_close_codes_not_allowed_on_the_wire: client_frame(true, 0x8, &[3, 0xED])
            => ProtocolError::CloseCodeNotAllowed(1005), PROTOCOL_ERROR;
        rejects_invalid_utf8_text: client_frame(true, 0x1, &[0xC0, 0x80])
            => ProtocolError::InvalidUtf8, INVALID_PAYLOAD;
        rejects_a_text_message_ending_inside_a_code_point: client_frame(true, 0x1, &[0xE2, 0x82])
            => ProtocolError::InvalidUtf8, INVALID_PAYLOAD;
        rejects_an_invalid_utf8_close_reason: client_frame(true, 0x8, &[3, 0xE8, 0xFF])
            => ProtocolError::CloseReasonUtf8, INVALID_PAYLOAD;
        rejects_messages_over_the_limit: client_frame(true, 0x2, &[0; 11])
            => ProtocolError::MessageTooBig { limit: 10 }, TOO_BIG;
        rejects_fragmented_messages_over_the_limit:
            [client_frame(false, 0x1, b"12345"), client_frame(true, 0x0, b"678901")].concat()
            => ProtocolError::MessageTooBig { limit: 10 }, TOO_BIG;
    }
}
