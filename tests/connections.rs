//! Connections: who may connect and how many at once, and what a connection's abrupt end or
//! a lack of file descriptors leaves behind. Threads are counted in `/proc/PID/task`.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::process::wait_for_idle_threads;
use common::wire::{self, BINARY, FIN};
use common::{echo, eventually, still_echoes, upgrade_request, upgrade_with, Server};

// ---------------------------------------------------------------------------------------
// --max-connections

#[test]
fn over_max_connections_a_client_gets_503_until_a_slot_frees() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut first = server.ws();
    let mut second = server.ws();
    let response = server.http(upgrade_request("/").as_bytes());
    assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
    assert!(response.contains("\r\nRetry-After: "), "{response}");
    echo(&mut first, "one");
    echo(&mut second, "two");
    first.close_cleanly(1000, "");
    drop(first);
    let mut third = eventually(Duration::from_secs(5), || {
        let (client, head) = server.handshake(&upgrade_request("/"));
        match head.starts_with("HTTP/1.1 101 ") {
            true => Ok(client),
            false => Err(format!("no free slot yet: {head}")),
        }
    });
    echo(&mut third, "three");
    echo(&mut second, "two again");
}

// ---------------------------------------------------------------------------------------
// --allowed-origin

#[test]
fn only_allowed_origins_may_open_a_websocket() {
    let server = Server::start(&[
        "--allowed-origin",
        "https://a.example",
        "--allowed-origin",
        "https://b.example",
    ]);
    for (origin, status) in [
        ("", "403"),
        ("Origin: https://evil.example\r\n", "403"),
        ("Origin: https://a.example.evil\r\n", "403"),
        ("Origin: https://a.example\r\n", "101"),
        ("Origin: https://b.example\r\n", "101"),
    ] {
        let (_, head) = server.handshake(&upgrade_with(origin));
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{origin:?}: {head}"
        );
    }
}

#[test]
fn without_allowed_origin_any_origin_may_open_a_websocket() {
    let server = Server::start(&[]);
    let (mut client, head) = server.handshake(&upgrade_with("Origin: https://evil.example\r\n"));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    echo(&mut client, "anyone");
}

// ---------------------------------------------------------------------------------------
// Faults

/// Closes `stream` with a TCP reset instead of a FIN. The kernel resets a socket closed
/// with unread input, so this waits (without consuming it) for input from the server.
fn reset(stream: TcpStream) {
    let mut byte = [0];
    assert_eq!(stream.peek(&mut byte).expect("input to leave unread"), 1);
    drop(stream);
}

#[test]
fn three_hundred_abrupt_disconnects_leave_no_thread_behind() {
    let server = Server::start(&["--handshake-timeout", "30"]);
    still_echoes(&server);
    // The echo's connection thread ends: the count really falls back to idle.
    wait_for_idle_threads(&server, Duration::from_secs(10));
    let addr = server.addr;
    let workers: Vec<_> = (0..3)
        .map(|_| {
            thread::spawn(move || {
                for i in 0..100 {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
                    if i % 3 == 0 {
                        // Vanish mid-handshake (FIN).
                        stream
                            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpg")
                            .unwrap();
                        drop(stream);
                        continue;
                    }
                    // Vanish mid-frame: 10 bytes of a 1000-byte frame arrive, then a FIN,
                    // or a reset (the 101 response is left unread for that).
                    stream.write_all(upgrade_request("/").as_bytes()).unwrap();
                    let mut byte = [0];
                    stream.peek(&mut byte).unwrap();
                    stream.write_all(&wire::claim(FIN | BINARY, 1000)).unwrap();
                    stream.write_all(&[0; 10]).unwrap();
                    if i % 3 == 1 {
                        reset(stream);
                    } else {
                        drop(stream);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    wait_for_idle_threads(&server, Duration::from_secs(5));
    still_echoes(&server);
    // Each kind of disconnect really happened, and each is logged for what it was.
    let log = server.stderr().join("\n");
    for ending in [
        "before a complete request",
        "without a close frame",
        "reset by peer",
    ] {
        assert!(
            log.contains(ending),
            "no connection ended {ending:?}:\n{log}"
        );
    }
}

#[test]
fn running_out_of_file_descriptors_is_logged_and_survived() {
    // Room for the standard streams, the listener and a handful of connections.
    let server = Server::start_with_fd_limit(12, &[]);
    let mut held: Vec<_> = (0..12).map(|_| server.connect()).collect();
    for stream in &mut held {
        // Whatever the server could accept gets a full request; the rest wait in the backlog.
        let _ = stream.write_all(common::upgrade_request("/").as_bytes());
    }
    let line = server.wait_for_log("accept failed");
    assert!(line.contains("open files"), "{line}");
    // Every waiting thread retries every 100 ms, but the failure is logged once a second.
    let since = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    let lines = server
        .stderr()
        .iter()
        .filter(|line| line.contains("accept failed"))
        .count();
    let allowed = 2 + since.elapsed().as_secs() as usize;
    assert!(lines <= allowed, "{lines} 'accept failed' lines in 1.5 s");
    drop(held);
    // Once descriptors are free again, the backlog drains and new clients are served.
    let mut client = server.ws();
    client.send_text("still alive");
    client.expect_text("Server got: still alive");
}
