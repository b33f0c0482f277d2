//! The learning client, `cargo run --example learn`: every scenario runs in-process against
//! the real server, and each test checks what the client observed (the frames and how the
//! connection ended) and the key lines it printed. The command line is checked through
//! `parse_args`, without spawning cargo.

mod common;
#[path = "../examples/learn/scenarios.rs"]
mod scenarios;

use common::Server;
use scenarios::{Command, Ending, Frame, Observed, Url, BINARY, CLOSE, PONG, SCENARIOS, TEXT};

/// The scenarios the tests below run, in the usage's order.
const TESTED: [&str; 8] = [
    "fragmented",
    "ping",
    "two-in-one",
    "split",
    "binary",
    "close",
    "unmasked",
    "bad-utf8",
];

/// Runs scenario `name` against a fresh server: what it observed, and what it printed.
fn run(name: &str) -> (Observed, String) {
    run_on(&Server::start(&["--quiet"]), name)
}

/// Runs scenario `name` against `server`, and checks the handshake lines it printed.
fn run_on(server: &Server, name: &str) -> (Observed, String) {
    let url = Url::parse(&format!("ws://{}/", server.addr)).unwrap();
    let scenario = scenarios::find(name).expect("a scenario");
    let mut out = Vec::new();
    let result = scenarios::run(scenario, &url, &mut out);
    let text = String::from_utf8(out).expect("UTF-8 output");
    match result {
        Ok(observed) => {
            check_handshake(&text);
            (observed, text)
        }
        Err(err) => panic!("{name} failed: {err}\n{text}"),
    }
}

/// Checks that `text` has `line` as one of its lines.
fn has_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line {line:?} in:\n{text}"
    );
}

fn text(payload: &str) -> Frame {
    Frame {
        fin: true,
        opcode: TEXT,
        payload: payload.as_bytes().to_vec(),
    }
}

/// The server's answer to a close frame with code 1000.
fn close_1000() -> Frame {
    Frame {
        fin: true,
        opcode: CLOSE,
        payload: vec![0x03, 0xe8],
    }
}

/// The lines every scenario prints for the handshake.
fn check_handshake(out: &str) {
    has_line(out, "> Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==");
    has_line(out, "< HTTP/1.1 101 Switching Protocols");
    has_line(out, "< Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    has_line(out, "# accept checked: base64(SHA-1(key + GUID)) matches");
}

/// A clean close started by the client with reason "done": the server answered 1000, and
/// the client printed both close frames and the EOF.
fn check_clean_close(observed: &Observed, out: &str) {
    assert_eq!(observed.ending, Ending::ClientClosed { reply: Some(1000) });
    has_line(out, ">     88: FIN=1 RSV=000 opcode=8 (close)");
    has_line(
        out,
        ">     34 12 45 52 59 9f: payload, masked; XOR key = code 1000 (normal closure), \
         reason \"done\"",
    );
    has_line(
        out,
        "<     03 e8: payload code 1000 (normal closure), no reason",
    );
    has_line(out, "< EOF: the server closed TCP (read returned 0)");
}

#[test]
fn every_scenario_is_tested() {
    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
    assert_eq!(names, TESTED);
}

#[test]
fn fragmented_is_echoed_once_as_the_whole_message() {
    let (observed, out) = run("fragmented");
    assert_eq!(
        observed.frames,
        [text("Server got: Hello world"), close_1000()]
    );
    has_line(&out, ">     01: FIN=0 RSV=000 opcode=1 (text)");
    has_line(&out, ">     83: MASK=1 len=3 (7-bit)");
    has_line(&out, ">     37 fa 21 3d: masking key");
    has_line(&out, ">     7f 9f 4d: payload, masked; XOR key = \"Hel\"");
    has_line(&out, ">     00: FIN=0 RSV=000 opcode=0 (continuation)");
    has_line(&out, ">     80: FIN=1 RSV=000 opcode=0 (continuation)");
    has_line(&out, "<     81: FIN=1 RSV=000 opcode=1 (text)");
    has_line(&out, "<     17: MASK=0 len=23 (7-bit)");
    check_clean_close(&observed, &out);
}

#[test]
fn ping_gets_a_pong_with_the_same_payload() {
    let (observed, out) = run("ping");
    let pong = Frame {
        fin: true,
        opcode: PONG,
        payload: b"Hello".to_vec(),
    };
    assert_eq!(observed.frames, [pong, close_1000()]);
    // The RFC 6455 §5.7 masked ping and unmasked pong, byte for byte.
    has_line(
        &out,
        ">   frame (11 bytes): 89 85 37 fa 21 3d 7f 9f 4d 51 58",
    );
    has_line(&out, ">     89: FIN=1 RSV=000 opcode=9 (ping)");
    has_line(&out, "<   frame (7 bytes): 8a 05 48 65 6c 6c 6f");
    has_line(&out, "<     8a: FIN=1 RSV=000 opcode=a (pong)");
    has_line(&out, "# the pong carries the ping's payload: yes");
    check_clean_close(&observed, &out);
}

#[test]
fn two_frames_in_one_write_get_two_echoes_in_order() {
    let (observed, out) = run("two-in-one");
    assert_eq!(
        observed.frames,
        [
            text("Server got: first"),
            text("Server got: second"),
            close_1000()
        ]
    );
    // Both frames in the first write, 11 + 12 bytes.
    has_line(
        &out,
        "> write 1 (23 bytes): 81 85 37 fa 21 3d 51 93 53 4e 43 \
         81 86 37 fa 21 3d 44 9f 42 52 59 9e",
    );
    has_line(
        &out,
        ">     51 93 53 4e 43: payload, masked; XOR key = \"first\"",
    );
    has_line(
        &out,
        ">     44 9f 42 52 59 9e: payload, masked; XOR key = \"second\"",
    );
    assert!(out.contains("> write 2 (12 bytes): 88 86"), "{out}");
    check_clean_close(&observed, &out);
}

#[test]
fn a_frame_split_into_one_byte_writes_is_echoed() {
    let (observed, out) = run("split");
    assert_eq!(observed.frames, [text("Server got: Hello"), close_1000()]);
    // The RFC 6455 §5.7 masked "Hello", then a write per byte, each named.
    has_line(
        &out,
        ">   frame (11 bytes): 81 85 37 fa 21 3d 7f 9f 4d 51 58",
    );
    has_line(&out, "> write 1 (1 byte): 81 = FIN, RSV, opcode");
    has_line(&out, "> write 2 (1 byte): 85 = MASK, length");
    has_line(&out, "> write 3 (1 byte): 37 = masking key, byte 1 of 4");
    has_line(&out, "> write 11 (1 byte): 58 = payload, byte 5 of 5");
    let one_byte_writes = out.lines().filter(|l| l.contains(" (1 byte): ")).count();
    assert_eq!(one_byte_writes, 11, "{out}");
    has_line(
        &out,
        "<     53 65 72 76 65 72 20 67 6f 74 3a 20 48 65 6c 6c 6f: payload \
         \"Server got: Hello\"",
    );
    check_clean_close(&observed, &out);
}

#[test]
fn binary_is_echoed_as_binary_with_the_prefix_bytes() {
    let (observed, out) = run("binary");
    let mut echo = b"Server got: ".to_vec();
    echo.extend_from_slice(&[0x00, 0x01, 0x80, 0xfe, 0xff]);
    let binary = Frame {
        fin: true,
        opcode: BINARY,
        payload: echo,
    };
    assert_eq!(observed.frames, [binary, close_1000()]);
    has_line(&out, ">     82: FIN=1 RSV=000 opcode=2 (binary)");
    has_line(
        &out,
        ">     37 fb a1 c3 c8: payload, masked; XOR key = b\"\\x00\\x01\\x80\\xfe\\xff\"",
    );
    has_line(&out, "<     82: FIN=1 RSV=000 opcode=2 (binary)");
    check_clean_close(&observed, &out);
}

#[test]
fn close_is_answered_with_1000_then_eof() {
    let (observed, out) = run("close");
    assert_eq!(observed.frames, [close_1000()]);
    assert_eq!(observed.ending, Ending::ClientClosed { reply: Some(1000) });
    has_line(&out, ">     85: MASK=1 len=5 (7-bit)");
    has_line(
        &out,
        ">     34 12 43 44 52: payload, masked; XOR key = code 1000 (normal closure), \
         reason \"bye\"",
    );
    has_line(
        &out,
        "<     03 e8: payload code 1000 (normal closure), no reason",
    );
    has_line(&out, "< EOF: the server closed TCP (read returned 0)");
    has_line(
        &out,
        "# received: close; the client closed first, the server answered 1000; then TCP EOF",
    );
}

#[test]
fn an_unmasked_frame_is_failed_with_1002_then_eof() {
    let (observed, out) = run("unmasked");
    assert_eq!(observed.frames.len(), 1, "{:?}", observed.frames);
    assert_eq!(observed.frames[0].close_code(), Some(1002));
    assert_eq!(observed.ending, Ending::ServerClosed { code: Some(1002) });
    has_line(&out, "> write 1 (7 bytes): 81 05 48 65 6c 6c 6f");
    has_line(&out, ">     05: MASK=0 len=5 (7-bit)");
    has_line(&out, ">     48 65 6c 6c 6f: payload \"Hello\"");
    assert!(
        out.contains(
            ": payload code 1002 (protocol error), reason \"RFC 6455 §5.1: client frames must \
             be masked\""
        ),
        "{out}"
    );
    // The client answers the server's close, echoing its code (RFC 6455 §5.5.1).
    has_line(
        &out,
        ">     34 10: payload, masked; XOR key = code 1002 (protocol error), no reason",
    );
    has_line(&out, "< EOF: the server closed TCP (read returned 0)");
}

#[test]
fn invalid_utf8_is_failed_with_1007_then_eof() {
    let (observed, out) = run("bad-utf8");
    assert_eq!(observed.frames.len(), 1, "{:?}", observed.frames);
    assert_eq!(observed.frames[0].close_code(), Some(1007));
    assert_eq!(observed.ending, Ending::ServerClosed { code: Some(1007) });
    has_line(
        &out,
        ">     7f 93 01 c2: payload, masked; XOR key = b\"Hi \\xff\" (not UTF-8)",
    );
    assert!(
        out.contains("code 1007 (data inconsistent with the message type), reason \"RFC 6455 §8.1"),
        "{out}"
    );
    has_line(&out, "< EOF: the server closed TCP (read returned 0)");
}

#[test]
fn the_three_length_encodings_are_named() {
    let frame = |header: &[u8], len: usize| [header, &vec![b'a'; len]].concat();
    let lines = scenarios::describe_frame(&frame(&[0x81, 0x7d], 125));
    assert_eq!(lines[1], "7d: MASK=0 len=125 (7-bit)");
    let lines = scenarios::describe_frame(&frame(&[0x81, 0x7e, 0x00, 0xd4], 212));
    assert_eq!(lines[1], "7e 00 d4: MASK=0 len=212 (16-bit, after 126)");
    let long = [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
    let lines = scenarios::describe_frame(&frame(&long, 65536));
    assert_eq!(
        lines[1],
        "7f 00 00 00 00 00 01 00 00: MASK=0 len=65536 (64-bit, after 127)"
    );
    // What the client sends uses the shortest encoding, and is masked.
    let header = scenarios::parse_header(&scenarios::masked(0x81, &[0; 200])).unwrap();
    assert_eq!(header.len, 200);
    assert_eq!(header.encoding, scenarios::LenEncoding::Bits16);
    assert_eq!(header.key, Some(scenarios::KEY));
    assert_eq!(header.size, 8);
    // A header cut short is not decoded until its last byte is there.
    assert_eq!(
        scenarios::parse_header(&[0x81, 0xfe, 0x00, 0xc8, 0x37]),
        None
    );
}

#[test]
fn no_server_is_a_one_line_error() {
    let url = Url::parse(&format!("ws://127.0.0.1:{}/", common::free_port())).unwrap();
    let mut out = Vec::new();
    let err = scenarios::run(scenarios::find("ping").unwrap(), &url, &mut out).unwrap_err();
    assert!(err.starts_with("cannot connect to 127.0.0.1:"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

fn args(list: &[&str]) -> Result<Command, String> {
    scenarios::parse_args(list.iter().map(|s| s.to_string()))
}

#[test]
fn the_command_line_names_a_scenario_and_a_url() {
    let Ok(Command::Run { scenario, url }) = args(&["split"]) else {
        panic!("split alone should run");
    };
    assert_eq!(scenario.name, "split");
    assert_eq!(url, Url::parse(scenarios::DEFAULT_URL).unwrap());
    assert_eq!(
        (url.host.as_str(), url.port, url.path.as_str()),
        ("127.0.0.1", 4000, "/")
    );
    for form in [
        &["ping", "--url", "ws://[::1]:4567/ws?x=1"][..],
        &["--url=ws://[::1]:4567/ws?x=1", "ping"],
    ] {
        let Ok(Command::Run { url, .. }) = args(form) else {
            panic!("{form:?} should run");
        };
        assert_eq!(url.host, "::1");
        assert_eq!(url.port, 4567);
        assert_eq!(url.authority, "[::1]:4567");
        assert_eq!(url.path, "/ws?x=1");
    }
    let url = Url::parse("ws://example.com").unwrap();
    assert_eq!((url.port, url.path.as_str()), (80, "/"));
    assert!(matches!(args(&["--help"]), Ok(Command::Help)));
    assert!(matches!(args(&["ping", "-h"]), Ok(Command::Help)));
}

#[test]
fn usage_errors_say_what_is_wrong() {
    let error = |list: &[&str]| args(list).unwrap_err();
    assert_eq!(error(&[]), "no scenario given");
    assert_eq!(error(&["pong"]), "unknown scenario 'pong'");
    assert_eq!(
        error(&["ping", "split"]),
        "one scenario at a time, not 'split' too"
    );
    assert_eq!(error(&["ping", "--url"]), "--url needs a value");
    assert_eq!(error(&["ping", "--verbose"]), "unknown option '--verbose'");
    assert!(error(&["ping", "--url", "wss://host/"]).starts_with("wss:// needs TLS"));
    assert!(error(&["ping", "--url", "http://host/"]).contains("not a ws://"));
    assert!(error(&["ping", "--url", "ws://host:port/"]).contains("bad port 'port'"));
    assert!(error(&["ping", "--url", "ws:///"]).contains("names no host"));
}

#[test]
fn usage_lists_every_scenario_on_a_line_of_its_own() {
    let usage = scenarios::usage();
    assert!(usage.starts_with("Usage: cargo run --example learn -- SCENARIO"));
    for scenario in SCENARIOS {
        let line = format!("  {:<12} {}", scenario.name, scenario.shows);
        has_line(&usage, &line);
    }
}

#[test]
fn the_server_trace_shows_the_same_frames_from_its_end() {
    let server = Server::start(&["--quiet", "--trace"]);
    run_on(&server, "fragmented");
    // The headers the client printed, as the server received them.
    for header in [
        "01 83 37 fa 21 3d",
        "00 82 37 fa 21 3d",
        "80 86 37 fa 21 3d",
    ] {
        server.wait_for_log(&format!("header {header};"));
    }
    server.wait_for_log("header 81 17;");
}
