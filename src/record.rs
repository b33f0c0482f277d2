//! What crossed the wire, as plain data: each frame as it was received or sent, and the
//! failure that ended a connection, with the bytes that showed it. The protocol fills
//! these records through a [`Recorder`] when the trace or the frame inspector asks for
//! them; `inspect` renders them. Needs only `frame` and `error`.
//!
//! A record keeps at most the first [`PREVIEW`] payload bytes, so recording a 16 MiB
//! message costs no more than recording a short one.

use crate::error::ProtocolError;
use crate::frame::{FrameHeader, LengthFormat, Opcode, MAX_HEADER_LEN};

/// How many payload bytes a record keeps.
pub const PREVIEW: usize = 64;

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the peer to the server.
    Received,
    /// From the server to the peer.
    Sent,
}

/// The first [`PREVIEW`] bytes of a payload, filled as its chunks go by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preview {
    bytes: [u8; PREVIEW],
    len: usize,
}

impl Preview {
    /// An empty preview.
    pub fn new() -> Preview {
        Preview {
            bytes: [0; PREVIEW],
            len: 0,
        }
    }

    /// A preview of `bytes`.
    pub fn of(bytes: &[u8]) -> Preview {
        let mut preview = Preview::new();
        preview.extend(bytes);
        preview
    }

    /// Keeps what of `chunk` still fits.
    pub fn extend(&mut self, chunk: &[u8]) {
        let take = (PREVIEW - self.len).min(chunk.len());
        self.bytes[self.len..self.len + take].copy_from_slice(&chunk[..take]);
        self.len += take;
    }

    /// The bytes kept.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for Preview {
    fn default() -> Preview {
        Preview::new()
    }
}

/// One frame as it crossed the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRecord {
    /// Which way it went.
    pub direction: Direction,
    /// The header bytes, exactly as on the wire.
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    /// The payload length the header announces.
    pub payload_len: u64,
    /// The first payload bytes as they crossed the wire (masked, if the frame was).
    pub on_wire: Preview,
    /// The same bytes unmasked.
    pub payload: Preview,
}

impl FrameRecord {
    /// A record of a frame the peer sent, before any of its payload.
    pub fn received(header: &FrameHeader) -> FrameRecord {
        let mut bytes = [0; MAX_HEADER_LEN];
        let len = header.encode_client(&mut bytes);
        FrameRecord {
            direction: Direction::Received,
            header: bytes,
            header_len: len,
            payload_len: header.payload_len,
            on_wire: Preview::new(),
            payload: Preview::new(),
        }
    }

    /// A record of an (unmasked) frame the server sent: `header` is its encoded header,
    /// and `payload` the pieces of its payload, in order.
    pub fn sent(header: &[u8], payload: &[&[u8]]) -> FrameRecord {
        let mut bytes = [0; MAX_HEADER_LEN];
        let len = header.len().min(MAX_HEADER_LEN);
        bytes[..len].copy_from_slice(&header[..len]);
        let mut preview = Preview::new();
        for piece in payload {
            preview.extend(piece);
        }
        FrameRecord {
            direction: Direction::Sent,
            header: bytes,
            header_len: len,
            payload_len: payload.iter().map(|piece| piece.len() as u64).sum(),
            on_wire: preview,
            payload: preview,
        }
    }

    /// The header bytes.
    pub fn header(&self) -> &[u8] {
        &self.header[..self.header_len]
    }

    /// The first header byte: FIN, RSV1-3 and the opcode.
    pub fn first(&self) -> u8 {
        self.header[0]
    }

    /// FIN.
    pub fn fin(&self) -> bool {
        self.first() & 0x80 != 0
    }

    /// RSV1, RSV2 and RSV3 as three bits.
    pub fn rsv(&self) -> u8 {
        (self.first() >> 4) & 0x7
    }

    /// The opcode's 4 bits.
    pub fn opcode(&self) -> u8 {
        self.first() & 0x0F
    }

    /// Close, ping or pong.
    pub fn is_control(&self) -> bool {
        Opcode::from_wire(self.opcode()).is_some_and(Opcode::is_control)
    }

    /// The masking key, if the frame is masked.
    pub fn mask(&self) -> Option<&[u8]> {
        (self.header_len >= 6 && self.header[1] & 0x80 != 0)
            .then(|| &self.header[self.header_len - 4..self.header_len])
    }

    /// Which encoding carried the payload length.
    pub fn length_format(&self) -> LengthFormat {
        LengthFormat::from_field(self.header[1])
    }

    /// How many payload bytes are not in the preview.
    pub fn more(&self) -> u64 {
        self.payload_len - self.payload.as_slice().len() as u64
    }

    /// The code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode(), self.payload.as_slice()) {
            (0x8, [high, low, ..]) => Some(u16::from_be_bytes([*high, *low])),
            _ => None,
        }
    }
}

/// Where the bytes that broke a rule lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// In a frame header: the bytes are the header up to the one that broke the rule.
    Header,
    /// In a payload: the bytes are a window around the place, whose byte `at` is the
    /// payload's byte `offset` (counted from 0).
    Payload {
        /// The payload offset of `bytes[at]`.
        offset: u64,
        /// Where in the window the bad bytes start.
        at: usize,
    },
}

/// The peer broke a rule: what, and the bytes that showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The rule broken.
    pub error: ProtocolError,
    /// The bytes that showed it.
    pub bytes: Preview,
    /// Where those bytes lie.
    pub place: Place,
}

/// What the protocol saw: a frame, or the failure that ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A frame in either direction.
    Frame(FrameRecord),
    /// The peer broke a rule.
    Failure(Failure),
}

/// What the protocol tells whoever records frames, as it goes. [`NoRecording`] ignores
/// everything, so with recording off the protocol's code has no recording left in it.
pub trait Recorder {
    /// A received frame's header was read.
    fn header(&mut self, header: &FrameHeader);
    /// Payload bytes of the current frame arrived: `on_wire` as received, then the same
    /// bytes unmasked.
    fn payload(&mut self, on_wire: &[u8], unmasked: &[u8]);
    /// The current frame's payload is complete.
    fn frame_done(&mut self);
    /// The protocol sent a whole control frame.
    fn sent(&mut self, frame: &[u8]);
    /// Text stopped being UTF-8 in `chunk`, which starts at payload byte `offset`.
    fn bad_text(&mut self, offset: u64, chunk: &[u8]);
    /// A header broke a rule before it was whole: `seen` is what of it arrived.
    fn bad_header(&mut self, seen: &[u8]);
    /// The connection failed for `error`.
    fn failed(&mut self, error: ProtocolError);
}

/// The recorder that keeps nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRecording;

impl Recorder for NoRecording {
    #[inline(always)]
    fn header(&mut self, _: &FrameHeader) {}
    #[inline(always)]
    fn payload(&mut self, _: &[u8], _: &[u8]) {}
    #[inline(always)]
    fn frame_done(&mut self) {}
    #[inline(always)]
    fn sent(&mut self, _: &[u8]) {}
    #[inline(always)]
    fn bad_text(&mut self, _: u64, _: &[u8]) {}
    #[inline(always)]
    fn bad_header(&mut self, _: &[u8]) {}
    #[inline(always)]
    fn failed(&mut self, _: ProtocolError) {}
}

/// The recorder that keeps records, until they are taken.
#[derive(Debug, Default)]
pub struct Recording {
    /// The received frame whose payload is arriving.
    current: Option<FrameRecord>,
    /// The bytes that broke a rule, when they are not simply the current frame's header
    /// or payload: a header that did not parse, or the place text stopped being UTF-8.
    offending: Option<(Preview, Place)>,
    /// What is complete, in order, until taken.
    done: Vec<Record>,
}

impl Recording {
    /// The records completed since the last call.
    pub fn take(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.done)
    }
}

impl Recorder for Recording {
    fn header(&mut self, header: &FrameHeader) {
        self.current = Some(FrameRecord::received(header));
    }

    fn payload(&mut self, on_wire: &[u8], unmasked: &[u8]) {
        if let Some(current) = &mut self.current {
            current.on_wire.extend(on_wire);
            current.payload.extend(unmasked);
        }
    }

    fn frame_done(&mut self) {
        if let Some(frame) = self.current.take() {
            self.done.push(Record::Frame(frame));
        }
    }

    fn sent(&mut self, frame: &[u8]) {
        // A control frame's header is 2 bytes: its payload is at most 125.
        let (header, payload) = frame.split_at(2.min(frame.len()));
        self.done
            .push(Record::Frame(FrameRecord::sent(header, &[payload])));
    }

    /// Keeps the bytes around the place where text stopped being UTF-8: up to 8 before it
    /// and 8 from it.
    fn bad_text(&mut self, offset: u64, chunk: &[u8]) {
        // A chunk that is valid on its own failed on the code point cut before it.
        let bad = std::str::from_utf8(chunk)
            .err()
            .map_or(0, |err| err.valid_up_to());
        let start = bad.saturating_sub(8);
        let window = &chunk[start..(bad + 8).min(chunk.len())];
        let place = Place::Payload {
            offset: offset + bad as u64,
            at: bad - start,
        };
        self.offending = Some((Preview::of(window), place));
    }

    /// Keeps the header's first bytes, up to the one that broke the rule.
    fn bad_header(&mut self, seen: &[u8]) {
        let seen = &seen[..seen.len().min(MAX_HEADER_LEN)];
        let end = (1..=seen.len())
            .find(|&end| FrameHeader::parse_client(&seen[..end]).is_err())
            .unwrap_or(seen.len());
        self.current = None;
        self.offending = Some((Preview::of(&seen[..end]), Place::Header));
    }

    /// Files the failure with the bytes that showed it: the header that did not parse,
    /// the header a rule refused, or the payload that broke one.
    fn failed(&mut self, error: ProtocolError) {
        let header_rule = matches!(
            error,
            ProtocolError::ContinuationWithoutStart
                | ProtocolError::DataInsideFragmentedMessage
                | ProtocolError::MessageTooBig { .. }
        );
        let frame = self.current.or(match self.done.last() {
            Some(Record::Frame(frame)) if frame.direction == Direction::Received => Some(*frame),
            _ => None,
        });
        let (bytes, place) = match (self.offending.take(), frame) {
            (Some(offending), _) => offending,
            (None, Some(frame)) if header_rule => (Preview::of(frame.header()), Place::Header),
            (None, Some(frame)) => (frame.payload, Place::Payload { offset: 0, at: 0 }),
            (None, None) => (Preview::new(), Place::Header),
        };
        self.frame_done();
        self.done.push(Record::Failure(Failure {
            error,
            bytes,
            place,
        }));
    }
}
