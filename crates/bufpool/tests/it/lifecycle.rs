//! What a dropped pool frees, and when; and stats snapshots that are consistent at any
//! moment under load.

use poolside_bufpool::{BufPool, Pool, PoolBuilder};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted_pool(dropped: &Arc<AtomicUsize>) -> Pool<Counted> {
    let d = dropped.clone();
    PoolBuilder::with_reset(move || Counted(d.clone()), |_| {}).local_capacity(8).build().unwrap()
}

#[test]
fn dropping_the_last_handle_frees_this_threads_cached_objects_at_once() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = counted_pool(&dropped);
    let held: Vec<_> = (0..5).map(|_| pool.get()).collect();
    drop(held);
    assert_eq!(pool.shared_len(), 0, "all five are in this thread's cache");
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(pool);
    assert_eq!(dropped.load(Ordering::SeqCst), 5, "freed when the last handle went");
}

#[test]
fn other_threads_free_a_dropped_pools_objects_at_their_next_pool_operation() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = counted_pool(&dropped);
    let (to_worker, work) = mpsc::channel::<&'static str>();
    let (to_main, done) = mpsc::channel::<()>();
    let in_thread = pool.clone();
    // A long-lived thread that caches objects of the pool, then uses other pools only.
    let worker = std::thread::spawn(move || {
        let held: Vec<_> = (0..3).map(|_| in_thread.get()).collect();
        drop(held);
        drop(in_thread);
        to_main.send(()).unwrap();
        let strings: Pool<String> = Pool::new(String::new);
        let bufs = BufPool::new();
        for job in work {
            match job {
                // A pool of another type, with the same kind of cache.
                "strings" => drop(strings.get()),
                // Byte buffers: the other kind of cache.
                "bytes" => drop(bufs.get(10)),
                _ => break,
            }
            to_main.send(()).unwrap();
        }
    });
    done.recv().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "cached by the worker");
    drop(pool); // the last handle, on this thread
    to_worker.send("bytes").unwrap();
    done.recv().unwrap();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        3,
        "the worker's next pool operation freed them, from any of its caches"
    );
    to_worker.send("stop").unwrap();
    worker.join().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 3, "and exactly once");
}

#[test]
fn snapshots_under_load_are_consistent_and_never_wrap() {
    const MAX_RETAINED: usize = 4;
    const SIZE: u64 = 4096;
    const THREADS: usize = 3;
    let pool: Pool<Vec<u8>> = Pool::builder(|| Vec::with_capacity(SIZE as usize))
        .size_of(|_| SIZE)
        .max_retained(MAX_RETAINED)
        .local_capacity(0) // every return goes through the shared store
        .build()
        .unwrap();
    let stop = AtomicBool::new(false);
    let start = Barrier::new(THREADS + 1);
    let snapshots = std::thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, stop, start) = (&pool, &stop, &start);
            s.spawn(move || {
                start.wait();
                let mut held = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    held.push(pool.get());
                    if (i + t) % 3 == 0 {
                        held.clear();
                    }
                }
            });
        }
        let sampler = s.spawn(|| {
            start.wait();
            let mut taken = 0u64;
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(800);
            while std::time::Instant::now() < deadline {
                for _ in 0..256 {
                    let st = pool.stats();
                    assert!(st.retained_shared <= MAX_RETAINED as u64, "{st:?}");
                    // A size is counted before its object is stored and uncounted
                    // after it is taken: at most one object per thread in flight.
                    assert!(
                        st.retained_shared_bytes <= SIZE * (MAX_RETAINED + THREADS) as u64,
                        "retained bytes out of range (wrapped?): {st:?}"
                    );
                    assert!(st.dropped_full <= st.returns, "{st:?}");
                    assert!(st.returns <= st.hits + st.misses, "a return before its get: {st:?}");
                    taken += 1;
                }
            }
            taken
        });
        // Stop the workers whatever the sampler found, then report it.
        let taken = sampler.join();
        stop.store(true, Ordering::Relaxed);
        taken.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    assert!(snapshots > 1000, "only {snapshots} snapshots");
    let st = pool.stats();
    assert_eq!(st.retained_shared_bytes, SIZE * st.retained_shared, "exact once quiet");
}

#[test]
fn pools_dropped_while_other_threads_work_free_every_object_exactly_once() {
    const THREADS: usize = 3;
    const ROUNDS: usize = 200;
    let made = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let make_pool = || {
        let (m, d) = (made.clone(), dropped.clone());
        PoolBuilder::with_reset(
            move || {
                m.fetch_add(1, Ordering::SeqCst);
                Counted(d.clone())
            },
            |_| {},
        )
        .local_capacity(4)
        .max_retained(4)
        .build()
        .unwrap()
    };
    // A long-lived pool every thread keeps using, and short-lived ones that threads
    // share and drop (the last handle goes on whichever thread lets go last).
    let steady = make_pool();
    let start = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (steady, start, make_pool) = (&steady, &start, &make_pool);
            s.spawn(move || {
                start.wait();
                for round in 0..ROUNDS {
                    let short = make_pool();
                    let held: Vec<_> = (0..(round + t) % 5 + 1).map(|_| short.get()).collect();
                    let other = short.clone();
                    let helper = std::thread::spawn(move || {
                        drop(other.get());
                        other // handed back: its last handle may be dropped here or there
                    });
                    drop(held);
                    drop(steady.get());
                    let other = helper.join().unwrap();
                    if round % 2 == 0 {
                        drop(short);
                        drop(other);
                    } else {
                        drop(other);
                        drop(short);
                    }
                    drop(steady.get()); // frees what this thread cached for dead pools
                }
            });
        }
    });
    drop(steady);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        made.load(Ordering::SeqCst),
        "every object made was dropped exactly once"
    );
}

#[test]
fn another_pool_dropped_elsewhere_does_not_turn_this_pools_cached_object_into_a_miss() {
    for (name, stats_after) in [
        ("Pool", {
            let pool: Pool<Vec<u8>> = Pool::new(Vec::new);
            drop(pool.get()); // a miss, then cached by this thread
            let other: Pool<Vec<u8>> = Pool::new(Vec::new);
            std::thread::spawn(move || drop(other)).join().unwrap();
            drop(pool.get()); // frees the dropped pool's slots, then hits
            let s = pool.stats();
            (s.misses, s.hits)
        }),
        ("BufPool", {
            let pool = BufPool::new();
            drop(pool.get(10));
            let other = BufPool::new();
            std::thread::spawn(move || drop(other)).join().unwrap();
            drop(pool.get(10));
            let s = pool.class_stats()[0].1;
            (s.misses, s.hits)
        }),
    ] {
        assert_eq!(stats_after, (1, 1), "{name}: the second get reuses the cached object");
    }
}
