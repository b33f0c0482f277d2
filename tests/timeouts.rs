//! Timeouts: every wait on a peer is bounded, from the handshake (slowloris) through
//! keepalive pings and the close handshake to a client that never reads.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::process::{rss, MIB};
use common::wire::{masked, BINARY, PING, PONG};
use common::{echo, read_close, still_echoes, Server};

// ---------------------------------------------------------------------------------------
// --handshake-timeout

/// Writes one byte of a never-ending request head to each stream every 200 ms until `stop`.
fn dribble(streams: Vec<TcpStream>, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut streams = streams;
        for stream in &mut streams {
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nX-Slow: ");
        }
        while !stop.load(Ordering::Relaxed) {
            for stream in &mut streams {
                let _ = stream.write_all(b"a");
            }
            thread::sleep(Duration::from_millis(200));
        }
    })
}

#[test]
fn the_handshake_timeout_is_a_total_so_a_dribbling_client_gets_408() {
    let server = Server::start(&["--handshake-timeout", "1"]);
    let mut stream = server.connect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = dribble(vec![stream.try_clone().unwrap()], Arc::clone(&stop));
    let started = Instant::now();
    let mut response = String::new();
    let read = stream.read_to_string(&mut response);
    let lived = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(stream); // the server logs once it has seen our FIN
    read.expect("a 408 response, then EOF");
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    // A per-read timeout would never fire: a byte arrives every 200 ms.
    assert!(
        lived < Duration::from_secs(4),
        "the dribbling connection lived {lived:?}"
    );
    assert!(
        server.wait_for_log("408").contains(" - "),
        "logged with no path"
    );
}

#[test]
fn two_hundred_dribbling_connections_do_not_delay_a_new_client() {
    let server = Server::start(&["--handshake-timeout", "3", "--quiet"]);
    let slow: Vec<TcpStream> = (0..200).map(|_| server.connect()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = dribble(
        slow.iter().map(|s| s.try_clone().unwrap()).collect(),
        Arc::clone(&stop),
    );
    thread::sleep(Duration::from_millis(300)); // let every dribbler start
    let started = Instant::now();
    still_echoes(&server);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "the new client waited {waited:?}, as long as the dribblers' handshake timeout"
    );
    // And every dribbler is cut off in the end.
    for mut stream in slow {
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("a 408, then EOF");
        assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

// ---------------------------------------------------------------------------------------
// --ping-interval

#[test]
fn a_client_that_answers_pings_stays_connected_across_intervals() {
    let server = Server::start(&["--ping-interval", "0.3"]);
    let mut client = server.ws();
    for _ in 0..4 {
        let ping = client.read_frame();
        assert_eq!(ping.opcode, PING, "{ping:?}");
        client.send_frame(true, PONG, &ping.payload);
    }
    echo(&mut client, "still here");
}

#[test]
fn a_client_that_never_answers_pings_gets_1001_then_tcp_close() {
    let server = Server::start(&["--ping-interval", "0.3"]);
    let mut client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    assert_eq!(client.read_frame().opcode, PING);
    client.expect_close(1001);
    assert!(server.wait_for_log(&peer).contains("1001"));
}

#[test]
fn ping_interval_0_disables_keepalive_pings() {
    let server = Server::start(&["--ping-interval", "0"]);
    let mut client = server.ws();
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut byte = [0];
    match client.stream.read(&mut byte) {
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?} ({byte:?})"),
    }
    client
        .stream
        .set_read_timeout(Some(common::READ_TIMEOUT))
        .unwrap();
    echo(&mut client, "no pings");
}

// ---------------------------------------------------------------------------------------
// The close handshake and writes are bounded

#[test]
fn the_close_handshake_is_bounded_when_the_client_never_answers() {
    let server = Server::start(&[]);
    let mut client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    client.send(&[0x81, 0x02, b'h', b'i']); // unmasked: a protocol error
    let started = Instant::now();
    assert_eq!(read_close(&mut client), Some(1002));
    client.expect_eof();
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(6),
        "closed TCP only after {waited:?}"
    );
    assert!(server.wait_for_log(&peer).contains("1002"));
}

#[test]
fn a_close_the_server_starts_is_dropped_when_it_goes_unanswered() {
    // RFC 6455 §7.1.2-7.1.3: after its close frame the server waits for the peer's, but
    // only for the close timeout (3 s). A client that ignores both the ping and the close
    // it brings is dropped then, not held for ever.
    let server = Server::start(&["--ping-interval", "0.3"]);
    let mut client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    assert_eq!(client.read_frame().opcode, PING);
    assert_eq!(read_close(&mut client), Some(1001));
    client.expect_eof();
    let log = server.wait_for_log(&peer);
    assert!(log.contains("our close frame went unanswered"), "{log}");
}

/// Starts a client that pushes up to 50 MiB of 64 KiB messages and never reads. The thread
/// returns how much it wrote and how long after its last successful write the server
/// cut the connection.
fn never_reading_client(server: &Server) -> (String, thread::JoinHandle<(u64, Duration)>) {
    let client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    let message = masked(true, BINARY, &[0x5A; 64 * 1024]);
    let mut stream = client.stream;
    let writer = thread::spawn(move || {
        let (mut sent, mut last_progress) = (0, Instant::now());
        while sent < 50 * MIB && stream.write_all(&message).is_ok() {
            sent += message.len() as u64;
            last_progress = Instant::now();
        }
        (sent, last_progress.elapsed())
    });
    (peer, writer)
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_server_memory_or_stall_others() {
    let server = Server::start(&["--ping-interval", "1"]);
    let before = rss(&server);
    let (peer, writer) = never_reading_client(&server);
    let (started, mut peak, mut served_meanwhile) = (Instant::now(), before, false);
    while !writer.is_finished() {
        peak = peak.max(rss(&server));
        if !served_meanwhile && started.elapsed() > Duration::from_millis(500) {
            still_echoes(&server);
            served_meanwhile = true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let (sent, _) = writer.join().unwrap();
    assert!(
        served_meanwhile,
        "the writer ended before another client was served"
    );
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 20 * MIB,
        "RSS grew {growth} bytes while {sent} bytes were pushed"
    );
    assert!(server.wait_for_log(&peer).contains("write timed out"));
}

#[test]
fn a_client_that_never_reads_is_cut_off_after_the_write_timeout() {
    // The write timeout equals the ping interval: 1.5 s here.
    let server = Server::start(&["--ping-interval", "1.5", "--quiet"]);
    let (_, writer) = never_reading_client(&server);
    let (_, held) = writer.join().unwrap();
    // Once our writes stall the server is stuck in a write; it must give up within the
    // write timeout (a second is allowed on top for scheduling).
    assert!(
        held < Duration::from_millis(2500),
        "the server held a stalled write for {held:?}"
    );
}
