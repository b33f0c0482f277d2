//! The data message being received: one type for its one buffer, so which buffer is live
//! is never in doubt, and text checked for UTF-8 as its bytes arrive, so a bad byte fails
//! the moment it arrives. The buffer grows with the bytes that arrived, never with a
//! length a peer claims.

use crate::error::ProtocolError;
use crate::frame::Opcode;

/// The data message being received: one type, so which buffer is live is never in doubt.
#[derive(Debug)]
pub(crate) enum Assembly {
    /// No message in progress. Holds the last message's (cleared) buffer for the next one.
    Idle(Vec<u8>),
    /// A text message: the valid UTF-8 so far, and a code point cut by a chunk's end.
    Text(String, Utf8Tail),
    /// A binary message.
    Binary(Vec<u8>),
}

/// The first bytes of a code point whose last bytes have not arrived yet (at most 3), with
/// room for the 4th that completes it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Utf8Tail {
    bytes: [u8; 4],
    len: usize,
}

impl Assembly {
    /// Starts a message with a text or binary frame, or continues one with a continuation.
    pub(crate) fn start(&mut self, opcode: Opcode) -> Result<(), ProtocolError> {
        match (opcode, &mut *self) {
            (Opcode::Continuation, Assembly::Text(..) | Assembly::Binary(_)) => Ok(()),
            // RFC 6455 §5.4: a continuation frame only continues a started message...
            (Opcode::Continuation, Assembly::Idle(_)) => {
                Err(ProtocolError::ContinuationWithoutStart)
            }
            // ...and "the fragments of one message MUST NOT be interleaved between the
            // fragments of another message".
            (_, Assembly::Text(..) | Assembly::Binary(_)) => {
                Err(ProtocolError::DataInsideFragmentedMessage)
            }
            (_, Assembly::Idle(buffer)) => {
                let buffer = std::mem::take(buffer);
                *self = if opcode == Opcode::Text {
                    // An empty buffer is valid UTF-8, so this hands the allocation over.
                    Assembly::Text(
                        String::from_utf8(buffer).unwrap_or_default(),
                        Utf8Tail::default(),
                    )
                } else {
                    Assembly::Binary(buffer)
                };
                Ok(())
            }
        }
    }

    /// Payload bytes of the message so far.
    pub(crate) fn len(&self) -> usize {
        match self {
            Assembly::Idle(_) => 0,
            Assembly::Text(text, tail) => text.len() + tail.len,
            Assembly::Binary(bytes) => bytes.len(),
        }
    }

    /// Appends an unmasked chunk of the message; `frame_left` bytes of its frame follow.
    pub(crate) fn push(&mut self, chunk: &[u8], frame_left: u64) -> Result<(), ProtocolError> {
        let needed = self.len() + chunk.len();
        match self {
            Assembly::Idle(_) => Ok(()),
            Assembly::Binary(bytes) => {
                bytes.reserve_exact(growth(bytes.len(), bytes.capacity(), needed, frame_left));
                bytes.extend_from_slice(chunk);
                Ok(())
            }
            Assembly::Text(text, tail) => {
                text.reserve_exact(growth(text.len(), text.capacity(), needed, frame_left));
                push_utf8(text, tail, chunk)
            }
        }
    }

    /// Ends the message. RFC 6455 §8.1: a text message whose bytes are not valid UTF-8
    /// fails the connection; here, one that ends inside a code point.
    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        match self {
            Assembly::Text(_, tail) if tail.len > 0 => Err(ProtocolError::InvalidUtf8),
            _ => Ok(()),
        }
    }

    /// Back to idle, keeping the buffer (cleared) for the next message.
    pub(crate) fn reset(&mut self) {
        if let Assembly::Idle(_) = self {
            return;
        }
        let mut buffer = match std::mem::replace(self, Assembly::Idle(Vec::new())) {
            Assembly::Idle(buffer) | Assembly::Binary(buffer) => buffer,
            Assembly::Text(text, _) => text.into_bytes(),
        };
        buffer.clear();
        *self = Assembly::Idle(buffer);
    }

    /// The capacity of the message buffer, whichever kind it holds.
    pub(crate) fn capacity(&self) -> usize {
        match self {
            Assembly::Idle(bytes) | Assembly::Binary(bytes) => bytes.capacity(),
            Assembly::Text(text, _) => text.capacity(),
        }
    }
}

/// How much a message buffer of `len` bytes and `capacity` must grow to hold `needed`:
/// geometrically, so a large message is copied O(1) times, but never past the end of the
/// current frame, whose length is known, so the buffer stays within what actually arrives.
fn growth(len: usize, capacity: usize, needed: usize, frame_left: u64) -> usize {
    if needed <= capacity {
        return 0;
    }
    let frame_end = (needed as u64).saturating_add(frame_left);
    let doubled = (capacity as u64 * 2).max(4096);
    doubled.min(frame_end).max(needed as u64) as usize - len
}

/// Appends text as it arrives, checking each byte once: the one UTF-8 path. A code point
/// cut by the end of a chunk waits in `tail` for the rest; what can no longer become valid
/// UTF-8 fails in the call that brings it.
fn push_utf8(
    text: &mut String,
    tail: &mut Utf8Tail,
    mut chunk: &[u8],
) -> Result<(), ProtocolError> {
    if tail.len > 0 {
        let width = utf8_width(tail.bytes[0]);
        let take = (width - tail.len).min(chunk.len());
        tail.bytes[tail.len..tail.len + take].copy_from_slice(&chunk[..take]);
        tail.len += take;
        chunk = &chunk[take..];
        match std::str::from_utf8(&tail.bytes[..tail.len]) {
            Ok(code_point) => {
                text.push_str(code_point);
                tail.len = 0;
            }
            Err(err) if err.error_len().is_none() => return Ok(()),
            Err(_) => return Err(ProtocolError::InvalidUtf8),
        }
    }
    let (whole, cut) = chunk.split_at(cut_code_point_start(chunk));
    let whole = std::str::from_utf8(whole).map_err(|_| ProtocolError::InvalidUtf8)?;
    text.push_str(whole);
    if std::str::from_utf8(cut).is_err_and(|err| err.error_len().is_some()) {
        return Err(ProtocolError::InvalidUtf8);
    }
    tail.bytes[..cut.len()].copy_from_slice(cut);
    tail.len = cut.len();
    Ok(())
}

/// The length of the UTF-8 sequence a lead byte starts (1 for bytes that start none).
pub(crate) fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// Where a code point cut by the end of `bytes` starts, or `bytes.len()` if none is cut.
/// UTF-8 is self-synchronising: the lead byte is among the last three.
fn cut_code_point_start(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let at = bytes.len() - back;
        if bytes[at] & 0xC0 != 0x80 {
            return if utf8_width(bytes[at]) > back {
                at
            } else {
                bytes.len()
            };
        }
    }
    bytes.len()
}
