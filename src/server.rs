//! The blocking shell: an accept loop, one thread per connection, `read` into a buffer,
//! hand the bytes to the protocol, `write` what comes back. Every protocol decision lives in
//! `http`, `handshake` and `protocol`; this module only moves bytes and keeps time.

use std::convert::Infallible;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::close::{CloseCode, ClosePayload};
use crate::config::Config;
use crate::echo;
use crate::error::ProtocolError;
use crate::forwarded::{self, ClientAddr};
use crate::frame::{self, Opcode};
use crate::handshake::{self, AcceptSteps, Accepted};
use crate::http::{self, Body, HeadReader, Rejection, Request, Route};
use crate::inspect::{self, Direction, FrameRecord, Record};
use crate::log;
use crate::page::PAGE;
use crate::protocol::{Event, MessageKind, Protocol, State};
use crate::tracer::Tracer;
use crate::workers::{is_timeout, Job, Reuse, Workers};
use crate::Status;

/// Stack of each connection thread: the code never recurses and keeps its buffers on the
/// heap, so a small stack lets thousands of connections fit in little memory.
const STACK_SIZE: usize = 128 * 1024;
/// The read buffer starts small (an idle connection holds little) and doubles, up to the
/// maximum, while reads keep filling it, so a busy connection takes many frames per syscall.
const FIRST_READ_SIZE: usize = 4 * 1024;
const MAX_READ_SIZE: usize = 64 * 1024;
/// Reply payloads up to this size are copied behind their header so that all the replies
/// to one read go out in one write; larger ones are written from the message buffer.
const COPY_LIMIT: usize = 16 * 1024;
/// Reply buffers larger than this are freed after they are written.
const RETAINED_OUT_CAPACITY: usize = 256 * 1024;
/// How many bytes a closing connection may still send us before we stop draining it.
const DRAIN_LIMIT: usize = 1024 * 1024;
/// Connections refused with 503 that may wait at once for their request to be drained.
const REFUSED_BACKLOG: usize = 256;
/// How long a refused connection is given to read its 503 before it is dropped.
const REFUSED_LINGER: Duration = Duration::from_secs(1);

/// A bound listener with its configuration.
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    tracer: Option<Tracer>,
}

impl Server {
    /// Binds `config.host:config.port`.
    pub fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind((config.host.as_str(), config.port))?;
        // std offers these setters on connected sockets only; on a listening socket they
        // are the same setsockopt calls. The read timeout is needed everywhere: it is how
        // long `accept` waits before a waiting thread may end.
        let socket = TcpStream::from(OwnedFd::from(listener));
        set_connection_options(&socket, &config)?;
        let listener = TcpListener::from(OwnedFd::from(socket));
        let tracer = if config.trace {
            Some(Tracer::start()?)
        } else {
            None
        };
        Ok(Server {
            listener,
            config: Arc::new(config),
            tracer,
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections, each on its own thread, for as long as the process lives; the
    /// calling thread starts those threads (see `workers`). Returns only if serving could
    /// not start: no thread could be had.
    pub fn run(self) -> io::Result<Infallible> {
        let refused = spawn_refuser();
        let Server {
            listener,
            config,
            tracer,
        } = self;
        let max_waiting = config.max_idle_threads;
        let active = Arc::new(AtomicUsize::new(0));
        let admit = move |stream: TcpStream, peer: SocketAddr| -> Option<Job> {
            let Some(slot) = Slot::take(&active, config.max_connections) else {
                // Never keep a thread on a refused client: hand it to the refuser, or drop
                // it outright when even that is full.
                let _ = refused.try_send(stream);
                return None;
            };
            let config = Arc::clone(&config);
            let connection = ConnectionLog::new(peer, tracer.clone());
            Some(Box::new(move || {
                run_isolated(slot, stream, connection, &config, serve)
            }))
        };
        Arc::new(Workers::new(listener, admit, STACK_SIZE, max_waiting)).run()
    }
}

/// One counted connection. Dropping it (also while unwinding from a panic) frees the slot.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(active)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs one connection's work so that a panic in it is logged with the peer address and
/// ends only that connection, with a last word to the peer where one can still be said;
/// the slot is freed either way. A thread that panicked is not reused: whatever it held
/// may be broken.
fn run_isolated(
    slot: Slot,
    mut stream: TcpStream,
    mut connection: ConnectionLog,
    config: &Config,
    work: impl FnOnce(&mut TcpStream, &Config, &mut ConnectionLog) -> Ending,
) -> Reuse {
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        work(&mut stream, config, &mut connection)
    }));
    let reuse = match served {
        Ok(ending) => {
            if !config.quiet {
                log(&connection.line(&ending));
            }
            Reuse::Yes
        }
        Err(_) => {
            answer_after_panic(&mut stream, connection.stage, config);
            // A panic is a bug: report it even when per-connection lines are silenced.
            log(&connection.line(&Ending::Panicked));
            Reuse::No
        }
    };
    drop(slot);
    reuse
}

/// Tells the peer of a connection whose thread panicked that it ends, where the stream
/// still stands between two messages: `500` to a request not yet answered, and a close
/// frame with 1011 on an open WebSocket. RFC 6455 §7.4.1: "1011 indicates that a server is
/// terminating the connection because it encountered an unexpected condition that
/// prevented it from fulfilling the request." Once an answer or a close frame is out,
/// nothing more can be said.
///
/// The protocol that would build the close frame may be what broke, so the frame is
/// built here, from the wire layer, the one place the shell does so.
fn answer_after_panic(stream: &mut TcpStream, stage: Stage, config: &Config) {
    let last_word = match stage {
        Stage::Request(body) => Rejection::InternalError.response(body),
        Stage::WebSocket => {
            let mut frame = Vec::new();
            let payload = ClosePayload {
                code: CloseCode::INTERNAL_ERROR,
                reason: "internal server error",
            };
            frame::encode_close(&mut frame, Some(payload));
            frame
        }
        Stage::Answered | Stage::Closing => return,
    };
    if write_all_within(stream, &last_word, &[], config.write_timeout()).is_ok() {
        linger_close(stream, config.close_timeout);
    }
}

/// How far a connection got: what can still be sent if its thread panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
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
enum Ending {
    PageServed,
    Refused(Rejection),
    GoneBeforeRequest,
    ReadFailed(io::Error),
    SetupFailed(io::Error),
    HandshakeFailed(io::Error),
    ClosedByPeer(Option<CloseCode>),
    Failed(ProtocolError),
    Abnormal,
    PingTimeout,
    CloseTimeout,
    WriteTimedOut,
    Io(io::Error),
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
            Ending::SetupFailed(err) => write!(f, "could not set the write timeout: {err}"),
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
            Ending::CloseTimeout => f.write_str(
                "websocket: no answer to ping, close 1001 sent; no close frame came back in time",
            ),
            Ending::WriteTimedOut => {
                f.write_str("websocket: peer stopped reading, write timed out")
            }
            Ending::Io(err) => write!(f, "websocket: connection error: {err}"),
            Ending::Panicked => f.write_str("internal error: the connection's thread panicked"),
        }
    }
}

/// What is logged about a connection when it ends.
struct ConnectionLog {
    peer: SocketAddr,
    /// The client a trusted proxy forwarded the request for.
    client: Option<ClientAddr>,
    path: String,
    subprotocol: Option<String>,
    started: Instant,
    messages_in: u64,
    messages_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// Where the trace goes, with `--trace`.
    tracer: Option<Tracer>,
    /// How far the connection got.
    stage: Stage,
}

impl ConnectionLog {
    fn new(peer: SocketAddr, tracer: Option<Tracer>) -> ConnectionLog {
        ConnectionLog {
            peer,
            tracer,
            client: None,
            path: "-".to_string(),
            subprotocol: None,
            started: Instant::now(),
            messages_in: 0,
            messages_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            stage: Stage::Request(Body::Included),
        }
    }

    /// Whether this connection is traced.
    fn tracing(&self) -> bool {
        self.tracer.is_some()
    }

    /// Adds a line to the trace, if the connection is traced.
    fn trace(&self, line: &str) {
        if let Some(tracer) = &self.tracer {
            tracer.line(self.peer, line);
        }
    }

    fn line(&self, ending: &Ending) -> String {
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
            self.bytes_in,
            self.messages_out,
            self.bytes_out
        )
    }
}

/// Whether accepted sockets start with the listening socket's options. Linux copies them
/// (`TCP_NODELAY`, `SO_SNDTIMEO` and `SO_RCVTIMEO` among them) to every socket `accept`
/// returns, so they are set once on the listener instead of three calls per connection.
const ACCEPT_INHERITS_OPTIONS: bool = cfg!(target_os = "linux");

/// The options every connection starts with: replies go out without Nagle's delay, a write
/// blocks at most the write timeout (`write_all_within` restores it after shortening it),
/// and the first read waits at most the handshake timeout.
///
/// On the listener, the read timeout is also how long `accept` waits before a thread
/// with no connection may end, which should be shorter than a handshake may take. So it
/// is the shorter of the two; `read_head` keeps the handshake's own deadline, and only a
/// client slower than that first timeout costs it another setsockopt.
fn set_connection_options(socket: &TcpStream, config: &Config) -> io::Result<()> {
    socket.set_nodelay(true)?;
    socket.set_write_timeout(Some(config.write_timeout()))?;
    socket.set_read_timeout(Some(first_read_timeout(config)))
}

fn first_read_timeout(config: &Config) -> Duration {
    config.handshake_timeout.min(config.idle_thread_timeout)
}

/// Serves one connection from accept to close.
fn serve(stream: &mut TcpStream, config: &Config, log: &mut ConnectionLog) -> Ending {
    if !ACCEPT_INHERITS_OPTIONS {
        if let Err(err) = set_connection_options(stream, config) {
            return Ending::SetupFailed(err);
        }
    }
    let mut buf = vec![0; FIRST_READ_SIZE];
    let (reader, pending) = match read_head(stream, &mut buf, config, log) {
        Ok(head) => head,
        Err(ending) => return ending,
    };
    let request = match Request::parse(reader.head()) {
        Ok(request) => request,
        Err(rejection) => return refuse(stream, rejection, Body::Included, log, config),
    };
    log.stage = Stage::Request(request.body());
    log.path = request.path.to_string();
    log.client = forwarded::client_address(&request, log.peer.ip(), &config.trusted_proxies);
    if log.tracing() {
        for line in inspect::head_trace(Direction::Received, reader.head()) {
            log.trace(&line);
        }
    }
    match request.route() {
        Route::Upgrade => match handshake::validate(&request, &config.handshake_policy()) {
            Ok(accepted) => {
                let upgrade = Upgrade {
                    accepted: &accepted,
                    request_head: reader.head(),
                };
                upgrade.run(stream, buf, pending, config, log)
            }
            Err(rejection) => refuse(stream, rejection, request.body(), log, config),
        },
        Route::Page => {
            let head = http::Head {
                status: (200, "OK"),
                content_type: "text/html; charset=utf-8",
                connection: "close",
                extra: "Cache-Control: no-cache\r\n",
            };
            let page = head.response(PAGE.as_bytes(), request.body());
            send_and_close(stream, &page, log, config);
            Ending::PageServed
        }
        Route::Refuse(rejection) => refuse(stream, rejection, request.body(), log, config),
    }
}

/// Reads the request head into a [`HeadReader`], and returns it with the range of `buf`
/// that arrived behind the head (frames a client sent without waiting for the answer).
///
/// The handshake timeout is a total, not a per-read limit: a client dribbling one byte at
/// a time (slowloris) is cut off all the same.
fn read_head(
    stream: &mut TcpStream,
    buf: &mut [u8],
    config: &Config,
    log: &mut ConnectionLog,
) -> Result<(HeadReader, Range<usize>), Ending> {
    let mut reader = HeadReader::new(config.max_head_bytes, config.max_header_lines);
    let deadline = Instant::now() + config.handshake_timeout;
    // The first read waits as long as the connection's options say (at most the handshake
    // timeout); a later one only what is left of it.
    let mut reads = 0;
    loop {
        let Some(left) = time_left(deadline) else {
            let timeout = Rejection::RequestTimeout;
            return Err(refuse(stream, timeout, Body::Included, log, config));
        };
        reads += 1;
        let read = if reads == 1 {
            stream.read(buf)
        } else {
            read_with_timeout(stream, buf, left)
        };
        let n = match read {
            Ok(0) => return Err(Ending::GoneBeforeRequest),
            Ok(n) => n,
            Err(err) if is_timeout(&err) => continue,
            Err(err) => return Err(Ending::ReadFailed(err)),
        };
        log.bytes_in += n as u64;
        match reader.push(&buf[..n]) {
            Ok(Status::Complete(head_end)) => return Ok((reader, head_end..n)),
            Ok(Status::Partial) => {}
            Err(rejection) => return Err(refuse(stream, rejection, Body::Included, log, config)),
        }
    }
}

/// Answers with an HTTP error and closes.
fn refuse(
    stream: &mut TcpStream,
    rejection: Rejection,
    body: Body,
    log: &mut ConnectionLog,
    config: &Config,
) -> Ending {
    send_and_close(stream, &rejection.response(body), log, config);
    Ending::Refused(rejection)
}

fn send_and_close(
    stream: &mut TcpStream,
    response: &[u8],
    log: &mut ConnectionLog,
    config: &Config,
) {
    if write_all_within(stream, response, &[], config.write_timeout()).is_ok() {
        log.bytes_out += response.len() as u64;
        log.stage = Stage::Answered;
        linger_close(stream, config.close_timeout);
    }
}

/// A handshake that was accepted, with the request head it came in.
struct Upgrade<'a> {
    accepted: &'a Accepted,
    request_head: &'a [u8],
}

impl Upgrade<'_> {
    /// Completes the upgrade and runs the WebSocket session until it ends.
    fn run(
        &self,
        stream: &mut TcpStream,
        buf: Vec<u8>,
        pending: Range<usize>,
        config: &Config,
        log: &mut ConnectionLog,
    ) -> Ending {
        log.subprotocol = self.accepted.subprotocol.clone();
        let response = handshake::switching_protocols(self.accepted);
        if let Err(err) = write_all_within(stream, &response, &[], config.write_timeout()) {
            return Ending::HandshakeFailed(err);
        }
        log.bytes_out += response.len() as u64;
        log.stage = Stage::WebSocket;
        let inspecting = self.accepted.subprotocol.as_deref() == Some(inspect::SUBPROTOCOL);
        let steps = (log.tracing() || inspecting).then(|| AcceptSteps::new(&self.accepted.key));
        if let Some(steps) = &steps {
            for line in inspect::accept_trace(steps) {
                log.trace(&line);
            }
            for line in inspect::head_trace(Direction::Sent, &response) {
                log.trace(&line);
            }
        }
        let mut session = Session::new(stream, buf, config, log);
        if let (true, Some(steps)) = (inspecting, &steps) {
            session.inspect(&inspect::handshake_json(
                self.request_head,
                steps,
                &response,
            ));
        }
        session.run(pending)
    }
}

/// Where `out` stood before the protocol acted (see [`Session::observe`]).
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: usize,
    /// No close frame of ours was queued before `at`.
    open: bool,
}

/// Whether the peer is keeping its side of the connection alive.
#[derive(Clone, Copy, Debug)]
enum Liveness {
    /// Heard from within the last ping interval.
    Active,
    /// Silent for a whole ping interval: a ping is out.
    PingSent,
    /// Silent for another interval: our close frame is out, and the peer has until
    /// `deadline` to answer it.
    Closing { deadline: Instant },
}

/// One WebSocket connection in the shell: reads bytes into the protocol, writes what comes
/// out, keeps time. Every protocol decision is the protocol's.
struct Session<'c> {
    stream: &'c mut TcpStream,
    config: &'c Config,
    log: &'c mut ConnectionLog,
    protocol: Protocol,
    buf: Vec<u8>,
    out: Vec<u8>,
    liveness: Liveness,
    /// When the peer last sent bytes, or we last pinged it.
    quiet_since: Instant,
    /// The read timeout on the socket, set only when it changes: a syscall per message would
    /// cost more than the echo itself. `None` until the session first sets it.
    read_timeout: Option<Option<Duration>>,
    /// The first thing that decided how the connection ends.
    ending: Option<Ending>,
    /// The frame inspector's state, when the peer selected its subprotocol.
    inspector: Option<Inspector>,
}

/// Frames of the data message in progress, for the inspector's next message.
#[derive(Debug, Default)]
struct Inspector {
    frames: Vec<FrameRecord>,
    /// Frames past the first [`Inspector::FRAMES`] of a message, counted, not kept.
    omitted: u64,
}

impl Inspector {
    /// The most frames of one message an inspector message describes.
    const FRAMES: usize = 16;

    /// Files what the protocol recorded: data frames wait for their message; a control
    /// frame the peer sent becomes an inspector message at once, with the protocol's
    /// answer to it (the next record, when it is a frame sent in reply), and so does a
    /// control frame the server sends on its own (a keepalive ping, a 1001 close).
    fn control_messages(&mut self, records: &[Record]) -> Vec<String> {
        let mut messages = Vec::new();
        let mut records = records.iter().peekable();
        while let Some(record) = records.next() {
            let Record::Frame(frame) = record else {
                continue;
            };
            let control = Opcode::from_wire(frame.opcode()).is_some_and(Opcode::is_control);
            match frame.direction {
                Direction::Received if control => {
                    let reply = records.next_if(|next| {
                        matches!(next, Record::Frame(reply) if reply.direction == Direction::Sent)
                    });
                    let reply = match reply {
                        Some(Record::Frame(reply)) => Some(reply),
                        _ => None,
                    };
                    messages.push(inspect::control_json(Some(frame), reply));
                }
                Direction::Received if self.frames.len() < Inspector::FRAMES => {
                    self.frames.push(*frame);
                }
                Direction::Received => self.omitted += 1,
                Direction::Sent => messages.push(inspect::control_json(None, Some(frame))),
            }
        }
        messages
    }

    /// Queues the inspector message for the data message just received, and its echo,
    /// `sent`, whose header lies in `out` from `start`: ahead of the echo it describes.
    fn describe_reply(
        &mut self,
        protocol: &Protocol,
        sent: &FrameRecord,
        start: usize,
        out: &mut Vec<u8>,
    ) {
        let json = inspect::message_json(&self.frames, self.omitted, sent);
        self.frames.clear();
        self.omitted = 0;
        let echo_header = out.split_off(start);
        if protocol
            .send_header(MessageKind::Text, json.len(), out)
            .is_ok()
        {
            out.extend_from_slice(json.as_bytes());
        }
        out.extend_from_slice(&echo_header);
    }
}

impl<'c> Session<'c> {
    fn new(
        stream: &'c mut TcpStream,
        buf: Vec<u8>,
        config: &'c Config,
        log: &'c mut ConnectionLog,
    ) -> Session<'c> {
        let mut protocol = Protocol::new(config.max_message_size);
        if log.tracing() {
            protocol.record();
        }
        Session {
            stream,
            config,
            log,
            protocol,
            buf,
            out: Vec::new(),
            liveness: Liveness::Active,
            quiet_since: Instant::now(),
            read_timeout: None,
            ending: None,
            inspector: None,
        }
    }

    /// Turns the frame inspector on, and queues its first message, `greeting`.
    fn inspect(&mut self, greeting: &str) {
        self.protocol.record();
        self.inspector = Some(Inspector::default());
        if self
            .protocol
            .send_header(MessageKind::Text, greeting.len(), &mut self.out)
            .is_ok()
        {
            self.out.extend_from_slice(greeting.as_bytes());
        }
    }

    /// Where `out` stood before the protocol acted, and whether the connection was open
    /// then: what [`Session::observe`] needs to place the inspector's messages.
    fn mark(&self) -> Mark {
        Mark {
            at: self.out.len(),
            open: self.protocol.state() == State::Open,
        }
    }

    /// Hands what the protocol recorded since `mark` to the trace and the inspector. The
    /// inspector's messages about control frames go in ahead of the protocol's answers,
    /// queued in `out` from `mark`: RFC 6455 §5.5.1 lets an endpoint "delay sending a Close
    /// frame until its current message is sent", and a close reply is the only answer
    /// that needs the room. The same section says "After sending a Close frame, the
    /// endpoint MUST NOT send any further data frames", so once our close frame was queued
    /// before `mark`, the messages are dropped; the trace still has every line.
    fn observe(&mut self, mark: Mark) {
        let records = self.protocol.take_records();
        for record in &records {
            self.log.trace(&record.trace_line());
        }
        let Some(inspector) = &mut self.inspector else {
            return;
        };
        let messages = inspector.control_messages(&records);
        if messages.is_empty() || !mark.open {
            return;
        }
        let answers = self.out.split_off(mark.at);
        for message in messages {
            frame::encode_frame(&mut self.out, Opcode::Text, message.as_bytes());
        }
        self.out.extend_from_slice(&answers);
    }

    /// Runs the connection, starting with the bytes in `buf[pending]`, until it ends.
    fn run(mut self, pending: Range<usize>) -> Ending {
        if let Err(err) = self.serve(pending) {
            self.end(if is_timeout(&err) {
                Ending::WriteTimedOut
            } else {
                Ending::Io(err)
            });
        }
        self.ending.unwrap_or(Ending::Abnormal)
    }

    /// The read-process-write loop, until the protocol reads no more or our close frame
    /// goes unanswered.
    fn serve(&mut self, mut pending: Range<usize>) -> io::Result<()> {
        loop {
            self.process(pending)?;
            self.flush()?;
            // RFC 6455 §7.1.1: "when a server is instructed to _Close the WebSocket
            // Connection_ it SHOULD initiate a TCP Close immediately". pure-ws sends its FIN
            // as soon as the close handshake is over or the connection failed.
            match self.protocol.state() {
                // The peer may still be sending (a late pong behind its close frame, or
                // anything after a failure): drain that, unread, within a time and byte
                // budget, so a reset cannot destroy our last frame before the peer reads it.
                State::Closed | State::Failed => {
                    linger_close(self.stream, self.config.close_timeout);
                    return Ok(());
                }
                State::Open | State::Closing => {}
            }
            match self.read()? {
                Some(arrived) => pending = arrived,
                None => return Ok(()),
            }
        }
    }

    /// Hands `buf[pending]` to the protocol and answers every message in it.
    fn process(&mut self, mut pending: Range<usize>) -> io::Result<()> {
        while !pending.is_empty() {
            let mark = self.mark();
            let (used, event) = self
                .protocol
                .receive(&mut self.buf[pending.clone()], &mut self.out);
            self.observe(mark);
            match event {
                Some(Event::Message) => self.echo(pending.clone())?,
                Some(Event::Closed { code }) => self.end(Ending::ClosedByPeer(code)),
                Some(Event::Failed(err)) => self.end(Ending::Failed(err)),
                Some(Event::Abnormal) | None => {}
            }
            pending.start += used;
        }
        Ok(())
    }

    /// Queues the reply to the message the protocol just announced. A small payload is
    /// copied behind its header, so all the replies to one read go out in one write; a
    /// large one is written from where it lies, behind what is queued, in one vectored write.
    fn echo(&mut self, input: Range<usize>) -> io::Result<()> {
        let Some(message) = self.protocol.message(&self.buf[input]) else {
            return Ok(());
        };
        self.log.messages_in += 1;
        let reply = echo::reply(self.config.echo, &message);
        let start = self.out.len();
        if self
            .protocol
            .send_header(reply.kind, reply.len(), &mut self.out)
            .is_err()
        {
            return Ok(());
        }
        if self.log.tracing() || self.inspector.is_some() {
            let sent = FrameRecord::sent(&self.out[start..], &[reply.prefix, reply.payload]);
            self.log.trace(&sent.trace_line());
            if let Some(inspector) = &mut self.inspector {
                inspector.describe_reply(&self.protocol, &sent, start, &mut self.out);
            }
        }
        self.out.extend_from_slice(reply.prefix);
        if reply.payload.len() <= COPY_LIMIT {
            self.out.extend_from_slice(reply.payload);
        } else {
            write_all_within(
                self.stream,
                &self.out,
                reply.payload,
                self.config.write_timeout(),
            )?;
            self.log.bytes_out += (self.out.len() + reply.payload.len()) as u64;
            self.out.clear();
        }
        self.log.messages_out += 1;
        Ok(())
    }

    /// One write for everything a read produced: replies, pongs and close frames.
    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        write_all_within(self.stream, &self.out, &[], self.config.write_timeout())?;
        self.log.bytes_out += self.out.len() as u64;
        if self.protocol.state() != State::Open {
            self.log.stage = Stage::Closing;
        }
        self.out.clear();
        if self.out.capacity() > RETAINED_OUT_CAPACITY {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Waits for bytes, keeping the peer alive with pings meanwhile. Returns the range of
    /// `buf` that arrived (empty after a timeout or the peer's EOF), or `None` when our
    /// close frame went unanswered in time.
    fn read(&mut self) -> io::Result<Option<Range<usize>>> {
        let wait = match self.liveness {
            Liveness::Active | Liveness::PingSent => self.config.ping_interval,
            Liveness::Closing { deadline } => match time_left(deadline) {
                Some(left) => Some(left),
                None => {
                    self.ending = Some(Ending::CloseTimeout);
                    return Ok(None);
                }
            },
        };
        // A large message buffer kept for the next message goes back soon after the
        // connection goes quiet.
        let release = self.config.spare_memory_timeout;
        let timeout = match wait {
            _ if !self.protocol.holds_spare_memory() => wait,
            Some(wait) => Some(wait.min(release)),
            None => Some(release),
        };
        if self.read_timeout != Some(timeout) {
            self.stream.set_read_timeout(timeout)?;
            self.read_timeout = Some(timeout);
        }
        match self.stream.read(&mut self.buf) {
            Ok(0) => {
                if let Some(Event::Abnormal) = self.protocol.receive_eof() {
                    self.end(Ending::Abnormal);
                }
                Ok(Some(0..0))
            }
            Ok(n) => {
                self.arrived(n);
                Ok(Some(0..n))
            }
            Err(err) if is_timeout(&err) => {
                self.silence();
                Ok(Some(0..0))
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(Some(0..0)),
            Err(err) => Err(err),
        }
    }

    /// Counts `n` bytes that arrived. A read that filled the buffer doubles it, up to the
    /// maximum, so a busy connection takes many frames per syscall.
    fn arrived(&mut self, n: usize) {
        self.log.bytes_in += n as u64;
        self.quiet_since = Instant::now();
        if let Liveness::PingSent = self.liveness {
            self.liveness = Liveness::Active;
        }
        if n == self.buf.len() && self.buf.len() < MAX_READ_SIZE {
            self.buf.resize(self.buf.len() * 2, 0);
        }
    }

    /// A read timed out: spare memory goes back, and once the peer has been silent for a
    /// whole ping interval, it is kept alive. (The timeout that releases memory restarts
    /// the interval's count, so that ping may come up to `spare_memory_timeout` late.)
    fn silence(&mut self) {
        if self.protocol.release_spare_memory() {
            let quiet = self.quiet_since.elapsed();
            if self
                .config
                .ping_interval
                .is_none_or(|interval| quiet < interval)
            {
                return;
            }
        }
        self.keep_alive();
    }

    /// A ping interval passed in silence: ping, and after a second one, close with 1001.
    fn keep_alive(&mut self) {
        let mark = self.mark();
        self.ping_or_close();
        self.observe(mark);
    }

    /// Pings a silent peer, or closes with 1001 when it stayed silent after the ping.
    fn ping_or_close(&mut self) {
        match self.liveness {
            Liveness::Active => {
                if self.protocol.send_ping(b"keepalive", &mut self.out).is_ok() {
                    self.liveness = Liveness::PingSent;
                    self.quiet_since = Instant::now();
                }
            }
            Liveness::PingSent => {
                let payload = ClosePayload {
                    code: CloseCode::GOING_AWAY,
                    reason: "ping timeout",
                };
                if self.protocol.close(payload, &mut self.out).is_ok() {
                    self.end(Ending::PingTimeout);
                    // RFC 6455 §5.5.1: "After both sending and receiving a Close message, an
                    // endpoint considers the WebSocket connection closed and MUST close the
                    // underlying TCP connection." So a close we start waits for the peer's;
                    // pure-ws waits at most the close timeout, then drops the connection.
                    let deadline = Instant::now() + self.config.close_timeout;
                    self.liveness = Liveness::Closing { deadline };
                }
            }
            Liveness::Closing { .. } => {}
        }
    }

    /// Records how the connection ends, unless something decided it already.
    fn end(&mut self, ending: Ending) {
        self.ending.get_or_insert(ending);
    }
}

/// Writes `head` and then `body` (in one syscall when the kernel takes them at once), all
/// within `timeout`. A socket's write timeout bounds each syscall, and a peer that reads a
/// trickle makes every syscall a partial success, so after a partial write the timeout is
/// cut to the time left: one reply can never hold the thread longer than `timeout`.
fn write_all_within(
    stream: &mut TcpStream,
    mut head: &[u8],
    mut body: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut shortened = false;
    let result = loop {
        match stream.write_vectored(&[IoSlice::new(head), IoSlice::new(body)]) {
            Ok(0) if !head.is_empty() || !body.is_empty() => {
                break Err(io::ErrorKind::WriteZero.into())
            }
            Ok(n) if n < head.len() => head = &head[n..],
            Ok(n) => {
                body = &body[n - head.len()..];
                head = &[];
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err),
        }
        if head.is_empty() && body.is_empty() {
            break Ok(());
        }
        let Some(left) = time_left(deadline) else {
            break Err(io::ErrorKind::TimedOut.into());
        };
        if let Err(err) = stream.set_write_timeout(Some(left)) {
            break Err(err);
        }
        shortened = true;
    };
    if shortened {
        stream.set_write_timeout(Some(timeout))?;
    }
    result
}

/// Closes a connection without losing what we wrote: a socket closed with unread input is
/// reset, and a reset can destroy our last bytes before the peer reads them. So: send our
/// FIN, then read and discard until the peer closes too, within a time and byte budget.
fn linger_close(stream: &mut TcpStream, timeout: Duration) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + timeout;
    let mut sink = [0; 4096];
    let mut drained = 0;
    while let Some(left) = time_left(deadline) {
        match read_with_timeout(stream, &mut sink, left) {
            Ok(0) => return,
            Ok(n) if drained + n <= DRAIN_LIMIT => drained += n,
            Err(err) if is_timeout(&err) => {}
            _ => return,
        }
    }
}

/// Starts the thread that answers connections over the limit with `503`, and returns the
/// queue that feeds it. It lingers over each one briefly (as `linger_close` does) so the
/// client reads the answer instead of a reset, and it polls them all from one thread, so
/// a flood of refused clients costs a bounded amount of memory and no threads.
fn spawn_refuser() -> SyncSender<TcpStream> {
    let (sender, receiver) = mpsc::sync_channel(REFUSED_BACKLOG);
    let spawned = thread::Builder::new()
        .name("refuser".to_string())
        .stack_size(STACK_SIZE)
        .spawn(move || refuse_busy(&receiver));
    if let Err(err) = spawned {
        log(&format!(
            "could not start the thread that refuses excess connections: {err}"
        ));
    }
    sender
}

fn refuse_busy(queue: &Receiver<TcpStream>) {
    let response = Rejection::ServiceUnavailable.response(Body::Included);
    let mut waiting: Vec<(TcpStream, Instant)> = Vec::new();
    let mut sink = [0; 4096];
    loop {
        let next = if waiting.is_empty() {
            queue.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            queue.recv_timeout(Duration::from_millis(10))
        };
        match next {
            Ok(stream) if waiting.len() < REFUSED_BACKLOG => {
                let sent = stream
                    .set_nonblocking(true)
                    .and_then(|()| (&stream).write(&response))
                    .and_then(|_| stream.shutdown(Shutdown::Write));
                if sent.is_ok() {
                    waiting.push((stream, Instant::now() + REFUSED_LINGER));
                }
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Keep a refused connection until it closes, errs, or its time is up.
        waiting.retain(|(stream, deadline)| {
            let open = loop {
                match (&*stream).read(&mut sink) {
                    Ok(0) => break false,
                    Ok(_) => {}
                    Err(err) => break err.kind() == io::ErrorKind::WouldBlock,
                }
            };
            open && Instant::now() < *deadline
        });
    }
}

fn read_with_timeout(
    stream: &mut TcpStream,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<usize> {
    stream.set_read_timeout(Some(timeout))?;
    stream.read(buf)
}

/// The time until `deadline`, or `None` once it has passed (a zero timeout is not allowed).
fn time_left(deadline: Instant) -> Option<Duration> {
    Some(deadline.checked_duration_since(Instant::now())?).filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_start_with_the_connection_options() {
        let config = Config {
            port: 0,
            ..Config::default()
        };
        let server = Server::bind(config.clone()).unwrap();
        let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (accepted, _) = server.listener.accept().unwrap();
        if !ACCEPT_INHERITS_OPTIONS {
            set_connection_options(&accepted, &config).unwrap();
        }
        assert!(accepted.nodelay().unwrap(), "Nagle is on");
        assert_eq!(
            accepted.write_timeout().unwrap(),
            Some(config.write_timeout())
        );
        assert_eq!(
            accepted.read_timeout().unwrap(),
            Some(config.handshake_timeout.min(config.idle_thread_timeout))
        );
    }

    /// A connected pair of sockets on loopback: (the server's side, the client's side).
    fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (listener.accept().unwrap().0, client)
    }

    /// Runs `work` as a connection whose thread panics once it reached `stage`, and
    /// returns whether its thread may be reused and what the client received.
    fn panic_at(stage: Stage, slot: Slot) -> (Reuse, Vec<u8>) {
        let (server, mut client) = socket_pair();
        let peer = client.local_addr().unwrap();
        let worker = thread::spawn(move || {
            let config = Config {
                quiet: true,
                ..Config::default()
            };
            let connection = ConnectionLog::new(peer, None);
            run_isolated(slot, server, connection, &config, |_, _, log| -> Ending {
                log.stage = stage;
                panic!("deliberate test panic")
            })
        });
        let mut received = Vec::new();
        client.read_to_end(&mut received).expect("a clean close");
        drop(client);
        let reuse = worker.join().expect("the panic must not escape");
        (reuse, received)
    }

    #[test]
    fn slots_are_bounded_and_freed_even_when_a_connection_panics() {
        let active = Arc::new(AtomicUsize::new(0));
        let first = Slot::take(&active, 2).unwrap();
        let second = Slot::take(&active, 2).unwrap();
        assert!(Slot::take(&active, 2).is_none());
        drop(first);
        let (reuse, _) = panic_at(Stage::Answered, second);
        assert_eq!(
            reuse,
            Reuse::No,
            "a thread that panicked must not be reused"
        );
        assert_eq!(active.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_panic_on_an_open_websocket_sends_close_1011() {
        let slot = || Slot::take(&Arc::new(AtomicUsize::new(0)), 1).unwrap();
        let (_, received) = panic_at(Stage::WebSocket, slot());
        let reason = b"internal server error";
        assert_eq!(received[..4], [0x88, 2 + reason.len() as u8, 0x03, 0xF3]);
        assert_eq!(&received[4..], reason);
    }

    #[test]
    fn a_panic_before_the_answer_sends_500() {
        let slot = || Slot::take(&Arc::new(AtomicUsize::new(0)), 1).unwrap();
        let (_, received) = panic_at(Stage::Request(Body::Included), slot());
        let response = String::from_utf8(received).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{response}"
        );
        let (_, received) = panic_at(Stage::Request(Body::Omitted), slot());
        assert!(String::from_utf8(received).unwrap().ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_panic_after_the_last_word_sends_nothing_more() {
        let slot = || Slot::take(&Arc::new(AtomicUsize::new(0)), 1).unwrap();
        for stage in [Stage::Answered, Stage::Closing] {
            let (_, received) = panic_at(stage, slot());
            assert_eq!(received, b"", "{stage:?}");
        }
    }
}
