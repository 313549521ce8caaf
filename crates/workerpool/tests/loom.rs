//! Loom models of `WorkerPool`'s two hand-written protocols.
//!
//! # Parking (`src/parking.rs`)
//!
//! The real parking code (built against loom's atomics, mutex and a condvar parker
//! under `--cfg loom`, reached through `poolside_workerpool::loom_model`) runs against
//! a queue modelled as a counter. A submitter queues jobs while workers search, register
//! as asleep and park; the test then waits for every job to run. A lost wake-up leaves
//! every thread blocked, which loom reports as a deadlock. The models fail when the
//! fence in `Parking::job_queued` or in `Parking::park` is removed (both checked). In
//! one model the first job to start blocks until another has run, as a job waiting
//! for a scope does: it fails (a deadlock) on the parking code in which a searcher
//! that found a job just as it went to sleep came back busy without handing the
//! search on (checked, with two preemptions; one is not enough to find it).
//!
//! # Shutdown
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
//! # Shutdown, fast path
//!
//! A submitter that takes its queue permit itself skips the gate's fence: it raises its
//! flag, then takes the permit with a release compare-and-swap on a word that also
//! holds a closed bit; shutdown sets the bit with an acquire read-modify-write before
//! it waits for the flags (`src/gate.rs`, `Slots::close_permits`). The model mixes a
//! fast-path submitter with a fenced one (a permit granted by another thread) and
//! checks the same properties. It fails if the permit's compare-and-swap or the
//! closing read-modify-write is relaxed, or the flag is raised after the permit (all
//! three mutations were checked).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release -p poolside-workerpool --test loom`
//! (`cargo xtask test` does).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use poolside_workerpool::loom_model::{JobQueue, Parking};
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

/// The closed bit of the permit word (`PERMITS_CLOSED` in `src/slots.rs`).
const PERMITS_CLOSED: usize = 1 << (usize::BITS - 1);

/// The pool with both admission paths: the fenced gate and the permit word.
struct FastPool {
    gate: Pool,
    /// Permits taken, plus the closed bit.
    permits: AtomicUsize,
}

impl FastPool {
    /// `Gate::raise`, `Slots::try_acquire`'s compare-and-swap, the send, dropping the
    /// `Pass`.
    fn submit_fast(&self, submitter: usize, job: usize) -> bool {
        let flag = &self.gate.in_flight[submitter];
        flag.store(true, Ordering::Relaxed);
        let mut taken = self.permits.load(Ordering::Relaxed);
        loop {
            if taken & PERMITS_CLOSED != 0 {
                flag.store(false, Ordering::Release);
                return false;
            }
            match self.permits.compare_exchange(
                taken,
                taken + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => taken = actual,
            }
        }
        self.gate.queue.push(job);
        flag.store(false, Ordering::Release);
        true
    }

    /// `Gate::close` with `Slots::close_permits` between its fence and its look at the
    /// flags, then the close signal.
    fn shutdown(&self) {
        self.gate.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.permits.fetch_or(PERMITS_CLOSED, Ordering::SeqCst);
        for flag in &self.gate.in_flight {
            while flag.load(Ordering::Acquire) {
                thread::yield_now();
            }
        }
        self.gate.queue.close();
    }
}

#[test]
fn fast_path_jobs_accepted_run_exactly_once_and_late_ones_are_rejected() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let pool = Arc::new(FastPool { gate: Pool::new(3), permits: AtomicUsize::new(0) });
        let ran = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));

        let worker = {
            let (pool, ran) = (pool.clone(), ran.clone());
            thread::spawn(move || {
                while pool.gate.queue.pop().is_some() {
                    ran.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let fast = {
            let (pool, accepted) = (pool.clone(), accepted.clone());
            thread::spawn(move || {
                if pool.submit_fast(0, 0) {
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let fenced = {
            let (pool, accepted) = (pool.clone(), accepted.clone());
            thread::spawn(move || {
                if pool.gate.submit(1, 1) {
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        pool.shutdown();
        assert!(!pool.submit_fast(2, 99), "fast submissions after shutdown are rejected");
        assert!(!pool.gate.submit(2, 98), "fenced submissions after shutdown are rejected");
        fast.join().unwrap();
        fenced.join().unwrap();
        worker.join().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst));
    });
}

/// The queue as a count of jobs, with acquire/release only: the protocol's own fences
/// must do the ordering.
#[derive(Default)]
struct Jobs {
    queued: AtomicUsize,
}

impl Jobs {
    fn push(&self) {
        self.queued.fetch_add(1, Ordering::Release);
    }
}

impl JobQueue for Jobs {
    type Job = ();

    fn try_pop(&self) -> Option<()> {
        let mut queued = self.queued.load(Ordering::Acquire);
        while queued > 0 {
            match self.queued.compare_exchange(
                queued,
                queued - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(()),
                Err(actual) => queued = actual,
            }
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }
}

/// Jobs run so far, and a condvar to wait for a count (blocking, so that a lost
/// wake-up is a deadlock loom detects rather than an endless spin).
#[derive(Default)]
struct Ran {
    count: Mutex<usize>,
    changed: Condvar,
    /// Jobs started so far (for jobs that wait for each other).
    started: AtomicUsize,
}

impl Ran {
    /// A job that must run beside another: the first to start blocks until another job
    /// has run, as a job waiting for a scope or a channel does.
    fn meet(&self) {
        if self.started.fetch_add(1, Ordering::SeqCst) == 0 {
            self.wait_for(1);
        }
    }

    fn one_more(&self) {
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    fn wait_for(&self, target: usize) {
        let mut count = self.count.lock().unwrap();
        while *count < target {
            count = self.changed.wait(count).unwrap();
        }
    }
}

/// `workers` workers, `max_searching` of them searching, and `jobs` jobs queued by the
/// model's main thread; with `retire`, one worker is retired first (the pool shrank);
/// with `meet`, the first job to start blocks until another has run.
/// Every job must run, then `close` lets every worker exit.
fn run_parking_model(workers: usize, max_searching: usize, jobs: usize, retire: bool, meet: bool) {
    let (parking, spots) = Parking::new(workers, max_searching);
    let parking = Arc::new(parking);
    let queue = Arc::new(Jobs::default());
    let ran = Arc::new(Ran::default());
    let exited = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = spots
        .into_iter()
        .map(|mut spot| {
            let (parking, ran, queue, exited) =
                (parking.clone(), ran.clone(), queue.clone(), exited.clone());
            thread::spawn(move || {
                while parking.next_job(&mut spot, &*queue).is_some() {
                    if meet {
                        ran.meet();
                    }
                    ran.one_more();
                }
                exited.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    if retire {
        parking.retire(1);
    }
    for _ in 0..jobs {
        queue.push();
        parking.job_queued();
    }
    ran.wait_for(jobs);
    parking.close();
    for worker in threads {
        worker.join().unwrap();
    }
    assert_eq!(*ran.count.lock().unwrap(), jobs, "every job ran exactly once");
    assert!(queue.is_empty());
    assert_eq!(exited.load(Ordering::SeqCst), workers);
}

/// One parking model: how many workers, searchers and jobs, whether one worker retires,
/// explored with at most `preemptions` preemptions per execution.
struct Model {
    preemptions: usize,
    workers: usize,
    searching: usize,
    jobs: usize,
    retire: bool,
    meet: bool,
}

impl Model {
    fn check(self) {
        let Model { preemptions, workers, searching, jobs, retire, meet } = self;
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(preemptions);
        model.check(move || run_parking_model(workers, searching, jobs, retire, meet));
    }
}

#[test]
fn a_job_queued_while_the_worker_goes_to_park_wakes_it() {
    loom::model(|| run_parking_model(1, 1, 1, false, false));
}

#[test]
fn a_worker_that_may_not_search_is_woken_for_each_job() {
    Model { preemptions: 2, workers: 1, searching: 0, jobs: 2, retire: false, meet: false }.check();
}

#[test]
fn two_workers_one_searcher_run_every_job() {
    Model { preemptions: 2, workers: 2, searching: 1, jobs: 2, retire: false, meet: false }.check();
}

#[test]
fn a_retiring_worker_leaves_and_the_other_runs_every_job() {
    // Whichever worker retires — parked, searching or about to park — the other is
    // still woken for each job.
    Model { preemptions: 2, workers: 2, searching: 0, jobs: 2, retire: true, meet: false }.check();
}

#[test]
fn two_jobs_that_wait_for_each_other_get_both_workers() {
    // The worker that takes the first job blocks in it: whoever searched must have
    // handed the search on, or the second job waits beside a sleeping worker.
    Model { preemptions: 2, workers: 2, searching: 1, jobs: 2, retire: false, meet: true }.check();
}
