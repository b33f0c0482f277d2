//! What crossed the wire, as plain data: each frame as it was received or sent, and the
//! failure that ended a connection, with the bytes that showed it. The protocol fills
//! these records through a [`Recorder`] when the trace or the frame inspector asks for
//! them; `inspect` renders them. Needs only `frame` and `error`.
//!
//! A record keeps at most the first [`PREVIEW`] payload bytes, so recording a 16 MiB
//! message costs no more than recording a short one.

use crate::error::ProtocolError;
use crate::frame::{FrameHeader, LengthFormat, Opcode, MAX_HEADER_LEN};
use crate::Status;

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
    /// How a received frame arrived; `None` for a frame the server sent.
    pub arrival: Option<Arrival>,
}

/// How a received frame arrived: in how many reads, and whether a read that held part of
/// it held another frame too (the tutorial's "multiple frames per TCP chunk" and "partial
/// frames split across chunks").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The reads that held some of its bytes.
    pub reads: u32,
    /// Whether one of them held (part of) another frame.
    pub shared: bool,
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
            arrival: None,
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
            arrival: None,
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

/// What the protocol saw: a read, a frame, or the failure that ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// The bytes of one read, and what they held.
    Read(ReadRecord),
    /// A frame in either direction.
    Frame(FrameRecord),
    /// The peer broke a rule.
    Failure(Failure),
}

/// Where the protocol stands between two reads: what the next byte continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position<'a> {
    /// A frame boundary: the next byte starts a frame.
    Boundary,
    /// Inside a header, of which these bytes arrived.
    Header(&'a [u8]),
    /// Inside a payload.
    Payload {
        /// The frame's header length.
        header_len: usize,
        /// Its payload length.
        payload_len: u64,
        /// Payload bytes that arrived already.
        received: u64,
    },
    /// The connection reads nothing more: closed or failed.
    Done,
}

/// Part of one frame, as one read held it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Where the part starts in its frame (0: the frame's first header byte).
    pub from: u64,
    /// How many of the frame's bytes the read held.
    pub bytes: u64,
    /// The frame's header length, once its second byte is known.
    pub header_len: Option<usize>,
    /// Its payload length, once its header is whole.
    pub payload_len: Option<u64>,
}

impl Span {
    /// The whole frame's length, header and payload, once known.
    pub fn total(&self) -> Option<u64> {
        Some(self.header_len? as u64 + self.payload_len?)
    }

    /// Whether the part ends its frame.
    pub fn ends_frame(&self) -> bool {
        self.total() == Some(self.from + self.bytes)
    }
}

/// One read, as the protocol saw it: how many bytes, and how they fell into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Bytes read.
    pub len: usize,
    /// They arrived with the request head (frames a client sent before the `101`).
    pub with_head: bool,
    /// The part of a frame begun in an earlier read that came first.
    pub continued: Option<Span>,
    /// Frames that lay whole in the read.
    pub whole: u32,
    /// The first part of a frame that the read ends inside.
    pub begun: Option<Span>,
    /// Bytes from a header that breaks a rule on, or read after the connection ended: not
    /// parsed as frames.
    pub unparsed: usize,
    /// The connection had ended: nothing of the read was parsed.
    pub after_end: bool,
}

impl ReadRecord {
    /// What `bytes`, read with the protocol at `position`, held.
    pub fn survey(position: Position, bytes: &[u8], with_head: bool) -> ReadRecord {
        let mut read = ReadRecord {
            len: bytes.len(),
            with_head,
            continued: None,
            whole: 0,
            begun: None,
            unparsed: 0,
            after_end: false,
        };
        let at = match position {
            Position::Boundary => 0,
            Position::Done => {
                read.unparsed = bytes.len();
                read.after_end = true;
                return read;
            }
            Position::Header(gathered) => match finish_header(gathered, bytes) {
                Some(span) => {
                    read.continued = Some(span);
                    span.bytes as usize
                }
                None => {
                    read.unparsed = bytes.len();
                    return read;
                }
            },
            Position::Payload {
                header_len,
                payload_len,
                received,
            } => {
                let take = (payload_len - received).min(bytes.len() as u64);
                read.continued = Some(Span {
                    from: header_len as u64 + received,
                    bytes: take,
                    header_len: Some(header_len),
                    payload_len: Some(payload_len),
                });
                take as usize
            }
        };
        read.count_frames(&bytes[at..]);
        read
    }

    /// Counts the whole frames at the start of `rest`, and the one it ends inside.
    fn count_frames(&mut self, mut rest: &[u8]) {
        while !rest.is_empty() {
            match FrameHeader::parse_client(rest) {
                Ok(Status::Complete((header, header_len))) => {
                    let total = header_len as u64 + header.payload_len;
                    if total > rest.len() as u64 {
                        self.begun = Some(Span {
                            from: 0,
                            bytes: rest.len() as u64,
                            header_len: Some(header_len),
                            payload_len: Some(header.payload_len),
                        });
                        return;
                    }
                    self.whole += 1;
                    rest = &rest[total as usize..];
                }
                Ok(Status::Partial) => {
                    self.begun = Some(Span {
                        from: 0,
                        bytes: rest.len() as u64,
                        header_len: rest
                            .get(1)
                            .map(|&b| LengthFormat::from_field(b).client_header_len()),
                        payload_len: None,
                    });
                    return;
                }
                Err(_) => {
                    self.unparsed = rest.len();
                    return;
                }
            }
        }
    }

    /// How many frames the read held a part of (bytes that break a rule count as one).
    pub fn frames(&self) -> u32 {
        u32::from(self.continued.is_some())
            + self.whole
            + u32::from(self.begun.is_some())
            + u32::from(self.unparsed > 0)
    }
}

/// The part of `bytes` that goes on with a header of which `gathered` arrived, and with its
/// payload; `None` when the header breaks a rule.
fn finish_header(gathered: &[u8], bytes: &[u8]) -> Option<Span> {
    let mut header = [0; MAX_HEADER_LEN];
    header[..gathered.len()].copy_from_slice(gathered);
    let mut len = gathered.len();
    for (taken, &byte) in bytes.iter().enumerate() {
        header[len] = byte;
        len += 1;
        if let Status::Complete((parsed, header_len)) =
            FrameHeader::parse_client(&header[..len]).ok()?
        {
            let payload = parsed.payload_len.min((bytes.len() - taken - 1) as u64);
            return Some(Span {
                from: gathered.len() as u64,
                bytes: (taken + 1) as u64 + payload,
                header_len: Some(header_len),
                payload_len: Some(parsed.payload_len),
            });
        }
    }
    Some(Span {
        from: gathered.len() as u64,
        bytes: bytes.len() as u64,
        header_len: header
            .get(1)
            .filter(|_| len > 1)
            .map(|&b| LengthFormat::from_field(b).client_header_len()),
        payload_len: None,
    })
}

/// What the protocol tells whoever records frames, as it goes. [`NoRecording`] ignores
/// everything, so with recording off the protocol's code has no recording left in it.
pub trait Recorder {
    /// The first byte of a received frame was taken.
    fn frame_begins(&mut self);
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
    fn frame_begins(&mut self) {}
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
    /// How the received frame in progress is arriving, from its first byte on.
    arrival: Option<Arrival>,
    /// Whether the last read held parts of more than one frame.
    read_shared: bool,
}

impl Recording {
    /// The records completed since the last call.
    pub fn take(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.done)
    }

    /// Files a read, and counts it for the frame in progress if the read goes on with it.
    pub fn read(&mut self, read: ReadRecord) {
        self.read_shared = read.frames() > 1;
        if let (Some(arrival), Some(_)) = (&mut self.arrival, read.continued) {
            arrival.reads += 1;
            arrival.shared |= self.read_shared;
        }
        self.done.push(Record::Read(read));
    }
}

impl Recorder for Recording {
    fn frame_begins(&mut self) {
        self.arrival = Some(Arrival {
            reads: 1,
            shared: self.read_shared,
        });
    }

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
        if let Some(mut frame) = self.current.take() {
            frame.arrival = self.arrival.take();
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

/// Records the unit tests of the modules that render them share.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{Arrival, FrameRecord};
    use crate::frame::FrameHeader;
    use crate::Status;

    /// The RFC 6455 §5.7 masked "Hello", as its record comes out of the protocol, having
    /// arrived as `arrival` says.
    pub(crate) fn masked_hello(arrival: Arrival) -> FrameRecord {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let Ok(Status::Complete((header, len))) = FrameHeader::parse_client(&bytes) else {
            panic!("the RFC example parses");
        };
        let mut record = FrameRecord::received(&header);
        record.on_wire.extend(&bytes[len..]);
        record.payload.extend(b"Hello");
        record.arrival = Some(arrival);
        record
    }
}
