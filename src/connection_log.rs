//! The connection log: who a connection came from, where it went, how far it got, how it
//! ended, and how much crossed each way, written as one line when it ends; and, with
//! `--trace`, its trace lines.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use crate::close::CloseCode;
use crate::error::ProtocolError;
use crate::forwarded::ClientAddr;
use crate::http::{Body, Rejection};
use crate::socket::Wire;
use crate::tracer::Tracer;

/// How far a connection got: what can still be sent if its thread panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The request is not answered yet; the answer carries a body or not.
    Request(Body),
    /// An HTTP response went out: the connection only closes now.
    Answered,
    /// The WebSocket is open: no close frame went out yet.
    WebSocket,
    /// Our close frame went out (or the close handshake is over).
    Closing,
}

/// How a connection ended: the middle of its log line.
#[derive(Debug)]
pub enum Ending {
    /// The page went out.
    PageServed,
    /// An HTTP error went out.
    Refused(Rejection),
    /// The peer closed before its request head was complete.
    GoneBeforeRequest,
    /// Reading the request head failed.
    ReadFailed(io::Error),
    /// The socket's options (no Nagle delay, the timeouts) could not be set.
    SetupFailed(io::Error),
    /// The `101` could not be written.
    HandshakeFailed(io::Error),
    /// The peer closed the WebSocket, with this code if it sent one.
    ClosedByPeer(Option<CloseCode>),
    /// The peer broke the protocol.
    Failed(ProtocolError),
    /// The peer's stream ended with no close frame.
    Abnormal,
    /// The peer did not answer a ping: close 1001 went out.
    PingTimeout,
    /// The inspector's page asked the server to close: close 1000 went out.
    ClosedOnRequest,
    /// A close we started went unanswered within the close timeout.
    CloseTimeout,
    /// The peer stopped reading: a write timed out.
    WriteTimedOut,
    /// Another socket error.
    Io(io::Error),
    /// The connection's thread panicked (a bug).
    Panicked,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::PageServed => f.write_str("200 page served"),
            Ending::Refused(rejection) => {
                write!(
                    f,
                    "{} refused: {}",
                    rejection.status().0,
                    rejection.message()
                )
            }
            Ending::GoneBeforeRequest => f.write_str("closed by peer before a complete request"),
            Ending::ReadFailed(err) => write!(f, "read error before a complete request: {err}"),
            Ending::SetupFailed(err) => write!(f, "could not set the socket's options: {err}"),
            Ending::HandshakeFailed(err) => {
                write!(f, "error while completing the handshake: {err}")
            }
            Ending::ClosedByPeer(Some(code)) => write!(f, "websocket: closed by peer with {code}"),
            Ending::ClosedByPeer(None) => f.write_str("websocket: closed by peer with no code"),
            Ending::Failed(err) => write!(
                f,
                "websocket: failed with close {} sent: {err}",
                err.close_code()
            ),
            Ending::Abnormal => {
                f.write_str("websocket: peer closed TCP without a close frame (1006)")
            }
            Ending::PingTimeout => f.write_str("websocket: no answer to ping, close 1001 sent"),
            Ending::ClosedOnRequest => {
                f.write_str("websocket: close 1000 sent at the inspector page's request")
            }
            Ending::CloseTimeout => {
                f.write_str("websocket: our close frame went unanswered; connection dropped")
            }
            Ending::WriteTimedOut => {
                f.write_str("websocket: peer stopped reading, write timed out")
            }
            Ending::Io(err) => write!(f, "websocket: connection error: {err}"),
            Ending::Panicked => f.write_str("internal error: the connection's thread panicked"),
        }
    }
}

/// What is logged about a connection when it ends.
pub struct ConnectionLog {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client a trusted proxy forwarded the request for.
    pub client: Option<ClientAddr>,
    /// The request's path, `-` before one is parsed.
    pub path: String,
    /// The selected subprotocol.
    pub subprotocol: Option<String>,
    started: Instant,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Where the trace goes, with `--trace`.
    tracer: Option<Tracer>,
    /// How far the connection got.
    pub stage: Stage,
}

impl ConnectionLog {
    /// The log of a connection from `peer`, traced to `tracer` if given.
    pub fn new(peer: SocketAddr, tracer: Option<Tracer>) -> ConnectionLog {
        ConnectionLog {
            peer,
            tracer,
            client: None,
            path: "-".to_string(),
            subprotocol: None,
            started: Instant::now(),
            messages_in: 0,
            messages_out: 0,
            stage: Stage::Request(Body::Included),
        }
    }

    /// Whether this connection is traced.
    pub fn tracing(&self) -> bool {
        self.tracer.is_some()
    }

    /// Adds a line to the trace, if the connection is traced.
    pub fn trace(&self, line: &str) {
        if let Some(tracer) = &self.tracer {
            tracer.line(self.peer, line);
        }
    }

    /// Logs the line of a connection that ended as `ending` says, with the bytes that
    /// crossed `wire`: behind its trace lines when it is traced, so its story stays in
    /// order, or at once.
    pub fn finish(&self, ending: &Ending, wire: &Wire) {
        let line = self.line(ending, wire);
        match &self.tracer {
            Some(tracer) => tracer.last_line(&line),
            None => crate::log(&line),
        }
    }

    /// The line logged when the connection ends.
    fn line(&self, ending: &Ending, wire: &Wire) -> String {
        let who = match self.client {
            Some(client) => format!("{client} via {}", self.peer),
            None => self.peer.to_string(),
        };
        let subprotocol = match &self.subprotocol {
            Some(name) => format!(" subprotocol {name}"),
            None => String::new(),
        };
        format!(
            "{who} {}{subprotocol} {ending} after {:.3}s; in: {} msgs, {} bytes; out: {} msgs, \
             {} bytes",
            self.path,
            self.started.elapsed().as_secs_f64(),
            self.messages_in,
            wire.bytes_in,
            self.messages_out,
            wire.bytes_out
        )
    }
}
