//! `--trusted-proxy`: the log line names the client a trusted proxy forwarded for
//! (`X-Forwarded-For`, or RFC 7239 `Forwarded`), and ignores those headers from anyone else.

mod common;

use std::process::Command;

use common::{upgrade_request, Client, Server};

/// Opens a WebSocket on the unique `path` with these extra header lines, drops it, and
/// returns the log line the server wrote for it.
fn log_line(server: &Server, path: &str, lines: &[&str]) -> String {
    let extra: String = lines.iter().map(|line| format!("{line}\r\n")).collect();
    let request = upgrade_request(path).replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    let mut client = Client::new(server.connect());
    client.send(request.as_bytes());
    let head = client.read_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    drop(client);
    server.wait_for_log(&format!(" {path} "))
}

#[test]
fn a_trusted_proxy_names_the_client_from_x_forwarded_for() {
    let server = Server::start(&["--trusted-proxy", "127.0.0.1"]);
    let line = log_line(
        &server,
        "/xff",
        &["X-Forwarded-For: 198.51.100.1, 203.0.113.9"],
    );
    assert!(line.starts_with("203.0.113.9 via 127.0.0.1:"), "{line}");
}

#[test]
fn trusted_hops_are_skipped_from_the_right() {
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--trusted-proxy",
        "10.0.0.2",
    ]);
    let lines = [
        "X-Forwarded-For: 198.51.100.1",
        "X-Forwarded-For: 203.0.113.9, 10.0.0.2",
    ];
    let line = log_line(&server, "/hops", &lines);
    assert!(line.starts_with("203.0.113.9 via 127.0.0.1:"), "{line}");
}

#[test]
fn a_trusted_proxy_names_the_client_from_forwarded() {
    let server = Server::start(&["--trusted-proxy", "127.0.0.1"]);
    let line = log_line(
        &server,
        "/forwarded",
        &[r#"Forwarded: for="[2001:db8:cafe::17]:4711";proto=https"#],
    );
    assert!(
        line.starts_with("[2001:db8:cafe::17]:4711 via 127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn forwarded_headers_from_untrusted_peers_are_ignored() {
    for args in [&[][..], &["--trusted-proxy", "10.0.0.1"]] {
        let server = Server::start(args);
        let line = log_line(
            &server,
            "/untrusted",
            &["X-Forwarded-For: 203.0.113.9", "Forwarded: for=203.0.113.9"],
        );
        assert!(line.starts_with("127.0.0.1:"), "{args:?}: {line}");
        assert!(!line.contains("203.0.113.9"), "{args:?}: {line}");
    }
}

#[test]
fn malformed_or_unknown_values_fall_back_to_the_peer() {
    let server = Server::start(&["--trusted-proxy", "127.0.0.1"]);
    for (i, header) in [
        "X-Forwarded-For: example.com",
        "X-Forwarded-For: 203.0.113.9,",
        "Forwarded: for=unknown",
        "Forwarded: for=_hidden",
        "Forwarded: for=[2001:db8::1]",
        r#"Forwarded: for="203.0.113.9"#,
    ]
    .into_iter()
    .enumerate()
    {
        let line = log_line(&server, &format!("/malformed{i}"), &[header]);
        assert!(line.starts_with("127.0.0.1:"), "{header}: {line}");
        assert!(!line.contains(" via "), "{header}: {line}");
    }
}

#[test]
fn an_invalid_trusted_proxy_is_a_usage_error() {
    for bad in ["proxy.example", "10.0.0.0/8", ""] {
        let output = Command::new(env!("CARGO_BIN_EXE_pure-ws"))
            .args(["--port", "0", "--trusted-proxy", bad])
            .output()
            .expect("run pure-ws");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("--trusted-proxy"), "{bad:?}: {stderr}");
    }
}
