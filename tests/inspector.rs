//! Seeing the protocol (issue 10): `--trace` writes every handshake step and every frame to
//! stderr, and a client that offers the `pure-ws.inspect` subprotocol gets a JSON
//! description of its frames ahead of each echo. Both are checked with the RFC 6455 §5.7
//! example frames, byte for byte.

mod common;

use serde_json::Value;

use common::wire::{masked, CLOSE, CONTINUATION, MASKED_HELLO, MASKED_PING, PING, PONG, TEXT};
use common::{close_payload, upgrade_with, Client, Server};

/// A connection that offered the inspector's subprotocol, with its first (handshake) message.
fn inspected(server: &Server) -> (Client, Value) {
    let (mut client, head) =
        server.handshake(&upgrade_with("Sec-WebSocket-Protocol: pure-ws.inspect\r\n"));
    assert!(
        head.contains("\r\nSec-WebSocket-Protocol: pure-ws.inspect\r\n"),
        "{head}"
    );
    let greeting = read_json(&mut client);
    (client, greeting)
}

/// Reads a text frame and parses it as JSON.
fn read_json(client: &mut Client) -> Value {
    let frame = client.read_frame();
    assert_eq!(
        frame.opcode, TEXT,
        "expected an inspector message, got {frame:?}"
    );
    serde_json::from_slice(&frame.payload).expect("valid JSON")
}

#[test]
fn the_trace_shows_the_rfc_frames_both_ways() {
    let server = Server::start(&["--trace"]);
    let mut client = server.ws();
    client.send(&MASKED_HELLO);
    client.expect_text("Server got: Hello");
    client.send(&MASKED_PING);
    let pong = client.read_frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"Hello"[..])
    );
    let trace = server.trace_of(&client, "> pong");
    let expected = [
        "< text fin mask=37fa213d len=5 (7-bit); header 81 85 37 fa 21 3d; payload \"Hello\"",
        "> text fin len=17 (7-bit); header 81 11; payload \"Server got: Hello\"",
        "< ping fin mask=37fa213d len=5 (7-bit); header 89 85 37 fa 21 3d; payload \"Hello\"",
        "> pong fin len=5 (7-bit); header 8a 05; payload \"Hello\"",
    ];
    let frames: Vec<&str> = trace
        .iter()
        .map(String::as_str)
        .filter(|line| line.starts_with(['<', '>']))
        .collect();
    assert_eq!(frames, expected);
}

#[test]
fn the_trace_shows_the_handshake_step_by_step() {
    let server = Server::start(&["--trace"]);
    let client = server.ws();
    // The response head is traced last.
    let trace = server.trace_of(&client, "http > Sec-WebSocket-Accept");
    for line in [
        "http < GET / HTTP/1.1",
        "http < Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "handshake key dGhlIHNhbXBsZSBub25jZQ==",
        "handshake key+GUID dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
        "handshake SHA-1 b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea",
        "handshake accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        "http > HTTP/1.1 101 Switching Protocols",
        "http > Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    ] {
        assert!(trace.iter().any(|l| l == line), "no {line:?} in {trace:#?}");
    }
}

#[test]
fn the_trace_names_the_rule_a_failure_broke_and_its_bytes() {
    let server = Server::start(&["--trace"]);
    let mut client = server.ws();
    client.send(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
    assert_eq!(client.read_frame().close_code(), Some(1002));
    // The close frame is traced after the failure: wait for it.
    let trace = server.trace_of(&client, "> close");
    let failure = trace
        .iter()
        .find(|line| line.starts_with("! failed"))
        .expect("a failure line");
    assert!(
        failure.starts_with(
            "! failed: client frame not masked, breaking RFC 6455 §5.1: a client MUST mask \
             every frame it sends; header byte 2 is 05: MASK 0, length 5; close 1002 sent; \
             why: "
        ),
        "{failure}"
    );
    // The why-note names the attack masking prevents.
    assert!(failure.contains("(§10.3)"), "{failure}");
    assert!(
        trace.iter().any(|l| l
            == "> close fin len=46 (7-bit); header 88 2e; close 1002; payload \
                \"RFC 6455 §5.1: client frames must be masked\""),
        "{trace:#?}"
    );
}

#[test]
fn a_long_payload_is_traced_by_its_first_64_bytes() {
    let server = Server::start(&["--trace", "--echo", "exact"]);
    let mut client = server.ws();
    let text = "x".repeat(70_000);
    client.send_text(&text);
    client.expect_text(&text);
    let trace = server.trace_of(&client, "> text");
    let received = trace
        .iter()
        .find(|l| l.starts_with("< text"))
        .expect("a < text line");
    assert!(received.contains("len=70000 (64-bit)"), "{received}");
    assert!(
        received.contains(&format!("\"{}\" (+69936 more bytes)", "x".repeat(64))),
        "{received}"
    );
}

#[test]
fn without_trace_no_frame_is_logged() {
    let server = Server::start(&[]);
    let mut client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    client.send(&MASKED_HELLO);
    client.expect_text("Server got: Hello");
    client.close_cleanly(1000, "");
    server.wait_for_log(&peer);
    assert_eq!(server.stderr().len(), 1, "{:#?}", server.stderr());
}

#[test]
fn the_inspector_greets_with_the_handshake() {
    let server = Server::start(&["--quiet"]);
    let (_client, greeting) = inspected(&server);
    assert_eq!(greeting["inspect"], "handshake");
    assert_eq!(greeting["key"], "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(greeting["guid"], "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    assert_eq!(
        greeting["sha1"],
        "b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea"
    );
    assert_eq!(greeting["accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(greeting["request"][0], "GET / HTTP/1.1");
    assert_eq!(greeting["response"][0], "HTTP/1.1 101 Switching Protocols");
}

#[test]
fn the_inspector_describes_each_message_before_its_echo() {
    let server = Server::start(&["--quiet"]);
    let (mut client, _) = inspected(&server);
    client.send(&MASKED_HELLO);
    let message = read_json(&mut client);
    assert_eq!(message["inspect"], "message");
    let received = &message["received"][0];
    assert_eq!(received["header"], "81 85 37 fa 21 3d");
    assert_eq!(received["maskingKey"], "37 fa 21 3d");
    assert_eq!(received["payloadMasked"], "7f 9f 4d 51 58");
    assert_eq!(received["payloadHex"], "48 65 6c 6c 6f");
    assert_eq!(received["payloadText"], "Hello");
    assert_eq!(received["lengthEncoding"], "7-bit");
    assert_eq!(received["reads"], 1);
    assert_eq!(received["sharedRead"], false);
    let sent = &message["sent"][0];
    assert_eq!(sent["header"], "81 11");
    assert_eq!(sent["mask"], false);
    assert_eq!(sent["payloadText"], "Server got: Hello");
    client.expect_text("Server got: Hello");
}

#[test]
fn the_inspector_describes_a_16_bit_length() {
    let server = Server::start(&["--quiet"]);
    let (mut client, _) = inspected(&server);
    client.send_text(&"a".repeat(200));
    let message = read_json(&mut client);
    let header = message["received"][0]["header"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(header.starts_with("81 fe 00 c8 "), "{header}");
    assert_eq!(message["received"][0]["lengthEncoding"], "16-bit");
    assert_eq!(message["sent"][0]["header"], "81 7e 00 d4");
    client.expect_text(&format!("Server got: {}", "a".repeat(200)));
}

#[test]
fn the_inspector_describes_control_frames_ahead_of_the_answers() {
    let server = Server::start(&["--quiet"]);
    let (mut client, _) = inspected(&server);
    client.send(&MASKED_PING);
    let ping = read_json(&mut client);
    assert_eq!(ping["inspect"], "control");
    assert_eq!(ping["received"]["header"], "89 85 37 fa 21 3d");
    assert_eq!(ping["sent"]["header"], "8a 05");
    assert_eq!(client.read_frame().opcode, PONG);
    client.send_frame(true, CLOSE, &close_payload(1000, "bye"));
    let close = read_json(&mut client);
    assert_eq!(close["received"]["closeCode"], 1000);
    assert_eq!(close["received"]["closeReason"], "bye");
    assert_eq!(close["sent"]["closeCode"], 1000);
    // Our close started the handshake: the server's answers it, and TCP closes.
    assert_eq!(client.read_frame().close_code(), Some(1000));
    client.expect_eof();
}

#[test]
fn clients_that_do_not_offer_the_inspector_get_only_echoes() {
    let server = Server::start(&["--quiet"]);
    let (mut client, head) = server.handshake(&upgrade_with("Sec-WebSocket-Protocol: chat\r\n"));
    assert!(head.contains("Sec-WebSocket-Protocol: chat"), "{head}");
    client.send(&MASKED_HELLO);
    client.expect_text("Server got: Hello");
    client.send(&MASKED_PING);
    assert_eq!(client.read_frame().opcode, PONG);
}

#[test]
fn the_inspector_describes_the_servers_own_control_frames_before_them() {
    let server = Server::start(&["--quiet", "--ping-interval", "0.3"]);
    let (mut client, _) = inspected(&server);
    let ping = read_json(&mut client);
    assert_eq!(ping["inspect"], "control");
    assert_eq!(ping["received"], Value::Null);
    assert_eq!(ping["sent"]["header"], "89 09");
    assert_eq!(ping["sent"]["payloadHex"], "6b 65 65 70 61 6c 69 76 65");
    let frame = client.read_frame();
    assert_eq!(
        (frame.opcode, frame.payload.as_slice()),
        (PING, &b"keepalive"[..])
    );
    // No pong: after another interval the server closes with 1001, described first.
    let close = read_json(&mut client);
    assert_eq!(close["sent"]["closeCode"], 1001);
    assert_eq!(close["sent"]["closeReason"], "ping timeout");
    assert_eq!(client.read_frame().close_code(), Some(1001));
}

/// RFC 6455 §5.5.1: "After sending a Close frame, the endpoint MUST NOT send any further
/// data frames." The inspector's messages are data frames, so the peer's answer to our
/// close is traced but not described on the wire.
#[test]
fn no_inspector_message_follows_our_close_frame() {
    let server = Server::start(&["--quiet", "--ping-interval", "0.3"]);
    let (mut client, _) = inspected(&server);
    assert_eq!(read_json(&mut client)["sent"]["opcodeName"], "ping");
    assert_eq!(client.read_frame().opcode, PING);
    // The ping goes unanswered: the server describes its 1001 close, then sends it.
    assert_eq!(read_json(&mut client)["sent"]["closeCode"], 1001);
    assert_eq!(client.read_frame().close_code(), Some(1001));
    client.send_frame(true, CLOSE, &close_payload(1001, ""));
    client.expect_eof();
}

/// Sends a command the page may give, and checks the server acknowledges it.
fn command(client: &mut Client, name: &str) {
    client.send_text(&format!("{{\"command\":\"{name}\"}}"));
    let ack = read_json(client);
    assert_eq!(ack["inspect"], "command", "{ack}");
    assert_eq!(ack["command"], name);
    assert_eq!(ack["received"][0]["opcodeName"], "text");
}

#[test]
fn the_page_can_ask_for_a_ping_and_sees_the_pong() {
    let server = Server::start(&["--quiet"]);
    let (mut client, _) = inspected(&server);
    command(&mut client, "ping");
    let described = read_json(&mut client);
    assert_eq!(described["inspect"], "control");
    assert_eq!(described["received"], Value::Null);
    assert_eq!(described["sent"]["opcodeName"], "ping");
    assert_eq!(
        described["sent"]["payloadText"],
        "ping at the page's request"
    );
    let ping = client.read_frame();
    assert_eq!(ping.opcode, PING);
    client.send_frame(true, PONG, &ping.payload);
    let pong = read_json(&mut client);
    assert_eq!(pong["received"]["opcodeName"], "pong");
    assert_eq!(
        pong["received"]["payloadText"],
        "ping at the page's request"
    );
    assert_eq!(pong["sent"], Value::Null);
}

#[test]
fn the_page_can_ask_for_the_next_echo_in_three_frames() {
    let server = Server::start(&["--quiet"]);
    let (mut client, _) = inspected(&server);
    command(&mut client, "fragment");
    client.send_text("in pieces");
    let message = read_json(&mut client);
    let sent = message["sent"].as_array().expect("a list of frames");
    let heads: Vec<&str> = sent.iter().map(|f| f["header"].as_str().unwrap()).collect();
    assert_eq!(heads, ["01 07", "00 07", "80 07"]);
    let mut joined = Vec::new();
    for (fin, opcode) in [(false, TEXT), (false, CONTINUATION), (true, CONTINUATION)] {
        let frame = client.read_frame();
        assert_eq!((frame.fin, frame.opcode), (fin, opcode));
        joined.extend(frame.payload);
    }
    assert_eq!(joined, b"Server got: in pieces");
    // The next echo is whole again.
    client.send_text("whole");
    assert_eq!(read_json(&mut client)["sent"].as_array().unwrap().len(), 1);
    client.expect_text("Server got: whole");
}

#[test]
fn the_page_can_ask_the_server_to_close_and_nothing_follows_the_close() {
    let server = Server::start(&[]);
    let (mut client, _) = inspected(&server);
    let peer = client.stream.local_addr().unwrap().to_string();
    command(&mut client, "close");
    let described = read_json(&mut client);
    assert_eq!(described["sent"]["closeCode"], 1000);
    assert_eq!(
        described["sent"]["closeReason"],
        "closed at the page's request"
    );
    let close = client.read_frame();
    assert_eq!(close.close_code(), Some(1000));
    // The browser's answer: the server describes nothing after its own close.
    client.send_frame(true, CLOSE, &close_payload(1000, ""));
    client.expect_eof();
    drop(client);
    let line = server.wait_for_log(&peer);
    assert!(
        line.contains("close 1000 sent at the inspector page's request"),
        "{line}"
    );
}

#[test]
fn a_frame_says_how_many_reads_it_took_and_whether_it_shared_one() {
    let server = Server::start(&["--trace"]);
    let (mut client, _) = inspected(&server);
    let mut two = masked(true, TEXT, b"one");
    two.extend(masked(true, TEXT, b"two"));
    client.send(&two);
    for text in ["one", "two"] {
        let message = read_json(&mut client);
        assert_eq!(message["received"][0]["reads"], 1);
        assert_eq!(message["received"][0]["sharedRead"], true);
        assert_eq!(message["sent"][0]["reads"], Value::Null);
        client.expect_text(&format!("Server got: {text}"));
    }
    client.send(&MASKED_HELLO[..3]);
    // The trace shows when the server has read those 3 bytes.
    server.trace_of(&client, "read 3 bytes");
    client.send(&MASKED_HELLO[3..]);
    let message = read_json(&mut client);
    assert_eq!(message["received"][0]["reads"], 2);
    assert_eq!(message["received"][0]["sharedRead"], false);
    client.expect_text("Server got: Hello");
}
