//! The vocabulary of closing (RFC 6455 §5.5.1, §7.4): close codes, and the payload of a
//! close frame, each checked as it comes off the wire. The bottom of the stack: it uses no
//! other module.

use std::fmt;

/// How a received close payload breaks RFC 6455 (`error` turns it into a
/// `ProtocolError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadClose {
    /// A payload of one byte: too short for a code (§5.5.1).
    OneByte,
    /// A code that may not be sent in a close frame (§7.4).
    CodeNotAllowed(u16),
    /// A reason that is not UTF-8 (§5.5.1).
    ReasonNotUtf8,
}

/// A status code in a close frame (RFC 6455 §7.4). One read off the wire is always a code
/// that a peer may send; the constants are the ones this server sends itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (here: the peer stopped answering pings).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1007: a text message (or close reason) was not valid UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server met an unexpected condition (a bug, caught).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// The code in a received close frame.
    ///
    /// RFC 6455 §7.4.1 reserves 1004, 1005, 1006 and 1015, which "MUST NOT be set as a
    /// status code in a Close control frame by an endpoint", and §7.4.2 leaves 0–999
    /// unused and 1016–2999 to future revisions of the protocol. Codes registered with
    /// IANA since (1012–1014) and the application range 3000–4999 are accepted; every
    /// other code fails the connection with 1002.
    pub fn from_wire(code: u16) -> Result<CloseCode, BadClose> {
        match code {
            1000..=1003 | 1007..=1014 | 3000..=4999 => Ok(CloseCode(code)),
            _ => Err(BadClose::CodeNotAllowed(code)),
        }
    }

    /// The 16-bit value on the wire.
    pub fn to_wire(self) -> u16 {
        self.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A close frame's payload (RFC 6455 §5.5.1): a status code and a UTF-8 reason. An empty
/// payload, which is allowed too, is `None` where a `ClosePayload` is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClosePayload<'a> {
    /// The status code.
    pub code: CloseCode,
    /// Why the connection closed, for people: not meant to be parsed.
    pub reason: &'a str,
}

impl<'a> ClosePayload<'a> {
    /// Parses a received close payload.
    ///
    /// RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a
    /// 2-byte unsigned integer (in network byte order) representing a status code", and
    /// the rest is UTF-8. So one byte is a protocol error (1002) and an invalid reason is
    /// invalid data (1007, as for a text message: §8.1).
    pub fn parse(payload: &'a [u8]) -> Result<Option<ClosePayload<'a>>, BadClose> {
        match payload {
            [] => Ok(None),
            [_] => Err(BadClose::OneByte),
            [high, low, reason @ ..] => {
                let code = CloseCode::from_wire(u16::from_be_bytes([*high, *low]))?;
                let reason = std::str::from_utf8(reason).map_err(|_| BadClose::ReasonNotUtf8)?;
                Ok(Some(ClosePayload { code, reason }))
            }
        }
    }

    /// A payload with no reason.
    pub fn code(code: CloseCode) -> ClosePayload<'static> {
        ClosePayload { code, reason: "" }
    }

    /// Writes the payload into `out` and returns its length. RFC 6455 §5.5: a control
    /// frame carries at most 125 bytes, so a longer reason is cut at the last whole
    /// character that fits.
    pub fn encode(&self, out: &mut [u8; 125]) -> usize {
        let reason = self.sent_reason().as_bytes();
        out[..2].copy_from_slice(&self.code.to_wire().to_be_bytes());
        out[2..2 + reason.len()].copy_from_slice(reason);
        2 + reason.len()
    }

    /// The part of the reason that fits in a control frame beside the code.
    fn sent_reason(&self) -> &'a str {
        let mut end = self.reason.len().min(123);
        while !self.reason.is_char_boundary(end) {
            end -= 1;
        }
        &self.reason[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_allowed_on_the_wire_parse() {
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert_eq!(CloseCode::from_wire(code).map(CloseCode::to_wire), Ok(code));
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert_eq!(
                CloseCode::from_wire(code),
                Err(BadClose::CodeNotAllowed(code))
            );
        }
    }

    #[test]
    fn parses_each_payload_shape() {
        assert_eq!(ClosePayload::parse(b""), Ok(None));
        assert_eq!(ClosePayload::parse(b"\x03"), Err(BadClose::OneByte));
        assert_eq!(
            ClosePayload::parse(b"\x03\xe8bye"),
            Ok(Some(ClosePayload {
                code: CloseCode::NORMAL,
                reason: "bye"
            }))
        );
        assert_eq!(
            ClosePayload::parse(b"\x03\xe8\xff"),
            Err(BadClose::ReasonNotUtf8)
        );
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let reason = "é".repeat(100);
        let payload = ClosePayload {
            code: CloseCode::GOING_AWAY,
            reason: &reason,
        };
        let mut out = [0; 125];
        let len = payload.encode(&mut out);
        assert_eq!(len, 124);
        assert_eq!(&out[..2], [0x03, 0xE9]);
        assert!(std::str::from_utf8(&out[2..len]).is_ok());
    }
}
