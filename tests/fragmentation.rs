//! RFC 6455 §5.4: fragmented messages, with control frames between the fragments.

mod common;

use common::wire::{BINARY, CONTINUATION, PING, PONG, TEXT};
use common::Server;

#[test]
fn reassembles_a_fragmented_text_message() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(false, TEXT, b"frag");
    client.send_frame(false, CONTINUATION, b"men");
    client.send_frame(true, CONTINUATION, b"ted");
    client.expect_text("Server got: fragmented");
}

#[test]
fn reassembles_a_fragmented_binary_message_with_empty_fragments() {
    let server = Server::start(&["--quiet", "--echo", "exact"]);
    let mut client = server.ws();
    client.send_frame(false, BINARY, b"");
    client.send_frame(false, CONTINUATION, &[1, 2]);
    client.send_frame(false, CONTINUATION, b"");
    client.send_frame(true, CONTINUATION, &[3]);
    let reply = client.read_frame();
    assert_eq!(
        (reply.fin, reply.opcode, reply.payload),
        (true, BINARY, vec![1, 2, 3])
    );
}

#[test]
fn a_utf8_character_may_be_split_across_fragments() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    let euro = "€".as_bytes();
    client.send_frame(false, TEXT, &euro[..1]);
    client.send_frame(false, CONTINUATION, &euro[1..2]);
    client.send_frame(true, CONTINUATION, &euro[2..]);
    client.expect_text("Server got: €");
}

#[test]
fn pings_between_fragments_are_answered_at_once() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(false, TEXT, b"Hello, ");
    client.send_frame(true, PING, b"in between");
    let pong = client.read_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"in between"[..])
    );
    client.send_frame(true, PONG, b"unsolicited");
    client.send_frame(false, CONTINUATION, b"fragmented ");
    client.send_frame(true, PING, b"");
    assert_eq!(client.read_frame().opcode, PONG);
    client.send_frame(true, CONTINUATION, b"world");
    client.expect_text("Server got: Hello, fragmented world");
}

#[test]
fn a_close_between_fragments_is_answered() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(false, TEXT, b"never ");
    client.close_cleanly(1000, "bye");
}
