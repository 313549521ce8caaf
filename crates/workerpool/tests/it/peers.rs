//! The test suites of the pools our users come from, rewritten against our API: the
//! `threadpool` crate (`src/lib.rs`, its `test` module) and rayon-core
//! (`thread_pool/test.rs`, `scope/test.rs`, `join/test.rs`). Each test names the peer
//! test it translates. Waits that the peers did with sleeps are latches here, jobs
//! that slept for seconds sleep for a millisecond or wait for the test, and the
//! peers' largest loops are scaled down so the module runs in seconds on two cores.
//!
//! How the peers' concepts map onto ours:
//! * threadpool's `execute` is [`WorkerPool::submit`]; its unbounded queue is
//!   `queue_depth(usize::MAX)` where a test queues more than our default 1024 jobs
//!   while the workers are held.
//! * rayon's `install(op)` (run `op` on a worker) is a scoped job that does `op`;
//!   `join(a, b)` is a scope whose body runs `a` and whose one job runs `b`.
//! * A pool is shared by reference or `Arc` (it is `Send + Sync`), not cloned.
//!
//! Design differences, with the tests adapted to our documented behaviour:
//! * `workers(0)` is [`BuildError::ZeroWorkers`], not a panic (threadpool:
//!   `test_zero_tasks_panic`), and `set_workers(0)` is [`ResizeError::ZeroWorkers`].
//! * A panicking job does not kill its worker: the panic is caught, counted and handed
//!   to the job's handle, and the same thread keeps serving; threadpool replaces the
//!   thread, rayon's `install` re-raises the panic in the caller
//!   (`test_recovery_from_subtask_panic`, `test_name`, `panic_propagate`).
//! * Worker threads are named `<prefix>-<index>`, not all `<name>` (`test_name`).
//! * `Debug` shows `workers`, `queue_depth`, `queued` and `shut_down`, not
//!   threadpool's `name`/`active_count` (those are in [`Snapshot`]) (`test_debug`).
//! * Scopes are `std::thread::scope`-like: the body runs on the calling thread and
//!   `'scope` is chosen per call, so scopes of different pools cannot be collected in
//!   one `Vec<&Scope>`; `nested_scopes` erases them behind closures instead.
//! * One pool-wide first-in, first-out queue, and a worker waiting for a scope first
//!   runs that scope's own jobs not started yet, in spawn order. So on one worker a
//!   nested scope's jobs run before the outer scope's queued ones, where rayon's
//!   `scope_fifo` interleaves the two scopes' queues (`mixed_fifo_order`).
//! * A worker waiting for a scope runs the oldest queued jobs (rayon: its own newest
//!   first), so one scope per node of a big recursion can pile that many jobs on one
//!   worker; they run on fresh stacks when the worker's runs low (documented at
//!   [`WorkerPool::scope`]), and rayon's quicksorts run as written, down to single
//!   elements.
//!
//! Peer tests with no counterpart, and why:
//! * threadpool `test_cloned_eq`: the pool is neither `Clone` nor `PartialEq`.
//! * rayon `panic_thread_name`: no thread-name closure, no start/exit handlers.
//! * rayon `failed_thread_stack` in full: an impossible stack is refused before any
//!   thread starts, so there are no start/exit counts to compare (the refusal is
//!   tested).
//! * rayon `scope_lifo_order`, `spawn_lifo_order`, `lifo_order`, `nested_lifo_order`,
//!   `nested_lifo_fifo_order`, `nested_fifo_lifo_order`, `mixed_lifo_order`,
//!   `mixed_lifo_fifo_order`, `mixed_fifo_lifo_order`: no LIFO spawning.
//! * rayon `nested_fifo_scopes`, `in_place_scope_fifo_no_deadlock`,
//!   `static_scope_fifo`, `mixed_lifetime_scope_fifo`: our one scope kind is already
//!   FIFO and in place; their non-FIFO twins are translated.
//! * rayon `scope_spawn_broadcast*`: no broadcast.
//! * rayon `yield_now_to_spawn`, `yield_local_to_spawn`: no `yield_now`.
//! * rayon `join_context_*`: no job migration to observe.
//! * rayon `workers_stop`'s `join_a_lot(22)`: 2^22 leaves scaled down to 2^16.

use crate::common::{eventually, quick_sort, seeded_data};
use poolside_core::Snapshot;
use poolside_workerpool::{
    BuildError, JobError, JobHandle, ResizeError, Scope, WorkerPool, WorkerPoolBuilder,
};
use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a job or a test waits for something that must happen: long enough for a
/// loaded machine, only decides how long a failing test takes.
const PATIENCE: Duration = Duration::from_secs(30);

/// A gate that jobs wait at until the test opens it (for at most [`PATIENCE`]).
#[derive(Clone, Default)]
struct Latch(Arc<(Mutex<bool>, Condvar)>);

impl Latch {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Waits until the latch is open; `false` if it stayed shut for [`PATIENCE`].
    fn wait(&self) -> bool {
        let open = self.0.0.lock().unwrap();
        let (open, _) = self.0.1.wait_timeout_while(open, PATIENCE, |open| !*open).unwrap();
        *open
    }
}

/// `parties` threads meet: each waits until all have arrived (for at most
/// [`PATIENCE`]), which proves that they ran at the same time.
#[derive(Clone)]
struct Rendezvous(Arc<(Mutex<usize>, Condvar, usize)>);

impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous(Arc::new((Mutex::new(0), Condvar::new(), parties)))
    }

    /// Arrives and waits for the others; `false` if they did not all come in time.
    fn meet(&self) -> bool {
        let (arrived, all_here, parties) = &*self.0;
        let mut arrived = arrived.lock().unwrap();
        *arrived += 1;
        all_here.notify_all();
        let (arrived, _) =
            all_here.wait_timeout_while(arrived, PATIENCE, |n| *n < *parties).unwrap();
        *arrived >= *parties
    }
}

/// Runs `f` on its own thread and waits at most ten seconds for it: a test of
/// something that could deadlock fails instead of hanging.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: no result within 10 s (deadlock?)"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

fn stat(pool: &WorkerPool, name: &str) -> u64 {
    Snapshot::of(pool).value(name).unwrap_or_else(|| panic!("no metric {name:?}"))
}

/// The message of a caught panic.
fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

/// Submits `n` jobs that each wait at `latch`; they record whether it opened.
fn hold(pool: &WorkerPool, n: usize, latch: &Latch, opened: &Arc<AtomicUsize>) {
    for _ in 0..n {
        let (latch, opened) = (latch.clone(), opened.clone());
        pool.submit(move |_| {
            if latch.wait() {
                opened.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------
// threadpool
// ---------------------------------------------------------------------------------

// threadpool: test_set_num_threads_increasing
#[test]
fn growing_the_pool_lets_more_jobs_run_at_once() {
    let pool = WorkerPool::new(4).unwrap();
    let (latch, opened) = (Latch::default(), Arc::new(AtomicUsize::new(0)));
    hold(&pool, 4, &latch, &opened);
    assert!(eventually(|| stat(&pool, "active") == 4));

    pool.set_workers(12).unwrap();
    assert_eq!(pool.workers(), 12);
    hold(&pool, 8, &latch, &opened);
    // Twelve jobs hold twelve workers at once: the eight new ones took the new jobs.
    assert!(eventually(|| stat(&pool, "active") == 12 && pool.queued() == 0));
    assert_eq!(stat(&pool, "workers"), 12);

    latch.open();
    pool.join().unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 12);
    assert_eq!(stat(&pool, "completed"), 12);
}

// threadpool: test_set_num_threads_decreasing
#[test]
fn shrinking_the_pool_caps_the_jobs_running_at_once() {
    let pool = WorkerPool::new(4).unwrap();
    for _ in 0..4 {
        pool.submit(|_| {}).unwrap();
    }
    pool.set_workers(2).unwrap();
    assert_eq!(pool.workers(), 2);
    // The surplus workers exit once idle.
    assert!(eventually(|| stat(&pool, "workers") == 2));

    let (latch, opened) = (Latch::default(), Arc::new(AtomicUsize::new(0)));
    hold(&pool, 4, &latch, &opened);
    // Two threads are left: two jobs run, two wait.
    assert!(eventually(|| stat(&pool, "active") == 2 && pool.queued() == 2));

    latch.open();
    pool.join().unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 4);
    assert_eq!(stat(&pool, "completed"), 8);
}

// threadpool: test_active_count
#[test]
fn active_counts_running_jobs_and_queued_counts_the_rest() {
    let pool = WorkerPool::new(4).unwrap();
    let (latch, opened) = (Latch::default(), Arc::new(AtomicUsize::new(0)));
    hold(&pool, 8, &latch, &opened);
    assert!(eventually(|| stat(&pool, "active") == 4 && pool.queued() == 4));
    assert_eq!(pool.workers(), 4);
    assert_eq!(stat(&pool, "workers"), 4);
    assert_eq!(stat(&pool, "submitted"), 8);

    latch.open();
    pool.join().unwrap();
    assert_eq!((stat(&pool, "active"), pool.queued()), (0, 0));
    assert_eq!(opened.load(Ordering::SeqCst), 8);
}

// threadpool: test_works
#[test]
fn every_job_runs_and_reports_back() {
    let pool = WorkerPool::new(4).unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..4u32 {
        let tx = tx.clone();
        pool.submit(move |_| tx.send(i).unwrap()).unwrap();
    }
    drop(tx);
    let mut got: Vec<u32> = rx.iter().collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);
}

// threadpool: test_zero_tasks_panic
#[test]
fn zero_workers_is_a_typed_error_not_a_panic() {
    assert!(matches!(WorkerPool::new(0), Err(BuildError::ZeroWorkers)));
    assert!(matches!(WorkerPool::builder().workers(0).build(), Err(BuildError::ZeroWorkers)));
    let pool = WorkerPool::new(1).unwrap();
    assert!(matches!(pool.set_workers(0), Err(ResizeError::ZeroWorkers)));
    assert_eq!(pool.workers(), 1, "a refused resize changes nothing");
    assert_eq!(pool.spawn(|_| 1).unwrap().join(), Ok(1));
}

// threadpool: test_recovery_from_subtask_panic
#[test]
fn panicking_jobs_leave_every_worker_serving() {
    let pool = WorkerPool::new(4).unwrap();
    for _ in 0..4 {
        pool.submit(|_| panic!("ignore this panic: the test provokes it")).unwrap();
    }
    pool.join().unwrap();
    assert_eq!(stat(&pool, "panicked"), 4);
    // Not replaced: the same four threads are alive and serve.
    assert_eq!(stat(&pool, "workers"), 4);

    let meet = Rendezvous::new(4);
    let handles: Vec<JobHandle<bool>> = (0..4)
        .map(|_| {
            let meet = meet.clone();
            pool.spawn(move |_| meet.meet()).unwrap()
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join(), Ok(true), "all four workers ran a job at once");
    }
    // A handle completes just before its worker counts the job.
    pool.join().unwrap();
    assert_eq!(stat(&pool, "completed"), 4);
}

// threadpool: test_should_not_panic_on_drop_if_subtasks_panic_after_drop
#[test]
fn dropping_the_pool_before_its_jobs_panic_is_quiet_and_queued_jobs_still_run() {
    let pool = WorkerPool::new(4).unwrap();
    let latch = Latch::default();
    let panicking = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let (latch, panicking) = (latch.clone(), panicking.clone());
        pool.submit(move |_| {
            // Released only after the pool is gone: `drop` must not wait for it.
            if latch.wait() {
                panicking.fetch_add(1, Ordering::SeqCst);
                panic!("ignore this panic: the test provokes it");
            }
        })
        .unwrap();
    }
    assert!(eventually(|| stat(&pool, "active") == 4));
    let queued_ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let queued_ran = queued_ran.clone();
        pool.submit(move |_| {
            queued_ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(pool.queued(), 3);

    drop(pool);
    latch.open();
    // The held jobs panic on their workers, which then drain the queue and exit.
    assert!(eventually(|| {
        panicking.load(Ordering::SeqCst) == 4 && queued_ran.load(Ordering::SeqCst) == 3
    }));
}

// threadpool: test_massive_task_creation
#[test]
fn massive_job_creation_runs_every_job() {
    const WORKERS: usize = 4;
    const JOBS: usize = 200_000; // threadpool: 4.2 million
    let pool = WorkerPool::builder().workers(WORKERS).queue_depth(usize::MAX).build().unwrap();
    let filled = Rendezvous::new(WORKERS + 1);
    let measured = Latch::default();
    let (tx, rx) = mpsc::channel();
    for i in 0..JOBS {
        let (tx, filled, measured) = (tx.clone(), filled.clone(), measured.clone());
        pool.submit(move |_| {
            if i < WORKERS {
                // The first jobs hold every worker until the test has measured.
                assert!(filled.meet());
                assert!(measured.wait());
            }
            tx.send(1usize).unwrap();
        })
        .unwrap();
    }
    drop(tx);
    assert!(filled.meet());
    assert_eq!(stat(&pool, "active"), WORKERS as u64);
    assert_eq!(pool.queued(), JOBS - WORKERS);
    measured.open();

    assert_eq!(rx.iter().sum::<usize>(), JOBS);
    pool.join().unwrap();
    assert_eq!(stat(&pool, "active"), 0);
    assert_eq!(stat(&pool, "completed"), JOBS as u64);
    assert_eq!(stat(&pool, "submitted"), JOBS as u64);
}

// threadpool: test_shrink
#[test]
fn shrinking_a_busy_pool_finishes_the_running_jobs_then_caps_the_workers() {
    let pool = WorkerPool::new(6).unwrap();
    let first_met = Rendezvous::new(6 + 1);
    let first_go = Latch::default();
    for _ in 0..6 {
        let (met, go) = (first_met.clone(), first_go.clone());
        pool.submit(move |_| {
            assert!(met.meet());
            assert!(go.wait());
        })
        .unwrap();
    }
    let second_met = Rendezvous::new(4 + 1);
    let second_go = Latch::default();
    for _ in 0..4 {
        let (met, go) = (second_met.clone(), second_go.clone());
        pool.submit(move |_| {
            assert!(met.meet());
            assert!(go.wait());
        })
        .unwrap();
    }

    assert!(first_met.meet(), "six jobs never ran at once: {:?}", Snapshot::of(&pool));
    pool.set_workers(4).unwrap();
    // The running jobs are not interrupted by the resize.
    assert_eq!(stat(&pool, "active"), 6);
    assert_eq!(pool.queued(), 4);
    first_go.open();

    // The four queued jobs run at once on the four workers that are left, and the two
    // surplus workers exit without taking one.
    assert!(second_met.meet(), "four jobs never ran at once: {:?}", Snapshot::of(&pool));
    // A retiring worker may not have marked itself idle yet: wait for the gauges.
    assert!(eventually(|| stat(&pool, "active") == 4 && stat(&pool, "workers") == 4));
    second_go.open();
    pool.join().unwrap();
    assert_eq!(stat(&pool, "completed"), 10);
    assert_eq!(stat(&pool, "workers"), 4);
}

// threadpool: test_name
#[test]
fn worker_threads_are_named_after_the_prefix_after_a_resize_and_a_panic() {
    fn names_of_all_workers(pool: &WorkerPool) -> BTreeSet<String> {
        let meet = Rendezvous::new(pool.workers());
        let handles: Vec<_> = (0..pool.workers())
            .map(|_| {
                let meet = meet.clone();
                pool.spawn(move |_| {
                    assert!(meet.meet());
                    std::thread::current().name().unwrap().to_owned()
                })
                .unwrap()
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();

    let pool = WorkerPool::builder().workers(2).thread_name("test").build().unwrap();
    assert_eq!(names_of_all_workers(&pool), set(&["test-0", "test-1"]));

    pool.set_workers(3).unwrap();
    assert_eq!(names_of_all_workers(&pool), set(&["test-0", "test-1", "test-2"]));

    let name = pool
        .spawn(|_| -> String {
            let name = std::thread::current().name().unwrap().to_owned();
            panic!("{name}");
        })
        .unwrap()
        .join();
    let Err(JobError::Panicked { message }) = name else { panic!("expected a panic: {name:?}") };
    assert!(message.starts_with("test-"), "{message}");
    // After the panic the same three threads serve: none was replaced or renamed.
    assert_eq!(names_of_all_workers(&pool), set(&["test-0", "test-1", "test-2"]));
}

// threadpool: test_debug
#[test]
fn debug_shows_workers_queue_and_state() {
    let pool = WorkerPool::new(4).unwrap();
    assert_eq!(
        format!("{pool:?}"),
        "WorkerPool { workers: 4, queue_depth: 1024, queued: 0, shut_down: false }"
    );

    let pool = WorkerPool::builder().workers(1).queue_depth(8).build().unwrap();
    let latch = Latch::default();
    let busy = {
        let latch = latch.clone();
        pool.spawn(move |_| latch.wait()).unwrap()
    };
    assert!(eventually(|| stat(&pool, "active") == 1));
    let queued = pool.spawn(|_| 2).unwrap();
    pool.submit(|_| {}).unwrap();
    assert_eq!(
        format!("{pool:?}"),
        "WorkerPool { workers: 1, queue_depth: 8, queued: 2, shut_down: false }"
    );
    assert_eq!(format!("{busy:?}"), "JobHandle { finished: false }");
    latch.open();
    assert_eq!(queued.join(), Ok(2));
    pool.join().unwrap();
    assert_eq!(format!("{busy:?}"), "JobHandle { finished: true }");
    assert_eq!(busy.join(), Ok(true));

    pool.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(
        format!("{pool:?}"),
        "WorkerPool { workers: 1, queue_depth: 8, queued: 0, shut_down: true }"
    );
}

// threadpool: test_repeate_join
#[test]
fn join_can_be_repeated() {
    let pool = WorkerPool::new(8).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    for round in 1..=2 {
        for _ in 0..42 {
            let count = count.clone();
            pool.submit(move |_| {
                std::thread::sleep(Duration::from_millis(1));
                count.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
        pool.join().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 42 * round);
        assert_eq!(stat(&pool, "completed"), 42 * round as u64);
    }
}

// threadpool: test_multi_join
#[test]
fn workers_of_one_pool_join_another() {
    let sum = within("joins across two pools", || {
        let pool0 =
            Arc::new(WorkerPool::builder().workers(4).thread_name("pool0").build().unwrap());
        let pool1 =
            Arc::new(WorkerPool::builder().workers(4).thread_name("pool1").build().unwrap());
        let (tx, rx) = mpsc::channel();
        for i in 0..8u32 {
            let (p0, p1, tx) = (pool0.clone(), pool1.clone(), tx.clone());
            pool0
                .submit(move |_| {
                    p1.submit(move |_| {
                        // A worker of pool1 is no worker of pool0: it may wait for it.
                        let joined = p0.join();
                        tx.send((i, joined)).unwrap();
                    })
                    .unwrap();
                })
                .unwrap();
        }
        drop(tx);
        pool0.join().unwrap();
        pool1.join().unwrap();
        let got: Vec<_> = rx.iter().collect();
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|(_, joined)| joined.is_ok()), "{got:?}");
        got.iter().map(|(i, _)| i).sum::<u32>()
    });
    assert_eq!(sum, 28);
}

// threadpool: test_empty_pool
#[test]
fn joining_an_empty_pool_returns_at_once() {
    let pool = WorkerPool::new(4).unwrap();
    assert_eq!(pool.join_timeout(PATIENCE), Ok(()));
    pool.join().unwrap();
    assert_eq!(stat(&pool, "submitted"), 0);
}

// threadpool: test_no_fun_or_joy
#[test]
fn join_returns_while_another_thread_keeps_submitting() {
    fn sleepy(
        count: &Arc<AtomicUsize>,
    ) -> impl FnOnce(&poolside_workerpool::JobContext<'_>) + Send + 'static + use<> {
        let count = count.clone();
        move |_| {
            std::thread::sleep(Duration::from_millis(2));
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
    let pool = WorkerPool::new(8).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    pool.submit(sleepy(&count)).unwrap();
    std::thread::scope(|s| {
        let submitter = s.spawn(|| {
            for _ in 0..23 {
                pool.submit(sleepy(&count)).unwrap();
            }
        });
        // Returns at some idle moment: the stream of jobs is finite.
        assert_eq!(pool.join_timeout(PATIENCE), Ok(()));
        submitter.join().unwrap();
    });
    pool.join().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 24);
}

// threadpool: test_clone
#[test]
fn threads_sharing_a_pool_each_join_then_submit() {
    let pool = WorkerPool::new(2).unwrap();
    for _ in 0..6 {
        pool.submit(|_| std::thread::sleep(Duration::from_millis(2))).unwrap();
    }
    let pool = &pool;
    let (sum, product) = std::thread::scope(|s| {
        let adder = s.spawn(move || {
            pool.join().unwrap();
            let (tx, rx) = mpsc::channel();
            for i in 0..42u64 {
                let tx = tx.clone();
                pool.submit(move |_| tx.send(i).unwrap()).unwrap();
            }
            drop(tx);
            rx.iter().sum::<u64>()
        });
        let multiplier = s.spawn(move || {
            pool.join().unwrap();
            let (tx, rx) = mpsc::channel();
            for i in 1..12u64 {
                let tx = tx.clone();
                pool.submit(move |_| tx.send(i).unwrap()).unwrap();
            }
            drop(tx);
            rx.iter().product::<u64>()
        });
        (adder.join().unwrap(), multiplier.join().unwrap())
    });
    assert_eq!(sum, 861);
    assert_eq!(product, 39_916_800);
}

// threadpool: test_send, test_sync_shared_data, test_send_shared_data
#[test]
fn the_pool_and_its_handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<WorkerPool>();
    send_sync::<WorkerPoolBuilder>();
    send::<JobHandle<String>>();

    // Used from four threads at once; handles joined on another thread than their own.
    let pool = WorkerPool::new(2).unwrap();
    let handles: Vec<JobHandle<usize>> = std::thread::scope(|s| {
        let spawners: Vec<_> = (0..4)
            .map(|t| {
                let pool = &pool;
                s.spawn(move || {
                    (0..25).map(|i| pool.spawn(move |_| t * 100 + i).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        spawners.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let pool = Arc::new(pool);
    let sum = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            pool.join().unwrap();
            sum
        })
        .join()
        .unwrap()
    };
    let expected: usize = (0..4).flat_map(|t| (0..25).map(move |i| t * 100 + i)).sum();
    assert_eq!(sum, expected);
    assert_eq!(stat(&pool, "completed"), 100);
}

// threadpool: test_join_wavesurfer
#[test]
fn every_thread_waiting_in_join_returns_at_the_idle_moment() {
    // Several threads wait in `join` for one job. As it finishes, each of them,
    // returning, at once makes the pool busy again with a job that waits until every
    // joiner has returned. A joiner that checked the pool only after another one had
    // refilled it would wait for that job, which waits for it: every joiner must leave
    // on the idle moment they all waited for.
    const JOINERS: usize = 6;
    let pool = WorkerPool::new(2).unwrap();
    let clock = Latch::default();
    let clock_done = Arc::new(AtomicBool::new(false));
    {
        let (clock, clock_done) = (clock.clone(), clock_done.clone());
        pool.submit(move |_| {
            clock.wait();
            clock_done.store(true, Ordering::SeqCst);
        })
        .unwrap();
    }
    let entering = AtomicUsize::new(0);
    // Joiners that called `join` only after the clock job finished wait for the second
    // wave by right; they are counted apart (the sleep below makes them unlikely).
    let (returned, late) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let second_wave_waited = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..JOINERS {
            let (pool, clock_done, entering) = (&pool, &clock_done, &entering);
            let (returned, late, waited) = (&returned, &late, &second_wave_waited);
            s.spawn(move || {
                entering.fetch_add(1, Ordering::SeqCst);
                let is_late = clock_done.load(Ordering::SeqCst);
                if is_late {
                    late.fetch_add(1, Ordering::SeqCst);
                }
                pool.join().unwrap();
                if !is_late {
                    returned.fetch_add(1, Ordering::SeqCst);
                }
                let (returned, late, waited) = (returned.clone(), late.clone(), waited.clone());
                pool.submit(move |_| {
                    let all_out = eventually(|| {
                        returned.load(Ordering::SeqCst) + late.load(Ordering::SeqCst) == JOINERS
                    });
                    if all_out {
                        waited.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .unwrap();
            });
        }
        assert!(eventually(|| entering.load(Ordering::SeqCst) == JOINERS));
        // Not an assertion: time for the joiners to get from the count into `join`.
        std::thread::sleep(Duration::from_millis(100));
        clock.open();
    });
    pool.join().unwrap();
    assert_eq!(returned.load(Ordering::SeqCst) + late.load(Ordering::SeqCst), JOINERS);
    assert_eq!(
        second_wave_waited.load(Ordering::SeqCst),
        JOINERS,
        "a joiner stayed in join after the idle moment (late joiners: {})",
        late.load(Ordering::SeqCst)
    );
}

// ---------------------------------------------------------------------------------
// rayon-core: thread_pool/test.rs
// ---------------------------------------------------------------------------------

// rayon: panic_propagate
#[test]
fn a_jobs_panic_reaches_its_handle_with_the_message() {
    let pool = WorkerPool::new(2).unwrap();
    let result = pool.spawn(|_| -> u8 { panic!("Hello, world!") }).unwrap().join();
    assert_eq!(result, Err(JobError::Panicked { message: "Hello, world!".into() }));
    assert!(eventually(|| stat(&pool, "panicked") == 1));
}

thread_local! {
    /// Set on a worker by [`mark_every_worker`]; its drop reports the thread's exit.
    static EXIT_WITNESS: RefCell<Option<ExitWitness>> = const { RefCell::new(None) };
}

/// Sends its thread's name when dropped, which happens when the thread exits.
struct ExitWitness {
    name: String,
    exited: mpsc::Sender<String>,
}

impl Drop for ExitWitness {
    fn drop(&mut self) {
        let _ = self.exited.send(std::mem::take(&mut self.name));
    }
}

/// Runs one job on each worker (they meet, so no worker runs two) that plants an exit
/// witness in the worker's thread-local storage; returns the witnesses' receiver.
fn mark_every_worker(pool: &WorkerPool) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let meet = Rendezvous::new(pool.workers());
    let handles: Vec<_> = (0..pool.workers())
        .map(|_| {
            let (meet, exited) = (meet.clone(), tx.clone());
            pool.spawn(move |_| {
                let name = std::thread::current().name().unwrap().to_owned();
                EXIT_WITNESS.set(Some(ExitWitness { name, exited }));
                meet.meet()
            })
            .unwrap()
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join(), Ok(true));
    }
    rx
}

/// Waits until all `n` workers named `prefix-0..n` have exited.
fn assert_all_exit(exited: &mpsc::Receiver<String>, prefix: &str, n: usize) {
    let mut names = BTreeSet::new();
    for _ in 0..n {
        let name = exited.recv_timeout(PATIENCE).expect("a worker outlived its dropped pool");
        names.insert(name);
    }
    let expected: BTreeSet<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    assert_eq!(names, expected);
}

// rayon: workers_stop
#[test]
fn dropping_the_pool_stops_its_workers_after_nested_work() {
    fn split(pool: &WorkerPool, depth: u32, leaves: &AtomicUsize) {
        if depth == 0 {
            leaves.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pool.scope(|s| {
            s.spawn(|_| split(pool, depth - 1, leaves)).unwrap();
            split(pool, depth - 1, leaves);
        });
    }
    let pool = WorkerPool::builder().workers(22).thread_name("stop").build().unwrap();
    let leaves = AtomicUsize::new(0);
    pool.scope(|s| s.spawn(|_| split(&pool, 16, &leaves)).unwrap());
    assert_eq!(leaves.load(Ordering::Relaxed), 65536);
    let exited = mark_every_worker(&pool);
    drop(pool);
    assert_all_exit(&exited, "stop", 22);
}

// rayon: sleeper_stop
#[test]
fn dropping_an_idle_pool_stops_its_sleeping_workers() {
    let pool = WorkerPool::builder().workers(22).thread_name("sleeper").build().unwrap();
    let exited = mark_every_worker(&pool);
    pool.join().unwrap();
    // Not an assertion: time for the idle workers to stop searching and sleep.
    std::thread::sleep(Duration::from_millis(50));
    drop(pool);
    assert_all_exit(&exited, "sleeper", 22);
}

// rayon: failed_thread_stack
#[test]
fn an_impossible_stack_is_refused_when_building() {
    let built = WorkerPool::builder().workers(10).stack_size(isize::MAX as usize).build();
    assert!(
        matches!(built, Err(BuildError::StackTooLarge { bytes }) if bytes == isize::MAX as usize)
    );
}

// rayon: self_install
#[test]
fn a_scope_inside_a_job_of_a_one_worker_pool_completes() {
    let ok = within("a scope inside the only worker's job", || {
        let pool = WorkerPool::new(1).unwrap();
        let mut ok = false;
        pool.scope(|s| {
            s.spawn(|_| {
                // The only worker waits here: it must run the inner job itself.
                pool.scope(|inner| inner.spawn(|_| ok = true).unwrap());
            })
            .unwrap();
        });
        ok
    });
    assert!(ok);
}

/// pool1 → pool2 → pool1, one worker each; `nap` sleeps before each inner scope.
fn mutual_scopes(nap: Duration) -> bool {
    let pool1 = WorkerPool::new(1).unwrap();
    let pool2 = WorkerPool::new(1).unwrap();
    let mut ok = false;
    pool1.scope(|s1| {
        s1.spawn(|_| {
            // pool1's only worker waits for pool2 ...
            pool2.scope(|s2| {
                s2.spawn(|_| {
                    std::thread::sleep(nap);
                    // ... whose only worker waits for pool1: pool1's worker, waiting,
                    // must run this job.
                    pool1.scope(|s3| {
                        s3.spawn(|_| {
                            std::thread::sleep(nap);
                            ok = true;
                        })
                        .unwrap();
                    });
                })
                .unwrap();
            });
        })
        .unwrap();
    });
    ok
}

// rayon: mutual_install
#[test]
fn scopes_crossing_two_one_worker_pools_complete() {
    assert!(within("scopes crossing two pools", || mutual_scopes(Duration::ZERO)));
}

// rayon: mutual_install_sleepy
#[test]
fn scopes_crossing_two_one_worker_pools_complete_after_the_workers_slept() {
    assert!(within("sleepy scopes crossing two pools", || mutual_scopes(Duration::from_millis(
        50
    ))));
}

// rayon: check_thread_pool_new
#[test]
fn new_starts_the_requested_workers() {
    let pool = WorkerPool::new(22).unwrap();
    assert_eq!(pool.workers(), 22);
    assert!(eventually(|| stat(&pool, "workers") == 22));
}

/// Runs `op` as a job of a new one-worker pool (rayon's `install`) and returns its
/// value.
fn on_one_worker<T: Send>(op: impl FnOnce(&WorkerPool) -> T + Send) -> T {
    let pool = WorkerPool::new(1).unwrap();
    let mut out = None;
    pool.scope(|s| s.spawn(|_| out = Some(op(&pool))).unwrap());
    out.expect("the job ran")
}

// rayon: scope_fifo_order
#[test]
fn a_scope_runs_its_jobs_in_spawn_order_on_one_worker() {
    let order = on_one_worker(|pool| {
        let order = Mutex::new(Vec::new());
        pool.scope(|s| {
            for i in 0..10 {
                let order = &order;
                s.spawn(move |_| order.lock().unwrap().push(i)).unwrap();
            }
        });
        order.into_inner().unwrap()
    });
    assert_eq!(order, (0..10).collect::<Vec<_>>());
}

// rayon: spawn_fifo_order
#[test]
fn jobs_submitted_by_a_job_run_in_submission_order() {
    let (tx, rx) = mpsc::channel();
    on_one_worker(|pool| {
        for i in 0..10 {
            let tx = tx.clone();
            pool.submit(move |_| tx.send(i).unwrap()).unwrap();
        }
    });
    drop(tx);
    let order: Vec<i32> = rx.iter().collect();
    assert_eq!(order, (0..10).collect::<Vec<_>>());
}

// rayon: nested_scopes
#[test]
fn scopes_of_ten_pools_nest_and_all_borrow_one_counter() {
    /// Opens a scope on each pool in turn, nested; the innermost body spawns one job
    /// into every scope through `spawners`.
    fn nest<'a>(
        pools: &'a [WorkerPool],
        spawners: Vec<Box<dyn Fn() + 'a>>,
        counter: &'a AtomicUsize,
    ) {
        let Some((pool, tail)) = pools.split_first() else {
            for spawn in &spawners {
                spawn();
            }
            return;
        };
        pool.scope(move |s| {
            // Shortened to this scope's lifetime, the closures fit in one `Vec`.
            let mut spawners: Vec<Box<dyn Fn() + '_>> = spawners;
            spawners.push(Box::new(move || {
                s.spawn(move |_| {
                    counter.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            }));
            nest(tail, spawners, counter);
        });
    }
    let pools: Vec<WorkerPool> = (0..10).map(|_| WorkerPool::new(1).unwrap()).collect();
    let counter = AtomicUsize::new(0);
    nest(&pools, Vec::new(), &counter);
    assert_eq!(counter.into_inner(), pools.len());
    for pool in &pools {
        pool.join().unwrap();
        assert_eq!(stat(pool, "completed"), 1);
    }
}

// rayon: in_place_scope_no_deadlock
#[test]
fn a_scope_body_may_wait_for_its_own_job() {
    let pool = WorkerPool::new(1).unwrap();
    let (tx, rx) = mpsc::channel();
    pool.scope(|s| {
        // The body runs on this thread, not on the only worker: the job can run.
        s.spawn(move |_| tx.send(()).unwrap()).unwrap();
        rx.recv_timeout(PATIENCE).expect("the job ran while the body waited");
    });
}

// ---------------------------------------------------------------------------------
// rayon-core: scope/test.rs
// ---------------------------------------------------------------------------------

// rayon: scope_empty, scope_result
#[test]
fn an_empty_scope_returns_its_bodys_value() {
    let pool = WorkerPool::new(2).unwrap();
    pool.scope(|_| {});
    assert_eq!(pool.scope(|_| 22), 22);
    assert_eq!(stat(&pool, "submitted"), 0);
}

// rayon: scope_two
#[test]
fn two_scoped_jobs_add_to_one_borrowed_counter() {
    let pool = WorkerPool::new(2).unwrap();
    let counter = AtomicUsize::new(0);
    pool.scope(|s| {
        let counter = &counter;
        s.spawn(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        s.spawn(move |_| {
            counter.fetch_add(10, Ordering::SeqCst);
        })
        .unwrap();
    });
    assert_eq!(counter.into_inner(), 11);
}

fn divide_and_conquer<'scope>(s: &'scope Scope<'scope, '_>, leaves: &'scope AtomicUsize, n: u32) {
    if n > 1 {
        s.spawn(move |_| divide_and_conquer(s, leaves, n / 2)).unwrap();
        s.spawn(move |_| divide_and_conquer(s, leaves, n / 2)).unwrap();
    } else {
        leaves.fetch_add(1, Ordering::SeqCst);
    }
}

// rayon: scope_divide_and_conquer
#[test]
fn scoped_jobs_spawn_into_their_own_scope_to_divide_and_conquer() {
    let pool = WorkerPool::new(2).unwrap();
    let leaves = AtomicUsize::new(0);
    pool.scope(|s| {
        let leaves = &leaves;
        s.spawn(move |_| divide_and_conquer(s, leaves, 1024)).unwrap();
    });
    // As many leaves as a sequential walk counts, and one job per node of the tree.
    assert_eq!(leaves.into_inner(), 1024);
    pool.join().unwrap();
    assert_eq!(stat(&pool, "completed"), 2047);
}

struct Tree {
    value: u32,
    children: Vec<Tree>,
}

impl Tree {
    /// A tree of `depth` levels with 0 to 3 children per node, from a fixed seed.
    fn random(depth: u32, seed: &mut u64) -> Tree {
        let mut next = || {
            // xorshift64: deterministic, no dependency.
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let value = (next() % 1_000_000) as u32;
        let children = if depth == 0 { 0 } else { next() % 4 };
        Tree { value, children: (0..children).map(|_| Tree::random(depth - 1, seed)).collect() }
    }

    fn values(&self) -> Vec<u32> {
        let mut out = vec![self.value];
        for child in &self.children {
            out.extend(child.values());
        }
        out
    }

    /// Applies `op` to this node here and to the children in jobs of `s`.
    fn update_in_scope<'scope>(
        &'scope mut self,
        op: &'scope (dyn Fn(&mut u32) + Sync),
        s: &'scope Scope<'scope, '_>,
    ) {
        let Tree { value, children } = self;
        s.spawn(move |_| {
            for child in children {
                s.spawn(move |_| child.update_in_scope(op, s)).unwrap();
            }
        })
        .unwrap();
        op(value);
    }
}

// rayon: update_tree
#[test]
fn scoped_jobs_update_a_tree_through_mutable_borrows() {
    let pool = WorkerPool::new(2).unwrap();
    let mut tree = Tree::random(10, &mut 0x9e37_79b9_7f4a_7c15);
    let before = tree.values();
    assert!(before.len() > 50, "the seed makes a tree worth walking: {}", before.len());
    pool.scope(|s| tree.update_in_scope(&|v| *v += 1, s));
    let after = tree.values();
    assert_eq!(after, before.iter().map(|v| v + 1).collect::<Vec<_>>());
}

/// The spread between `bottom` and the stack frames of a chain of `n` scoped jobs,
/// each spawning the next into the same scope.
fn chain_stack_spread(pool: &WorkerPool, bottom: usize, n: usize) -> usize {
    fn link<'scope>(
        s: &'scope Scope<'scope, '_>,
        bottom: usize,
        max: &'scope Mutex<usize>,
        n: usize,
    ) {
        let top = 0u8;
        let here = std::hint::black_box(&top) as *const u8 as usize;
        let mut max_spread = max.lock().unwrap();
        *max_spread = (*max_spread).max(bottom.abs_diff(here));
        drop(max_spread);
        if n > 0 {
            s.spawn(move |_| link(s, bottom, max, n - 1)).unwrap();
        }
    }
    let max = Mutex::new(0);
    pool.scope(|s| link(s, bottom, &max, n));
    max.into_inner().unwrap()
}

// rayon: linear_stack_growth
#[test]
fn a_chain_of_scoped_spawns_keeps_the_stack_flat() {
    let (short, long) = on_one_worker(|pool| {
        let bottom = 0u8;
        let bottom = std::hint::black_box(&bottom) as *const u8 as usize;
        (chain_stack_spread(pool, bottom, 5), chain_stack_spread(pool, bottom, 500))
    });
    // Each link runs from the waiting worker's loop at the same depth: no growth with
    // the chain's length (a frame per link would add tens of kilobytes).
    assert_eq!(short, long, "stack spread: 5 links {short} bytes, 500 links {long} bytes");
}

/// Runs `f`, which must panic, and returns the panic's message.
fn panic_of(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the panic propagated");
    message(&*payload).to_owned()
}

// rayon: panic_propagate_scope
#[test]
fn a_panicking_scope_body_propagates() {
    let pool = WorkerPool::new(2).unwrap();
    assert_eq!(panic_of(|| pool.scope(|_| panic!("Hello, world!"))), "Hello, world!");
}

// rayon: panic_propagate_spawn
#[test]
fn a_panicking_scoped_job_propagates() {
    let pool = WorkerPool::new(2).unwrap();
    let msg = panic_of(|| pool.scope(|s| s.spawn(|_| panic!("Hello, world!")).unwrap()));
    assert_eq!(msg, "Hello, world!");
    pool.join().unwrap();
    assert_eq!(stat(&pool, "panicked"), 1);
}

// rayon: panic_propagate_nested_spawn
#[test]
fn a_panic_three_spawns_deep_propagates() {
    let pool = WorkerPool::new(2).unwrap();
    let msg = panic_of(|| {
        pool.scope(|s| {
            s.spawn(move |_| {
                s.spawn(move |_| s.spawn(|_| panic!("Hello, world!")).unwrap()).unwrap();
            })
            .unwrap();
        })
    });
    assert_eq!(msg, "Hello, world!");
    pool.join().unwrap();
    assert_eq!((stat(&pool, "panicked"), stat(&pool, "completed")), (1, 2));
}

// rayon: panic_propagate_nested_scope_spawn
#[test]
fn a_panic_in_a_nested_scope_propagates_through_the_outer_scope() {
    let pool = WorkerPool::new(2).unwrap();
    let msg = panic_of(|| {
        pool.scope(|s| {
            s.spawn(|_| pool.scope(|inner| inner.spawn(|_| panic!("Hello, world!")).unwrap()))
                .unwrap();
        })
    });
    assert_eq!(msg, "Hello, world!");
    pool.join().unwrap();
    // The inner job, and the outer job that the inner scope's re-raise unwound.
    assert_eq!(stat(&pool, "panicked"), 2);
}

// rayon: panic_propagate_still_execute_1; join: panic_b_still_executes
#[test]
fn a_job_spawned_after_a_panicking_one_still_runs() {
    assert_a_job_beside_a_panicking_one_runs(true);
}

// rayon: panic_propagate_still_execute_2
#[test]
fn a_job_spawned_before_a_panicking_one_still_runs() {
    assert_a_job_beside_a_panicking_one_runs(false);
}

/// A scope with a panicking job and a job setting a flag, spawned in that order when
/// `panicking_first`: the panic propagates and the other job ran.
fn assert_a_job_beside_a_panicking_one_runs(panicking_first: bool) {
    let pool = WorkerPool::new(2).unwrap();
    let mut x = false;
    let msg = panic_of(|| {
        pool.scope(|s| {
            if panicking_first {
                s.spawn(|_| panic!("Hello, world!")).unwrap();
                s.spawn(|_| x = true).unwrap();
            } else {
                s.spawn(|_| x = true).unwrap();
                s.spawn(|_| panic!("Hello, world!")).unwrap();
            }
        })
    });
    assert_eq!(msg, "Hello, world!");
    assert!(x, "the other job ran");
}

// rayon: panic_propagate_still_execute_3
#[test]
fn a_job_spawned_before_the_body_panics_still_runs() {
    let pool = WorkerPool::new(2).unwrap();
    let mut x = false;
    let msg = panic_of(|| {
        pool.scope(|s| {
            s.spawn(|_| x = true).unwrap();
            panic!("Hello, world!");
        })
    });
    assert_eq!(msg, "Hello, world!");
    assert!(x, "the job ran although the body panicked");
}

// rayon: panic_propagate_still_execute_4
#[test]
fn the_body_runs_on_after_its_job_panicked() {
    let pool = WorkerPool::new(2).unwrap();
    let mut x = false;
    let msg = panic_of(|| {
        pool.scope(|s| {
            s.spawn(|_| panic!("Hello, world!")).unwrap();
            x = true;
        })
    });
    assert_eq!(msg, "Hello, world!");
    assert!(x, "the body went on after spawning the panicking job");
}

// rayon: fifo_order
#[test]
fn jobs_spawned_by_scoped_jobs_run_in_spawn_order() {
    let order = on_one_worker(|pool| {
        let order = Mutex::new(Vec::new());
        pool.scope(|s| {
            let order = &order;
            for i in 0..10 {
                s.spawn(move |_| {
                    for j in 0..10 {
                        s.spawn(move |_| order.lock().unwrap().push(i * 10 + j)).unwrap();
                    }
                })
                .unwrap();
            }
        });
        order.into_inner().unwrap()
    });
    assert_eq!(order, (0..100).collect::<Vec<_>>());
}

// rayon: nested_fifo_order
#[test]
fn jobs_of_nested_scopes_run_in_spawn_order() {
    let order = on_one_worker(|pool| {
        let order = Mutex::new(Vec::new());
        pool.scope(|s| {
            let order = &order;
            for i in 0..10 {
                s.spawn(move |_| {
                    pool.scope(|inner| {
                        for j in 0..10 {
                            inner.spawn(move |_| order.lock().unwrap().push(i * 10 + j)).unwrap();
                        }
                    });
                })
                .unwrap();
            }
        });
        order.into_inner().unwrap()
    });
    assert_eq!(order, (0..100).collect::<Vec<_>>());
}

fn push<'scope>(s: &'scope Scope<'scope, '_>, order: &'scope Mutex<Vec<i32>>, n: i32) {
    s.spawn(move |_| order.lock().unwrap().push(n)).unwrap();
}

// rayon: mixed_fifo_order
#[test]
fn a_worker_waiting_in_the_inner_scope_runs_its_jobs_first_in_spawn_order() {
    let order = on_one_worker(|pool| {
        let order = Mutex::new(Vec::new());
        pool.scope(|outer| {
            let order = &order;
            push(outer, order, 0);
            pool.scope(|inner| {
                push(inner, order, -1);
                push(outer, order, 1);
                push(inner, order, -2);
                push(outer, order, 2);
                push(inner, order, -3);
            });
            push(outer, order, 3);
        });
        order.into_inner().unwrap()
    });
    // The worker waits in the inner scope first, running its jobs in spawn order, then
    // in the outer one (rayon's per-scope queues: -1, 0, -2, 1, -3, 2, 3).
    assert_eq!(order, [-1, -2, -3, 0, 1, 2, 3]);
}

// rayon: static_scope
#[test]
fn a_scope_body_borrows_locals_while_its_jobs_use_statics() {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let pool = WorkerPool::new(2).unwrap();
    let mut range = 0..100;
    let iter = &mut range;
    pool.scope(|s| {
        for i in iter {
            s.spawn(move |_| {
                COUNTER.fetch_add(i, Ordering::Relaxed);
            })
            .unwrap();
        }
    });
    assert_eq!(COUNTER.load(Ordering::Relaxed), 4950);
    assert_eq!(range, 100..100, "the body consumed the borrowed iterator");
}

// rayon: mixed_lifetime_scope
#[test]
fn jobs_borrow_longer_than_the_scope_body() {
    #[allow(clippy::needless_lifetimes)] // named to show the two borrows differ
    fn increment<'slice, 'counter>(pool: &WorkerPool, counters: &'slice [&'counter AtomicUsize]) {
        pool.scope(move |s| {
            // The body borrows the slice; the jobs only the counters it holds.
            for &counter in counters {
                s.spawn(move |_| {
                    counter.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            }
        });
    }
    let pool = WorkerPool::new(2).unwrap();
    let counter = AtomicUsize::new(0);
    increment(&pool, &[&counter; 100]);
    assert_eq!(counter.into_inner(), 100);
}

// ---------------------------------------------------------------------------------
// rayon-core: join/test.rs (join(a, b): a in the scope's body, b in its one job)
// ---------------------------------------------------------------------------------

/// Sorts `len` elements with [`quick_sort`] run as a job of `pool` (rayon's
/// `pool.install(|| quick_sort(&mut data))`).
fn sort_in(pool: &WorkerPool, len: usize) {
    let mut data = seeded_data(len);
    let mut expected = data.clone();
    expected.sort_unstable();
    pool.scope(|s| s.spawn(|_| quick_sort(pool, &mut data)).unwrap());
    assert_eq!(data, expected);
}

// rayon: sort_in_pool
#[test]
fn quick_sort_with_nested_scopes_sorts() {
    sort_in(&WorkerPool::new(2).unwrap(), 12 * 1024);
}

// rayon: sort (on the global pool there; on pools of 1, 2, 4 and 8 workers here)
#[test]
fn quick_sort_with_a_scope_per_element_sorts_on_every_pool_size() {
    for workers in [1, 2, 4, 8] {
        sort_in(&WorkerPool::new(workers).unwrap(), 6 * 1024);
    }
}

/// `join(a, b)` on `pool`: `a` in the scope's body, `b` in its job.
fn join_on<A: FnOnce(), B: FnOnce() + Send>(pool: &WorkerPool, a: A, b: B) {
    pool.scope(|s| {
        s.spawn(|_| b()).unwrap();
        a();
    });
}

// rayon: panic_propagate_a, panic_propagate_b
#[test]
fn a_panic_of_either_half_of_a_join_propagates() {
    let pool = WorkerPool::new(2).unwrap();
    assert_eq!(panic_of(|| join_on(&pool, || panic!("Hello, world!"), || ())), "Hello, world!");
    assert_eq!(panic_of(|| join_on(&pool, || (), || panic!("Hello, world!"))), "Hello, world!");
}

// rayon: panic_propagate_both
#[test]
fn when_both_halves_of_a_join_panic_the_bodys_panic_propagates() {
    let pool = WorkerPool::new(2).unwrap();
    let msg = panic_of(|| join_on(&pool, || panic!("Hello, world!"), || panic!("Goodbye, world!")));
    assert_eq!(msg, "Hello, world!");
    pool.join().unwrap();
    assert_eq!(stat(&pool, "panicked"), 1, "the job's panic was caught and counted");
}

// rayon: join_counter_overflow
#[test]
fn many_small_joins_count_exactly() {
    const ROUNDS: u32 = 10_000; // rayon: 500,000
    let pool = WorkerPool::new(2).unwrap();
    let (mut i, mut j) = (0u32, 0u32);
    for _ in 0..ROUNDS {
        join_on(&pool, || i += 1, || j += 1);
    }
    assert_eq!((i, j), (ROUNDS, ROUNDS));
    pool.join().unwrap();
    assert_eq!(stat(&pool, "completed"), u64::from(ROUNDS));
    assert_eq!(stat(&pool, "submitted"), u64::from(ROUNDS));
}
