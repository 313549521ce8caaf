//! Scoped jobs: jobs that borrow the caller's data, all finished before the scope
//! returns — `std::thread::scope` and `rayon::scope` on the pool's workers.
//!
//! Every job of a scope is counted in `pending` from before it is queued until after
//! its closure (and everything it captured) has been dropped, whether it ran or was
//! dropped unrun by a shutdown. [`WorkerPool::scope`] returns only once `pending` is
//! zero, also when the scope's closure panics, and the pool cannot be dropped while a
//! scope borrows it: so no job outlives the data it borrows, which is what makes the
//! lifetime erasure of [`Task::new_scoped`] sound.
//!
//! A scoped job waits in its scope's `unstarted` list, oldest first, and a ticket
//! stands for it in the pool's queue (`queue.rs`): a worker that pops the ticket runs
//! the scope's oldest unstarted job, if any is left. A scope waited for on one of the
//! pool's own workers (a scope inside a job) runs its own unstarted jobs first, in
//! spawn order, then other queued jobs, so nested scopes cannot occupy every worker
//! with waiting, and a recursion's waiting worker goes on with its own subtree (local,
//! and as deep as the recursion) before anyone else's. Each job run that way gets
//! stack room of its own (`nested.rs`).

use crate::cancel::CancellationToken;
use crate::error::SubmitError;
use crate::handle::panic_message;
use crate::job::{Job, JobContext, Outcome, Task};
use crate::pool::{Shared, WorkerPool};
use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What a scope shares with its jobs' tickets in the pool's queue (`queue.rs`). It
/// borrows nothing, so a ticket may outlive the scope.
pub(crate) struct ScopeCore {
    /// Jobs created and not yet dropped.
    pending: AtomicUsize,
    /// Jobs queued and not started, oldest first. Each has a ticket in the pool's
    /// queue; whoever comes first runs it: a worker that pops a ticket, or the worker
    /// waiting for the scope.
    unstarted: Mutex<VecDeque<Task>>,
    /// Notified when `pending` reaches zero and when a job is queued, under
    /// `unstarted`'s lock.
    changed: Condvar,
}

impl ScopeCore {
    pub(crate) fn new() -> Self {
        ScopeCore {
            pending: AtomicUsize::new(0),
            unstarted: Mutex::new(VecDeque::new()),
            changed: Condvar::new(),
        }
    }

    /// The oldest job not started yet, if any.
    pub(crate) fn take_unstarted(&self) -> Option<Task> {
        self.unstarted.lock().pop_front()
    }

    /// Queues `task` on the scope's side (its ticket goes to the pool's queue next).
    pub(crate) fn put_unstarted(&self, task: Task) {
        self.unstarted.lock().push_back(task);
        // A worker waiting for the scope runs it at once.
        self.changed.notify_all();
    }

    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock: the waiter checks `pending` under it before it sleeps.
            let _unstarted = self.unstarted.lock();
            self.changed.notify_all();
        }
    }

    fn is_done(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Blocks until every job of the scope has been run or dropped. On a worker of
    /// `pool`, runs the scope's own unstarted jobs first, then other queued jobs.
    fn wait(&self, pool: &Arc<Shared>) {
        let helped = Shared::help_until(
            pool,
            || self.is_done(),
            || self.take_unstarted(),
            || {
                let mut unstarted = self.unstarted.lock();
                if !self.is_done() && unstarted.is_empty() {
                    // Short: jobs of other scopes may enter the pool's queue meanwhile
                    // without a notification here.
                    self.changed.wait_for(&mut unstarted, Duration::from_millis(1));
                }
            },
        );
        if !helped {
            let mut unstarted = self.unstarted.lock();
            while !self.is_done() {
                self.changed.wait(&mut unstarted);
            }
        }
    }
}

/// What one scope's jobs share.
struct ScopeState<E> {
    core: Arc<ScopeCore>,
    failures: Mutex<Failures<E>>,
    /// A `try_scope`'s own token, a child of the pool's shutdown token, which its
    /// first error or panic cancels: the other jobs see it, and queued ones are
    /// skipped. A plain scope's jobs see the pool's token, which their worker's context
    /// already holds.
    fail_fast: Option<CancellationToken>,
}

struct Failures<E> {
    panic: Option<Box<dyn Any + Send>>,
    error: Option<E>,
}

impl<E> ScopeState<E> {
    fn new(fail_fast: Option<CancellationToken>) -> Self {
        ScopeState {
            core: Arc::new(ScopeCore::new()),
            failures: Mutex::new(Failures { panic: None, error: None }),
            fail_fast,
        }
    }

    fn record_panic(&self, payload: Box<dyn Any + Send>) {
        self.failures.lock().panic.get_or_insert(payload);
        self.cancel();
    }

    fn record_error(&self, error: E) {
        self.failures.lock().error.get_or_insert(error);
        self.cancel();
    }

    /// Cancels a `try_scope`'s jobs; nothing for a plain scope.
    fn cancel(&self) {
        if let Some(token) = &self.fail_fast {
            token.cancel();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.fail_fast.as_ref().is_some_and(CancellationToken::is_cancelled)
    }
}

/// A scope's job, as the user wrote it: returning nothing, or a `Result`.
trait ScopedFn<E>: Send {
    fn call(self, ctx: &JobContext<'_>) -> Result<(), E>;
}

/// A job of [`Scope::spawn`].
struct Unit<F>(F);

impl<F: FnOnce(&JobContext<'_>) + Send> ScopedFn<Infallible> for Unit<F> {
    fn call(self, ctx: &JobContext<'_>) -> Result<(), Infallible> {
        (self.0)(ctx);
        Ok(())
    }
}

/// A job of [`TryScope::spawn`].
struct Fallible<F>(F);

impl<E, F: FnOnce(&JobContext<'_>) -> Result<(), E> + Send> ScopedFn<E> for Fallible<F> {
    fn call(self, ctx: &JobContext<'_>) -> Result<(), E> {
        (self.0)(ctx)
    }
}

/// A job in the queue, counted in its scope's `pending` until dropped.
struct ScopedJob<J, E> {
    job: Option<J>,
    state: Arc<ScopeState<E>>,
}

impl<J: ScopedFn<E>, E: Send> Job for ScopedJob<J, E> {
    fn run(mut self, ctx: &JobContext<'_>) -> Outcome {
        let Some(job) = self.job.take() else { return Outcome::Cancelled };
        let state = &*self.state;
        if state.is_cancelled() {
            // An earlier failure: skip the work (dropped, and counted, with `self`).
            drop(job);
            return Outcome::Cancelled;
        }
        let own_token;
        let ctx = match &state.fail_fast {
            Some(token) => {
                own_token = ctx.with_token(token);
                &own_token
            }
            None => ctx,
        };
        match catch_unwind(AssertUnwindSafe(|| job.call(ctx))) {
            Ok(Ok(())) if ctx.is_cancelled() => Outcome::Cancelled,
            Ok(Ok(())) => Outcome::Completed,
            Ok(Err(error)) => {
                state.record_error(error);
                Outcome::Completed
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                state.record_panic(payload);
                Outcome::Panicked(message)
            }
        }
    }
}

impl<J, E> Drop for ScopedJob<J, E> {
    fn drop(&mut self) {
        // The closure and its borrows go first; only then may the scope return.
        if let Some(job) = self.job.take() {
            if catch_unwind(AssertUnwindSafe(|| drop(job))).is_err() {
                tracing::error!("a scoped job's captures panicked while being dropped unrun");
            }
        }
        self.state.core.finish_one();
    }
}

/// What [`Scope`] and [`TryScope`] share.
struct Inner<'scope, 'env, E> {
    pool: &'scope WorkerPool,
    state: Arc<ScopeState<E>>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, E: Send> Inner<'scope, '_, E> {
    fn new(pool: &'scope WorkerPool, fail_fast: bool) -> Self {
        let token = fail_fast.then(|| pool.shared().shutdown_token.child());
        Inner {
            pool,
            state: Arc::new(ScopeState::new(token)),
            scope: PhantomData,
            env: PhantomData,
        }
    }

    fn spawn<J: ScopedFn<E> + 'scope>(&self, job: J) -> Result<(), SubmitError<J>> {
        let core = &self.state.core;
        core.pending.fetch_add(1, Ordering::AcqRel);
        let job = ScopedJob { job: Some(job), state: self.state.clone() };
        // Called once the job is admitted: the job waits in the scope, its ticket in the
        // pool's queue.
        #[allow(unsafe_code)] // the lifetime erasure a scope exists for
        let make = |job: ScopedJob<J, E>, enqueued| {
            // SAFETY: the scope waits until `pending` is zero before it returns, and the
            // job stays counted until it is dropped (see the module docs), so the task
            // is run or dropped while everything `'scope` borrows is alive.
            core.put_unstarted(unsafe { Task::new_scoped(job, enqueued) });
            (Task::ticket(core.clone()), ())
        };
        self.pool.enqueue_helping(job, make).map_err(|rejected| {
            // The rejected job is dropped here, which takes it out of `pending`.
            rejected.map(|mut job| job.job.take().expect("a rejected job still holds its closure"))
        })
    }

    /// Blocks until every job has been run or dropped (see [`ScopeCore::wait`]).
    fn wait(&self) {
        self.state.core.wait(self.pool.shared());
    }
}

/// The jobs of one [`WorkerPool::scope`]: they may borrow anything that outlives the
/// scope, and all of them have finished when the scope returns.
///
/// ```
/// let pool = poolside_workerpool::WorkerPool::new(2)?;
/// let data = vec![1u64, 2, 3, 4];
/// let mut sums = [0u64; 2];
/// pool.scope(|s| {
///     let (left, right) = sums.split_at_mut(1);
///     s.spawn(|_ctx| left[0] = data[..2].iter().sum()).unwrap();
///     s.spawn(|_ctx| right[0] = data[2..].iter().sum()).unwrap();
/// });
/// assert_eq!(sums, [3, 7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Scope<'scope, 'env> {
    inner: Inner<'scope, 'env, Infallible>,
}

impl<'scope> Scope<'scope, '_> {
    /// Queues `job` (blocking while the queue is full). It may borrow data that
    /// outlives the scope; its context's token is cancelled at the pool's shutdown
    /// deadline. A panic in it is re-raised by [`WorkerPool::scope`] once every job
    /// has finished. Hands the job back if the pool is shut down.
    pub fn spawn<F>(&self, job: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) + Send + 'scope,
    {
        self.inner.spawn(Unit(job)).map_err(|rejected| rejected.map(|unit| unit.0))
    }
}

/// The jobs of one [`WorkerPool::try_scope`]: like [`Scope`], and the first job that
/// returns an error (or panics) cancels the others through their tokens; jobs not
/// started yet are skipped.
///
/// ```
/// let pool = poolside_workerpool::WorkerPool::new(2)?;
/// let inputs = ["1", "2", "x", "4"];
/// let result = pool.try_scope(|s| {
///     for input in &inputs {
///         s.spawn(move |_ctx| input.parse::<u32>().map(drop)).unwrap();
///     }
/// });
/// assert!(result.is_err()); // "x" did not parse
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TryScope<'scope, 'env, E> {
    inner: Inner<'scope, 'env, E>,
}

impl<'scope, E: Send> TryScope<'scope, '_, E> {
    /// Queues `job` (blocking while the queue is full). Its first `Err` becomes the
    /// result of [`WorkerPool::try_scope`] and cancels the scope's other jobs. Hands
    /// the job back if the pool is shut down.
    pub fn spawn<F>(&self, job: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce(&JobContext<'_>) -> Result<(), E> + Send + 'scope,
    {
        self.inner.spawn(Fallible(job)).map_err(|rejected| rejected.map(|f| f.0))
    }

    /// Cancels every job of the scope: running ones see their token cancelled, queued
    /// ones are skipped.
    pub fn cancel(&self) {
        self.inner.state.cancel();
    }
}

impl WorkerPool {
    /// Runs `body` with a [`Scope`] whose jobs may borrow local data, and returns once
    /// every job spawned in it has finished — like `std::thread::scope` on the pool's
    /// workers. If a job panicked, the first panic is re-raised here (after all jobs
    /// finished); a panic of `body` itself is re-raised likewise.
    ///
    /// Scopes nest: a job may open a scope of its own; a worker waiting for its scope
    /// runs queued jobs meanwhile (its own pool's, also when the scope is another
    /// pool's), so nesting cannot starve the pool. It runs them oldest first, on top of
    /// its own frames, and each may wait for a scope in turn, so a recursion that opens
    /// a scope per node (a quicksort down to single elements) can pile about as many
    /// jobs on one worker as it has nodes. Each of them starts with at least half a
    /// worker stack free: when less is left, it runs on a fresh stack of the workers'
    /// [`stack_size`](crate::WorkerPoolBuilder::stack_size), so nesting is bounded by
    /// memory, not by the stack.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let pool = poolside_workerpool::WorkerPool::new(2)?;
    /// let counted = AtomicUsize::new(0);
    /// let words = ["a", "bb", "ccc"];
    /// pool.scope(|s| {
    ///     for word in &words {
    ///         let counted = &counted;
    ///         s.spawn(move |_| { counted.fetch_add(word.len(), Ordering::Relaxed); }).unwrap();
    ///     }
    /// });
    /// assert_eq!(counted.into_inner(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope<'env, F, T>(&self, body: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        let scope = Scope { inner: Inner::new(self, false) };
        let state = scope.inner.state.clone();
        let result = catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.inner.wait();
        let panic = state.failures.lock().panic.take();
        match result {
            Err(payload) => resume_unwind(payload),
            Ok(_) if panic.is_some() => resume_unwind(panic.expect("checked")),
            Ok(value) => value,
        }
    }

    /// Like [`scope`](Self::scope) for jobs that can fail: returns the first error a
    /// job returned (after every job finished), and that error cancels the other jobs
    /// through their tokens and skips those not started. Panics propagate as in
    /// `scope`, and also cancel the others.
    ///
    /// ```
    /// let pool = poolside_workerpool::WorkerPool::new(2)?;
    /// let mut lengths = vec![0usize; 3];
    /// let files = ["a.txt", "b.txt", "c.txt"];
    /// let result: Result<(), String> = pool.try_scope(|s| {
    ///     for (file, len) in files.iter().zip(lengths.iter_mut()) {
    ///         s.spawn(move |_ctx| { *len = file.len(); Ok(()) }).unwrap();
    ///     }
    /// });
    /// assert_eq!(result, Ok(()));
    /// assert_eq!(lengths, [5, 5, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_scope<'env, F, T, E>(&self, body: F) -> Result<T, E>
    where
        F: for<'scope> FnOnce(&'scope TryScope<'scope, 'env, E>) -> T,
        E: Send,
    {
        let scope = TryScope { inner: Inner::new(self, true) };
        let state = scope.inner.state.clone();
        let result = catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.inner.wait();
        let (panic, error) = {
            let mut failures = state.failures.lock();
            (failures.panic.take(), failures.error.take())
        };
        match (result, panic, error) {
            (Err(payload), _, _) | (Ok(_), Some(payload), _) => resume_unwind(payload),
            (Ok(_), None, Some(error)) => Err(error),
            (Ok(value), None, None) => Ok(value),
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("pending", &self.inner.state.core.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl<E> fmt::Debug for TryScope<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryScope")
            .field("pending", &self.inner.state.core.pending.load(Ordering::Relaxed))
            .field("cancelled", &self.inner.state.is_cancelled())
            .finish()
    }
}
