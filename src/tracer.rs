//! The trace's way to stderr (`--trace`): connection threads hand their lines to one
//! writer thread through a bounded queue and never wait for it. Lines that find the queue
//! full are counted, and the count is written as soon as the writer catches up, so a slow
//! stderr costs trace lines, never a connection's time.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;

/// Trace lines that may wait at once for the writer.
const QUEUE: usize = 4096;

/// A handle to the trace writer; clones share it.
#[derive(Clone, Debug)]
pub struct Tracer {
    queue: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl Tracer {
    /// Starts the writer thread.
    pub fn start() -> io::Result<Tracer> {
        let (queue, lines) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        thread::Builder::new()
            .name("trace".to_string())
            .spawn(move || write_lines(&lines, &counted))?;
        Ok(Tracer { queue, dropped })
    }

    /// Queues `line`, prefixed with the peer it concerns, unless the queue is full.
    pub fn line(&self, peer: impl Display, line: &str) {
        let line = format!("{peer} {}", crate::escape_controls(line));
        if let Err(TrySendError::Full(_)) = self.queue.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a connection's last line (its log line) behind its trace, so it comes after
    /// every frame of the connection. A log line is never dropped: when the queue is
    /// full, it is written at once, out of order rather than lost.
    pub fn last_line(&self, line: &str) {
        let escaped = crate::escape_controls(line).into_owned();
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(escaped)
        {
            crate::log(line);
        }
    }
}

/// The writer: every line to stderr, and after a line, the count of those dropped since.
fn write_lines(lines: &Receiver<String>, dropped: &AtomicU64) {
    for line in lines {
        let mut stderr = io::stderr().lock();
        // A trace that cannot be written is lost; the server goes on.
        let _ = writeln!(stderr, "{line}");
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(
                stderr,
                "trace: {lost} lines dropped: stderr did not keep up"
            );
        }
    }
}
