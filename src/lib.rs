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
//! - [`frame`]: frame headers, opcodes and masking (RFC 6455 §5.2–5.3).
//! - [`protocol`]: the per-connection state machine: fragmentation, control frames, UTF-8,
//!   limits and the close handshake. Bytes in, events and bytes out; no I/O.
//! - [`error`]: protocol violations as data, each with its close code.
//! - [`echo`]: the application: a message in, the reply out.
//! - [`server`]: the shell: accept loop, a thread per connection, reads, writes and timeouts.
//!
//! `main.rs` only turns the command line into a [`Config`] and runs a [`Server`].

#![forbid(unsafe_code)]

pub mod config;
pub mod echo;
pub mod error;
pub mod forwarded;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod protocol;
pub mod server;

pub use config::Config;
pub use server::Server;
