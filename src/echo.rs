//! The application: what the server answers to each message it receives.

use crate::message::{Message, MessageKind};

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

/// The answer to one message: a message of the same kind whose payload is `prefix`
/// followed by `payload`, kept apart so a large payload can be sent from where it lies.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply<'m> {
    /// Text for text, binary for binary.
    pub kind: MessageKind,
    /// The fixed bytes that come first.
    pub prefix: &'static [u8],
    /// The received message's payload.
    pub payload: &'m [u8],
}

impl Reply<'_> {
    /// The payload length of the reply message.
    pub fn len(&self) -> usize {
        self.prefix.len() + self.payload.len()
    }

    /// Whether the reply message is empty (an empty message in exact mode).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The reply to `message`. A prefixed text message stays valid UTF-8: the prefix is ASCII.
pub fn reply<'m>(mode: EchoMode, message: &Message<'m>) -> Reply<'m> {
    let payload = match *message {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
    };
    let prefix = match mode {
        EchoMode::Prefix => PREFIX,
        EchoMode::Exact => &[],
    };
    Reply {
        kind: message.kind(),
        prefix,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_text_and_binary() {
        let text = reply(EchoMode::Prefix, &Message::Text("hi"));
        assert_eq!(
            (text.kind, text.prefix, text.payload),
            (MessageKind::Text, PREFIX, &b"hi"[..])
        );
        assert_eq!(text.len(), 14);
        let binary = reply(EchoMode::Prefix, &Message::Binary(&[0, 255]));
        assert_eq!(binary.kind, MessageKind::Binary);
        assert_eq!(binary.len(), 14);
    }

    #[test]
    fn exact_mode_returns_the_message_unchanged() {
        let empty = reply(EchoMode::Exact, &Message::Text(""));
        assert!(empty.is_empty());
        let big = vec![7u8; 70_000];
        let exact = reply(EchoMode::Exact, &Message::Binary(&big));
        assert_eq!(exact.prefix, b"");
        assert_eq!(exact.payload, &big[..]);
    }
}
