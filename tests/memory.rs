//! Memory the server hands back: after a burst of large messages, once every connection
//! has gone, the server's resident memory returns close to where it started (issue 11).

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::process::rss;
use common::wire::{masked, BINARY, CLOSE};
use common::{eventually, Server};

const CONNECTIONS: usize = 16;
const MESSAGE_SIZE: usize = 4 << 20;
/// Rounds of one message per connection: glibc's malloc decides where a large buffer goes
/// from the ones freed before it, so a single round would not show what a server running
/// for a while does.
const ROUNDS: usize = 3;

/// The server's resident set size in KiB.
fn rss_kib(server: &Server) -> u64 {
    rss(server) / 1024
}

/// Waits up to 5 s for the server's RSS to be at most `bound` KiB; `why` says what the
/// bound is, for the failure.
fn rss_within_5_s(server: &Server, bound: u64, why: &str) {
    eventually(Duration::from_secs(5), || match rss_kib(server) {
        rss if rss <= bound => Ok(()),
        rss => Err(format!("RSS {rss} KiB, over {why} ({bound} KiB)")),
    });
}

#[test]
fn memory_returns_to_baseline_after_a_burst_of_large_messages() {
    let server = Server::start(&["--echo", "exact", "--quiet"]);
    let baseline = rss_kib(&server);
    let payload: Vec<u8> = (0..MESSAGE_SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let frame = Arc::new(masked(true, BINARY, &payload));
    let payload = Arc::new(payload);
    let barrier = Arc::new(Barrier::new(CONNECTIONS));

    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let mut client = server.ws();
            let (frame, payload, barrier) = (frame.clone(), payload.clone(), barrier.clone());
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    // All connections' messages are in the server at the same time.
                    barrier.wait();
                    client.send(&frame);
                    let echo = client.read_frame();
                    assert_eq!((echo.fin, echo.opcode), (true, BINARY));
                    assert!(
                        echo.payload == *payload,
                        "the echo differs from the message"
                    );
                }
                client.send(&masked(true, CLOSE, &1000u16.to_be_bytes()));
                assert_eq!(client.read_frame().close_code(), Some(1000));
                client.expect_eof();
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }

    // Far from what a burst that stays resident leaves (tens of MiB), and from the idle
    // baseline (2 MiB): allocator bookkeeping and thread stacks freed late fit under it.
    let bound = 2 * baseline + 8 * 1024;
    let why = format!("2 x the {baseline} KiB baseline + 8 MiB after the burst");
    rss_within_5_s(&server, bound, &why);
}

#[test]
fn a_quiet_connection_hands_back_its_large_message_buffer() {
    let server = Server::start(&["--echo", "exact", "--quiet"]);
    let baseline = rss_kib(&server);
    let payload = vec![7u8; 8 << 20];
    let mut client = server.ws();
    for _ in 0..2 {
        client.send(&masked(true, BINARY, &payload));
        assert_eq!(client.read_frame().payload.len(), payload.len());
    }
    // The buffer is kept while messages keep coming, and handed back about a second after
    // the connection goes quiet, while it stays open.
    let bound = baseline + 4 * 1024;
    let why = format!("the {baseline} KiB baseline + 4 MiB with the connection quiet");
    rss_within_5_s(&server, bound, &why);
    // The connection still works, and a later large message still echoes.
    client.send(&masked(true, BINARY, &payload));
    assert_eq!(client.read_frame().payload.len(), payload.len());
}
