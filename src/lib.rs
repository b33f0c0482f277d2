//! pure-ws: a WebSocket echo server that implements RFC 6455 by hand.
//!
//! A sans-I/O protocol core inside a thin blocking shell:
//!
//! - [`config`]: every setting, limit and timeout, with its default.
//! - [`http`]: the bounded, incremental request-head reader and parser; plain HTTP responses.
//! - [`handshake`]: upgrade validation, subprotocol selection and `Sec-WebSocket-Accept`
//!   (RFC 6455 §4).
//! - [`forwarded`]: the client behind a trusted proxy (`X-Forwarded-For`, RFC 7239), for
//!   the log.
//! - [`frame`]: frame headers, opcodes, length formats and masking (RFC 6455 §5.2–5.3).
//! - [`close`]: close codes and close payloads (RFC 6455 §5.5.1, §7.4).
//! - [`protocol`]: the per-connection state machine: fragmentation, control frames, UTF-8,
//!   limits, the close handshake, failing. Bytes in, events and bytes out; no I/O.
//! - [`error`]: protocol violations as data, each with its close code.
//! - [`echo`]: the application: a message in, the reply out.
//! - [`inspect`]: frames as they crossed the wire, as trace lines (`--trace`) and as the
//!   JSON of the page's frame inspector.
//! - [`page`]: the page served at `/`, joined from `static/` into one document at build time.
//! - [`server`]: the shell: accept loop, a thread per connection, reads, writes and timeouts.
//! - [`workers`]: the threads: each waits in `accept` itself and serves what it accepted,
//!   so churn neither creates threads nor hands connections between them.
//! - [`tracer`]: the trace's writer thread, which a slow stderr cannot make connections wait for.
//!
//! `main.rs` only turns the command line into a [`Config`] and runs a [`Server`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod close;
pub mod config;
pub mod connection_log;
pub mod echo;
pub mod error;
pub mod exchange;
pub mod forwarded;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod inspect;
pub mod page;
pub mod protocol;
pub mod record;
pub mod server;
pub mod session;
pub mod socket;
pub mod tracer;
pub mod workers;

pub use config::Config;
pub use server::Server;

/// What an incremental parser made of the bytes it was given so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Done: the value, with how many bytes it took.
    Complete(T),
    /// Everything seen so far is valid, and more bytes are needed.
    Partial,
}

/// Writes one line to stderr, its control characters escaped. A log that cannot be written
/// (stderr closed, say) must not take the server down, so a failed write is ignored.
pub(crate) fn log(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{}", escape_controls(line));
}

/// `line` with every control character (C0, DEL and C1) written as a Rust escape
/// (`\u{1b}`, `\n`, `\0`): whatever a peer sent, a log or trace line stays one line and
/// cannot move a terminal's cursor, change its colours or forge another line.
pub(crate) fn escape_controls(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut escaped = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_a_log_line_raw() {
        let line = "GET /\u{1b}[2J\0\r\n\u{7f}\u{9b}31m caf\u{e9} \\ \"";
        let escaped = escape_controls(line);
        assert!(!escaped.chars().any(char::is_control), "{escaped}");
        assert_eq!(
            escaped,
            "GET /\\u{1b}[2J\\0\\r\\n\\u{7f}\\u{9b}31m caf\u{e9} \\ \""
        );
        assert!(matches!(
            escape_controls("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
    }
}
