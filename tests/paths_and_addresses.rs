//! Where the server can be reached: upgrades on any path, absolute-form targets (RFC 9112
//! §3.2.2), the `PORT` environment variable, and origins compared as RFC 6455 §4.2.2 says
//! (lower-cased). IPv6 addresses are in `ipv6.rs`.

mod common;

use common::{run_binary, status, upgrade_request, Client, Server};

#[test]
fn upgrades_are_accepted_on_any_path_and_query() {
    let server = Server::start(&[]);
    for target in ["/ws", "/chat?x=1", "/a/b/", "/?room=1"] {
        let mut client = Client::new(server.connect());
        client.send(upgrade_request(target).as_bytes());
        let head = client.read_head();
        assert!(head.starts_with("HTTP/1.1 101 "), "{target}: {head}");
        client.send_text(target);
        client.expect_text(&format!("Server got: {target}"));
    }
    // The log line shows the path, without the query.
    let line = server.wait_for_log(" /chat ");
    assert!(!line.contains("x=1"), "{line}");
}

#[test]
fn the_page_is_still_served_at_root_only() {
    let server = Server::start(&["--quiet"]);
    for (request, code) in [
        ("GET / HTTP/1.1", 200),
        ("HEAD /?x=1 HTTP/1.1", 200),
        ("GET /ws HTTP/1.1", 404),
        ("GET /chat?x=1 HTTP/1.1", 404),
        ("POST /ws HTTP/1.1", 404),
    ] {
        let response = server.http(format!("{request}\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(status(&response), code, "{request}: {response}");
    }
}

#[test]
fn absolute_form_targets_route_by_their_path() {
    let server = Server::start(&[]);
    let origin = format!("http://{}", server.addr);
    for (target, code) in [
        (format!("{origin}/"), 200),
        (format!("{origin}/?q=1"), 200),
        (origin.clone(), 200),
        (format!("{origin}/missing"), 404),
    ] {
        let response = server.http(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(status(&response), code, "{target}: {response}");
    }
    let mut client = Client::new(server.connect());
    client.send(upgrade_request(&format!("{origin}/ws?x=1")).as_bytes());
    assert_eq!(status(&client.read_head()), 101);
    client.send_text("absolute");
    client.expect_text("Server got: absolute");
    drop(client);
    server.wait_for_log(" /ws ");
    let response = server.http(b"GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&response), 400, "{response}");
}

#[test]
fn origins_compare_without_case_in_scheme_and_host_but_exactly_in_port() {
    let server = Server::start(&["--quiet", "--allowed-origin", "https://App.Example:8443"]);
    for (origin, code) in [
        ("https://app.example:8443", 101),
        ("HTTPS://APP.EXAMPLE:8443", 101),
        ("https://App.Example:8443", 101),
        ("https://app.example:443", 403),
        ("https://app.example", 403),
        ("http://app.example:8443", 403),
    ] {
        let request =
            upgrade_request("/").replace("\r\n\r\n", &format!("\r\nOrigin: {origin}\r\n\r\n"));
        let mut client = Client::new(server.connect());
        client.send(request.as_bytes());
        assert_eq!(status(&client.read_head()), code, "{origin}");
    }
}

#[test]
fn the_port_environment_variable_is_used_without_port() {
    let port = common::free_port();
    let server = Server::start_with_port_env(&[], &port.to_string());
    let url = format!("http://127.0.0.1:{port}");
    assert!(server.banner.contains(&url), "{}", server.banner);
    assert_eq!(server.addr, ([127, 0, 0, 1], port).into());
    let (_client, head) = server.handshake(&upgrade_request("/"));
    assert_eq!(status(&head), 101);
}

#[test]
fn the_port_option_wins_over_the_environment() {
    let server = Server::start_with_port_env(&["--port", "0"], "1");
    assert!(
        server.banner.contains("http://127.0.0.1:"),
        "{}",
        server.banner
    );
    assert!(
        !server.banner.contains("127.0.0.1:1\n"),
        "{}",
        server.banner
    );
}

#[test]
fn an_invalid_port_environment_variable_is_a_usage_error() {
    for bad in ["", "http", "65536", "-1", "80 "] {
        let output = run_binary(&[], Some(bad));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("PORT"), "{bad:?}: {stderr}");
        assert!(stderr.contains("Usage"), "{bad:?}: {stderr}");
    }
}

#[test]
fn an_invalid_bracketed_host_is_a_usage_error() {
    for bad in ["[127.0.0.1]", "[::1", "[]"] {
        let output = run_binary(&["--host", bad, "--port", "0"], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("--host"), "{bad:?}: {stderr}");
    }
}
