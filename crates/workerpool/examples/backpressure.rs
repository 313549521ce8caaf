//! Backpressure: a producer faster than the workers is slowed down by the bounded
//! queue instead of growing memory without limit; `try_submit` hands work back.
//!
//! `cargo run -p poolside-workerpool --example backpressure`

use poolside_workerpool::{SubmitError, WorkerPool};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = WorkerPool::builder().workers(2).queue_depth(4).build()?;
    let started = Instant::now();
    for _ in 0..20 {
        // Each job takes 10 ms; 2 workers: the producer is held to ~5 ms per job.
        pool.submit(|_ctx| std::thread::sleep(Duration::from_millis(10)))?;
    }
    println!(
        "20 jobs submitted in {:?}: submit waited for room (queue depth 4)",
        started.elapsed()
    );

    let mut handed_back = 0;
    for _ in 0..20 {
        match pool.try_submit(|_ctx| std::thread::sleep(Duration::from_millis(10))) {
            Ok(()) => {}
            Err(SubmitError::Full(_job)) => handed_back += 1, // run it elsewhere, or retry later
            Err(other) => return Err(other.into()),
        }
    }
    println!("try_submit handed back {handed_back} of 20 jobs while the queue was full");
    let report = pool.shutdown(Duration::from_secs(5))?;
    println!("shutdown: {report:?}");
    Ok(())
}
