//! The application: what the server answers to each message it receives.

use crate::frame::{encode_header, Opcode};
use crate::protocol::Message;

/// The bytes put in front of every reply in [`EchoMode::Prefix`].
pub const PREFIX: &[u8] = b"Server got: ";

/// How messages are echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoMode {
    /// `Server got: ` + the message, as text for text and as binary for binary.
    Prefix,
    /// The message unchanged, as conformance suites expect.
    Exact,
}

/// Appends the reply to `message` to `out` as one frame, and returns its payload length.
pub fn reply(mode: EchoMode, message: &Message, out: &mut Vec<u8>) -> usize {
    let (opcode, payload) = match message {
        Message::Text(text) => (Opcode::Text, text.as_bytes()),
        Message::Binary(bytes) => (Opcode::Binary, *bytes),
    };
    let prefix = match mode {
        EchoMode::Prefix => PREFIX,
        EchoMode::Exact => &[],
    };
    let len = prefix.len() + payload.len();
    out.reserve(len + 10);
    encode_header(out, opcode, len, None);
    out.extend_from_slice(prefix);
    out.extend_from_slice(payload);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_text_and_binary() {
        let mut out = Vec::new();
        reply(EchoMode::Prefix, &Message::Text("hi"), &mut out);
        assert_eq!(out, b"\x81\x0eServer got: hi");
        out.clear();
        reply(EchoMode::Prefix, &Message::Binary(&[0, 255]), &mut out);
        assert_eq!(out, b"\x82\x0eServer got: \x00\xff");
    }

    #[test]
    fn exact_mode_returns_the_message_unchanged() {
        let mut out = Vec::new();
        reply(EchoMode::Exact, &Message::Text(""), &mut out);
        assert_eq!(out, b"\x81\x00");
        out.clear();
        let big = vec![7u8; 70_000];
        reply(EchoMode::Exact, &Message::Binary(&big), &mut out);
        assert_eq!(&out[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(&out[10..], &big[..]);
    }
}
