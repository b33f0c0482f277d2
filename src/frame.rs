//! The frame layer of RFC 6455 §5.2: opcodes, header parsing and encoding, masking.
//!
//! Nothing here knows about messages or connections; `protocol` builds those on top.

use crate::error::ProtocolError;

/// Frame opcodes (RFC 6455 §5.2, §11.8). Reserved opcodes never become an `Opcode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    /// The opcode for a wire value, or `None` for the reserved values 0x3–0x7 and 0xB–0xF.
    pub fn from_wire(value: u8) -> Option<Opcode> {
        match value {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn to_wire(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong (RFC 6455 §5.5: opcodes with the high bit set).
    pub fn is_control(self) -> bool {
        self.to_wire() & 0x8 != 0
    }
}

/// The longest possible header: 2 fixed bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: Opcode,
    /// The masking key; `None` for an unmasked frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length as claimed on the wire: a claim, not an allocation size.
    pub payload_len: u64,
}

/// Where a header ends and what its length and mask fields say, before any rule is applied.
struct Layout {
    header_len: usize,
    payload_len: u64,
    mask: Option<[u8; 4]>,
}

impl Layout {
    /// `None` while the header is incomplete.
    fn read(buf: &[u8]) -> Option<Layout> {
        let second = *buf.get(1)?;
        let len_bytes = match second & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask_bytes = if second & 0x80 != 0 { 4 } else { 0 };
        let header_len = 2 + len_bytes + mask_bytes;
        let header = buf.get(..header_len)?;
        let payload_len = match len_bytes {
            0 => u64::from(second & 0x7F),
            2 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            _ => u64::from_be_bytes(header[2..10].try_into().ok()?),
        };
        let mask = (mask_bytes == 4).then(|| {
            let key = &header[header_len - 4..];
            [key[0], key[1], key[2], key[3]]
        });
        Some(Layout {
            header_len,
            payload_len,
            mask,
        })
    }
}

impl FrameHeader {
    /// Parses a header a client sent from the start of `buf`.
    ///
    /// Returns `Ok(None)` while the header is incomplete, `Ok(Some((header, header_len)))`
    /// once it is whole. Violations are reported as soon as the bytes that show them are
    /// in `buf`, so a bad first byte fails without waiting for the rest of the header.
    pub fn parse_client(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        // RFC 6455 §5.2: RSV1-3 must be 0 unless an extension was negotiated; we negotiate none.
        if first & 0x70 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let opcode = Opcode::from_wire(first & 0x0F).ok_or(ProtocolError::UnknownOpcode)?;
        let fin = first & 0x80 != 0;
        // RFC 6455 §5.5: control frames must not be fragmented.
        if opcode.is_control() && !fin {
            return Err(ProtocolError::FragmentedControl);
        }
        let Some(&second) = buf.get(1) else {
            return Ok(None);
        };
        // RFC 6455 §5.1: a server must fail the connection on an unmasked client frame.
        if second & 0x80 == 0 {
            return Err(ProtocolError::Unmasked);
        }
        // RFC 6455 §5.5: control frames carry at most 125 bytes of payload.
        if opcode.is_control() && second & 0x7F > 125 {
            return Err(ProtocolError::ControlTooLong);
        }
        let Some(layout) = Layout::read(buf) else {
            return Ok(None);
        };
        // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
        if layout.payload_len >> 63 != 0 {
            return Err(ProtocolError::LengthTopBit);
        }
        let header = FrameHeader {
            fin,
            opcode,
            mask: layout.mask,
            payload_len: layout.payload_len,
        };
        Ok(Some((header, layout.header_len)))
    }

    /// Reads only where a frame ends and whether it is a close frame, checking no rule:
    /// once a connection has failed, this keeps the frame boundaries (even of the frame
    /// that was refused) while the peer's close frame is awaited. Returns
    /// `(is_close, payload_len, header_len)`, or `None` while the header is incomplete.
    pub fn skim(buf: &[u8]) -> Option<(bool, u64, usize)> {
        let is_close = buf.first()? & 0x0F == Opcode::Close.to_wire();
        let layout = Layout::read(buf)?;
        Some((is_close, layout.payload_len, layout.header_len))
    }
}

/// Appends a frame header to `out`: FIN set, the shortest length encoding, and the mask
/// if one is given (clients mask, servers must not: RFC 6455 §5.1).
pub fn encode_header(out: &mut Vec<u8>, opcode: Opcode, payload_len: usize, mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(0x80 | opcode.to_wire());
    if payload_len < 126 {
        out.push(mask_bit | payload_len as u8);
    } else if let Ok(len) = u16::try_from(payload_len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Appends a whole unmasked (server) frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    encode_header(out, opcode, payload.len(), None);
    out.extend_from_slice(payload);
}

/// XORs `buf` with the masking key in place (RFC 6455 §5.3). `offset` is the position of
/// `buf[0]` within the frame payload, so a payload may be unmasked in pieces as it arrives.
///
/// Works eight bytes at a time: the key repeats every four bytes, so a doubled key XORs
/// a whole `u64` at once, and the compiler vectorises the loop further.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let doubled = [
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ];
    let wide = u64::from_ne_bytes(doubled);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so the rotated key lines up with it again.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn apply_mask_matches_the_rfc_definition_for_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                naive_mask(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn unmasks_the_rfc_hello_example() {
        // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (header, len) = FrameHeader::parse_client(&frame).unwrap().unwrap();
        assert_eq!(len, 6);
        assert!(header.fin);
        assert_eq!(header.opcode, Opcode::Text);
        assert_eq!(header.payload_len, 5);
        let mut payload = frame[len..].to_vec();
        apply_mask(&mut payload, header.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn encodes_the_rfc_unmasked_hello_example() {
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Text, b"Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn encodes_each_length_class() {
        for (len, header_len) in [(125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let mut out = Vec::new();
            encode_header(&mut out, Opcode::Binary, len, None);
            assert_eq!(out.len(), header_len, "len {len}");
        }
        let mut out = Vec::new();
        encode_header(&mut out, Opcode::Binary, 256, None);
        assert_eq!(out, [0x82, 0x7E, 0x01, 0x00]);
        let mut out = Vec::new();
        encode_header(&mut out, Opcode::Binary, 65536, None);
        assert_eq!(out, [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn header_round_trips_for_every_opcode_and_length_class() {
        let key = [1, 2, 3, 4];
        for opcode in [Opcode::Continuation, Opcode::Text, Opcode::Binary] {
            for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 40] {
                let mut out = Vec::new();
                encode_header(&mut out, opcode, len, Some(key));
                let (header, header_len) = FrameHeader::parse_client(&out).unwrap().unwrap();
                assert_eq!(header_len, out.len());
                assert_eq!(header.opcode, opcode);
                assert_eq!(header.payload_len, len as u64);
                assert_eq!(header.mask, Some(key));
                // Every strict prefix is incomplete, never an error.
                for cut in 0..out.len() {
                    assert_eq!(FrameHeader::parse_client(&out[..cut]), Ok(None));
                }
            }
        }
    }

    #[test]
    fn rejects_bad_headers_from_their_first_bytes() {
        assert_eq!(
            FrameHeader::parse_client(&[0xC1]),
            Err(ProtocolError::ReservedBits)
        );
        assert_eq!(
            FrameHeader::parse_client(&[0x83]),
            Err(ProtocolError::UnknownOpcode)
        );
        assert_eq!(
            FrameHeader::parse_client(&[0x09]),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            FrameHeader::parse_client(&[0x81, 0x05]),
            Err(ProtocolError::Unmasked)
        );
        assert_eq!(
            FrameHeader::parse_client(&[0x89, 0xFE]),
            Err(ProtocolError::ControlTooLong)
        );
        let mut top_bit = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        top_bit.extend_from_slice(&[0; 4]);
        assert_eq!(
            FrameHeader::parse_client(&top_bit),
            Err(ProtocolError::LengthTopBit)
        );
    }
}
