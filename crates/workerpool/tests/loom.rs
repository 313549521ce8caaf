//! Loom model of the shutdown / queue handoff protocol of `WorkerPool`.
//!
//! The pool itself runs on crossbeam-channel, which loom cannot instrument, so this is
//! a faithful miniature of the protocol, explored under every interleaving loom finds:
//!
//! * submitters take the gate's read lock, and enqueue only while the sender is there;
//! * shutdown takes the write lock and removes the sender (closing the queue);
//! * a worker runs jobs until the queue is closed *and* empty.
//!
//! Properties: every job a submitter saw accepted runs exactly once; a job submitted
//! after the close is rejected; nobody deadlocks.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p poolside-workerpool --test loom`
//! (`cargo xtask test` does).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex, RwLock};
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

/// The gate: `Some` while the pool accepts work (the pool's `RwLock<Option<Sender>>`).
struct Pool {
    gate: RwLock<Option<Arc<Queue>>>,
    queue: Arc<Queue>,
}

impl Pool {
    fn submit(&self, job: usize) -> bool {
        let gate = self.gate.read().unwrap();
        match gate.as_ref() {
            Some(queue) => {
                queue.push(job);
                true
            }
            None => false,
        }
    }

    fn shutdown(&self) {
        // Dropping the last sender is what closes a crossbeam channel.
        if self.gate.write().unwrap().take().is_some() {
            self.queue.close();
        }
    }
}

#[test]
fn accepted_jobs_run_exactly_once_and_late_ones_are_rejected() {
    loom::model(|| {
        let queue =
            Arc::new(Queue { state: Mutex::new((VecDeque::new(), false)), ready: Condvar::new() });
        let pool = Arc::new(Pool { gate: RwLock::new(Some(queue.clone())), queue });
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
                    if pool.submit(job) {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        pool.shutdown();
        assert!(!pool.submit(99), "submissions after shutdown are rejected");
        submitter.join().unwrap();
        worker.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst));
        pool.shutdown(); // a second shutdown is a no-op
    });
}
