//! Limits: how big a message, a length claim, a request head or a pile of fragments may
//! get, each checked over raw TCP against the real binary, with the memory it cost read
//! from `/proc/PID/status`.

mod common;

use common::process::{data_size, rss, MIB};
use common::wire::{self, masked, BINARY, CLOSE, CONTINUATION, FIN, PING, TEXT};
use common::{close_payload, echo, read_close, still_echoes, upgrade_with, Client, Server};

const GIB: u64 = 1024 * MIB;

// ---------------------------------------------------------------------------------------
// --max-message-size and length claims

#[test]
fn a_frame_header_past_the_max_message_size_gets_1009_before_its_payload() {
    let server = Server::start(&["--max-message-size", "1000"]);
    let mut client = server.ws();
    client.send_frame(true, BINARY, &[7; 1000]);
    let reply = client.read_frame();
    assert_eq!((reply.opcode, reply.payload.len()), (BINARY, 1012));
    client.send(&wire::claim(FIN | BINARY, 1001));
    assert_eq!(read_close(&mut client), Some(1009));
    // The refused frame's payload still follows it; then the close handshake completes.
    client.send(&[0; 1001]);
    client.send_frame(true, CLOSE, &close_payload(1009, ""));
    client.expect_eof();
}

#[test]
fn a_continuation_header_past_the_max_message_size_gets_1009_before_its_payload() {
    let server = Server::start(&["--max-message-size", "100"]);
    let mut client = server.ws();
    client.send_frame(false, TEXT, &[b'a'; 60]);
    client.send_frame(false, CONTINUATION, &[b'b'; 30]);
    client.send(&wire::claim(FIN | CONTINUATION, 11));
    assert_eq!(read_close(&mut client), Some(1009));
    client.send(&[0; 11]);
    client.send_frame(true, CLOSE, &close_payload(1009, ""));
    client.expect_eof();
}

#[test]
fn huge_length_claims_get_1009_and_cost_no_memory() {
    for limit in [None, Some("4294967296")] {
        let args: Vec<&str> = limit.map_or(vec![], |l| vec!["--max-message-size", l]);
        let server = Server::start(&args);
        let claims = if limit.is_none() {
            &[i64::MAX as u64, GIB][..]
        } else {
            &[i64::MAX as u64][..]
        };
        for &claim in claims {
            let mut client = server.ws();
            let (rss_before, data_before) = (rss(&server), data_size(&server));
            client.send(&wire::claim(FIN | BINARY, claim));
            assert_eq!(read_close(&mut client), Some(1009), "claim {claim}");
            let what = format!("claim {claim} (limit {limit:?})");
            assert_no_allocation_for_claims(&server, rss_before, data_before, &what);
        }
        still_echoes(&server);
    }
}

#[test]
fn a_1_gib_claim_within_a_large_limit_allocates_only_what_arrives() {
    let server = Server::start(&["--max-message-size", "4294967296", "--ping-interval", "0.5"]);
    let mut client = server.ws();
    let (rss_before, data_before) = (rss(&server), data_size(&server));
    client.send(&wire::claim(FIN | BINARY, GIB));
    client.send(&[0xAB; 64 * 1024]);
    // The keepalive ping only comes once the server has taken all of that and gone idle.
    assert_eq!(client.read_frame().opcode, PING);
    let what = "a 1 GiB claim with 64 KiB that arrived";
    assert_no_allocation_for_claims(&server, rss_before, data_before, what);
    still_echoes(&server);
}

/// Neither touched memory (RSS) nor reserved memory (VmData: an allocation for a claimed
/// length shows there even when its pages are never touched) grew with a length claim.
fn assert_no_allocation_for_claims(server: &Server, rss_before: u64, data_before: u64, what: &str) {
    let growth = rss(server).saturating_sub(rss_before);
    assert!(growth < 4 * MIB, "{what}: RSS grew {growth} bytes");
    let growth = data_size(server).saturating_sub(data_before);
    assert!(growth < 256 * MIB, "{what}: VmData grew {growth} bytes");
}

// ---------------------------------------------------------------------------------------
// Fragments

#[test]
fn two_hundred_thousand_empty_fragments_cost_no_memory_and_echo_correctly() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    echo(&mut client, "warm-up");
    let before = rss(&server);
    client.send_frame(false, TEXT, b"a");
    let empty: Vec<u8> = (0..200_000)
        .flat_map(|_| masked(false, CONTINUATION, b""))
        .collect();
    for chunk in empty.chunks(256 * 1024) {
        client.send(chunk);
    }
    client.send_frame(true, CONTINUATION, b"b");
    client.expect_text("Server got: ab");
    let growth = rss(&server).saturating_sub(before);
    assert!(
        growth < 4 * MIB,
        "RSS grew {growth} bytes over 200,000 empty fragments"
    );
}

// ---------------------------------------------------------------------------------------
// The request head

#[test]
fn a_request_head_over_8_kib_gets_431() {
    let server = Server::start(&[]);
    let response =
        server.http(upgrade_with(&format!("X-Big: {}\r\n", "a".repeat(9000))).as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    let (_, head) = server.handshake(&upgrade_with(&format!("X-Big: {}\r\n", "a".repeat(7900))));
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "a head just under 8 KiB: {head}"
    );
}

#[test]
fn more_than_100_header_lines_get_431_and_100_are_accepted() {
    let server = Server::start(&[]);
    // The upgrade request has 5 header lines of its own.
    let pad = |n: usize| {
        (0..n)
            .map(|i| format!("X-Pad-{i}: {i}\r\n"))
            .collect::<String>()
    };
    let response = server.http(upgrade_with(&pad(96)).as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    let (mut client, head) = server.handshake(&upgrade_with(&pad(95)));
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "100 header lines: {head}"
    );
    echo(&mut client, "hundred");
}

#[test]
fn a_request_head_dribbled_one_byte_per_write_completes() {
    let server = Server::start(&[]);
    let pad: String = (0..60)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "v".repeat(40)))
        .collect();
    let mut client = Client::new(server.connect());
    client.stream.set_nodelay(true).unwrap();
    for byte in upgrade_with(&pad).bytes() {
        client.send(&[byte]);
    }
    let head = client.read_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    echo(&mut client, "dribbled");
}
