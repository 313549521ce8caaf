//! The pool: submission with backpressure (blocking, bounded and async), the workers,
//! resizing, `join`, and the deadline shutdown.
//!
//! Longer than the crate's other files on purpose: a third of it is the rustdoc (with
//! examples) of `WorkerPool`'s public methods, and submission, the worker loop and
//! shutdown all work on `Shared`'s private fields, which splitting them apart would
//! have to widen to the whole crate.

use crate::cancel::CancellationToken;
use crate::config::{MAX_WORKERS, PanicPolicy, WorkerPoolBuilder};
use crate::error::{JoinError, ResizeError, SubmitError};
use crate::gate::{Gate, Pass};
use crate::handle::{Completer, JobHandle, ResultSlot};
use crate::job::{JobContext, JobFn, Outcome, Spawned, Submitted, Task};
use crate::nested::NestedStack;
use crate::parking::{Parking, ParkingSpot};
use crate::queue::Queue;
use crate::shutdown::{ShutdownError, ShutdownReport};
use crate::slots::{Admission, AsyncWait};
use crate::stats::{CATALOGUE, Stats, WorkerStats};
use crate::sync::IdlePoll;
use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;
use parking_lot::{Condvar, Mutex};
use poolside_core::{Events, Instrumented, MetricDesc, MetricVisitor, Timing};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many idle workers search (poll the queue) at a time unless the builder says
/// otherwise; the others sleep.
pub(crate) const DEFAULT_MAX_SEARCHING: usize = 2;

/// How long a worker submitting into its own full pool waits in line before it runs a
/// queued job itself.
const HELPER_PATIENCE: Duration = Duration::from_micros(200);

/// How often a thread in `join` looks at the counters even without a notification.
const JOIN_RECHECK: Duration = Duration::from_millis(1);

/// A bounded pool of worker threads.
///
/// * **Backpressure**: the queue holds at most `queue_depth` jobs; [`submit`](Self::submit)
///   blocks while it is full, [`try_submit`](Self::try_submit) hands the job back,
///   [`submit_timeout`](Self::submit_timeout) waits a bounded time, and
///   [`submit_async`](Self::submit_async) waits without blocking an async runtime.
/// * **Results**: [`spawn`](Self::spawn) returns a [`JobHandle`] to join, `.await` or
///   cancel.
/// * **Cancellation**: every job gets a [`JobContext`] with a [`CancellationToken`].
/// * **Shutdown**: [`shutdown`](Self::shutdown) stops accepting at once, drains the
///   queue, cancels running jobs at the deadline, joins every worker and reports what
///   happened. Dropping the pool only closes it: it returns at once and the workers
///   finish the queued jobs on their own.
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
    threads: Mutex<Threads>,
    /// Each worker sends its index here when it exits (even by panic).
    exited: Receiver<usize>,
    exit_sender: Sender<usize>,
    shut_down: AtomicBool,
    config: WorkerPoolBuilder,
}

/// The worker threads, by index, and how many the pool should have.
struct Threads {
    list: Vec<WorkerThread>,
    target: usize,
}

struct WorkerThread {
    name: String,
    handle: Option<JoinHandle<()>>,
}

pub(crate) struct Shared {
    stats: Stats,
    /// Submitters enqueue only through the gate, which shutdown closes.
    pub(crate) gate: Gate,
    pub(crate) queue: Queue,
    /// Cancelled at the shutdown deadline; every job's token descends from it.
    pub(crate) shutdown_token: CancellationToken,
    /// Set at the deadline: queued jobs are dropped instead of run.
    abandon: AtomicBool,
    events: Events,
    panic_policy: PanicPolicy,
    /// Who of the idle workers searches, who sleeps, and who wakes whom.
    parking: Parking,
    /// Threads in [`WorkerPool::join`]: workers notify them after each job while > 0.
    joiners: CachePadded<AtomicUsize>,
    /// How many times a thread in `join` has seen the pool idle (see `wait_idle`).
    idle_lock: Mutex<u64>,
    idle: Condvar,
    /// Stack room for the jobs a worker runs while it waits inside another job.
    nested_stack: NestedStack,
}

/// How long a submission may wait for room.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all (`try_*`).
    No,
    /// Until the deadline (`None`: as long as it takes).
    Until(Option<Instant>),
}

thread_local! {
    /// The pool and counters of the worker running on this thread, if it is one.
    static CURRENT: RefCell<Option<CurrentWorker>> = const { RefCell::new(None) };
}

struct CurrentWorker {
    /// The worker's pool.
    shared: Arc<Shared>,
    index: usize,
    counters: WorkerStats,
}

impl Shared {
    /// Runs one job taken from the queue on worker `index` and counts how it ended.
    /// `nested`: the worker runs it while waiting inside another job (a scope).
    fn run_task(&self, task: Task, counters: &WorkerStats, index: usize, nested: bool) {
        if self.abandon.load(Ordering::Acquire) {
            drop_quietly(task, index);
            counters.count_not_started();
            self.job_finished();
            return;
        }
        if self.events.is_enabled() {
            self.events.finish(Timing::QueueWait, task.enqueued());
        }
        if !nested {
            counters.busy.store(true, Ordering::Release);
        }
        let ctx = JobContext::new(&self.shutdown_token, index);
        let started = self.events.start();
        // The job wrappers catch the job's own panics; this catches a panicking `Drop`
        // of what a skipped job captured, so no job escapes the counts.
        let outcome = catch_unwind(AssertUnwindSafe(|| task.run(&ctx)))
            .unwrap_or_else(|payload| Outcome::Panicked(crate::handle::panic_message(&*payload)));
        self.events.finish(Timing::JobRun, started);
        // Not busy before counted: a snapshot never counts one job twice.
        if !nested {
            counters.busy.store(false, Ordering::Release);
        }
        match outcome {
            Outcome::Completed => counters.count_completed(),
            Outcome::Cancelled => counters.count_cancelled(),
            Outcome::Panicked(message) => {
                counters.count_panicked();
                tracing::error!(worker = index, panic = %message, "job panicked");
                if self.panic_policy == PanicPolicy::Abort {
                    tracing::error!("panic policy is Abort: aborting the process");
                    std::process::abort();
                }
            }
        }
        self.job_finished();
    }

    /// Runs a job taken from the queue on worker `index` while that worker waits inside
    /// another job, with stack room of its own (see [`NestedStack`]).
    fn run_nested(&self, task: Task, counters: &WorkerStats, index: usize) {
        self.nested_stack.run(|| self.run_task(task, counters, index, true));
    }

    /// After a job was counted finished: wakes the threads in `join`, if any. No fence
    /// on this per-job path: a worker that misses a joiner that just arrived costs that
    /// joiner at most one `JOIN_RECHECK` of latency, never a hang.
    #[inline]
    fn job_finished(&self) {
        if self.joiners.load(Ordering::Relaxed) > 0 {
            let _lock = self.idle_lock.lock();
            self.idle.notify_all();
        }
    }

    /// Whether every accepted job has finished. Finished first, accepted second: the
    /// two sums are monotonic and every finished job was accepted before, so equality
    /// read this way means the pool was idle at the moment between the two reads.
    fn is_idle(&self) -> bool {
        let finished = self.stats.totals().finished();
        finished >= self.gate.accepted()
    }

    /// Drops every queued job unrun (shutdown).
    fn drain_unstarted(&self) {
        let dropped = catch_unwind(AssertUnwindSafe(|| self.queue.drain())).unwrap_or_else(|_| {
            tracing::error!("a queued job's captures panicked while being dropped");
            // The rest of the queue is drained below; the panicking one is gone.
            1 + self.queue.drain()
        });
        if dropped > 0 {
            let counter = &self.stats.submit.drained_not_started;
            counter.fetch_add(dropped, Ordering::Release);
            self.job_finished();
        }
    }

    /// On a worker thread of any pool, runs jobs until `done` holds: first those
    /// `take_own` hands out (the awaited jobs not started yet: a scope's own), when the
    /// thread is a worker of `pool`, whose jobs they are; then that worker's pool's
    /// queued jobs. Elsewhere, returns `false` at once (the caller then blocks).
    ///
    /// A worker waiting for other jobs (a scope inside a job) must help, or nested
    /// scopes could occupy every worker with waiting. It helps its own pool whichever
    /// pool the awaited jobs run on: two pools whose jobs wait for scopes on each other
    /// would otherwise deadlock once each one's workers all wait.
    pub(crate) fn help_until(
        pool: &Arc<Shared>,
        done: impl FnMut() -> bool,
        take_own: impl FnMut() -> Option<Task>,
        idle_wait: impl FnMut(),
    ) -> bool {
        Self::help(Some(pool), done, take_own, idle_wait)
    }

    /// On a worker thread of any pool, runs that pool's queued jobs until `done`
    /// holds; elsewhere, returns `false` at once. For a worker waiting for one job
    /// (a handle's `join`), which may sit in the queue behind the others: a worker
    /// that only blocked would leave it to the others, and once every worker waits
    /// so, nobody runs it.
    pub(crate) fn help_any_until(done: impl FnMut() -> bool, idle_wait: impl FnMut()) -> bool {
        Self::help(None, done, || None, idle_wait)
    }

    /// [`help_until`](Self::help_until), where `take_own` is asked only on a worker
    /// of `pool` (`None`: never).
    fn help(
        pool: Option<&Arc<Shared>>,
        mut done: impl FnMut() -> bool,
        mut take_own: impl FnMut() -> Option<Task>,
        mut idle_wait: impl FnMut(),
    ) -> bool {
        // Borrowed, not cloned: the pool's `Arc` count is a line every worker would
        // write. Jobs run here may borrow `CURRENT` again (nested scopes): shared
        // borrows nest.
        CURRENT.with_borrow(|current| {
            let Some(CurrentWorker { shared: own, index, counters }) = current else {
                return false;
            };
            let same_pool = pool.is_some_and(|pool| Arc::ptr_eq(own, pool));
            // A few short looks before each sleep: the awaited jobs' own children,
            // queued on other workers, are usually just about to appear.
            let mut poll = IdlePoll::new();
            while !done() {
                let task = match same_pool {
                    true => match take_own() {
                        Some(task) => {
                            own.queue.ticket_spent();
                            Some(task)
                        }
                        None => own.queue.try_pop(),
                    },
                    false => own.queue.try_pop(),
                };
                match task {
                    Some(task) => {
                        own.run_nested(task, counters, *index);
                        poll = IdlePoll::new();
                    }
                    None if !poll.is_completed() => poll.snooze(),
                    // The jobs waited for are running on other workers.
                    None => {
                        idle_wait();
                        poll = IdlePoll::new();
                    }
                }
            }
            true
        })
    }

    /// The index and counters of the calling thread if it is one of this pool's workers.
    fn current_worker(self: &Arc<Self>) -> Option<(usize, WorkerStats)> {
        CURRENT.with_borrow(|current| {
            current
                .as_ref()
                .filter(|c| Arc::ptr_eq(&c.shared, self))
                .map(|c| (c.index, c.counters.clone()))
        })
    }

    fn is_worker_thread(self: &Arc<Self>) -> bool {
        CURRENT
            .with_borrow(|current| current.as_ref().is_some_and(|c| Arc::ptr_eq(&c.shared, self)))
    }
}

/// Drops a job that will not run; a panic in its captures' `Drop` is logged.
fn drop_quietly(task: Task, worker: usize) {
    if catch_unwind(AssertUnwindSafe(|| drop(task))).is_err() {
        tracing::error!(worker, "a job's captures panicked while being dropped unrun");
    }
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
        let (exit_sender, exited) = crossbeam_channel::unbounded();
        let max_searching = config.max_searching_workers.unwrap_or(DEFAULT_MAX_SEARCHING);
        let (parking, _) = Parking::new(0, max_searching);
        let shared = Arc::new(Shared {
            stats: Stats::default(),
            gate: Gate::default(),
            queue: Queue::new(config.queue_depth),
            shutdown_token: CancellationToken::new(),
            abandon: AtomicBool::new(false),
            events: config.events.clone(),
            panic_policy: config.panic_policy,
            parking,
            joiners: CachePadded::new(AtomicUsize::new(0)),
            idle_lock: Mutex::new(0),
            idle: Condvar::new(),
            nested_stack: NestedStack::new(config.stack_size),
        });
        let workers = config.workers;
        let pool = WorkerPool {
            shared,
            threads: Mutex::new(Threads { list: Vec::with_capacity(workers), target: workers }),
            exited,
            exit_sender,
            shut_down: AtomicBool::new(false),
            config,
        };
        {
            let mut threads = pool.threads.lock();
            for _ in 0..workers {
                // On failure, dropping `pool` closes it; the started workers exit.
                pool.start_worker(&mut threads).map_err(crate::BuildError::Spawn)?;
            }
        }
        Ok(pool)
    }

    /// Starts one more worker thread.
    fn start_worker(&self, threads: &mut Threads) -> std::io::Result<()> {
        let index = threads.list.len();
        let name = format!("{}-{index}", self.config.thread_name);
        let mut builder = std::thread::Builder::new().name(name.clone());
        if let Some(bytes) = self.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let counters = self.shared.stats.add_worker();
        let worker = Worker {
            index,
            shared: self.shared.clone(),
            spot: self.shared.parking.spot(),
            counters,
            exited: self.exit_sender.clone(),
        };
        // Listed before it starts, so its exit message always finds its entry.
        threads.list.push(WorkerThread { name, handle: None });
        let handle = builder.spawn(move || worker.run())?;
        threads.list[index].handle = Some(handle);
        Ok(())
    }

    /// The number of workers the pool has (or is shrinking or growing to, right after
    /// [`set_workers`](Self::set_workers)); the `workers` gauge counts the threads alive.
    pub fn workers(&self) -> usize {
        self.threads.lock().target
    }

    /// Changes the number of worker threads at runtime: growing starts the new threads
    /// at once; shrinking lets the surplus workers exit after their current job (idle
    /// ones at once). Jobs are never lost or interrupted by a resize, and the pool's
    /// stats stay exact throughout (a retired worker's counts stay in the totals).
    ///
    /// `n` must be between 1 and [`MAX_WORKERS`](crate::MAX_WORKERS); a pool that is
    /// shut down answers [`ResizeError::Closed`].
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::new(2)?;
    /// pool.set_workers(4)?;
    /// assert_eq!(pool.workers(), 4);
    /// pool.set_workers(1)?;
    /// assert_eq!(pool.workers(), 1);
    /// assert_eq!(pool.spawn(|_| 7)?.join()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_workers(&self, n: usize) -> Result<(), ResizeError> {
        if n == 0 {
            return Err(ResizeError::ZeroWorkers);
        }
        if n > MAX_WORKERS {
            return Err(ResizeError::TooManyWorkers { workers: n });
        }
        let mut threads = self.threads.lock();
        if self.is_shut_down() {
            return Err(ResizeError::Closed);
        }
        // Join the workers that retired since the last resize.
        while let Ok(index) = self.exited.try_recv() {
            if let Some(handle) = threads.list.get_mut(index).and_then(|t| t.handle.take()) {
                let _ = handle.join();
            }
        }
        let current = threads.target;
        if n > current {
            let grow = n - current;
            let kept = self.shared.parking.unretire(grow);
            threads.target += kept;
            for _ in kept..grow {
                self.start_worker(&mut threads).map_err(ResizeError::Spawn)?;
                threads.target += 1;
            }
        } else if n < current {
            self.shared.parking.retire(current - n);
            threads.target = n;
        }
        tracing::debug!(from = current, to = n, "worker pool resized");
        Ok(())
    }

    /// Jobs waiting in the queue right now.
    pub fn queued(&self) -> usize {
        self.shared.queue.len()
    }

    /// Whether the pool was shut down or dropped.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Takes a queue slot, waiting as `wait` allows.
    fn admit(&self, wait: Wait) -> Admission {
        let slots = &self.shared.queue.slots;
        match wait {
            Wait::No if slots.try_acquire() => Admission::Granted,
            Wait::No if self.shared.gate.is_closed() => Admission::Closed,
            Wait::No => Admission::Waiting,
            Wait::Until(deadline) => slots.acquire(deadline),
        }
    }

    /// Queues the job `make` builds from `job`, waiting for room as `wait` allows.
    /// Returns what `make` returned for the caller, or `job` if it was not accepted.
    pub(crate) fn enqueue<T, O>(
        &self,
        job: T,
        wait: Wait,
        make: impl FnOnce(T, Option<Instant>) -> (Task, O),
    ) -> Result<O, SubmitError<T>> {
        let shared = &*self.shared;
        // The fast path (`src/gate.rs`): the flag, then the permit's compare-and-swap,
        // which fails once shutdown has closed the permits.
        let pass = shared.gate.raise();
        if shared.queue.slots.try_acquire() {
            return Ok(self.push_admitted(pass, job, make));
        }
        drop(pass);
        // A job submitting to its own pool without a deadline would block the worker
        // that could make room: when every worker did, nobody would (threadpool's queue
        // is unbounded, so its users submit from jobs freely).
        if matches!(wait, Wait::Until(None)) && self.shared.is_worker_thread() {
            return self.enqueue_helping(job, make);
        }
        let result = match self.admit(wait) {
            Admission::Granted => self.push(job, make),
            Admission::Closed => Err(SubmitError::Closed(job)),
            Admission::Waiting if matches!(wait, Wait::No) => Err(SubmitError::Full(job)),
            Admission::Waiting => Err(SubmitError::TimedOut(job)),
        };
        if result.is_err() {
            self.shared.stats.submit.rejected.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Like [`enqueue`](Self::enqueue) with no deadline, for a submission that may come
    /// from one of the pool's own workers (a job submitting, spawning, or opening a
    /// scope): while the queue is full, such a worker runs queued jobs itself instead
    /// of blocking, so workers waiting for room cannot deadlock the pool.
    pub(crate) fn enqueue_helping<T, O>(
        &self,
        job: T,
        make: impl FnOnce(T, Option<Instant>) -> (Task, O),
    ) -> Result<O, SubmitError<T>> {
        let Some((index, counters)) = self.shared.current_worker() else {
            return self.enqueue(job, Wait::Until(None), make);
        };
        let shared = &*self.shared;
        let mut stand_in_line = false;
        loop {
            // Full with nobody in line: the room this worker waits for is made by running
            // queued jobs, so it runs one at once (on a pool of one worker nobody else
            // would). Otherwise a short place in line keeps the order among waiting
            // submitters mostly fair; between tries the worker runs a queued job.
            let wait = if stand_in_line || shared.queue.slots.has_waiters() {
                Wait::Until(Instant::now().checked_add(HELPER_PATIENCE))
            } else {
                Wait::No
            };
            let result = match self.admit(wait) {
                Admission::Granted => self.push(job, make),
                Admission::Closed => Err(SubmitError::Closed(job)),
                Admission::Waiting => {
                    // Nothing to run: the room is on its way to those in line, or was
                    // just taken; queue behind them next time.
                    stand_in_line = match shared.queue.try_pop() {
                        Some(task) => {
                            shared.run_nested(task, &counters, index);
                            false
                        }
                        None => true,
                    };
                    continue;
                }
            };
            if result.is_err() {
                self.shared.stats.submit.rejected.fetch_add(1, Ordering::Relaxed);
            }
            return result;
        }
    }

    /// Puts the job in the queue; the caller holds a slot for it, which goes back if the
    /// pool closed meanwhile.
    fn push<T, O>(
        &self,
        job: T,
        make: impl FnOnce(T, Option<Instant>) -> (Task, O),
    ) -> Result<O, SubmitError<T>> {
        let shared = &*self.shared;
        let Some(pass) = shared.gate.enter() else {
            shared.queue.slots.release();
            return Err(SubmitError::Closed(job));
        };
        Ok(self.push_admitted(pass, job, make))
    }

    /// Puts the job in the queue under `pass`, which admits it: the caller holds a slot.
    #[inline]
    fn push_admitted<T, O>(
        &self,
        pass: Pass<'_>,
        job: T,
        make: impl FnOnce(T, Option<Instant>) -> (Task, O),
    ) -> O {
        let shared = &*self.shared;
        let (task, output) = make(job, shared.events.start());
        pass.count_accepted();
        shared.queue.push(task);
        drop(pass);
        shared.parking.job_queued();
        output
    }

    /// Queues `job`, blocking while the queue is full (backpressure). Fails with the
    /// job handed back only when the pool is shut down.
    pub fn submit<F>(&self, job: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'static,
    {
        self.enqueue(job, Wait::Until(None), submitted)
    }

    /// Queues `job` if there is room now; otherwise hands it back with
    /// [`SubmitError::Full`] or [`SubmitError::Closed`]. While submitters wait for room,
    /// a freed slot is theirs: `try_submit` does not overtake them.
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
        self.enqueue(job, Wait::No, submitted)
    }

    /// Queues `job`, waiting at most `timeout` for room; hands it back with
    /// [`SubmitError::TimedOut`] or [`SubmitError::Closed`]. A timeout too large to
    /// add to the clock (`Duration::MAX`) waits as long as it takes.
    pub fn submit_timeout<F>(&self, job: F, timeout: Duration) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'static,
    {
        self.enqueue(job, Wait::Until(Instant::now().checked_add(timeout)), submitted)
    }

    /// Queues `job`, waiting for room without blocking the calling thread: the future
    /// resolves once the job is queued (or the pool is shut down, which hands it back).
    /// Submitters waiting for room — async and blocking alike — get it in the order
    /// they started waiting.
    ///
    /// Cancel-safe: dropping the future before it resolves leaves the job neither
    /// queued nor run (it is dropped with the future), and a slot that was freed for it
    /// passes to the next waiter. Needs no particular runtime.
    ///
    /// ```
    /// # let block_on = |f| futures_lite_block_on(f);
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Waker};
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = Context::from_waker(Waker::noop());
    /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } std::thread::yield_now() }
    /// # }
    /// let pool = poolside_workerpool::WorkerPool::builder().workers(2).queue_depth(4).build()?;
    /// block_on(async {
    ///     for n in 0..100u64 {
    ///         pool.submit_async(move |_ctx| { let _ = n * n; }).await?;
    ///     }
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_async<F>(&self, job: F) -> SubmitAsync<'_, F>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'static,
    {
        SubmitAsync(AsyncEnqueue::new(self, job, submitted::<F>))
    }

    /// Queues `job` (blocking while the queue is full) and returns a [`JobHandle`] for
    /// its result. The handle can be joined from a thread or awaited from async code.
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
        self.spawn_with(job, Wait::Until(None))
    }

    /// Like [`spawn`](Self::spawn), but hands the job back with [`SubmitError::Full`]
    /// instead of waiting when the queue is full.
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::new(1)?;
    /// let handle = pool.try_spawn(|_ctx| 2 + 2).map_err(|e| e.to_string())?;
    /// assert_eq!(handle.join()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_spawn<F, R>(&self, job: F) -> Result<JobHandle<R>, SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_with(job, Wait::No)
    }

    /// Like [`spawn`](Self::spawn), waiting for room without blocking the calling
    /// thread: a bounded replacement for `tokio::task::spawn_blocking` that needs no
    /// particular runtime. Cancel-safe like [`submit_async`](Self::submit_async).
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Waker};
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = Context::from_waker(Waker::noop());
    /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } std::thread::yield_now() }
    /// # }
    /// let pool = poolside_workerpool::WorkerPool::new(2)?;
    /// let answer = block_on(async {
    ///     let handle = pool.spawn_async(|_ctx| 6 * 7).await?;
    ///     Ok::<_, Box<dyn std::error::Error>>(handle.await?)
    /// })?;
    /// assert_eq!(answer, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_async<F, R>(&self, job: F) -> SpawnAsync<'_, F, R>
    where
        F: FnOnce(&JobContext<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        SpawnAsync(AsyncEnqueue::new(self, job, spawned::<F, R>))
    }

    pub(crate) fn spawn_with<F, R>(
        &self,
        job: F,
        wait: Wait,
    ) -> Result<JobHandle<R>, SubmitError<F>>
    where
        F: JobFn<R>,
        R: Send + 'static,
    {
        self.enqueue(job, wait, spawned::<F, R>)
    }

    /// Blocks until every job accepted so far has finished (run, panicked, cancelled or
    /// dropped unrun), keeping the pool usable — threadpool's `join`. It returns at the
    /// first moment the pool is idle, so jobs that other threads keep submitting
    /// meanwhile can delay it; [`join_timeout`](Self::join_timeout) bounds the wait.
    /// Every thread waiting in `join` at that moment returns, even if one of them
    /// submits more jobs right away.
    ///
    /// Called from one of the pool's own jobs it would wait for itself: it returns
    /// [`JoinError::InsideJob`] instead.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = poolside_workerpool::WorkerPool::new(2)?;
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..50 {
    ///     let done = done.clone();
    ///     pool.submit(move |_| { done.fetch_add(1, Ordering::Relaxed); })?;
    /// }
    /// pool.join()?;
    /// assert_eq!(done.load(Ordering::Relaxed), 50);
    /// pool.submit(|_| {})?; // still usable
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        self.wait_idle(None)
    }

    /// [`join`](Self::join) for at most `timeout`; [`JoinError::TimedOut`] if jobs are
    /// still running then. `Duration::MAX` waits as long as it takes.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.wait_idle(Some(timeout))
    }

    fn wait_idle(&self, timeout: Option<Duration>) -> Result<(), JoinError> {
        let shared = &self.shared;
        if shared.is_worker_thread() {
            return Err(JoinError::InsideJob);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        shared.joiners.fetch_add(1, Ordering::SeqCst);
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _leave = Leave(&shared.joiners);
        // Whoever sees the pool idle counts the moment under the lock, so every thread
        // that was waiting before it returns too: a joiner that looked only after another
        // returned joiner had queued new jobs would otherwise wait for those as well.
        let mut idle_seen = shared.idle_lock.lock();
        let waiting_since = *idle_seen;
        let was_idle = |idle_seen: &mut u64| {
            if *idle_seen != waiting_since {
                return true;
            }
            if !shared.is_idle() {
                return false;
            }
            *idle_seen = idle_seen.wrapping_add(1);
            shared.idle.notify_all();
            true
        };
        loop {
            if was_idle(&mut idle_seen) {
                return Ok(());
            }
            let recheck = Instant::now() + JOIN_RECHECK;
            match deadline {
                Some(deadline) if deadline <= recheck => {
                    if shared.idle.wait_until(&mut idle_seen, deadline).timed_out() {
                        return if was_idle(&mut idle_seen) {
                            Ok(())
                        } else {
                            Err(JoinError::TimedOut)
                        };
                    }
                }
                _ => {
                    shared.idle.wait_until(&mut idle_seen, recheck);
                }
            }
        }
    }

    /// Stops accepting work at once, lets the workers drain the queue, and joins them.
    ///
    /// When `deadline` passes first, running jobs are cancelled through their tokens
    /// and queued jobs are dropped unrun (their handles report
    /// [`JobError::NotStarted`](crate::JobError::NotStarted)). Jobs that ignore their
    /// token get the builder's `shutdown_grace` more; a worker still busy after that is
    /// named in [`ShutdownReport::stuck_workers`] and detached — it exits as soon as its
    /// job returns. That grace is the hard bound on how long shutdown can take. A
    /// deadline too large to add to the clock (`Duration::MAX`) waits for the queue to
    /// drain however long that takes.
    ///
    /// This is the call that guarantees that no worker thread outlives the pool;
    /// dropping the pool does not wait for them.
    ///
    /// A second call returns [`ShutdownError::AlreadyShutDown`]. Called from one of the
    /// pool's own jobs, it returns [`ShutdownError::InsideJob`] and shuts nothing down:
    /// the worker running that job could not be joined before the job returns.
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
        if self.shared.is_worker_thread() {
            return Err(ShutdownError::InsideJob);
        }
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(ShutdownError::AlreadyShutDown);
        }
        let started = Instant::now();
        let before = self.shared.stats.totals();
        self.close();

        let mut threads = self.threads.lock();
        let list = &mut threads.list;
        let mut running = list.iter().filter(|t| t.handle.is_some()).count();
        running -= self.await_exits(running, started.checked_add(deadline), list);
        if running > 0 {
            tracing::debug!(running, "shutdown deadline passed: cancelling running jobs");
            self.shared.abandon.store(true, Ordering::SeqCst);
            self.shared.shutdown_token.cancel();
            self.shared.drain_unstarted();
            let grace_end = Instant::now().checked_add(self.config.shutdown_grace);
            running -= self.await_exits(running, grace_end, list);
        }
        // Whatever is still queued never ran (no worker is left to run it).
        self.shared.drain_unstarted();
        let stuck_workers: Vec<String> = list
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

    /// Closing: new submits fail from here on, waiting submitters are handed their
    /// jobs back, queued jobs still run. Once the gate is closed nothing more enters
    /// the queue, so idle workers may drain it and exit.
    fn close(&self) {
        self.shared.gate.close(|| self.shared.queue.slots.close_permits());
        self.shared.queue.slots.close();
        self.shared.parking.close();
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
            // `None`: the time is up.
            let Some(index) = exited else { break };
            if let Some(handle) = threads.get_mut(index).and_then(|t| t.handle.take()) {
                // The worker announced its exit as its last act; join cannot block long.
                let _ = handle.join();
                joined += 1;
            }
        }
        joined
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// Builds the queue entry of a `submit`.
fn submitted<F>(job: F, enqueued: Option<Instant>) -> (Task, ())
where
    F: FnOnce(&JobContext<'_>) + Send + 'static,
{
    (Task::new(Submitted(job), enqueued), ())
}

/// Builds the queue entry of a `spawn` and the handle to its result.
fn spawned<F, R>(job: F, enqueued: Option<Instant>) -> (Task, JobHandle<R>)
where
    F: JobFn<R>,
    R: Send + 'static,
{
    let slot = ResultSlot::new();
    let task = Task::new(Spawned { job, completer: Completer::new(slot.clone()) }, enqueued);
    (task, JobHandle::new(slot))
}

impl Drop for WorkerPool {
    /// Closes the pool and returns at once: queued jobs still run, on the workers,
    /// which exit when the queue is empty. Running jobs are not cancelled. Use
    /// [`shutdown`](WorkerPool::shutdown) to wait for the workers with a deadline and
    /// a report.
    fn drop(&mut self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close();
        let queued = self.shared.queue.len();
        tracing::debug!(queued, "worker pool dropped: the workers finish the queue and exit");
        // The join handles drop with the pool: the threads are detached.
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
        let shared = &self.shared;
        shared.stats.visit(|| shared.queue.len(), || shared.gate.accepted(), visitor);
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.workers())
            .field("queue_depth", &self.config.queue_depth)
            .field("queued", &self.queued())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

/// The wait of an async submission: a place in the slots' line, and the job to queue
/// once granted.
struct AsyncEnqueue<'a, T, O> {
    pool: &'a WorkerPool,
    job: Option<T>,
    make: fn(T, Option<Instant>) -> (Task, O),
    wait: AsyncWait,
}

impl<'a, T, O> AsyncEnqueue<'a, T, O> {
    fn new(pool: &'a WorkerPool, job: T, make: fn(T, Option<Instant>) -> (Task, O)) -> Self {
        AsyncEnqueue { pool, job: Some(job), make, wait: AsyncWait::default() }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<O, SubmitError<T>>> {
        let pool = self.pool;
        let admission = self.wait.poll(&pool.shared.queue.slots, cx.waker());
        let result = match admission {
            Admission::Waiting => return Poll::Pending,
            Admission::Granted => {
                let job = self.job.take().expect("a submission future polled after it resolved");
                pool.push(job, self.make)
            }
            Admission::Closed => {
                let job = self.job.take().expect("a submission future polled after it resolved");
                Err(SubmitError::Closed(job))
            }
        };
        if result.is_err() {
            pool.shared.stats.submit.rejected.fetch_add(1, Ordering::Relaxed);
        }
        Poll::Ready(result)
    }
}

impl<T, O> Drop for AsyncEnqueue<'_, T, O> {
    fn drop(&mut self) {
        // A slot granted to this future but not used passes to the next waiter.
        self.wait.cancel(&self.pool.shared.queue.slots);
    }
}

/// The future of [`WorkerPool::submit_async`]: resolves once the job is queued, or
/// hands it back with [`SubmitError::Closed`]. Dropping it withdraws the job.
#[must_use = "futures do nothing unless polled; dropping this one withdraws the job"]
pub struct SubmitAsync<'a, F>(AsyncEnqueue<'a, F, ()>);

impl<F> Future for SubmitAsync<'_, F> {
    type Output = Result<(), SubmitError<F>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll(cx)
    }
}

// The job is never pinned: it is moved out when the slot is granted.
impl<F> Unpin for SubmitAsync<'_, F> {}

impl<F> fmt::Debug for SubmitAsync<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitAsync").field("resolved", &self.0.job.is_none()).finish()
    }
}

/// The future of [`WorkerPool::spawn_async`]: resolves to the job's [`JobHandle`] once
/// it is queued, or hands the job back with [`SubmitError::Closed`]. Dropping it
/// withdraws the job.
#[must_use = "futures do nothing unless polled; dropping this one withdraws the job"]
pub struct SpawnAsync<'a, F, R>(AsyncEnqueue<'a, F, JobHandle<R>>);

impl<F, R> Future for SpawnAsync<'_, F, R> {
    type Output = Result<JobHandle<R>, SubmitError<F>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll(cx)
    }
}

// The job is never pinned: it is moved out when the slot is granted.
impl<F, R> Unpin for SpawnAsync<'_, F, R> {}

impl<F, R> fmt::Debug for SpawnAsync<'_, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnAsync").field("resolved", &self.0.job.is_none()).finish()
    }
}

/// One worker thread's loop.
struct Worker {
    index: usize,
    shared: Arc<Shared>,
    /// This worker's half of the parking protocol.
    spot: ParkingSpot,
    counters: WorkerStats,
    exited: Sender<usize>,
}

impl Worker {
    fn run(mut self) {
        let shared = self.shared.clone();
        CURRENT.set(Some(CurrentWorker {
            shared: shared.clone(),
            index: self.index,
            counters: self.counters.clone(),
        }));
        // The next job, or `None` once shutdown has closed the gate and the queue is
        // empty, or when this worker retires.
        while let Some(task) = shared.parking.next_job(&mut self.spot, &shared.queue) {
            shared.run_task(task, &self.counters, self.index, false);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Runs on every exit path, so shutdown never waits for a worker that is gone.
        let _ = CURRENT.try_with(|current| current.replace(None));
        self.counters.alive.store(false, Ordering::Release);
        let _ = self.exited.send(self.index);
    }
}
