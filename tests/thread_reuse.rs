//! Threads are reused: a connection is served by a thread that was waiting in `accept`, so
//! connection churn does not create a thread per connection, and waiting threads end after
//! their idle timeout. Thread ids are read from `/proc/PID/task`, so this runs on Linux only.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::process::{threads, wait_for_idle_threads, IDLE_THREADS};
use common::wire::CLOSE;
use common::{eventually, Server};

/// The server's thread ids right now.
fn task_ids(server: &Server) -> HashSet<u64> {
    std::fs::read_dir(format!("/proc/{}/task", server.pid()))
        .expect("read /proc/PID/task")
        .flatten()
        .filter_map(|task| task.file_name().to_str()?.parse().ok())
        .collect()
}

/// One connection: handshake, an echo, then the close handshake.
fn one_connection(server: &Server, seen: &mut HashSet<u64>) {
    let mut client = server.ws();
    client.send_text("churn");
    client.expect_text("Server got: churn");
    // The connection's thread is alive now: note every thread id.
    seen.extend(task_ids(server));
    client.send_frame(true, CLOSE, &[0x03, 0xE8]);
    assert_eq!(client.read_frame().close_code(), Some(1000));
    client.expect_eof();
}

#[test]
fn sequential_connections_are_served_by_reused_threads() {
    let server = Server::start(&["--quiet"]);
    let mut seen = task_ids(&server);
    let at_start = seen.len();
    for _ in 0..60 {
        one_connection(&server, &mut seen);
    }
    // Without reuse every connection would bring a new thread id (60 of them).
    let new_threads = seen.len() - at_start;
    assert!(
        new_threads <= 4,
        "60 sequential connections used {new_threads} threads"
    );
}

#[test]
fn waiting_threads_end_after_their_idle_timeout() {
    let server = Server::start(&["--quiet"]);
    wait_for_idle_threads(&server, Duration::from_secs(10));
    let clients: Vec<_> = (0..20).map(|_| server.ws()).collect();
    // 20 serving, and a waiting one again once the keeper has started it.
    eventually(Duration::from_secs(5), || match threads(&server) {
        n if n >= IDLE_THREADS + 20 => Ok(()),
        n => Err(format!("{n} threads for 20 connections")),
    });
    drop(clients);
    // Threads wait 2 s for a connection, then end (all but one).
    wait_for_idle_threads(&server, Duration::from_secs(10));
    // And a new connection is still served.
    one_connection(&server, &mut HashSet::new());
}
