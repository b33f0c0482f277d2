//! IPv6 listen addresses: `--host ::1` and `--host [::1]`, and every message printing the
//! address in brackets. These need an IPv6 loopback, which not every machine has, so they
//! are ignored by a plain `cargo test`; `.ci/run` runs them with `--ignored` where `::1`
//! works, and says so where it does not. They never pass without running.

mod common;

use std::net::TcpListener;

use common::{echo, run_binary, Server};

const NEEDS_IPV6: &str = "needs an IPv6 loopback (::1): cargo test --test ipv6 -- --ignored";

#[test]
#[ignore = "needs an IPv6 loopback (::1): cargo test --test ipv6 -- --ignored"]
fn listens_on_ipv6_loopback_with_or_without_brackets() {
    TcpListener::bind("[::1]:0").expect(NEEDS_IPV6);
    for host in ["::1", "[::1]"] {
        let server = Server::start(&["--host", host]);
        assert!(server.addr.is_ipv6(), "{host}: {}", server.addr);
        let mut client = server.ws();
        echo(&mut client, "v6");
        drop(client);
        // The per-connection line prints the peer in brackets.
        let line = server.wait_for_log("websocket");
        assert!(line.starts_with("[::1]:"), "{line}");
    }
}

#[test]
#[ignore = "needs an IPv6 loopback (::1): cargo test --test ipv6 -- --ignored"]
fn the_startup_line_and_errors_print_ipv6_in_brackets() {
    let taken = TcpListener::bind("[::1]:0").expect(NEEDS_IPV6);
    let server = Server::start_with_port_env(&["--host", "::1", "--port", "0"], "1");
    assert!(
        server
            .banner
            .starts_with("pure-ws listening on http://[::1]:"),
        "{}",
        server.banner
    );
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run_binary(&["--host", "[::1]", "--port", &port], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on [::1]:{port}")),
        "{stderr}"
    );
}
