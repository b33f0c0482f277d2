//! RFC 6455 §7.1.7, failing the connection: "the first endpoint MUST Close the WebSocket
//! Connection" and "MUST NOT continue to attempt to process data (including a responding
//! Close frame) from the remote endpoint after being instructed to Fail the WebSocket
//! Connection". pure-ws sends its close frame, half-closes TCP at once, and reads nothing
//! more: a client that never answers sees the FIN within milliseconds, and a ping sent right
//! behind the bad frame gets no pong.

mod common;

use std::time::{Duration, Instant};

use common::wire::{self, masked, BINARY, CLOSE, FIN, PING, TEXT};
use common::{close_payload, Client, Server};

/// Far below the 3 s the server gives a close handshake it started itself.
const PROMPT: Duration = Duration::from_secs(1);

/// Sends `bad` with a ping right behind it in the same write, and checks that the server
/// answers with one close frame carrying `code`, then its FIN, promptly and with no pong,
/// while the client answers nothing.
fn fails_at_once(server: &Server, bad: &[u8], code: u16) {
    let mut client = server.ws();
    let mut bytes = bad.to_vec();
    bytes.extend(masked(true, PING, b"still there?"));
    let started = Instant::now();
    client.send(&bytes);
    let close = client.read_frame();
    assert_eq!(close.opcode, CLOSE, "expected a close frame, got {close:?}");
    assert_eq!(close.close_code(), Some(code));
    // Nothing after the close frame (no pong), then EOF.
    client.expect_eof();
    let waited = started.elapsed();
    assert!(
        waited < PROMPT,
        "the FIN came {waited:?} after the bad frame"
    );
}

#[test]
fn an_unmasked_frame_fails_at_once() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(&server, &wire::frame(FIN | TEXT, b"unmasked", None), 1002);
}

#[test]
fn a_reserved_opcode_fails_at_once() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(&server, &masked(true, 0x3, &[7; 300]), 1002);
}

#[test]
fn reserved_bits_fail_at_once() {
    let server = Server::start(&["--quiet"]);
    let mut bad = masked(true, TEXT, b"rsv");
    bad[0] |= 0x40;
    fails_at_once(&server, &bad, 1002);
}

#[test]
fn invalid_utf8_fails_at_once() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(&server, &masked(true, TEXT, &[b'a', 0xFF, b'b']), 1007);
}

#[test]
fn a_message_over_the_limit_fails_at_once() {
    let server = Server::start(&["--quiet", "--max-message-size", "100"]);
    fails_at_once(&server, &masked(true, BINARY, &[0; 101]), 1009);
}

#[test]
fn a_malformed_close_frame_fails_at_once() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(
        &server,
        &masked(true, CLOSE, &close_payload(1005, "")),
        1002,
    );
}

#[test]
fn a_close_reply_after_a_failure_is_not_read_and_not_needed() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send(&wire::frame(FIN | TEXT, b"unmasked", None));
    let close = client.read_frame();
    assert_eq!(close.close_code(), Some(1002));
    // A well-behaved client answers; the server has already closed its side.
    let _ = std::io::Write::write_all(&mut client.stream, &masked(true, CLOSE, &[0x03, 0xEA]));
    client.expect_eof();
}

#[test]
fn a_failure_is_logged_with_its_close_code_and_rule() {
    let server = Server::start(&[]);
    let mut client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    client.send(&wire::frame(FIN | TEXT, b"unmasked", None));
    assert_eq!(client.read_frame().close_code(), Some(1002));
    client.expect_eof();
    let line = server.wait_for_log(&peer);
    assert!(
        line.contains("failed with close 1002 sent: client frame not masked"),
        "{line}"
    );
}

#[test]
fn the_server_still_serves_others_after_failing_one() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(&server, &wire::frame(FIN | TEXT, b"unmasked", None), 1002);
    let mut client: Client = server.ws();
    client.send_text("hi");
    client.expect_text("Server got: hi");
}
