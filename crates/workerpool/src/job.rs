//! What travels through the queue: a boxed job that can run, or be handed back.

use crate::cancel::CancellationToken;
use crate::handle::{Completer, JobError, panic_message};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// What a running job can see: its cancellation token and which worker runs it.
///
/// ```
/// use std::time::Duration;
///
/// let pool = poolside_workerpool::WorkerPool::builder().workers(1).build()?;
/// let handle = pool.spawn(|ctx| {
///     let mut steps = 0;
///     // A long job checks for cancellation between steps.
///     while steps < 3 && !ctx.is_cancelled() {
///         ctx.wait_cancelled(Duration::from_millis(1));
///         steps += 1;
///     }
///     steps
/// })?;
/// assert_eq!(handle.join()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct JobContext<'a> {
    token: &'a CancellationToken,
    worker: usize,
}

impl<'a> JobContext<'a> {
    pub(crate) fn new(token: &'a CancellationToken, worker: usize) -> Self {
        JobContext { token, worker }
    }

    /// The token cancelled when the job should stop: at the shutdown deadline, or when
    /// another job of its [`Group`](crate::Group) failed.
    pub fn token(&self) -> &CancellationToken {
        self.token
    }

    /// Whether the job has been asked to stop.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Sleeps up to `timeout`, waking at once on cancellation; returns whether the job
    /// was cancelled.
    pub fn wait_cancelled(&self, timeout: Duration) -> bool {
        self.token.wait_timeout(timeout)
    }

    /// Index of the worker running the job, `0..workers`.
    pub fn worker_index(&self) -> usize {
        self.worker
    }

    /// The same worker with another token (a group's).
    pub(crate) fn with_token<'b>(&self, token: &'b CancellationToken) -> JobContext<'b> {
        JobContext { token, worker: self.worker }
    }
}

/// A queued job, type-erased so one queue carries every job, and recoverable so a
/// rejected job goes back to its submitter unchanged.
pub(crate) trait Runnable: Send {
    /// Runs the job; `Err` carries the message of a caught panic.
    fn run(self: Box<Self>, ctx: &JobContext<'_>) -> Result<(), String>;
    /// The concrete job again, for handing a rejected job back.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A fire-and-forget job from `submit`.
pub(crate) struct Submitted<F>(pub(crate) F);

impl<F: FnOnce(&JobContext<'_>) + Send + 'static> Runnable for Submitted<F> {
    fn run(self: Box<Self>, ctx: &JobContext<'_>) -> Result<(), String> {
        let job = self.0;
        catch_unwind(AssertUnwindSafe(|| job(ctx))).map_err(|payload| panic_message(&*payload))
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// Something a worker can call with a context: any `FnOnce(&JobContext) -> R`, and the
/// crate's own job wrappers (which stay named types so a rejected one can be taken
/// apart again).
pub(crate) trait JobFn<R>: Send + 'static {
    fn call(self, ctx: &JobContext<'_>) -> R;
}

impl<F, R> JobFn<R> for F
where
    F: FnOnce(&JobContext<'_>) -> R + Send + 'static,
{
    fn call(self, ctx: &JobContext<'_>) -> R {
        self(ctx)
    }
}

/// A job from `spawn`, whose result goes to a [`JobHandle`](crate::JobHandle).
pub(crate) struct Spawned<F, R> {
    pub(crate) job: F,
    pub(crate) completer: Completer<R>,
}

impl<F, R> Runnable for Spawned<F, R>
where
    F: JobFn<R>,
    R: Send + 'static,
{
    fn run(self: Box<Self>, ctx: &JobContext<'_>) -> Result<(), String> {
        let Spawned { job, completer } = *self;
        match catch_unwind(AssertUnwindSafe(|| job.call(ctx))) {
            Ok(value) => {
                completer.complete(Ok(value));
                Ok(())
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                completer.complete(Err(JobError::Panicked { message: message.clone() }));
                Err(message)
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// One queue entry.
pub(crate) struct Task {
    pub(crate) job: Box<dyn Runnable>,
    /// When it was queued; only measured when timing events are enabled.
    pub(crate) enqueued: Option<Instant>,
}
