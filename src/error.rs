//! Errors as data: every way a peer can break RFC 6455 is a variant, and each variant
//! knows the close code it is answered with. `protocol` turns one into a close frame.

use std::fmt;

use crate::close::{BadClose, CloseCode};

/// A protocol violation by the peer. The connection fails with [`ProtocolError::close_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 set with no extension negotiated (§5.2).
    ReservedBits,
    /// A reserved opcode, 0x3–0x7 or 0xB–0xF (§5.2).
    UnknownOpcode,
    /// A client frame without a mask (§5.1).
    Unmasked,
    /// A control frame with FIN clear (§5.5).
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlTooLong,
    /// A 64-bit length with its most significant bit set (§5.2).
    LengthTopBit,
    /// A continuation frame with no fragmented message in progress (§5.4).
    ContinuationWithoutStart,
    /// A text or binary frame while a fragmented message is still in progress (§5.4).
    DataInsideFragmentedMessage,
    /// A close frame whose payload is a single byte (§5.5.1).
    ClosePayloadOneByte,
    /// A close code that may not be sent in a close frame (§7.4).
    CloseCodeNotAllowed(u16),
    /// A text message that is not valid UTF-8 (§5.6, §8.1).
    InvalidUtf8,
    /// A close reason that is not valid UTF-8 (§5.5.1).
    CloseReasonUtf8,
    /// A message longer than the configured limit (§7.4.1, code 1009).
    MessageTooBig {
        /// The limit in force, in payload bytes.
        limit: usize,
    },
}

impl ProtocolError {
    /// The close code that reports this error to the peer.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::ReservedBits
            | ProtocolError::UnknownOpcode
            | ProtocolError::Unmasked
            | ProtocolError::FragmentedControl
            | ProtocolError::ControlTooLong
            | ProtocolError::LengthTopBit
            | ProtocolError::ContinuationWithoutStart
            | ProtocolError::DataInsideFragmentedMessage
            | ProtocolError::ClosePayloadOneByte
            | ProtocolError::CloseCodeNotAllowed(_) => CloseCode::PROTOCOL_ERROR,
            ProtocolError::InvalidUtf8 | ProtocolError::CloseReasonUtf8 => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolError::MessageTooBig { .. } => CloseCode::MESSAGE_TOO_BIG,
        }
    }
}

impl ProtocolError {
    /// The reason a close frame reporting this error carries: the rule, with its section,
    /// in a few words (well under the 123 bytes a close reason may have, §5.5).
    pub fn reason(self) -> &'static str {
        match self {
            ProtocolError::ReservedBits => {
                "RFC 6455 §5.2: reserved bits set, no extension negotiated"
            }
            ProtocolError::UnknownOpcode => "RFC 6455 §5.2: unknown opcode",
            ProtocolError::Unmasked => "RFC 6455 §5.1: client frames must be masked",
            ProtocolError::FragmentedControl => {
                "RFC 6455 §5.5: control frames must not be fragmented"
            }
            ProtocolError::ControlTooLong => "RFC 6455 §5.5: control frame over 125 bytes",
            ProtocolError::LengthTopBit => "RFC 6455 §5.2: 64-bit length with its top bit set",
            ProtocolError::ContinuationWithoutStart => {
                "RFC 6455 §5.4: continuation frame with no message started"
            }
            ProtocolError::DataInsideFragmentedMessage => {
                "RFC 6455 §5.4: new message inside a fragmented one"
            }
            ProtocolError::ClosePayloadOneByte => "RFC 6455 §5.5.1: close payload of 1 byte",
            ProtocolError::CloseCodeNotAllowed(_) => {
                "RFC 6455 §7.4: close code not allowed on the wire"
            }
            ProtocolError::InvalidUtf8 => "RFC 6455 §8.1: text is not valid UTF-8",
            ProtocolError::CloseReasonUtf8 => "RFC 6455 §5.5.1: close reason is not valid UTF-8",
            ProtocolError::MessageTooBig { .. } => "RFC 6455 §7.4.1: message over the size limit",
        }
    }

    /// The rule the error breaks, with its place in RFC 6455, for the trace.
    pub fn rule(self) -> &'static str {
        match self {
            ProtocolError::ReservedBits => {
                "§5.2: RSV1-3 MUST be 0 unless an extension defines them (none is negotiated)"
            }
            ProtocolError::UnknownOpcode => {
                "§5.2: an unknown opcode MUST fail the connection (0x3-0x7 and 0xB-0xF are reserved)"
            }
            ProtocolError::Unmasked => "§5.1: a client MUST mask every frame it sends",
            ProtocolError::FragmentedControl => "§5.5: control frames MUST NOT be fragmented",
            ProtocolError::ControlTooLong => {
                "§5.5: control frames MUST have a payload of 125 bytes or less"
            }
            ProtocolError::LengthTopBit => {
                "§5.2: the most significant bit of a 64-bit length MUST be 0"
            }
            ProtocolError::ContinuationWithoutStart => {
                "§5.4: a continuation frame continues a message that was started"
            }
            ProtocolError::DataInsideFragmentedMessage => {
                "§5.4: the fragments of one message MUST NOT be interleaved with another's"
            }
            ProtocolError::ClosePayloadOneByte => {
                "§5.5.1: a close body MUST start with a 2-byte status code"
            }
            ProtocolError::CloseCodeNotAllowed(_) => {
                "§7.4: only defined or registered codes may be sent in a close frame"
            }
            ProtocolError::InvalidUtf8 => "§8.1: text messages MUST be valid UTF-8",
            ProtocolError::CloseReasonUtf8 => "§5.5.1: a close reason MUST be valid UTF-8",
            ProtocolError::MessageTooBig { .. } => {
                "§7.4.1: a message too big to process is refused with 1009"
            }
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits => f.write_str("reserved bits set"),
            ProtocolError::UnknownOpcode => f.write_str("unknown opcode"),
            ProtocolError::Unmasked => f.write_str("client frame not masked"),
            ProtocolError::FragmentedControl => f.write_str("fragmented control frame"),
            ProtocolError::ControlTooLong => f.write_str("control frame over 125 bytes"),
            ProtocolError::LengthTopBit => f.write_str("64-bit length with top bit set"),
            ProtocolError::ContinuationWithoutStart => {
                f.write_str("continuation with no message started")
            }
            ProtocolError::DataInsideFragmentedMessage => {
                f.write_str("new data frame inside a fragmented message")
            }
            ProtocolError::ClosePayloadOneByte => f.write_str("close payload of 1 byte"),
            ProtocolError::CloseCodeNotAllowed(code) => {
                write!(f, "close code {code} not allowed")
            }
            ProtocolError::InvalidUtf8 => f.write_str("invalid UTF-8 in text message"),
            ProtocolError::CloseReasonUtf8 => f.write_str("invalid UTF-8 in close reason"),
            ProtocolError::MessageTooBig { limit } => {
                write!(f, "message over the {limit}-byte limit")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<BadClose> for ProtocolError {
    fn from(bad: BadClose) -> ProtocolError {
        match bad {
            BadClose::OneByte => ProtocolError::ClosePayloadOneByte,
            BadClose::CodeNotAllowed(code) => ProtocolError::CloseCodeNotAllowed(code),
            BadClose::ReasonNotUtf8 => ProtocolError::CloseReasonUtf8,
        }
    }
}
