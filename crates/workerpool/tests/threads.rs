//! No thread outlives the pool: the process's thread count returns to its baseline
//! after shutdown and after drop. One test function, so nothing else in this process
//! starts threads meanwhile.

mod common;

use common::{eventually, thread_count};
use poolside_workerpool::WorkerPool;
use std::time::Duration;

#[test]
fn worker_threads_are_joined_after_shutdown_and_after_drop() {
    let baseline = thread_count();
    assert!(baseline > 0, "/proc/self/task is readable");

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

    let pool =
        WorkerPool::builder().workers(6).drop_deadline(Duration::from_millis(100)).build().unwrap();
    assert_eq!(thread_count(), baseline + 6);
    let handle = pool.spawn(|ctx| ctx.wait_cancelled(Duration::from_secs(30))).unwrap();
    // Drop cancels the job at the deadline and returns only after joining.
    drop(pool);
    assert!(eventually(|| thread_count() == baseline), "drop joined every worker");
    assert_eq!(handle.join(), Ok(true), "the job saw its cancellation");

    let pool =
        WorkerPool::builder().workers(3).drop_deadline(Duration::from_millis(10)).build().unwrap();
    for _ in 0..3 {
        pool.submit(|ctx| {
            ctx.wait_cancelled(Duration::from_secs(30));
        })
        .unwrap();
    }
    drop(pool);
    assert!(eventually(|| thread_count() == baseline));
}
