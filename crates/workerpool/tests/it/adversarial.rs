//! Adversity: absurd settings, panics on every path, snapshots sampled under load,
//! and `join` racing submitters. Counts must stay exact and nobody may hang.

use crate::common::{block_on, eventually};
use poolside_core::Snapshot;
use poolside_workerpool::{
    BuildError, JobError, JoinError, MAX_STACK_SIZE, MAX_WORKERS, MIN_STACK_SIZE, ResizeError,
    SubmitError, WorkerPool, WorkerPoolBuilder,
};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Every builder option at its extremes: `build` answers a typed error or a working
/// pool, never a panic, and a pool it builds serves, joins and shuts down.
#[test]
fn every_builder_option_at_its_extremes_builds_or_fails_typed() {
    type Setting = (&'static str, fn() -> WorkerPoolBuilder, Option<fn(&BuildError) -> bool>);
    let base = || WorkerPool::builder().workers(1);
    let settings: Vec<Setting> = vec![
        (
            "workers(0)",
            || WorkerPool::builder().workers(0),
            Some(|e| matches!(e, BuildError::ZeroWorkers)),
        ),
        (
            "workers(MAX)",
            || WorkerPool::builder().workers(usize::MAX),
            Some(|e| matches!(e, BuildError::TooManyWorkers { workers: usize::MAX })),
        ),
        (
            "workers(MAX_WORKERS + 1)",
            || WorkerPool::builder().workers(MAX_WORKERS + 1),
            Some(|e| matches!(e, BuildError::TooManyWorkers { .. })),
        ),
        (
            "queue_depth(0)",
            || WorkerPool::builder().workers(1).queue_depth(0),
            Some(|e| matches!(e, BuildError::ZeroQueueDepth)),
        ),
        ("queue_depth(1)", || WorkerPool::builder().workers(1).queue_depth(1), None),
        ("queue_depth(MAX)", || WorkerPool::builder().workers(1).queue_depth(usize::MAX), None),
        (
            "stack_size(0)",
            || WorkerPool::builder().workers(1).stack_size(0),
            Some(|e| matches!(e, BuildError::StackTooSmall { bytes: 0 })),
        ),
        (
            "stack_size(MIN - 1)",
            || WorkerPool::builder().workers(1).stack_size(MIN_STACK_SIZE - 1),
            Some(|e| matches!(e, BuildError::StackTooSmall { .. })),
        ),
        (
            "stack_size(MAX)",
            || WorkerPool::builder().workers(1).stack_size(usize::MAX),
            Some(|e| matches!(e, BuildError::StackTooLarge { bytes: usize::MAX })),
        ),
        (
            "stack_size(MAX_STACK_SIZE + 1)",
            || WorkerPool::builder().workers(1).stack_size(MAX_STACK_SIZE + 1),
            Some(|e| matches!(e, BuildError::StackTooLarge { .. })),
        ),
        (
            "stack_size(MIN)",
            || WorkerPool::builder().workers(1).stack_size(MIN_STACK_SIZE.max(64 * 1024)),
            None,
        ),
        (
            "thread_name(\"\")",
            || WorkerPool::builder().workers(1).thread_name(""),
            Some(|e| matches!(e, BuildError::InvalidThreadName(_))),
        ),
        (
            "thread_name(NUL)",
            || WorkerPool::builder().workers(1).thread_name("a\0b"),
            Some(|e| matches!(e, BuildError::InvalidThreadName(_))),
        ),
        (
            "thread_name(long)",
            || WorkerPool::builder().workers(1).thread_name("x".repeat(10_000)),
            None,
        ),
        (
            "shutdown_grace(0)",
            || WorkerPool::builder().workers(1).shutdown_grace(Duration::ZERO),
            None,
        ),
        (
            "shutdown_grace(MAX)",
            || WorkerPool::builder().workers(1).shutdown_grace(Duration::MAX),
            None,
        ),
        (
            "max_searching_workers(0)",
            || WorkerPool::builder().workers(1).max_searching_workers(0),
            None,
        ),
        (
            "max_searching_workers(MAX)",
            || WorkerPool::builder().workers(1).max_searching_workers(usize::MAX),
            None,
        ),
    ];
    let _ = base;
    for (name, builder, expected) in settings {
        let built = catch_unwind(AssertUnwindSafe(|| builder().build()))
            .unwrap_or_else(|_| panic!("{name}: build panicked"));
        match (built, expected) {
            (Err(err), Some(is_expected)) => {
                assert!(is_expected(&err), "{name}: unexpected error {err:?}");
                assert!(!err.to_string().is_empty());
            }
            (Err(err), None) => panic!("{name}: a valid setting failed: {err}"),
            (Ok(_), Some(_)) => panic!("{name}: an invalid setting built a pool"),
            (Ok(pool), None) => {
                // The pool works, with every duration-taking call at its extremes too.
                assert_eq!(pool.spawn(|_| 3).unwrap().join(), Ok(3), "{name}");
                pool.submit_timeout(|_| {}, Duration::MAX).unwrap();
                let zero = pool.submit_timeout(|_| {}, Duration::ZERO);
                assert!(matches!(zero, Ok(()) | Err(SubmitError::TimedOut(_))), "{name}");
                pool.join_timeout(Duration::MAX).unwrap();
                let handle = pool.spawn(|_| 1).unwrap();
                assert_eq!(handle.join_timeout(Duration::MAX).unwrap(), Ok(1));
                let report = pool.shutdown(Duration::MAX).unwrap();
                assert!(report.is_clean(), "{name}");
            }
        }
    }
}

#[test]
fn set_workers_rejects_nonsense_with_typed_errors() {
    let pool = WorkerPool::new(2).unwrap();
    assert!(matches!(pool.set_workers(0), Err(ResizeError::ZeroWorkers)));
    assert!(matches!(pool.set_workers(usize::MAX), Err(ResizeError::TooManyWorkers { .. })));
    assert_eq!(pool.workers(), 2);
    pool.shutdown(Duration::from_secs(1)).unwrap();
    assert!(matches!(pool.set_workers(3), Err(ResizeError::Closed)));
    assert_eq!(pool.join_timeout(Duration::ZERO), Ok(()));
}

/// A job that panics with probability 1/`every`, decided by `n`.
fn maybe_panic(n: usize, every: usize) {
    if n % every == 0 {
        panic!("injected panic {n}");
    }
}

/// Panics injected into jobs of every kind of submission — blocking, async, spawned,
/// grouped, scoped — while the pool resizes: every count stays exact, every handle gets
/// an answer, and the pool keeps serving.
#[test]
fn panics_on_every_path_keep_counts_exact() {
    let pool = WorkerPool::builder().workers(3).queue_depth(4).build().unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    let mut expected_panics = 0u64;
    let mut expected_ok = 0u64;
    let mut handles = Vec::new();
    for n in 0..200usize {
        if n % 50 == 25 {
            pool.set_workers(1 + n % 4).unwrap();
        }
        let ok = ok.clone();
        let job = move |_: &poolside_workerpool::JobContext<'_>| {
            maybe_panic(n, 7);
            ok.fetch_add(1, Ordering::SeqCst);
        };
        if n % 7 == 0 {
            expected_panics += 1
        } else {
            expected_ok += 1
        }
        match n % 4 {
            0 => pool.submit(job).unwrap(),
            1 => block_on(pool.submit_async(job)).unwrap(),
            2 => handles.push((n, pool.spawn(job).unwrap())),
            _ => handles.push((n, block_on(pool.spawn_async(job)).unwrap())),
        }
    }
    for (n, handle) in handles {
        match handle.join() {
            Ok(()) => assert_ne!(n % 7, 0),
            Err(JobError::Panicked { message }) => {
                assert_eq!(message, format!("injected panic {n}"))
            }
            Err(other) => panic!("job {n}: {other:?}"),
        }
    }
    // Groups and scopes with panicking members.
    let mut group = pool.group::<usize, ()>();
    for n in 0..20usize {
        group
            .spawn(move |_| {
                maybe_panic(n, 5);
                Ok(n)
            })
            .unwrap();
    }
    assert!(group.wait().is_err());
    let scoped = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for n in 0..20usize {
                s.spawn(move |_| maybe_panic(n, 5)).unwrap();
            }
        })
    }));
    assert!(scoped.is_err());
    pool.join().unwrap();
    let stats = Snapshot::of(&pool);
    let panicked = stats.value("panicked").unwrap();
    let completed = stats.value("completed").unwrap();
    let cancelled = stats.value("cancelled").unwrap();
    // Group: job 0 panics (and others may panic or be skipped); scope: 4 panics.
    assert!(panicked >= expected_panics + 1 + 4, "{panicked} panics");
    assert_eq!(ok.load(Ordering::SeqCst) as u64, expected_ok);
    assert_eq!(
        stats.value("submitted"),
        Some(completed + panicked + cancelled),
        "every accepted job finished exactly once"
    );
    assert_eq!(stats.value("queued"), Some(0));
    assert_eq!(stats.value("active"), Some(0));
    assert_eq!(pool.spawn(|_| "alive").unwrap().join(), Ok("alive"));
    assert!(pool.shutdown(Duration::from_secs(5)).unwrap().is_clean());
}

/// Snapshots taken continuously by a sampler thread under a load of completing,
/// panicking and cancelled jobs and resizes: no job is counted twice, counters never
/// go back, gauges never wrap.
#[test]
fn every_snapshot_is_consistent_under_load() {
    let pool = Arc::new(WorkerPool::builder().workers(2).queue_depth(8).build().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pool, stop) = (pool.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            let mut last = [0u64; 6];
            while !stop.load(Ordering::SeqCst) {
                let s = Snapshot::of(&*pool);
                let v = |name| s.value(name).unwrap();
                let finished = v("completed") + v("panicked") + v("cancelled") + v("not_started");
                assert!(
                    finished + v("active") + v("queued") <= v("submitted"),
                    "a job counted twice: {s:?}"
                );
                assert!(v("queued") <= 8, "queued {} over the depth", v("queued"));
                assert!(v("active") <= 3, "more jobs active than workers: {s:?}");
                let now = [
                    v("submitted"),
                    v("rejected"),
                    v("completed"),
                    v("panicked"),
                    v("cancelled"),
                    v("not_started"),
                ];
                assert!(now.iter().zip(&last).all(|(n, l)| n >= l), "a counter went back");
                last = now;
                samples += 1;
            }
            samples
        })
    };
    for round in 0..600usize {
        if round % 100 == 50 {
            pool.set_workers(1 + round % 3).unwrap();
        }
        match round % 5 {
            0 => pool.submit(move |_| maybe_panic(round, 10)).unwrap(),
            1 => {
                let h = pool.spawn(|ctx| ctx.wait_cancelled(Duration::from_micros(50))).unwrap();
                h.cancel();
            }
            2 => drop(pool.try_submit(|_| {})),
            _ => pool.submit(|_| std::hint::black_box(())).unwrap(),
        }
    }
    pool.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().expect("every snapshot was consistent");
    assert!(samples > 10, "{samples} samples");
}

#[test]
fn join_racing_submitters_waits_for_everything_accepted_before_it() {
    let pool = Arc::new(WorkerPool::builder().workers(2).queue_depth(16).build().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..3)
        .map(|_| {
            let (pool, accepted, finished, stop) =
                (pool.clone(), accepted.clone(), finished.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let finished = finished.clone();
                    pool.submit(move |_| {
                        std::thread::sleep(Duration::from_micros(50));
                        finished.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(2));
        let before = accepted.load(Ordering::SeqCst);
        // Submitters keep going, so an idle moment may take a while: bounded wait.
        match pool.join_timeout(Duration::from_millis(50)) {
            Ok(()) => assert!(finished.load(Ordering::SeqCst) >= before, "join returned early"),
            Err(JoinError::TimedOut) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for submitter in submitters {
        submitter.join().unwrap();
    }
    let before = accepted.load(Ordering::SeqCst);
    pool.join().unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), before);
    // From inside a job, join would wait for itself.
    let inner = {
        let pool2 = pool.clone();
        pool.spawn(move |_| pool2.join()).unwrap()
    };
    assert_eq!(inner.join(), Ok(Err(JoinError::InsideJob)));
    assert!(eventually(|| pool.queued() == 0));
}

/// A result whose `Drop` panics, as user code may.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a result's drop panicked");
    }
}

#[test]
fn a_result_that_panics_when_dropped_unread_does_not_kill_the_worker() {
    let pool = WorkerPool::builder().workers(1).build().unwrap();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    pool.submit(move |_| {
        let _ = blocked.recv();
    })
    .unwrap();
    // Detached while queued: the worker is the last to let go of the result, and drops it.
    for _ in 0..3 {
        drop(pool.spawn(|_| PanicsOnDrop).unwrap());
    }
    release.send(()).unwrap();
    let after = pool.spawn(|ctx| ctx.worker_index()).unwrap();
    let joined = after.join_timeout(Duration::from_secs(5));
    assert!(matches!(joined, Ok(Ok(0))), "the worker kept serving");
    assert_eq!(pool.workers(), 1);
    // A job is counted a moment after its handle has the value: read the counts once
    // the pool has shut down.
    assert!(pool.shutdown(Duration::from_secs(5)).unwrap().is_clean());
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("completed"), Some(5), "every job counted once");
    assert_eq!(stats.value("panicked"), Some(0), "the jobs themselves returned");
}
