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

/// One of the crate's job wrappers: runs once, catching a panic.
pub(crate) trait Job: Send + 'static {
    /// Runs the job; `Err` carries the message of a caught panic.
    fn run(self, ctx: &JobContext<'_>) -> Result<(), String>;
}

/// A fire-and-forget job from `submit`.
pub(crate) struct Submitted<F>(pub(crate) F);

impl<F: FnOnce(&JobContext<'_>) + Send + 'static> Job for Submitted<F> {
    fn run(self, ctx: &JobContext<'_>) -> Result<(), String> {
        let job = self.0;
        catch_unwind(AssertUnwindSafe(|| job(ctx))).map_err(|payload| panic_message(&*payload))
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

impl<F, R> Job for Spawned<F, R>
where
    F: JobFn<R>,
    R: Send + 'static,
{
    fn run(self, ctx: &JobContext<'_>) -> Result<(), String> {
        let Spawned { job, completer } = self;
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
}

/// A job boxed with the time it was queued, when timing events are on. Keeping the
/// time in the box, not in the queue entry, keeps the entry one pointer and a vtable
/// (16 bytes instead of 32), so a cache line of the queue holds more entries; without
/// timing events the job is boxed alone (`Untimed`), so a job that captures nothing
/// still costs no allocation.
struct Timed<J> {
    job: J,
    enqueued: Instant,
}

/// A job boxed alone: timing events are off.
struct Untimed<J>(J);

/// What a queue entry can do, type-erased so one queue carries every job.
trait Runnable: Send {
    fn run(self: Box<Self>, ctx: &JobContext<'_>) -> Result<(), String>;
    fn enqueued(&self) -> Option<Instant>;
    /// The entry again, for handing a rejected job back.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<J: Job> Runnable for Timed<J> {
    fn run(self: Box<Self>, ctx: &JobContext<'_>) -> Result<(), String> {
        self.job.run(ctx)
    }

    fn enqueued(&self) -> Option<Instant> {
        Some(self.enqueued)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

impl<J: Job> Runnable for Untimed<J> {
    fn run(self: Box<Self>, ctx: &JobContext<'_>) -> Result<(), String> {
        self.0.run(ctx)
    }

    fn enqueued(&self) -> Option<Instant> {
        None
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// One queue entry: a job of any type, recoverable as that type when it is rejected.
pub(crate) struct Task(Box<dyn Runnable>);

impl Task {
    /// Boxes `job`, with the time it was queued when timing events measure it.
    pub(crate) fn new<J: Job>(job: J, enqueued: Option<Instant>) -> Task {
        match enqueued {
            Some(enqueued) => Task(Box::new(Timed { job, enqueued })),
            None => Task(Box::new(Untimed(job))),
        }
    }

    /// When the job was queued (`None` unless timing events are enabled).
    pub(crate) fn enqueued(&self) -> Option<Instant> {
        self.0.enqueued()
    }

    /// Runs the job; `Err` carries the message of a caught panic.
    pub(crate) fn run(self, ctx: &JobContext<'_>) -> Result<(), String> {
        self.0.run(ctx)
    }

    /// The job again, as the type it was queued with.
    pub(crate) fn recover<J: Job>(self) -> J {
        let entry = match self.0.into_any().downcast::<Untimed<J>>() {
            Ok(untimed) => return untimed.0,
            Err(entry) => entry,
        };
        match entry.downcast::<Timed<J>>() {
            Ok(timed) => timed.job,
            Err(_) => unreachable!("a task is recovered as the type it was created with"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Submitted, Task};

    #[test]
    fn a_queue_entry_is_a_pointer_and_a_vtable() {
        // The enqueue time lives in the box, not in the queue's slots.
        assert_eq!(std::mem::size_of::<Task>(), 2 * std::mem::size_of::<usize>());
        type Plain = Submitted<fn(&super::JobContext<'_>)>;
        fn job(_: &super::JobContext<'_>) {}
        let untimed = Task::new(Submitted(job as fn(&super::JobContext<'_>)), None);
        assert!(untimed.enqueued().is_none());
        let _recovered: Plain = untimed.recover();
        let at = std::time::Instant::now();
        let timed = Task::new(Submitted(job as fn(&super::JobContext<'_>)), Some(at));
        assert_eq!(timed.enqueued(), Some(at));
        let _recovered: Plain = timed.recover();
    }
}
