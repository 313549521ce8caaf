//! The pool: submission with backpressure, the workers, and the deadline shutdown.

use crate::cancel::CancellationToken;
use crate::config::{PanicPolicy, WorkerPoolBuilder};
use crate::error::SubmitError;
use crate::gate::Gate;
use crate::handle::{Completer, JobHandle, ResultSlot};
use crate::job::{Job, JobContext, JobFn, Spawned, Submitted, Task};
use crate::parking::{Parking, ParkingSpot};
use crate::queue::{Queue, WorkerQueue};
use crate::shutdown::{ShutdownError, ShutdownReport};
use crate::stats::{CATALOGUE, Stats};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use poolside_core::{Events, Instrumented, MetricDesc, MetricVisitor, Timing};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A blocking `submit` re-checks for shutdown this often while the queue is full, so a
/// shutdown never waits behind a blocked submitter for longer than this.
const BLOCKED_SUBMIT_SLICE: Duration = Duration::from_millis(5);

/// How many idle workers search (poll the queue) at a time unless the builder says
/// otherwise; the others sleep. See `docs/workerpool.md` for the measurements.
pub(crate) const DEFAULT_SPINNING_WORKERS: usize = 2;

/// A bounded pool of worker threads.
///
/// * **Backpressure**: the queue holds at most `queue_depth` jobs; [`submit`](Self::submit)
///   blocks while it is full, [`try_submit`](Self::try_submit) hands the job back, and
///   [`submit_timeout`](Self::submit_timeout) waits a bounded time.
/// * **Results**: [`spawn`](Self::spawn) returns a [`JobHandle`] to join or `.await`.
/// * **Cancellation**: every job gets a [`JobContext`] with a [`CancellationToken`].
/// * **Shutdown**: [`shutdown`](Self::shutdown) stops accepting at once, drains the
///   queue, cancels running jobs at the deadline, joins every worker and reports what
///   happened. Dropping the pool does the same with the builder's `drop_deadline`.
/// * **Panics** are caught per job, counted and delivered to the job's handle; the
///   worker keeps serving.
///
/// ```
/// use poolside_workerpool::WorkerPool;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let pool = WorkerPool::builder().workers(2).queue_depth(8).build()?;
/// let done = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     let done = done.clone();
///     pool.submit(move |_ctx| {
///         done.fetch_add(1, Ordering::Relaxed);
///     })?; // blocks while 8 jobs are already waiting
/// }
/// let report = pool.shutdown(Duration::from_secs(5))?;
/// assert_eq!(done.load(Ordering::Relaxed), 100);
/// assert!(report.is_clean());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WorkerPool {
    shared: Arc<Shared>,
    /// Submitters enqueue only through the gate, which shutdown closes.
    gate: Gate,
    /// The job queue; at shutdown the pool drains itself what no worker is left to run.
    queue: Queue,
    threads: Mutex<Vec<WorkerThread>>,
    /// Each worker sends its index here when it exits (even by panic).
    exited: Receiver<usize>,
    shut_down: AtomicBool,
    config: WorkerPoolBuilder,
}

struct WorkerThread {
    name: String,
    handle: Option<JoinHandle<()>>,
}

pub(crate) struct Shared {
    stats: Stats,
    /// Cancelled at the shutdown deadline; every job's token descends from it.
    pub(crate) shutdown_token: CancellationToken,
    /// Set at the deadline: queued jobs are dropped instead of run.
    abandon: AtomicBool,
    events: Events,
    panic_policy: PanicPolicy,
    /// Who of the idle workers searches, who sleeps, and who wakes whom.
    parking: Parking,
}

impl WorkerPool {
    /// Starts a [`WorkerPoolBuilder`].
    pub fn builder() -> WorkerPoolBuilder {
        WorkerPoolBuilder::default()
    }

    /// A pool with `workers` threads and the default settings otherwise.
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::new(2)?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), poolside_workerpool::BuildError>(())
    /// ```
    pub fn new(workers: usize) -> Result<WorkerPool, crate::BuildError> {
        WorkerPool::builder().workers(workers).build()
    }

    pub(crate) fn start(config: WorkerPoolBuilder) -> Result<WorkerPool, crate::BuildError> {
        let queue = Queue::new(config.queue_depth, config.queue_shards);
        let (exit_tx, exited) = crossbeam_channel::unbounded();
        let max_searching = config.spinning_workers.unwrap_or(DEFAULT_SPINNING_WORKERS);
        let (parking, spots) = Parking::new(config.workers, max_searching);
        let shared = Arc::new(Shared {
            stats: Stats::new(config.workers),
            shutdown_token: CancellationToken::new(),
            abandon: AtomicBool::new(false),
            events: config.events.clone(),
            panic_policy: config.panic_policy,
            parking,
        });
        let pool = WorkerPool {
            shared,
            gate: Gate::default(),
            queue,
            threads: Mutex::new(Vec::with_capacity(config.workers)),
            exited,
            shut_down: AtomicBool::new(false),
            config,
        };
        for (index, spot) in spots.into_iter().enumerate() {
            let name = format!("{}-{index}", pool.config.thread_name);
            let mut builder = std::thread::Builder::new().name(name.clone());
            if let Some(bytes) = pool.config.stack_size {
                builder = builder.stack_size(bytes);
            }
            let worker = Worker {
                index,
                shared: pool.shared.clone(),
                queue: pool.queue.for_worker(index),
                spot,
                exited: exit_tx.clone(),
            };
            pool.shared.stats.workers[index].alive.store(true, Ordering::Relaxed);
            match builder.spawn(move || worker.run()) {
                Ok(handle) => pool.threads.lock().push(WorkerThread { name, handle: Some(handle) }),
                Err(err) => {
                    pool.shared.stats.workers[index].alive.store(false, Ordering::Relaxed);
                    // Dropping `pool` shuts down and joins the workers already started.
                    return Err(crate::BuildError::Spawn(err));
                }
            }
        }
        Ok(pool)
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.config.workers
    }

    /// Jobs waiting in the queue right now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    fn task<J: Job>(&self, job: J) -> Task {
        Task::new(job, self.shared.events.start())
    }

    /// Queues `task`, waiting while the queue is full until `deadline` (`None`: as long
    /// as it takes). Returns the task on failure.
    fn enqueue(
        &self,
        task: Task,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<(), SubmitError<Task>> {
        let mut task = task;
        loop {
            let Some(pass) = self.gate.enter() else {
                return Err(SubmitError::Closed(task));
            };
            // Fast path: room in the queue, no clock read, no timer.
            let attempt = match self.queue.try_push(task, pass.next_shard(self.queue.shards())) {
                Err(SubmitError::Full(t)) if wait => {
                    // Wait in slices, leaving the gate in between, so a shutdown never
                    // waits behind a blocked submitter for longer than one slice.
                    let slice = match deadline {
                        Some(deadline) => deadline
                            .saturating_duration_since(Instant::now())
                            .min(BLOCKED_SUBMIT_SLICE),
                        None => BLOCKED_SUBMIT_SLICE,
                    };
                    self.queue.push_timeout(t, slice)
                }
                other => other,
            };
            if attempt.is_ok() {
                pass.count_accepted();
            }
            drop(pass);
            match attempt {
                Ok(()) => {
                    self.shared.parking.job_queued();
                    return Ok(());
                }
                Err(SubmitError::TimedOut(t)) if deadline.is_none_or(|d| Instant::now() < d) => {
                    task = t
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn count(&self, result: &Result<(), SubmitError<Task>>) {
        // Accepted jobs are counted per thread by the gate.
        if result.is_err() {
            self.shared.stats.submit.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn submit_erased<F>(
        &self,
        job: F,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'static,
    {
        let result = self.enqueue(self.task(Submitted(job)), deadline, wait);
        self.count(&result);
        result.map_err(|err| err.map(|task| task.recover::<Submitted<F>>().0))
    }

    /// Queues `job`, blocking while the queue is full (backpressure). Fails with the
    /// job handed back only when the pool is shut down.
    pub fn submit<F>(&self, job: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'static,
    {
        self.submit_erased(job, None, true)
    }

    /// Queues `job` if there is room now; otherwise hands it back with
    /// [`SubmitError::Full`] or [`SubmitError::Closed`].
    ///
    /// ```
    /// use poolside_workerpool::{SubmitError, WorkerPool};
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).queue_depth(1).build()?;
    /// let (release, blocked) = std::sync::mpsc::channel::<()>();
    /// pool.submit(move |_| { let _ = blocked.recv(); })?; // occupies the worker
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// pool.submit(|_| {})?; // fills the queue
    /// assert!(matches!(pool.try_submit(|_| {}), Err(SubmitError::Full(_))));
    /// release.send(()).unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit<F>(&self, job: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'static,
    {
        self.submit_erased(job, None, false)
    }

    /// Queues `job`, waiting at most `timeout` for room; hands it back with
    /// [`SubmitError::TimedOut`] or [`SubmitError::Closed`].
    pub fn submit_timeout<F>(&self, job: F, timeout: Duration) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'static,
    {
        self.submit_erased(job, Some(Instant::now() + timeout), true)
    }

    /// Queues `job` (blocking while the queue is full) and returns a [`JobHandle`] for
    /// its result. The handle can be joined from a thread or awaited from async code:
    /// a bounded alternative to `tokio::task::spawn_blocking`.
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::new(2)?;
    /// let sum = pool.spawn(|_ctx| (1..=10).sum::<u32>())?;
    /// assert_eq!(sum.join()?, 55);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, R>(&self, job: F) -> Result<JobHandle<R>, SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_with(job, None, true)
    }

    /// Like [`spawn`](Self::spawn), but hands the job back with [`SubmitError::Full`]
    /// instead of waiting when the queue is full.
    pub fn try_spawn<F, R>(&self, job: F) -> Result<JobHandle<R>, SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_with(job, None, false)
    }

    pub(crate) fn spawn_with<F, R>(
        &self,
        job: F,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<JobHandle<R>, SubmitError<F>>
    where
        F: JobFn<R>,
        R: Send + 'static,
    {
        let slot = ResultSlot::new();
        let spawned = Spawned { job, completer: Completer::new(slot.clone()) };
        let result = self.enqueue(self.task(spawned), deadline, wait);
        self.count(&result);
        match result {
            Ok(()) => Ok(JobHandle::new(slot)),
            Err(err) => Err(err.map(|task| task.recover::<Spawned<F, R>>().job)),
        }
    }

    /// Stops accepting work at once, lets the workers drain the queue, and joins them.
    ///
    /// When `deadline` passes first, running jobs are cancelled through their tokens
    /// and queued jobs are dropped unrun (their handles report
    /// [`JobError::NotStarted`](crate::JobError::NotStarted)). Jobs that ignore their
    /// token get the builder's `shutdown_grace` more; a worker still busy after that is
    /// named in [`ShutdownReport::stuck_workers`] and detached — it exits as soon as its
    /// job returns. That grace is the hard bound on how long shutdown can take.
    ///
    /// A second call returns [`ShutdownError::AlreadyShutDown`].
    ///
    /// ```
    /// use poolside_workerpool::{ShutdownError, WorkerPool};
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::new(1)?;
    /// let long = pool.spawn(|ctx| ctx.wait_cancelled(Duration::from_secs(60)))?;
    /// let report = pool.shutdown(Duration::from_millis(20))?;
    /// assert_eq!(report.cancelled, 1);
    /// assert_eq!(long.join()?, true); // the job saw the cancellation
    /// assert_eq!(pool.shutdown(Duration::ZERO), Err(ShutdownError::AlreadyShutDown));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport, ShutdownError> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(ShutdownError::AlreadyShutDown);
        }
        let started = Instant::now();
        let before = self.shared.stats.totals();
        // Closing: new submits fail from here on; queued jobs still run. Once the gate
        // is closed nothing more enters the queue, so idle workers may drain and exit.
        self.gate.close();
        self.shared.parking.close();

        let mut threads = self.threads.lock();
        let mut running = threads.iter().filter(|t| t.handle.is_some()).count();
        running -= self.await_exits(running, started.checked_add(deadline), &mut threads);
        if running > 0 {
            tracing::debug!(running, "shutdown deadline passed: cancelling running jobs");
            self.shared.abandon.store(true, Ordering::SeqCst);
            self.shared.shutdown_token.cancel();
            self.drain_unstarted();
            let grace_end = Instant::now().checked_add(self.config.shutdown_grace);
            running -= self.await_exits(running, grace_end, &mut threads);
        }
        // Whatever is still queued never ran (no worker is left to run it).
        self.drain_unstarted();
        let stuck_workers: Vec<String> = threads
            .iter_mut()
            .filter_map(|t| {
                // Detach: dropping the handle lets the thread finish on its own.
                t.handle.take().map(|_| t.name.clone())
            })
            .collect();
        if !stuck_workers.is_empty() {
            tracing::error!(
                ?stuck_workers,
                "workers ignored cancellation past the shutdown grace; detached"
            );
        }
        debug_assert_eq!(running, stuck_workers.len());
        let after = self.shared.stats.totals();
        let report = ShutdownReport {
            completed: after.completed - before.completed,
            cancelled: after.cancelled - before.cancelled,
            panicked: after.panicked - before.panicked,
            not_started: after.not_started - before.not_started,
            stuck_workers,
            elapsed: started.elapsed(),
        };
        tracing::debug!(?report, "worker pool shut down");
        Ok(report)
    }

    /// Joins workers as they exit until `running` of them have or `until` passes;
    /// returns how many were joined.
    fn await_exits(
        &self,
        running: usize,
        until: Option<Instant>,
        threads: &mut [WorkerThread],
    ) -> usize {
        let mut joined = 0;
        while joined < running {
            let exited = match until {
                Some(until) => self.exited.recv_deadline(until).ok(),
                None => self.exited.recv().ok(),
            };
            // `None`: the time is up (the channel cannot disconnect while a worker that
            // has not announced its exit still holds a sender).
            let Some(index) = exited else { break };
            if let Some(handle) = threads[index].handle.take() {
                // The worker announced its exit as its last act; join cannot block long.
                let _ = handle.join();
                joined += 1;
            }
        }
        joined
    }

    pub(crate) fn shared_shutdown_token(&self) -> &CancellationToken {
        &self.shared.shutdown_token
    }

    fn drain_unstarted(&self) {
        let dropped = self.queue.drain();
        if dropped > 0 {
            self.shared.stats.submit.drained_not_started.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        if let Ok(report) = self.shutdown(self.config.drop_deadline) {
            if report.not_started > 0 || report.cancelled > 0 {
                tracing::warn!(?report, "worker pool dropped before its work was done");
            }
        }
    }
}

impl Instrumented for WorkerPool {
    fn kind(&self) -> &'static str {
        "workerpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &CATALOGUE
    }

    fn timings(&self) -> &'static [poolside_core::Timing] {
        &[Timing::QueueWait, Timing::JobRun]
    }

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        self.shared.stats.visit(self.gate.accepted(), self.queue.len(), visitor);
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.config.workers)
            .field("queue_depth", &self.config.queue_depth)
            .field("queue_shards", &self.queue.shards())
            .field("queued", &self.queue.len())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

/// One worker thread's loop.
struct Worker {
    index: usize,
    shared: Arc<Shared>,
    queue: WorkerQueue,
    /// This worker's half of the parking protocol.
    spot: ParkingSpot,
    exited: Sender<usize>,
}

impl Worker {
    fn run(mut self) {
        let shared = &*self.shared.clone();
        let counters = &shared.stats.workers[self.index];
        let ctx = JobContext::new(&shared.shutdown_token, self.index);
        // The next job, or `None` once shutdown has closed the gate and the queue is empty.
        while let Some(task) = shared.parking.next_job(&mut self.spot, &self.queue) {
            if shared.abandon.load(Ordering::Acquire) {
                drop(task);
                counters.count_not_started();
                continue;
            }
            shared.events.finish(Timing::QueueWait, task.enqueued());
            counters.busy.store(true, Ordering::Relaxed);
            let started = shared.events.start();
            let outcome = task.run(&ctx);
            shared.events.finish(Timing::JobRun, started);
            counters.busy.store(false, Ordering::Relaxed);
            match outcome {
                Ok(()) if ctx.is_cancelled() => counters.count_cancelled(),
                Ok(()) => counters.count_completed(),
                Err(message) => {
                    counters.count_panicked();
                    tracing::error!(worker = self.index, panic = %message, "job panicked");
                    if shared.panic_policy == PanicPolicy::Abort {
                        tracing::error!("panic policy is Abort: aborting the process");
                        std::process::abort();
                    }
                }
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Runs on every exit path, so shutdown never waits for a worker that is gone.
        self.shared.stats.workers[self.index].alive.store(false, Ordering::Relaxed);
        let _ = self.exited.send(self.index);
    }
}
