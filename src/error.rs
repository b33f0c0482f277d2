//! Errors as data: every way a peer can break RFC 6455 is a variant, and each variant
//! knows the close code it is answered with. `protocol` turns one into a close frame.

use std::fmt;

/// Close codes this server sends (RFC 6455 §7.4.1).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;

    /// Whether a peer may put `code` in a close frame (RFC 6455 §7.4; 1012–1014 were
    /// registered with IANA later). 1004–1006 and 1015 are reserved and never sent on
    /// the wire; 3000–4999 belong to libraries and applications.
    pub fn allowed_on_wire(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// A protocol violation by the peer. The connection fails with `close_code()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    ReservedBits,
    UnknownOpcode,
    Unmasked,
    FragmentedControl,
    ControlTooLong,
    LengthTopBit,
    ContinuationWithoutStart,
    DataInsideFragmentedMessage,
    ClosePayloadOneByte,
    CloseCodeNotAllowed(u16),
    InvalidUtf8,
    CloseReasonUtf8,
    MessageTooBig { limit: usize },
}

impl ProtocolError {
    /// The close code that reports this error to the peer.
    pub fn close_code(self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::CloseReasonUtf8 => {
                close_code::INVALID_PAYLOAD
            }
            ProtocolError::MessageTooBig { .. } => close_code::MESSAGE_TOO_BIG,
            _ => close_code::PROTOCOL_ERROR,
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
