//! The words the protocol core and the application share: the messages, their kinds and
//! the events [`Protocol::receive`](crate::protocol::Protocol::receive) hands out, and the
//! parts of a message the application sends. Plain data, below the state machine, so the
//! application reads and answers messages without depending on how they were parsed.

use crate::close::CloseCode;
use crate::error::ProtocolError;
use crate::frame::Opcode;

/// A complete message from the peer, borrowed from the protocol, or from the input when it
/// arrived whole in one read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    pub(crate) fn opcode(self) -> Opcode {
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

/// A message [`Protocol::receive`](crate::protocol::Protocol::receive) announced. It borrows the input it came in, so the
/// message is read from the bytes it arrived in, and from no others.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery<'i>(pub(crate) Held<'i>);

/// Where a delivered message lies.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Held<'i> {
    /// Whole in the input, unmasked (and checked, for text) where it lay.
    InPlace(Message<'i>),
    /// In the protocol's message buffer.
    Assembled,
}

/// What a call to [`Protocol::receive`](crate::protocol::Protocol::receive) or [`Protocol::receive_eof`](crate::protocol::Protocol::receive_eof) produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'i> {
    /// A whole data message arrived: [`Protocol::message`](crate::protocol::Protocol::message) reads it.
    Message(Delivery<'i>),
    /// The peer started the close handshake, or answered ours, with this code if it sent
    /// one. A reply is in `out`; nothing more is read: flush `out`, then close TCP.
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

/// Which frame of its message a data frame the server sends is (RFC 6455 §5.4): a
/// message in one frame, or the first, a middle or the last of several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The whole message: FIN set, the message's opcode.
    Whole,
    /// The first fragment: FIN clear, the message's opcode.
    First,
    /// A middle fragment: FIN clear, continuation.
    Middle,
    /// The last fragment: FIN set, continuation.
    Last,
}

/// Refused: a data frame or ping asked for after a close frame was sent or received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOpen;
