//! The frame layer of RFC 6455 §5.2: opcodes, header parsing and encoding, masking.
//!
//! Nothing here knows about messages or connections; `protocol` builds those on top.

use crate::close::ClosePayload;
use crate::error::ProtocolError;
use crate::Status;

/// Frame opcodes (RFC 6455 §5.2, §11.8). Reserved opcodes never become an `Opcode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: the next fragment of a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: the close handshake.
    Close,
    /// 0x9: a ping, answered with a pong.
    Ping,
    /// 0xA: a pong.
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

/// The three ways a frame header carries its payload length (RFC 6455 §5.2): in the 7 bits
/// of the second byte, or a 126 or 127 there followed by a 16-bit or a 64-bit length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthFormat {
    /// 0–125, in the second byte itself.
    Bits7,
    /// 126, then the length in the next 2 bytes.
    Bits16,
    /// 127, then the length in the next 8 bytes.
    Bits64,
}

impl LengthFormat {
    /// The format a 7-bit length field announces.
    pub fn from_field(field: u8) -> LengthFormat {
        match field & 0x7F {
            126 => LengthFormat::Bits16,
            127 => LengthFormat::Bits64,
            _ => LengthFormat::Bits7,
        }
    }

    /// RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    /// So every frame this server sends uses the shortest format that holds `len`.
    pub fn shortest_for(len: u64) -> LengthFormat {
        match len {
            0..=125 => LengthFormat::Bits7,
            126..=0xFFFF => LengthFormat::Bits16,
            _ => LengthFormat::Bits64,
        }
    }

    /// How many length bytes follow the second byte of the header.
    pub fn extra_bytes(self) -> usize {
        match self {
            LengthFormat::Bits7 => 0,
            LengthFormat::Bits16 => 2,
            LengthFormat::Bits64 => 8,
        }
    }
}

/// The longest possible header: 2 fixed bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

impl LengthFormat {
    /// The length of a masked (client) header with this format: 2 fixed bytes, the
    /// extended length, the 4-byte key. Known as soon as the second byte arrives.
    pub fn client_header_len(self) -> usize {
        2 + self.extra_bytes() + 4
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this frame ends its message.
    pub fin: bool,
    /// What the frame carries.
    pub opcode: Opcode,
    /// The masking key: a client frame always has one (§5.1), or it fails to parse.
    pub mask: [u8; 4],
    /// Which encoding carried the length.
    pub length_format: LengthFormat,
    /// The payload length as claimed on the wire: a claim, not an allocation size.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header a client sent from the start of `buf`: `Complete((header, len))`
    /// once its `len` bytes are all there, `Partial` before.
    ///
    /// Violations are reported as soon as the bytes that show them are in `buf`, so a bad
    /// first byte fails without waiting for the rest of the header.
    pub fn parse_client(buf: &[u8]) -> Result<Status<(FrameHeader, usize)>, ProtocolError> {
        let Some(&first) = buf.first() else {
            return Ok(Status::Partial);
        };
        // RFC 6455 §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines
        // meanings for non-zero values". pure-ws negotiates none, so any set bit is a 1002.
        if first & 0x70 != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        let opcode = Opcode::from_wire(first & 0x0F).ok_or(ProtocolError::UnknownOpcode)?;
        let fin = first & 0x80 != 0;
        let control = first & 0x08 != 0;
        // RFC 6455 §5.5: "Control frames MUST NOT be fragmented." pure-ws refuses one from
        // its first byte, before any payload.
        if control && !fin {
            return Err(ProtocolError::FragmentedControl);
        }
        let Some(&second) = buf.get(1) else {
            return Ok(Status::Partial);
        };
        // RFC 6455 §5.1: "The server MUST close the connection upon receiving a frame that
        // is not masked." pure-ws fails it with 1002 (protocol error), as §7.4.1 defines.
        if second & 0x80 == 0 {
            return Err(ProtocolError::Unmasked);
        }
        // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or
        // less". pure-ws judges that from the 7-bit length alone (126 and 127 announce more).
        if control && second & 0x7F > 125 {
            return Err(ProtocolError::ControlTooLong);
        }
        let length_format = LengthFormat::from_field(second);
        let header_len = length_format.client_header_len();
        let Some(header) = buf.get(..header_len) else {
            return Ok(Status::Partial);
        };
        let payload_len = match length_format {
            LengthFormat::Bits7 => u64::from(second & 0x7F),
            LengthFormat::Bits16 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            LengthFormat::Bits64 => u64::from_be_bytes([
                header[2], header[3], header[4], header[5], header[6], header[7], header[8],
                header[9],
            ]),
        };
        // RFC 6455 §5.2: in a 64-bit length "the most significant bit MUST be 0". pure-ws
        // fails such a header with 1002 rather than reading it as a size.
        if payload_len >> 63 != 0 {
            return Err(ProtocolError::LengthTopBit);
        }
        let key = &header[header_len - 4..];
        let header = FrameHeader {
            fin,
            opcode,
            mask: [key[0], key[1], key[2], key[3]],
            length_format,
            payload_len,
        };
        Ok(Status::Complete((header, header_len)))
    }

    /// The fast path's parser: only the commonest client headers, a final text or binary
    /// frame with no RSV bit, masked, with a 7- or 16-bit length, whole in `buf`. It
    /// returns what [`FrameHeader::parse_client`] returns for them, and `None` for every
    /// other header (complete or not, valid or not), which `parse_client` then judges.
    #[inline]
    pub fn parse_common(buf: &[u8]) -> Option<(FrameHeader, usize)> {
        let opcode = match *buf.first()? {
            0x81 => Opcode::Text,
            0x82 => Opcode::Binary,
            _ => return None,
        };
        let second = *buf.get(1)?;
        let (length_format, payload_len, key_at) = match second {
            0xFE => {
                let length = buf.get(2..4)?;
                let len = u16::from_be_bytes([length[0], length[1]]);
                (LengthFormat::Bits16, u64::from(len), 4)
            }
            0x80..=0xFD => (LengthFormat::Bits7, u64::from(second & 0x7F), 2),
            _ => return None,
        };
        let key = buf.get(key_at..key_at + 4)?;
        let header = FrameHeader {
            fin: true,
            opcode,
            mask: [key[0], key[1], key[2], key[3]],
            length_format,
            payload_len,
        };
        Some((header, key_at + 4))
    }

    /// Writes the header back as the client sent it (FIN, opcode, the length in the
    /// encoding it came in, the masking key) into `out`, and returns its length. Every
    /// header [`FrameHeader::parse_client`] accepts comes out byte for byte.
    pub fn encode_client(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | self.opcode.to_wire();
        let extra = self.length_format.extra_bytes();
        out[1] = 0x80
            | match self.length_format {
                LengthFormat::Bits7 => self.payload_len as u8,
                LengthFormat::Bits16 => 126,
                LengthFormat::Bits64 => 127,
            };
        let length = self.payload_len.to_be_bytes();
        out[2..2 + extra].copy_from_slice(&length[8 - extra..]);
        out[2 + extra..6 + extra].copy_from_slice(&self.mask);
        6 + extra
    }
}

/// Appends a frame header to `out`: FIN set, the shortest length encoding, and the mask
/// if one is given (clients mask, servers must not: RFC 6455 §5.1).
pub fn encode_header(out: &mut Vec<u8>, opcode: Opcode, payload_len: usize, mask: Option<[u8; 4]>) {
    encode_header_fin(out, true, opcode, payload_len, mask);
}

/// [`encode_header`] with FIN as given: clear on every frame of a fragmented message but
/// its last (RFC 6455 §5.4).
pub fn encode_header_fin(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    payload_len: usize,
    mask: Option<[u8; 4]>,
) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(u8::from(fin) << 7 | opcode.to_wire());
    let len = payload_len as u64;
    match LengthFormat::shortest_for(len) {
        LengthFormat::Bits7 => out.push(mask_bit | len as u8),
        LengthFormat::Bits16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        LengthFormat::Bits64 => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
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

/// Appends a whole close frame to `out`: the code and reason of `payload`, or no body.
pub fn encode_close(out: &mut Vec<u8>, payload: Option<ClosePayload>) {
    let mut body = [0; 125];
    let len = payload.map_or(0, |payload| payload.encode(&mut body));
    encode_frame(out, Opcode::Close, &body[..len]);
}

/// XORs `buf` with the masking key in place (RFC 6455 §5.3). `offset` is the position of
/// `buf[0]` within the frame payload, so a payload may be unmasked in pieces as it arrives.
///
/// Works eight bytes at a time: the key repeats every four bytes, so a doubled key XORs
/// a whole `u64` at once, and the compiler vectorises the loop further.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // The key as it lines up with `buf[0]`: rotated by the offset's phase.
    let key: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    let word = u64::from(u32::from_ne_bytes(key));
    let wide = word | (word << 32);
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
        let Status::Complete((header, len)) = FrameHeader::parse_client(&frame).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(len, 6);
        assert!(header.fin);
        assert_eq!(header.opcode, Opcode::Text);
        assert_eq!(header.payload_len, 5);
        let mut payload = frame[len..].to_vec();
        apply_mask(&mut payload, header.mask, 0);
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
                let Status::Complete((header, header_len)) =
                    FrameHeader::parse_client(&out).unwrap()
                else {
                    panic!("incomplete header for len {len}");
                };
                assert_eq!(header_len, out.len());
                assert_eq!(header.opcode, opcode);
                assert_eq!(header.payload_len, len as u64);
                assert_eq!(header.mask, key);
                // Every strict prefix is incomplete, never an error.
                for cut in 0..out.len() {
                    assert_eq!(FrameHeader::parse_client(&out[..cut]), Ok(Status::Partial));
                }
            }
        }
    }

    #[test]
    fn a_parsed_header_encodes_back_to_the_same_bytes() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let non_minimal = [0x82, 0xFE, 0x00, 0x05, 0x37, 0xfa, 0x21, 0x3d];
        let mut long = vec![0x01, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
        long.extend_from_slice(&key);
        for bytes in [
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d][..],
            &non_minimal,
            &long,
        ] {
            let Status::Complete((header, len)) = FrameHeader::parse_client(bytes).unwrap() else {
                panic!("incomplete");
            };
            let mut out = [0; MAX_HEADER_LEN];
            assert_eq!(header.encode_client(&mut out), len);
            assert_eq!(&out[..len], bytes);
        }
    }

    #[test]
    fn the_fast_parser_agrees_with_the_full_one_wherever_it_answers() {
        let mut answered = 0;
        for first in 0..=255u8 {
            for second in 0..=255u8 {
                for length in [[0x00, 0x7E], [0xFF, 0xFF], [0x00, 0x05]] {
                    let buf = [first, second, length[0], length[1], 1, 2, 3, 4, 5, 6];
                    for cut in 0..=buf.len() {
                        let Some(fast) = FrameHeader::parse_common(&buf[..cut]) else {
                            continue;
                        };
                        answered += 1;
                        assert_eq!(
                            FrameHeader::parse_client(&buf[..cut]),
                            Ok(Status::Complete(fast)),
                            "{:02x?}",
                            &buf[..cut]
                        );
                    }
                }
            }
        }
        // It answers for FIN + text or binary (2 first bytes), masked 7- and 16-bit lengths.
        assert!(answered > 2 * 126 * 3, "{answered}");
        assert_eq!(FrameHeader::parse_common(&[0x81, 0xFF, 0, 0]), None);
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
