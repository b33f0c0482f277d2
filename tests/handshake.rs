//! RFC 6455 §4.2: the opening handshake and each way it is refused.

mod common;

use common::wire::{self, TEXT};
use common::{status, upgrade_request, Client, Server, SAMPLE_KEY};

/// Sends `request` and returns the response head.
fn handshake(server: &Server, request: &str) -> String {
    server.handshake(request).1
}

#[test]
fn accepts_with_the_rfc_accept_value() {
    let server = Server::start(&["--quiet"]);
    let head = handshake(&server, &upgrade_request("/"));
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
}

#[test]
fn accepts_token_lists_and_any_header_case() {
    let server = Server::start(&["--quiet"]);
    let request = upgrade_request("/")
        .replace("Upgrade: websocket", "UPGRADE: WebSocket")
        .replace("Connection: Upgrade", "connection: keep-alive, Upgrade");
    assert_eq!(status(&handshake(&server, &request)), 101);
}

#[test]
fn never_selects_extensions() {
    let server = Server::start(&["--quiet"]);
    let request = upgrade_request("/").replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    let head = handshake(&server, &request);
    assert_eq!(status(&head), 101);
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nsec-websocket-protocol: chat\r\n"),
        "{head}"
    );
    assert!(!lower.contains("sec-websocket-extensions"), "{head}");
}

#[test]
fn rejects_a_wrong_version_with_426_and_the_supported_version() {
    let server = Server::start(&["--quiet"]);
    for version in ["8", "12", "14", "13, 8"] {
        let request = upgrade_request("/").replace(
            "Sec-WebSocket-Version: 13",
            &format!("Sec-WebSocket-Version: {version}"),
        );
        let head = handshake(&server, &request);
        assert_eq!(status(&head), 426, "{version}: {head}");
        assert!(head.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{head}");
    }
}

#[test]
fn rejects_keys_that_are_not_base64_of_16_bytes() {
    let server = Server::start(&["--quiet"]);
    for key in [
        "",
        "short",
        "dGhlIHNhbXBsZQ==",
        "dGhlIHNhbXBsZSBub25jZSEh",
        "!!!!!!!!!!!!!!!!!!!!!!==",
    ] {
        let request = upgrade_request("/").replace(SAMPLE_KEY, key);
        assert_eq!(status(&handshake(&server, &request)), 400, "key {key:?}");
    }
}

#[test]
fn rejects_missing_or_broken_upgrade_parts_with_400() {
    let server = Server::start(&["--quiet"]);
    let good = upgrade_request("/");
    let broken = [
        good.replace("Connection: Upgrade", "Connection: keep-alive"),
        good.replace("Connection: Upgrade\r\n", ""),
        good.replace("Sec-WebSocket-Version: 13\r\n", ""),
        good.replace(&format!("Sec-WebSocket-Key: {SAMPLE_KEY}\r\n"), ""),
        good.replace("Host: localhost\r\n", ""),
        good.replace(
            "\r\n\r\n",
            &format!("\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\n\r\n"),
        ),
    ];
    for request in broken {
        let head = handshake(&server, &request);
        assert_eq!(status(&head), 400, "{request:?} -> {head}");
    }
}

#[test]
fn rejects_upgrades_with_other_methods() {
    let server = Server::start(&["--quiet"]);
    for path in ["/", "/elsewhere"] {
        let post = upgrade_request(path).replace("GET ", "POST ");
        assert_eq!(status(&handshake(&server, &post)), 405, "{path}");
    }
}

#[test]
fn other_upgrade_protocols_are_served_as_plain_http() {
    let server = Server::start(&["--quiet"]);
    let request = upgrade_request("/").replace("Upgrade: websocket", "Upgrade: h2c");
    assert_eq!(status(&handshake(&server, &request)), 200);
}

#[test]
fn frames_sent_right_behind_the_request_are_not_lost() {
    let server = Server::start(&["--quiet"]);
    let mut client = Client::new(server.connect());
    let mut bytes = upgrade_request("/").into_bytes();
    bytes.extend(wire::masked(true, TEXT, b"early"));
    client.send(&bytes);
    assert_eq!(status(&client.read_head()), 101);
    client.expect_text("Server got: early");
}
