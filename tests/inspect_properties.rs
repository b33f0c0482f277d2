//! Properties of what the trace and the frame inspector write (issue 10): whatever a peer
//! sends, the inspector's JSON is valid JSON whose fields give back exactly the frame that
//! crossed the wire, and a trace line is one line. Frames go through the real protocol
//! with recording on; the JSON is read back with serde_json, which the library does not use.

mod common;
mod props;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestCaseResult};
use pure_ws::handshake::AcceptSteps;
use pure_ws::inspect;
use pure_ws::protocol::Protocol;
use pure_ws::record::{Direction, FrameRecord, Record, PREVIEW};
use serde_json::Value;

use common::wire::{self, LenField, BINARY, CLOSE, FIN, PING, PONG, TEXT};
use props::config;

/// A frame a client may send, with the length written in any of the three encodings that
/// can hold it.
#[derive(Clone, Debug)]
struct Sent {
    opcode: u8,
    payload: Vec<u8>,
    key: [u8; 4],
    field: LenField,
}

impl Sent {
    fn bytes(&self) -> Vec<u8> {
        let mut bytes = wire::header(
            FIN | self.opcode,
            self.payload.len() as u64,
            self.field,
            Some(self.key),
        );
        bytes.extend(wire::xor_mask(&self.payload, self.key, 0));
        bytes
    }
}

fn payload_for(opcode: u8) -> BoxedStrategy<Vec<u8>> {
    match opcode {
        TEXT => any::<String>().prop_map(String::into_bytes).boxed(),
        BINARY => prop::collection::vec(any::<u8>(), 0..300).boxed(),
        CLOSE => ".{0,40}"
            .prop_map(|reason: String| {
                let mut payload = 1000u16.to_be_bytes().to_vec();
                payload.extend(reason.bytes().take(100));
                payload
            })
            .prop_filter("a reason cut inside a code point", |payload| {
                std::str::from_utf8(&payload[2..]).is_ok()
            })
            .boxed(),
        _ => prop::collection::vec(any::<u8>(), 0..=125).boxed(),
    }
}

fn sent_frame() -> impl Strategy<Value = Sent> {
    prop::sample::select(vec![TEXT, BINARY, CLOSE, PING, PONG]).prop_flat_map(|opcode| {
        let fields = if opcode & 0x8 != 0 {
            vec![LenField::Bits7]
        } else {
            vec![LenField::Shortest, LenField::Bits16, LenField::Bits64]
        };
        (
            payload_for(opcode),
            any::<[u8; 4]>(),
            prop::sample::select(fields),
        )
            .prop_map(move |(payload, key, field)| Sent {
                opcode,
                payload,
                key,
                field,
            })
    })
}

/// Bytes as the inspector writes them: lowercase hex, one space between bytes.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The frames the protocol records for `sent`, delivered in two reads cut at `cut`.
fn records_of(sent: &Sent, cut: usize) -> Vec<Record> {
    let mut bytes = sent.bytes();
    let cut = cut.min(bytes.len());
    let mut protocol = Protocol::new(1 << 20);
    protocol.record();
    let mut out = Vec::new();
    let (first, second) = bytes.split_at_mut(cut);
    for part in [first, second] {
        if !part.is_empty() {
            protocol.record_read(part, false);
        }
        let mut at = 0;
        while at < part.len() {
            at += protocol.receive(&mut part[at..], &mut out).0;
        }
    }
    protocol.take_records()
}

/// A payload as the inspector shows it as text, written here from the rule: valid UTF-8,
/// allowing a code point cut at the end, and no control character but tab, CR and LF.
fn readable(bytes: &[u8]) -> Option<String> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) if err.error_len().is_none() => {
            std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap()
        }
        Err(_) => return None,
    };
    let ok = valid
        .chars()
        .all(|c| !c.is_control() || "\t\r\n".contains(c));
    ok.then(|| valid.to_string())
}

/// A string field of a JSON object, owned.
fn text(json: &Value, key: &str) -> Option<String> {
    json[key].as_str().map(str::to_string)
}

/// Checks one frame's JSON against the frame that was sent.
/// `cut` is where the frame was split into two reads.
fn check_frame_json(json: &Value, sent: &Sent, cut: usize) -> TestCaseResult {
    let wire = sent.bytes();
    let header_len = wire.len() - sent.payload.len();
    let shown = sent.payload.len().min(PREVIEW);
    let masked = wire::xor_mask(&sent.payload[..shown], sent.key, 0);
    prop_assert_eq!(&json["direction"], "received");
    prop_assert_eq!(text(json, "header"), Some(hex(&wire[..header_len])));
    prop_assert_eq!(json["opcode"].as_u64(), Some(u64::from(sent.opcode)));
    prop_assert_eq!(text(json, "maskingKey"), Some(hex(&sent.key)));
    prop_assert_eq!(
        json["payloadLength"].as_u64(),
        Some(sent.payload.len() as u64)
    );
    prop_assert_eq!(text(json, "payloadMasked"), Some(hex(&masked)));
    let unmasked = hex(&sent.payload[..shown]);
    prop_assert_eq!(text(json, "payloadHex"), Some(unmasked));
    let more = (sent.payload.len() - shown) as u64;
    prop_assert_eq!(json["more"].as_u64(), Some(more));
    match sent.opcode {
        BINARY => prop_assert_eq!(text(json, "payloadText"), None),
        CLOSE => {
            prop_assert_eq!(json["closeCode"].as_u64(), Some(1000));
            let reason = readable(&sent.payload[2..shown]);
            prop_assert_eq!(text(json, "closeReason"), reason);
        }
        _ => {
            let shown_text = readable(&sent.payload[..shown]);
            prop_assert_eq!(text(json, "payloadText"), shown_text);
        }
    }
    // One frame, in two reads when the cut falls inside it.
    let reads = if (1..wire.len()).contains(&cut) { 2 } else { 1 };
    prop_assert_eq!(json["reads"].as_u64(), Some(reads));
    prop_assert_eq!(&json["sharedRead"], false);
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn json_strings_round_trip_whatever_the_text(text in any::<String>()) {
        let mut json = String::new();
        inspect::write_json_string(&mut json, &text);
        prop_assert_eq!(serde_json::from_str::<String>(&json).ok(), Some(text));
    }

    #[test]
    fn every_recorded_frame_is_json_that_round_trips(sent in sent_frame(), cut in 0usize..400) {
        let records = records_of(&sent, cut);
        let frames: Vec<FrameRecord> = records
            .iter()
            .filter_map(|record| match record {
                Record::Frame(frame) => Some(*frame),
                Record::Failure(..) | Record::Read(..) => None,
            })
            .collect();
        let received = frames.iter().find(|f| f.direction == Direction::Received);
        prop_assert!(received.is_some(), "no record of the frame: {:?}", records);
        let received = received.unwrap();
        for frame in &frames {
            prop_assert!(!pure_ws::trace::frame_line(frame).contains('\n'));
        }
        let reply = frames.iter().find(|f| f.direction == Direction::Sent);
        let wrapped = if received.opcode() & 0x8 != 0 {
            inspect::control_json(Some(received), reply)
        } else {
            inspect::message_json(&[*received], 0, &[*received])
        };
        let value: Value = serde_json::from_str(&wrapped)
            .map_err(|err| TestCaseError::fail(format!("{err}: {wrapped}")))?;
        let frame = if received.opcode() & 0x8 != 0 {
            &value["received"]
        } else {
            &value["received"][0]
        };
        check_frame_json(frame, &sent, cut)?;
    }

    #[test]
    fn the_handshake_json_keeps_every_request_line(
        lines in prop::collection::vec("[^\r\n]{1,40}", 1..8),
        key in "[A-Za-z0-9+/]{22}==",
    ) {
        let head = format!("{}\r\n\r\n", lines.join("\r\n"));
        let steps = AcceptSteps::new(&key);
        let json = inspect::handshake_json(head.as_bytes(), &steps, b"HTTP/1.1 101 X\r\n\r\n");
        let value: Value = serde_json::from_str(&json)
            .map_err(|err| TestCaseError::fail(format!("{err}: {json}")))?;
        let request: Vec<&str> = value["request"]
            .as_array()
            .map(|lines| lines.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        prop_assert_eq!(request, lines.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(text(&value, "accept"), Some(steps.accept.clone()));
    }
}
