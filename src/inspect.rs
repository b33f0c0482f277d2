//! What pure-ws shows of the protocol: frames as they crossed the wire, written as one
//! trace line each (`--trace`) or as JSON for the page's frame inspector (the `pure-ws.inspect`
//! subprotocol).
//!
//! A record keeps at most the first [`PREVIEW`] payload bytes, so showing a 16 MiB message
//! costs no more than showing a short one.

use std::fmt::Write as _;

use crate::error::ProtocolError;
use crate::frame::{FrameHeader, LengthFormat, Opcode, MAX_HEADER_LEN};
use crate::handshake::AcceptSteps;

/// The subprotocol a client offers to get a JSON description of its frames.
pub const SUBPROTOCOL: &str = "pure-ws.inspect";

/// How many payload bytes a record keeps.
pub const PREVIEW: usize = 64;

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the peer to the server.
    Received,
    /// From the server to the peer.
    Sent,
}

/// The first [`PREVIEW`] bytes of a payload, filled as its chunks go by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preview {
    bytes: [u8; PREVIEW],
    len: usize,
}

impl Preview {
    /// An empty preview.
    pub fn new() -> Preview {
        Preview {
            bytes: [0; PREVIEW],
            len: 0,
        }
    }

    /// A preview of `bytes`.
    pub fn of(bytes: &[u8]) -> Preview {
        let mut preview = Preview::new();
        preview.extend(bytes);
        preview
    }

    /// Keeps what of `chunk` still fits.
    pub fn extend(&mut self, chunk: &[u8]) {
        let take = (PREVIEW - self.len).min(chunk.len());
        self.bytes[self.len..self.len + take].copy_from_slice(&chunk[..take]);
        self.len += take;
    }

    /// The bytes kept.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for Preview {
    fn default() -> Preview {
        Preview::new()
    }
}

/// One frame as it crossed the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRecord {
    /// Which way it went.
    pub direction: Direction,
    /// The header bytes, exactly as on the wire.
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    /// The payload length the header announces.
    pub payload_len: u64,
    /// The first payload bytes as they crossed the wire (masked, if the frame was).
    pub on_wire: Preview,
    /// The same bytes unmasked.
    pub payload: Preview,
}

impl FrameRecord {
    /// A record of a frame the peer sent, before any of its payload.
    pub fn received(header: &FrameHeader) -> FrameRecord {
        let mut bytes = [0; MAX_HEADER_LEN];
        let len = header.encode_client(&mut bytes);
        FrameRecord {
            direction: Direction::Received,
            header: bytes,
            header_len: len,
            payload_len: header.payload_len,
            on_wire: Preview::new(),
            payload: Preview::new(),
        }
    }

    /// A record of an (unmasked) frame the server sent: `header` is its encoded header,
    /// and `payload` the pieces of its payload, in order.
    pub fn sent(header: &[u8], payload: &[&[u8]]) -> FrameRecord {
        let mut bytes = [0; MAX_HEADER_LEN];
        let len = header.len().min(MAX_HEADER_LEN);
        bytes[..len].copy_from_slice(&header[..len]);
        let mut preview = Preview::new();
        for piece in payload {
            preview.extend(piece);
        }
        FrameRecord {
            direction: Direction::Sent,
            header: bytes,
            header_len: len,
            payload_len: payload.iter().map(|piece| piece.len() as u64).sum(),
            on_wire: preview,
            payload: preview,
        }
    }

    /// The header bytes.
    pub fn header(&self) -> &[u8] {
        &self.header[..self.header_len]
    }

    fn first(&self) -> u8 {
        self.header.first().copied().unwrap_or(0)
    }

    /// FIN.
    pub fn fin(&self) -> bool {
        self.first() & 0x80 != 0
    }

    /// The opcode's 4 bits.
    pub fn opcode(&self) -> u8 {
        self.first() & 0x0F
    }

    /// The masking key, if the frame is masked.
    pub fn mask(&self) -> Option<&[u8]> {
        (self.header_len >= 6 && self.header[1] & 0x80 != 0)
            .then(|| &self.header[self.header_len - 4..self.header_len])
    }

    /// Which encoding carried the payload length.
    pub fn length_format(&self) -> LengthFormat {
        LengthFormat::from_field(self.header[1])
    }

    /// How many payload bytes are not in the preview.
    pub fn more(&self) -> u64 {
        self.payload_len - self.payload.as_slice().len() as u64
    }

    /// The payload preview as text, for frames whose payload is text: text and
    /// continuation frames (a continuation may belong to a text message) and close
    /// reasons. A code point cut by the preview's end shows as U+FFFD.
    fn text(&self) -> Option<String> {
        let preview = self.payload.as_slice();
        match Opcode::from_wire(self.opcode()) {
            Some(Opcode::Text | Opcode::Continuation) => {
                Some(String::from_utf8_lossy(preview).into_owned())
            }
            Some(Opcode::Close) => {
                Some(String::from_utf8_lossy(preview.get(2..).unwrap_or(&[])).into_owned())
            }
            _ => None,
        }
    }

    /// The code of a close frame, if it carries one.
    fn close_code(&self) -> Option<u16> {
        match (self.opcode(), self.payload.as_slice()) {
            (0x8, [high, low, ..]) => Some(u16::from_be_bytes([*high, *low])),
            _ => None,
        }
    }

    /// One line: `<` received or `>` sent, the opcode, FIN, any RSV bits, MASK and its key,
    /// the length and its encoding, the header bytes, and the payload preview.
    pub fn trace_line(&self) -> String {
        let arrow = match self.direction {
            Direction::Received => '<',
            Direction::Sent => '>',
        };
        let mut line = format!("{arrow} {}", opcode_name(self.opcode()));
        line.push_str(if self.fin() { " fin" } else { " not-fin" });
        let rsv = (self.first() >> 4) & 0x7;
        if rsv != 0 {
            let _ = write!(line, " rsv={rsv:03b}");
        }
        if let Some(key) = self.mask() {
            let _ = write!(line, " mask={}", hex_compact(key));
        }
        let _ = write!(
            line,
            " len={} ({}); header {}",
            self.payload_len,
            length_name(self.length_format()),
            hex(self.header())
        );
        if let Some(code) = self.close_code() {
            let _ = write!(line, "; close {code}");
        }
        match self.text() {
            Some(text) if text.is_empty() && self.opcode() == 0x8 => {}
            Some(text) => {
                let _ = write!(line, "; payload \"{}\"", escape_trace(&text));
            }
            None if self.payload_len > 0 => {
                let _ = write!(line, "; payload {}", hex(self.payload.as_slice()));
            }
            None => {}
        }
        if self.more() > 0 {
            let _ = write!(line, " (+{} more bytes)", self.more());
        }
        line
    }

    /// The frame as a JSON object (the fields the README's protocol section lists).
    pub fn write_json(&self, out: &mut String) {
        let direction = match self.direction {
            Direction::Received => "received",
            Direction::Sent => "sent",
        };
        let first = self.first();
        let _ = write!(
            out,
            "{{\"direction\":\"{direction}\",\"header\":\"{}\",\"fin\":{},\"rsv1\":{},\
             \"rsv2\":{},\"rsv3\":{},\"opcode\":{},\"opcodeName\":\"{}\",\"mask\":{},",
            hex(self.header()),
            self.fin(),
            first & 0x40 != 0,
            first & 0x20 != 0,
            first & 0x10 != 0,
            self.opcode(),
            opcode_name(self.opcode()),
            self.mask().is_some(),
        );
        out.push_str("\"maskingKey\":");
        match self.mask() {
            Some(key) => write_json_string(out, &hex(key)),
            None => out.push_str("null"),
        }
        let _ = write!(
            out,
            ",\"payloadLength\":{},\"lengthEncoding\":\"{}\",\"payloadMasked\":\"{}\",\
             \"payloadHex\":\"{}\",\"payloadText\":",
            self.payload_len,
            length_name(self.length_format()),
            hex(self.on_wire.as_slice()),
            hex(self.payload.as_slice()),
        );
        write_json_option(out, self.text().as_deref());
        let _ = write!(out, ",\"more\":{},\"closeCode\":", self.more());
        match self.close_code() {
            Some(code) => {
                let _ = write!(out, "{code}");
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"closeReason\":");
        let reason = self.close_code().and(self.text());
        write_json_option(out, reason.as_deref());
        out.push('}');
    }
}

/// What the protocol saw: a frame, or the failure that ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A frame in either direction.
    Frame(FrameRecord),
    /// The peer broke a rule: the error and the bytes that showed it.
    Failure(ProtocolError, Preview),
}

impl Record {
    /// The record's trace line.
    pub fn trace_line(&self) -> String {
        match self {
            Record::Frame(frame) => frame.trace_line(),
            Record::Failure(err, bytes) => format!(
                "! failed: {err}, breaking RFC 6455 {}; offending bytes {}; close {} sent",
                err.rule(),
                hex(bytes.as_slice()),
                err.close_code()
            ),
        }
    }
}

/// The trace lines of an HTTP head: `http <` and each line of a request as received, or
/// `http >` and each line of a response head.
pub fn head_trace(direction: Direction, head: &[u8]) -> Vec<String> {
    let arrow = match direction {
        Direction::Received => '<',
        Direction::Sent => '>',
    };
    head_lines(head)
        .iter()
        .map(|line| format!("http {arrow} {}", escape_trace(line)))
        .collect()
}

/// The trace lines of the way from the client's key to `Sec-WebSocket-Accept`.
pub fn accept_trace(steps: &AcceptSteps) -> [String; 4] {
    [
        format!("handshake key {}", steps.key),
        format!("handshake key+GUID {}", steps.joined),
        format!("handshake SHA-1 {}", hex(&steps.sha1)),
        format!("handshake accept {}", steps.accept),
    ]
}

/// The inspector's first message: the handshake, step by step.
pub fn handshake_json(request: &[u8], steps: &AcceptSteps, response: &[u8]) -> String {
    let mut out = String::from("{\"inspect\":\"handshake\",\"request\":");
    write_json_lines(&mut out, request);
    out.push_str(",\"key\":");
    write_json_string(&mut out, &steps.key);
    out.push_str(",\"guid\":");
    write_json_string(&mut out, crate::handshake::GUID);
    out.push_str(",\"joined\":");
    write_json_string(&mut out, &steps.joined);
    let _ = write!(out, ",\"sha1\":\"{}\",\"accept\":", hex(&steps.sha1));
    write_json_string(&mut out, &steps.accept);
    out.push_str(",\"response\":");
    write_json_lines(&mut out, response);
    out.push('}');
    out
}

/// The inspector's message for one data message: the frames that carried it in (the
/// first ones, when there were more than an inspector shows: `omitted` says how many
/// more), and the frame of the echo, which follows it on the wire.
pub fn message_json(received: &[FrameRecord], omitted: u64, sent: &FrameRecord) -> String {
    let mut out = String::from("{\"inspect\":\"message\",\"received\":[");
    for (i, frame) in received.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        frame.write_json(&mut out);
    }
    let _ = write!(out, "],\"omitted\":{omitted},\"sent\":");
    sent.write_json(&mut out);
    out.push('}');
    out
}

/// The inspector's message for a control frame: one the peer sent, with the server's
/// answer if it has one, or one the server sends on its own (`received` is `None`).
pub fn control_json(received: Option<&FrameRecord>, sent: Option<&FrameRecord>) -> String {
    let mut out = String::from("{\"inspect\":\"control\",\"received\":");
    write_json_frame(&mut out, received);
    out.push_str(",\"sent\":");
    write_json_frame(&mut out, sent);
    out.push('}');
    out
}

fn write_json_frame(out: &mut String, frame: Option<&FrameRecord>) {
    match frame {
        Some(frame) => frame.write_json(out),
        None => out.push_str("null"),
    }
}

/// The lines of an HTTP head, without the empty line that ends it.
fn head_lines(head: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(head)
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_string())
        .filter(|line| !line.is_empty())
        .collect()
}

fn write_json_lines(out: &mut String, head: &[u8]) {
    out.push('[');
    for (i, line) in head_lines(head).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, line);
    }
    out.push(']');
}

fn write_json_option(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => write_json_string(out, text),
        None => out.push_str("null"),
    }
}

/// Appends `text` as a JSON string (RFC 8259 §7): quotes, backslashes and every control
/// character are escaped, so any text, from any peer, yields valid JSON.
pub fn write_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7F}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Text for a trace line: one line, whatever the peer sent. Quotes, backslashes and
/// control characters are escaped as in Rust string literals.
fn escape_trace(text: &str) -> String {
    text.chars().flat_map(char::escape_debug).collect()
}

/// Bytes as spaced lowercase hex: `81 85 37 fa`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn hex_compact(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn opcode_name(opcode: u8) -> &'static str {
    match Opcode::from_wire(opcode) {
        Some(Opcode::Continuation) => "continuation",
        Some(Opcode::Text) => "text",
        Some(Opcode::Binary) => "binary",
        Some(Opcode::Close) => "close",
        Some(Opcode::Ping) => "ping",
        Some(Opcode::Pong) => "pong",
        None => "reserved",
    }
}

fn length_name(format: LengthFormat) -> &'static str {
    match format {
        LengthFormat::Bits7 => "7-bit",
        LengthFormat::Bits16 => "16-bit",
        LengthFormat::Bits64 => "64-bit",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    /// The RFC 6455 §5.7 masked "Hello", as its record comes out of the protocol.
    fn masked_hello() -> FrameRecord {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let Ok(Status::Complete((header, len))) = FrameHeader::parse_client(&bytes) else {
            panic!("the RFC example parses");
        };
        let mut record = FrameRecord::received(&header);
        record.on_wire.extend(&bytes[len..]);
        record.payload.extend(b"Hello");
        record
    }

    #[test]
    fn traces_the_rfc_hello_frame() {
        assert_eq!(
            masked_hello().trace_line(),
            "< text fin mask=37fa213d len=5 (7-bit); header 81 85 37 fa 21 3d; payload \"Hello\""
        );
        let reply = FrameRecord::sent(&[0x81, 0x11], &[b"Server got: ", b"Hello"]);
        assert_eq!(
            reply.trace_line(),
            "> text fin len=17 (7-bit); header 81 11; payload \"Server got: Hello\""
        );
    }

    #[test]
    fn describes_the_rfc_hello_frame_in_json() {
        let mut json = String::new();
        masked_hello().write_json(&mut json);
        assert_eq!(
            json,
            "{\"direction\":\"received\",\"header\":\"81 85 37 fa 21 3d\",\"fin\":true,\
             \"rsv1\":false,\"rsv2\":false,\"rsv3\":false,\"opcode\":1,\"opcodeName\":\"text\",\
             \"mask\":true,\"maskingKey\":\"37 fa 21 3d\",\"payloadLength\":5,\
             \"lengthEncoding\":\"7-bit\",\"payloadMasked\":\"7f 9f 4d 51 58\",\
             \"payloadHex\":\"48 65 6c 6c 6f\",\"payloadText\":\"Hello\",\"more\":0,\
             \"closeCode\":null,\"closeReason\":null}"
        );
    }

    #[test]
    fn escapes_every_control_character_quote_and_backslash() {
        let text: String = (0u8..0x20)
            .map(char::from)
            .chain(['"', '\\', '\u{7F}', 'é', '\u{2028}'])
            .collect();
        let mut json = String::new();
        write_json_string(&mut json, &text);
        assert!(json.chars().all(|c| u32::from(c) >= 0x20 && c != '\u{7F}'));
        assert!(json.starts_with("\"\\u0000\\u0001"));
        assert!(json.contains("\\t\\n\\u000b\\u000c\\r"));
        assert!(json.ends_with("\\u001f\\\"\\\\\\u007fé\u{2028}\""));
        let trace = escape_trace(&text);
        assert!(!trace.chars().any(char::is_control), "{trace}");
    }

    #[test]
    fn binary_and_invalid_utf8_show_as_hex() {
        let binary = FrameRecord::sent(&[0x82, 0x03], &[&[0xff, 0x00, 0x80]]);
        assert!(binary.trace_line().ends_with("; payload ff 00 80"));
        let mut json = String::new();
        binary.write_json(&mut json);
        assert!(json.contains("\"payloadHex\":\"ff 00 80\",\"payloadText\":null"));
        // A text frame's preview may end inside a code point: it shows as U+FFFD.
        let text = FrameRecord::sent(&[0x81, 0x02], &[&[0xe2, 0x82]]);
        assert!(text.trace_line().ends_with("payload \"\u{FFFD}\""));
    }

    #[test]
    fn keeps_only_the_first_64_payload_bytes() {
        let long = vec![b'a'; 70_000];
        let mut header = Vec::new();
        crate::frame::encode_header(&mut header, Opcode::Text, long.len(), None);
        let record = FrameRecord::sent(&header, &[b"Server got: ", &long]);
        assert_eq!(record.payload.as_slice().len(), PREVIEW);
        assert_eq!(record.payload_len, 70_012);
        assert_eq!(record.more(), 70_012 - 64);
        assert!(record.trace_line().ends_with(" (+69948 more bytes)"));
        assert_eq!(record.length_format(), LengthFormat::Bits64);
    }

    #[test]
    fn names_each_length_encoding() {
        for (len, name, header) in [
            (125, "7-bit", "81 7d"),
            (126, "16-bit", "81 7e 00 7e"),
            (65_536, "64-bit", "81 7f 00 00 00 00 00 01 00 00"),
        ] {
            let mut bytes = Vec::new();
            crate::frame::encode_header(&mut bytes, Opcode::Text, len, None);
            let record = FrameRecord::sent(&bytes, &[&vec![b'x'; len]]);
            let line = record.trace_line();
            assert!(
                line.contains(&format!("len={len} ({name}); header {header};")),
                "{line}"
            );
        }
    }

    #[test]
    fn traces_a_close_with_its_code_and_reason() {
        let close = FrameRecord::sent(&[0x88, 0x05], &[&[0x03, 0xe8, b'b', b'y', b'e']]);
        assert_eq!(
            close.trace_line(),
            "> close fin len=5 (7-bit); header 88 05; close 1000; payload \"bye\""
        );
        let mut json = String::new();
        close.write_json(&mut json);
        assert!(
            json.ends_with("\"closeCode\":1000,\"closeReason\":\"bye\"}"),
            "{json}"
        );
    }

    #[test]
    fn traces_a_failure_with_its_rule_and_bytes() {
        let failure = Record::Failure(ProtocolError::Unmasked, Preview::of(&[0x81, 0x05]));
        assert_eq!(
            failure.trace_line(),
            "! failed: client frame not masked, breaking RFC 6455 §5.1: a client MUST mask \
             every frame it sends; offending bytes 81 05; close 1002 sent"
        );
    }

    #[test]
    fn traces_the_handshake_steps_of_the_rfc_example() {
        let steps = AcceptSteps::new("dGhlIHNhbXBsZSBub25jZQ==");
        let lines = accept_trace(&steps);
        assert_eq!(
            lines[2],
            "handshake SHA-1 b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea"
        );
        assert_eq!(lines[3], "handshake accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let head = head_trace(
            Direction::Received,
            b"GET / HTTP/1.1\r\nHost: \x1b[31m\r\n\r\n",
        );
        assert_eq!(head, ["http < GET / HTTP/1.1", "http < Host: \\u{1b}[31m"]);
    }
}
