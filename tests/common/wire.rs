//! The one test-side frame encoder, written from RFC 6455 §5.2 and §5.3 byte by byte and
//! independent of the `pure_ws` library, so an encoder bug in the server cannot hide
//! behind the same bug in the tests. It encodes whatever it is given: reserved bits,
//! unknown opcodes, unmasked client frames, non-minimal lengths and length claims with no
//! payload behind them are all just bytes here.

use std::sync::atomic::{AtomicU32, Ordering};

pub const FIN: u8 = 0x80;

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// RFC 6455 §5.7: a single-frame masked text message containing "Hello".
pub const MASKED_HELLO: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// RFC 6455 §5.7: a masked ping with the body "Hello" (the same key as `MASKED_HELLO`).
pub const MASKED_PING: [u8; 11] = [
    0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// The first byte of a frame with no RSV bits: FIN as given, then the opcode.
pub fn first_byte(fin: bool, opcode: u8) -> u8 {
    if fin {
        FIN | opcode
    } else {
        opcode
    }
}

/// How a header writes the payload length (RFC 6455 §5.2: 7 bits, or 126 and 16 bits, or
/// 127 and 64 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenField {
    /// The shortest field that holds the length, as an encoder must write it.
    Shortest,
    /// The 7 bits of the second byte (a longer length is cut to its low 7 bits).
    Bits7,
    /// 126, then 16 bits (a longer length is cut to its low 16 bits).
    Bits16,
    /// 127, then 64 bits, whatever the length.
    Bits64,
}

impl LenField {
    /// The field the shortest encoding of `len` uses.
    pub fn shortest(len: u64) -> LenField {
        match len {
            0..=125 => LenField::Bits7,
            126..=0xFFFF => LenField::Bits16,
            _ => LenField::Bits64,
        }
    }
}

/// A frame header: the `first` byte as given (FIN, RSV and opcode bits), the mask bit and
/// key if `mask` is given, and `len` written in `field`. Nothing checks that a payload of
/// that length follows.
pub fn header(first: u8, len: u64, field: LenField, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let field = match field {
        LenField::Shortest => LenField::shortest(len),
        field => field,
    };
    let mut out = vec![first];
    match field {
        LenField::Bits16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        LenField::Bits64 => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        LenField::Bits7 | LenField::Shortest => out.push(mask_bit | (len as u8 & 0x7F)),
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A masked header claiming `len` payload bytes in the shortest field; none of them follow.
pub fn claim(first: u8, len: u64) -> Vec<u8> {
    header(
        first,
        len,
        LenField::Shortest,
        Some([0x12, 0x34, 0x56, 0x78]),
    )
}

/// `payload` XORed with `key` starting at `offset` into the payload, one byte at a time as
/// RFC 6455 §5.3 defines it.
pub fn xor_mask(payload: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[(offset + i) % 4])
        .collect()
}

/// A whole frame with the shortest length field: masked with `mask` if given, else bare.
pub fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = header(first, payload.len() as u64, LenField::Shortest, mask);
    match mask {
        Some(key) => out.extend(xor_mask(payload, key, 0)),
        None => out.extend_from_slice(payload),
    }
    out
}

/// A whole client frame, masked with `key`.
pub fn client_frame(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    frame(first, payload, Some(key))
}

/// A whole server frame: unmasked (RFC 6455 §5.1).
pub fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, payload, None)
}

/// A masked client frame with no RSV bits, under a key that changes from call to call.
pub fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    static COUNTER: AtomicU32 = AtomicU32::new(0x9E37_79B9);
    let n = COUNTER.fetch_add(0x6D2B_79F5, Ordering::Relaxed);
    client_frame(first_byte(fin, opcode), payload, n.to_be_bytes())
}
