//! Structured fan-out: spawn many jobs, wait for all, the first failure cancels the rest.

use crate::cancel::CancellationToken;
use crate::error::SubmitError;
use crate::handle::{JobError, JobHandle, panic_message};
use crate::job::{JobContext, JobFn};
use crate::pool::{Wait, WorkerPool};
use parking_lot::Mutex;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

/// Why a [`Group`] did not produce every result. The variant names the job (by
/// submission index) whose failure came first; the rest were cancelled.
#[derive(Debug, PartialEq, Eq)]
pub enum GroupError<E> {
    /// Job `index` returned this error.
    Failed {
        /// Submission index of the failing job.
        index: usize,
        /// Its error.
        error: E,
    },
    /// Job `index` panicked. Unlike Go's errgroup, the panic is reported, not hidden.
    Panicked {
        /// Submission index of the panicking job.
        index: usize,
        /// The panic message.
        message: String,
    },
    /// Job `index` was skipped because [`Group::cancel`] was called before it started.
    Cancelled {
        /// Submission index of the skipped job.
        index: usize,
    },
    /// Job `index` never ran: the pool shut down past its deadline first.
    NotStarted {
        /// Submission index of the job.
        index: usize,
    },
}

impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Failed { index, error } => {
                write!(f, "job {index} of the group failed: {error}")
            }
            GroupError::Panicked { index, message } => {
                write!(f, "job {index} of the group panicked: {message}")
            }
            GroupError::Cancelled { index } => {
                write!(f, "job {index} of the group was cancelled before it started")
            }
            GroupError::NotStarted { index } => {
                write!(f, "job {index} of the group never ran: the pool shut down")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for GroupError<E> {}

/// The first failure of a group, recorded by the job that hit it.
type FirstFailure<E> = Arc<Mutex<Option<GroupError<E>>>>;

/// An errgroup on a [`WorkerPool`]: [`spawn`](Self::spawn) many fallible jobs,
/// [`wait`](Self::wait) for all of them, and get their values in submission order — or
/// the first failure, which cancels the jobs still running (through their tokens) and
/// skips those not yet started.
///
/// ```
/// use poolside_workerpool::{GroupError, WorkerPool};
///
/// let pool = WorkerPool::new(2)?;
/// let mut group = pool.group();
/// for n in 1..=4u64 {
///     group.spawn(move |_ctx| if n == 3 { Err("three") } else { Ok(n * n) })?;
/// }
/// assert_eq!(group.wait(), Err(GroupError::Failed { index: 2, error: "three" }));
///
/// let mut group = pool.group::<u64, &str>();
/// for n in 1..=4u64 {
///     group.spawn(move |_ctx| Ok(n * n))?;
/// }
/// assert_eq!(group.wait(), Ok(vec![1, 4, 9, 16]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Group<'pool, T, E> {
    pool: &'pool WorkerPool,
    token: CancellationToken,
    first_failure: FirstFailure<E>,
    handles: Vec<JobHandle<Option<T>>>,
}

impl WorkerPool {
    /// Starts an empty [`Group`] on this pool.
    pub fn group<T, E>(&self) -> Group<'_, T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        Group {
            pool: self,
            token: self.shared().shutdown_token.child(),
            first_failure: Arc::new(Mutex::new(None)),
            handles: Vec::new(),
        }
    }
}

impl<T, E> Group<'_, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Queues a job (blocking while the queue is full). Its context's token is the
    /// group's: cancelled by the first failure, by [`cancel`](Self::cancel), or at the
    /// pool's shutdown deadline.
    pub fn spawn<F>(&mut self, job: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) -> Result<T, E> + Send + 'static,
    {
        let job = GroupJob {
            job,
            index: self.handles.len(),
            token: self.token.clone(),
            first_failure: self.first_failure.clone(),
        };
        match self.pool.spawn_with(job, Wait::Until(None)) {
            Ok(handle) => {
                self.handles.push(handle);
                Ok(())
            }
            Err(err) => Err(err.map(|rejected| rejected.job)),
        }
    }

    /// Cancels every job of the group: running jobs see their token cancelled, queued
    /// ones are skipped.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Number of jobs spawned so far.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether no job was spawned.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Waits for every job; returns all values in submission order, or the first
    /// failure.
    pub fn wait(self) -> Result<Vec<T>, GroupError<E>> {
        let mut values = Vec::with_capacity(self.handles.len());
        let mut missing = None;
        for (index, handle) in self.handles.into_iter().enumerate() {
            match handle.join() {
                Ok(Some(value)) => values.push(value),
                // Skipped after a cancellation, or failed (the failure is recorded).
                Ok(None) => {
                    missing.get_or_insert(GroupError::Cancelled { index });
                }
                // Panics were recorded by the job itself before unwinding.
                Err(JobError::Panicked { .. }) => {}
                Err(JobError::NotStarted) => {
                    missing.get_or_insert(GroupError::NotStarted { index });
                }
                // A group's handles are its own: nobody else can cancel them.
                Err(JobError::Cancelled) => {
                    missing.get_or_insert(GroupError::Cancelled { index });
                }
            }
        }
        if let Some(failure) = self.first_failure.lock().take() {
            return Err(failure);
        }
        match missing {
            Some(missing) => Err(missing),
            None => Ok(values),
        }
    }
}

/// One job of a group, with what it needs to report a failure to the group.
struct GroupJob<F, E> {
    job: F,
    index: usize,
    token: CancellationToken,
    first_failure: FirstFailure<E>,
}

impl<F, T, E> JobFn<Option<T>> for GroupJob<F, E>
where
    F: FnOnce(&JobContext<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn call(self, ctx: &JobContext<'_>) -> Option<T> {
        let GroupJob { job, index, token, first_failure } = self;
        if token.is_cancelled() {
            return None; // an earlier failure: skip the work
        }
        let ctx = ctx.with_token(&token);
        match catch_unwind(AssertUnwindSafe(|| job(&ctx))) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                record(&first_failure, &token, GroupError::Failed { index, error });
                None
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                record(&first_failure, &token, GroupError::Panicked { index, message });
                // Re-raised so the pool counts and logs it like any other panic.
                resume_unwind(payload)
            }
        }
    }
}

fn record<E>(
    first: &Mutex<Option<GroupError<E>>>,
    token: &CancellationToken,
    failure: GroupError<E>,
) {
    first.lock().get_or_insert(failure);
    token.cancel();
}

impl<T, E> fmt::Debug for Group<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("jobs", &self.handles.len())
            .field("cancelled", &self.token.is_cancelled())
            .finish()
    }
}
