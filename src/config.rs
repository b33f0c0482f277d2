//! Every setting, limit and timeout of the server in one place, with its default.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::echo::EchoMode;
use crate::handshake::Policy;

/// How the server runs. `Config::default()` is what `pure-ws` with no options uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on: an IP address (IPv6 without brackets) or a host name.
    pub host: String,
    /// Port to listen on; 0 picks any free port.
    pub port: u16,
    /// How messages are answered.
    pub echo: EchoMode,
    /// Largest data message accepted, in payload bytes; larger ones get close code 1009.
    pub max_message_size: usize,
    /// Open connections at most; more get `503` with `Retry-After`.
    pub max_connections: usize,
    /// Total time a connection has to send its complete request head.
    pub handshake_timeout: Duration,
    /// Silence after which a ping is sent, and after another such silence the connection
    /// is closed with 1001. `None` disables keepalive.
    pub ping_interval: Option<Duration>,
    /// How long to wait for the peer's close frame (or its FIN) once ours is sent.
    pub close_timeout: Duration,
    /// `Origin` values allowed to open a WebSocket; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Subprotocols the server may select; empty selects the client's first offer.
    pub subprotocols: Vec<String>,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers name the client in the log.
    pub trusted_proxies: Vec<IpAddr>,
    /// Largest request head, in bytes (`431` past it).
    pub max_head_bytes: usize,
    /// Most header lines in a request head (`431` past it).
    pub max_header_lines: usize,
    /// No per-connection log lines.
    pub quiet: bool,
    /// Every frame and handshake step on stderr, a line each (`--trace`).
    pub trace: bool,
    /// Threads with no connection that may wait in `accept` at once for the next one.
    pub max_idle_threads: usize,
    /// How long such a thread waits for a connection before it ends, unless it is the last
    /// one waiting.
    pub idle_thread_timeout: Duration,
    /// How long a quiet connection keeps a large (over 256 KiB) message buffer for its next
    /// message before handing it back.
    pub spare_memory_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            host: "127.0.0.1".to_string(),
            port: 4000,
            echo: EchoMode::Prefix,
            max_message_size: 16 * 1024 * 1024,
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(3),
            allowed_origins: Vec::new(),
            subprotocols: Vec::new(),
            trusted_proxies: Vec::new(),
            max_head_bytes: 8 * 1024,
            max_header_lines: 100,
            quiet: false,
            trace: false,
            max_idle_threads: 64,
            idle_thread_timeout: Duration::from_secs(2),
            spare_memory_timeout: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// How long one write may block: a peer that stops reading cannot hold a thread longer.
    pub fn write_timeout(&self) -> Duration {
        self.ping_interval.unwrap_or(Duration::from_secs(30))
    }

    /// What a handshake must meet besides RFC 6455: the allowed origins and subprotocols.
    pub fn handshake_policy(&self) -> Policy<'_> {
        Policy {
            allowed_origins: &self.allowed_origins,
            subprotocols: &self.subprotocols,
        }
    }

    /// `host:port` as it is written in a URL: an IPv6 address in brackets (`[::1]:4000`),
    /// so the port cannot be read as part of the address.
    pub fn listen_address(&self) -> String {
        match self.host.parse::<Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]:{}", self.port),
            Err(_) => format!("{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_bracket_ipv6() {
        let at = |host: &str| {
            Config {
                host: host.to_string(),
                port: 4001,
                ..Config::default()
            }
            .listen_address()
        };
        assert_eq!(at("::1"), "[::1]:4001");
        assert_eq!(at("::"), "[::]:4001");
        assert_eq!(at("127.0.0.1"), "127.0.0.1:4001");
        assert_eq!(at("localhost"), "localhost:4001");
    }
}
