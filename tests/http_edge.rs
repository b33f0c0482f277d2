//! The HTTP edge, as strict as the frame layer: what RFC 9110 and RFC 9112 say a server
//! MUST refuse is refused with a 4xx (or the 501 and 505 they name) and a plain-text reason
//! naming the rule, what they say it MUST accept is accepted, and nothing a peer sends
//! reaches the log raw.

mod common;

use std::time::Duration;

use common::wire::{masked, CLOSE, PING, PONG, TEXT};
use common::{body, close_payload, echo, header, status, upgrade_request, upgrade_with};
use common::{Client, Server};

/// Sends `request` and returns the whole response, up to the server's close.
fn ask(server: &Server, request: &str) -> String {
    server.http(request.as_bytes())
}

/// Checks that `request` is refused with `code` and a plain-text reason naming `rule`.
fn refused(server: &Server, request: &str, code: u16, rule: &str) {
    let response = ask(server, request);
    assert_eq!(status(&response), code, "{request:?} -> {response}");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=utf-8"),
        "{response}"
    );
    assert!(body(&response).contains(rule), "{request:?} -> {response}");
}

/// Checks that `request` upgrades.
fn upgrades(server: &Server, request: &str) -> Client {
    let (client, head) = server.handshake(request);
    assert_eq!(status(&head), 101, "{request:?} -> {head}");
    client
}

#[test]
fn an_upgrade_with_content_is_refused_not_read_as_frames() {
    let server = Server::start(&["--quiet"]);
    // Content shaped like a masked frame must never be echoed.
    let frame = masked(true, TEXT, b"smuggled");
    let mut request = upgrade_with(&format!("Content-Length: {}\r\n", frame.len())).into_bytes();
    request.extend_from_slice(&frame);
    let response = server.http(&request);
    assert_eq!(status(&response), 400, "{response}");
    assert!(body(&response).contains("RFC 9110 §9.3.1"), "{response}");
    assert!(!response.contains("smuggled"), "{response}");
    refused(
        &server,
        &(upgrade_with("Content-Length: 5\r\n") + "hello"),
        400,
        "must not have content",
    );
    refused(
        &server,
        &(upgrade_with("Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n"),
        400,
        "must not have content",
    );
}

#[test]
fn content_framing_that_cannot_be_relied_on_is_refused() {
    let server = Server::start(&["--quiet"]);
    let get = |lines: &str| format!("GET / HTTP/1.1\r\nHost: x\r\n{lines}\r\n");
    for lines in [
        "Content-Length: 5x\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: +5\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
    ] {
        refused(&server, &get(lines), 400, "RFC 9112 §6");
    }
    refused(
        &server,
        &get("Transfer-Encoding: gzip, chunked\r\n"),
        501,
        "RFC 9112 §6.1",
    );
    refused(
        &server,
        "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "RFC 9112 §6.1",
    );
}

#[test]
fn a_content_length_of_zero_or_a_repeated_equal_one_is_accepted() {
    let server = Server::start(&["--quiet"]);
    let mut client = upgrades(&server, &upgrade_with("Content-Length: 0\r\n"));
    echo(&mut client, "zero");
    let page = ask(
        &server,
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
    );
    assert_eq!(status(&page), 200, "{page}");
}

#[test]
fn control_characters_in_the_target_or_a_header_value_get_400() {
    let server = Server::start(&[]);
    refused(&server, &upgrade_request("/\x1b[2J"), 400, "RFC 9112 §3.2");
    for value in ["a\0b", "a\rb", "\x1b[31mred", "a\x7fb", "a\x08b"] {
        refused(
            &server,
            &upgrade_with(&format!("X-Note: {value}\r\n")),
            400,
            "RFC 9110 §5.5",
        );
    }
    // What real clients send in header values still works: tabs, spaces, UTF-8.
    let mut client = upgrades(
        &server,
        &upgrade_with("User-Agent: a\tb (c; d)\r\nX-Name: caf\u{e9}\r\n"),
    );
    echo(&mut client, "fine");
}

#[test]
fn nothing_a_peer_sends_reaches_the_log_raw() {
    let server = Server::start(&["--trace"]);
    // Input the parser accepts, each holding control characters: a header value with a
    // C1 control (obs-text), a text message, a ping payload, a close reason.
    let mut client = upgrades(&server, &upgrade_with("X-Note: caf\u{9b}31m\r\n"));
    echo(&mut client, "\x1b[2J\x07\0done");
    client.send_frame(true, PING, b"\x1b]0;title\x07");
    assert_eq!(client.read_frame().opcode, PONG);
    client.close_cleanly(1000, "bye\r\nforged line");
    drop(client);
    // A refused request, with the bytes the parser refuses.
    let _ = ask(&server, "GET /\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n");
    server.wait_for_log("closed by peer with 1000");
    server.wait_for_log("400 refused");
    let lines = server.stderr();
    for line in &lines {
        assert!(
            !line.chars().any(char::is_control),
            "a raw control character in {line:?}"
        );
    }
    let all = lines.join("\n");
    assert!(all.contains("caf\\u{9b}31m"), "{all}");
    assert!(all.contains("bye\\r\\nforged line"), "{all}");
    assert!(all.contains("http < GET /\\u{1b}[2J HTTP/1.1"), "{all}");
}

#[test]
fn host_must_appear_once_with_a_valid_value() {
    let server = Server::start(&["--quiet"]);
    let with_host = |host: &str| upgrade_request("/").replace("Host: localhost", host);
    // A Host line with an empty value, then malformed values.
    for host in [
        "Host:",
        "Host: a b",
        "Host: x:y:z",
        "Host: [::1",
        "Host: u@h",
    ] {
        refused(&server, &with_host(host), 400, "RFC 9112 §3.2");
    }
    refused(
        &server,
        &with_host("Host: a\r\nHost: a"),
        400,
        "more than one Host",
    );
    refused(
        &server,
        "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
        "more than one Host",
    );
    // No Host line at all.
    refused(
        &server,
        &upgrade_request("/").replace("Host: localhost\r\n", ""),
        400,
        "needs a Host",
    );
    for host in [
        "Host: localhost:4000",
        "Host: [::1]:4000",
        "Host: [::1]",
        "Host: 127.0.0.1",
        "host: Example.COM",
    ] {
        upgrades(&server, &with_host(host));
    }
}

#[test]
fn a_426_names_websocket_in_its_upgrade_header() {
    let server = Server::start(&["--quiet"]);
    let request = upgrade_request("/").replace("Version: 13", "Version: 8");
    let response = ask(&server, &request);
    assert_eq!(status(&response), 426, "{response}");
    assert_eq!(header(&response, "upgrade"), Some("websocket"));
    assert_eq!(header(&response, "connection"), Some("Upgrade, close"));
    assert_eq!(header(&response, "sec-websocket-version"), Some("13"));
}

#[test]
fn a_repeated_sec_websocket_version_is_refused() {
    let server = Server::start(&["--quiet"]);
    refused(
        &server,
        &upgrade_with("Sec-WebSocket-Version: 13\r\n"),
        400,
        "RFC 6455 §11.3.5",
    );
}

#[test]
fn malformed_extension_offers_are_refused_and_good_ones_ignored() {
    let server = Server::start(&["--quiet"]);
    for offer in [";;=,", "", "permessage-deflate; =1", "a; b=\"c d\""] {
        refused(
            &server,
            &upgrade_with(&format!("Sec-WebSocket-Extensions: {offer}\r\n")),
            400,
            "RFC 6455 §9.1",
        );
    }
    let (mut client, head) = server.handshake(&upgrade_with(
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, \
         x-webkit-deflate-frame\r\nSec-WebSocket-Extensions: foo; bar=\"baz\"\r\n",
    ));
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(header(&head, "sec-websocket-extensions"), None, "{head}");
    echo(&mut client, "plain");
}

#[test]
fn empty_subprotocol_list_elements_are_ignored() {
    let server = Server::start(&["--quiet"]);
    for (offer, selected) in [
        ("chat,", "chat"),
        ("chat,,superchat", "chat"),
        (" , chat", "chat"),
    ] {
        let (_, head) = server.handshake(&upgrade_with(&format!(
            "Sec-WebSocket-Protocol: {offer}\r\n"
        )));
        assert_eq!(status(&head), 101, "{offer:?}: {head}");
        assert_eq!(header(&head, "sec-websocket-protocol"), Some(selected));
    }
    for offer in ["", ",", " , "] {
        refused(
            &server,
            &upgrade_with(&format!("Sec-WebSocket-Protocol: {offer}\r\n")),
            400,
            "at least one",
        );
    }
}

#[test]
fn absolute_form_targets_must_be_http_or_https() {
    let server = Server::start(&["--quiet"]);
    for target in ["ftp://x/", "ws://x/", "file:///etc/passwd"] {
        refused(&server, &upgrade_request(target), 400, "RFC 9110 §4.2");
    }
    refused(
        &server,
        &upgrade_request("http://user@x/"),
        400,
        "RFC 9110 §4.2",
    );
    upgrades(&server, &upgrade_request("http://x/"));
    upgrades(&server, &upgrade_request("HTTPS://[::1]:4000/ws?room=1"));
}

#[test]
fn head_never_gets_content_even_when_it_asks_to_upgrade() {
    let server = Server::start(&["--quiet"]);
    let response = ask(&server, &upgrade_request("/").replace("GET ", "HEAD "));
    assert_eq!(status(&response), 405, "{response}");
    assert_eq!(body(&response), "", "{response}");
    assert_ne!(header(&response, "content-length"), Some("0"));
}

#[test]
fn upgrade_is_ignored_in_http_1_0() {
    let server = Server::start(&["--quiet"]);
    let request = upgrade_request("/").replace("HTTP/1.1", "HTTP/1.0");
    let response = ask(&server, &request);
    assert_eq!(status(&response), 200, "{response}");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let response = ask(
        &server,
        &upgrade_request("/ws").replace("HTTP/1.1", "HTTP/1.0"),
    );
    assert_eq!(status(&response), 404, "{response}");
}

#[test]
fn other_http_major_versions_get_505() {
    let server = Server::start(&["--quiet"]);
    let response = ask(&server, "GET / HTTP/2.0\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 505, "{response}");
}

#[test]
fn a_late_byte_after_the_close_handshake_does_not_reset_the_connection() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    client.send_frame(true, CLOSE, &close_payload(1000, ""));
    assert_eq!(client.read_frame().close_code(), Some(1000));
    // The server closes TCP first (RFC 6455 §7.1.1): its FIN comes, and then it drains.
    client.expect_eof();
    // A pong that was late: the server still reads and drops it, so no reset comes back.
    client.send_frame(true, PONG, b"late");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        client.stream.take_error().unwrap().is_none(),
        "the server reset the connection"
    );
    client.send_frame(true, PONG, b"later");
    std::thread::sleep(Duration::from_millis(100));
    assert!(client.stream.take_error().unwrap().is_none());
}
