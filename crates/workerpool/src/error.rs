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
