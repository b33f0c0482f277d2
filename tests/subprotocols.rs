//! RFC 6455 §4.2.2 /subprotocol/: which `Sec-WebSocket-Protocol` the server answers with,
//! and how a malformed offer is refused.

mod common;

use common::{body, header, run_binary, upgrade_with, Server};

/// An upgrade request to `/` with these extra header lines.
fn offering(lines: &[&str]) -> String {
    let extra: String = lines.iter().map(|line| format!("{line}\r\n")).collect();
    upgrade_with(&extra)
}

/// Checks a 101 that selected `expected`, and that the connection echoes.
fn expect_selected(server: &Server, lines: &[&str], expected: Option<&str>) {
    let (mut client, head) = server.handshake(&offering(lines));
    assert!(head.starts_with("HTTP/1.1 101 "), "{lines:?}: {head}");
    assert_eq!(
        header(&head, "sec-websocket-protocol"),
        expected,
        "{lines:?}: {head}"
    );
    client.send_text("hi");
    client.expect_text("Server got: hi");
}

#[test]
fn selects_the_first_offered_subprotocol_by_default() {
    let server = Server::start(&["--quiet"]);
    expect_selected(&server, &["Sec-WebSocket-Protocol: chat"], Some("chat"));
    expect_selected(
        &server,
        &["Sec-WebSocket-Protocol: v2.json, chat,superchat"],
        Some("v2.json"),
    );
}

#[test]
fn answers_without_the_header_when_none_is_offered() {
    let server = Server::start(&["--quiet"]);
    expect_selected(&server, &[], None);
    let server = Server::start(&["--quiet", "--subprotocol", "chat"]);
    expect_selected(&server, &[], None);
}

#[test]
fn subprotocol_options_restrict_the_choice_to_the_first_listed_offer() {
    let server = Server::start(&[
        "--quiet",
        "--subprotocol",
        "superchat",
        "--subprotocol=chat",
    ]);
    expect_selected(
        &server,
        &["Sec-WebSocket-Protocol: mqtt, chat, superchat"],
        Some("chat"),
    );
    expect_selected(
        &server,
        &["Sec-WebSocket-Protocol: superchat"],
        Some("superchat"),
    );
}

#[test]
fn no_match_is_answered_without_the_header() {
    let server = Server::start(&["--quiet", "--subprotocol", "chat"]);
    expect_selected(&server, &["Sec-WebSocket-Protocol: mqtt, Chat"], None);
}

#[test]
fn repeated_protocol_headers_form_one_list() {
    let server = Server::start(&["--quiet", "--subprotocol", "c"]);
    let lines = ["Sec-WebSocket-Protocol: a, b", "sec-websocket-protocol: c"];
    expect_selected(&server, &lines, Some("c"));
    let server = Server::start(&["--quiet"]);
    expect_selected(&server, &lines, Some("a"));
}

#[test]
fn malformed_protocol_lists_are_refused_with_400_and_a_reason() {
    let server = Server::start(&["--quiet"]);
    for lines in [
        &["Sec-WebSocket-Protocol:"][..],
        &["Sec-WebSocket-Protocol: ,"],
        &["Sec-WebSocket-Protocol: chat superchat"],
        &["Sec-WebSocket-Protocol: \"chat\""],
        &["Sec-WebSocket-Protocol: chat/1.0"],
        &["Sec-WebSocket-Protocol: chat, chat"],
        &[
            "Sec-WebSocket-Protocol: chat",
            "Sec-WebSocket-Protocol: chat",
        ],
    ] {
        let response = server.http(offering(lines).as_bytes());
        assert!(
            response.starts_with("HTTP/1.1 400 "),
            "{lines:?}: {response}"
        );
        assert!(
            response.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"),
            "{response}"
        );
        let reason = body(&response);
        assert!(
            reason.contains("Sec-WebSocket-Protocol"),
            "{lines:?}: {reason}"
        );
    }
}

#[test]
fn the_log_line_names_the_selected_subprotocol() {
    let server = Server::start(&[]);
    let (client, head) = server.handshake(&offering(&["Sec-WebSocket-Protocol: chat"]));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    drop(client);
    let line = server.wait_for_log("websocket");
    assert!(line.contains(" / subprotocol chat websocket"), "{line}");
}

#[test]
fn a_subprotocol_option_that_is_not_a_token_is_a_usage_error() {
    for name in ["", "two words", "a,b", "chat/1"] {
        let output = run_binary(&["--port", "0", "--subprotocol", name], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name:?}: {stderr}");
        assert!(stderr.contains("--subprotocol"), "{name:?}: {stderr}");
    }
}
