//! Plain HTTP: the page, its headers, and every error the server answers with.

mod common;

use common::{body, header, Server};

fn get(server: &Server, request_line_and_headers: &str) -> String {
    server.http(format!("{request_line_and_headers}\r\n\r\n").as_bytes())
}

#[test]
fn serves_the_client_page_at_root() {
    let server = Server::start(&["--quiet"]);
    let response = get(&server, "GET / HTTP/1.1\r\nHost: localhost");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert_eq!(
        header(&response, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = body(&response);
    assert_eq!(
        header(&response, "content-length"),
        Some(&*page.len().to_string())
    );
    assert_eq!(page, pure_ws::page::PAGE);
}

#[test]
fn head_returns_the_same_headers_without_a_body() {
    let server = Server::start(&["--quiet"]);
    let full = get(&server, "GET / HTTP/1.1\r\nHost: localhost");
    let head = get(&server, "HEAD / HTTP/1.1\r\nHost: localhost");
    assert_eq!(body(&head), "");
    assert_eq!(
        head,
        full.split("\r\n\r\n").next().unwrap().to_string() + "\r\n\r\n"
    );
}

#[test]
fn query_strings_do_not_change_the_route() {
    let server = Server::start(&["--quiet"]);
    let response = get(&server, "GET /?from=test HTTP/1.1\r\nHost: localhost");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
}

#[test]
fn other_paths_are_not_found_with_a_plain_text_reason() {
    let server = Server::start(&["--quiet"]);
    for path in ["/favicon.ico", "/index.html", "/../etc/passwd"] {
        let response = get(&server, &format!("GET {path} HTTP/1.1\r\nHost: localhost"));
        assert!(
            response.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{response}"
        );
        assert_eq!(
            header(&response, "content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(body(&response).contains("only / is served"), "{response}");
    }
}

#[test]
fn other_methods_are_not_allowed() {
    let server = Server::start(&["--quiet"]);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let response = get(
            &server,
            &format!("{method} / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0"),
        );
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
        assert!(!body(&response).is_empty());
    }
}

#[test]
fn the_asterisk_form_is_for_options_and_is_not_served() {
    let server = Server::start(&["--quiet"]);
    let response = get(&server, "OPTIONS * HTTP/1.1\r\nHost: localhost");
    assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
    assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
    let response = get(&server, "GET * HTTP/1.1\r\nHost: localhost");
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(body(&response).contains("OPTIONS only"), "{response}");
}

#[test]
fn a_post_with_a_body_still_reads_its_answer() {
    // The server answers without reading the body; it must not reset the connection
    // before the client has read the 405.
    let server = Server::start(&["--quiet"]);
    let body = "x".repeat(100_000);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = server.http(request.as_bytes());
    assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
}

#[test]
fn malformed_requests_are_bad_requests() {
    let server = Server::start(&["--quiet"]);
    for request in [
        "GARBAGE\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "GET / HTTP/1.1\r\nno-colon\r\n\r\n",
    ] {
        let response = server.http(request.as_bytes());
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{request:?} -> {response}"
        );
        assert!(
            body(&response).starts_with("400 Bad Request: "),
            "{response}"
        );
    }
}

#[test]
fn http_1_1_requests_need_a_host() {
    let server = Server::start(&["--quiet"]);
    let response = server.http(b"GET / HTTP/1.1\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    let response = server.http(b"GET / HTTP/1.0\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
}

#[test]
fn head_errors_have_headers_but_no_body() {
    let server = Server::start(&["--quiet"]);
    let response = get(&server, "HEAD /missing HTTP/1.1\r\nHost: localhost");
    assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
    assert_ne!(header(&response, "content-length"), Some("0"));
    assert_eq!(body(&response), "");
}
