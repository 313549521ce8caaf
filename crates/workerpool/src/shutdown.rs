//! What a shutdown did.

use std::fmt;
use std::time::Duration;

/// The account of a [`WorkerPool::shutdown`](crate::WorkerPool::shutdown): what
/// happened to the work that was queued or running when it began.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Jobs that finished normally during the shutdown (queued ones included).
    pub completed: u64,
    /// Jobs that were running when the deadline cancelled them and returned after.
    pub cancelled: u64,
    /// Jobs that panicked during the shutdown.
    pub panicked: u64,
    /// Queued jobs dropped without running because the deadline passed; their handles
    /// report [`JobError::NotStarted`](crate::JobError::NotStarted).
    pub not_started: u64,
    /// Threads still running a job that ignored its cancellation token when the grace
    /// period ended. They were detached: each exits as soon as its job returns.
    pub stuck_workers: Vec<String>,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// Whether every worker thread was joined.
    pub fn is_clean(&self) -> bool {
        self.stuck_workers.is_empty()
    }
}

/// Why [`WorkerPool::shutdown`](crate::WorkerPool::shutdown) did nothing.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownError {
    /// The pool was already shut down; the first shutdown's report stands.
    AlreadyShutDown,
    /// Called from one of the pool's own jobs: the shutdown would join the worker that
    /// runs it, which cannot exit before its job returns. The pool is not shut down;
    /// call `shutdown` from outside the pool (or cancel work through the jobs' tokens).
    InsideJob,
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownError::AlreadyShutDown => f.write_str("the worker pool is already shut down"),
            ShutdownError::InsideJob => {
                f.write_str("shutdown called from one of the pool's own jobs would join itself")
            }
        }
    }
}

impl std::error::Error for ShutdownError {}
