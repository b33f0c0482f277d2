//! The per-connection state machine of RFC 6455, server role, sans I/O: bytes in, events
//! and bytes out. Every protocol decision lives here; every change of state goes through
//! `Protocol::advance`, whose table is the doc of [`State`].
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
//! rather than at the end of its message. A single-frame message that lies whole in one
//! input is unmasked and checked where it lies, and handed out from there without a copy.

use std::ops::Range;

use crate::assembly::Assembly;
use crate::close::{CloseCode, ClosePayload};
use crate::error::ProtocolError;
use crate::frame::{self, apply_mask, FrameHeader, Opcode, MAX_HEADER_LEN};
use crate::message::{Delivery, Event, Held, Message, MessageKind, NotOpen, Part};
use crate::record::{NoRecording, Position, ReadRecord, Record, Recorder, Recording};
use crate::Status;

/// Where a connection is in its life (RFC 6455 §7). Every change goes through
/// `Protocol::advance`, and these are all of them:
///
/// | from               | trigger                                  | to        | what goes out                |
/// |--------------------|------------------------------------------|-----------|------------------------------|
/// | `Open`             | we close ([`Protocol::close`])           | `Closing` | our close frame              |
/// | `Open`             | the peer's close frame                   | `Closed`  | our close reply              |
/// | `Closing`          | the peer's close frame                   | `Closed`  | nothing: the handshake is over |
/// | `Open`, `Closing`  | the peer's EOF ([`Protocol::receive_eof`]) | `Closed` | nothing                     |
/// | `Open`             | a violation                              | `Failed`  | our close frame, with its code |
/// | `Closing`          | a violation                              | `Failed`  | nothing: our close is out    |
/// | `Closed`, `Failed` | anything                                 | the same  | nothing; every byte is consumed unread |
///
/// Only `Open` delivers messages and lets the application send data frames; `Open` and
/// `Closing` answer pings.
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

/// What moves a connection from one [`State`] to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// We start the close handshake.
    SendClose,
    /// The peer's close frame arrived.
    ReceiveClose,
    /// The peer's byte stream ended.
    Eof,
    /// The peer broke a rule.
    Violation,
}

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

/// A frame whose header was just read.
enum Frame {
    /// Its payload is still to come.
    InProgress(FrameInProgress),
    /// A whole single-frame message, unmasked where it lies in the input.
    Whole(MessageKind, Range<usize>),
}

/// What a step of the parser completed.
enum Completed {
    /// A single-frame message, whole in the input (text not yet checked).
    InPlace(MessageKind, Range<usize>),
    /// A message in the [`Assembly`].
    Assembled,
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
    /// The last call delivered the message in the assembly; the next one lets go of it.
    delivered: bool,
    /// Records for the trace and the inspector, once [`Protocol::record`] asked for them.
    recording: Option<Box<Recording>>,
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
            delivered: false,
            recording: None,
        }
    }

    /// Starts keeping a [`Record`] of every frame the peer sends, every control frame the
    /// protocol sends, and a failure, for [`Protocol::take_records`]. The data frames the
    /// application sends are the application's to record. Off, it costs one branch a call.
    pub fn record(&mut self) {
        self.recording.get_or_insert_with(Box::default);
    }

    /// The records completed since the last call (none unless [`Protocol::record`] was
    /// called). A frame's record is complete once its whole payload has arrived.
    pub fn take_records(&mut self) -> Vec<Record> {
        self.recording
            .as_mut()
            .map_or_else(Vec::new, |recording| recording.take())
    }

    /// Files a record of one read of `bytes` (with the request head, if `with_head`),
    /// saying how they fall into frames, before they are given to [`Protocol::receive`].
    /// Off, it costs one branch a read.
    pub fn record_read(&mut self, bytes: &[u8], with_head: bool) {
        if self.recording.is_some() {
            let read = ReadRecord::survey(self.position(), bytes, with_head);
            if let Some(recording) = &mut self.recording {
                recording.read(read);
            }
        }
    }

    /// What the next byte continues.
    fn position(&self) -> Position<'_> {
        match (self.state, &self.frame, self.header_len) {
            (State::Closed | State::Failed, _, _) => Position::Done,
            (_, Some(frame), _) => Position::Payload {
                header_len: frame.header.length_format.client_header_len(),
                payload_len: frame.header.payload_len,
                received: frame.received,
            },
            (_, None, 0) => Position::Boundary,
            (_, None, gathered) => Position::Header(&self.header[..gathered]),
        }
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// The one place the state changes: [`State`]'s table, as code. Returns the state the
    /// connection was in, which decides what goes out.
    fn advance(&mut self, trigger: Trigger) -> State {
        let from = self.state;
        self.state = match (from, trigger) {
            (State::Open, Trigger::SendClose) => State::Closing,
            (State::Open | State::Closing, Trigger::ReceiveClose | Trigger::Eof) => State::Closed,
            (State::Open | State::Closing, Trigger::Violation) => State::Failed,
            (state, _) => state,
        };
        from
    }

    /// The one guard on what the application may send. RFC 6455 §5.5.1: "After sending a
    /// Close frame, the endpoint MUST NOT send any further data frames", and once the
    /// peer's close arrived, pure-ws sends only its reply.
    fn require_open(&self) -> Result<(), NotOpen> {
        match self.state {
            State::Open => Ok(()),
            State::Closing | State::Closed | State::Failed => Err(NotOpen),
        }
    }

    /// Whether the protocol keeps a large message buffer (over 256 KiB) between messages:
    /// no message is in progress, or the last one was delivered already.
    pub fn holds_spare_memory(&self) -> bool {
        let between = self.delivered || matches!(self.assembly, Assembly::Idle(_));
        between && self.assembly.capacity() > RETAINED_CAPACITY
    }

    /// Frees a large message buffer kept between messages (and lets go of the delivered
    /// message that filled it); the shell calls this when the connection goes quiet.
    /// Returns whether there was one.
    pub fn release_spare_memory(&mut self) -> bool {
        let spare = self.holds_spare_memory();
        if spare {
            self.delivered = false;
            self.assembly = Assembly::Idle(Vec::new());
        }
        spare
    }

    /// Consumes a prefix of `input` and returns how many bytes it took, with the event those
    /// bytes completed, if any. Call again with the rest of the input until it is used up.
    ///
    /// A single-frame message that lies whole in `input` is unmasked where it lies and
    /// handed out from there, without a copy; so `input` is mutable, and the consumed bytes
    /// may be changed. Bytes that are not consumed are never touched.
    pub fn receive<'i>(
        &mut self,
        input: &'i mut [u8],
        out: &mut Vec<u8>,
    ) -> (usize, Option<Event<'i>>) {
        if self.delivered {
            self.delivered = false;
            self.assembly.reset();
        }
        if let Some((kind, payload)) = self.whole_message_first(input) {
            let end = payload.end;
            let input: &'i [u8] = input;
            return (end, self.in_place(kind, &input[payload], out));
        }
        self.receive_frames(input, out)
    }

    /// [`Protocol::receive`] for everything but its fast path, frame by frame. Not
    /// inlined, so the fast path stays a small function.
    #[inline(never)]
    fn receive_frames<'i>(
        &mut self,
        input: &'i mut [u8],
        out: &mut Vec<u8>,
    ) -> (usize, Option<Event<'i>>) {
        // The one branch recording costs: with it off, `step` has no recording in it.
        let (used, completed) = match self.recording.take() {
            None => self.step(input, out, &mut NoRecording),
            Some(mut recording) => {
                let stepped = self.step(input, out, &mut *recording);
                self.recording = Some(recording);
                stepped
            }
        };
        let Some(completed) = completed else {
            return (used, None);
        };
        let input: &'i [u8] = input;
        let event = match completed {
            Completed::InPlace(kind, range) => self.in_place(kind, &input[range], out),
            Completed::Assembled => {
                self.delivered = true;
                Some(Event::Message(Delivery(Held::Assembled)))
            }
            Completed::Closed(code) => Some(Event::Closed { code }),
            Completed::Failed(err) => self.fail(err, out),
        };
        (used, event)
    }

    /// The fast path, for the commonest input: nothing in progress, nothing recorded, and
    /// a whole single-frame message at the start of `input`, which is unmasked where it
    /// lies. Returns its kind and where its payload lies; `None` leaves everything else (a
    /// control frame, a fragment, a frame cut by the end of the input, an error) to
    /// [`Protocol::step`], which parses the header again and decides.
    #[inline]
    fn whole_message_first(&self, input: &mut [u8]) -> Option<(MessageKind, Range<usize>)> {
        if self.frame.is_some() || self.header_len != 0 || self.recording.is_some() {
            return None;
        }
        let (header, len) = FrameHeader::parse_common(input)?;
        let (kind, end) = self.whole_message_end(&header, len, input.len())?;
        apply_mask(&mut input[len..end], header.mask, 0);
        Some((kind, len..end))
    }

    /// The event for a single-frame message that lay whole in the input, unmasked there:
    /// text is checked for UTF-8 here, once, where it lies.
    #[inline]
    fn in_place<'i>(
        &mut self,
        kind: MessageKind,
        payload: &'i [u8],
        out: &mut Vec<u8>,
    ) -> Option<Event<'i>> {
        let message = match kind {
            MessageKind::Binary => Message::Binary(payload),
            MessageKind::Text => match std::str::from_utf8(payload) {
                Ok(text) => Message::Text(text),
                Err(_) => {
                    if let Some(recording) = &mut self.recording {
                        recording.bad_text(0, payload);
                    }
                    return self.fail(ProtocolError::InvalidUtf8, out);
                }
            },
        };
        Some(Event::Message(Delivery(Held::InPlace(message))))
    }

    /// The message `delivery` announced, until the next call to [`Protocol::receive`] or
    /// [`Protocol::release_spare_memory`] lets go of it (then `None`).
    pub fn message<'a>(&'a self, delivery: &Delivery<'a>) -> Option<Message<'a>> {
        match (&delivery.0, &self.assembly) {
            (Held::InPlace(message), _) => Some(*message),
            (Held::Assembled, _) if !self.delivered => None,
            (Held::Assembled, Assembly::Text(text, _)) => Some(Message::Text(text)),
            (Held::Assembled, Assembly::Binary(bytes)) => Some(Message::Binary(bytes)),
            (Held::Assembled, Assembly::Idle(_)) => None,
        }
    }

    /// Tells the protocol that the peer's byte stream ended. While the connection is open
    /// that is an abnormal closure; once a close frame was sent or received it is expected.
    pub fn receive_eof(&mut self) -> Option<Event<'static>> {
        let from = self.advance(Trigger::Eof);
        (from == State::Open).then_some(Event::Abnormal)
    }

    /// Appends the header of a one-frame data message of `len` payload bytes to `out`; the
    /// payload must follow it on the wire. Refused with [`NotOpen`] once a close frame was
    /// sent or received.
    pub fn send_header(
        &self,
        kind: MessageKind,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), NotOpen> {
        self.send_part_header(kind, Part::Whole, len, out)
    }

    /// Appends the header of one frame of a data message of `kind`, `len` payload bytes,
    /// to `out`: its first frame carries the kind, the others are continuations, and the
    /// last has FIN set. Refused like [`Protocol::send_header`].
    pub fn send_part_header(
        &self,
        kind: MessageKind,
        part: Part,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), NotOpen> {
        self.require_open()?;
        let (fin, opcode) = match part {
            Part::Whole => (true, kind.opcode()),
            Part::First => (false, kind.opcode()),
            Part::Middle => (false, Opcode::Continuation),
            Part::Last => (true, Opcode::Continuation),
        };
        frame::encode_header_fin(out, fin, opcode, len, None);
        Ok(())
    }

    /// Sends a ping (for keepalive), at most 125 bytes of `payload`, while open.
    pub fn send_ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), NotOpen> {
        self.require_open()?;
        let payload = &payload[..payload.len().min(125)];
        match self.recording.as_deref_mut() {
            None => send_control(Opcode::Ping, payload, out, &mut NoRecording),
            Some(recording) => send_control(Opcode::Ping, payload, out, recording),
        }
        Ok(())
    }

    /// Starts the close handshake from our side (1001 when a peer stops answering, say).
    pub fn close(&mut self, payload: ClosePayload, out: &mut Vec<u8>) -> Result<(), NotOpen> {
        self.require_open()?;
        self.advance(Trigger::SendClose);
        self.send_close_recorded(Some(payload), out);
        Ok(())
    }

    /// Fails the connection for `err` (RFC 6455 §7.1.7): queues the close frame that reports
    /// it, if none was sent yet, and stops reading for good.
    fn fail(&mut self, err: ProtocolError, out: &mut Vec<u8>) -> Option<Event<'static>> {
        let from = self.advance(Trigger::Violation);
        if let Some(recording) = &mut self.recording {
            recording.failed(err);
        }
        // While closing, our close frame is out already: the failure has nothing to report.
        // Otherwise the close frame says which rule was broken, for the peer's developer.
        (from == State::Open).then(|| {
            let payload = ClosePayload {
                code: err.close_code(),
                reason: err.reason(),
            };
            self.send_close_recorded(Some(payload), out);
            Event::Failed(err)
        })
    }

    /// [`send_close`] with the protocol's own recorder, outside a parsing step.
    fn send_close_recorded(&mut self, payload: Option<ClosePayload>, out: &mut Vec<u8>) {
        match self.recording.as_deref_mut() {
            None => send_close(payload, out, &mut NoRecording),
            Some(recording) => send_close(payload, out, recording),
        }
    }

    /// Parses frames from `input` until one completes an event or the input runs out.
    fn step<R: Recorder>(
        &mut self,
        input: &mut [u8],
        out: &mut Vec<u8>,
        rec: &mut R,
    ) -> (usize, Option<Completed>) {
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
                None => match self.read_header(&mut used, input, rec) {
                    Ok(Some(Frame::InProgress(frame))) => frame,
                    Ok(Some(Frame::Whole(kind, range))) => {
                        return (used, Some(Completed::InPlace(kind, range)));
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
            if let Err(err) = self.take_payload(&frame, chunk, rec) {
                return (used, Some(Completed::Failed(err)));
            }
            if frame.remaining() > 0 {
                self.frame = Some(frame);
                return (used, None);
            }
            rec.frame_done();
            if let Some(completed) = self.finish_frame(&frame.header, out, rec) {
                return (used, Some(completed));
            }
        }
    }

    /// Reads the next frame header from `input[*used..]` (it may arrive in pieces) and
    /// checks it against the message state. Returns `None` while it is incomplete.
    fn read_header<R: Recorder>(
        &mut self,
        used: &mut usize,
        input: &mut [u8],
        rec: &mut R,
    ) -> Result<Option<Frame>, ProtocolError> {
        if self.header_len == 0 {
            rec.frame_begins();
        }
        let (header, len) = match self.gather_header(&input[*used..]) {
            Ok(Status::Complete(done)) => done,
            Ok(Status::Partial) => {
                *used = input.len();
                return Ok(None);
            }
            Err(err) => {
                let seen = match self.header_len {
                    0 => &input[*used..],
                    gathered => &self.header[..gathered],
                };
                rec.bad_header(seen);
                return Err(err);
            }
        };
        *used += len;
        rec.header(&header);
        if let Some((kind, end)) = self.whole_message_end(&header, *used, input.len()) {
            // The fast path: a whole single-frame message in this input is unmasked where
            // it lies and handed out from there, with no copy.
            let range = *used..end;
            let on_wire = &mut input[range.clone()];
            rec.payload(on_wire, &[]);
            apply_mask(on_wire, header.mask, 0);
            rec.payload(&[], on_wire);
            rec.frame_done();
            *used = end;
            return Ok(Some(Frame::Whole(kind, range)));
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
            // The common case: the whole header is in this input.
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

    /// The kind of message and where its payload ends, if `header` starts a single-frame
    /// message, within the size limit and with no other message in progress, that lies
    /// whole in an input of `len` bytes from `start`: every check `start_frame` would make
    /// passes, and the message needs no assembly.
    fn whole_message_end(
        &self,
        header: &FrameHeader,
        start: usize,
        len: usize,
    ) -> Option<(MessageKind, usize)> {
        let kind = match header.opcode {
            Opcode::Binary => MessageKind::Binary,
            Opcode::Text => MessageKind::Text,
            _ => return None,
        };
        let end = start.checked_add(usize::try_from(header.payload_len).ok()?)?;
        let single = header.fin
            && end <= len
            && header.payload_len <= self.max_message_size as u64
            && matches!(self.assembly, Assembly::Idle(_))
            && self.state == State::Open;
        single.then_some((kind, end))
    }

    /// Unmasks one chunk of the current frame's payload (in place: these bytes are
    /// consumed) and stores it.
    fn take_payload<R: Recorder>(
        &mut self,
        frame: &FrameInProgress,
        chunk: &mut [u8],
        rec: &mut R,
    ) -> Result<(), ProtocolError> {
        let start = frame.received - chunk.len() as u64;
        rec.payload(chunk, &[]);
        apply_mask(chunk, frame.header.mask, (start % 4) as usize);
        rec.payload(&[], chunk);
        if frame.header.opcode.is_control() {
            let at = self.control_len;
            self.control[at..at + chunk.len()].copy_from_slice(chunk);
            self.control_len += chunk.len();
            Ok(())
        } else {
            let pushed = self.assembly.push(chunk, frame.remaining());
            if pushed.is_err() {
                rec.bad_text(start, chunk);
            }
            pushed
        }
    }

    /// Acts on a frame whose payload is complete.
    fn finish_frame<R: Recorder>(
        &mut self,
        header: &FrameHeader,
        out: &mut Vec<u8>,
        rec: &mut R,
    ) -> Option<Completed> {
        match header.opcode {
            Opcode::Close => Some(self.receive_close(out, rec)),
            // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
            // frame in response, unless it already received a Close frame." So a ping that
            // arrives while our own close frame waits for its answer still gets its pong.
            Opcode::Ping => {
                send_control(Opcode::Pong, &self.control[..self.control_len], out, rec);
                None
            }
            // RFC 6455 §5.5.3: "A response to an unsolicited Pong frame is not expected."
            Opcode::Pong => None,
            Opcode::Text | Opcode::Binary | Opcode::Continuation if header.fin => {
                match self.assembly.finish() {
                    Err(err) => Some(Completed::Failed(err)),
                    Ok(()) if self.state == State::Open => Some(Completed::Assembled),
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

    /// A close frame arrived: the peer is done with this connection, whatever it says.
    fn receive_close<R: Recorder>(&mut self, out: &mut Vec<u8>, rec: &mut R) -> Completed {
        let code = match ClosePayload::parse(&self.control[..self.control_len]) {
            Ok(payload) => payload.map(|p| p.code),
            Err(bad) => return Completed::Failed(bad.into()),
        };
        // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
        // send a Close frame, the endpoint MUST send a Close frame in response. (When
        // sending a Close frame in response, the endpoint typically echos the status code
        // it received.)" pure-ws echoes the code, without the reason.
        if self.advance(Trigger::ReceiveClose) == State::Open {
            send_close(code.map(ClosePayload::code), out, rec);
        }
        Completed::Closed(code)
    }
}

/// Appends a control frame the protocol sends itself (a pong, a ping) to `out`.
fn send_control<R: Recorder>(opcode: Opcode, payload: &[u8], out: &mut Vec<u8>, rec: &mut R) {
    let start = out.len();
    frame::encode_frame(out, opcode, payload);
    rec.sent(&out[start..]);
}

/// Appends a close frame with `payload` (or an empty one): every close frame the protocol
/// sends goes through here.
fn send_close<R: Recorder>(payload: Option<ClosePayload>, out: &mut Vec<u8>, rec: &mut R) {
    let start = out.len();
    frame::encode_close(out, payload);
    rec.sent(&out[start..]);
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

    /// The message `event` announced, described.
    fn message_of(protocol: &Protocol, event: Option<Event<'_>>) -> Option<String> {
        match event {
            Some(Event::Message(delivery)) => protocol.message(&delivery).map(|m| format!("{m:?}")),
            _ => None,
        }
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
                    Some(Event::Message(delivery)) => {
                        let message = protocol.message(&delivery).expect("a message");
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
        assert_eq!(
            message_of(&protocol, event),
            Some(r#"Binary([105, 110, 32, 112, 108, 97, 99, 101])"#.into())
        );
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
        assert_eq!(message_of(&protocol, event), Some(r#"Text("end")"#.into()));
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
        let Some(Event::Message(delivery)) = event else {
            panic!("no message")
        };
        assert_eq!(protocol.message(&delivery), Some(Message::Binary(&payload)));
        assert!(capacity(&protocol) <= payload.len() + 4096);
    }

    #[test]
    fn a_large_buffer_is_kept_between_messages_until_released() {
        let mut protocol = Protocol::new(1 << 20);
        let payload = vec![1; 300 * 1024];
        let frame = client_frame(true, 0x2, &payload);
        let mut out = Vec::new();
        let mut frames = [frame.clone(), frame];
        for frame in &mut frames[..1] {
            // In two reads, so the message is assembled rather than handed out in place.
            let (first, second) = frame.split_at_mut(1000);
            protocol.receive(first, &mut out);
            let (_, event) = protocol.receive(second, &mut out);
            assert!(matches!(event, Some(Event::Message(_))));
            assert!(protocol.holds_spare_memory());
        }
        let (first, second) = frames[1].split_at_mut(1000);
        protocol.receive(first, &mut out);
        let Some(Event::Message(delivery)) = protocol.receive(second, &mut out).1 else {
            panic!("no message")
        };
        assert!(protocol.holds_spare_memory());
        assert_eq!(protocol.message(&delivery), Some(Message::Binary(&payload)));
        assert!(protocol.release_spare_memory());
        assert_eq!(
            protocol.message(&delivery),
            None,
            "the released message is gone"
        );
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
        assert_eq!(out, close_for(ProtocolError::InvalidUtf8, INVALID_PAYLOAD));
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
        assert_eq!(message_of(&protocol, event), Some(r#"Text("€€")"#.into()));
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
            close_for(ProtocolError::MessageTooBig { limit: 10 }, TOO_BIG),
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

    /// The close codes that report errors.
    const PROTOCOL_ERROR: u16 = 1002;
    const INVALID_PAYLOAD: u16 = 1007;
    const TOO_BIG: u16 = 1009;

    /// The close frame that reports `err`: its `code`, then the rule as the reason.
    fn close_for(err: ProtocolError, code: u16) -> Vec<u8> {
        let reason = err.reason().as_bytes();
        assert!(reason.len() <= 123, "{reason:?}");
        let mut frame = vec![0x88, 2 + reason.len() as u8];
        frame.extend_from_slice(&code.to_be_bytes());
        frame.extend_from_slice(reason);
        frame
    }

    /// Feeds `input` to a protocol with a 10-byte message limit and checks that it fails
    /// with `err` and sends exactly the close frame with `code` and the rule, whatever the
    /// chunking.
    fn assert_fails(input: &[u8], err: ProtocolError, code: u16) {
        for chunk in 1..=input.len() {
            let (events, out) = events(&mut Protocol::new(10), input, chunk);
            assert_eq!(
                events,
                [format!("{:?}", Event::Failed(err))],
                "chunk {chunk}"
            );
            assert_eq!(out, close_for(err, code), "chunk {chunk}");
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
