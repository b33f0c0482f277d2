//! What pure-ws shows of the protocol: the records of `record` rendered as one trace line
//! each (`--trace`) and as the JSON of the page's frame inspector (the `pure-ws.inspect`
//! subprotocol), and the inspector's glue: which messages go to the page, and where in
//! what the server sends.

use std::fmt::Write as _;

use crate::frame::{self, LengthFormat, Opcode};
use crate::handshake::AcceptSteps;
use crate::protocol::{MessageKind, Protocol};
use crate::record::{Direction, Failure, FrameRecord, Record};

/// The subprotocol a client offers to get a JSON description of its frames.
pub const SUBPROTOCOL: &str = "pure-ws.inspect";

/// The payload preview as text, for frames whose payload is text: text and continuation
/// frames (a continuation may belong to a text message) and close reasons. A code point
/// cut by the preview's end shows as U+FFFD.
fn preview_text(frame: &FrameRecord) -> Option<String> {
    let preview = frame.payload.as_slice();
    match Opcode::from_wire(frame.opcode()) {
        Some(Opcode::Text | Opcode::Continuation) => {
            Some(String::from_utf8_lossy(preview).into_owned())
        }
        Some(Opcode::Close) => {
            Some(String::from_utf8_lossy(preview.get(2..).unwrap_or(&[])).into_owned())
        }
        _ => None,
    }
}

/// One line for a frame: `<` received or `>` sent, the opcode, FIN, any RSV bits, MASK and
/// its key, the length and its encoding, the header bytes, and the payload preview.
pub fn frame_line(frame: &FrameRecord) -> String {
    let arrow = match frame.direction {
        Direction::Received => '<',
        Direction::Sent => '>',
    };
    let mut line = format!("{arrow} {}", opcode_name(frame.opcode()));
    line.push_str(if frame.fin() { " fin" } else { " not-fin" });
    if frame.rsv() != 0 {
        let _ = write!(line, " rsv={:03b}", frame.rsv());
    }
    if let Some(key) = frame.mask() {
        let _ = write!(line, " mask={}", hex_compact(key));
    }
    let _ = write!(
        line,
        " len={} ({}); header {}",
        frame.payload_len,
        length_name(frame.length_format()),
        hex(frame.header())
    );
    if let Some(code) = frame.close_code() {
        let _ = write!(line, "; close {code}");
    }
    match preview_text(frame) {
        Some(text) if text.is_empty() && frame.opcode() == 0x8 => {}
        Some(text) => {
            let _ = write!(line, "; payload \"{}\"", escape_trace(&text));
        }
        None if frame.payload_len > 0 => {
            let _ = write!(line, "; payload {}", hex(frame.payload.as_slice()));
        }
        None => {}
    }
    if frame.more() > 0 {
        let _ = write!(line, " (+{} more bytes)", frame.more());
    }
    line
}

/// Appends the frame as a JSON object (the fields the README's protocol section lists).
pub fn write_frame_json(out: &mut String, frame: &FrameRecord) {
    let direction = match frame.direction {
        Direction::Received => "received",
        Direction::Sent => "sent",
    };
    let first = frame.first();
    let _ = write!(
        out,
        "{{\"direction\":\"{direction}\",\"header\":\"{}\",\"fin\":{},\"rsv1\":{},\
         \"rsv2\":{},\"rsv3\":{},\"opcode\":{},\"opcodeName\":\"{}\",\"mask\":{},",
        hex(frame.header()),
        frame.fin(),
        first & 0x40 != 0,
        first & 0x20 != 0,
        first & 0x10 != 0,
        frame.opcode(),
        opcode_name(frame.opcode()),
        frame.mask().is_some(),
    );
    out.push_str("\"maskingKey\":");
    match frame.mask() {
        Some(key) => write_json_string(out, &hex(key)),
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"payloadLength\":{},\"lengthEncoding\":\"{}\",\"payloadMasked\":\"{}\",\
         \"payloadHex\":\"{}\",\"payloadText\":",
        frame.payload_len,
        length_name(frame.length_format()),
        hex(frame.on_wire.as_slice()),
        hex(frame.payload.as_slice()),
    );
    write_json_option(out, preview_text(frame).as_deref());
    let _ = write!(out, ",\"more\":{},\"closeCode\":", frame.more());
    match frame.close_code() {
        Some(code) => {
            let _ = write!(out, "{code}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"closeReason\":");
    let reason = frame.close_code().and(preview_text(frame));
    write_json_option(out, reason.as_deref());
    out.push('}');
}

/// The trace line of a record.
pub fn record_line(record: &Record) -> String {
    match record {
        Record::Frame(frame) => frame_line(frame),
        Record::Failure(failure) => failure_line(failure),
    }
}

/// The line of a failure: the rule broken, and the bytes that broke it.
fn failure_line(failure: &Failure) -> String {
    let err = failure.error;
    format!(
        "! failed: {err}, breaking RFC 6455 {}; offending bytes {}; close {} sent",
        err.rule(),
        hex(failure.bytes.as_slice()),
        err.close_code()
    )
}

/// The frame inspector of one connection: the frames of the data message in progress, for
/// the message that describes it to the page.
#[derive(Debug, Default)]
pub struct Inspector {
    frames: Vec<FrameRecord>,
    /// Frames past the first [`Inspector::FRAMES`] of a message, counted, not kept.
    omitted: u64,
}

impl Inspector {
    /// The most frames of one message an inspector message describes.
    const FRAMES: usize = 16;

    /// Files what the protocol recorded: data frames wait for their message; a control
    /// frame the peer sent becomes an inspector message at once, with the protocol's
    /// answer to it (the next record, when it is a frame sent in reply), and so does a
    /// control frame the server sends on its own (a keepalive ping, a 1001 close).
    pub fn control_messages(&mut self, records: &[Record]) -> Vec<String> {
        let mut messages = Vec::new();
        let mut records = records.iter().peekable();
        while let Some(record) = records.next() {
            let Record::Frame(frame) = record else {
                continue;
            };
            match frame.direction {
                Direction::Received if frame.is_control() => {
                    let reply = records.next_if(|next| {
                        matches!(next, Record::Frame(reply) if reply.direction == Direction::Sent)
                    });
                    let reply = match reply {
                        Some(Record::Frame(reply)) => Some(reply),
                        _ => None,
                    };
                    messages.push(control_json(Some(frame), reply));
                }
                Direction::Received if self.frames.len() < Inspector::FRAMES => {
                    self.frames.push(*frame);
                }
                Direction::Received => self.omitted += 1,
                Direction::Sent => messages.push(control_json(None, Some(frame))),
            }
        }
        messages
    }

    /// Puts `messages` into `out` at `at`, ahead of the answers the protocol queued there.
    ///
    /// RFC 6455 §5.5.1 lets an endpoint "delay sending a Close frame until its current
    /// message is sent", and a close reply is the only answer that needs the room. The
    /// caller vouches that none of our close frames lies before `at`: §5.5.1 also says
    /// "After sending a Close frame, the endpoint MUST NOT send any further data frames".
    /// So these data frames are built here rather than through [`Protocol::send_header`],
    /// which refuses once a close frame is queued anywhere.
    pub fn insert_before(messages: &[String], at: usize, out: &mut Vec<u8>) {
        let answers = out.split_off(at);
        for message in messages {
            frame::encode_frame(out, Opcode::Text, message.as_bytes());
        }
        out.extend_from_slice(&answers);
    }

    /// Queues the inspector message for the data message just received, and its echo,
    /// `sent`, whose header lies in `out` from `start`: ahead of the echo it describes.
    pub fn describe_reply(
        &mut self,
        protocol: &Protocol,
        sent: &FrameRecord,
        start: usize,
        out: &mut Vec<u8>,
    ) {
        let json = message_json(&self.frames, self.omitted, sent);
        self.frames.clear();
        self.omitted = 0;
        let echo_header = out.split_off(start);
        if protocol
            .send_header(MessageKind::Text, json.len(), out)
            .is_ok()
        {
            out.extend_from_slice(json.as_bytes());
        }
        out.extend_from_slice(&echo_header);
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
        write_frame_json(&mut out, frame);
    }
    let _ = write!(out, "],\"omitted\":{omitted},\"sent\":");
    write_frame_json(&mut out, sent);
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
        Some(frame) => write_frame_json(out, frame),
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
    use crate::error::ProtocolError;
    use crate::frame::FrameHeader;
    use crate::record::{Preview, PREVIEW};
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
            frame_line(&masked_hello()),
            "< text fin mask=37fa213d len=5 (7-bit); header 81 85 37 fa 21 3d; payload \"Hello\""
        );
        let reply = FrameRecord::sent(&[0x81, 0x11], &[b"Server got: ", b"Hello"]);
        assert_eq!(
            frame_line(&reply),
            "> text fin len=17 (7-bit); header 81 11; payload \"Server got: Hello\""
        );
    }

    #[test]
    fn describes_the_rfc_hello_frame_in_json() {
        let mut json = String::new();
        write_frame_json(&mut json, &masked_hello());
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
        assert!(frame_line(&binary).ends_with("; payload ff 00 80"));
        let mut json = String::new();
        write_frame_json(&mut json, &binary);
        assert!(json.contains("\"payloadHex\":\"ff 00 80\",\"payloadText\":null"));
        // A text frame's preview may end inside a code point: it shows as U+FFFD.
        let text = FrameRecord::sent(&[0x81, 0x02], &[&[0xe2, 0x82]]);
        assert!(frame_line(&text).ends_with("payload \"\u{FFFD}\""));
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
        assert!(frame_line(&record).ends_with(" (+69948 more bytes)"));
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
            let line = frame_line(&record);
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
            frame_line(&close),
            "> close fin len=5 (7-bit); header 88 05; close 1000; payload \"bye\""
        );
        let mut json = String::new();
        write_frame_json(&mut json, &close);
        assert!(
            json.ends_with("\"closeCode\":1000,\"closeReason\":\"bye\"}"),
            "{json}"
        );
    }

    #[test]
    fn traces_a_failure_with_its_rule_and_bytes() {
        let failure = Record::Failure(Failure {
            error: ProtocolError::Unmasked,
            bytes: Preview::of(&[0x81, 0x05]),
            place: crate::record::Place::Header,
        });
        assert_eq!(
            record_line(&failure),
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
