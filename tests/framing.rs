//! RFC 6455 §5.2–5.3 and §5.6: frames of every length class, masking, and any chunking
//! of the byte stream.

mod common;

use common::wire::{self, masked, LenField, BINARY, FIN, TEXT};
use common::Server;

const PREFIX: &[u8] = b"Server got: ";

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn text_payload(len: usize) -> String {
    "abcdefghijklmnopqrstuvwxyz"
        .chars()
        .cycle()
        .take(len)
        .collect()
}

#[test]
fn echoes_every_length_class_in_prefix_mode() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    for len in [0, 1, 125, 126, 65535, 65536, 1 << 20] {
        let data = payload(len);
        client.send_frame(true, BINARY, &data);
        let reply = client.read_frame();
        assert_eq!((reply.fin, reply.opcode), (true, BINARY), "len {len}");
        assert_eq!(&reply.payload[..PREFIX.len()], PREFIX, "len {len}");
        assert!(reply.payload[PREFIX.len()..] == data[..], "len {len}");

        let text = text_payload(len);
        client.send_text(&text);
        client.expect_text(&format!("Server got: {text}"));
    }
}

#[test]
fn echoes_every_length_class_unchanged_in_exact_mode() {
    let server = Server::start(&["--quiet", "--echo", "exact"]);
    let mut client = server.ws();
    for len in [0, 1, 125, 126, 65535, 65536, 1 << 20] {
        let data = payload(len);
        client.send_frame(true, BINARY, &data);
        let reply = client.read_frame();
        assert_eq!(
            (reply.fin, reply.opcode, reply.payload.len()),
            (true, BINARY, len)
        );
        assert!(reply.payload == data, "len {len}");

        let text = text_payload(len);
        client.send_text(&text);
        client.expect_text(&text);
    }
}

#[test]
fn uses_the_shortest_length_encoding() {
    let server = Server::start(&["--quiet", "--echo", "exact"]);
    let mut client = server.ws();
    for (len, header) in [
        (125, vec![0x82, 125]),
        (126, vec![0x82, 126, 0, 126]),
        (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        client.send_frame(true, BINARY, &payload(len));
        let mut head = vec![0; header.len()];
        std::io::Read::read_exact(&mut client.stream, &mut head).unwrap();
        assert_eq!(head, header, "len {len}");
        let mut rest = vec![0; len];
        std::io::Read::read_exact(&mut client.stream, &mut rest).unwrap();
    }
}

#[test]
fn echoes_multibyte_utf8_text() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    let text = "héllo wörld — 你好 — 🎉";
    client.send_text(text);
    client.expect_text(&format!("Server got: {text}"));
}

#[test]
fn a_16_mib_message_written_whole_before_reading_is_echoed() {
    let server = Server::start(&["--quiet", "--echo", "exact"]);
    let mut client = server.ws();
    let data = payload(16 * 1024 * 1024);
    // The whole frame goes out before the client reads a byte: the server must take it
    // all in before answering, or both sides would block on full socket buffers.
    client.send_frame(true, BINARY, &data);
    let reply = client.read_frame();
    assert_eq!(reply.opcode, BINARY);
    assert!(reply.payload == data, "16 MiB echo differs");
}

#[test]
fn a_frame_delivered_one_byte_per_write_is_echoed() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.stream.set_nodelay(true).unwrap();
    let bytes = masked(true, TEXT, &text_payload(300).into_bytes());
    for byte in &bytes {
        client.send(std::slice::from_ref(byte));
    }
    client.expect_text(&format!("Server got: {}", text_payload(300)));
}

#[test]
fn many_frames_in_one_write_are_all_echoed_in_order() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    let mut bytes = Vec::new();
    for i in 0..200 {
        bytes.extend(masked(true, TEXT, format!("message {i}").as_bytes()));
    }
    client.send(&bytes);
    for i in 0..200 {
        client.expect_text(&format!("Server got: message {i}"));
    }
}

#[test]
fn frames_split_at_every_possible_point_are_reassembled() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.stream.set_nodelay(true).unwrap();
    let bytes = masked(true, TEXT, &text_payload(200).into_bytes());
    for cut in 1..bytes.len() {
        client.send(&bytes[..cut]);
        client.send(&bytes[cut..]);
        client.expect_text(&format!("Server got: {}", text_payload(200)));
    }
}

#[test]
fn an_all_zero_mask_is_still_a_mask() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send(&wire::frame(FIN | TEXT, b"zero", Some([0; 4])));
    client.expect_text("Server got: zero");
}

/// RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length" binds
/// the sender. pure-ws sends only minimal lengths, and accepts a client's longer ones: a
/// 5-byte payload with a 16-bit and with a 64-bit length field.
#[test]
fn a_client_length_that_is_not_minimal_is_accepted() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    for field in [LenField::Bits16, LenField::Bits64] {
        let key = [9, 8, 7, 6];
        let mut frame = wire::header(FIN | TEXT, 5, field, Some(key));
        frame.extend(wire::xor_mask(b"short", key, 0));
        client.send(&frame);
        client.expect_text("Server got: short");
    }
}
