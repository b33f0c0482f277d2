//! The page's frame inspector (the `pure-ws.inspect` subprotocol): the records of `record`
//! as JSON for the page, the few commands the page may give, and the glue that puts the
//! inspector's messages on the wire ahead of what they describe.
//!
//! Every inspector message is a text message of the server's own. The server describes
//! each of its frames before sending it, and never sends one after its close frame.

use std::fmt::Write as _;

use crate::echo::Reply;
use crate::frame::{self, Opcode};
use crate::handshake::AcceptSteps;
use crate::message::{Message, MessageKind, Part};
use crate::protocol::Protocol;
use crate::record::{Direction, FrameRecord, Record};
use crate::trace::{self, hex, length_name, opcode_name, printable, text_part};

/// The subprotocol a client offers to get a JSON description of its frames.
pub const SUBPROTOCOL: &str = "pure-ws.inspect";

/// What the page may ask of the server, as a text message on the inspector's subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `{"command":"ping"}`: the server pings; the browser answers with a pong.
    Ping,
    /// `{"command":"fragment"}`: the next echo comes as three frames: the first, a
    /// continuation, and the final continuation.
    Fragment,
    /// `{"command":"close"}`: the server starts the close handshake.
    Close,
}

impl Command {
    /// The command a message is, if it is exactly one of the three.
    pub fn of(message: &Message) -> Option<Command> {
        match message {
            Message::Text(r#"{"command":"ping"}"#) => Some(Command::Ping),
            Message::Text(r#"{"command":"fragment"}"#) => Some(Command::Fragment),
            Message::Text(r#"{"command":"close"}"#) => Some(Command::Close),
            _ => None,
        }
    }

    /// Its name in the JSON.
    fn name(self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Fragment => "fragment",
            Command::Close => "close",
        }
    }
}

/// The payload of the ping the page asks for.
pub const PAGE_PING: &[u8] = b"ping at the page's request";

/// The reason in the close frame the page asks for.
pub const PAGE_CLOSE: &str = "closed at the page's request";

/// Appends the frame as a JSON object (the fields the README lists).
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
    let text = text_part(frame).and_then(printable);
    write_json_option(out, text);
    let _ = write!(out, ",\"more\":{},\"closeCode\":", frame.more());
    write_json_number(out, frame.close_code().map(u64::from));
    out.push_str(",\"closeReason\":");
    write_json_option(out, frame.close_code().and(text));
    out.push_str(",\"reads\":");
    write_json_number(out, frame.arrival.map(|a| u64::from(a.reads)));
    out.push_str(",\"sharedRead\":");
    match frame.arrival {
        Some(arrival) => {
            let _ = write!(out, "{}", arrival.shared);
        }
        None => out.push_str("null"),
    }
    out.push('}');
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
/// more), and the frames of the echo, which follow it on the wire.
pub fn message_json(received: &[FrameRecord], omitted: u64, sent: &[FrameRecord]) -> String {
    let mut out = String::from("{\"inspect\":\"message\",\"received\":");
    write_json_frames(&mut out, received);
    let _ = write!(out, ",\"omitted\":{omitted},\"sent\":");
    write_json_frames(&mut out, sent);
    out.push('}');
    out
}

/// The inspector's message for a command the page gave: its name and the frames that
/// carried it in. What the command does follows it on the wire.
pub fn command_json(command: Command, received: &[FrameRecord], omitted: u64) -> String {
    let mut out = format!(
        "{{\"inspect\":\"command\",\"command\":\"{}\",\"received\":",
        command.name()
    );
    write_json_frames(&mut out, received);
    let _ = write!(out, ",\"omitted\":{omitted}}}");
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

/// The frame inspector of one connection: the frames of the data message in progress, for
/// the message that describes it to the page, and what the page asked for.
#[derive(Debug, Default)]
pub struct Inspector {
    frames: Vec<FrameRecord>,
    /// Frames past the first [`Inspector::FRAMES`] of a message, counted, not kept.
    omitted: u64,
    /// The page asked for the next echo in three frames.
    fragment_next: bool,
}

impl Inspector {
    /// The most frames of one message an inspector message describes.
    const FRAMES: usize = 16;

    /// Files what the protocol recorded: data frames wait for their message; a control
    /// frame the peer sent becomes an inspector message at once, with the protocol's
    /// answer to it (the next record, when it is a frame sent in reply), and so does a
    /// control frame the server sends on its own (a ping, a close).
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

    /// The frames of the message that just ended, and how many more were omitted: the
    /// next message starts with none.
    fn take_frames(&mut self) -> (Vec<FrameRecord>, u64) {
        (
            std::mem::take(&mut self.frames),
            std::mem::take(&mut self.omitted),
        )
    }

    /// Puts `messages` into `out` at `at`, ahead of the answers the protocol queued there,
    /// and returns their frames, for the trace.
    ///
    /// RFC 6455 §5.5.1 lets an endpoint "delay sending a Close frame until its current
    /// message is sent", and a close reply is the only answer that needs the room. The
    /// caller vouches that none of our close frames lies before `at`: §5.5.1 also says
    /// "After sending a Close frame, the endpoint MUST NOT send any further data frames".
    /// So these data frames are built here rather than through [`Protocol::send_header`],
    /// which refuses once a close frame is queued anywhere.
    pub fn insert_before(messages: &[String], at: usize, out: &mut Vec<u8>) -> Vec<FrameRecord> {
        let answers = out.split_off(at);
        let mut frames = Vec::new();
        for message in messages {
            let start = out.len();
            frame::encode_frame(out, Opcode::Text, message.as_bytes());
            let header = &out[start..out.len() - message.len()];
            frames.push(FrameRecord::sent(header, &[message.as_bytes()]));
        }
        out.extend_from_slice(&answers);
        frames
    }

    /// Queues the inspector's message for a command the page gave, describing the frames
    /// that carried it, and notes a request for a fragmented echo. Returns the message's
    /// frame, for the trace.
    pub fn acknowledge(
        &mut self,
        command: Command,
        protocol: &Protocol,
        out: &mut Vec<u8>,
    ) -> Option<FrameRecord> {
        self.fragment_next |= command == Command::Fragment;
        let (frames, omitted) = self.take_frames();
        queue_message(protocol, &command_json(command, &frames, omitted), out)
    }

    /// Queues `reply`, the echo of the message just received, with the inspector's message
    /// that describes both ahead of it: in one frame, or in three when the page asked.
    /// Returns, for the trace, the inspector message's frame and the echo's frames; nothing
    /// once a close frame is queued.
    pub fn echo(
        &mut self,
        protocol: &Protocol,
        reply: &Reply,
        out: &mut Vec<u8>,
    ) -> (Option<FrameRecord>, Vec<FrameRecord>) {
        let kind = reply.kind;
        let mut echo = Vec::new();
        let mut sent = Vec::new();
        let parts: &[Part] = match std::mem::take(&mut self.fragment_next) {
            true => &[Part::First, Part::Middle, Part::Last],
            false => &[Part::Whole],
        };
        let payload = [reply.prefix, reply.payload].concat();
        // Text is cut between characters, so each fragment's text can be shown alone (the
        // RFC allows any cut; a reader of the cards is better served by this one).
        let cut = |i: usize| {
            let mut at = payload.len() * i / parts.len();
            while kind == MessageKind::Text && at < payload.len() && payload[at] & 0xC0 == 0x80 {
                at += 1;
            }
            at
        };
        for (i, part) in parts.iter().enumerate() {
            let piece = &payload[cut(i)..cut(i + 1)];
            let start = echo.len();
            if protocol
                .send_part_header(kind, *part, piece.len(), &mut echo)
                .is_err()
            {
                return (None, Vec::new());
            }
            sent.push(FrameRecord::sent(&echo[start..], &[piece]));
            echo.extend_from_slice(piece);
        }
        let (frames, omitted) = self.take_frames();
        let described = queue_message(protocol, &message_json(&frames, omitted, &sent), out);
        out.extend_from_slice(&echo);
        (described, sent)
    }
}

/// Queues one inspector message in `out` through the protocol, which refuses once our
/// close frame is queued. Returns its frame, for the trace.
fn queue_message(protocol: &Protocol, json: &str, out: &mut Vec<u8>) -> Option<FrameRecord> {
    let start = out.len();
    protocol
        .send_header(MessageKind::Text, json.len(), out)
        .ok()?;
    let frame = FrameRecord::sent(&out[start..], &[json.as_bytes()]);
    out.extend_from_slice(json.as_bytes());
    Some(frame)
}

fn write_json_frame(out: &mut String, frame: Option<&FrameRecord>) {
    match frame {
        Some(frame) => write_frame_json(out, frame),
        None => out.push_str("null"),
    }
}

fn write_json_frames(out: &mut String, frames: &[FrameRecord]) {
    out.push('[');
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_frame_json(out, frame);
    }
    out.push(']');
}

fn write_json_lines(out: &mut String, head: &[u8]) {
    out.push('[');
    for (i, line) in trace::head_lines(head).iter().enumerate() {
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

fn write_json_number(out: &mut String, number: Option<u64>) {
    match number {
        Some(number) => {
            let _ = write!(out, "{number}");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{fixtures, Arrival};

    /// The RFC 6455 §5.7 masked "Hello", as it arrived here.
    fn masked_hello() -> FrameRecord {
        fixtures::masked_hello(Arrival {
            reads: 2,
            shared: true,
        })
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
             \"closeCode\":null,\"closeReason\":null,\"reads\":2,\"sharedRead\":true}"
        );
    }

    #[test]
    fn escapes_every_control_character_quote_and_backslash() {
        let text: String = (0u8..0x20)
            .map(char::from)
            .chain(['"', '\\', '\u{7F}', '\u{e9}', '\u{2028}'])
            .collect();
        let mut json = String::new();
        write_json_string(&mut json, &text);
        assert!(json.chars().all(|c| u32::from(c) >= 0x20 && c != '\u{7F}'));
        assert!(json.starts_with("\"\\u0000\\u0001"));
        assert!(json.contains("\\t\\n\\u000b\\u000c\\r"));
        assert!(json.ends_with("\\u001f\\\"\\\\\\u007f\u{e9}\u{2028}\""));
    }

    #[test]
    fn binary_shows_as_hex_and_text_that_is_not_utf8_has_no_text() {
        let mut json = String::new();
        write_frame_json(
            &mut json,
            &FrameRecord::sent(&[0x82, 0x03], &[&[0xff, 0x00, 0x80]]),
        );
        assert!(json.contains("\"payloadHex\":\"ff 00 80\",\"payloadText\":null"));
        let mut json = String::new();
        let bad = FrameRecord::sent(&[0x81, 0x06], &[b"ab\xc3(cd"]);
        write_frame_json(&mut json, &bad);
        assert!(json.contains("\"payloadText\":null"), "{json}");
        let mut json = String::new();
        write_frame_json(
            &mut json,
            &FrameRecord::sent(&[0x89, 0x09], &[b"keepalive"]),
        );
        assert!(json.contains("\"payloadText\":\"keepalive\""), "{json}");
    }

    #[test]
    fn a_close_frame_has_its_code_and_reason() {
        let close = FrameRecord::sent(&[0x88, 0x05], &[&[0x03, 0xe8, b'b', b'y', b'e']]);
        let mut json = String::new();
        write_frame_json(&mut json, &close);
        assert!(
            json.contains("\"closeCode\":1000,\"closeReason\":\"bye\""),
            "{json}"
        );
        assert!(
            json.ends_with("\"reads\":null,\"sharedRead\":null}"),
            "{json}"
        );
    }

    #[test]
    fn commands_are_exactly_the_three_messages() {
        assert_eq!(
            Command::of(&Message::Text(r#"{"command":"ping"}"#)),
            Some(Command::Ping)
        );
        assert_eq!(
            Command::of(&Message::Text(r#"{"command":"close"}"#)),
            Some(Command::Close)
        );
        for other in [r#"{"command": "ping"}"#, "ping", r#"{"command":"PING"}"#] {
            assert_eq!(Command::of(&Message::Text(other)), None, "{other}");
        }
        assert_eq!(
            Command::of(&Message::Binary(br#"{"command":"ping"}"#)),
            None
        );
    }

    #[test]
    fn a_fragmented_echo_is_three_frames_described_ahead_of_them() {
        let protocol = Protocol::new(100);
        let mut inspector = Inspector::default();
        let mut out = Vec::new();
        assert!(inspector
            .acknowledge(Command::Fragment, &protocol, &mut out)
            .is_some());
        out.clear();
        let reply = Reply {
            kind: MessageKind::Text,
            prefix: b"Server got: ",
            payload: b"abc",
        };
        let (described, frames) = inspector.echo(&protocol, &reply, &mut out);
        let described = described.expect("described");
        assert_eq!(described.first(), 0x81);
        let heads: Vec<u8> = frames.iter().map(FrameRecord::first).collect();
        assert_eq!(heads, [0x01, 0x00, 0x80]);
        let json_len = described.payload_len as usize;
        assert!(out.ends_with(b"\x01\x05Serve\x00\x05r got\x80\x05: abc"));
        assert_eq!(out.len(), described.header().len() + json_len + 3 * 7);
        // Text is cut between characters: "é" is two bytes.
        out.clear();
        inspector.acknowledge(Command::Fragment, &protocol, &mut out);
        let accented = Reply {
            kind: MessageKind::Text,
            prefix: b"a",
            payload: "\u{e9}\u{e9}\u{e9}".as_bytes(),
        };
        let (_, frames) = inspector.echo(&protocol, &accented, &mut out);
        // 7 bytes cut by thirds at 2 and 4, both inside an "é": moved to 3 and 5.
        let lengths: Vec<u64> = frames.iter().map(|f| f.payload_len).collect();
        assert_eq!(lengths, [3, 2, 2]);
        // The next echo is whole again.
        out.clear();
        let (_, frames) = inspector.echo(&protocol, &reply, &mut out);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].first(), 0x81);
    }
}
