//! What travels through the queue: a type-erased job stored inline in its queue entry
//! when it is small, boxed otherwise.
//!
//! A job that captures data would cost one allocation on the submitting thread and one
//! free on a worker if it were boxed; a [`Task`] instead keeps any job of at most
//! [`INLINE_BYTES`] bytes (and alignment at most 8) inside the entry itself, next to a
//! pointer to the job type's table of functions. Larger jobs are boxed, and the box is
//! stored inline. This module holds the crate's only `unsafe` code besides the
//! lifetime erasure of [`Task::new_scoped`], which relies on it.

#![allow(unsafe_code)] // inline job storage: see the module docs

use crate::cancel::CancellationToken;
use crate::handle::{Completer, JobError, panic_message};
use crate::scope::ScopeCore;
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
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
    /// The pool's shutdown token, or a group's or scope's token below it.
    token: &'a CancellationToken,
    /// The job's own token ([`JobHandle::cancel`](crate::JobHandle::cancel)), linked
    /// below `token` only once the job asks for its token: checking it costs a load.
    own: Option<&'a CancellationToken>,
    linked: Cell<bool>,
    worker: usize,
}

impl<'a> JobContext<'a> {
    pub(crate) fn new(token: &'a CancellationToken, worker: usize) -> Self {
        JobContext { token, own: None, linked: Cell::new(false), worker }
    }

    /// The token cancelled when the job should stop: at the shutdown deadline, when its
    /// [`JobHandle`](crate::JobHandle) cancels it, or when another job of its
    /// [`Group`](crate::Group) or [`try_scope`](crate::WorkerPool::try_scope) failed.
    pub fn token(&self) -> &CancellationToken {
        match self.own {
            Some(own) => {
                if !self.linked.replace(true) {
                    self.token.adopt(own);
                }
                own
            }
            None => self.token,
        }
    }

    /// Whether the job has been asked to stop.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled() || self.own.is_some_and(CancellationToken::is_cancelled)
    }

    /// Sleeps up to `timeout`, waking at once on cancellation; returns whether the job
    /// was cancelled. `Duration::MAX` waits until cancelled.
    pub fn wait_cancelled(&self, timeout: Duration) -> bool {
        self.token().wait_timeout(timeout)
    }

    /// Index of the worker running the job (worker threads are numbered from 0 in the
    /// order they were started; [`set_workers`](crate::WorkerPool::set_workers) adds
    /// new numbers).
    pub fn worker_index(&self) -> usize {
        self.worker
    }

    /// The same worker with another parent token (a group's or a scope's).
    pub(crate) fn with_token<'b>(&'b self, token: &'b CancellationToken) -> JobContext<'b> {
        JobContext { token, own: self.own, linked: Cell::new(false), worker: self.worker }
    }

    /// The same context with the job's own token.
    pub(crate) fn with_own<'b>(&'b self, own: &'b CancellationToken) -> JobContext<'b> {
        JobContext {
            token: self.token,
            own: Some(own),
            linked: Cell::new(false),
            worker: self.worker,
        }
    }
}

/// How a job ended, for the pool's counters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Returned normally.
    Completed,
    /// Returned after its token was cancelled, or was skipped because it was cancelled
    /// before it started.
    Cancelled,
    /// Panicked; the message of the caught panic.
    Panicked(String),
}

/// One of the crate's job wrappers: runs once, catching a panic.
pub(crate) trait Job: Send {
    /// Runs the job.
    fn run(self, ctx: &JobContext<'_>) -> Outcome;

    /// When the job was queued, if timing events measure it.
    fn enqueued(&self) -> Option<Instant> {
        None
    }
}

fn ran(ctx: &JobContext<'_>) -> Outcome {
    if ctx.is_cancelled() { Outcome::Cancelled } else { Outcome::Completed }
}

/// A fire-and-forget job from `submit`.
pub(crate) struct Submitted<F>(pub(crate) F);

impl<F: FnOnce(&JobContext<'_>) + Send> Job for Submitted<F> {
    fn run(self, ctx: &JobContext<'_>) -> Outcome {
        let job = self.0;
        match catch_unwind(AssertUnwindSafe(|| job(ctx))) {
            Ok(()) => ran(ctx),
            Err(payload) => Outcome::Panicked(panic_message(&*payload)),
        }
    }
}

/// Something a worker can call with a context: any `FnOnce(&JobContext) -> R`, and the
/// crate's own job wrappers.
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
    fn run(self, ctx: &JobContext<'_>) -> Outcome {
        let Spawned { job, completer } = self;
        if completer.token().is_cancelled() {
            // Cancelled through its handle while queued: never started.
            drop(job);
            completer.complete(Err(JobError::Cancelled));
            return Outcome::Cancelled;
        }
        // The context borrows the completer's token rather than cloning it, so that the
        // token is still pristine, and the slot reusable as it is, once the job is done.
        let (outcome, result) = {
            let ctx = ctx.with_own(completer.token());
            match catch_unwind(AssertUnwindSafe(|| job.call(&ctx))) {
                // Decided before the handle can see the value (and, cancelling on drop,
                // cancel a job that has already finished).
                Ok(value) => (ran(&ctx), Ok(value)),
                Err(payload) => {
                    let message = panic_message(&*payload);
                    (Outcome::Panicked(message.clone()), Err(JobError::Panicked { message }))
                }
            }
        };
        completer.complete(result);
        outcome
    }
}

/// A job with the time it was queued, when timing events are on.
struct Timed<J> {
    job: J,
    enqueued: Instant,
}

impl<J: Job> Job for Timed<J> {
    fn run(self, ctx: &JobContext<'_>) -> Outcome {
        self.job.run(ctx)
    }

    fn enqueued(&self) -> Option<Instant> {
        Some(self.enqueued)
    }
}

/// A job too large for the queue entry, boxed.
impl<J: Job> Job for Box<J> {
    fn run(self, ctx: &JobContext<'_>) -> Outcome {
        (*self).run(ctx)
    }

    fn enqueued(&self) -> Option<Instant> {
        (**self).enqueued()
    }
}

/// Bytes of job stored inside a queue entry: a `spawn` job capturing 48 bytes (plus
/// the 8-byte result completer) fits, and so does a `submit` job capturing 64.
pub(crate) const INLINE_BYTES: usize = 64;

/// The inline storage of a [`Task`]: word-aligned, uninitialised until a job is
/// written into it.
type Storage = MaybeUninit<[usize; INLINE_BYTES / size_of::<usize>()]>;

/// The functions of one job type, erased.
struct VTable {
    /// Moves the job out of the storage and runs it. The storage is uninitialised
    /// afterwards.
    run: unsafe fn(*mut Storage, &JobContext<'_>) -> Outcome,
    /// Drops the job in place.
    drop: unsafe fn(*mut Storage),
    /// The job's `enqueued`.
    enqueued: unsafe fn(*const Storage) -> Option<Instant>,
}

/// The vtable of job type `J` stored inline.
struct Inline<J>(PhantomData<J>);

impl<J: Job> Inline<J> {
    /// Whether `J` fits the storage, size and alignment both.
    const FITS: bool =
        size_of::<J>() <= size_of::<Storage>() && align_of::<J>() <= align_of::<Storage>();

    const VTABLE: &'static VTable =
        &VTable { run: Self::run, drop: Self::drop, enqueued: Self::enqueued };

    /// # Safety
    /// `storage` holds an initialised `J` that is not used again.
    unsafe fn run(storage: *mut Storage, ctx: &JobContext<'_>) -> Outcome {
        // SAFETY: the caller guarantees an initialised `J` and gives up the storage;
        // `Task::new_inline` wrote it there with the alignment `FITS` checked.
        let job = unsafe { storage.cast::<J>().read() };
        job.run(ctx)
    }

    /// # Safety
    /// `storage` holds an initialised `J` that is not used again.
    unsafe fn drop(storage: *mut Storage) {
        // SAFETY: as for `run`.
        unsafe { storage.cast::<J>().drop_in_place() }
    }

    /// # Safety
    /// `storage` holds an initialised `J`.
    unsafe fn enqueued(storage: *const Storage) -> Option<Instant> {
        // SAFETY: the caller guarantees an initialised, properly aligned `J`.
        unsafe { &*storage.cast::<J>() }.enqueued()
    }
}

/// A scoped job's place in the queue (`scope.rs`): it stands for its scope's oldest
/// job not started yet, which the queue hands out in its stead.
struct Ticket(Arc<ScopeCore>);

impl Job for Ticket {
    fn run(self, ctx: &JobContext<'_>) -> Outcome {
        // The queue redeems tickets as it hands them out (`Queue::try_pop`), so no
        // ticket is run; were one, it would run the job it stands for.
        match self.0.take_unstarted() {
            Some(task) => task.run(ctx),
            None => Outcome::Cancelled,
        }
    }
}

/// The table of every ticket, and only of tickets: a `static`, so that its address
/// tells a ticket from a job with one comparison.
static TICKET: VTable = VTable {
    run: Inline::<Ticket>::run,
    drop: Inline::<Ticket>::drop,
    enqueued: Inline::<Ticket>::enqueued,
};

/// One queue entry: a job of any type, run at most once, dropped in place otherwise.
pub(crate) struct Task {
    vtable: &'static VTable,
    storage: Storage,
}

// SAFETY: a `Task` is only built from a `J: Job`, and `Job: Send`; the storage is owned
// by the task (inline, or a box only the task points to), so moving the task to another
// thread moves the job with it.
unsafe impl Send for Task {}

impl Task {
    /// Stores `job`, with the time it was queued when timing events measure it.
    pub(crate) fn new<J: Job + 'static>(job: J, enqueued: Option<Instant>) -> Task {
        // SAFETY: `J: 'static` borrows nothing that could end before the task does.
        unsafe { Task::new_scoped(job, enqueued) }
    }

    /// Like [`new`](Self::new) for a job that may borrow data living for `'a` only.
    ///
    /// # Safety
    /// The task must be run or dropped before `'a` ends (a scope waits for that).
    pub(crate) unsafe fn new_scoped<'a, J: Job + 'a>(job: J, enqueued: Option<Instant>) -> Task {
        match enqueued {
            Some(enqueued) => Task::sized(Timed { job, enqueued }),
            None => Task::sized(job),
        }
    }

    fn sized<J: Job>(job: J) -> Task {
        if Inline::<J>::FITS { Task::new_inline(job) } else { Task::new_inline(Box::new(job)) }
    }

    fn new_inline<J: Job>(job: J) -> Task {
        assert!(Inline::<J>::FITS, "only jobs that fit are stored inline");
        let mut storage = Storage::uninit();
        // SAFETY: `FITS` checked that a `J` fits the storage in size and alignment.
        unsafe { storage.as_mut_ptr().cast::<J>().write(job) };
        Task { vtable: Inline::<J>::VTABLE, storage }
    }

    /// When the job was queued (`None` unless timing events are enabled).
    pub(crate) fn enqueued(&self) -> Option<Instant> {
        // SAFETY: the storage holds the job `vtable` was made for until `run` or `drop`.
        unsafe { (self.vtable.enqueued)(&self.storage) }
    }

    /// A ticket of `scope`'s: see [`Ticket`].
    pub(crate) fn ticket(scope: Arc<ScopeCore>) -> Task {
        const { assert!(Inline::<Ticket>::FITS) };
        let mut storage = Storage::uninit();
        // SAFETY: `FITS` holds for `Ticket`, checked above.
        unsafe { storage.as_mut_ptr().cast::<Ticket>().write(Ticket(scope)) };
        Task { vtable: &TICKET, storage }
    }

    /// The scope this task is a ticket of, if it is one.
    #[inline]
    pub(crate) fn as_ticket(&self) -> Option<&ScopeCore> {
        if !std::ptr::eq(self.vtable, &TICKET) {
            return None;
        }
        // SAFETY: only `Task::ticket` uses the `TICKET` table, with a `Ticket` written
        // in the storage, which stays there until the task is run or dropped; the
        // reference lives no longer than `&self`.
        Some(&unsafe { &*self.storage.as_ptr().cast::<Ticket>() }.0)
    }

    /// Runs the job.
    pub(crate) fn run(self, ctx: &JobContext<'_>) -> Outcome {
        // The job is moved out by `run`: the task's own drop must not run.
        let mut task = ManuallyDrop::new(self);
        // SAFETY: the storage holds the job `vtable` was made for, and is not used again.
        unsafe { (task.vtable.run)(&mut task.storage, ctx) }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // SAFETY: a task not run still holds its job, and is not used after this.
        unsafe { (self.vtable.drop)(&mut self.storage) }
    }
}

#[cfg(test)]
mod tests {
    use super::{INLINE_BYTES, Inline, Job, JobContext, Outcome, Submitted, Task};
    use crate::cancel::CancellationToken;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn run(task: Task) -> Outcome {
        let token = CancellationToken::new();
        task.run(&JobContext::new(&token, 0))
    }

    /// A job capturing `N` bytes and a counter; checks it ran with its data intact.
    fn job<const N: usize>(
        runs: &Arc<AtomicUsize>,
    ) -> impl FnOnce(&JobContext<'_>) + Send + use<N> {
        let runs = runs.clone();
        let data = [7u8; N];
        move |_| {
            assert!(data.iter().all(|&b| b == 7));
            runs.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A job of `N` bytes.
    struct Bytes<const N: usize>([u8; N]);

    impl<const N: usize> Job for Bytes<N> {
        fn run(self, _: &JobContext<'_>) -> Outcome {
            Outcome::Completed
        }
    }

    #[test]
    fn small_jobs_are_stored_inline_large_ones_boxed() {
        const {
            assert!(Inline::<Submitted<fn(&JobContext<'_>)>>::FITS);
            assert!(Inline::<Bytes<48>>::FITS);
            assert!(Inline::<Bytes<INLINE_BYTES>>::FITS);
            assert!(!Inline::<Bytes<{ INLINE_BYTES + 1 }>>::FITS);
            // A `spawn` job capturing 48 bytes: the closure plus its result completer.
            assert!(48 + size_of::<crate::handle::Completer<u64>>() <= INLINE_BYTES);
        }
        assert_eq!(size_of::<Task>(), INLINE_BYTES + size_of::<usize>());
    }

    #[test]
    fn inline_and_boxed_jobs_run_once_with_their_data() {
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(run(Task::new(Submitted(job::<0>(&runs)), None)), Outcome::Completed);
        assert_eq!(run(Task::new(Submitted(job::<40>(&runs)), None)), Outcome::Completed);
        assert_eq!(run(Task::new(Submitted(job::<200>(&runs)), None)), Outcome::Completed);
        let at = std::time::Instant::now();
        let timed = Task::new(Submitted(job::<40>(&runs)), Some(at));
        assert_eq!(timed.enqueued(), Some(at));
        assert_eq!(run(timed), Outcome::Completed);
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        // Every capture (the counter's `Arc`) was released exactly once.
        assert_eq!(Arc::strong_count(&runs), 1);
    }

    #[test]
    fn a_dropped_task_drops_its_captures_and_never_runs() {
        let runs = Arc::new(AtomicUsize::new(0));
        drop(Task::new(Submitted(job::<8>(&runs)), None));
        drop(Task::new(Submitted(job::<100>(&runs)), None));
        drop(Task::new(Submitted(job::<8>(&runs)), Some(std::time::Instant::now())));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(Arc::strong_count(&runs), 1);
    }

    #[test]
    fn a_panicking_inline_job_releases_its_captures() {
        let runs = Arc::new(AtomicUsize::new(0));
        let held = runs.clone();
        let task = Task::new(
            Submitted(move |_: &JobContext<'_>| {
                let _held = &held;
                panic!("boom");
            }),
            None,
        );
        assert_eq!(run(task), Outcome::Panicked("boom".into()));
        assert_eq!(Arc::strong_count(&runs), 1);
    }

    #[test]
    fn tasks_move_between_threads() {
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<Task> =
            (0..16).map(|_| Task::new(Submitted(job::<24>(&runs)), None)).collect();
        std::thread::spawn(move || tasks.into_iter().for_each(|t| drop(run(t)))).join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 16);
    }

    #[test]
    fn a_ticket_is_told_from_jobs_and_releases_its_scope() {
        let scope = Arc::new(crate::scope::ScopeCore::new());
        let ticket = Task::ticket(scope.clone());
        assert!(ticket.as_ticket().is_some_and(|s| std::ptr::eq(s, &*scope)));
        let runs = Arc::new(AtomicUsize::new(0));
        for job in [Task::new(Submitted(job::<8>(&runs)), None), Task::new(Bytes([0; 64]), None)] {
            assert!(job.as_ticket().is_none());
        }
        drop(ticket);
        assert_eq!(Arc::strong_count(&scope), 1, "the dropped ticket let its scope go");
    }

    #[test]
    fn a_scoped_task_may_borrow() {
        let mut seen = Vec::new();
        {
            let seen = std::sync::Mutex::new(&mut seen);
            let job = Submitted(|_: &JobContext<'_>| seen.lock().unwrap().push(1));
            // SAFETY: the task is run right here, before `seen` goes out of scope.
            let task = unsafe { Task::new_scoped(job, None) };
            run(task);
        }
        assert_eq!(seen, [1]);
    }
}
