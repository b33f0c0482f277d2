//! Threads for connections: one per live connection, as always, but a thread whose
//! connection ended parks for a while and serves the next one, so connection churn does not
//! pay for creating and ending a thread each time (about 16 system calls and 60 µs here).
//!
//! At most `max_idle` threads park at once, each for at most `idle_timeout`; then they
//! exit, so an idle server holds no more threads than before. A job that reports it must
//! not be reused (its connection panicked) ends its thread instead of parking it.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Whether the thread that ran a job may run another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// The job finished normally: the thread may park for the next one.
    Yes,
    /// The job panicked: its thread may hold broken state, so it ends.
    No,
}

/// A unit of work: serving one connection.
pub type Job = Box<dyn FnOnce() -> Reuse + Send>;

/// Runs jobs on parked threads when there are some, on new threads otherwise.
pub struct Workers {
    shared: Arc<Shared>,
    stack_size: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    max_idle: usize,
    idle_timeout: Duration,
}

/// Jobs handed over but not yet taken, and how many threads are parked waiting for one.
struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
}

impl Workers {
    /// Threads of `stack_size` bytes; at most `max_idle` park, each for `idle_timeout`.
    pub fn new(stack_size: usize, max_idle: usize, idle_timeout: Duration) -> Workers {
        let shared = Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                idle: 0,
            }),
            wake: Condvar::new(),
            max_idle,
            idle_timeout,
        };
        Workers {
            shared: Arc::new(shared),
            stack_size,
        }
    }

    /// Runs `job` on a parked thread if one is free, else on a new thread.
    pub fn run(&self, job: Job) -> io::Result<()> {
        let mut queue = self.shared.lock();
        // Every queued job is promised to a distinct parked thread: a parked thread
        // takes a job, if there is one, before it considers leaving.
        if queue.idle > queue.jobs.len() {
            queue.jobs.push_back(job);
            // Wake the thread after letting go of the lock, so it does not wake only to
            // wait for the lock.
            drop(queue);
            self.shared.wake.notify_one();
            return Ok(());
        }
        drop(queue);
        let shared = Arc::clone(&self.shared);
        thread::Builder::new()
            .stack_size(self.stack_size)
            .spawn(move || shared.work(job))
            .map(drop)
    }

    /// Threads parked right now.
    pub fn idle(&self) -> usize {
        self.shared.lock().idle
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs never run under the lock, so a poisoned lock holds consistent data.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A worker thread's life: run a job, park, run the next, until none comes in time.
    fn work(&self, mut job: Job) {
        while job() == Reuse::Yes {
            match self.next_job() {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Parks the calling thread until a job comes, or returns `None` when it should end:
    /// enough threads are parked already, or none came within the idle timeout.
    fn next_job(&self) -> Option<Job> {
        let mut queue = self.lock();
        if queue.idle >= self.max_idle {
            return None;
        }
        queue.idle += 1;
        let deadline = Instant::now() + self.idle_timeout;
        let job = loop {
            if let Some(job) = queue.jobs.pop_front() {
                break Some(job);
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break None;
            };
            if left.is_zero() {
                break None;
            }
            queue = self
                .wake
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        queue.idle -= 1;
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A job that reports its thread's id, then answers `reuse`.
    fn report_thread(to: &mpsc::Sender<thread::ThreadId>, reuse: Reuse) -> Job {
        let to = to.clone();
        Box::new(move || {
            to.send(thread::current().id()).unwrap();
            reuse
        })
    }

    fn wait_for_idle(workers: &Workers, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while workers.idle() != count {
            assert!(Instant::now() < deadline, "idle stayed {}", workers.idle());
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_finished_thread_serves_the_next_job() {
        let workers = Workers::new(64 * 1024, 4, Duration::from_secs(5));
        let (to, from) = mpsc::channel();
        workers.run(report_thread(&to, Reuse::Yes)).unwrap();
        let first = from.recv().unwrap();
        wait_for_idle(&workers, 1);
        workers.run(report_thread(&to, Reuse::Yes)).unwrap();
        assert_eq!(from.recv().unwrap(), first, "a new thread was started");
    }

    #[test]
    fn a_thread_whose_job_panicked_is_not_reused() {
        let workers = Workers::new(64 * 1024, 4, Duration::from_secs(5));
        let (to, from) = mpsc::channel();
        workers.run(report_thread(&to, Reuse::No)).unwrap();
        let broken = from.recv().unwrap();
        thread::sleep(Duration::from_millis(50));
        assert_eq!(workers.idle(), 0);
        workers.run(report_thread(&to, Reuse::Yes)).unwrap();
        assert_ne!(from.recv().unwrap(), broken);
    }

    #[test]
    fn parked_threads_are_bounded_and_leave_after_the_idle_timeout() {
        let workers = Workers::new(64 * 1024, 2, Duration::from_millis(300));
        let (to, from) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        for _ in 0..4 {
            let (to, gate) = (to.clone(), Arc::clone(&gate));
            workers
                .run(Box::new(move || {
                    to.send(thread::current().id()).unwrap();
                    gate.lock().unwrap().recv().unwrap();
                    Reuse::Yes
                }))
                .unwrap();
        }
        let ids: std::collections::HashSet<_> = (0..4).map(|_| from.recv().unwrap()).collect();
        assert_eq!(ids.len(), 4, "four jobs at once need four threads");
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        wait_for_idle(&workers, 2);
        thread::sleep(Duration::from_millis(100));
        assert_eq!(workers.idle(), 2, "more than max_idle threads parked");
        wait_for_idle(&workers, 0);
    }
}
