//! A bounded worker thread pool: backpressure, cancellation, panic isolation, and a
//! deadline shutdown that joins every worker.
//!
//! None of threadpool, rayon's `spawn`, rusty_pool or tokio's blocking pool has all of
//! these; `poolside-workerpool` makes each one part of the API:
//!
//! | playbook rule | API |
//! |---|---|
//! | bound the queue, push back on producers | [`WorkerPool::submit`] blocks when `queue_depth` jobs wait; [`WorkerPool::try_submit`] and [`WorkerPool::submit_timeout`] hand the job back |
//! | never lose work | every rejected job comes back in [`SubmitError`]; a job dropped unrun at shutdown tells its [`JobHandle`] ([`JobError::NotStarted`]) and the [`ShutdownReport`] counts it |
//! | stop long work cooperatively | each job's [`JobContext`] carries a [`CancellationToken`] |
//! | shut down cleanly | [`WorkerPool::shutdown`]: refuse, drain, cancel at the deadline, join, report; `Drop` does the same |
//! | a panic is not a lost worker | panics are caught, counted, logged with `tracing` and delivered to the handle ([`PanicPolicy`]) |
//! | await blocking work from async code | [`JobHandle`] is a `Future` |
//! | fan out, fail fast | [`Group`]: the first error cancels the rest, results in order |
//!
//! ```
//! use poolside_workerpool::WorkerPool;
//! use std::time::Duration;
//!
//! let pool = WorkerPool::builder().workers(2).queue_depth(64).build()?;
//! let handles: Vec<_> = (0..8u64)
//!     .map(|n| pool.spawn(move |_ctx| n * n))
//!     .collect::<Result<_, _>>()?;
//! let squares: Vec<u64> = handles.into_iter().map(|h| h.join()).collect::<Result<_, _>>()?;
//! assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
//!
//! let report = pool.shutdown(Duration::from_secs(1))?;
//! assert!(report.is_clean());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shutdown and stuck jobs
//!
//! A thread cannot be killed. [`WorkerPool::shutdown`] therefore waits until the
//! deadline, then cancels every running job's token and waits the builder's
//! `shutdown_grace` more. A worker whose job still has not returned is named in
//! [`ShutdownReport::stuck_workers`] and detached; it exits by itself when its job
//! returns. That grace is the hard bound on shutdown; without stuck jobs no thread
//! outlives the pool.
//!
//! # Tracing
//!
//! `error` for each caught panic (worker index and message) and for stuck workers,
//! `warn` when a pool is dropped with work cancelled or unrun, `debug` for shutdown
//! progress and its report.
#![forbid(unsafe_code)]

mod cancel;
mod config;
mod error;
mod gate;
mod group;
mod handle;
mod job;
mod parking;
mod pool;
mod queue;
mod shutdown;
mod stats;
mod sync;

/// The parking protocol, exposed to `tests/loom.rs` only (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    pub use crate::parking::{JobQueue, Parking, ParkingSpot};
}

pub use cancel::CancellationToken;
pub use config::{BuildError, MIN_STACK_SIZE, PanicPolicy, WorkerPoolBuilder};
pub use error::SubmitError;
pub use group::{Group, GroupError};
pub use handle::{JobError, JobHandle, JoinTimeout};
pub use job::JobContext;
pub use pool::WorkerPool;
pub use poolside_core::{Events, Instrumented, Timing};
pub use shutdown::{ShutdownError, ShutdownReport};
