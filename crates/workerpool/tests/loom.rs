//! Loom model of the shutdown / queue handoff protocol of `WorkerPool`.
//!
//! The pool itself runs on crossbeam-channel, which loom cannot instrument, so this is
//! a faithful miniature of the protocol, explored under every interleaving loom finds:
//!
//! * a submitter raises its own `in_flight` flag, then enqueues only if `closed` is
//!   still false, then lowers the flag;
//! * shutdown sets `closed`, waits until every flag is down, then signals the close;
//! * a worker runs jobs until the close is signalled *and* the queue is empty.
//!
//! Properties: every job a submitter saw accepted runs exactly once; a job submitted
//! after the close is rejected; nobody deadlocks.
//! The model fails if the submitter's fence is dropped or its flag is lowered before
//! the push (both mutations were checked).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p poolside-workerpool --test loom`
//! (`cargo xtask test` does).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::collections::VecDeque;

/// The queue: jobs (ids) plus the closed flag, under one lock with a condvar.
struct Queue {
    state: Mutex<(VecDeque<usize>, bool)>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, job: usize) {
        self.state.lock().unwrap().0.push_back(job);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.state.lock().unwrap().1 = true;
        self.ready.notify_all();
    }

    /// The next job, or `None` once closed and drained.
    fn pop(&self) -> Option<usize> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(job) = state.0.pop_front() {
                return Some(job);
            }
            if state.1 {
                return None;
            }
            state = self.ready.wait(state).unwrap();
        }
    }
}

/// The admission gate (`src/gate.rs`): a `closed` flag plus one `in_flight` flag per
/// submitting thread, and the queue it guards.
struct Pool {
    closed: AtomicBool,
    in_flight: Vec<AtomicBool>,
    queue: Arc<Queue>,
}

impl Pool {
    fn new(submitters: usize) -> Self {
        let queue =
            Arc::new(Queue { state: Mutex::new((VecDeque::new(), false)), ready: Condvar::new() });
        let in_flight = (0..submitters).map(|_| AtomicBool::new(false)).collect();
        Pool { closed: AtomicBool::new(false), in_flight, queue }
    }

    /// `Gate::enter`, the send, and dropping the `Pass`.
    fn submit(&self, submitter: usize, job: usize) -> bool {
        let flag = &self.in_flight[submitter];
        flag.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            flag.store(false, Ordering::Release);
            return false;
        }
        self.queue.push(job);
        flag.store(false, Ordering::Release);
        true
    }

    /// `Gate::close`, then the close signal that lets idle workers drain and exit.
    fn shutdown(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return; // a second shutdown is refused (the pool reports an error)
        }
        fence(Ordering::SeqCst);
        for flag in &self.in_flight {
            while flag.load(Ordering::Acquire) {
                thread::yield_now();
            }
        }
        self.queue.close();
    }
}

#[test]
fn accepted_jobs_run_exactly_once_and_late_ones_are_rejected() {
    // Two preemptions cover the handshake's interleavings (each side's store, fence and
    // load) and keep the model at a few seconds in release.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let pool = Arc::new(Pool::new(2));
        let ran = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));

        let worker = {
            let (pool, ran) = (pool.clone(), ran.clone());
            thread::spawn(move || {
                while pool.queue.pop().is_some() {
                    ran.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let submitter = {
            let (pool, accepted) = (pool.clone(), accepted.clone());
            thread::spawn(move || {
                for job in 0..2 {
                    if pool.submit(0, job) {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        pool.shutdown();
        assert!(!pool.submit(1, 99), "submissions after shutdown are rejected");
        submitter.join().unwrap();
        worker.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst));
        pool.shutdown(); // a second shutdown is a no-op
    });
}
