//! The blocking shell: an accept loop, one thread per connection, `read` into a buffer,
//! hand the bytes to the protocol, `write` what comes back. Every protocol decision lives in
//! `http`, `handshake` and `protocol`; this module only moves bytes and keeps time.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::echo;
use crate::error::close_code;
use crate::forwarded::{self, ClientAddr};
use crate::handshake::{self, Accepted};
use crate::http::{self, HeadReader, Rejection, Request, Route};
use crate::protocol::{Event, Protocol};

/// The page served at `/`, built into the binary so it runs from any directory.
pub const PAGE: &str = include_str!("../static/client.html");

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
/// How long to wait after a failed `accept` (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
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
    active: Arc<AtomicUsize>,
}

impl Server {
    /// Binds `config.host:config.port`.
    pub fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind((config.host.as_str(), config.port))?;
        Ok(Server {
            listener,
            config: Arc::new(config),
            active: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections forever, each on its own thread.
    pub fn run(self) -> ! {
        let refused = spawn_refuser();
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.dispatch(stream, peer, &refused),
                Err(err) => {
                    // Running out of file descriptors or memory is temporary: say so, give
                    // the open connections a moment to finish, and keep serving.
                    eprintln!("accept failed: {err}; retrying");
                    thread::sleep(ACCEPT_BACKOFF);
                }
            }
        }
    }

    fn dispatch(&self, stream: TcpStream, peer: SocketAddr, refused: &SyncSender<TcpStream>) {
        let Some(slot) = Slot::take(&self.active, self.config.max_connections) else {
            // Never block the accept loop on a refused client: hand it to the refuser,
            // or drop it outright when even that is full.
            let _ = refused.try_send(stream);
            return;
        };
        let config = Arc::clone(&self.config);
        let spawned = thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(move || {
                run_isolated(slot, peer, config.quiet, |log| {
                    serve(stream, &config, log);
                });
            });
        if let Err(err) = spawned {
            eprintln!("{peer}: could not start a thread: {err}");
        }
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
/// ends only that connection; the slot is freed either way.
fn run_isolated(slot: Slot, peer: SocketAddr, quiet: bool, work: impl FnOnce(&mut ConnectionLog)) {
    let mut log = ConnectionLog::new(peer);
    if panic::catch_unwind(AssertUnwindSafe(|| work(&mut log))).is_err() {
        log.outcome = "internal error: the connection's thread panicked".to_string();
        // A panic is a bug: report it even when per-connection lines are silenced.
        eprintln!("{}", log.line());
    } else if !quiet {
        eprintln!("{}", log.line());
    }
    drop(slot);
}

/// What is logged about a connection when it ends.
struct ConnectionLog {
    peer: SocketAddr,
    /// The client a trusted proxy forwarded the request for.
    client: Option<ClientAddr>,
    path: String,
    subprotocol: Option<String>,
    started: Instant,
    outcome: String,
    messages_in: u64,
    messages_out: u64,
    bytes_in: u64,
    bytes_out: u64,
}

impl ConnectionLog {
    fn new(peer: SocketAddr) -> ConnectionLog {
        ConnectionLog {
            peer,
            client: None,
            path: "-".to_string(),
            subprotocol: None,
            started: Instant::now(),
            outcome: "closed".to_string(),
            messages_in: 0,
            messages_out: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    fn line(&self) -> String {
        let who = match self.client {
            Some(client) => format!("{client} via {}", self.peer),
            None => self.peer.to_string(),
        };
        let subprotocol = match &self.subprotocol {
            Some(name) => format!(" subprotocol {name}"),
            None => String::new(),
        };
        format!(
            "{who} {}{subprotocol} {} after {:.3}s; in: {} msgs, {} bytes; out: {} msgs, {} bytes",
            self.path,
            self.outcome,
            self.started.elapsed().as_secs_f64(),
            self.messages_in,
            self.bytes_in,
            self.messages_out,
            self.bytes_out
        )
    }
}

/// Serves one connection from accept to close.
fn serve(mut stream: TcpStream, config: &Config, log: &mut ConnectionLog) {
    // Set once for the whole connection; `write_all_within` restores it after shortening it.
    if let Err(err) = stream.set_write_timeout(Some(config.write_timeout())) {
        log.outcome = format!("could not set the write timeout: {err}");
        return;
    }
    let mut buf = vec![0; FIRST_READ_SIZE];
    let mut reader = HeadReader::new(config.max_head_bytes, config.max_header_lines);
    let deadline = Instant::now() + config.handshake_timeout;
    // The handshake timeout is a total, not a per-read limit: a client dribbling one byte
    // at a time (slowloris) is cut off all the same.
    let (head_end, filled) = loop {
        let Some(left) = time_left(deadline) else {
            return refuse(stream, &Rejection::RequestTimeout, false, log, config);
        };
        let n = match read_with_timeout(&mut stream, &mut buf, left) {
            Ok(0) => {
                log.outcome = "closed by peer before a complete request".to_string();
                return;
            }
            Ok(n) => n,
            Err(err) if is_timeout(&err) => continue,
            Err(err) => {
                log.outcome = format!("read error before a complete request: {err}");
                return;
            }
        };
        log.bytes_in += n as u64;
        match reader.push(&buf[..n]) {
            Ok(Some(head_end)) => break (head_end, n),
            Ok(None) => {}
            Err(rejection) => return refuse(stream, &rejection, false, log, config),
        }
    };
    let request = match Request::parse(reader.head()) {
        Ok(request) => request,
        Err(rejection) => return refuse(stream, &rejection, false, log, config),
    };
    log.path = request.path.to_string();
    log.client = forwarded::client_address(&request, log.peer.ip(), &config.trusted_proxies);
    match request.route() {
        Route::Upgrade => match handshake::validate(&request, config) {
            Ok(accepted) => upgrade(stream, &accepted, buf, head_end..filled, config, log),
            Err(rejection) => refuse(stream, &rejection, false, log, config),
        },
        Route::Page => {
            let page = http::response(
                (200, "OK"),
                "Cache-Control: no-cache\r\n",
                "text/html; charset=utf-8",
                PAGE.as_bytes(),
                request.is_head(),
            );
            log.outcome = "200 page served".to_string();
            send_and_close(stream, &page, log, config);
        }
        Route::Refuse(rejection) => refuse(stream, &rejection, request.is_head(), log, config),
    }
}

/// Answers with an HTTP error and closes.
fn refuse(
    stream: TcpStream,
    rejection: &Rejection,
    head_only: bool,
    log: &mut ConnectionLog,
    config: &Config,
) {
    let (code, _) = rejection.status();
    log.outcome = format!("{code} refused: {}", rejection.message());
    send_and_close(stream, &rejection.response(head_only), log, config);
}

fn send_and_close(
    mut stream: TcpStream,
    response: &[u8],
    log: &mut ConnectionLog,
    config: &Config,
) {
    if write_all_within(&mut stream, response, &[], config.write_timeout()).is_ok() {
        log.bytes_out += response.len() as u64;
        linger_close(stream, config.close_timeout);
    }
}

/// Completes the upgrade and runs the WebSocket until it ends.
fn upgrade(
    mut stream: TcpStream,
    accepted: &Accepted,
    buf: Vec<u8>,
    pending: Range<usize>,
    config: &Config,
    log: &mut ConnectionLog,
) {
    log.subprotocol = accepted.subprotocol.clone();
    let response = handshake::switching_protocols(accepted);
    let setup = stream
        .set_nodelay(true)
        .and_then(|()| write_all_within(&mut stream, &response, &[], config.write_timeout()));
    if let Err(err) = setup {
        log.outcome = format!("error while completing the handshake: {err}");
        return;
    }
    log.bytes_out += response.len() as u64;
    log.outcome = "websocket: closed".to_string();
    match websocket(&mut stream, buf, pending, config, log) {
        Ok(true) => linger_close(stream, config.close_timeout),
        Ok(false) => {}
        Err(err) if is_timeout(&err) => {
            log.outcome = "websocket: peer stopped reading, write timed out".to_string()
        }
        Err(err) => log.outcome = format!("websocket: connection error: {err}"),
    }
}

/// The WebSocket read-process-write loop. Returns `Ok(true)` when the close handshake
/// finished (the caller closes gracefully) and `Ok(false)` when the connection should just
/// be dropped (the peer vanished or never answered our close frame).
fn websocket(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    mut pending: Range<usize>,
    config: &Config,
    log: &mut ConnectionLog,
) -> io::Result<bool> {
    let mut protocol = Protocol::new(config.max_message_size);
    let mut out = Vec::new();
    let mut close_deadline = None;
    let mut ping_sent = false;
    // Set the read timeout only when it changes: a syscall per message would cost more
    // than the echo itself. `None`: what the handshake left on the socket.
    let mut read_timeout: Option<Option<Duration>> = None;
    loop {
        while !pending.is_empty() {
            let (used, event) = protocol.receive(&mut buf[pending.clone()], &mut out);
            pending.start += used;
            match event {
                None => {}
                Some(Event::Message(message)) => {
                    log.messages_in += 1;
                    let payload = echo::reply(config.echo, &message, &mut out);
                    if payload.len() <= COPY_LIMIT {
                        out.extend_from_slice(payload);
                    } else {
                        // Send a large payload from where it lies, behind what is queued.
                        write_all_within(stream, &out, payload, config.write_timeout())?;
                        log.bytes_out += (out.len() + payload.len()) as u64;
                        out.clear();
                    }
                    log.messages_out += 1;
                }
                Some(Event::Closed { code }) => {
                    log.outcome = match code {
                        Some(code) => format!("websocket: closed by peer with {code}"),
                        None => "websocket: closed by peer with no code".to_string(),
                    };
                }
                Some(Event::Failed(err)) => {
                    log.outcome = format!(
                        "websocket: failed with close {} sent: {err}",
                        err.close_code()
                    );
                }
            }
        }
        // One write for everything this read produced: replies, pongs and close frames.
        if !out.is_empty() {
            write_all_within(stream, &out, &[], config.write_timeout())?;
            log.bytes_out += out.len() as u64;
            out.clear();
            if out.capacity() > RETAINED_OUT_CAPACITY {
                out = Vec::new();
            }
        }
        if protocol.is_finished() {
            return Ok(true);
        }
        let timeout = if protocol.is_open() {
            config.ping_interval
        } else {
            // RFC 6455 §7.1.1: after our close frame, wait a bounded time for the peer's.
            let deadline =
                *close_deadline.get_or_insert_with(|| Instant::now() + config.close_timeout);
            let Some(left) = time_left(deadline) else {
                log.outcome.push_str("; no close frame came back in time");
                return Ok(false);
            };
            Some(left)
        };
        if pending.end == buf.len() && buf.len() < MAX_READ_SIZE {
            buf.resize(buf.len() * 2, 0);
        }
        if read_timeout != Some(timeout) {
            stream.set_read_timeout(timeout)?;
            read_timeout = Some(timeout);
        }
        pending = 0..0;
        match stream.read(&mut buf) {
            Ok(0) => {
                if protocol.is_open() {
                    log.outcome =
                        "websocket: peer closed TCP without a close frame (1006)".to_string();
                }
                return Ok(false);
            }
            Ok(n) => {
                log.bytes_in += n as u64;
                pending = 0..n;
                ping_sent = false;
            }
            Err(err) if is_timeout(&err) && protocol.is_open() => {
                if ping_sent {
                    log.outcome = "websocket: no answer to ping, close 1001 sent".to_string();
                    protocol.close(close_code::GOING_AWAY, "ping timeout", &mut out);
                } else {
                    protocol.send_ping(b"keepalive", &mut out);
                    ping_sent = true;
                }
            }
            Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
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
fn linger_close(mut stream: TcpStream, timeout: Duration) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + timeout;
    let mut sink = [0; 4096];
    let mut drained = 0;
    while let Some(left) = time_left(deadline) {
        match read_with_timeout(&mut stream, &mut sink, left) {
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
        eprintln!("could not start the thread that refuses excess connections: {err}");
    }
    sender
}

fn refuse_busy(queue: &Receiver<TcpStream>) {
    let response = Rejection::ServiceUnavailable.response(false);
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

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_freed_even_when_a_connection_panics() {
        let active = Arc::new(AtomicUsize::new(0));
        let first = Slot::take(&active, 2).unwrap();
        let second = Slot::take(&active, 2).unwrap();
        assert!(Slot::take(&active, 2).is_none());
        drop(first);
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let worker = thread::spawn(move || {
            run_isolated(second, peer, true, |_| panic!("deliberate test panic"));
        });
        assert!(worker.join().is_ok(), "the panic must not escape");
        assert_eq!(active.load(Ordering::Acquire), 0);
    }
}
