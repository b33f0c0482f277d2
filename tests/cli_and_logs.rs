//! The command line and the logs: usage and exit codes, the startup line, one line per
//! ended connection, and `--quiet`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::process::wait_for_idle_threads;
use common::{echo, eventually, run_binary, Killed, Server};

// ---------------------------------------------------------------------------------------
// Observability

#[test]
fn each_ended_connection_logs_peer_path_ending_duration_and_counts() {
    let server = Server::start(&[]);
    let mut client = server.ws();
    let peer = client.stream.local_addr().unwrap().to_string();
    echo(&mut client, "one");
    echo(&mut client, "two");
    client.close_cleanly(1000, "bye");
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
    client.close_cleanly(1000, "");
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

#[test]
fn a_quiet_server_logs_nothing_and_still_serves() {
    let server = Server::start(&["--handshake-timeout", "0.2"]);
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(server.stderr(), Vec::<String>::new());
    let mut client = server.ws();
    echo(&mut client, "still here");
}

/// Starts the server on a free port with its stdout closed before it prints anything, and
/// returns it once it answers `GET /`; `None` when the port was taken by someone else
/// meanwhile (the server then exits with status 1, or another listener answered).
fn start_with_stdout_closed() -> Option<Killed> {
    let port = common::free_port();
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_pure-ws"))
            .args(["--port", &port.to_string(), "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pure-ws"),
    );
    // Whoever started the server stopped reading before it printed anything.
    drop(child.0.stdout.take());
    let listening = eventually(Duration::from_secs(10), || {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert_eq!(status.code(), Some(1), "the server died: {status}");
            return Ok(None);
        }
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(Some)
            .map_err(|err| format!("never listened: {err}"))
    });
    let stream = listening?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut client = common::Client::new(stream);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut page = String::new();
    let _ = std::io::Read::read_to_string(&mut client.stream, &mut page);
    page.contains("<title>pure-ws</title>").then_some(child)
}

#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    let mut child = (0..5)
        .find_map(|_| start_with_stdout_closed())
        .expect("no free port in five tries");
    thread::sleep(Duration::from_millis(100));
    assert!(child.0.try_wait().unwrap().is_none(), "the server exited");
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
        let output = run_binary(args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_port_in_use_is_a_one_line_error_not_a_panic() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = run_binary(&["--port", &port], None);
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
    let output = run_binary(&["--help"], None);
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
