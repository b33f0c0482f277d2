//! RFC 6455 §5.5 and §7.1: control frames and the close handshake. What a violation gets
//! is in `failing.rs`.

mod common;

use common::wire::{masked, BINARY, CLOSE, PING, PONG, TEXT};
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
fn binary_messages_are_not_checked_for_utf8() {
    let server = Server::start(&["--quiet", "--echo", "exact"]);
    let mut client = server.ws();
    client.send_frame(true, BINARY, &[0xFF, 0xFE]);
    assert_eq!(client.read_frame().payload, [0xFF, 0xFE]);
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
