//! The result of one spawned job: joined from a thread or awaited from async code.

use crate::cancel::CancellationToken;
use crate::pool::Shared;
use crate::spares;
use parking_lot::{Condvar, Mutex};
use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Why a spawned job produced no value.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The job panicked; the worker caught the panic and kept serving.
    Panicked {
        /// The panic message (`"<non-string panic payload>"` when it was not a string).
        message: String,
    },
    /// The job never ran: the pool shut down past its deadline while the job was still
    /// queued.
    NotStarted,
    /// The job never ran: its handle cancelled it ([`JobHandle::cancel`]) while it was
    /// queued.
    Cancelled,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked { message } => write!(f, "the job panicked: {message}"),
            JobError::NotStarted => f.write_str("the job never ran: the pool shut down first"),
            JobError::Cancelled => f.write_str("the job never ran: it was cancelled first"),
        }
    }
}

impl std::error::Error for JobError {}

/// The one-shot slot a job's result travels through, shared by the job's
/// [`Completer`] and its [`JobHandle`].
///
/// Slots are reused (see [`spares`](crate::spares)): the second of the two to let go
/// clears the slot and keeps it as a spare. Which one is second is decided by `gone`,
/// not by the `Arc`'s count, so it is decided exactly once even when both let go at the
/// same moment; the first may still be dropping its `Arc` then, which only touches the
/// count, and a spare is taken back into use only once its `Arc` is unique again.
pub(crate) struct ResultSlot<R> {
    state: Mutex<SlotState<R>>,
    ready: Condvar,
    /// The job's own cancellation token, cancelled through the handle.
    token: CancellationToken,
    /// How many of the completer and the handle have let go (0, 1 or 2).
    gone: AtomicU8,
    /// `Self::recycle`, chosen where `R: Send + 'static` is known.
    recycle: fn(Arc<Self>),
}

struct SlotState<R> {
    result: Option<Result<R, JobError>>,
    /// Whether the job delivered its result (it may have been taken since).
    done: bool,
    waker: Option<Waker>,
}

impl<R: Send + 'static> ResultSlot<R> {
    /// A fresh slot: a spare one if there is one, else a new one.
    pub(crate) fn new() -> Arc<Self> {
        // A few tries: a spare whose other side is still dropping its `Arc` goes back
        // below the others, to be taken once that is done.
        for _ in 0..4 {
            let Some(spare) = spares::take(TypeId::of::<R>()) else { break };
            let Ok(mut slot) = spare.downcast::<Self>() else { continue };
            let Some(unique) = Arc::get_mut(&mut slot) else {
                spares::defer(TypeId::of::<R>(), slot);
                continue;
            };
            *unique.gone.get_mut() = 0;
            if !unique.token.is_pristine() {
                // Cancelled, or linked below a parent token.
                unique.token = CancellationToken::new();
            }
            return slot;
        }
        Arc::new(ResultSlot {
            state: Mutex::new(SlotState { result: None, done: false, waker: None }),
            ready: Condvar::new(),
            token: CancellationToken::new(),
            gone: AtomicU8::new(0),
            recycle: Self::recycle,
        })
    }

    /// Called by the completer and by the handle as each lets go of `slot`: the second
    /// clears it (the result is dropped here, not when the slot is reused) and keeps it
    /// as a spare.
    fn recycle(slot: Arc<Self>) {
        // AcqRel: the second sees everything the first did to the slot.
        if slot.gone.fetch_add(1, Ordering::AcqRel) == 0 {
            return;
        }
        let (result, waker) = {
            let mut state = slot.state.lock();
            state.done = false;
            (state.result.take(), state.waker.take())
        };
        // Dropped outside the lock, and caught: a result's `Drop` is user code, and this
        // may run on a worker, which must keep serving.
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop((result, waker));
        }));
        match dropped {
            Ok(()) => spares::put(TypeId::of::<R>(), slot),
            Err(payload) => tracing::error!(
                panic = %panic_message(&*payload),
                "dropping a job's unread result panicked; the panic was caught"
            ),
        }
    }
}

impl<R> ResultSlot<R> {
    /// Stores the result and wakes whoever waits (a joining thread or an async task).
    pub(crate) fn complete(&self, result: Result<R, JobError>) {
        let waker = {
            let mut state = self.state.lock();
            if state.done {
                return;
            }
            state.result = Some(result);
            state.done = true;
            self.ready.notify_all();
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Completes the slot with [`JobError::NotStarted`] if the job is dropped without
/// having produced a result, so a handle can never wait forever.
pub(crate) struct Completer<R> {
    slot: Option<Arc<ResultSlot<R>>>,
}

impl<R> Completer<R> {
    pub(crate) fn new(slot: Arc<ResultSlot<R>>) -> Self {
        Completer { slot: Some(slot) }
    }

    /// The job's own token.
    pub(crate) fn token(&self) -> &CancellationToken {
        match &self.slot {
            Some(slot) => &slot.token,
            None => unreachable!("a completer holds its slot until it completes"),
        }
    }

    /// Delivers the result; recycles the slot if the handle is already gone.
    pub(crate) fn complete(mut self, result: Result<R, JobError>) {
        if let Some(slot) = self.slot.take() {
            slot.complete(result);
            let recycle = slot.recycle;
            recycle(slot);
        }
    }
}

impl<R> Drop for Completer<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.complete(Err(JobError::NotStarted));
            let recycle = slot.recycle;
            recycle(slot);
        }
    }
}

/// A handle to a job started with [`WorkerPool::spawn`](crate::WorkerPool::spawn).
///
/// [`join`](Self::join) blocks the calling thread; the handle is also a [`Future`], so
/// async code can `.await` blocking work without tying up its runtime's threads.
///
/// [`cancel`](Self::cancel) cancels the job's token: a job still queued is then never
/// started (its result is [`JobError::Cancelled`], the pool counts it as cancelled), a
/// running one sees [`JobContext::is_cancelled`](crate::JobContext::is_cancelled).
/// Dropping the handle detaches the job — it still runs — unless the handle was made
/// with [`cancel_on_drop`](Self::cancel_on_drop), which cancels it instead, as a
/// client that disconnects should.
///
/// ```
/// let pool = poolside_workerpool::WorkerPool::builder().workers(2).build()?;
/// let handle = pool.spawn(|_ctx| 6 * 7)?;
/// assert_eq!(handle.join(), Ok(42));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a JobHandle detaches the job; join or await it for the result"]
pub struct JobHandle<R> {
    /// `None` only while the handle is dropped.
    slot: Option<Arc<ResultSlot<R>>>,
    cancel_on_drop: bool,
}

/// [`JobHandle::join_timeout`] ran out of time; the handle is returned so the caller
/// can keep waiting.
pub struct JoinTimeout<R>(pub JobHandle<R>);

impl<R> fmt::Debug for JoinTimeout<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinTimeout(..)")
    }
}

impl<R> fmt::Display for JoinTimeout<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the job did not finish in time")
    }
}

impl<R> std::error::Error for JoinTimeout<R> {}

impl<R: Send + 'static> JobHandle<R> {
    pub(crate) fn new(slot: Arc<ResultSlot<R>>) -> Self {
        JobHandle { slot: Some(slot), cancel_on_drop: false }
    }
}

impl<R> JobHandle<R> {
    fn slot(&self) -> &ResultSlot<R> {
        match &self.slot {
            Some(slot) => slot,
            None => unreachable!("the slot is taken only in drop"),
        }
    }

    /// Asks the job to stop: a queued job is never started and its result is
    /// [`JobError::Cancelled`]; a running job sees its token cancelled (it decides when
    /// to return, and its value is still delivered). Idempotent; does nothing to a job
    /// that has finished.
    ///
    /// ```
    /// use poolside_workerpool::{JobError, WorkerPool};
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).build()?;
    /// let (release, blocker) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.spawn(move |_| blocker.recv().is_ok())?; // occupies the worker
    /// let queued = pool.spawn(|_| "never runs")?;
    /// queued.cancel();
    /// release.send(()).unwrap();
    /// assert_eq!(queued.join(), Err(JobError::Cancelled));
    /// assert_eq!(busy.join(), Ok(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) {
        self.slot().token.cancel();
    }

    /// This handle, made to [`cancel`](Self::cancel) its job when it is dropped
    /// unjoined: for work whose result nobody will read any more (a request whose
    /// client went away, an `.await` that was aborted).
    ///
    /// ```
    /// use poolside_workerpool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).build()?;
    /// let handle = pool.spawn(|ctx| ctx.wait_cancelled(Duration::from_secs(60)))?.cancel_on_drop();
    /// drop(handle); // the job never starts, or sees its token cancelled and returns
    /// // So the pool is idle long before the job's 60 s would have passed.
    /// pool.join_timeout(Duration::from_secs(30))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_on_drop(mut self) -> Self {
        self.cancel_on_drop = true;
        self
    }

    /// Blocks until the job finishes; returns its value, or why there is none.
    ///
    /// Called inside a job (on a worker thread of any pool), it runs queued jobs of
    /// that worker's pool while it waits, as a wait for a scope does: the job joined
    /// may be queued behind them, and a worker that only blocked could leave nobody
    /// to run it. So jobs that spawn jobs and join them (a fan-out, a recursion, a
    /// [`Group`](crate::Group) waited for inside a job) cannot deadlock the pool,
    /// whatever its size. [`join_timeout`](Self::join_timeout) only blocks: it returns
    /// by its deadline, not after a job it would have run. As with a scope's wait (and
    /// rayon's `join`), a job should not hold a lock while it joins: a job run
    /// meanwhile on the same thread that takes the same lock would wait for itself.
    ///
    /// ```
    /// use poolside_workerpool::WorkerPool;
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(WorkerPool::builder().workers(1).build()?);
    /// let inner = pool.clone();
    /// // The one worker joins a job queued behind it: it runs that job itself.
    /// let outer = pool.spawn(move |_| inner.spawn(|_| 21).unwrap().join().unwrap() * 2)?;
    /// assert_eq!(outer.join(), Ok(42));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> Result<R, JobError> {
        let slot = self.slot();
        Shared::help_any_until(
            || slot.state.lock().result.is_some(),
            || {
                let mut state = slot.state.lock();
                if state.result.is_none() {
                    // Short: jobs may be queued meanwhile without a notification here.
                    slot.ready.wait_for(&mut state, Duration::from_millis(1));
                }
            },
        );
        let mut state = slot.state.lock();
        loop {
            if let Some(result) = state.result.take() {
                return result;
            }
            slot.ready.wait(&mut state);
        }
    }

    /// Blocks for at most `timeout`. On time-out the handle comes back inside
    /// [`JoinTimeout`] so the caller can wait again or drop it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = poolside_workerpool::WorkerPool::builder().workers(1).build()?;
    /// let slow = pool.spawn(|ctx| { ctx.token().wait_timeout(Duration::from_millis(200)); 1 })?;
    /// let slow = slow.join_timeout(Duration::from_millis(10)).unwrap_err().0;
    /// # drop(slow);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<R, JobError>, JoinTimeout<R>> {
        let deadline = Instant::now().checked_add(timeout);
        {
            let mut state = self.slot().state.lock();
            loop {
                if let Some(result) = state.result.take() {
                    return Ok(result);
                }
                match deadline {
                    Some(deadline) => {
                        if self.slot().ready.wait_until(&mut state, deadline).timed_out()
                            && state.result.is_none()
                        {
                            break;
                        }
                    }
                    None => self.slot().ready.wait(&mut state),
                }
            }
        }
        Err(JoinTimeout(self))
    }

    /// Whether the job has finished (its result is waiting).
    pub fn is_finished(&self) -> bool {
        self.slot().state.lock().done
    }
}

impl<R> Future for JobHandle<R> {
    type Output = Result<R, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot().state.lock();
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                match &mut state.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<R> Drop for JobHandle<R> {
    fn drop(&mut self) {
        if self.cancel_on_drop && !self.is_finished() {
            self.cancel();
        }
        if let Some(slot) = self.slot.take() {
            let recycle = slot.recycle;
            recycle(slot);
        }
    }
}

impl<R> fmt::Debug for JobHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("finished", &self.is_finished()).finish()
    }
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic payload>")
    }
}

#[cfg(test)]
mod tests {
    use super::{Completer, JobError, JobHandle, ResultSlot};
    use std::sync::Arc;

    #[test]
    fn a_joined_slot_is_reused_with_a_clean_state() {
        let slot = ResultSlot::<u32>::new();
        let first = Arc::as_ptr(&slot);
        let handle = JobHandle::new(slot.clone());
        Completer::new(slot).complete(Ok(7));
        assert_eq!(handle.join(), Ok(7));
        // The next spawn on this thread gets the same slot back, empty.
        let again = ResultSlot::<u32>::new();
        assert_eq!(Arc::as_ptr(&again), first);
        let handle = JobHandle::new(again.clone());
        assert!(!handle.is_finished());
        assert!(!again.token.is_cancelled());
        drop(Completer::new(again));
        assert_eq!(handle.join(), Err(JobError::NotStarted));
    }

    #[test]
    fn a_cancelled_or_shared_slot_gets_a_fresh_token_and_others_types_their_own() {
        let slot = ResultSlot::<String>::new();
        let handle = JobHandle::new(slot.clone());
        handle.cancel();
        drop(Completer::new(slot));
        drop(handle);
        let again = ResultSlot::<String>::new();
        assert!(!again.token.is_cancelled(), "a reused slot never starts cancelled");
        // A slot still held by its job is not reused.
        let held = ResultSlot::<u8>::new();
        let completer = Completer::new(held.clone());
        drop(JobHandle::new(held.clone()));
        let other = ResultSlot::<u8>::new();
        assert!(!Arc::ptr_eq(&held, &other));
        drop(completer);
    }
}
