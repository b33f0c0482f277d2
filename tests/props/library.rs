//! Every use the property tests make of the `pure_ws` library API, and nothing else: when
//! that API changes, this file is what adapts. The rest of the property code speaks in its
//! own terms: `Ev` for what the protocol said, opcodes as wire bytes, `Header` for a parsed
//! frame header.

use pure_ws::frame::{self, FrameHeader, Opcode};
use pure_ws::http::{HeadReader, Request};
use pure_ws::message::{Event, Message};
use pure_ws::protocol::{Protocol, State};
use pure_ws::Status;

pub use pure_ws::error::ProtocolError;
pub use pure_ws::http::Rejection;

use super::heap;
use super::stream::Ev;

// ---------------------------------------------------------------------------------------
// Errors.

/// The failure for a message past `limit` bytes.
pub fn message_too_big(limit: usize) -> ProtocolError {
    ProtocolError::MessageTooBig { limit }
}

/// The failure for a text message that is not UTF-8.
pub const INVALID_UTF8: ProtocolError = ProtocolError::InvalidUtf8;

/// The failure for a client frame without a mask.
pub const UNMASKED: ProtocolError = ProtocolError::Unmasked;

/// The close code the server sends for `err`.
pub fn close_code_of(err: ProtocolError) -> u16 {
    err.close_code().to_wire()
}

/// The reason the server's close frame gives for `err`.
pub fn reason_of(err: ProtocolError) -> &'static str {
    err.reason()
}

// ---------------------------------------------------------------------------------------
// The protocol state machine.

/// One connection's protocol, driven as the server drives it.
pub struct Core(Protocol);

impl Core {
    pub fn new(max_message_size: usize) -> Core {
        Core(Protocol::new(max_message_size))
    }

    /// Hands `input` over once (the protocol may unmask it in place) and appends any reply
    /// to `out`: how many bytes it used, and what it said, if anything. Only the library's
    /// call counts towards the heap measured, not the test's owned copy of the event.
    pub fn receive(&mut self, input: &mut [u8], out: &mut Vec<u8>) -> (usize, Option<Ev>) {
        let tracked = heap::Tracked::start();
        let (used, event) = self.0.receive(input, out);
        drop(tracked);
        (used, event.map(|event| self.ev(event)))
    }

    /// Whether the connection is over: nothing more will be read.
    pub fn is_finished(&self) -> bool {
        matches!(self.0.state(), State::Closed | State::Failed)
    }

    /// The test's own copy of an event, with the message it announced read from the
    /// protocol.
    fn ev(&self, event: Event) -> Ev {
        match event {
            Event::Message(delivery) => match self.0.message(&delivery) {
                Some(Message::Text(text)) => Ev::Text(text.to_string()),
                Some(Message::Binary(bytes)) => Ev::Binary(bytes.to_vec()),
                None => panic!("Event::Message with no message to read"),
            },
            Event::Closed { code } => Ev::Closed(code.map(|code| code.to_wire())),
            Event::Failed(err) => Ev::Failed(err),
            Event::Abnormal => panic!("receive never reports an abnormal closure"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Frames.

/// A frame header as the library parsed it, with the opcode as its wire value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

fn opcode(wire: u8) -> Opcode {
    Opcode::from_wire(wire).unwrap_or_else(|| panic!("{wire:#x} is not an opcode"))
}

/// The library's header for a final frame with `opcode`, `len` bytes and `mask`.
pub fn encode_header(opcode_byte: u8, len: usize, mask: [u8; 4]) -> Vec<u8> {
    let mut header = Vec::new();
    frame::encode_header(&mut header, opcode(opcode_byte), len, Some(mask));
    header
}

/// The library's whole unmasked (server) frame.
pub fn encode_frame(opcode_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_frame(&mut out, opcode(opcode_byte), payload);
    out
}

/// The library's parse of a client frame header at the start of `buf`: the header and its
/// length, `None` while incomplete, or the error that refuses it.
pub fn parse_client_header(buf: &[u8]) -> Result<Option<(Header, usize)>, ProtocolError> {
    let Status::Complete((header, len)) = FrameHeader::parse_client(buf)? else {
        return Ok(None);
    };
    let header = Header {
        fin: header.fin,
        opcode: header.opcode.to_wire(),
        mask: Some(header.mask),
        payload_len: header.payload_len,
    };
    Ok(Some((header, len)))
}

/// The library's masking of `buf` in place, `offset` bytes into a payload.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    frame::apply_mask(buf, key, offset);
}

// ---------------------------------------------------------------------------------------
// HTTP.

/// The library's incremental request-head reader.
pub struct Head(HeadReader);

impl Head {
    pub fn new(max_bytes: usize, max_lines: usize) -> Head {
        Head(HeadReader::new(max_bytes, max_lines))
    }

    /// Takes more bytes: `Some(n)` when the head ends `n` bytes into `data`, `None` when
    /// more is needed, or the rejection.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<usize>, Rejection> {
        Ok(match self.0.push(data)? {
            Status::Complete(n) => Some(n),
            Status::Partial => None,
        })
    }

    /// The bytes of the head retained so far.
    pub fn head(&self) -> &[u8] {
        self.0.head()
    }
}

/// A request head as the library parsed it.
#[derive(Debug)]
pub struct Parsed<'a>(Request<'a>);

impl<'a> Parsed<'a> {
    pub fn method(&self) -> &'a str {
        self.0.method
    }

    pub fn path(&self) -> &'a str {
        self.0.path
    }

    pub fn minor_version(&self) -> u8 {
        self.0.minor_version
    }

    /// The values of every header called `name`, in order.
    pub fn headers(&self, name: &str) -> Vec<&'a str> {
        self.0.headers(name).collect()
    }
}

/// The library's parse of a whole request head.
pub fn parse_request(head: &[u8]) -> Result<Parsed<'_>, Rejection> {
    Request::parse(head).map(Parsed)
}
