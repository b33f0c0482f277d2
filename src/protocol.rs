//! The per-connection state machine of RFC 6455, sans I/O: bytes in, events and bytes out.
//!
//! [`Protocol::receive`] takes whatever bytes arrived, in any chunking, and returns at most
//! one [`Event`] per call together with how many bytes it consumed; the bytes the protocol
//! itself must send (pongs, close frames) are appended to the caller's `out` buffer. It never
//! touches a socket, a clock or a thread, so tests can feed it one frame split over 300 calls
//! or 200 frames in one.
//!
//! Payloads are streamed: each chunk is unmasked as it arrives, and text is checked for
//! UTF-8 validity before the call returns, so a bad byte fails the connection the moment it
//! arrives rather than at the end of the message.

use std::ops::Range;

use crate::error::{close_code, ProtocolError};
use crate::frame::{self, apply_mask, FrameHeader, Opcode, MAX_HEADER_LEN};

/// A complete message from the peer, borrowed until the next call to `receive` from the
/// protocol's buffer, or from the input itself when the message arrived whole in it.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// What one call to [`Protocol::receive`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole data message arrived.
    Message(Message<'a>),
    /// The peer started the close handshake (with this code, if it sent one); the reply
    /// is already in `out`. The connection is finished: flush `out`, then close TCP.
    Closed { code: Option<u16> },
    /// The peer broke the protocol. A close frame with `err.close_code()` is in `out`.
    /// Unless [`Protocol::is_finished`], the peer's close frame may still follow; it
    /// produces no event, it only makes [`Protocol::is_finished`] true, as does the
    /// answer to a close we started with [`Protocol::close`].
    Failed(ProtocolError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the peer's; everything else is discarded.
    CloseSent,
    /// Both sides are done; every further byte is ignored.
    Finished,
}

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug)]
struct FrameInProgress {
    header: FrameHeader,
    /// Payload bytes received so far: the mask phase of the next byte.
    received: u64,
}

impl FrameInProgress {
    fn remaining(&self) -> u64 {
        self.header.payload_len - self.received
    }
}

/// What a step of the parser completed; owns nothing, so `receive` can borrow the message
/// buffer afterwards to build the event.
enum Completed {
    Nothing,
    /// A message assembled in the protocol's buffer.
    Message(Opcode),
    /// A single-frame message unmasked in place: `input[range]`.
    InPlace(Opcode, Range<usize>),
    Closed(Option<u16>),
    Failed(ProtocolError),
}

/// Message buffers larger than this are freed once their message is delivered, so an idle
/// connection does not keep the memory of the largest message it ever received.
const RETAINED_CAPACITY: usize = 256 * 1024;

/// The receiving side of one WebSocket connection, server role.
#[derive(Debug)]
pub struct Protocol {
    max_message_size: usize,
    state: State,
    /// A header that arrived in pieces: at most 14 bytes are ever held here.
    partial_header: [u8; MAX_HEADER_LEN],
    partial_header_len: usize,
    frame: Option<FrameInProgress>,
    /// Once our close frame is sent: payload bytes of the current frame still to discard.
    skip: u64,
    /// The opcode (text or binary) of the data message being assembled, if any.
    message_opcode: Option<Opcode>,
    /// The unmasked payload of the binary message being assembled.
    message: Vec<u8>,
    /// The text message being assembled: valid UTF-8 by construction.
    text: String,
    /// A code point cut by the end of a chunk: at most 3 bytes wait here, and room for
    /// the 4th that completes it.
    carry: [u8; 4],
    carry_len: usize,
    /// The message was handed out by the previous call and is cleared by the next one.
    delivered: bool,
    /// The payload of the control frame being received (RFC 6455 §5.5: at most 125 bytes).
    control: [u8; 125],
    control_len: usize,
}

impl Protocol {
    /// A protocol for a fresh connection, accepting data messages of at most
    /// `max_message_size` payload bytes (larger ones fail with close code 1009).
    pub fn new(max_message_size: usize) -> Protocol {
        Protocol {
            max_message_size,
            state: State::Open,
            partial_header: [0; MAX_HEADER_LEN],
            partial_header_len: 0,
            frame: None,
            skip: 0,
            message_opcode: None,
            message: Vec::new(),
            text: String::new(),
            carry: [0; 4],
            carry_len: 0,
            delivered: false,
            control: [0; 125],
            control_len: 0,
        }
    }

    /// True once the close handshake is over (or the connection failed after the peer's
    /// close frame): nothing more will come out, and the TCP connection should be closed.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// True until either side has sent a close frame.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Consumes a prefix of `input` and returns how many bytes it took, with the event those
    /// bytes completed, if any. Call again with the rest of the input until it is empty.
    /// Frames that the protocol answers itself (pings, close) put their reply in `out`.
    ///
    /// A message whose single frame lies whole in `input` is unmasked where it lies and
    /// handed out from there, without a copy; so `input` is mutable, and the consumed bytes
    /// may be changed. Bytes that are not consumed are never touched.
    pub fn receive<'a>(
        &'a mut self,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> (usize, Option<Event<'a>>) {
        if self.delivered {
            self.delivered = false;
            self.message.clear();
            self.text.clear();
            if self.message.capacity() > RETAINED_CAPACITY {
                self.message = Vec::new();
            }
            if self.text.capacity() > RETAINED_CAPACITY {
                self.text = String::new();
            }
        }
        let (used, completed) = self.step(input, out);
        let (opcode, payload) = match completed {
            Completed::Nothing => return (used, None),
            Completed::Closed(code) => return (used, Some(Event::Closed { code })),
            Completed::Failed(err) => return (used, Some(self.fail(err, out))),
            Completed::Message(Opcode::Text) => {
                self.delivered = true;
                return (used, Some(Event::Message(Message::Text(&self.text))));
            }
            Completed::Message(_) => {
                self.delivered = true;
                return (used, Some(Event::Message(Message::Binary(&self.message))));
            }
            Completed::InPlace(opcode, range) => (opcode, &input[range]),
        };
        let message = match opcode {
            Opcode::Text => match std::str::from_utf8(payload) {
                Ok(text) => Message::Text(text),
                Err(_) => {
                    self.state = State::CloseSent;
                    queue_close(out, ProtocolError::InvalidUtf8.close_code(), "");
                    return (used, Some(Event::Failed(ProtocolError::InvalidUtf8)));
                }
            },
            _ => Message::Binary(payload),
        };
        (used, Some(Event::Message(message)))
    }

    /// Sends a ping (for keepalive) if the connection is open.
    pub fn send_ping(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        if self.state == State::Open {
            frame::encode_frame(out, Opcode::Ping, &payload[..payload.len().min(125)]);
        }
    }

    /// Starts the close handshake from our side (e.g. 1001 when a peer stops answering).
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) {
        if self.state == State::Open {
            queue_close(out, code, reason);
            self.state = State::CloseSent;
            if let Some(frame) = self.frame.take() {
                self.skip = frame.remaining();
            }
        }
    }

    /// Queues the close frame for `err` and stops accepting data.
    fn fail(&mut self, err: ProtocolError, out: &mut Vec<u8>) -> Event<'static> {
        if self.state == State::Open {
            queue_close(out, err.close_code(), "");
            self.state = State::CloseSent;
        }
        Event::Failed(err)
    }

    /// Parses frames from `input` until one completes an event or the input runs out.
    fn step(&mut self, input: &mut [u8], out: &mut Vec<u8>) -> (usize, Completed) {
        let mut used = 0;
        loop {
            match self.state {
                State::Open => {}
                State::CloseSent => {
                    return (
                        used + self.discard_until_close(&input[used..]),
                        Completed::Nothing,
                    )
                }
                State::Finished => return (input.len(), Completed::Nothing),
            }
            let frame = match self.frame {
                Some(frame) => frame,
                None => match self.read_header(&input[used..], FrameHeader::parse_client) {
                    Ok((n, Some(header))) => {
                        used += n;
                        if let Err(err) = self.start_frame(&header) {
                            // Skip the refused frame's payload while the peer's close is awaited.
                            self.skip = header.payload_len;
                            return (used, Completed::Failed(err));
                        }
                        if let Some(end) = whole_message_end(&header, used, input.len()) {
                            // The fast path: the whole message is in this read. Unmask it
                            // where it lies and hand it out from there: no copy.
                            let mask = header.mask.unwrap_or_default();
                            apply_mask(&mut input[used..end], mask, 0);
                            self.message_opcode = None;
                            return (end, Completed::InPlace(header.opcode, used..end));
                        }
                        FrameInProgress {
                            header,
                            received: 0,
                        }
                    }
                    Ok((n, None)) => return (used + n, Completed::Nothing),
                    Err(err) => return (used, Completed::Failed(err)),
                },
            };
            let available = input.len() - used;
            let take = usize::try_from(frame.remaining()).map_or(available, |r| r.min(available));
            let chunk = used..used + take;
            used += take;
            let frame = FrameInProgress {
                received: frame.received + take as u64,
                ..frame
            };
            self.frame = (frame.remaining() > 0).then_some(frame);
            if let Err(err) = self.take_payload(&frame, &mut input[chunk]) {
                self.skip = frame.remaining();
                self.frame = None;
                return (used, Completed::Failed(err));
            }
            if self.frame.is_some() {
                return (used, Completed::Nothing);
            }
            match self.finish_frame(&frame.header, out) {
                Completed::Nothing => {}
                completed => return (used, completed),
            }
        }
    }

    /// After our close frame, reads past every frame (checking nothing) until the peer's
    /// close frame, which finishes the connection. Returns the bytes consumed.
    fn discard_until_close(&mut self, input: &[u8]) -> usize {
        let skim = |buf: &[u8]| {
            Ok::<_, std::convert::Infallible>(
                FrameHeader::skim(buf).map(|(close, len, n)| ((close, len), n)),
            )
        };
        let mut used = 0;
        loop {
            let take = usize::try_from(self.skip)
                .map_or(input.len() - used, |skip| skip.min(input.len() - used));
            used += take;
            self.skip -= take as u64;
            if used == input.len() {
                return used;
            }
            match self.read_header(&input[used..], skim) {
                Ok((n, Some((true, _)))) => {
                    self.state = State::Finished;
                    return used + n;
                }
                Ok((n, Some((false, payload_len)))) => {
                    used += n;
                    self.skip = payload_len;
                }
                Ok((n, None)) => return used + n,
                Err(never) => match never {},
            }
        }
    }

    /// Reads a frame header with `parse`; the header may arrive in pieces. Returns the bytes
    /// consumed and the header once it is complete. On an error nothing of `input` is
    /// consumed, so the same bytes can be read again (skimmed) after the failure.
    fn read_header<H, E>(
        &mut self,
        input: &[u8],
        parse: impl Fn(&[u8]) -> Result<Option<(H, usize)>, E>,
    ) -> Result<(usize, Option<H>), E> {
        if self.partial_header_len == 0 {
            // The common case: the whole header is in this read.
            if let Some((header, len)) = parse(input)? {
                return Ok((len, Some(header)));
            }
        }
        // Gather the header byte by byte: it is at most 14 bytes long, and stopping exactly
        // at its end leaves the payload in `input` for the caller.
        let kept = self.partial_header_len;
        for (used, &byte) in input.iter().enumerate() {
            self.partial_header[self.partial_header_len] = byte;
            self.partial_header_len += 1;
            match parse(&self.partial_header[..self.partial_header_len]) {
                Ok(None) => {}
                Ok(Some((header, _))) => {
                    self.partial_header_len = 0;
                    return Ok((used + 1, Some(header)));
                }
                Err(err) => {
                    self.partial_header_len = kept;
                    return Err(err);
                }
            }
        }
        Ok((input.len(), None))
    }

    /// Checks a new frame against the message state before any of its payload is read.
    fn start_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        if header.opcode.is_control() {
            self.control_len = 0;
            return Ok(());
        }
        match (header.opcode, self.message_opcode) {
            // RFC 6455 §5.4: a continuation frame only continues a started message...
            (Opcode::Continuation, None) => return Err(ProtocolError::ContinuationWithoutStart),
            // ...and a new message may not start until the previous one is finished.
            (Opcode::Text | Opcode::Binary, Some(_)) => {
                return Err(ProtocolError::DataInsideFragmentedMessage)
            }
            (Opcode::Text | Opcode::Binary, None) => {
                self.message_opcode = Some(header.opcode);
                self.reuse_buffer_for(header.opcode);
            }
            _ => {}
        }
        // Judge the size from the header, before a single payload byte is read: a claim of
        // 2^63 bytes must cost nothing. The message buffer only grows as bytes arrive.
        let limit = self.max_message_size as u64;
        let so_far = (self.message.len() + self.text.len() + self.carry_len) as u64;
        if header.payload_len > limit - so_far.min(limit) {
            return Err(ProtocolError::MessageTooBig {
                limit: self.max_message_size,
            });
        }
        Ok(())
    }

    /// Hands the allocation of the (empty) buffer of the other message kind to the one
    /// that `opcode` starts, so a connection keeps one message buffer, not two.
    fn reuse_buffer_for(&mut self, opcode: Opcode) {
        if opcode == Opcode::Text && self.text.capacity() == 0 {
            // An empty buffer is valid UTF-8: this never fails, and never copies.
            self.text = String::from_utf8(std::mem::take(&mut self.message)).unwrap_or_default();
        } else if opcode == Opcode::Binary && self.message.capacity() == 0 {
            self.message = std::mem::take(&mut self.text).into_bytes();
        }
    }

    /// Unmasks one chunk of the current frame's payload (in place: these bytes are
    /// consumed) and stores it.
    fn take_payload(
        &mut self,
        frame: &FrameInProgress,
        chunk: &mut [u8],
    ) -> Result<(), ProtocolError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let offset = (frame.received - chunk.len() as u64) as usize % 4;
        apply_mask(chunk, frame.header.mask.unwrap_or_default(), offset);
        if frame.header.opcode.is_control() {
            let start = self.control_len;
            self.control[start..start + chunk.len()].copy_from_slice(chunk);
            self.control_len += chunk.len();
            return Ok(());
        }
        if self.message_opcode != Some(Opcode::Text) {
            let needed = self.message.len() + chunk.len();
            let target = capacity_for(needed, self.message.capacity(), frame);
            self.message.reserve_exact(target - self.message.len());
            self.message.extend_from_slice(chunk);
            return Ok(());
        }
        // The carried bytes of a cut code point are pushed with this chunk.
        let needed = self.text.len() + self.carry_len + chunk.len();
        let target = capacity_for(needed, self.text.capacity(), frame);
        self.text.reserve_exact(target - self.text.len());
        self.push_text(chunk)
    }

    /// Appends text as it arrives, checking each byte once. A code point cut by the end of
    /// a chunk waits in `carry` (at most 3 bytes) for the rest; what can no longer become
    /// valid UTF-8 fails in the call that brings it.
    fn push_text(&mut self, mut chunk: &[u8]) -> Result<(), ProtocolError> {
        if self.carry_len > 0 {
            let width = utf8_width(self.carry[0]);
            let take = (width - self.carry_len).min(chunk.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&chunk[..take]);
            self.carry_len += take;
            chunk = &chunk[take..];
            match std::str::from_utf8(&self.carry[..self.carry_len]) {
                Ok(code_point) => {
                    self.text.push_str(code_point);
                    self.carry_len = 0;
                }
                Err(err) if err.error_len().is_none() => return Ok(()),
                Err(_) => return Err(ProtocolError::InvalidUtf8),
            }
        }
        let (whole, tail) = chunk.split_at(cut_code_point_start(chunk));
        let whole = std::str::from_utf8(whole).map_err(|_| ProtocolError::InvalidUtf8)?;
        self.text.push_str(whole);
        if std::str::from_utf8(tail).is_err_and(|err| err.error_len().is_some()) {
            return Err(ProtocolError::InvalidUtf8);
        }
        self.carry[..tail.len()].copy_from_slice(tail);
        self.carry_len = tail.len();
        Ok(())
    }

    /// Acts on a frame whose payload is complete.
    fn finish_frame(&mut self, header: &FrameHeader, out: &mut Vec<u8>) -> Completed {
        let control = &self.control[..self.control_len];
        match header.opcode {
            Opcode::Close => {
                // Whatever the close frame says, the peer is done with this connection.
                self.state = State::Finished;
                let parsed = parse_close_payload(control);
                // RFC 6455 §5.5.1: answer a close frame with a close frame, echoing its
                // code; a malformed one is answered with the code of what was wrong.
                match parsed {
                    Ok(Some(code)) => queue_close(out, code, ""),
                    Ok(None) => frame::encode_frame(out, Opcode::Close, &[]),
                    Err(err) => queue_close(out, err.close_code(), ""),
                }
                parsed.map_or_else(Completed::Failed, Completed::Closed)
            }
            // RFC 6455 §5.5.2: a pong carries the ping's payload back.
            Opcode::Ping => {
                frame::encode_frame(out, Opcode::Pong, control);
                Completed::Nothing
            }
            // RFC 6455 §5.5.3: an unsolicited pong needs no answer.
            Opcode::Pong => Completed::Nothing,
            // A text message may not end inside a code point.
            _ if header.fin && self.carry_len > 0 => Completed::Failed(ProtocolError::InvalidUtf8),
            // A final data frame completes the message that `start_frame` opened.
            _ if header.fin => self
                .message_opcode
                .take()
                .map_or(Completed::Nothing, Completed::Message),
            _ => Completed::Nothing,
        }
    }
}

/// The capacity a message buffer needs to hold `needed` bytes: it grows geometrically, so
/// a large message is copied O(1) times, but never past the end of the current frame,
/// whose length is known, so the buffer stays within what actually arrives.
fn capacity_for(needed: usize, capacity: usize, frame: &FrameInProgress) -> usize {
    if needed <= capacity {
        return capacity;
    }
    let frame_end = (needed as u64).saturating_add(frame.remaining());
    let doubled = (capacity as u64 * 2).max(4096);
    doubled.min(frame_end).max(needed as u64) as usize
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

/// Where a message ends in the input if `header` starts a single-frame data message whose
/// payload, from `start`, lies whole in an input of `len` bytes.
fn whole_message_end(header: &FrameHeader, start: usize, len: usize) -> Option<usize> {
    let single = header.fin && matches!(header.opcode, Opcode::Text | Opcode::Binary);
    let end = start.checked_add(usize::try_from(header.payload_len).ok()?)?;
    (single && end <= len).then_some(end)
}

/// The close code of a close frame's payload, checked as it comes off the wire
/// (RFC 6455 §5.5.1, §7.4): empty, or a 2-byte allowed code and a UTF-8 reason.
fn parse_close_payload(payload: &[u8]) -> Result<Option<u16>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::ClosePayloadOneByte),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !close_code::allowed_on_wire(code) {
                return Err(ProtocolError::CloseCodeNotAllowed(code));
            }
            std::str::from_utf8(reason).map_err(|_| ProtocolError::CloseReasonUtf8)?;
            Ok(Some(code))
        }
    }
}

/// Appends a close frame with `code` and `reason` (truncated to fit 125 bytes) to `out`.
fn queue_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    frame::encode_header(out, Opcode::Close, 2 + end, None);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let mut out = Vec::new();
        frame::encode_header(
            &mut out,
            Opcode::from_wire(opcode).unwrap(),
            payload.len(),
            Some(key),
        );
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
                if let Some(event) = event {
                    seen.push(format!("{event:?}"));
                }
                at += used;
            }
        }
        (seen, out)
    }

    #[test]
    fn the_same_stream_gives_the_same_events_in_any_chunking() {
        let mut input = client_frame(false, 0x1, "héllo ".as_bytes());
        input.extend(client_frame(true, 0x9, b"p"));
        input.extend(client_frame(true, 0x0, "wörld".as_bytes()));
        input.extend(client_frame(true, 0x2, &[0; 300]));
        input.extend(client_frame(true, 0x8, &[0x03, 0xE8]));
        let whole = events(&mut Protocol::new(1 << 20), &input, input.len());
        assert_eq!(whole.0.len(), 3);
        assert_eq!(whole.0[0], r#"Message(Text("héllo wörld"))"#);
        assert_eq!(whole.0[2], "Closed { code: Some(1000) }");
        for chunk in 1..input.len() {
            assert_eq!(
                events(&mut Protocol::new(1 << 20), &input, chunk),
                whole,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_whole_single_frame_message_is_unmasked_where_it_lies() {
        let mut protocol = Protocol::new(1 << 20);
        let mut input = client_frame(true, 0x2, b"in place");
        let next = client_frame(true, 0x1, b"next");
        input.extend_from_slice(&next[..5]);
        let mut out = Vec::new();
        let (used, event) = protocol.receive(&mut input, &mut out);
        assert_eq!(event, Some(Event::Message(Message::Binary(b"in place"))));
        assert_eq!(protocol.message.capacity(), 0, "the payload was copied");
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
        let (used, event) = protocol.receive(&mut header, &mut out);
        assert_eq!((used, event), (header_len, None));
        protocol.receive(&mut [0; 10], &mut out);
        assert!(
            protocol.message.capacity() <= 4096,
            "{}",
            protocol.message.capacity()
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
        let (used, event) = protocol.receive(&mut stream, &mut out);
        assert_eq!((used, event), (stream_len, None));
        let mut batch = empty.repeat(1000);
        for _ in 0..1000 {
            let batch_len = batch.len();
            assert_eq!(protocol.receive(&mut batch, &mut out), (batch_len, None));
        }
        assert_eq!(protocol.text.capacity(), 0);
        let mut last = client_frame(true, 0x0, b"end");
        let (_, event) = protocol.receive(&mut last, &mut out);
        assert_eq!(event, Some(Event::Message(Message::Text("end"))));
        assert!(out.is_empty());
    }

    #[test]
    fn message_buffer_grows_only_with_arriving_bytes() {
        let mut protocol = Protocol::new(64 << 20);
        let payload = vec![7; 8 << 20];
        let mut frame = client_frame(true, 0x2, &payload);
        let mut out = Vec::new();
        protocol.receive(&mut frame[..14 + 100_000], &mut out);
        assert!(
            protocol.message.capacity() <= 2 * 100_000,
            "{}",
            protocol.message.capacity()
        );
        let (_, event) = protocol.receive(&mut frame[14 + 100_000..], &mut out);
        assert_eq!(event, Some(Event::Message(Message::Binary(&payload))));
        assert!(protocol.message.capacity() <= payload.len() + 4096);
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
        assert_eq!(event, Some(Event::Message(Message::Text("€€"))));
    }

    #[test]
    fn after_failing_only_the_peers_close_matters() {
        let mut protocol = Protocol::new(10);
        let mut out = Vec::new();
        let mut too_big = client_frame(true, 0x2, &[1; 50]);
        let (used, event) = protocol.receive(&mut too_big, &mut out);
        assert_eq!(
            event,
            Some(Event::Failed(ProtocolError::MessageTooBig { limit: 10 }))
        );
        assert_eq!(out, [0x88, 0x02, 0x03, 0xF1]);
        // The rest of the refused frame, a ping and a text frame are skipped unanswered.
        let mut rest = too_big[used..].to_vec();
        rest.extend(client_frame(true, 0x9, b"ping"));
        rest.extend(client_frame(true, 0x1, b"text"));
        let rest_len = rest.len();
        assert_eq!(protocol.receive(&mut rest, &mut out), (rest_len, None));
        assert!(!protocol.is_finished());
        let mut close = client_frame(true, 0x8, &[0x03, 0xF1]);
        protocol.receive(&mut close, &mut out);
        assert!(protocol.is_finished());
        assert_eq!(out.len(), 4, "nothing was sent after our close");
    }

    #[test]
    fn our_own_close_waits_for_the_peers() {
        let mut protocol = Protocol::new(10);
        let mut out = Vec::new();
        protocol.close(1001, "ping timeout", &mut out);
        assert_eq!(&out[..4], [0x88, 14, 0x03, 0xE9]);
        assert_eq!(&out[4..], b"ping timeout");
        assert!(!protocol.is_open() && !protocol.is_finished());
        protocol.send_ping(b"late", &mut out);
        assert_eq!(out.len(), 16, "no ping after close");
        protocol.receive(&mut client_frame(true, 0x8, b""), &mut out);
        assert!(protocol.is_finished());
    }
}
