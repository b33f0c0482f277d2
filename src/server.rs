//! The server: binds the listener, admits each connection (up to the limit; past it, a
//! `503` from one refuser thread) and runs it on a thread of its own, isolated, so a panic
//! ends only that connection and still tells its peer.

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::close::{CloseCode, ClosePayload};
use crate::config::Config;
use crate::connection_log::{ConnectionLog, Ending, Stage};
use crate::exchange::serve;
use crate::frame;
use crate::http::{Body, Rejection};
use crate::log;
use crate::socket::{first_read_timeout, set_connection_options, Wire};
use crate::tracer::Tracer;
use crate::workers::{Job, Reuse, Workers};

/// Stack of each connection thread: the code never recurses and keeps its buffers on the
/// heap, so a small stack lets thousands of connections fit in little memory.
const STACK_SIZE: usize = 128 * 1024;
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
    stream: TcpStream,
    mut connection: ConnectionLog,
    config: &Config,
    work: impl FnOnce(&mut Wire, &Config, &mut ConnectionLog) -> Ending,
) -> Reuse {
    let mut wire = Wire::new(stream, config.write_timeout(), first_read_timeout(config));
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        work(&mut wire, config, &mut connection)
    }));
    let reuse = match served {
        Ok(ending) => {
            if !config.quiet {
                connection.finish(&ending, &wire);
            }
            Reuse::Yes
        }
        Err(_) => {
            answer_after_panic(&mut wire, connection.stage, config);
            // A panic is a bug: report it even when per-connection lines are silenced.
            connection.finish(&Ending::Panicked, &wire);
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
fn answer_after_panic(wire: &mut Wire, stage: Stage, config: &Config) {
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
    if wire.send(&last_word, &[]).is_ok() {
        wire.linger_close(config.close_timeout);
    }
}

/// Starts the thread that answers connections over the limit with `503`, and returns the
/// queue that feeds it. It lingers over each one briefly (as `Wire::linger_close` does) so the
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::ACCEPT_INHERITS_OPTIONS;

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
