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

/// Appends the header and prefix of the reply to `message` to `out`, and returns the
/// payload bytes that must follow them. The caller copies a small payload behind the
/// header or writes a large one straight from the message buffer, saving a copy.
pub fn reply<'m>(mode: EchoMode, message: &Message<'m>, out: &mut Vec<u8>) -> &'m [u8] {
    let (opcode, payload) = match *message {
        Message::Text(text) => (Opcode::Text, text.as_bytes()),
        Message::Binary(bytes) => (Opcode::Binary, bytes),
    };
    let prefix = match mode {
        EchoMode::Prefix => PREFIX,
        EchoMode::Exact => &[],
    };
    encode_header(out, opcode, prefix.len() + payload.len(), None);
    out.extend_from_slice(prefix);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole_reply(mode: EchoMode, message: Message) -> Vec<u8> {
        let mut out = Vec::new();
        let payload = reply(mode, &message, &mut out);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn prefixes_text_and_binary() {
        let text = whole_reply(EchoMode::Prefix, Message::Text("hi"));
        assert_eq!(text, b"\x81\x0eServer got: hi");
        let binary = whole_reply(EchoMode::Prefix, Message::Binary(&[0, 255]));
        assert_eq!(binary, b"\x82\x0eServer got: \x00\xff");
    }

    #[test]
    fn exact_mode_returns_the_message_unchanged() {
        assert_eq!(whole_reply(EchoMode::Exact, Message::Text("")), b"\x81\x00");
        let big = vec![7u8; 70_000];
        let mut out = Vec::new();
        let payload = reply(EchoMode::Exact, &Message::Binary(&big), &mut out);
        assert_eq!(out, [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(payload, &big[..]);
    }
}
