//! `--trace`: every read, every frame both ways, every failure with its reason and every
//! refusal, one line each, in the order they happened; the tutorial's six hard parts, each
//! visible from the server's side.

mod common;

use common::wire::{masked, BINARY, MASKED_HELLO, PING, PONG, TEXT};
use common::{upgrade_request, upgrade_with, Server};

/// The read lines of the §5.7 "Hello" written one byte at a time: one line per byte.
const HELLO_BYTE_BY_BYTE: [&str; 11] = [
    "read 1 byte: the first byte of a frame",
    "read 1 byte: header byte 2 of 6",
    "read 1 byte: header byte 3 of 6",
    "read 1 byte: header byte 4 of 6",
    "read 1 byte: header byte 5 of 6",
    "read 1 byte: header byte 6 of 6",
    "read 1 byte: payload byte 1 of 5",
    "read 1 byte: payload byte 2 of 5",
    "read 1 byte: payload byte 3 of 5",
    "read 1 byte: payload byte 4 of 5",
    "read 1 byte: payload byte 5 of 5, the frame's last",
];

/// The lines of `trace` that start with `prefix`.
fn lines_starting<'a>(trace: &'a [String], prefix: &str) -> Vec<&'a str> {
    trace
        .iter()
        .map(String::as_str)
        .filter(|line| line.starts_with(prefix))
        .collect()
}

#[test]
fn two_frames_in_one_write_are_one_read_and_say_they_shared_it() {
    let server = Server::start(&["--trace"]);
    let mut client = server.ws();
    let mut two = masked(true, TEXT, b"one");
    two.extend(masked(true, TEXT, b"two"));
    client.send(&two);
    client.expect_text("Server got: one");
    client.expect_text("Server got: two");
    let trace = server.trace_of(&client, "Server got: two");
    assert_eq!(
        lines_starting(&trace, "read "),
        ["read 18 bytes: 2 whole frames"]
    );
    let frames = lines_starting(&trace, "< text");
    assert_eq!(frames.len(), 2, "{trace:#?}");
    for line in frames {
        assert!(
            line.ends_with("; shared a read with another frame"),
            "{line}"
        );
    }
}

#[test]
fn a_frame_written_one_byte_at_a_time_shows_every_read() {
    let server = Server::start(&["--trace"]);
    let mut client = server.ws();
    for (byte, line) in MASKED_HELLO.into_iter().zip(HELLO_BYTE_BY_BYTE) {
        client.send(&[byte]);
        // Each byte its own read: wait until the server has taken it.
        server.trace_of(&client, line);
    }
    client.expect_text("Server got: Hello");
    let trace = server.trace_of(&client, "Server got: Hello");
    assert_eq!(lines_starting(&trace, "read "), HELLO_BYTE_BY_BYTE);
    assert!(
        lines_starting(&trace, "< text")[0].ends_with("payload \"Hello\"; arrived in 11 reads"),
        "{trace:#?}"
    );
}

#[test]
fn a_200_kb_frame_shows_the_reads_it_took() {
    let server = Server::start(&["--trace", "--echo", "exact"]);
    let mut client = server.ws();
    let payload = vec![0xAB; 200_000];
    client.send_frame(true, BINARY, &payload);
    assert_eq!(client.read_frame().payload.len(), payload.len());
    let trace = server.trace_of(&client, "> binary");
    let reads = lines_starting(&trace, "read ");
    // Reads are at most 64 KiB, so 200,014 bytes take at least 4.
    assert!(reads.len() >= 4, "{reads:#?}");
    assert!(reads[0].contains(": the first "), "{reads:#?}");
    assert!(
        reads.last().unwrap().ends_with(", the frame's last"),
        "{reads:#?}"
    );
    let frame = lines_starting(&trace, "< binary")[0];
    assert!(
        frame.ends_with(&format!("; arrived in {} reads", reads.len())),
        "{frame}"
    );
}

#[test]
fn each_connection_tells_its_story_in_order() {
    let server = Server::start(&["--trace"]);
    for _ in 0..20 {
        let mut client = server.ws();
        client.send(&MASKED_HELLO);
        client.expect_text("Server got: Hello");
        client.close_cleanly(1000, "");
        // The server drains until the client closes too (RFC 6455 §7.1.1), then logs.
        client.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let trace = server.trace_of(&client, "closed by peer");
        // http <, handshake, http >, then reads and frames, then the summary, last.
        let rank = |line: &str| match line {
            l if l.starts_with("http <") => 0,
            l if l.starts_with("handshake") => 1,
            l if l.starts_with("http >") => 2,
            l if l.starts_with("read ") || l.starts_with(['<', '>']) => 3,
            _ => 4,
        };
        let ranks: Vec<u8> = trace.iter().map(|line| rank(line)).collect();
        assert!(ranks.is_sorted(), "{trace:#?}");
        assert!(trace.last().unwrap().contains("closed by peer with 1000"));
        let frames = lines_starting(&trace, "<");
        assert!(frames.last().unwrap().starts_with("< close"), "{trace:#?}");
    }
}

#[test]
fn a_failure_explains_the_bytes_and_puts_the_rule_on_the_wire() {
    let server = Server::start(&["--trace"]);
    let mut client = server.ws();
    client.send_frame(true, TEXT, b"ab\xc3(cd");
    let close = client.read_frame();
    assert_eq!(close.close_code(), Some(1007));
    assert_eq!(
        &close.payload[2..],
        b"RFC 6455 \xc2\xa78.1: text is not valid UTF-8"
    );
    let trace = server.trace_of(&client, "failed with close 1007");
    let failure = lines_starting(&trace, "! failed")[0];
    assert!(
        failure.contains(
            "; c3 28 at payload offset 2: c3 starts a 2-byte sequence, 28 is not a \
             continuation byte; close 1007 sent"
        ),
        "{failure}"
    );
    // The frame's payload is not printable UTF-8, so it is shown in hex, c3 and all.
    let frame = lines_starting(&trace, "< text")[0];
    assert!(frame.contains("; payload 61 62 c3 28 63 64"), "{frame}");
}

#[test]
fn a_header_byte_that_breaks_a_rule_is_decoded() {
    let server = Server::start(&["--trace"]);
    let mut client = server.ws();
    client.send(&masked(false, PING, b"half"));
    assert_eq!(client.read_frame().close_code(), Some(1002));
    let trace = server.trace_of(&client, "failed with close 1002");
    let failure = lines_starting(&trace, "! failed")[0];
    assert!(
        failure.contains("; header byte 1 is 09: FIN 0, RSV 000, opcode 9 (ping); close 1002"),
        "{failure}"
    );
}

#[test]
fn refusals_are_traced_with_their_rule_and_response() {
    let server = Server::start(&["--trace"]);
    for (request, status) in [
        (
            upgrade_request("/").replace("Host: localhost\r\n", ""),
            "400",
        ),
        (
            upgrade_request("/").replace("Version: 13", "Version: 8"),
            "426",
        ),
    ] {
        let (client, _) = server.handshake(&request);
        let trace = server.trace_of(&client, &format!("{status} refused"));
        assert_eq!(trace[0], "http < GET / HTTP/1.1", "{trace:#?}");
        let refused = lines_starting(&trace, "refused: ");
        assert!(
            refused[0].starts_with(&format!("refused: {status} ")),
            "{trace:#?}"
        );
        assert!(refused[0].contains("(RFC "), "{refused:?}");
        let response = lines_starting(&trace, "http > ");
        assert!(
            response[0].starts_with(&format!("http > HTTP/1.1 {status} ")),
            "{trace:#?}"
        );
    }
}

#[test]
fn control_payloads_are_text_when_printable_and_hex_otherwise() {
    let server = Server::start(&["--trace"]);
    let mut client = server.ws();
    client.send_frame(true, PING, b"hello");
    assert_eq!(client.read_frame().opcode, PONG);
    client.send_frame(true, PING, &[0xff, 0x00]);
    assert_eq!(client.read_frame().opcode, PONG);
    let trace = server.trace_of(&client, "header 8a 02; payload ff 00");
    let pongs = lines_starting(&trace, "> pong");
    assert!(pongs[0].ends_with("; payload \"hello\""), "{pongs:?}");
    assert!(pongs[1].ends_with("; payload ff 00"), "{pongs:?}");
}

#[test]
fn the_inspectors_own_messages_are_traced_by_their_length() {
    let server = Server::start(&["--trace"]);
    let (mut client, _) =
        server.handshake(&upgrade_with("Sec-WebSocket-Protocol: pure-ws.inspect\r\n"));
    let greeting = client.read_frame();
    client.send(&MASKED_HELLO);
    let described = client.read_frame();
    client.expect_text("Server got: Hello");
    let trace = server.trace_of(&client, "Server got: Hello");
    let own = lines_starting(&trace, "> text");
    assert!(
        own[0].ends_with(&format!(
            "; the inspector's own message, {} bytes",
            greeting.payload.len()
        )),
        "{own:#?}"
    );
    assert!(own[1].ends_with(&format!(
        "; the inspector's own message, {} bytes",
        described.payload.len()
    )));
    assert!(
        own[2].ends_with("payload \"Server got: Hello\""),
        "{own:#?}"
    );
}
