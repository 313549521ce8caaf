//! Allocations per job on the submitting thread, counted by a global allocator: none
//! for jobs up to the inline size; and `spawn`'s and `spawn_async`'s result slots are
//! reused in the steady state, whether the handle is joined or dropped at once.
//!
//! The pool has one worker, and a round whose handles are dropped at once holds that
//! worker (see [`held`]) until every job of the round is queued: the worker, not the
//! submitter, then frees every slot, and the round needs the same number of slots
//! however the machine schedules the two threads. Slots freed on the worker come back
//! to the submitter a batch at a time, so a round may find a partial batch still held
//! by the worker and allocate for it: the spawn tests bound the steady state at
//! [`SLOT_ALLOCATIONS`] per job (a new slot costs two).

use crate::common::block_on;
use poolside_workerpool::WorkerPool;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations of each thread.
pub(crate) struct Counting;

// SAFETY: every method forwards to `System` unchanged; the counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by this thread so far.
fn allocated() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations made by this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = allocated();
    f();
    allocated() - before
}

/// Jobs a round; the queue holds them all, so no submitter ever waits.
const ROUND: usize = 256;

/// Warm-up rounds, then measured ones: returns the allocations of the measured rounds.
/// `round` submits `ROUND` jobs and returns the allocations it counted; the pool is
/// joined after each round.
fn steady_state(pool: &WorkerPool, mut round: impl FnMut() -> u64) -> u64 {
    for _ in 0..30 {
        round();
        pool.join().unwrap();
    }
    (0..5)
        .map(|_| {
            let n = round();
            pool.join().unwrap();
            n
        })
        .sum()
}

/// Allocations per spawned job allowed in the steady state.
const SLOT_ALLOCATIONS: f64 = 0.1;

/// Whether `allocations` over the measured rounds stay within [`SLOT_ALLOCATIONS`].
fn slots_reused(allocations: u64) -> bool {
    allocations as f64 / (5 * ROUND) as f64 <= SLOT_ALLOCATIONS
}

fn pool() -> WorkerPool {
    WorkerPool::builder().workers(1).queue_depth(4 * ROUND).build().unwrap()
}

/// Runs `submit` while the pool's one worker is held by a job waiting at a barrier,
/// then lets it go: every job `submit` queues runs after its handle was dropped.
/// The barrier and the holding job are made before `submit` runs, so they are not
/// counted.
fn held<T>(pool: &WorkerPool, submit: impl FnOnce() -> T) -> T {
    let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
    let released = gate.clone();
    pool.submit(move |_| {
        released.wait();
    })
    .unwrap();
    let counted = submit();
    gate.wait();
    counted
}

/// A result type of its own per test: spare result slots are kept per type, and other
/// tests in this binary share the common ones.
#[derive(Debug, PartialEq)]
struct Answer<const N: usize>(u64);

#[test]
fn submitted_jobs_up_to_the_inline_size_allocate_nothing() {
    let pool = pool();
    fn capturing<const W: usize>(pool: &WorkerPool) -> u64 {
        steady_state(pool, || {
            allocations(|| {
                for i in 0..ROUND as u64 {
                    let data = [i; W];
                    pool.submit(move |_| {
                        black_box(data);
                    })
                    .unwrap();
                }
            })
        })
    }
    assert_eq!(capturing::<1>(&pool), 0, "8-byte captures");
    assert_eq!(capturing::<4>(&pool), 0, "32-byte captures");
    assert_eq!(capturing::<8>(&pool), 0, "64-byte captures");
    // Larger jobs are boxed: the counting sees them.
    assert!(capturing::<9>(&pool) >= 5 * ROUND as u64, "72-byte captures are boxed");
}

/// Every way of submitting a job keeps a small one inline: `try_submit`,
/// `submit_timeout` and `submit_async` as well as `submit`, and `try_spawn` reuses its
/// result slots like `spawn`.
#[test]
fn every_submission_path_keeps_small_jobs_inline() {
    let pool = pool();
    let patience = std::time::Duration::from_secs(10);
    let inline: [(&str, &dyn Fn(u64)); 3] = [
        ("try_submit", &|i| {
            let data = [i; 6];
            pool.try_submit(move |_| {
                black_box(data);
            })
            .unwrap()
        }),
        ("submit_timeout", &|i| {
            let data = [i; 6];
            pool.submit_timeout(
                move |_| {
                    black_box(data);
                },
                patience,
            )
            .unwrap()
        }),
        ("submit_timeout(Duration::MAX)", &|i| {
            let data = [i; 6];
            pool.submit_timeout(
                move |_| {
                    black_box(data);
                },
                std::time::Duration::MAX,
            )
            .unwrap()
        }),
    ];
    for (path, submit) in inline {
        let counted = steady_state(&pool, || allocations(|| (0..ROUND as u64).for_each(submit)));
        assert_eq!(counted, 0, "{path} with 48-byte captures: {counted} allocations");
    }
    let counted = steady_state(&pool, || {
        // Counted inside the future: the executor's own waker is not the pool's.
        block_on(async {
            let before = allocated();
            for i in 0..ROUND as u64 {
                let data = [i; 6];
                pool.submit_async(move |_| {
                    black_box(data);
                })
                .await
                .unwrap();
            }
            allocated() - before
        })
    });
    assert_eq!(counted, 0, "submit_async with 48-byte captures: {counted} allocations");
    let spawned = steady_state(&pool, || {
        allocations(|| {
            for i in 0..ROUND as u64 {
                let handle = pool.try_spawn(move |_| Answer::<5>(i)).unwrap();
                assert_eq!(handle.join(), Ok(Answer(i)));
            }
        })
    });
    assert!(slots_reused(spawned), "try_spawn + join in a loop: {spawned} allocations");
}

#[test]
fn spawned_jobs_reuse_result_slots_whether_joined_or_dropped() {
    let pool = pool();
    let joined = steady_state(&pool, || {
        allocations(|| {
            for i in 0..ROUND as u64 {
                let handle = pool.spawn(move |_| Answer::<1>(i)).unwrap();
                assert_eq!(handle.join(), Ok(Answer(i)));
            }
        })
    });
    assert!(slots_reused(joined), "spawn + join in a loop: {joined} allocations");
    // Handles dropped at once: the workers free the slots, which must come back to
    // this thread.
    let detached = steady_state(&pool, || {
        held(&pool, || {
            allocations(|| {
                for i in 0..ROUND as u64 {
                    drop(pool.spawn(move |_| Answer::<2>(i)).unwrap());
                }
            })
        })
    });
    assert!(
        slots_reused(detached),
        "spawn with the handle dropped at once: {detached} allocations"
    );
}

#[test]
fn spawn_async_reuses_result_slots() {
    let pool = pool();
    let detached = steady_state(&pool, || {
        held(&pool, || {
            // Counted inside the future: the executor's own waker is not the pool's.
            block_on(async {
                let before = allocated();
                for i in 0..ROUND as u64 {
                    drop(pool.spawn_async(move |_| Answer::<3>(i)).await.unwrap());
                }
                allocated() - before
            })
        })
    });
    assert!(
        slots_reused(detached),
        "spawn_async with the handle dropped at once: {detached} allocations"
    );
    let awaited = steady_state(&pool, || {
        block_on(async {
            let before = allocated();
            for i in 0..ROUND as u64 {
                let handle = pool.spawn_async(move |_| Answer::<4>(i)).await.unwrap();
                assert_eq!(handle.await, Ok(Answer(i)));
            }
            allocated() - before
        })
    });
    assert!(slots_reused(awaited), "spawn_async, handle awaited: {awaited} allocations");
}

/// A result type with a value that tells whose job produced it.
#[derive(Debug, PartialEq)]
struct Tagged(u64, u64);

/// How long a handle may take before the test fails instead of hanging.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The handle's result, joined; panics after [`PATIENCE`].
fn joined<R>(
    handle: poolside_workerpool::JobHandle<R>,
) -> Result<R, poolside_workerpool::JobError> {
    match handle.join_timeout(PATIENCE) {
        Ok(result) => result,
        Err(_) => panic!("a handle never got its result"),
    }
}

/// The handle's result, awaited (polled with a no-op waker); panics after [`PATIENCE`].
fn awaited<R>(
    handle: poolside_workerpool::JobHandle<R>,
) -> Result<R, poolside_workerpool::JobError> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut handle = std::pin::pin!(handle);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(result) = handle.as_mut().poll(&mut cx) {
            return result;
        }
        assert!(std::time::Instant::now() < deadline, "an awaited handle never got its result");
        std::thread::yield_now();
    }
}

#[test]
fn reused_result_slots_never_mix_up_results_under_concurrency() {
    use poolside_core::Snapshot;

    const SUBMITTERS: u64 = 4;
    const PER_SUBMITTER: u64 = 3_000;
    let pool = WorkerPool::builder().workers(2).queue_depth(64).build().unwrap();
    std::thread::scope(|s| {
        for t in 0..SUBMITTERS {
            let pool = &pool;
            s.spawn(move || {
                let mut kept = Vec::new();
                for i in 0..PER_SUBMITTER {
                    let handle = pool.spawn(move |_| Tagged(t, i)).unwrap();
                    // Every way a handle can let go of its slot, mixed: joined at once,
                    // dropped (the worker lets go last, or first), cancelled on drop,
                    // joined later, awaited.
                    match (i * 7 + t) % 5 {
                        0 => assert_eq!(joined(handle), Ok(Tagged(t, i))),
                        1 => drop(handle),
                        2 => drop(handle.cancel_on_drop()),
                        3 => kept.push((i, handle)),
                        _ => assert_eq!(awaited(handle), Ok(Tagged(t, i))),
                    }
                    if kept.len() == 32 {
                        for (i, handle) in kept.drain(..) {
                            assert_eq!(joined(handle), Ok(Tagged(t, i)));
                        }
                    }
                }
                for (i, handle) in kept {
                    assert_eq!(joined(handle), Ok(Tagged(t, i)));
                }
            });
        }
    });
    pool.join().unwrap();
    let stats = Snapshot::of(&pool);
    let (completed, cancelled) =
        (stats.value("completed").unwrap(), stats.value("cancelled").unwrap());
    assert_eq!(completed + cancelled, SUBMITTERS * PER_SUBMITTER, "every job counted once");
    assert_eq!(stats.value("submitted"), Some(SUBMITTERS * PER_SUBMITTER));
}

#[test]
fn a_group_allocates_per_group_not_per_job() {
    // A group of `ROUND` jobs: its bookkeeping (token, first failure, the handles'
    // vector and the values' vector) is allocated once per group; the jobs' result
    // slots come from the spares like `spawn`'s.
    let pool = pool();
    let per_group = steady_state(&pool, || {
        allocations(|| {
            let mut group = pool.group::<Answer<5>, &str>();
            for i in 0..ROUND as u64 {
                group.spawn(move |_| Ok(Answer(i))).unwrap();
            }
            let values = group.wait().unwrap();
            assert_eq!(values.len(), ROUND);
            assert!(values.iter().enumerate().all(|(i, v)| v.0 == i as u64));
        })
    });
    let per_job = per_group as f64 / (5 * ROUND) as f64;
    assert!(
        per_job <= SLOT_ALLOCATIONS,
        "a group of {ROUND} jobs: {per_job:.3} allocations per job"
    );
}

#[test]
fn a_scope_allocates_per_scope_not_per_job() {
    // A scope's bookkeeping (its state, the list its unstarted jobs wait in) is
    // allocated once per scope and grows with the jobs waiting at once; a job up to
    // the inline size and its place in the queue allocate nothing.
    let pool = pool();
    let sums: Vec<std::sync::atomic::AtomicU64> =
        (0..ROUND).map(|_| std::sync::atomic::AtomicU64::new(0)).collect();
    let per_scope = steady_state(&pool, || {
        allocations(|| {
            pool.scope(|s| {
                for (i, sum) in sums.iter().enumerate() {
                    s.spawn(move |_| {
                        sum.fetch_add(i as u64, std::sync::atomic::Ordering::Relaxed);
                    })
                    .unwrap();
                }
            });
        })
    });
    let per_job = per_scope as f64 / (5 * ROUND) as f64;
    assert!(
        per_job <= SLOT_ALLOCATIONS,
        "a scope of {ROUND} jobs: {per_job:.3} allocations per job"
    );
    assert_eq!(sums[3].load(std::sync::atomic::Ordering::Relaxed), 3 * 35);
}
