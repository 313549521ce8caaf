//! Thread counts from /proc/self/task: no thread outlives a shut-down pool, a dropped
//! pool's workers exit by themselves once the queue is done, and `set_workers` starts
//! and retires exactly the threads it says. One test function, so nothing else in this
//! process starts threads meanwhile.

mod common;

use common::{eventually, thread_count};
use poolside_core::Snapshot;
use poolside_workerpool::WorkerPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn worker_threads_follow_shutdown_drop_and_resizes() {
    let baseline = thread_count();
    assert!(baseline > 0, "/proc/self/task is readable");

    // Shutdown joins every worker.
    let pool = WorkerPool::builder().workers(8).build().unwrap();
    assert_eq!(thread_count(), baseline + 8);
    for _ in 0..100 {
        pool.submit(|_| {}).unwrap();
    }
    let report = pool.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.is_clean());
    // A joined thread can linger in /proc/self/task for a moment while the kernel
    // reaps it: poll (bounded) instead of reading once.
    assert!(eventually(|| thread_count() == baseline), "shutdown joined every worker");
    drop(pool);
    assert!(eventually(|| thread_count() == baseline));

    // Drop returns at once; the queued jobs still run, then the workers exit.
    let pool = WorkerPool::builder().workers(3).queue_depth(64).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..30 {
        let ran = ran.clone();
        pool.submit(move |_| {
            std::thread::sleep(Duration::from_millis(1));
            ran.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let started = Instant::now();
    drop(pool);
    let in_drop = started.elapsed();
    assert!(in_drop < Duration::from_millis(50), "drop took {in_drop:?}");
    assert!(eventually(|| ran.load(Ordering::SeqCst) == 30), "queued jobs ran after the drop");
    assert!(eventually(|| thread_count() == baseline), "the workers exited by themselves");

    // set_workers: up and down under load, checked against the process's threads.
    let pool = Arc::new(WorkerPool::builder().workers(2).queue_depth(16).build().unwrap());
    assert_eq!(thread_count(), baseline + 2);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let submitted = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let load = {
        let (pool, stop, submitted, done) =
            (pool.clone(), stop.clone(), submitted.clone(), done.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let done = done.clone();
                pool.submit(move |_| {
                    std::thread::sleep(Duration::from_micros(200));
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
                submitted.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let with_load = baseline + 1;
    for &workers in &[6, 1, 4, 4, 2, 7, 3] {
        pool.set_workers(workers).unwrap();
        assert_eq!(pool.workers(), workers);
        assert!(
            eventually(|| thread_count() == with_load + workers),
            "set_workers({workers}): {} threads, expected {}",
            thread_count(),
            with_load + workers
        );
        assert!(eventually(|| Snapshot::of(&*pool).value("workers") == Some(workers as u64)));
    }
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    pool.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), submitted.load(Ordering::SeqCst), "no job lost");
    let stats = Snapshot::of(&*pool);
    assert_eq!(stats.value("completed"), Some(submitted.load(Ordering::SeqCst) as u64));
    let report = pool.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.is_clean());
    assert!(eventually(|| thread_count() == baseline), "shutdown joined retired workers too");
}
