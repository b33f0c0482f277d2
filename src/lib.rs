//! pure-ws: a WebSocket echo server that implements RFC 6455 by hand.
//!
//! A sans-I/O protocol core inside a thin blocking shell. The modules in layers, from the
//! bottom up: each module uses only modules listed above it (`tests/layers.rs` checks it,
//! reading this table), so the core never depends on what presents or drives it.
//!
//! | layer       | module               | its one job                                                      |
//! |-------------|----------------------|------------------------------------------------------------------|
//! | wire        | [`close`]            | close codes and close payloads, checked off the wire (§5.5.1, §7.4) |
//! | wire        | [`error`]            | protocol violations as data, each with its close code            |
//! | wire        | [`frame`]            | frame headers, opcodes, the three length formats, masking (§5.2–5.3) |
//! | records     | [`record`]           | what crossed the wire, as plain data, for the trace and inspector |
//! | core        | [`message`]          | what the core and the application share: messages, events, parts |
//! | core        | `assembly`           | the message in progress: one buffer, UTF-8 checked as it arrives |
//! | core        | [`protocol`]         | the per-connection state machine: bytes in, events and bytes out |
//! | http        | [`grammar`]          | tokens, quoted strings, lists and authorities (RFC 9110, RFC 3986) |
//! | http        | [`http`]             | the bounded request-head reader, the strict parser, responses    |
//! | http        | [`handshake`]        | upgrade validation, subprotocols, `Sec-WebSocket-Accept` (§4)    |
//! | http        | [`forwarded`]        | the client behind a trusted proxy, for the log                   |
//! | http        | [`page`]             | the page served at `/`, embedded at build time                   |
//! | application | [`echo`]             | a message in, the reply out                                      |
//! | application | [`config`]           | every setting, limit and timeout, with its default               |
//! | rendering   | [`trace`]            | records and the handshake as trace lines, with the reasons       |
//! | rendering   | [`inspect`]          | records as the page's JSON, its commands, the inspector's glue   |
//! | shell       | [`socket`]           | a connection's socket: options, counted reads and writes, closing |
//! | shell       | [`tracer`]           | the trace's writer thread, which never makes a connection wait   |
//! | shell       | [`connection_log`]   | the line logged when a connection ends, and how far it got       |
//! | shell       | [`workers`]          | the threads: each waits in `accept` and serves what it accepted  |
//! | shell       | [`session`]          | the WebSocket session: read, process, write, keep alive          |
//! | shell       | [`exchange`]         | the HTTP phase: the request head, the page, errors, the upgrade  |
//! | shell       | [`server`]           | binding, admission, isolation of each connection, the 503s       |
//!
//! `main.rs` only turns the command line into a [`Config`] and runs a [`Server`]. The crate
//! root holds the little every layer shares: [`Status`] and the escaping log writer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod assembly;
pub mod close;
pub mod config;
pub mod connection_log;
pub mod echo;
pub mod error;
pub mod exchange;
pub mod forwarded;
pub mod frame;
pub mod grammar;
pub mod handshake;
pub mod http;
pub mod inspect;
pub mod message;
pub mod page;
pub mod protocol;
pub mod record;
pub mod server;
pub mod session;
pub mod socket;
pub mod trace;
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
