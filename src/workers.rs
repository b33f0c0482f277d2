//! Threads for connections: one per live connection, and no hand-over between threads. A
//! thread without a connection waits in `accept` itself, so the thread the kernel wakes
//! for a new connection is the one that serves it: handing a socket from an accepting
//! thread to a serving one would cost a second wake-up per connection, and on a machine
//! with an idle core that wake-up often crosses cores.
//!
//! The bookkeeping is one counter, `waiting`: the threads in the accept loop.
//! - A thread that accepts a connection while no other is waiting asks the keeper (the
//!   thread that called [`Workers::run`]) to start one, and serves at once: starting a
//!   thread costs tens of µs, which its client does not wait for.
//! - The keeper starts a thread whenever none is waiting, and while it cannot (out of
//!   memory or threads), it retries; connections wait in the listen backlog meanwhile.
//! - A waiting thread leaves after a quiet spell (an `accept` that timed out) only while
//!   another is waiting too.
//! - A thread whose connection ended waits again only while fewer than `max_waiting` do.
//! - A thread whose job panicked ends: whatever it held may be broken.
//!
//! Linux wakes one of the threads blocked in `accept` per connection, not all of them.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::log;
use crate::socket::is_timeout;

/// How long to wait after a failed `accept` (e.g. out of file descriptors), or a thread
/// that could not be started, before trying again.
const BACKOFF: Duration = Duration::from_millis(100);
/// At most one line per this long about a failure that repeats (`accept` failing, a thread
/// that cannot be started), however many threads meet it.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Whether the thread that ran a job may run another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// The job finished normally: the thread may wait for the next connection.
    Yes,
    /// The job panicked: its thread may hold broken state, so it ends.
    No,
}

/// A unit of work: serving one connection.
pub type Job = Box<dyn FnOnce() -> Reuse + Send>;

/// The threads that accept on one listener and serve what they accept.
pub struct Workers<A> {
    listener: TcpListener,
    admit: A,
    waiting: AtomicUsize,
    max_waiting: usize,
    stack_size: usize,
    /// A thread left the accept loop empty: the keeper should start one.
    wanted: Sender<()>,
    requests: Mutex<Receiver<()>>,
    /// When a repeating failure was last logged: every waiting thread may meet the same
    /// one (out of file descriptors, say), and one line a second says it.
    last_failure_logged: Mutex<Option<Instant>>,
}

impl<A> Workers<A>
where
    A: Fn(TcpStream, SocketAddr) -> Option<Job> + Send + Sync + 'static,
{
    /// Threads of `stack_size` bytes accepting on `listener`, at most `max_waiting` of them
    /// waiting at once. `admit` turns each accepted connection into the job that serves it,
    /// or deals with it at once and returns `None` (a refusal, say).
    ///
    /// The listener's read timeout (`SO_RCVTIMEO`, which Linux applies to `accept`) is
    /// the quiet spell after which a waiting thread may end; without one, waiting threads
    /// stay until the process ends.
    pub fn new(listener: TcpListener, admit: A, stack_size: usize, max_waiting: usize) -> Self {
        let (wanted, requests) = mpsc::channel();
        Workers {
            listener,
            admit,
            waiting: AtomicUsize::new(0),
            max_waiting: max_waiting.max(1),
            stack_size,
            wanted,
            requests: Mutex::new(requests),
            last_failure_logged: Mutex::new(None),
        }
    }

    /// Makes the calling thread the keeper: it starts the first thread, then one more
    /// whenever none is left waiting, for as long as the process lives. Returns only if
    /// the first thread cannot be started. Call it once.
    pub fn run(self: Arc<Self>) -> io::Result<Infallible> {
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        self.spawn()?;
        // `self` holds a sender, so this loop does not end.
        for () in requests.iter() {
            self.start_while_none_waits();
        }
        Err(io::Error::other("the channel that asks for threads closed"))
    }

    /// Threads in the accept loop right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Starts a thread, counted as waiting from before it exists.
    fn spawn(self: &Arc<Self>) -> io::Result<()> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let workers = Arc::clone(self);
        let spawned = thread::Builder::new()
            .stack_size(self.stack_size)
            .spawn(move || workers.work());
        if spawned.is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        spawned.map(drop)
    }

    /// Starts a thread, unless one is waiting already (one that finished its connection
    /// may have come back since it was asked for). Retries until it can.
    fn start_while_none_waits(self: &Arc<Self>) {
        while self.waiting() == 0 {
            match self.spawn() {
                Ok(()) => return,
                Err(err) => {
                    self.log_failure(&format!(
                        "could not start a thread to accept connections: {err}; retrying"
                    ));
                    thread::sleep(BACKOFF);
                }
            }
        }
    }

    /// A thread's life: accept, serve, and accept again, until told to end.
    fn work(self: Arc<Self>) {
        while let Some(job) = self.next_job() {
            self.stop_waiting();
            if job() == Reuse::No || !self.wait_again() {
                return;
            }
        }
    }

    /// Waits for a connection that `admit` takes on. `None` when this thread should end: a
    /// quiet spell passed while another thread was waiting too.
    ///
    /// Not inlined: its locals would otherwise sit in `work`'s frame, under every frame
    /// that serves the connection, and push an idle connection's stack into one more page.
    #[inline(never)]
    fn next_job(&self) -> Option<Job> {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if let Some(job) = (self.admit)(stream, peer) {
                        return Some(job);
                    }
                }
                Err(err) if is_timeout(&err) => {
                    if self.leave_if_not_last() {
                        return None;
                    }
                }
                Err(err) => {
                    // Running out of file descriptors or memory is temporary: say so, give
                    // the open connections a moment to finish, and keep serving.
                    self.log_failure(&format!("accept failed: {err}; retrying"));
                    thread::sleep(BACKOFF);
                }
            }
        }
    }

    fn log_failure(&self, line: &str) {
        let mut last = self
            .last_failure_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= FAILURE_LOG_INTERVAL) {
            *last = Some(Instant::now());
            log(line);
        }
    }

    /// Leaves the waiting threads to serve a connection; the last one to leave asks the
    /// keeper for a new one. Not inlined, for the reason `next_job` is not.
    #[inline(never)]
    fn stop_waiting(&self) {
        if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The keeper holds the receiver for as long as the process lives.
            let _ = self.wanted.send(());
        }
    }

    /// Joins the waiting threads again, unless `max_waiting` already wait.
    fn wait_again(&self) -> bool {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_waiting).then_some(n + 1)
            })
            .is_ok()
    }

    /// Leaves the waiting threads for good, unless this is the last of them.
    fn leave_if_not_last(&self) -> bool {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > 1).then(|| n - 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    type Admit = Box<dyn Fn(TcpStream, SocketAddr) -> Option<Job> + Send + Sync>;

    /// Workers on a fresh local listener whose `accept` times out after `quiet`, with a
    /// keeper thread of their own, once the first thread waits. Also returns the keeper's
    /// thread id.
    fn start(
        admit: Admit,
        max_waiting: usize,
        quiet: Duration,
    ) -> (Arc<Workers<Admit>>, SocketAddr, thread::ThreadId) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = TcpStream::from(std::os::fd::OwnedFd::from(listener));
        socket.set_read_timeout(Some(quiet)).unwrap();
        let listener = TcpListener::from(std::os::fd::OwnedFd::from(socket));
        let workers = Arc::new(Workers::new(listener, admit, 64 * 1024, max_waiting));
        let keeper = thread::spawn({
            let workers = Arc::clone(&workers);
            move || workers.run()
        });
        wait_for_waiting(&workers, 1);
        (workers, addr, keeper.thread().id())
    }

    /// Admits every connection with a job that reports its thread and answers `reuse`.
    fn report_thread(to: Sender<thread::ThreadId>, reuse: Reuse) -> Admit {
        Box::new(move |_stream, _peer| {
            let to = to.clone();
            Some(Box::new(move || {
                to.send(thread::current().id()).unwrap();
                reuse
            }))
        })
    }

    fn wait_for_waiting<A>(workers: &Workers<A>, count: usize)
    where
        A: Fn(TcpStream, SocketAddr) -> Option<Job> + Send + Sync + 'static,
    {
        let deadline = Instant::now() + Duration::from_secs(5);
        while workers.waiting() != count {
            assert!(
                Instant::now() < deadline,
                "{} threads waiting, expected {count}",
                workers.waiting()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until every worker thread is back in the accept loop: each holds one `Arc`,
    /// beside the test's and the keeper's.
    fn wait_until_every_thread_waits(workers: &Arc<Workers<Admit>>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while workers.waiting() != Arc::strong_count(workers) - 2 {
            assert!(Instant::now() < deadline, "threads did not come back");
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn served_by(addr: SocketAddr, from: &Receiver<thread::ThreadId>) -> thread::ThreadId {
        let _client = TcpStream::connect(addr).unwrap();
        from.recv_timeout(Duration::from_secs(5))
            .expect("not served")
    }

    #[test]
    fn finished_threads_serve_the_next_connections() {
        let (to, from) = mpsc::channel();
        let (workers, addr, keeper) =
            start(report_thread(to, Reuse::Yes), 4, Duration::from_secs(30));
        let mut threads = HashSet::new();
        for _ in 0..20 {
            threads.insert(served_by(addr, &from));
            wait_until_every_thread_waits(&workers);
        }
        assert!(
            threads.len() <= 2,
            "20 connections took {} threads",
            threads.len()
        );
        assert!(!threads.contains(&keeper), "the keeper served a connection");
    }

    #[test]
    fn a_thread_whose_job_panicked_serves_nothing_more() {
        let (to, from) = mpsc::channel();
        let (workers, addr, _) = start(report_thread(to, Reuse::No), 4, Duration::from_secs(30));
        let mut threads = HashSet::new();
        for _ in 0..10 {
            threads.insert(served_by(addr, &from));
            wait_for_waiting(&workers, 1);
        }
        assert_eq!(
            threads.len(),
            10,
            "a thread served again after its job panicked"
        );
    }

    #[test]
    fn serving_does_not_start_when_no_thread_can_be_had() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let admit: Admit = Box::new(|_stream, _peer| None);
        // No system maps a 64 TiB stack.
        let workers = Arc::new(Workers::new(listener, admit, 1 << 46, 4));
        assert!(workers.run().is_err());
    }

    #[test]
    fn a_refused_connection_leaves_its_thread_waiting() {
        let admit: Admit = Box::new(|_stream, _peer| None);
        let (workers, addr, _) = start(admit, 4, Duration::from_secs(30));
        for _ in 0..5 {
            let mut client = TcpStream::connect(addr).unwrap();
            // The refusal closes the socket: the client reads EOF.
            let mut byte = [0u8];
            assert_eq!(std::io::Read::read(&mut client, &mut byte).unwrap(), 0);
            assert_eq!(workers.waiting(), 1);
        }
    }

    #[test]
    fn waiting_threads_are_bounded_and_leave_when_quiet_but_the_last_stays() {
        let (to, from) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let admit: Admit = Box::new(move |_stream, _peer| {
            let (to, gate) = (to.clone(), Arc::clone(&gate));
            Some(Box::new(move || {
                to.send(thread::current().id()).unwrap();
                gate.lock().unwrap().recv().unwrap();
                Reuse::Yes
            }))
        });
        let (workers, addr, _) = start(admit, 2, Duration::from_millis(200));
        let clients: Vec<_> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let threads: HashSet<_> = (0..4).map(|_| from.recv().unwrap()).collect();
        assert_eq!(
            threads.len(),
            4,
            "four connections at once need four threads"
        );
        wait_for_waiting(&workers, 1);
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        // Five threads are free now; at most two may wait, and after quiet spells one.
        let deadline = Instant::now() + Duration::from_secs(5);
        while workers.waiting() != 1 {
            assert!(
                workers.waiting() <= 2,
                "{} threads waiting",
                workers.waiting()
            );
            assert!(Instant::now() < deadline, "waiting threads did not leave");
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(600));
        assert_eq!(workers.waiting(), 1, "the last waiting thread left");
        drop(clients);
        // And that thread still accepts.
        let _client = TcpStream::connect(addr).unwrap();
        from.recv_timeout(Duration::from_secs(5))
            .expect("not served");
        release.send(()).unwrap();
    }
}
