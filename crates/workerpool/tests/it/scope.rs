//! Scoped jobs: borrowed data, panics propagated to the caller, nesting, `try_scope`.

use crate::common::{quick_sort, seeded_data};
use poolside_core::Snapshot;
use poolside_workerpool::WorkerPool;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

#[test]
fn jobs_borrow_local_data_and_all_finish_before_the_scope_returns() {
    let pool = WorkerPool::builder().workers(3).queue_depth(4).build().unwrap();
    let input: Vec<u64> = (1..=1000).collect();
    let mut partial = [0u64; 10];
    pool.scope(|s| {
        for (chunk, out) in input.chunks(100).zip(partial.iter_mut()) {
            s.spawn(move |_| {
                std::thread::sleep(Duration::from_millis(1));
                *out = chunk.iter().sum();
            })
            .unwrap();
        }
    });
    // Every job wrote its slot: the scope waited for all of them.
    assert_eq!(partial.iter().sum::<u64>(), 500_500);
    assert!(partial.iter().all(|&p| p > 0));
    // The scope returns once each job and its borrows are gone; the pool counts the
    // job a moment later.
    pool.join().unwrap();
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("completed"), Some(10));
}

#[test]
fn a_panicking_job_is_re_raised_after_every_job_finished() {
    let pool = WorkerPool::builder().workers(2).build().unwrap();
    let finished = AtomicUsize::new(0);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for n in 0..8 {
                let finished = &finished;
                s.spawn(move |_| {
                    if n == 3 {
                        panic!("job three failed");
                    }
                    std::thread::sleep(Duration::from_millis(2));
                    finished.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
        })
    }));
    let payload = caught.expect_err("the job's panic reaches the scope's caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"job three failed"));
    assert_eq!(finished.load(Ordering::SeqCst), 7, "the other jobs all ran to the end");
    pool.join().unwrap();
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("panicked"), Some(1));
    assert_eq!(stats.value("completed"), Some(7));
    // The pool is intact.
    assert_eq!(pool.spawn(|_| 5).unwrap().join(), Ok(5));
}

#[test]
fn a_panicking_scope_body_still_waits_for_its_jobs() {
    let pool = WorkerPool::builder().workers(1).build().unwrap();
    let done = AtomicUsize::new(0);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|_| {
                std::thread::sleep(Duration::from_millis(20));
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            panic!("the body failed");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(done.load(Ordering::SeqCst), 1, "the job finished before the panic left");
}

#[test]
fn nested_scopes_do_not_starve_a_small_pool() {
    // Two workers, each outer job opens a scope of its own and waits in it: without
    // the waiting worker running queued jobs itself, both would wait forever.
    let pool = WorkerPool::builder().workers(2).queue_depth(4).build().unwrap();
    let cells: Vec<Mutex<Vec<u32>>> = (0..4).map(|_| Mutex::new(Vec::new())).collect();
    pool.scope(|outer| {
        for (i, cell) in cells.iter().enumerate() {
            let pool = &pool;
            outer
                .spawn(move |_| {
                    pool.scope(|inner| {
                        for j in 0..4 {
                            inner
                                .spawn(move |_| cell.lock().unwrap().push(i as u32 * 10 + j))
                                .unwrap();
                        }
                    });
                })
                .unwrap();
        }
    });
    for (i, cell) in cells.iter().enumerate() {
        let mut got = cell.lock().unwrap().clone();
        got.sort_unstable();
        let i = i as u32;
        assert_eq!(got, [i * 10, i * 10 + 1, i * 10 + 2, i * 10 + 3]);
    }
    assert!(pool.shutdown(Duration::from_secs(5)).unwrap().is_clean());
}

#[test]
fn try_scope_returns_the_first_error_and_cancels_the_rest() {
    let pool = WorkerPool::builder().workers(1).queue_depth(16).build().unwrap();
    let ran = AtomicUsize::new(0);
    let result: Result<(), String> = pool.try_scope(|s| {
        for n in 0..10 {
            let ran = &ran;
            s.spawn(move |ctx| {
                if ctx.is_cancelled() {
                    return Ok(());
                }
                ran.fetch_add(1, Ordering::SeqCst);
                if n == 2 { Err(format!("job {n} failed")) } else { Ok(()) }
            })
            .unwrap();
        }
    });
    assert_eq!(result, Err("job 2 failed".to_owned()));
    // One worker runs them in order: the jobs after the failure were skipped.
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    pool.join().unwrap();
    let stats = Snapshot::of(&pool);
    assert_eq!(stats.value("cancelled"), Some(7));
    let ok: Result<u32, String> = pool.try_scope(|s| {
        s.spawn(|_| Ok(())).unwrap();
        7
    });
    assert_eq!(ok, Ok(7));
}

#[test]
fn a_scope_on_a_shut_down_pool_hands_the_jobs_back() {
    let pool = WorkerPool::new(1).unwrap();
    pool.shutdown(Duration::from_secs(1)).unwrap();
    let mut local = 0;
    pool.scope(|s| {
        let rejected = s.spawn(|_| local += 1).unwrap_err();
        assert!(rejected.is_closed());
        // The very job comes back, for the caller to run or drop.
        let _job = rejected.into_job();
    });
    assert_eq!(local, 0);
}

/// Opens a scope on `pool` whose one job opens the next, `links` deep, and counts the
/// jobs that ran.
fn nested_chain(pool: &WorkerPool, links: usize, ran: &AtomicUsize) {
    ran.fetch_add(1, Ordering::Relaxed);
    if links > 0 {
        pool.scope(|s| s.spawn(|_| nested_chain(pool, links - 1, ran)).unwrap());
    }
}

#[test]
fn thousands_of_nested_scopes_fit_on_small_worker_stacks() {
    // One worker waiting in each scope runs the next link on top of its frames: 3000
    // links need far more than 64 KiB, which jobs run that way get on fresh stacks.
    let pool = WorkerPool::builder().workers(1).stack_size(64 * 1024).build().unwrap();
    let ran = AtomicUsize::new(0);
    pool.scope(|s| s.spawn(|_| nested_chain(&pool, 3000, &ran)).unwrap());
    assert_eq!(ran.load(Ordering::Relaxed), 3001);
    pool.join().unwrap();
    assert_eq!(Snapshot::of(&pool).value("completed"), Some(3001));
    assert!(pool.shutdown(Duration::from_secs(5)).unwrap().is_clean());
}

#[test]
fn a_scope_per_node_of_a_big_recursion_fits_on_small_stacks_and_short_queues() {
    // Waiting workers run the oldest queued jobs, each of which opens a scope and waits
    // in turn; a queue of 4 makes the submitting jobs wait for room and help too.
    for workers in [1, 2, 3] {
        let pool = WorkerPool::builder()
            .workers(workers)
            .stack_size(64 * 1024)
            .queue_depth(4)
            .build()
            .unwrap();
        // Many equal keys: a pivot's equals all go to one side.
        let mut data: Vec<u32> = seeded_data(4 * 1024).into_iter().map(|x| x % 1000).collect();
        let mut expected = data.clone();
        expected.sort_unstable();
        pool.scope(|s| s.spawn(|_| quick_sort(&pool, &mut data)).unwrap());
        assert_eq!(data, expected, "{workers} workers");
        pool.join().unwrap();
        let stats = Snapshot::of(&pool);
        assert_eq!(stats.value("panicked"), Some(0));
        assert!(pool.shutdown(Duration::from_secs(5)).unwrap().is_clean());
    }
}

#[test]
fn a_worker_waiting_in_its_scope_runs_that_scopes_jobs_before_older_queued_ones() {
    let pool = WorkerPool::new(1).unwrap();
    let order = Mutex::new(Vec::new());
    pool.scope(|outer| {
        outer
            .spawn(|_| {
                let order = &order;
                // Queued first, but not this scope's: it runs after the scope's own.
                pool.scope(|unrelated| {
                    unrelated.spawn(move |_| order.lock().unwrap().push("older")).unwrap();
                    pool.scope(|own| {
                        own.spawn(move |_| order.lock().unwrap().push("own 1")).unwrap();
                        own.spawn(move |_| order.lock().unwrap().push("own 2")).unwrap();
                    });
                    order.lock().unwrap().push("own scope returned");
                });
            })
            .unwrap();
    });
    assert_eq!(order.into_inner().unwrap(), ["own 1", "own 2", "own scope returned", "older"]);
}

/// A one-worker pool whose worker has run a scope of `jobs` jobs itself (their places
/// in the queue left behind it) and now waits in the job that opened the scope, until
/// the returned sender is dropped or its token is cancelled.
fn worker_held_after_a_scope(jobs: usize) -> (Arc<WorkerPool>, mpsc::Sender<()>) {
    let pool = Arc::new(WorkerPool::new(1).unwrap());
    let (ran_scope, scope_ran) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let in_job = pool.clone();
    pool.submit(move |ctx| {
        in_job.scope(|s| {
            for _ in 0..jobs {
                s.spawn(|_| {}).unwrap();
            }
        });
        ran_scope.send(()).unwrap();
        while released.try_recv() == Err(mpsc::TryRecvError::Empty) {
            if ctx.wait_cancelled(Duration::from_millis(1)) {
                break;
            }
        }
    })
    .unwrap();
    scope_ran.recv().unwrap();
    (pool, release)
}

#[test]
fn queued_counts_the_jobs_not_yet_run_when_a_waiting_worker_ran_a_scopes_jobs_itself() {
    let (pool, release) = worker_held_after_a_scope(3);
    assert_eq!(pool.queued(), 0, "the scope's jobs all ran");
    pool.submit(|_| {}).unwrap();
    pool.submit(|_| {}).unwrap();
    assert_eq!(pool.queued(), 2);
    drop(release);
    pool.join().unwrap();
    assert_eq!(pool.queued(), 0);
    assert_eq!(Snapshot::of(&*pool).value("completed"), Some(6));
}

#[test]
fn a_shutdown_deadline_counts_only_real_jobs_as_not_started() {
    let (pool, _release) = worker_held_after_a_scope(3);
    pool.submit(|_| {}).unwrap();
    pool.submit(|_| {}).unwrap();
    // The held job returns when the deadline cancels its token; by then the two queued
    // jobs are dropped, and the three spent places in line are not counted.
    let report = pool.shutdown(Duration::from_millis(20)).unwrap();
    assert_eq!(report.not_started, 2, "{report:?}");
    assert!(report.is_clean());
    let stats = Snapshot::of(&*pool);
    assert_eq!(stats.value("completed"), Some(3));
    assert_eq!(stats.value("cancelled"), Some(1));
    assert_eq!(stats.value("not_started"), Some(2));
}

/// Opens a scope of 1 to 4 jobs (by `seed`), each of which opens the next level, down to
/// `depth` 0; every job counts itself in `ran`. Returns how many jobs it spawned.
fn scope_tree(pool: &WorkerPool, depth: u32, seed: u64, ran: &AtomicUsize) -> usize {
    if depth == 0 {
        return 0;
    }
    let fanout = 1 + (seed % 4) as usize;
    let spawned = AtomicUsize::new(fanout);
    pool.scope(|s| {
        for child in 0..fanout as u64 {
            let spawned = &spawned;
            s.spawn(move |_| {
                ran.fetch_add(1, Ordering::Relaxed);
                let next = seed.wrapping_mul(6364136223846793005).wrapping_add(child * 2 + 1);
                let below = scope_tree(pool, depth - 1, next >> 11, ran);
                spawned.fetch_add(below, Ordering::Relaxed);
            })
            .unwrap();
        }
    });
    spawned.into_inner()
}

#[test]
fn random_trees_of_nested_scopes_from_workers_and_outside_run_every_job_once() {
    for (workers, queue) in [(1, 2), (2, 3), (3, 1024), (4, 8)] {
        let pool = WorkerPool::builder().workers(workers).queue_depth(queue).build().unwrap();
        let ran = AtomicUsize::new(0);
        let spawned = AtomicUsize::new(0);
        // Trees opened from outside the pool and from its workers at once.
        std::thread::scope(|threads| {
            for seed in 0..4u64 {
                let (pool, ran, spawned) = (&pool, &ran, &spawned);
                threads.spawn(move || {
                    let total = scope_tree(pool, 5, seed * 7 + 3, ran);
                    spawned.fetch_add(total, Ordering::Relaxed);
                });
            }
            pool.scope(|s| {
                for seed in 10..14u64 {
                    let (pool, ran, spawned) = (&pool, &ran, &spawned);
                    s.spawn(move |_| {
                        let total = scope_tree(pool, 5, seed * 7 + 3, ran);
                        spawned.fetch_add(total, Ordering::Relaxed);
                    })
                    .unwrap();
                }
            });
        });
        let spawned = spawned.into_inner();
        assert!(spawned > 500, "the trees are not trivial: {spawned} jobs");
        assert_eq!(ran.into_inner(), spawned, "{workers} workers, queue {queue}");
        pool.join().unwrap();
        assert_eq!(pool.queued(), 0);
        let stats = Snapshot::of(&pool);
        // The trees' jobs and the four outer jobs, each counted once.
        assert_eq!(stats.value("completed"), Some(spawned as u64 + 4));
        assert!(pool.shutdown(Duration::from_secs(5)).unwrap().is_clean());
    }
}
