//! Hardening: the limits, timeouts and failure modes of the real `pure-ws` binary, each
//! checked over raw TCP. Memory and thread counts are read from `/proc/PID`, so the
//! tests that measure them run on Linux only.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::wire::{self, masked, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, TEXT};
use common::{close_payload, upgrade_request, Client, Server};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

// ---------------------------------------------------------------------------------------
// Helpers

/// A field of `/proc/PID/status` as a number (kB for `VmRSS` and `VmData`).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// Resident memory of the server, in bytes.
fn rss(server: &Server) -> u64 {
    proc_status(server.pid(), "VmRSS") * 1024
}

/// Private writable address space of the server, in bytes: an allocation shows here even
/// before its pages are touched (and so before it shows in RSS).
fn data_size(server: &Server) -> u64 {
    proc_status(server.pid(), "VmData") * 1024
}

/// The threads of an idle server: the main thread, which accepts, and the refuser, which
/// answers connections over `--max-connections` with 503. Every other thread serves one
/// connection.
const IDLE_THREADS: usize = 2;

/// The server's threads, counted as the tasks in `/proc/PID/task`.
fn threads(server: &Server) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("read tasks");
    tasks.count()
}

/// Waits until the server is down to its `IDLE_THREADS`, so every connection thread has
/// ended, failing the test after `limit`.
fn wait_for_idle_threads(server: &Server, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let now = threads(server);
        if now == IDLE_THREADS {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} threads after {limit:?}, not the {IDLE_THREADS} of an idle server"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `condition` until it holds, failing the test after `limit`.
fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// An upgrade request for `/` with `extra` header lines (each ending in CRLF) added.
fn upgrade_with(extra: &str) -> String {
    upgrade_request("/").replacen("\r\n\r\n", &format!("\r\n{extra}\r\n"), 1)
}

/// Sends `request` on a new connection and returns the client with the response head.
fn handshake(server: &Server, request: &str) -> (Client, String) {
    let mut client = Client::new(server.connect());
    client.send(request.as_bytes());
    let head = client.read_head();
    (client, head)
}

/// Reads a close frame and returns its code, without answering it.
fn read_close(client: &mut Client) -> Option<u16> {
    let frame = client.read_frame();
    assert_eq!(frame.opcode, CLOSE, "expected a close frame, got {frame:?}");
    frame.close_code()
}

/// Sends a text message and checks the echo.
fn echo(client: &mut Client, text: &str) {
    client.send_text(text);
    client.expect_text(&format!("Server got: {text}"));
}

/// A fresh connection completes the handshake and an echo round trip.
fn still_echoes(server: &Server) {
    let mut client = server.ws();
    echo(&mut client, "still serving");
}

/// Closes `stream` with a TCP reset instead of a FIN. The kernel resets a socket closed
/// with unread input, so this waits (without consuming it) for input from the server.
fn reset(stream: TcpStream) {
    let mut byte = [0];
    assert_eq!(stream.peek(&mut byte).expect("input to leave unread"), 1);
    drop(stream);
}

/// Runs the binary with `args` to completion (it must exit within a few seconds).
fn run_binary(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pure-ws"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pure-ws");
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("pure-ws {args:?} did not exit: {output:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A child process killed when dropped, so a failed assertion does not leak it.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------
// --max-message-size

#[test]
fn a_frame_header_past_the_max_message_size_gets_1009_before_its_payload() {
    let server = Server::start(&["--max-message-size", "1000"]);
    let mut client = server.ws();
    client.send_frame(true, BINARY, &[7; 1000]);
    let reply = client.read_frame();
    assert_eq!((reply.opcode, reply.payload.len()), (BINARY, 1012));
    client.send(&wire::claim(FIN | BINARY, 1001));
    assert_eq!(read_close(&mut client), Some(1009));
    // The refused frame's payload still follows it; then the close handshake completes.
    client.send(&[0; 1001]);
    client.send_frame(true, CLOSE, &close_payload(1009, ""));
    client.expect_eof();
}

#[test]
fn a_continuation_header_past_the_max_message_size_gets_1009_before_its_payload() {
    let server = Server::start(&["--max-message-size", "100"]);
    let mut client = server.ws();
    client.send_frame(false, TEXT, &[b'a'; 60]);
    client.send_frame(false, CONTINUATION, &[b'b'; 30]);
    client.send(&wire::claim(FIN | CONTINUATION, 11));
    assert_eq!(read_close(&mut client), Some(1009));
    client.send(&[0; 11]);
    client.send_frame(true, CLOSE, &close_payload(1009, ""));
    client.expect_eof();
}

#[test]
fn huge_length_claims_get_1009_and_cost_no_memory() {
    for limit in [None, Some("4294967296")] {
        let args: Vec<&str> = limit.map_or(vec![], |l| vec!["--max-message-size", l]);
        let server = Server::start(&args);
        let claims = if limit.is_none() {
            &[i64::MAX as u64, GIB][..]
        } else {
            &[i64::MAX as u64][..]
        };
        for &claim in claims {
            let mut client = server.ws();
            let (rss_before, data_before) = (rss(&server), data_size(&server));
            client.send(&wire::claim(FIN | BINARY, claim));
            assert_eq!(read_close(&mut client), Some(1009), "claim {claim}");
            let what = format!("claim {claim} (limit {limit:?})");
            assert_no_allocation_for_claims(&server, rss_before, data_before, &what);
        }
        still_echoes(&server);
    }
}

#[test]
fn a_1_gib_claim_within_a_large_limit_allocates_only_what_arrives() {
    let server = Server::start(&["--max-message-size", "4294967296", "--ping-interval", "0.5"]);
    let mut client = server.ws();
    let (rss_before, data_before) = (rss(&server), data_size(&server));
    client.send(&wire::claim(FIN | BINARY, GIB));
    client.send(&[0xAB; 64 * 1024]);
    // The keepalive ping only comes once the server has taken all of that and gone idle.
    assert_eq!(client.read_frame().opcode, PING);
    let what = "a 1 GiB claim with 64 KiB that arrived";
    assert_no_allocation_for_claims(&server, rss_before, data_before, what);
    still_echoes(&server);
}

/// Neither touched memory (RSS) nor reserved memory (VmData: an allocation for a claimed
/// length shows there even when its pages are never touched) grew with a length claim.
fn assert_no_allocation_for_claims(server: &Server, rss_before: u64, data_before: u64, what: &str) {
    let growth = rss(server).saturating_sub(rss_before);
    assert!(growth < 4 * MIB, "{what}: RSS grew {growth} bytes");
    let growth = data_size(server).saturating_sub(data_before);
    assert!(growth < 256 * MIB, "{what}: VmData grew {growth} bytes");
}

#[test]
fn two_hundred_thousand_empty_fragments_cost_no_memory_and_echo_correctly() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    echo(&mut client, "warm-up");
    let before = rss(&server);
    client.send_frame(false, TEXT, b"a");
    let empty: Vec<u8> = (0..200_000)
        .flat_map(|_| masked(false, CONTINUATION, b""))
        .collect();
    for chunk in empty.chunks(256 * 1024) {
        client.send(chunk);
    }
    client.send_frame(true, CONTINUATION, b"b");
    client.expect_text("Server got: ab");
    let growth = rss(&server).saturating_sub(before);
    assert!(
        growth < 4 * MIB,
        "RSS grew {growth} bytes over 200,000 empty fragments"
    );
}

// ---------------------------------------------------------------------------------------
// The request head

#[test]
fn a_request_head_over_8_kib_gets_431() {
    let server = Server::start(&[]);
    let response =
        server.http(upgrade_with(&format!("X-Big: {}\r\n", "a".repeat(9000))).as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    let (_, head) = handshake(
        &server,
        &upgrade_with(&format!("X-Big: {}\r\n", "a".repeat(7900))),
    );
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "a head just under 8 KiB: {head}"
    );
}

#[test]
fn more_than_100_header_lines_get_431_and_100_are_accepted() {
    let server = Server::start(&[]);
    // The upgrade request has 5 header lines of its own.
    let pad = |n: usize| {
        (0..n)
            .map(|i| format!("X-Pad-{i}: {i}\r\n"))
            .collect::<String>()
    };
    let response = server.http(upgrade_with(&pad(96)).as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    let (mut client, head) = handshake(&server, &upgrade_with(&pad(95)));
    assert!(
        head.starts_with("HTTP/1.1 101 "),
        "100 header lines: {head}"
    );
    echo(&mut client, "hundred");
}

#[test]
fn a_request_head_dribbled_one_byte_per_write_completes() {
    let server = Server::start(&[]);
    let pad: String = (0..60)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "v".repeat(40)))
        .collect();
    let mut client = Client::new(server.connect());
    client.stream.set_nodelay(true).unwrap();
    for byte in upgrade_with(&pad).bytes() {
        client.send(&[byte]);
    }
    let head = client.read_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    echo(&mut client, "dribbled");
}

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
    first.send_frame(true, CLOSE, &close_payload(1000, ""));
    assert_eq!(read_close(&mut first), Some(1000));
    first.expect_eof();
    drop(first);
    let mut third = None;
    wait_until(Duration::from_secs(5), "a free slot", || {
        let (client, head) = handshake(&server, &upgrade_request("/"));
        third = head.starts_with("HTTP/1.1 101 ").then_some(client);
        third.is_some()
    });
    echo(&mut third.unwrap(), "three");
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
        let (_, head) = handshake(&server, &upgrade_with(origin));
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{origin:?}: {head}"
        );
    }
}

#[test]
fn without_allowed_origin_any_origin_may_open_a_websocket() {
    let server = Server::start(&[]);
    let (mut client, head) = handshake(&server, &upgrade_with("Origin: https://evil.example\r\n"));
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    echo(&mut client, "anyone");
}

// ---------------------------------------------------------------------------------------
// Faults

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

// ---------------------------------------------------------------------------------------
// Observability

#[test]
fn each_ended_connection_logs_peer_path_ending_duration_and_counts() {
    let server = Server::start(&[]);
    let mut client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    echo(&mut client, "one");
    echo(&mut client, "two");
    client.send_frame(true, CLOSE, &close_payload(1000, "bye"));
    assert_eq!(read_close(&mut client), Some(1000));
    client.expect_eof();
    drop(client);
    let line = server.wait_for_log(&peer);
    assert!(line.starts_with(&format!("{peer} / ")), "{line}");
    assert!(line.contains("1000"), "no close code: {line}");
    assert!(
        line.contains("in: 2 msgs") && line.contains("out: 2 msgs"),
        "{line}"
    );
    assert!(line.contains("bytes"), "{line}");
    let after = line.split(" after ").nth(1).expect("a duration");
    let secs = after.split('s').next().unwrap();
    assert!(secs.parse::<f64>().is_ok(), "duration {secs:?} in {line}");
}

#[test]
fn quiet_silences_the_per_connection_lines() {
    let server = Server::start(&["--quiet"]);
    let mut client = server.ws();
    echo(&mut client, "shh");
    client.send_frame(true, CLOSE, &close_payload(1000, ""));
    assert_eq!(read_close(&mut client), Some(1000));
    client.expect_eof();
    drop(client);
    let page = server.http(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 "));
    let missing = server.http(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 "));
    // Every connection thread has ended, and so has written any line it would write.
    wait_for_idle_threads(&server, Duration::from_secs(10));
    thread::sleep(Duration::from_millis(200)); // let the stderr pipe reader catch up
    assert_eq!(server.stderr(), Vec::<String>::new());
}

#[test]
fn startup_prints_the_address_and_the_limits_in_force() {
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_pure-ws"))
            .args([
                "--port",
                "0",
                "--max-message-size",
                "1234",
                "--max-connections",
                "7",
            ])
            .args(["--handshake-timeout", "2.5", "--ping-interval", "0.5"])
            .args(["--allowed-origin", "https://a.example", "--echo", "exact"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pure-ws"),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    assert!(first.contains("http://127.0.0.1:"), "{first}");
    for limit in ["1234", "7", "2.5", "0.5", "https://a.example", "exact"] {
        assert!(second.contains(limit), "{limit} missing from {second:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The command line

#[test]
fn a_bad_command_line_prints_usage_and_exits_with_2() {
    for args in [
        &["--bogus"][..],
        &["--port"],
        &["--port", "http"],
        &["--port", "70000"],
        &["--max-message-size", "-1"],
        &["--max-connections", "0"],
        &["--handshake-timeout", "soon"],
        &["--ping-interval", "-1"],
        &["--echo", "loud"],
    ] {
        let output = run_binary(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_port_in_use_is_a_one_line_error_not_a_panic() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run_binary(&["--port", &port]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert_ne!(
        output.status.code(),
        Some(101),
        "a panic's exit status: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&port) && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn help_lists_every_option() {
    let output = run_binary(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for option in [
        "--host",
        "--port",
        "--echo",
        "--max-message-size",
        "--max-connections",
        "--handshake-timeout",
        "--ping-interval",
        "--allowed-origin",
        "--quiet",
        "--help",
        "--version",
    ] {
        assert!(help.contains(option), "{option} missing from --help");
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
    drop(held);
    // Once descriptors are free again, the backlog drains and new clients are served.
    let mut client = server.ws();
    client.send_text("still alive");
    client.expect_text("Server got: still alive");
}
