//! Graceful shutdown with a deadline: queued work drains, long jobs are cancelled
//! through their token at the deadline, and the report says what happened.
//!
//! `cargo run -p poolside-workerpool --example graceful_shutdown`

use poolside_workerpool::{JobError, WorkerPool};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = WorkerPool::builder().workers(2).queue_depth(16).build()?;

    // Two long jobs that check their cancellation token.
    let long: Vec<_> = (0..2)
        .map(|i| {
            pool.spawn(move |ctx| {
                let mut steps = 0;
                while !ctx.wait_cancelled(Duration::from_millis(10)) {
                    steps += 1;
                }
                format!("long job {i} stopped after {steps} steps")
            })
        })
        .collect::<Result<_, _>>()?;
    // Short jobs queued behind them: they cannot start before the deadline.
    let short: Vec<_> = (0..3).map(|i| pool.spawn(move |_| i)).collect::<Result<_, _>>()?;

    let report = pool.shutdown(Duration::from_millis(100))?;
    println!(
        "completed {}, cancelled {}, not started {}, stuck workers {:?}, took {:?}",
        report.completed,
        report.cancelled,
        report.not_started,
        report.stuck_workers,
        report.elapsed
    );
    for handle in long {
        println!("{}", handle.join()?);
    }
    for handle in short {
        assert_eq!(handle.join(), Err(JobError::NotStarted));
    }
    println!("queued jobs were told they never ran; every worker thread was joined");
    assert!(pool.shutdown(Duration::ZERO).is_err(), "a second shutdown is an error, not a panic");
    Ok(())
}
