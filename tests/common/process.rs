//! The server process as the kernel sees it: memory and threads from `/proc/PID`, so the
//! tests that measure them run on Linux only.

use std::time::Duration;

use super::{eventually, Server};

pub const MIB: u64 = 1024 * 1024;

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
pub fn rss(server: &Server) -> u64 {
    proc_status(server.pid(), "VmRSS") * 1024
}

/// Private writable address space of the server, in bytes: an allocation shows here even
/// before its pages are touched (and so before it shows in RSS).
pub fn data_size(server: &Server) -> u64 {
    proc_status(server.pid(), "VmData") * 1024
}

/// The threads of an idle server: the main thread, which starts the others; the refuser,
/// which answers connections over `--max-connections` with 503; and one thread waiting in
/// `accept`. Every other thread serves one connection, or waits (a quiet 2 s at most) for
/// the next one after its own ended.
pub const IDLE_THREADS: usize = 3;

/// The server's threads, counted as the tasks in `/proc/PID/task`.
pub fn threads(server: &Server) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("read tasks");
    tasks.count()
}

/// Waits until the server is down to its `IDLE_THREADS`, so every connection thread has
/// ended, failing the test after `limit`.
pub fn wait_for_idle_threads(server: &Server, limit: Duration) {
    eventually(limit, || match threads(server) {
        IDLE_THREADS => Ok(()),
        now => Err(format!(
            "{now} threads, not the {IDLE_THREADS} of an idle server"
        )),
    });
}
