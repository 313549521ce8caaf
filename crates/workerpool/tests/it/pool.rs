//! Behaviour of the pool: backpressure, handles, cancellation, shutdown, panics, stats.

use crate::common::{block_on, eventually};
use poolside_core::{Events, Snapshot, Timing};
use poolside_workerpool::{
    BuildError, JobError, PanicPolicy, ShutdownError, SubmitError, WorkerPool,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Occupies every worker with a job that waits for the returned sender (or for
/// cancellation), so the queue's occupancy is exactly what the test puts in it.
fn occupy_workers(pool: &WorkerPool) -> Vec<mpsc::Sender<()>> {
    let mut gates = Vec::new();
    for _ in 0..pool.workers() {
        let (tx, rx) = mpsc::channel::<()>();
        pool.submit(move |ctx| {
            while !ctx.is_cancelled() {
                if rx.recv_timeout(Duration::from_millis(1)).is_ok() {
                    return;
                }
            }
        })
        .unwrap();
        gates.push(tx);
    }
    assert!(eventually(|| Snapshot::of(pool).value("active") == Some(pool.workers() as u64)));
    gates
}

#[test]
fn every_submitted_job_runs_once() {
    let pool = WorkerPool::builder().workers(3).queue_depth(4).build().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let runs = runs.clone();
        pool.submit(move |_| {
            runs.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    }
    let report = pool.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(runs.load(Ordering::Relaxed), 1000);
    assert!(report.is_clean());
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("submitted"), Some(1000));
    assert_eq!(stats.value("completed"), Some(1000));
    assert_eq!(stats.value("rejected"), Some(0));
    assert_eq!(stats.value("workers"), Some(0), "every worker has exited");
}

#[test]
fn a_full_queue_hands_the_job_back() {
    let pool = WorkerPool::builder().workers(1).queue_depth(2).build().unwrap();
    let gates = occupy_workers(&pool);
    pool.try_submit(|_| {}).unwrap();
    pool.try_submit(|_| {}).unwrap();
    assert_eq!(pool.queued(), 2);

    let ran = Arc::new(AtomicUsize::new(0));
    let flag = ran.clone();
    let rejected = pool.try_submit(move |_| {
        flag.fetch_add(1, Ordering::Relaxed);
    });
    let job = match rejected {
        Err(SubmitError::Full(job)) => job,
        other => panic!("expected Full, got {other:?}"),
    };
    let started = Instant::now();
    let timed_out = pool.submit_timeout(|_| {}, Duration::from_millis(30));
    assert!(matches!(timed_out, Err(SubmitError::TimedOut(_))), "{timed_out:?}");
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert!(matches!(pool.try_spawn(|_| 1), Err(SubmitError::Full(_))));

    // The handed-back job is the caller's to run or resubmit: nothing was lost.
    for gate in gates {
        gate.send(()).unwrap();
    }
    pool.submit(job).unwrap();
    pool.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), 1);
    assert_eq!(Snapshot::of(&pool).value("rejected"), Some(3));
}

#[test]
fn submit_blocks_until_there_is_room() {
    let pool = WorkerPool::builder().workers(1).queue_depth(1).build().unwrap();
    let gates = occupy_workers(&pool);
    pool.submit(|_| {}).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            pool.submit(|_| {}).unwrap(); // blocks: the queue is full
            done_tx.send(()).unwrap();
        });
        assert!(done_rx.recv_timeout(Duration::from_millis(50)).is_err(), "submit did not block");
        gates[0].send(()).unwrap();
        done_rx.recv_timeout(Duration::from_secs(5)).expect("submit resumed once there was room");
    });
}

#[test]
fn after_shutdown_every_submission_is_closed_and_handed_back() {
    let pool = WorkerPool::new(2).unwrap();
    pool.shutdown(Duration::from_secs(1)).unwrap();
    assert!(pool.is_shut_down());
    let job = |_: &poolside_workerpool::JobContext<'_>| {};
    assert!(matches!(pool.submit(job), Err(SubmitError::Closed(_))));
    assert!(matches!(pool.try_submit(job), Err(SubmitError::Closed(_))));
    assert!(matches!(
        pool.submit_timeout(job, Duration::from_secs(1)),
        Err(SubmitError::Closed(_))
    ));
    let err = pool.spawn(|_| 5).unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.to_string(), "job rejected: the pool is shut down");
    let returned = err.into_job();
    let other = WorkerPool::new(1).unwrap();
    assert_eq!(other.spawn(returned).unwrap().join(), Ok(5), "the very same closure comes back");
    assert_eq!(pool.shutdown(Duration::ZERO), Err(ShutdownError::AlreadyShutDown));
}

#[test]
fn submissions_racing_shutdown_are_either_run_or_handed_back() {
    for round in 0..20 {
        let pool = Arc::new(WorkerPool::builder().workers(2).queue_depth(8).build().unwrap());
        let ran = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let rejected = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (pool, ran, accepted, rejected) = (&pool, &ran, &accepted, &rejected);
                s.spawn(move || {
                    for _ in 0..500 {
                        let ran = ran.clone();
                        match pool.submit(move |_| {
                            ran.fetch_add(1, Ordering::Relaxed);
                        }) {
                            Ok(()) => accepted.fetch_add(1, Ordering::Relaxed),
                            Err(SubmitError::Closed(_)) => rejected.fetch_add(1, Ordering::Relaxed),
                            Err(other) => panic!("unexpected {other:?}"),
                        };
                    }
                });
            }
            std::thread::sleep(Duration::from_micros(200 * round));
            let report = pool.shutdown(Duration::from_secs(30)).unwrap();
            assert!(report.is_clean());
            assert_eq!(report.not_started, 0);
        });
        assert_eq!(accepted.load(Ordering::Relaxed) + rejected.load(Ordering::Relaxed), 2000);
        assert_eq!(ran.load(Ordering::Relaxed), accepted.load(Ordering::Relaxed), "round {round}");
        // The per-thread submit counters sum to exactly what the submitters saw.
        let stats = Snapshot::of(&*pool);
        assert_eq!(stats.value("submitted"), Some(accepted.load(Ordering::Relaxed) as u64));
        assert_eq!(stats.value("rejected"), Some(rejected.load(Ordering::Relaxed) as u64));
    }
}

/// With a deep queue nearly every submission takes the fast path (its own permit, no
/// fence): `try_submit`, `submit` and `spawn` racing a shutdown are each either run
/// exactly once or handed back, and the counters agree.
#[test]
fn fast_path_submissions_racing_shutdown_are_either_run_or_handed_back() {
    for round in 0..20u64 {
        let pool = WorkerPool::builder().workers(2).queue_depth(4096).build().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (accepted, closed, full) =
            (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
        let mut handles = Vec::new();
        std::thread::scope(|s| {
            let spawner = s.spawn(|| {
                let mut handles = Vec::new();
                for i in 0..500 {
                    match pool.spawn(move |_| i) {
                        Ok(handle) => handles.push(handle),
                        Err(err) => assert!(err.is_closed()),
                    }
                }
                handles
            });
            for blocking in [false, true] {
                let (pool, ran, accepted, closed, full) = (&pool, &ran, &accepted, &closed, &full);
                s.spawn(move || {
                    for _ in 0..1000 {
                        let ran = ran.clone();
                        let job = move |_: &poolside_workerpool::JobContext<'_>| {
                            ran.fetch_add(1, Ordering::Relaxed);
                        };
                        let result = if blocking { pool.submit(job) } else { pool.try_submit(job) };
                        match result {
                            Ok(()) => accepted.fetch_add(1, Ordering::Relaxed),
                            Err(SubmitError::Closed(_)) => closed.fetch_add(1, Ordering::Relaxed),
                            Err(SubmitError::Full(_)) => full.fetch_add(1, Ordering::Relaxed),
                            Err(other) => panic!("unexpected {other:?}"),
                        };
                    }
                });
            }
            std::thread::sleep(Duration::from_micros(50 * round));
            let report = pool.shutdown(Duration::from_secs(30)).unwrap();
            assert!(report.is_clean());
            assert_eq!(report.not_started, 0);
            handles = spawner.join().unwrap();
        });
        let accepted = accepted.load(Ordering::Relaxed);
        let rejected = closed.load(Ordering::Relaxed) + full.load(Ordering::Relaxed);
        assert_eq!(accepted + rejected, 2000);
        assert_eq!(ran.load(Ordering::Relaxed), accepted, "round {round}");
        for (i, handle) in handles.iter().enumerate() {
            assert!(
                handle.is_finished(),
                "round {round}: spawned job {i} ran before shutdown returned"
            );
        }
        let spawned = handles.len();
        for handle in handles {
            assert!(handle.join().is_ok());
        }
        let stats = Snapshot::of(&pool);
        assert_eq!(stats.value("submitted"), Some((accepted + spawned) as u64));
        assert_eq!(stats.value("rejected"), Some((rejected + 500 - spawned) as u64));
        assert!(matches!(pool.try_submit(|_| {}), Err(SubmitError::Closed(_))));
    }
}

#[test]
fn the_deadline_cancels_running_jobs_and_drops_queued_ones() {
    let pool = WorkerPool::builder().workers(2).queue_depth(16).build().unwrap();
    let saw_cancel = Arc::new(AtomicUsize::new(0));
    let mut running = Vec::new();
    for _ in 0..2 {
        let saw_cancel = saw_cancel.clone();
        running.push(
            pool.spawn(move |ctx| {
                if ctx.wait_cancelled(Duration::from_secs(60)) {
                    saw_cancel.fetch_add(1, Ordering::Relaxed);
                }
                "stopped"
            })
            .unwrap(),
        );
    }
    assert!(eventually(|| Snapshot::of(&pool).value("active") == Some(2)));
    let queued: Vec<_> = (0..5).map(|i| pool.spawn(move |_| i).unwrap()).collect();

    let started = Instant::now();
    let report = pool.shutdown(Duration::from_millis(50)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(started.elapsed() < Duration::from_secs(5), "cooperative jobs stop promptly");
    assert_eq!(report.cancelled, 2);
    assert_eq!(report.not_started, 5);
    assert_eq!(report.completed, 0);
    assert!(report.is_clean());
    assert_eq!(saw_cancel.load(Ordering::Relaxed), 2);
    for handle in running {
        assert_eq!(handle.join(), Ok("stopped"));
    }
    for handle in queued {
        assert_eq!(handle.join(), Err(JobError::NotStarted));
    }
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("cancelled"), Some(2));
    assert_eq!(stats.value("not_started"), Some(5));
}

#[test]
fn queued_work_drains_before_the_deadline() {
    let pool = WorkerPool::builder().workers(1).queue_depth(64).build().unwrap();
    let handles: Vec<_> = (0..50u32)
        .map(|i| {
            pool.spawn(move |_| {
                std::thread::sleep(Duration::from_micros(100));
                i
            })
            .unwrap()
        })
        .collect();
    let report = pool.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(report.completed, 50);
    assert_eq!((report.cancelled, report.not_started), (0, 0));
    let values: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(values, (0..50).collect::<Vec<_>>());
}

#[test]
fn a_job_ignoring_its_token_is_reported_stuck_after_the_grace() {
    let pool = WorkerPool::builder()
        .workers(2)
        .thread_name("stubborn")
        .shutdown_grace(Duration::from_millis(50))
        .build()
        .unwrap();
    let (release, wait) = mpsc::channel::<()>();
    let stubborn = pool
        .spawn(move |_ctx| {
            // Ignores cancellation on purpose.
            wait.recv_timeout(Duration::from_secs(30)).is_ok()
        })
        .unwrap();
    assert!(eventually(|| Snapshot::of(&pool).value("active") == Some(1)));
    let started = Instant::now();
    let report = pool.shutdown(Duration::from_millis(20)).unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(70), "deadline + grace were honoured: {took:?}");
    assert!(took < Duration::from_secs(5), "the grace is a hard bound: {took:?}");
    assert_eq!(report.stuck_workers.len(), 1);
    assert!(report.stuck_workers[0].starts_with("stubborn-"), "{:?}", report.stuck_workers);
    assert!(!report.is_clean());

    // The detached worker finishes its job and exits on its own.
    release.send(()).unwrap();
    assert_eq!(stubborn.join(), Ok(true));
    assert!(eventually(|| Snapshot::of(&pool).value("workers") == Some(0)));
}

#[test]
fn panics_are_isolated_counted_and_delivered() {
    let pool = WorkerPool::builder().workers(4).queue_depth(32).build().unwrap();
    let handles: Vec<_> = (0..1000u32)
        .map(|i| {
            pool.spawn(move |_| {
                if i % 100 == 7 {
                    panic!("job {i} failed");
                }
                i
            })
            .unwrap()
        })
        .collect();
    let mut panicked = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(value) => assert_eq!(value as usize, i),
            Err(JobError::Panicked { message }) => {
                assert_eq!(message, format!("job {i} failed"));
                panicked.push(i);
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(panicked, (0..10).map(|k| k * 100 + 7).collect::<Vec<_>>());
    // A handle completes just before its worker counts the job: wait for the counts.
    assert!(eventually(|| {
        let stats = Snapshot::of(&pool);
        stats.value("panicked") == Some(10) && stats.value("completed") == Some(990)
    }));
    assert_eq!(Snapshot::of(&pool).value("workers"), Some(4), "no worker died");
    // Fire-and-forget panics are counted as well.
    pool.submit(|_| panic!("no handle")).unwrap();
    assert!(eventually(|| Snapshot::of(&pool).value("panicked") == Some(11)));
    assert_eq!(Snapshot::of(&pool).value("workers"), Some(4));
    let _ = PanicPolicy::Abort; // the abort policy ends the process; see the docs
}

#[test]
fn handles_join_with_timeouts_and_as_futures() {
    let pool = WorkerPool::new(2).unwrap();
    let (go, wait) = mpsc::channel::<()>();
    let handle = pool
        .spawn(move |_| {
            wait.recv().unwrap();
            "done"
        })
        .unwrap();
    let handle = handle.join_timeout(Duration::from_millis(20)).unwrap_err().0;
    assert!(!handle.is_finished());
    go.send(()).unwrap();
    assert_eq!(handle.join_timeout(Duration::from_secs(5)).unwrap(), Ok("done"));

    let awaited = block_on(pool.spawn(|_| 40 + 2).unwrap());
    assert_eq!(awaited, Ok(42));
    let failed = block_on(pool.spawn(|_| -> u8 { panic!("async side") }).unwrap());
    assert_eq!(failed, Err(JobError::Panicked { message: "async side".into() }));
}

#[test]
fn timing_events_are_reported_per_job() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let events = Events::new(move |t: Timing, d: Duration| sink.lock().unwrap().push((t, d)));
    let pool = WorkerPool::builder().workers(1).events(events).build().unwrap();
    for _ in 0..3 {
        pool.spawn(|_| std::thread::sleep(Duration::from_millis(2))).unwrap().join().unwrap();
    }
    pool.shutdown(Duration::from_secs(1)).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.iter().filter(|(t, _)| *t == Timing::QueueWait).count(), 3);
    let runs: Vec<Duration> =
        seen.iter().filter(|(t, _)| *t == Timing::JobRun).map(|(_, d)| *d).collect();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|d| *d >= Duration::from_millis(2)));
}

#[test]
fn invalid_settings_are_rejected_when_building() {
    let err = WorkerPool::builder().workers(0).build().unwrap_err();
    assert!(matches!(err, BuildError::ZeroWorkers));
    assert_eq!(err.to_string(), "a worker pool needs at least one worker");
    assert!(matches!(
        WorkerPool::builder().queue_depth(0).build(),
        Err(BuildError::ZeroQueueDepth)
    ));
    assert!(matches!(
        WorkerPool::builder().stack_size(1024).build(),
        Err(BuildError::StackTooSmall { bytes: 1024 })
    ));
    assert!(matches!(
        WorkerPool::builder().thread_name("").build(),
        Err(BuildError::InvalidThreadName(_))
    ));
    assert!(matches!(
        WorkerPool::builder().thread_name("a\0b").build(),
        Err(BuildError::InvalidThreadName(_))
    ));
    let pool =
        WorkerPool::builder().workers(1).stack_size(256 * 1024).thread_name("ok").build().unwrap();
    assert_eq!(
        pool.spawn(|_| std::thread::current().name().map(str::to_owned)).unwrap().join(),
        Ok(Some("ok-0".into()))
    );
}

#[test]
fn every_searching_setting_runs_every_job() {
    for searching in [0, 1, 3, usize::MAX] {
        let pool = WorkerPool::builder()
            .workers(3)
            .queue_depth(8)
            .max_searching_workers(searching)
            .build()
            .unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..2000 {
            let runs = runs.clone();
            pool.submit(move |_| {
                runs.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        }
        let report = pool.shutdown(Duration::from_secs(10)).unwrap();
        assert!(report.is_clean());
        assert_eq!(runs.load(Ordering::Relaxed), 2000, "max_searching_workers({searching})");
    }
}

/// The event hook is user code too: one that panics on every timing (queue wait, job
/// run) loses the events; every job still runs once, on a worker that keeps serving,
/// and no job counts as panicked.
#[test]
fn a_panicking_event_hook_loses_its_events_and_no_job() {
    let events = Events::new(|t: Timing, _: Duration| panic!("broken sink: {t:?}"));
    let pool = WorkerPool::builder().workers(2).events(events).build().unwrap();
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..200 {
        let ran = ran.clone();
        pool.submit(move |_| {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(pool.spawn(|_| 7).unwrap().join_timeout(Duration::from_secs(10)).ok(), Some(Ok(7)));
    pool.join_timeout(Duration::from_secs(10)).expect("nobody hangs");
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 200);
    let report = pool.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("completed"), Some(201));
    assert_eq!(stats.value("panicked"), Some(0));
}

/// How long a test waits for a handle before calling it a deadlock.
const DEADLOCK_AFTER: Duration = Duration::from_secs(20);

#[test]
fn jobs_joining_the_handles_of_jobs_they_spawned_never_deadlock_the_pool() {
    // Every worker runs a job that spawns children on the same pool and joins them:
    // blocked in `join`, no worker would be left to run a child. A joining worker
    // runs queued jobs meanwhile (as one waiting for a scope does).
    for workers in [1, 2, 4] {
        let pool =
            Arc::new(WorkerPool::builder().workers(workers).queue_depth(256).build().unwrap());
        let parents: Vec<_> = (0..workers * 3)
            .map(|parent| {
                let pool_in_job = pool.clone();
                pool.spawn(move |_| {
                    let children: Vec<_> = (0..8)
                        .map(|child| pool_in_job.spawn(move |_| parent * 100 + child).unwrap())
                        .collect();
                    children.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
                })
                .unwrap()
            })
            .collect();
        for (parent, handle) in parents.into_iter().enumerate() {
            let sum = handle.join_timeout(DEADLOCK_AFTER).expect("deadlocked").unwrap();
            assert_eq!(sum, parent * 800 + 28, "{workers} workers");
        }
    }
}

#[test]
fn a_recursion_of_spawn_and_join_on_one_worker_finishes() {
    // Fibonacci by spawning one half and joining it, rayon's `join` written with
    // handles, down to single leaves: thousands of joins nested on one worker.
    fn fib(pool: &Arc<WorkerPool>, n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let inner = pool.clone();
        let left = pool.spawn(move |_| fib(&inner, n - 1)).unwrap();
        let right = fib(pool, n - 2);
        left.join().unwrap() + right
    }
    for workers in [1, 3] {
        let pool =
            Arc::new(WorkerPool::builder().workers(workers).queue_depth(64).build().unwrap());
        let inner = pool.clone();
        let root = pool.spawn(move |_| fib(&inner, 16)).unwrap();
        assert_eq!(root.join_timeout(DEADLOCK_AFTER).expect("deadlocked"), Ok(987));
    }
}

#[test]
fn a_group_waited_for_inside_a_job_never_deadlocks_the_pool() {
    // errgroup inside a request job: every worker fans out and waits.
    let workers = 2;
    let pool = Arc::new(WorkerPool::builder().workers(workers).build().unwrap());
    let requests: Vec<_> = (0..workers * 4)
        .map(|request| {
            let pool_in_job = pool.clone();
            pool.spawn(move |_| {
                let mut group = pool_in_job.group::<usize, String>();
                for part in 0..6 {
                    group.spawn(move |_| Ok(request * 10 + part)).unwrap();
                }
                group.wait().map(|parts| parts.iter().sum::<usize>())
            })
            .unwrap()
        })
        .collect();
    for (request, handle) in requests.into_iter().enumerate() {
        let total = handle.join_timeout(DEADLOCK_AFTER).expect("deadlocked").unwrap();
        assert_eq!(total, Ok(request * 60 + 15));
    }
}

#[test]
fn jobs_submitting_more_jobs_than_the_queue_holds_never_deadlock_the_pool() {
    // threadpool's queue is unbounded, so its users submit follow-up work from jobs
    // freely. Here the queue is bounded: a worker whose `submit` or `spawn` finds it
    // full runs queued jobs itself until there is room, instead of blocking the
    // thread that would make it.
    for workers in [1, 2] {
        let pool = Arc::new(WorkerPool::builder().workers(workers).queue_depth(4).build().unwrap());
        let ran = Arc::new(AtomicUsize::new(0));
        let parents: Vec<_> = (0..workers)
            .map(|_| {
                let (pool_in_job, ran) = (pool.clone(), ran.clone());
                pool.spawn(move |_| {
                    for i in 0..100 {
                        let ran = ran.clone();
                        let count = move |_: &poolside_workerpool::JobContext<'_>| {
                            ran.fetch_add(1, Ordering::Relaxed);
                        };
                        match i % 3 {
                            0 => pool_in_job.submit(count).unwrap(),
                            1 => drop(pool_in_job.spawn(count).unwrap()),
                            _ => pool_in_job.submit_timeout(count, Duration::MAX).unwrap(),
                        }
                    }
                })
                .unwrap()
            })
            .collect();
        for parent in parents {
            parent.join_timeout(DEADLOCK_AFTER).expect("deadlocked").unwrap();
        }
        pool.join_timeout(DEADLOCK_AFTER).unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), workers * 100, "{workers} workers");
    }
}

#[test]
fn shutdown_from_one_of_the_pools_own_jobs_is_refused_not_hung() {
    // The shutdown would join the worker running it, which cannot exit before the
    // job returns: with no deadline it waited for ever. It is refused, and the pool
    // keeps working until a shutdown from outside.
    let pool = Arc::new(WorkerPool::builder().workers(2).build().unwrap());
    let inner = pool.clone();
    let inside = pool.spawn(move |_| inner.shutdown(Duration::MAX)).unwrap();
    let refused = inside.join_timeout(DEADLOCK_AFTER).expect("the shutdown hung its own worker");
    assert_eq!(refused, Ok(Err(ShutdownError::InsideJob)));
    assert_eq!(pool.spawn(|_| 7).unwrap().join(), Ok(7));
    let report = pool.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.stuck_workers.is_empty(), "{report:?}");
    assert_eq!(pool.shutdown(Duration::ZERO), Err(ShutdownError::AlreadyShutDown));
}
