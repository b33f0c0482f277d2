//! RFC 6455 §5.5 and §7: control frames, the close handshake, and the close code sent
//! for each kind of protocol violation.

mod common;

use common::wire::{self, masked, LenField, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, TEXT};
use common::{close_payload, Server};

#[test]
fn pong_echoes_ping_payload() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    for payload in [&b""[..], b"ping!", &[0xFF; 125]] {
        client.send_frame(true, PING, payload);
        let pong = client.read_frame();
        assert_eq!((pong.fin, pong.opcode), (true, PONG));
        assert_eq!(pong.payload, payload);
    }
}

#[test]
fn unsolicited_pongs_are_ignored() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(true, PONG, b"nobody asked");
    client.send_text("still here");
    client.expect_text("Server got: still here");
}

#[test]
fn close_is_answered_with_the_same_code_then_tcp_closes() {
    let server = Server::start(&["--quiet"]);
    for code in [1000, 1001, 1003, 1007, 1011, 1012, 3000, 4999] {
        let mut client = server.ws();
        client.send_frame(true, CLOSE, &close_payload(code, "done"));
        let reply = client.read_frame();
        assert_eq!(reply.close_code(), Some(code));
        client.expect_eof();
    }
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(true, CLOSE, b"");
    let reply = client.read_frame();
    assert_eq!((reply.opcode, reply.payload.len()), (CLOSE, 0));
    client.expect_eof();
}

#[test]
fn messages_before_a_close_in_the_same_write_are_echoed_first() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    let mut bytes = masked(true, TEXT, b"last words");
    bytes.extend(masked(true, CLOSE, &close_payload(1000, "")));
    bytes.extend(masked(true, TEXT, b"after close: ignored"));
    client.send(&bytes);
    client.expect_text("Server got: last words");
    assert_eq!(client.read_frame().close_code(), Some(1000));
    client.expect_eof();
}

#[test]
fn a_valid_message_before_a_bad_frame_is_echoed_before_the_close() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    let mut bytes = masked(true, TEXT, b"good");
    bytes.extend(masked(true, 0x3, b"reserved opcode"));
    client.send(&bytes);
    client.expect_text("Server got: good");
    client.expect_close(1002);
}

#[test]
fn close_payload_of_one_byte_is_a_protocol_error() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(true, CLOSE, &[0x03]);
    client.expect_close(1002);
}

#[test]
fn close_codes_not_allowed_on_the_wire_are_protocol_errors() {
    let server = Server::start(&["--quiet"]);
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let mut client = server.ws();
        client.send_frame(true, CLOSE, &close_payload(code, ""));
        client.expect_close(1002);
    }
}

#[test]
fn close_reason_with_invalid_utf8_gets_1007() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(&[0xCE, 0xBA, 0xE1, 0xBD]);
    client.send_frame(true, CLOSE, &payload);
    client.expect_close(1007);
}

#[test]
fn rejects_reserved_bits_with_1002() {
    let server = Server::start(&["--quiet"]);
    for rsv in [0x40, 0x20, 0x10] {
        let mut client = server.ws();
        let mut bytes = masked(true, TEXT, b"rsv");
        bytes[0] |= rsv;
        client.send(&bytes);
        client.expect_close(1002);
    }
}

#[test]
fn rejects_unknown_opcodes_with_1002() {
    let server = Server::start(&["--quiet"]);
    for opcode in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let mut client = server.ws();
        client.send_frame(true, opcode, b"");
        client.expect_close(1002);
    }
}

#[test]
fn control_frames_over_125_bytes_get_1002() {
    let server = Server::start(&["--quiet"]);
    for opcode in [PING, PONG, CLOSE] {
        let mut client = server.ws();
        client.send_frame(true, opcode, &[b'x'; 126]);
        client.expect_close(1002);
    }
}

#[test]
fn a_64_bit_length_with_the_top_bit_set_gets_1002() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send(&wire::header(
        FIN | BINARY,
        1 << 63,
        LenField::Bits64,
        Some([1, 2, 3, 4]),
    ));
    client.expect_close(1002);
}

#[test]
fn invalid_utf8_text_gets_1007() {
    let server = Server::start(&["--quiet"]);
    for bad in [
        &[0xFF][..],
        &[0xC0, 0xAF],
        &[0xED, 0xA0, 0x80],
        &[0xF4, 0x90, 0x80, 0x80],
        &[0xE2, 0x82],
    ] {
        let mut client = server.ws();
        client.send_frame(true, TEXT, bad);
        client.expect_close(1007);
    }
}

#[test]
fn invalid_utf8_fails_as_soon_as_its_fragment_arrives() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(false, TEXT, "κόσμε".as_bytes());
    // The message is not finished, but it can never become valid UTF-8.
    client.send_frame(false, CONTINUATION, &[0xED, 0xA0, 0x80]);
    client.expect_close(1007);
}

#[test]
fn invalid_utf8_fails_before_the_rest_of_its_frame_arrives() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    let bytes = masked(
        true,
        TEXT,
        &[&b"valid start "[..], &[0xFF], &[b'x'; 1000]].concat(),
    );
    // The 8-byte header, 12 valid bytes and the bad one; the rest is never sent.
    client.send(&bytes[..8 + 13]);
    client.expect_close(1007);
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    let server = Server::start(&["--quiet", "--echo", "exact"]);
    let mut client = server.ws();
    client.send_frame(true, BINARY, &[0xFF, 0xFE]);
    assert_eq!(client.read_frame().payload, [0xFF, 0xFE]);
}

#[test]
fn a_message_over_the_limit_gets_1009_from_its_header_alone() {
    let server = Server::start(&["--quiet", "--max-message-size", "1000"]);
    let mut client = server.ws();
    let bytes = masked(true, BINARY, &[0; 1001]);
    client.send(&bytes[..8]);
    client.expect_close(1009);

    let mut client = server.ws();
    client.send_frame(false, TEXT, &[b'a'; 600]);
    client.send(&masked(true, CONTINUATION, &[b'a'; 401])[..8]);
    client.expect_close(1009);

    let mut client = server.ws();
    client.send_frame(true, BINARY, &[0; 1000]);
    assert_eq!(client.read_frame().payload.len(), 1000 + 12);
}

/// RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
/// response, unless it already received a Close frame." Our own close frame being out is
/// no reason to stop answering.
#[test]
fn a_ping_while_our_close_waits_still_gets_its_pong() {
    let server = Server::start(&["--quiet", "--ping-interval", "0.3"]);
    let mut client = server.ws();
    assert_eq!(client.read_frame().opcode, PING);
    assert_eq!(client.read_frame().close_code(), Some(1001));
    client.send_frame(true, PING, b"still there?");
    let pong = client.read_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"still there?"[..])
    );
    client.send_frame(true, CLOSE, &close_payload(1001, ""));
    client.expect_eof();
}

/// RFC 6455 §5.5: "Control frames MUST NOT be fragmented." Close and pong frames with FIN
/// clear fail the connection like a fragmented ping does.
#[test]
fn close_and_pong_frames_with_fin_clear_get_1002() {
    let server = Server::start(&["--quiet"]);
    for (opcode, payload) in [(CLOSE, &close_payload(1000, "")[..]), (PONG, b"p")] {
        let mut client = server.ws();
        client.send_frame(false, opcode, payload);
        client.expect_close(1002);
    }
}
