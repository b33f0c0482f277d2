//! Every way a client can break RFC 6455, one test per rule, each checked the strict way
//! of §7.1.7, failing the connection: "the first endpoint MUST Close the WebSocket
//! Connection" and "MUST NOT continue to attempt to process data (including a responding
//! Close frame) from the remote endpoint after being instructed to Fail the WebSocket
//! Connection". pure-ws sends one close frame with the rule's code and the rule as its
//! reason, half-closes TCP at once, and reads nothing more: a client that never answers sees the FIN within
//! milliseconds, and a ping sent right behind the bad frame gets no pong.

mod common;

use std::time::{Duration, Instant};

use common::wire::{self, masked, LenField, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, TEXT};
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
    assert_eq!(close.close_code(), Some(code), "after {bad:02x?}");
    // The reason names the rule, so every client sees why (at most 123 bytes, RFC 6455 §5.5).
    let reason = std::str::from_utf8(&close.payload[2..]).expect("a UTF-8 reason");
    assert!(reason.starts_with("RFC 6455 §"), "{reason:?}");
    assert!(reason.len() <= 123, "{reason:?}");
    // Nothing after the close frame (no pong), then EOF.
    client.expect_eof();
    let waited = started.elapsed();
    assert!(
        waited < PROMPT,
        "the FIN came {waited:?} after the bad frame"
    );
}

/// RFC 6455 §5.1: "The server MUST close the connection upon receiving a frame that is
/// not masked."
#[test]
fn an_unmasked_frame_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(&server, &wire::frame(FIN | TEXT, b"unmasked", None), 1002);
}

/// RFC 6455 §5.2: an unknown opcode MUST fail the connection.
#[test]
fn every_reserved_opcode_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    for opcode in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        fails_at_once(&server, &masked(true, opcode, &[7; 30]), 1002);
    }
}

/// RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defines them; none is negotiated.
#[test]
fn every_reserved_bit_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    for rsv in [0x40, 0x20, 0x10] {
        let mut bad = masked(true, TEXT, b"rsv");
        bad[0] |= rsv;
        fails_at_once(&server, &bad, 1002);
    }
}

/// RFC 6455 §5.2: in a 64-bit length "the most significant bit MUST be 0".
#[test]
fn a_64_bit_length_with_the_top_bit_set_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    let header = wire::header(FIN | BINARY, 1 << 63, LenField::Bits64, Some([1, 2, 3, 4]));
    fails_at_once(&server, &header, 1002);
}

/// RFC 6455 §5.5: "Control frames MUST NOT be fragmented", whichever control frame.
#[test]
fn a_control_frame_with_fin_clear_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    for (opcode, payload) in [
        (PING, &b"half"[..]),
        (PONG, b"p"),
        (CLOSE, &close_payload(1000, "")),
    ] {
        fails_at_once(&server, &masked(false, opcode, payload), 1002);
    }
}

/// RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
#[test]
fn a_control_frame_over_125_bytes_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    for opcode in [PING, PONG, CLOSE] {
        fails_at_once(&server, &masked(true, opcode, &[b'x'; 126]), 1002);
    }
}

/// RFC 6455 §5.4: a continuation frame continues a message that was started.
#[test]
fn a_continuation_with_no_message_started_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(&server, &masked(true, CONTINUATION, b"orphan"), 1002);
}

/// RFC 6455 §5.4: "the fragments of one message MUST NOT be interleaved between the
/// fragments of another message".
#[test]
fn a_new_message_inside_a_fragmented_one_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    let mut bad = masked(false, TEXT, b"first");
    bad.extend(masked(true, TEXT, b"second"));
    fails_at_once(&server, &bad, 1002);
}

/// RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte
/// unsigned integer".
#[test]
fn a_close_payload_of_one_byte_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    fails_at_once(&server, &masked(true, CLOSE, &[0x03]), 1002);
}

/// RFC 6455 §7.4.1–7.4.2: 1004–1006, 1015, 0–999 and the unassigned codes may not be sent.
#[test]
fn a_close_code_not_allowed_on_the_wire_fails_with_1002() {
    let server = Server::start(&["--quiet"]);
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        fails_at_once(
            &server,
            &masked(true, CLOSE, &close_payload(code, "")),
            1002,
        );
    }
}

/// RFC 6455 §5.5.1: a close reason is UTF-8; §7.4.1 gives 1007 for data not consistent
/// with its type.
#[test]
fn a_close_reason_that_is_not_utf8_fails_with_1007() {
    let server = Server::start(&["--quiet"]);
    let mut payload = close_payload(1000, "");
    payload.extend_from_slice(&[0xCE, 0xBA, 0xE1, 0xBD]);
    fails_at_once(&server, &masked(true, CLOSE, &payload), 1007);
}

/// RFC 6455 §8.1: a text message that is not valid UTF-8 fails the connection (1007):
/// a bad byte, an overlong form, a surrogate, a code point past U+10FFFF, a cut sequence.
#[test]
fn text_that_is_not_utf8_fails_with_1007() {
    let server = Server::start(&["--quiet"]);
    for bad in [
        &[b'a', 0xFF, b'b'][..],
        &[0xC0, 0xAF],
        &[0xED, 0xA0, 0x80],
        &[0xF4, 0x90, 0x80, 0x80],
        &[0xE2, 0x82],
    ] {
        fails_at_once(&server, &masked(true, TEXT, bad), 1007);
    }
}

/// RFC 6455 §7.4.1: 1009 for "a message that is too big for it to process".
#[test]
fn a_message_over_the_limit_fails_with_1009() {
    let server = Server::start(&["--quiet", "--max-message-size", "100"]);
    fails_at_once(&server, &masked(true, BINARY, &[0; 101]), 1009);
    let mut fragments = masked(false, TEXT, &[b'a'; 60]);
    fragments.extend(masked(true, CONTINUATION, &[b'a'; 41]));
    fails_at_once(&server, &fragments, 1009);
}

/// Invalid text fails the moment the bad bytes arrive, before its message is complete.
#[test]
fn invalid_utf8_fails_as_soon_as_its_fragment_arrives() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(false, TEXT, "κόσμε".as_bytes());
    // The message is not finished, but it can never become valid UTF-8.
    client.send_frame(false, CONTINUATION, &[0xED, 0xA0, 0x80]);
    client.expect_close(1007);
}

/// ... and before the rest of its own frame arrives.
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
