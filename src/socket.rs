//! The socket of one connection: the options it starts with, reads and writes that count
//! the bytes each way and never wait past their deadline, and a close that does not lose
//! our last bytes.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::config::Config;

/// How many bytes a closing connection may still send us before we stop draining it.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// Whether accepted sockets start with the listening socket's options. Linux copies them
/// (`TCP_NODELAY`, `SO_SNDTIMEO` and `SO_RCVTIMEO` among them) to every socket `accept`
/// returns, so they are set once on the listener instead of three calls per connection.
pub const ACCEPT_INHERITS_OPTIONS: bool = cfg!(target_os = "linux");

/// The options every connection starts with: replies go out without Nagle's delay, a write
/// blocks at most the write timeout, and the first read waits at most
/// [`first_read_timeout`].
pub fn set_connection_options(socket: &TcpStream, config: &Config) -> io::Result<()> {
    socket.set_nodelay(true)?;
    socket.set_write_timeout(Some(config.write_timeout()))?;
    socket.set_read_timeout(Some(first_read_timeout(config)))
}

/// The read timeout a connection starts with. On the listener, it is also how long
/// `accept` waits before a thread with no connection may end, which should be shorter than
/// a handshake may take; so it is the shorter of the two, and the HTTP phase keeps the
/// handshake's own deadline (only a client slower than this costs it another setsockopt).
pub fn first_read_timeout(config: &Config) -> Duration {
    config.handshake_timeout.min(config.idle_thread_timeout)
}

/// The read timeout on the socket, as far as [`Wire`] knows. Set only when it changes: a
/// syscall per message would cost more than the echo itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadTimeout {
    /// The one the socket was accepted with ([`first_read_timeout`]), not yet run out.
    Inherited(Duration),
    /// Set by [`Wire::read_within`], or inherited and run out once: at most this long,
    /// or with `None`, no limit.
    Set(Option<Duration>),
}

/// A connection's socket, counting the bytes that cross it each way: every read and write
/// of a connection goes through here, so the log's counts are right by construction.
#[derive(Debug)]
pub struct Wire {
    stream: TcpStream,
    write_timeout: Duration,
    read_timeout: ReadTimeout,
    /// Bytes read so far.
    pub bytes_in: u64,
    /// Bytes written so far.
    pub bytes_out: u64,
}

impl Wire {
    /// A connection whose writes may each block at most `write_timeout`, and whose socket
    /// was accepted with the read timeout `read_timeout`.
    pub fn new(stream: TcpStream, write_timeout: Duration, read_timeout: Duration) -> Wire {
        Wire {
            stream,
            write_timeout,
            read_timeout: ReadTimeout::Inherited(read_timeout),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// The socket, for what is not a read or a write.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Reads with the socket's current timeout.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.bytes_in += n as u64;
        Ok(n)
    }

    /// Reads, waiting at most `timeout` (`None`: no limit), and perhaps less: the timeout
    /// the socket was accepted with serves as long as it is no longer than asked for, so
    /// a short connection never sets one (a connection that sends its close frame soon
    /// after the handshake saves two setsockopt calls). A caller must therefore expect a
    /// timeout before `timeout` has passed, and wait on.
    pub fn read_within(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let inherited_serves = matches!(
            self.read_timeout,
            ReadTimeout::Inherited(first) if timeout.is_none_or(|asked| first <= asked)
        );
        if !inherited_serves && self.read_timeout != ReadTimeout::Set(timeout) {
            self.stream.set_read_timeout(timeout)?;
            self.read_timeout = ReadTimeout::Set(timeout);
        }
        let read = self.read(buf);
        if let (Err(err), ReadTimeout::Inherited(first)) = (&read, self.read_timeout) {
            // It served once; from now on the caller's own timeout is set.
            if is_timeout(err) {
                self.read_timeout = ReadTimeout::Set(Some(first));
            }
        }
        read
    }

    /// Writes `head` and then `body` (in one syscall when the kernel takes them at once),
    /// all within the write timeout.
    ///
    /// A socket's write timeout bounds each syscall, and a peer that reads a trickle makes
    /// every syscall a partial success, so after a partial write the timeout is cut to the
    /// time left: one reply can never hold the thread longer than the write timeout.
    pub fn send(&mut self, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + self.write_timeout;
        let mut shortened = false;
        let result = loop {
            match self
                .stream
                .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
            {
                Ok(0) if !head.is_empty() || !body.is_empty() => {
                    break Err(io::ErrorKind::WriteZero.into())
                }
                Ok(n) => {
                    self.bytes_out += n as u64;
                    if n < head.len() {
                        head = &head[n..];
                    } else {
                        body = &body[n - head.len()..];
                        head = &[];
                    }
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
            if let Err(err) = self.stream.set_write_timeout(Some(left)) {
                break Err(err);
            }
            shortened = true;
        };
        if shortened {
            self.stream.set_write_timeout(Some(self.write_timeout))?;
        }
        result
    }

    /// Closes the connection without losing what we wrote: a socket closed with unread
    /// input is reset, and a reset can destroy our last bytes before the peer reads them.
    /// So: send our FIN, then read and discard until the peer closes too, within `timeout`
    /// and a byte budget.
    pub fn linger_close(&mut self, timeout: Duration) {
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + timeout;
        let mut sink = [0; 4096];
        let mut drained = 0;
        while let Some(left) = time_left(deadline) {
            match self.read_within(&mut sink, Some(left)) {
                Ok(0) => return,
                Ok(n) if drained + n <= DRAIN_LIMIT => drained += n,
                Err(err) if is_timeout(&err) => {}
                _ => return,
            }
        }
    }
}

/// The time until `deadline`, or `None` once it has passed (a zero timeout is not allowed).
pub fn time_left(deadline: Instant) -> Option<Duration> {
    Some(deadline.checked_duration_since(Instant::now())?).filter(|left| !left.is_zero())
}

/// Whether an I/O error is a timeout (`SO_RCVTIMEO` / `SO_SNDTIMEO` ran out).
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_wire_counts_what_crosses_it_and_sets_a_timeout_only_when_it_changes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut wire = Wire::new(server, Duration::from_secs(5), Duration::from_secs(30));
        wire.send(b"head", b"body").unwrap();
        let mut got = [0; 8];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"headbody");
        client.write_all(b"abc").unwrap();
        let mut buf = [0; 16];
        let timeout = Some(Duration::from_secs(2));
        assert_eq!(wire.read_within(&mut buf, timeout).unwrap(), 3);
        assert_eq!((wire.bytes_in, wire.bytes_out), (3, 8));
        assert_eq!(wire.read_timeout, ReadTimeout::Set(timeout));
        assert_eq!(wire.stream().read_timeout().unwrap(), timeout);
    }

    #[test]
    fn the_first_read_timeout_serves_while_it_is_no_longer_than_asked() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let first = Duration::from_millis(50);
        server.set_read_timeout(Some(first)).unwrap();
        let mut wire = Wire::new(server, Duration::from_secs(5), first);
        let mut buf = [0; 4];
        // Asked for 10 s: the 50 ms the socket has serves, and runs out early.
        let started = Instant::now();
        let err = wire
            .read_within(&mut buf, Some(Duration::from_secs(10)))
            .unwrap_err();
        assert!(is_timeout(&err) && started.elapsed() < Duration::from_secs(5));
        assert_eq!(wire.read_timeout, ReadTimeout::Set(Some(first)));
        // Run out once, it no longer serves: the next read sets what is asked.
        let _ = wire.read_within(&mut buf, Some(Duration::from_millis(60)));
        assert_eq!(
            wire.read_timeout,
            ReadTimeout::Set(Some(Duration::from_millis(60)))
        );
        assert_eq!(
            wire.stream().read_timeout().unwrap(),
            Some(Duration::from_millis(60))
        );
    }
}
