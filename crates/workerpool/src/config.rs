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

/// A setting that cannot work, reported by [`WorkerPoolBuilder::build`].
#[non_exhaustive]
#[derive(Debug)]
pub enum BuildError {
    /// `workers(0)`: a pool needs at least one worker.
    ZeroWorkers,
    /// `queue_depth(0)`: the queue needs room for at least one job.
    ZeroQueueDepth,
    /// The requested stack is smaller than [`MIN_STACK_SIZE`].
    StackTooSmall {
        /// The requested size in bytes.
        bytes: usize,
    },
    /// `queue_shards(0)`, or more shards than `queue_depth` (every shard needs room
    /// for at least one job).
    InvalidQueueShards {
        /// The requested shard count.
        shards: usize,
        /// The queue depth it must not exceed.
        queue_depth: usize,
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
            BuildError::InvalidQueueShards { shards, queue_depth } => write!(
                f,
                "{shards} queue shards do not fit a queue depth of {queue_depth}: \
                 the shard count must be between 1 and the depth"
            ),
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
///     .drop_deadline(Duration::from_secs(5))
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
    pub(crate) drop_deadline: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) spinning_workers: Option<usize>,
    pub(crate) queue_shards: usize,
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
            drop_deadline: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(1),
            spinning_workers: None,
            queue_shards: 1,
            events: Events::none(),
        }
    }
}

impl WorkerPoolBuilder {
    /// Number of worker threads (default: the available parallelism). At least 1.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// How many jobs may wait in the queue before `submit` blocks and `try_submit`
    /// reports [`Full`](crate::SubmitError::Full) (default 1024). At least 1.
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.queue_depth = depth;
        self
    }

    /// Worker threads are named `<prefix>-<index>` (default `poolside-worker`).
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Stack size of each worker thread in bytes (default: the platform's).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// What a panicking job does to the process (default [`PanicPolicy::Isolate`]).
    pub fn panic_policy(mut self, policy: PanicPolicy) -> Self {
        self.panic_policy = policy;
        self
    }

    /// The deadline `Drop` gives queued and running jobs, as in
    /// [`WorkerPool::shutdown`] (default 10 s).
    pub fn drop_deadline(mut self, deadline: Duration) -> Self {
        self.drop_deadline = deadline;
        self
    }

    /// How long shutdown keeps waiting, after the deadline cancelled the running jobs,
    /// for jobs that ignore their cancellation token (default 1 s). Workers still busy
    /// after that are reported as stuck and detached: the hard bound on shutdown.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How many idle workers may search for work — look at the queue, yielding the CPU
    /// between looks (the name is older than that: they used to spin) — at a time (default 2, capped at `workers`); the other idle workers sleep on
    /// their own parker. A submitter wakes a sleeper only when nobody searches, and a
    /// searcher that finds a job while more wait wakes the next one, so a stream of
    /// short jobs is served without the submitter paying wake-ups and a burst still
    /// ramps up to every worker. `0`: no worker searches, every job submitted to an idle
    /// pool wakes a sleeper. More searchers mean fewer wake-ups but more contention on
    /// the queue; `docs/workerpool.md` has the measurements.
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::builder().workers(16).spinning_workers(1).build()?;
    /// # drop(pool);
    /// # Ok::<(), poolside_workerpool::BuildError>(())
    /// ```
    pub fn spinning_workers(mut self, spinners: usize) -> Self {
        self.spinning_workers = Some(spinners);
        self
    }

    /// Into how many bounded channels (shards) the queue's `queue_depth` slots are
    /// split (default 1, at most `queue_depth`). Worker `w` owns shard `w % shards`
    /// and takes jobs from it first, from the others when it is empty; each submitting
    /// thread deals its jobs round-robin over the shards and overflows into the next
    /// shard with room. Fewer workers then share one channel head. The bound stays
    /// exact (`Full` only when `queue_depth` jobs wait) and no job waits while a worker
    /// idles; jobs start in submission order only with one shard. One shard is the
    /// default because it measured best wherever this was measured (2 cores, up to 16
    /// workers); whether shards pay off with many workers on many cores is measured in
    /// `docs/workerpool.md`.
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::builder().workers(16).queue_shards(4).build()?;
    /// # drop(pool);
    /// # Ok::<(), poolside_workerpool::BuildError>(())
    /// ```
    pub fn queue_shards(mut self, shards: usize) -> Self {
        self.queue_shards = shards;
        self
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
        if self.queue_depth == 0 {
            return Err(BuildError::ZeroQueueDepth);
        }
        if self.queue_shards == 0 || self.queue_shards > self.queue_depth {
            let (shards, queue_depth) = (self.queue_shards, self.queue_depth);
            return Err(BuildError::InvalidQueueShards { shards, queue_depth });
        }
        if let Some(bytes) = self.stack_size.filter(|&b| b < MIN_STACK_SIZE) {
            return Err(BuildError::StackTooSmall { bytes });
        }
        if self.thread_name.is_empty() || self.thread_name.contains('\0') {
            return Err(BuildError::InvalidThreadName(self.thread_name));
        }
        WorkerPool::start(self)
    }
}
