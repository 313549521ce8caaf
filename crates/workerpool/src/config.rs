//! Building a pool: settings, their validation, and the errors they produce.

use crate::WorkerPool;
use poolside_core::Events;
use std::fmt;
use std::time::Duration;

/// What happens when a job panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PanicPolicy {
    /// Catch the panic, count it, log it with `tracing`, deliver it to the job's handle
    /// as [`JobError::Panicked`](crate::JobError::Panicked), and keep the worker
    /// serving. The pool never shrinks.
    #[default]
    Isolate,
    /// Log the panic and abort the process: for programs where a panicking job means
    /// state can no longer be trusted.
    Abort,
}

/// The smallest stack accepted for a worker thread.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// The largest stack accepted for a worker thread (1 GiB): larger requests are
/// mistakes, and sizes near `usize::MAX` overflow the platform's page rounding.
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// The most worker threads a pool may have, at build time and through
/// [`WorkerPool::set_workers`].
pub const MAX_WORKERS: usize = 4096;

/// A setting that cannot work, reported by [`WorkerPoolBuilder::build`].
#[non_exhaustive]
#[derive(Debug)]
pub enum BuildError {
    /// `workers(0)`: a pool needs at least one worker.
    ZeroWorkers,
    /// More workers than [`MAX_WORKERS`].
    TooManyWorkers {
        /// The requested count.
        workers: usize,
    },
    /// `queue_depth(0)`: the queue needs room for at least one job.
    ZeroQueueDepth,
    /// The requested stack is smaller than [`MIN_STACK_SIZE`].
    StackTooSmall {
        /// The requested size in bytes.
        bytes: usize,
    },
    /// The requested stack is larger than [`MAX_STACK_SIZE`].
    StackTooLarge {
        /// The requested size in bytes.
        bytes: usize,
    },
    /// The thread name prefix is empty or contains a NUL byte.
    InvalidThreadName(String),
    /// The operating system refused to start a worker thread.
    Spawn(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str("a worker pool needs at least one worker"),
            BuildError::ZeroQueueDepth => f.write_str("the queue depth must be at least 1"),
            BuildError::StackTooSmall { bytes } => {
                write!(f, "a stack of {bytes} bytes is below the minimum of {MIN_STACK_SIZE}")
            }
            BuildError::TooManyWorkers { workers } => {
                write!(f, "{workers} workers are more than the maximum of {MAX_WORKERS}")
            }
            BuildError::StackTooLarge { bytes } => {
                write!(f, "a stack of {bytes} bytes is above the maximum of {MAX_STACK_SIZE}")
            }
            BuildError::InvalidThreadName(name) => {
                write!(
                    f,
                    "invalid thread name prefix {name:?}: it must be non-empty and contain no NUL byte"
                )
            }
            BuildError::Spawn(err) => write!(f, "could not start a worker thread: {err}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(err) => Some(err),
            _ => None,
        }
    }
}

/// Settings for a [`WorkerPool`]; [`build`](Self::build) validates them and starts
/// the workers.
///
/// ```
/// use poolside_workerpool::{PanicPolicy, WorkerPool};
/// use std::time::Duration;
///
/// let pool = WorkerPool::builder()
///     .workers(4)
///     .queue_depth(256)
///     .thread_name("resize")
///     .stack_size(512 * 1024)
///     .panic_policy(PanicPolicy::Isolate)
///     .shutdown_grace(Duration::from_millis(500))
///     .build()?;
/// assert_eq!(pool.workers(), 4);
/// # Ok::<(), poolside_workerpool::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WorkerPoolBuilder {
    pub(crate) workers: usize,
    pub(crate) queue_depth: usize,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) panic_policy: PanicPolicy,
    pub(crate) shutdown_grace: Duration,
    pub(crate) max_searching_workers: Option<usize>,
    pub(crate) events: Events,
}

impl Default for WorkerPoolBuilder {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        WorkerPoolBuilder {
            workers,
            queue_depth: 1024,
            thread_name: String::from("poolside-worker"),
            stack_size: None,
            panic_policy: PanicPolicy::Isolate,
            shutdown_grace: Duration::from_secs(1),
            max_searching_workers: None,
            events: Events::none(),
        }
    }
}

impl WorkerPoolBuilder {
    /// Number of worker threads (default: the available parallelism), from 1 to
    /// [`MAX_WORKERS`]. [`WorkerPool::set_workers`] changes it at runtime.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// How many jobs may wait in the queue before `submit` blocks and `try_submit`
    /// reports [`Full`](crate::SubmitError::Full) (default 1024). At least 1; depths up
    /// to 65,536 are allocated once up front, larger ones (`usize::MAX` included: an
    /// unbounded queue) grow as jobs arrive.
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.queue_depth = depth;
        self
    }

    /// Worker threads are named `<prefix>-<index>` (default `poolside-worker`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Stack size of each worker thread in bytes (default: the platform's), from
    /// [`MIN_STACK_SIZE`] to [`MAX_STACK_SIZE`].
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// What a panicking job does to the process (default [`PanicPolicy::Isolate`]).
    pub fn panic_policy(mut self, policy: PanicPolicy) -> Self {
        self.panic_policy = policy;
        self
    }

    /// How long shutdown keeps waiting, after the deadline cancelled the running jobs,
    /// for jobs that ignore their cancellation token (default 1 s). Workers still busy
    /// after that are reported as stuck and detached: the hard bound on shutdown.
    /// `Duration::MAX` waits for them without bound.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How many idle workers may search for work at a time — look at the queue a few
    /// times, with a short spin between looks — before they go to sleep (default 2; any value
    /// above the worker count means every idle worker searches). The other idle workers
    /// sleep on their own parker. A submitter wakes a sleeper only when nobody
    /// searches, and a searcher that finds a job while more wait wakes the next one, so
    /// a stream of short jobs is served without the submitter paying wake-ups and a
    /// burst still ramps up to every worker. `0`: no worker searches, every job
    /// submitted to an idle pool wakes a sleeper. Searching is bounded and never yields
    /// the CPU to other threads (on a machine with no idle core a yield gives away a
    /// whole time slice): a searcher that finds nothing within a few microseconds
    /// sleeps, so idle workers cost a busy machine almost nothing.
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::builder().workers(16).max_searching_workers(1).build()?;
    /// # drop(pool);
    /// # Ok::<(), poolside_workerpool::BuildError>(())
    /// ```
    pub fn max_searching_workers(mut self, workers: usize) -> Self {
        self.max_searching_workers = Some(workers);
        self
    }

    /// The former name of [`max_searching_workers`](Self::max_searching_workers): the
    /// setting bounds the workers that search, whose spinning is itself bounded.
    #[deprecated(since = "0.2.0", note = "renamed to `max_searching_workers`")]
    pub fn spinning_workers(self, workers: usize) -> Self {
        self.max_searching_workers(workers)
    }

    /// Timing events: queue wait and run time of every job (default: none, which
    /// costs nothing).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Validates the settings and starts the workers.
    pub fn build(self) -> Result<WorkerPool, BuildError> {
        if self.workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.workers > MAX_WORKERS {
            return Err(BuildError::TooManyWorkers { workers: self.workers });
        }
        if self.queue_depth == 0 {
            return Err(BuildError::ZeroQueueDepth);
        }
        if let Some(bytes) = self.stack_size.filter(|&b| b < MIN_STACK_SIZE) {
            return Err(BuildError::StackTooSmall { bytes });
        }
        if let Some(bytes) = self.stack_size.filter(|&b| b > MAX_STACK_SIZE) {
            return Err(BuildError::StackTooLarge { bytes });
        }
        if self.thread_name.is_empty() || self.thread_name.contains('\0') {
            return Err(BuildError::InvalidThreadName(self.thread_name));
        }
        WorkerPool::start(self)
    }
}
