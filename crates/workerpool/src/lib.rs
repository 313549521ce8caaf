//! A bounded worker thread pool: backpressure, cancellation, panic isolation, and a
//! deadline shutdown that joins every worker.
//!
//! None of threadpool, rayon's `spawn`, rusty_pool or tokio's blocking pool has all of
//! these; `poolside-workerpool` makes each one part of the API:
//!
//! | playbook rule | API |
//! |---|---|
//! | bound the queue, push back on producers | [`WorkerPool::submit`] blocks when `queue_depth` jobs wait; [`WorkerPool::try_submit`] and [`WorkerPool::submit_timeout`] hand the job back |
//! | jobs may wait on their own pool | a worker whose `submit` finds the queue full, or that waits in [`JobHandle::join`], [`Group::wait`] or a scope, runs queued jobs meanwhile: no deadlock whatever the pool's size |
//! | never block an async runtime | [`WorkerPool::submit_async`] / [`WorkerPool::spawn_async`] wait for room with a waker, first come first served, cancel-safe |
//! | never lose work | every rejected job comes back in [`SubmitError`]; a job dropped unrun at shutdown tells its [`JobHandle`] ([`JobError::NotStarted`]) and the [`ShutdownReport`] counts it |
//! | stop long work cooperatively | each job's [`JobContext`] carries a [`CancellationToken`]; [`JobHandle::cancel`] and [`JobHandle::cancel_on_drop`] cancel one job |
//! | shut down cleanly | [`WorkerPool::shutdown`]: refuse, drain, cancel at the deadline, join, report; `Drop` only closes and returns at once |
//! | a panic is not a lost worker | panics are caught, counted, logged with `tracing` and delivered to the handle ([`PanicPolicy`]) |
//! | wait for the work so far | [`WorkerPool::join`] / [`WorkerPool::join_timeout`] |
//! | size to the load | [`WorkerPool::set_workers`] at runtime |
//! | jobs that borrow | [`WorkerPool::scope`] / [`WorkerPool::try_scope`] |
//! | fan out, fail fast | [`Group`]: the first error cancels the rest, results in order |
//! | no allocation per small job | jobs capturing up to 64 bytes (48 with a result) are stored inline in the queue |
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
//! outlives a pool that was shut down.
//!
//! Dropping a pool without `shutdown` closes it and returns at once, like threadpool
//! and rayon: the workers finish the queued jobs and exit by themselves, and running
//! jobs are not cancelled.
//!
//! # Tracing
//!
//! `error` for each caught panic (worker index and message) and for stuck workers,
//! `debug` for resizes, drops, shutdown progress and its report.
//!
//! # Unsafe code
//!
//! Two things need it, both in small modules with their reasoning at each block: the
//! inline storage of queued jobs (`job.rs`) and the lifetime of scoped jobs
//! (`scope.rs`). Their unit tests run under Miri.
#![deny(unsafe_code)]

mod cancel;
mod config;
mod error;
mod gate;
mod group;
mod handle;
mod job;
mod nested;
mod parking;
mod pool;
mod queue;
mod scope;
mod shutdown;
mod slots;
mod spares;
mod stats;
mod sync;

/// The parking protocol, exposed to `tests/loom.rs` only (built with `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    pub use crate::parking::{JobQueue, Parking, ParkingSpot};
}

pub use cancel::CancellationToken;
pub use config::{
    BuildError, MAX_STACK_SIZE, MAX_WORKERS, MIN_STACK_SIZE, PanicPolicy, WorkerPoolBuilder,
};
pub use error::{JoinError, ResizeError, SubmitError};
pub use group::{Group, GroupError};
pub use handle::{JobError, JobHandle, JoinTimeout};
pub use job::JobContext;
pub use pool::{SpawnAsync, SubmitAsync, WorkerPool};
pub use poolside_core::{Events, Instrumented, Timing};
pub use scope::{Scope, TryScope};
pub use shutdown::{ShutdownError, ShutdownReport};
