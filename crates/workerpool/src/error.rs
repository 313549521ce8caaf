//! Why a job was not accepted; the job always comes back.

use std::fmt;

/// A job the pool did not accept, handed back so nothing is silently lost.
///
/// ```
/// use poolside_workerpool::{SubmitError, WorkerPool};
///
/// let pool = WorkerPool::builder().workers(1).build()?;
/// pool.shutdown(std::time::Duration::from_secs(1))?;
/// match pool.try_submit(|_ctx| println!("late")) {
///     Err(SubmitError::Closed(job)) => drop(job), // or run it elsewhere
///     other => panic!("expected Closed, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub enum SubmitError<J> {
    /// The queue is full (`try_submit`).
    Full(J),
    /// The pool is shut down or shutting down.
    Closed(J),
    /// The queue stayed full for the whole timeout (`submit_timeout`).
    TimedOut(J),
}

impl<J> SubmitError<J> {
    /// The rejected job.
    pub fn into_job(self) -> J {
        match self {
            SubmitError::Full(job) | SubmitError::Closed(job) | SubmitError::TimedOut(job) => job,
        }
    }

    /// Whether the pool is closed (retrying will never succeed).
    pub fn is_closed(&self) -> bool {
        matches!(self, SubmitError::Closed(_))
    }

    /// Maps the carried job, keeping the reason.
    pub(crate) fn map<K>(self, f: impl FnOnce(J) -> K) -> SubmitError<K> {
        match self {
            SubmitError::Full(job) => SubmitError::Full(f(job)),
            SubmitError::Closed(job) => SubmitError::Closed(f(job)),
            SubmitError::TimedOut(job) => SubmitError::TimedOut(f(job)),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            SubmitError::Full(_) => "the queue is full",
            SubmitError::Closed(_) => "the pool is shut down",
            SubmitError::TimedOut(_) => "the queue stayed full until the timeout",
        }
    }
}

impl<J> fmt::Debug for SubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            SubmitError::Full(_) => "Full",
            SubmitError::Closed(_) => "Closed",
            SubmitError::TimedOut(_) => "TimedOut",
        };
        write!(f, "{variant}(..)")
    }
}

impl<J> fmt::Display for SubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job rejected: {}", self.reason())
    }
}

impl<J> std::error::Error for SubmitError<J> {}

/// Why [`WorkerPool::join`](crate::WorkerPool::join) or
/// [`join_timeout`](crate::WorkerPool::join_timeout) returned before the pool was idle.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// Jobs were still unfinished when the timeout passed.
    TimedOut,
    /// Called from one of the pool's own jobs, which would wait for itself.
    InsideJob,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::TimedOut => f.write_str("jobs were still running when the join timed out"),
            JoinError::InsideJob => {
                f.write_str("join called from one of the pool's own jobs would wait for itself")
            }
        }
    }
}

impl std::error::Error for JoinError {}

/// Why [`WorkerPool::set_workers`](crate::WorkerPool::set_workers) did not resize the
/// pool (or resized it only part of the way, for `Spawn`).
#[non_exhaustive]
#[derive(Debug)]
pub enum ResizeError {
    /// `set_workers(0)`: a pool needs at least one worker.
    ZeroWorkers,
    /// More workers than [`MAX_WORKERS`](crate::MAX_WORKERS).
    TooManyWorkers {
        /// The requested count.
        workers: usize,
    },
    /// The pool is shut down.
    Closed,
    /// The operating system refused to start a worker thread; the pool keeps the
    /// workers started before the failure.
    Spawn(std::io::Error),
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResizeError::ZeroWorkers => f.write_str("a worker pool needs at least one worker"),
            ResizeError::TooManyWorkers { workers } => {
                write!(f, "{workers} workers are more than the maximum of {}", crate::MAX_WORKERS)
            }
            ResizeError::Closed => f.write_str("the worker pool is shut down"),
            ResizeError::Spawn(err) => write!(f, "could not start a worker thread: {err}"),
        }
    }
}

impl std::error::Error for ResizeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResizeError::Spawn(err) => Some(err),
            _ => None,
        }
    }
}
