//! The trace (`--trace`): the records of `record`, and the handshake, rendered as one line
//! each, with the reason where a rule was broken. `inspect` shares its way of showing a
//! payload, so the trace and the page never disagree.

use std::fmt::Write as _;

use crate::assembly::utf8_width;
use crate::error::ProtocolError;
use crate::frame::{LengthFormat, Opcode};
use crate::handshake::AcceptSteps;
use crate::record::{Direction, Failure, FrameRecord, Place, ReadRecord, Record, Span};

/// A payload as text, if it is text a person can read: valid UTF-8 (a code point cut by
/// the end of the bytes kept is allowed) with no control character but tab, CR and LF.
/// Otherwise `None`, and it is shown in hex. The one rule for every payload shown, in the
/// trace and on the page.
pub fn printable(bytes: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) if err.error_len().is_none() => {
            std::str::from_utf8(&bytes[..err.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let readable = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'));
    readable.then_some(text)
}

/// The part of a frame's payload preview that is meant as text: all of it, but for a close
/// frame the reason after the code. Binary and reserved frames have none.
pub fn text_part(frame: &FrameRecord) -> Option<&[u8]> {
    let preview = frame.payload.as_slice();
    match Opcode::from_wire(frame.opcode())? {
        Opcode::Binary => None,
        Opcode::Close => Some(preview.get(2..).unwrap_or(&[])),
        Opcode::Text | Opcode::Continuation | Opcode::Ping | Opcode::Pong => Some(preview),
    }
}

/// `<` for what the peer sent, `>` for what the server sent.
fn arrow(direction: Direction) -> char {
    match direction {
        Direction::Received => '<',
        Direction::Sent => '>',
    }
}

/// The start of a frame's line: `<` received or `>` sent, the opcode, FIN, any RSV bits,
/// MASK and its key, the length and its encoding, and the header bytes.
fn frame_head(frame: &FrameRecord) -> String {
    let mut line = format!("{} {}", arrow(frame.direction), opcode_name(frame.opcode()));
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
    line
}

/// One line for a frame: its head (`frame_head`), then the close code, the payload preview (text
/// when [`printable`], else hex), and how the frame arrived when it took more than one
/// read or shared one.
pub fn frame_line(frame: &FrameRecord) -> String {
    let mut line = frame_head(frame);
    if let Some(code) = frame.close_code() {
        let _ = write!(line, "; close {code}");
    }
    let text = text_part(frame);
    let shown = text.unwrap_or_else(|| frame.payload.as_slice());
    match text.and_then(printable) {
        Some("") if frame.opcode() == 0x8 => {}
        Some(text) => {
            let _ = write!(line, "; payload \"{}\"", escape_trace(text));
        }
        None if !shown.is_empty() => {
            let _ = write!(line, "; payload {}", hex(shown));
        }
        None => {}
    }
    if frame.more() > 0 {
        let _ = write!(line, " (+{} more bytes)", frame.more());
    }
    if let Some(arrival) = frame.arrival {
        if arrival.reads > 1 {
            let _ = write!(line, "; arrived in {} reads", arrival.reads);
        }
        if arrival.shared {
            line.push_str("; shared a read with another frame");
        }
    }
    line
}

/// The line for a text message of the frame inspector's own (JSON for the page): its
/// frame, and its length, not its content.
pub fn inspector_line(frame: &FrameRecord) -> String {
    format!(
        "{}; the inspector's own message, {} bytes",
        frame_head(frame),
        frame.payload_len
    )
}

/// The trace line of a record.
pub fn record_line(record: &Record) -> String {
    match record {
        Record::Read(read) => read_line(read),
        Record::Frame(frame) => frame_line(frame),
        Record::Failure(failure) => failure_line(failure),
    }
}

/// One line per read: how many bytes, and what they held, as in `read 37 bytes: 2 whole
/// frames and the first 5 bytes of a third` or `read 1 byte: header byte 2 of 6`.
pub fn read_line(read: &ReadRecord) -> String {
    let bytes = plural(read.len as u64, "byte");
    let mut parts = Vec::new();
    if let Some(span) = &read.continued {
        parts.push(continued_text(span));
    }
    if read.whole > 0 {
        parts.push(plural(u64::from(read.whole), "whole frame"));
    }
    if let Some(span) = &read.begun {
        let before = u32::from(read.continued.is_some()) + read.whole;
        parts.push(begun_text(span, before + 1));
    }
    if read.unparsed > 0 {
        let unparsed = plural(read.unparsed as u64, "byte");
        parts.push(match read.after_end {
            true => format!("{unparsed} not parsed: the connection reads no more"),
            false => format!("{unparsed} from a header that breaks a rule"),
        });
    }
    let head = if read.with_head {
        format!("{bytes} came in with the request head")
    } else {
        format!("read {bytes}")
    };
    format!("{head}: {}", join(&parts))
}

/// A part of a frame begun in an earlier read.
fn continued_text(span: &Span) -> String {
    let (first, last) = (span.from + 1, span.from + span.bytes);
    let total = span.total().map_or(String::new(), |t| format!(" of {t}"));
    match (span.header_len, span.payload_len) {
        (Some(h), _) if last <= h as u64 => positions("header byte", first, last, h as u64),
        (Some(h), Some(p)) if span.from >= h as u64 => {
            let bytes = positions("payload byte", first - h as u64, last - h as u64, p);
            match span.ends_frame() {
                true => format!("{bytes}, the frame's last"),
                false => bytes,
            }
        }
        _ if span.ends_frame() => {
            format!("the last {} of a frame{total}", plural(span.bytes, "byte"))
        }
        _ => format!("bytes {first}–{last} of a frame{total}"),
    }
}

/// The first part of a frame that the read ends inside; `ordinal` counts the frames the
/// read held, this one included.
fn begun_text(span: &Span, ordinal: u32) -> String {
    let frame = match ordinal {
        1 => "a frame".to_string(),
        n => ordinal_word(n).map_or(format!("frame {n}"), |word| format!("a {word}")),
    };
    let total = span.total().map_or(String::new(), |t| format!(" of {t}"));
    match span.bytes {
        1 => format!("the first byte of {frame}{total}"),
        n => format!("the first {n} bytes of {frame}{total}"),
    }
}

/// `header byte 2 of 6`, or `payload bytes 3–9 of 16`.
fn positions(what: &str, first: u64, last: u64, of: u64) -> String {
    match first == last {
        true => format!("{what} {first} of {of}"),
        false => format!("{what}s {first}–{last} of {of}"),
    }
}

/// The line of a failure: the rule broken, the bytes that broke it and what was wrong with
/// them, the close frame that reports it, and why the rule exists where a learner asks.
pub fn failure_line(failure: &Failure) -> String {
    let err = failure.error;
    let mut line = format!(
        "! failed: {err}, breaking RFC 6455 {}; {}; close {} sent",
        err.rule(),
        explain(failure),
        err.close_code()
    );
    if let Some(why) = why(err) {
        let _ = write!(line, "; why: {why}");
    }
    line
}

/// Why a rule exists, for the rules a learner meets first.
pub fn why(err: ProtocolError) -> Option<&'static str> {
    match err {
        ProtocolError::Unmasked => Some(
            "a browser's script chooses what it sends, and masking with a key it cannot \
             predict keeps those bytes from looking like a request to a proxy on the way, \
             which could be tricked into caching them (§10.3)",
        ),
        ProtocolError::LengthTopBit | ProtocolError::ControlTooLong => Some(
            "a length is 7 bits up to 125, 126 then 16 bits up to 65,535, 127 then 64 bits: \
             a small frame spends 1 byte on it, a large one 9 (§5.2)",
        ),
        ProtocolError::CloseCodeNotAllowed(1005 | 1006) => Some(
            "1005 (no code came) and 1006 (the connection dropped) are what an endpoint \
             reports to its own application; no close frame can carry them (§7.4.1)",
        ),
        _ => None,
    }
}

/// What was wrong with the bytes of a failure, and where they were.
fn explain(failure: &Failure) -> String {
    let bytes = failure.bytes.as_slice();
    match (failure.error, failure.place) {
        (ProtocolError::InvalidUtf8, Place::Payload { offset, at }) => {
            explain_utf8(&bytes[at.min(bytes.len())..], offset)
        }
        (ProtocolError::ClosePayloadOneByte, _)
        | (ProtocolError::CloseCodeNotAllowed(_), _)
        | (ProtocolError::CloseReasonUtf8, _) => format!("close payload {}", hex(bytes)),
        (ProtocolError::Unmasked | ProtocolError::ControlTooLong, _) if bytes.len() >= 2 => {
            describe_second_byte(bytes[1])
        }
        (ProtocolError::LengthTopBit, _) if bytes.len() >= 10 => format!(
            "header bytes 3–10 are {}: a 64-bit length whose top bit is set",
            hex(&bytes[2..10])
        ),
        (ProtocolError::MessageTooBig { .. }, _) => format!("header {}", hex(bytes)),
        (_, _) if !bytes.is_empty() => describe_first_byte(bytes[0]),
        _ => "no bytes kept".to_string(),
    }
}

/// `header byte 1 is 09: FIN 0, RSV 000, opcode 9 (ping)`.
fn describe_first_byte(byte: u8) -> String {
    format!(
        "header byte 1 is {byte:02x}: FIN {}, RSV {:03b}, opcode {:x} ({})",
        byte >> 7,
        (byte >> 4) & 0x7,
        byte & 0x0F,
        opcode_name(byte & 0x0F)
    )
}

/// `header byte 2 is 05: MASK 0, length 5`.
fn describe_second_byte(byte: u8) -> String {
    let length = match byte & 0x7F {
        126 => "126 (a 16-bit length follows)".to_string(),
        127 => "127 (a 64-bit length follows)".to_string(),
        n => n.to_string(),
    };
    format!(
        "header byte 2 is {byte:02x}: MASK {}, length {length}",
        byte >> 7
    )
}

/// What is wrong with `bad`, the bytes from where text stopped being UTF-8, at payload
/// offset `offset`: `c3 28 at payload offset 2: c3 starts a 2-byte sequence, 28 is not a
/// continuation byte`.
fn explain_utf8(bad: &[u8], offset: u64) -> String {
    let Some(&lead) = bad.first() else {
        return format!("payload offset {offset}: the text ends inside a character");
    };
    let width = utf8_width(lead);
    let seq = &bad[..width.min(bad.len())];
    let at = format!("{} at payload offset {offset}", hex(seq));
    let second = seq.get(1).copied();
    let why = match (lead, second) {
        (0x80..=0xBF, _) => {
            format!("{lead:02x} is a continuation byte with no lead byte before it")
        }
        (0xC0 | 0xC1, _) => format!("{lead:02x} would start an overlong 2-byte sequence"),
        (0xF5..=0xFF, _) => format!("{lead:02x} is never used in UTF-8"),
        (0xE0, Some(0x80..=0x9F)) | (0xF0, Some(0x80..=0x8F)) => {
            "an overlong sequence: a shorter one holds that character".to_string()
        }
        (0xED, Some(0xA0..=0xBF)) => {
            "a UTF-16 surrogate (U+D800–U+DFFF), not a character".to_string()
        }
        (0xF4, Some(0x90..=0xBF)) => "a code point past U+10FFFF".to_string(),
        _ => match seq.iter().skip(1).find(|&&b| b & 0xC0 != 0x80) {
            Some(b) => format!(
                "{lead:02x} starts a {width}-byte sequence, {b:02x} is not a continuation byte"
            ),
            None => format!("{lead:02x} starts a {width}-byte sequence the text ends inside"),
        },
    };
    format!("{at}: {why}")
}

/// The trace lines of an HTTP head: `http <` and each line of a request as received, or
/// `http >` and each line of a response head.
pub fn head_trace(direction: Direction, head: &[u8]) -> Vec<String> {
    let arrow = arrow(direction);
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

/// The lines of an HTTP head, up to the empty line that ends it (a body after it is not
/// part of the head).
pub fn head_lines(head: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(head)
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_string())
        .take_while(|line| !line.is_empty())
        .collect()
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

/// The name of an opcode's 4 bits.
pub fn opcode_name(opcode: u8) -> &'static str {
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

/// The name of a length encoding.
pub fn length_name(format: LengthFormat) -> &'static str {
    match format {
        LengthFormat::Bits7 => "7-bit",
        LengthFormat::Bits16 => "16-bit",
        LengthFormat::Bits64 => "64-bit",
    }
}

/// `1 byte`, `2 bytes`.
fn plural(n: u64, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

/// `second` ... `tenth`.
fn ordinal_word(n: u32) -> Option<&'static str> {
    const WORDS: [&str; 9] = [
        "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    ];
    WORDS.get((n as usize).checked_sub(2)?).copied()
}

/// `a`, `a and b`, `a, b and c`.
fn join(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Opcode;
    use crate::record::{fixtures, Arrival, Preview, PREVIEW};

    /// The RFC 6455 §5.7 masked "Hello", as it arrived here.
    fn masked_hello() -> FrameRecord {
        fixtures::masked_hello(Arrival {
            reads: 1,
            shared: false,
        })
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
    fn says_how_a_frame_arrived_when_it_took_reads_or_shared_one() {
        let mut hello = masked_hello();
        hello.arrival = Some(Arrival {
            reads: 11,
            shared: true,
        });
        assert!(frame_line(&hello)
            .ends_with("payload \"Hello\"; arrived in 11 reads; shared a read with another frame"));
    }

    #[test]
    fn a_payload_is_text_when_printable_and_hex_otherwise() {
        let binary = FrameRecord::sent(&[0x82, 0x03], &[&[0xff, 0x00, 0x80]]);
        assert!(frame_line(&binary).ends_with("; payload ff 00 80"));
        let bad = FrameRecord::sent(&[0x81, 0x06], &[b"ab\xc3(cd"]);
        assert!(frame_line(&bad).ends_with("; payload 61 62 c3 28 63 64"));
        let ping = FrameRecord::sent(&[0x89, 0x09], &[b"keepalive"]);
        assert!(frame_line(&ping).ends_with("; payload \"keepalive\""));
        let escape = FrameRecord::sent(&[0x8a, 0x02], &[b"\x1b["]);
        assert!(frame_line(&escape).ends_with("; payload 1b 5b"));
        // A code point cut by the preview's end is still text.
        let cut = FrameRecord::sent(&[0x81, 0x02], &[&[b'a', 0xe2, 0x82]]);
        assert!(
            frame_line(&cut).ends_with("; payload \"a\""),
            "{}",
            frame_line(&cut)
        );
        assert_eq!(
            printable("tab\tand\nlines".as_bytes()),
            Some("tab\tand\nlines")
        );
        assert_eq!(printable(b"\x07bell"), None);
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
    }

    fn failure(error: ProtocolError, bytes: &[u8], place: Place) -> String {
        failure_line(&Failure {
            error,
            bytes: Preview::of(bytes),
            place,
        })
    }

    #[test]
    fn a_failure_names_the_rule_decodes_the_byte_and_says_why() {
        assert_eq!(
            failure(ProtocolError::Unmasked, &[0x81, 0x05], Place::Header),
            "! failed: client frame not masked, breaking RFC 6455 §5.1: a client MUST mask \
             every frame it sends; header byte 2 is 05: MASK 0, length 5; close 1002 sent; \
             why: a browser's script chooses what it sends, and masking with a key it cannot \
             predict keeps those bytes from looking like a request to a proxy on the way, \
             which could be tricked into caching them (§10.3)"
        );
        let line = failure(ProtocolError::FragmentedControl, &[0x09], Place::Header);
        assert!(
            line.contains("; header byte 1 is 09: FIN 0, RSV 000, opcode 9 (ping); close 1002"),
            "{line}"
        );
        let line = failure(ProtocolError::ControlTooLong, &[0x89, 0xfe], Place::Header);
        assert!(line.contains("header byte 2 is fe: MASK 1, length 126 (a 16-bit length follows)"));
        assert!(line.contains("why: a length is 7 bits up to 125"), "{line}");
        let line = failure(
            ProtocolError::CloseCodeNotAllowed(1005),
            &[3, 0xed],
            Place::Header,
        );
        assert!(
            line.contains("close payload 03 ed; close 1002 sent; why: 1005"),
            "{line}"
        );
    }

    #[test]
    fn invalid_utf8_is_explained_at_its_offset() {
        let at = |bytes: &[u8], at: usize, offset: u64| {
            let place = Place::Payload { offset, at };
            failure(ProtocolError::InvalidUtf8, bytes, place)
        };
        assert!(at(b"ab\xc3(cd", 2, 2).contains(
            "; c3 28 at payload offset 2: c3 starts a 2-byte sequence, 28 is not a continuation byte;"
        ));
        assert!(at(b"\x80", 0, 7).contains("80 at payload offset 7: 80 is a continuation byte"));
        assert!(at(b"\xc0\xaf", 0, 0).contains("c0 would start an overlong"));
        assert!(at(b"\xed\xa0\x80", 0, 0).contains("a UTF-16 surrogate"));
        assert!(at(b"\xf4\x90\x80\x80", 0, 0).contains("past U+10FFFF"));
        assert!(at(b"\xff", 0, 0).contains("ff is never used in UTF-8"));
        assert!(at(b"\xe2\x82", 0, 0).contains("e2 starts a 3-byte sequence the text ends inside"));
    }

    fn read(continued: Option<Span>, whole: u32, begun: Option<Span>) -> String {
        read_line(&ReadRecord {
            len: 37,
            with_head: false,
            continued,
            whole,
            begun,
            unparsed: 0,
            after_end: false,
        })
    }

    fn span(from: u64, bytes: u64, header_len: Option<usize>, payload_len: Option<u64>) -> Span {
        Span {
            from,
            bytes,
            header_len,
            payload_len,
        }
    }

    #[test]
    fn a_read_line_says_how_the_bytes_fall_into_frames() {
        assert_eq!(
            read(None, 2, Some(span(0, 5, Some(6), None))),
            "read 37 bytes: 2 whole frames and the first 5 bytes of a third"
        );
        assert_eq!(
            read(Some(span(1, 1, Some(6), None)), 0, None),
            "read 37 bytes: header byte 2 of 6"
        );
        assert_eq!(
            read(Some(span(65_536, 14, Some(14), Some(65_536))), 1, None),
            "read 37 bytes: payload bytes 65523–65536 of 65536, the frame's last and 1 whole frame"
        );
        assert_eq!(
            read(Some(span(4, 10, Some(6), Some(8))), 0, None),
            "read 37 bytes: the last 10 bytes of a frame of 14"
        );
        assert_eq!(
            read(Some(span(4096, 4096, Some(14), Some(65_536))), 0, None),
            "read 37 bytes: payload bytes 4083–8178 of 65536"
        );
        assert_eq!(
            read(None, 0, Some(span(0, 1, None, None))),
            "read 37 bytes: the first byte of a frame"
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
