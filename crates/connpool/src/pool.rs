//! The pool: shared state, FIFO handoff to waiters, checkout and return.
//!
//! Idle connections live in a striped store (`idle.rs`): per-thread home stripes, each
//! behind its own small mutex on its own cache line. While nobody waits, `get` takes
//! from the caller's home stripe (else from another) and a return puts back into the
//! home stripe, without touching the pool lock. A `parking_lot` mutex guards only the
//! waiter queue and the slot counts. The two meet with a store-then-load handshake
//! (both sides `SeqCst`): a caller about to wait first announces itself in `waiting`,
//! then polls every stripe once more; a returner pushes, then reads `waiting` again
//! and, if someone announced, feeds the idle connections to the waiters under the
//! lock. One of the two always sees the other, so no wake-up is lost (the argument is
//! spelled out at `Shared::acquire`). With waiters present, a return hands its
//! connection straight to the oldest one, so nobody overtakes the line. Anything in flight between two owners (a grant
//! sent to a waiter, a connection being checked, a slot being dialled) sits in a
//! value whose `Drop` gives it back, so a dropped future at any await point leaks
//! nothing and swallows no wake-up.

use crate::backoff::{Backoff, Gate};
use crate::config::{Builder, Config, WaitPolicy};
use crate::error::{AddError, BuildError, CloseTimeout, GetError};
use crate::guard::PooledConn;
use crate::hooks::{self, Hooks};
use crate::idle::Stripes;
use crate::janitor::{self, Signal};
use crate::manager::Manager;
pub(crate) use crate::meta::CloseReason;
use crate::meta::ConnMeta;
use crate::stats::{Counters, Gauges};
use crate::unwind::{self, Panicked};
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use poolside_core::{ConnEvent, Events, PoolError, Timing};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// A connection with the times the pool needs to judge it.
pub(crate) struct Conn<C> {
    pub(crate) raw: C,
    pub(crate) created: Instant,
    /// When it was last checked out, or returned when the pool has lifetimes to
    /// enforce. Reading the clock on every return would double the clock reads of
    /// a get + drop (a third of its cost where `clock_gettime` is slow), so pools
    /// without idle or lifetime limits stamp only the checkout; the health-check
    /// window is then measured from the checkout, which can only add checks.
    pub(crate) last_used: Instant,
    /// Unique within the pool (see [`ConnMeta::id`]).
    pub(crate) id: u64,
    /// Times handed to a caller; bumped by the guard that receives it.
    pub(crate) checkouts: u64,
}

impl<C> Conn<C> {
    pub(crate) fn meta(&self) -> ConnMeta {
        ConnMeta {
            id: self.id,
            created_at: self.created,
            last_used: self.last_used,
            checkouts: self.checkouts,
        }
    }
}

/// What a waiter receives: a live connection, or the right to open one.
pub(crate) enum Grant<C> {
    Conn(Conn<C>),
    Slot,
}

struct Waiter<C> {
    id: u64,
    tx: oneshot::Sender<Grant<C>>,
}

/// The pool lock, held.
type Locked<'a, C> = MutexGuard<'a, State<C>>;

/// A grant no live waiter took, with the lock re-taken; `None` once delivered.
type Undelivered<'a, C> = Option<(Locked<'a, C>, Grant<C>)>;

pub(crate) struct State<C> {
    waiters: VecDeque<Waiter<C>>,
    /// Slots taken: idle + in use + being opened or checked.
    open: usize,
    max_size: usize,
    closed: bool,
    next_waiter: u64,
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config,
    /// Idle connections, striped by thread, each stripe used last-in first-out.
    pub(crate) idle: Stripes<Conn<M::Connection>>,
    state: Mutex<State<M::Connection>>,
    /// Set (under the lock) when the pool closes, read by every get and return: on a
    /// line of its own, away from the pool lock that waiters write.
    closed: CachePadded<AtomicBool>,
    /// Mirrors of the locked state for lock-free readers, plus the counters.
    pub(crate) gauges: Gauges,
    pub(crate) counters: Counters,
    pub(crate) events: Events,
    pub(crate) signal: Arc<Signal>,
    /// Notified whenever a slot is given up after close, for `close_graceful`.
    drained: Notify,
    /// The dial backoff shared by every caller and the janitor.
    pub(crate) backoff: Backoff,
    /// The lifecycle hooks; each unset one is a `None` checked where it would run.
    pub(crate) hooks: Hooks<M::Connection>,
    /// The id of the next connection opened or adopted.
    next_id: AtomicU64,
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        self.signal.pool_gone();
    }
}

/// Sends `grant` to the oldest waiter whose future is still alive, under the lock;
/// gives it back when there is none. Waiters whose futures were dropped are skipped
/// (their `Queued` guard removes them, but may lose the race with this pop).
fn send_to_oldest<C>(waiters: &mut VecDeque<Waiter<C>>, mut grant: Grant<C>) -> Option<Grant<C>> {
    while let Some(waiter) = waiters.pop_front() {
        match waiter.tx.send(grant) {
            Ok(()) => return None,
            Err(back) => grant = back,
        }
    }
    Some(grant)
}

/// Whether this thread runs a multi-thread tokio runtime (another worker may return a
/// connection while this one spins).
fn multi_threaded() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// What a caller found when it asked for a connection.
enum Acquire<C> {
    /// An idle connection that needs neither replacing nor a health check: done.
    Fresh(Conn<C>),
    Ready(Grant<C>),
    Queued(u64, oneshot::Receiver<Grant<C>>),
    Exhausted,
    Closed,
}

impl<M: Manager> Shared<M> {
    /// Mirrors the locked state for lock-free readers (`waiting` with `SeqCst`: it is
    /// one half of the idle hand-shake).
    fn publish(&self, st: &State<M::Connection>) {
        self.gauges.publish(st.open, st.max_size, st.waiters.len());
    }

    fn lock(&self) -> Locked<'_, M::Connection> {
        self.state.lock()
    }

    /// Whether a connection is past its lifetime or idle limit at `now`.
    pub(crate) fn expired(&self, conn: &Conn<M::Connection>, now: Instant) -> Option<CloseReason> {
        if self.config.max_lifetime.is_some_and(|l| now.duration_since(conn.created) >= l) {
            Some(CloseReason::Lifetime)
        } else if self.config.max_idle_time.is_some_and(|l| now.duration_since(conn.last_used) >= l)
        {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }

    /// Within its limits and used within the health-check window.
    fn is_fresh(&self, conn: &Conn<M::Connection>, now: Instant) -> bool {
        now.duration_since(conn.last_used) < self.config.health_check_after
            && self.expired(conn, now).is_none()
    }

    /// The lock-free common case: nobody waits and an idle connection is there.
    /// `Some(Fresh)` needs no more work; `Some(Ready)` must be checked or replaced.
    fn take_idle(&self, now: Instant) -> Option<Acquire<M::Connection>> {
        if self.gauges.waiting() != 0 || self.closed.load(Ordering::Relaxed) {
            return None;
        }
        let mut conn = self.idle.pop()?;
        self.note_idle_taken();
        if self.is_fresh(&conn, now)
            && !self.judged_broken(&mut conn)
            && self.hooks.before_acquire.is_none()
        {
            conn.last_used = now;
            self.counters.acquires.bump();
            Some(Acquire::Fresh(conn))
        } else {
            Some(Acquire::Ready(Grant::Conn(conn)))
        }
    }

    /// `Manager::is_broken`, where a panic counts as broken.
    fn judged_broken(&self, conn: &mut Conn<M::Connection>) -> bool {
        unwind::guard("is_broken", || self.manager.is_broken(&mut conn.raw)).unwrap_or(true)
    }

    /// A connection left the idle stripes (or a caller found none): if that took the
    /// pool below `min_idle`, the janitor refills it now rather than at its next tick.
    fn note_idle_taken(&self) {
        let min_idle = self.config.min_idle;
        if min_idle != 0 && self.idle.len() < min_idle {
            self.signal.refill();
        }
    }

    /// With every slot taken and nobody waiting, on a runtime with several worker
    /// threads, looks for a returned connection for about a microsecond before taking
    /// the lock and queueing.
    ///
    /// Why: when connections are held briefly and there are more callers than
    /// connections across many cores, queueing turns every later return into a locked
    /// hand-off and a wake-up of a parked task on another core, and the line, once
    /// formed, sustains itself; measured on 16 cores (pool 8, 64 tasks) that capped
    /// the pool at deadpool's speed. A connection returned within the spin goes to
    /// whoever finds it, as it would a moment later anyway. Nobody is overtaken: the
    /// spin stops as soon as anyone waits (`take_idle` then returns nothing), so the
    /// first-come-first-served line is untouched. A current-thread runtime cannot see
    /// a return while it spins, so it never spins.
    #[cold]
    fn spin_for_idle(&self, now: Instant) -> Option<Acquire<M::Connection>> {
        const ROUNDS: u32 = 6;
        if !self.gauges.at_capacity() || self.idle.stripe_count() == 1 || !multi_threaded() {
            return None;
        }
        for round in 0..ROUNDS {
            for _ in 0..(1u32 << round) {
                std::hint::spin_loop();
            }
            if self.gauges.waiting() != 0 {
                return None;
            }
            if let Some(found) = self.take_idle(now) {
                return Some(found);
            }
        }
        None
    }

    /// Takes an idle connection or a free slot, or queues (when allowed).
    fn acquire(&self, may_queue: bool, now: Instant) -> Acquire<M::Connection> {
        if let Some(found) = self.take_idle(now).or_else(|| self.spin_for_idle(now)) {
            return found;
        }
        let mut st = self.lock();
        if st.closed {
            return Acquire::Closed;
        }
        if st.waiters.is_empty() {
            // Announce, then look again: a returner that pushed before seeing us
            // is caught here, one that pushes after sees `waiting` and feeds us.
            //
            // Why the stripes keep this true: a returner stores its stripe's length
            // under the stripe lock, then fences (`SeqCst`) and reads `waiting`; we
            // store `waiting`, fence, then read every stripe's length and lock the
            // non-empty ones (`Stripes::pop` returns `None` only after that full
            // pass). Store, fence, load on both sides: the two fences are ordered
            // one way or the other, so either our read of that stripe's length sees
            // the push or the returner's read of `waiting` sees us (a length another
            // caller lowered meanwhile means that caller took the connection, and
            // will return it through this same hand-shake). The stripe locks only
            // add ordering; no length is read before the fence it pairs with.
            self.gauges.announce_waiter();
            fence(Ordering::SeqCst);
            if let Some(conn) = self.idle.pop() {
                self.publish(&st);
                drop(st);
                self.note_idle_taken();
                return Acquire::Ready(Grant::Conn(conn));
            }
            if st.open < st.max_size {
                st.open += 1;
                self.publish(&st);
                drop(st);
                self.note_idle_taken();
                return Acquire::Ready(Grant::Slot);
            }
        }
        self.gauges.bump_exhaustions();
        if !may_queue {
            self.publish(&st);
            return Acquire::Exhausted;
        }
        let id = st.next_waiter;
        st.next_waiter += 1;
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(Waiter { id, tx });
        self.feed_waiters(&mut st);
        Acquire::Queued(id, rx)
    }

    /// Under the lock: moves idle connections to waiters, oldest first (a returner
    /// may have pushed one just as they queued).
    fn feed_waiters(&self, st: &mut State<M::Connection>) {
        // This caller's half of the hand-shake: `waiting` is stored before the idle
        // queue is polled, so a concurrent returner either is seen here or sees us.
        self.publish(st);
        fence(Ordering::SeqCst);
        while !st.waiters.is_empty() {
            let Some(conn) = self.idle.pop() else { break };
            if let Some(Grant::Conn(unsent)) = send_to_oldest(&mut st.waiters, Grant::Conn(conn)) {
                self.idle.push(unsent);
            }
        }
        self.publish(st);
    }

    /// After a lock-free push: if a caller announced itself meanwhile, or the pool
    /// closed, settle the idle stripes under the lock.
    fn after_push(&self) {
        fence(Ordering::SeqCst);
        if self.gauges.waiting() == 0
            && !self.closed.load(Ordering::SeqCst)
            && !self.gauges.over_size()
        {
            return;
        }
        let mut st = self.lock();
        if st.closed || st.open > st.max_size {
            // Closed or shrunk while the connection went in: take back what must go.
            let mut doomed = Vec::new();
            while st.closed || st.open - doomed.len() > st.max_size {
                let Some(conn) = self.idle.pop() else { break };
                doomed.push(conn);
            }
            st.open -= doomed.len();
            let drained = st.closed && st.open == 0;
            self.publish(&st);
            drop(st);
            let reason =
                if self.is_closed() { CloseReason::PoolClosed } else { CloseReason::Resize };
            for conn in doomed {
                self.close_conn(conn, reason);
            }
            if drained {
                self.drained.notify_waiters();
            }
        } else {
            self.feed_waiters(&mut st);
        }
    }

    /// Puts a checked-out, healthy connection back: to the oldest live waiter, else
    /// into the idle stripes. `counted` is false for a fresh connection that never
    /// went to a caller.
    pub(crate) fn put_back(&self, conn: Conn<M::Connection>, counted: bool) {
        if counted {
            self.counters.releases.bump();
        }
        if self.closed.load(Ordering::Acquire) || self.gauges.over_size() {
            let reason =
                if self.is_closed() { CloseReason::PoolClosed } else { CloseReason::Resize };
            self.close_conn(conn, reason);
            self.release_slot();
            return;
        }
        let conn = if self.gauges.waiting() == 0 {
            conn
        } else {
            let st = self.lock();
            match self.hand_to_oldest(st, Grant::Conn(conn)) {
                None => return,
                Some((st, Grant::Conn(conn))) => {
                    drop(st);
                    conn
                }
                Some((st, Grant::Slot)) => {
                    drop(st);
                    return self.release_slot();
                }
            }
        };
        self.idle.push(conn);
        self.after_push();
    }

    /// Sends `grant` to the oldest waiter whose future is still alive, with the lock
    /// released during the send (it wakes a task, which may unpark a worker thread:
    /// not something to do while others spin on the lock). Returns the re-taken lock
    /// and the grant when no live waiter is left.
    fn hand_to_oldest<'a>(
        &'a self,
        mut st: Locked<'a, M::Connection>,
        mut grant: Grant<M::Connection>,
    ) -> Undelivered<'a, M::Connection> {
        loop {
            let Some(waiter) = st.waiters.pop_front() else { return Some((st, grant)) };
            self.publish(&st);
            drop(st);
            match waiter.tx.send(grant) {
                Ok(()) => return None,
                // Its future was dropped after we popped it: try the next one.
                Err(back) => {
                    grant = back;
                    st = self.lock();
                }
            }
        }
    }

    /// Gives up one slot (its connection, if any, is already closed): hands it to the
    /// oldest live waiter, else frees it.
    pub(crate) fn release_slot(&self) {
        let mut st = self.lock();
        if !st.closed && st.open <= st.max_size {
            match self.hand_to_oldest(st, Grant::Slot) {
                None => return,
                Some((again, _slot)) => st = again,
            }
        }
        st.open -= 1;
        let below_min = !st.closed && self.idle.len() < self.config.min_idle;
        let drained = st.closed && st.open == 0;
        self.publish(&st);
        drop(st);
        if below_min {
            self.signal.refill();
        }
        if drained {
            self.drained.notify_waiters();
        }
    }

    /// Whether a connection opened on a slot may be handed out (the pool is open).
    fn admit(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// Closes a connection (its `Drop` is user code: a panic there is caught and
    /// logged, so the caller still gives the slot back). On a thread that is already
    /// unwinding, a second panic would abort the process whatever catches it, so the
    /// connection is dropped by a task on the current runtime instead (or, with no
    /// runtime, not dropped at all: leaked and logged).
    pub(crate) fn close_conn(&self, conn: Conn<M::Connection>, reason: CloseReason) {
        self.counters.count_close(reason);
        tracing::debug!(?reason, id = conn.id, age = ?conn.created.elapsed(), "poolside-connpool: closing a connection");
        let meta = conn.meta();
        if self.events.is_enabled() {
            let age = meta.created_at.elapsed();
            self.events.connection(ConnEvent::Close { id: meta.id, age, reason: reason.name() });
        }
        if !std::thread::panicking() {
            unwind::drop_guarded("dropping a connection", conn);
            hooks::closed(&self.hooks.on_close, meta, reason);
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let on_close = self.hooks.on_close.clone();
            runtime.spawn(async move {
                unwind::drop_guarded("dropping a connection", conn);
                hooks::closed(&on_close, meta, reason);
            });
        } else {
            tracing::error!(
                "poolside-connpool: a connection closed while its thread panics, outside a runtime, is leaked rather than dropped"
            );
            std::mem::forget(conn);
        }
    }

    /// One dial on a slot the caller holds, bounded by `limit`, reported to the backoff
    /// (`generation` and `probe` come from its gate).
    async fn dial(
        &self,
        generation: u64,
        probe: bool,
        limit: Duration,
    ) -> Result<Conn<M::Connection>, GetError<M::Error>> {
        self.counters.bump(&self.counters.dials);
        // A probe whose future is dropped mid-dial must let another caller probe.
        let mut abandoned = AbandonedProbe { backoff: &self.backoff, armed: probe };
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(limit, unwind::guard_future("connect", || self.manager.connect()))
                .await;
        self.events.record(Timing::Dial, started.elapsed());
        abandoned.armed = false;
        match outcome {
            Ok(Ok(Ok(raw))) => {
                let conn = self.new_conn(raw);
                let Some(hook) = &self.hooks.after_connect else {
                    self.backoff.succeeded(probe);
                    self.events
                        .connection(ConnEvent::Connect { id: conn.id, took: started.elapsed() });
                    return Ok(conn);
                };
                // The hook is part of the dial: its own time comes out of the same
                // limit, and the probe stays armed until it has answered. Should this
                // future be dropped meanwhile, `Preparing` closes the connection.
                abandoned.armed = probe;
                let left = limit.saturating_sub(started.elapsed());
                let mut preparing = Preparing { shared: self, conn: Some(conn) };
                let conn_ref = preparing.conn.as_mut().expect("just set");
                let meta = conn_ref.meta();
                let verdict =
                    hooks::run("after_connect", hook, &mut conn_ref.raw, meta, left).await;
                abandoned.armed = false;
                let conn = preparing.conn.take().expect("taken only here");
                match verdict {
                    Ok(()) => {
                        self.backoff.succeeded(probe);
                        self.events.connection(ConnEvent::Connect {
                            id: conn.id,
                            took: started.elapsed(),
                        });
                        Ok(conn)
                    }
                    Err(refusal) => {
                        self.close_conn(conn, CloseReason::Hook);
                        self.counters.bump(&self.counters.dial_errors);
                        let (error, text) = match refusal {
                            hooks::Refusal::Panicked(Panicked { during, message }) => {
                                let text = format!("after_connect panicked: {message}");
                                (GetError::Panicked { during, message }, text)
                            }
                            hooks::Refusal::Failed(error) => {
                                let text = format!("after_connect failed: {error}");
                                (GetError::Hook { during: "after_connect", error }, text)
                            }
                            // `after_connect` returns `()`, so it never declines; a
                            // refusal without an error is reported like a timeout.
                            refusal => {
                                let text = match refusal {
                                    hooks::Refusal::TimedOut(after) => {
                                        format!("after_connect timed out after {after:?}")
                                    }
                                    _ => "after_connect refused the connection".to_owned(),
                                };
                                let error = GetError::Hook {
                                    during: "after_connect",
                                    error: text.clone().into(),
                                };
                                (error, text)
                            }
                        };
                        self.backoff.failed(generation, probe, text);
                        Err(error)
                    }
                }
            }
            Ok(Ok(Err(e))) => {
                self.counters.bump(&self.counters.dial_errors);
                tracing::warn!(error = %e, "poolside-connpool: opening a connection failed");
                self.backoff.failed(generation, probe, e.to_string());
                Err(GetError::Connect(e))
            }
            Ok(Err(Panicked { during, message })) => {
                // A connect that panics fails like one that errs: it backs off too, so a
                // manager that always panics is not called in a tight loop.
                self.counters.bump(&self.counters.dial_errors);
                self.backoff.failed(generation, probe, format!("connect panicked: {message}"));
                Err(GetError::Panicked { during, message })
            }
            Err(_) => {
                self.counters.bump(&self.counters.dial_errors);
                let after = self.config.connect_timeout;
                if limit < after {
                    // Cut short by the caller's own deadline: no verdict on the server,
                    // so no backoff; a probe lets the next caller try.
                    if probe {
                        self.backoff.abandon_probe();
                    }
                } else {
                    tracing::warn!(?after, "poolside-connpool: opening a connection timed out");
                    self.backoff.failed(
                        generation,
                        probe,
                        format!("connect timed out after {after:?}"),
                    );
                }
                Err(GetError::ConnectTimeout { after })
            }
        }
    }

    /// Wraps a connection just opened (or adopted) with a fresh id.
    fn new_conn(&self, raw: M::Connection) -> Conn<M::Connection> {
        let now = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Conn { raw, created: now, last_used: now, id, checkouts: 0 }
    }

    /// Runs `before_acquire` (when set) on the connection `pending` holds; `false`
    /// when the hook refused it (the connection then stays in `pending`, for the
    /// caller to close). Dropped meanwhile, `pending` closes it.
    async fn approve_checkout(&self, pending: &mut Pending<'_, M>) -> bool {
        let Some(hook) = &self.hooks.before_acquire else { return true };
        let Some(conn) = pending.conn.as_mut() else { return false };
        let meta = conn.meta();
        hooks::run("before_acquire", hook, &mut conn.raw, meta, self.config.connect_timeout)
            .await
            .is_ok()
    }

    /// Opens a connection for a caller holding a slot: dials, and after a failure
    /// retries as the shared backoff allows, until `connect_retries` or the connect
    /// timeout (from the first attempt) runs out. A caller that may not wait
    /// (`may_wait` false) makes at most one attempt and never waits for the backoff.
    ///
    /// `wait` is the caller's own deadline (its wait policy), which cuts the dialling
    /// short: then the last dial's error is reported, or `TimedOut` if none failed.
    async fn dial_for_caller(
        &self,
        may_wait: bool,
        wait: Option<WaitLimit>,
    ) -> Result<Conn<M::Connection>, GetError<M::Error>> {
        let limit = self.config.connect_timeout;
        let connect_deadline = Instant::now().checked_add(limit);
        let deadline = match (connect_deadline, wait.and_then(|w| w.at)) {
            (Some(c), Some(w)) => Some(c.min(w)),
            (c, w) => c.or(w),
        };
        let caller_timed_out = |last: Option<GetError<M::Error>>, attempts: u32| match last {
            Some(_) => named(attempts, last),
            None => GetError::Pool(PoolError::TimedOut { waited: wait.map_or(limit, |w| w.limit) }),
        };
        let max_attempts = if may_wait { self.config.connect_retries.saturating_add(1) } else { 1 };
        let mut attempts = 0u32;
        let mut last: Option<GetError<M::Error>> = None;
        loop {
            if self.is_closed() {
                return Err(PoolError::Closed.into());
            }
            let settled = self.backoff.settled();
            let mut settled = std::pin::pin!(settled);
            settled.as_mut().enable();
            let now = Instant::now();
            let waited_for = match self.backoff.gate(now) {
                Gate::Dial { generation, probe } => {
                    attempts += 1;
                    let left = deadline.map_or(limit, |d| d.saturating_duration_since(now));
                    match self.dial(generation, probe, left).await {
                        Ok(conn) => return Ok(conn),
                        Err(e @ GetError::Panicked { .. }) => return Err(e),
                        // Cut short by the caller's deadline, not the connect timeout.
                        Err(GetError::ConnectTimeout { .. })
                            if wait.and_then(|w| w.at).is_some_and(|w| Instant::now() >= w)
                                && connect_deadline.is_none_or(|c| Instant::now() < c) =>
                        {
                            return Err(caller_timed_out(last, attempts));
                        }
                        Err(e) => last = Some(e),
                    }
                    let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
                    if attempts >= max_attempts || out_of_time {
                        return Err(named(attempts, last));
                    }
                    continue;
                }
                Gate::Wait { until, failures, last_error } => {
                    let beyond_deadline = match (until, deadline) {
                        (Some(until), Some(deadline)) => until > deadline,
                        _ => false,
                    };
                    if !may_wait || beyond_deadline {
                        return Err(match last {
                            Some(_) => named(attempts, last),
                            None => GetError::Backoff {
                                failures,
                                retry_in: until.map(|u| u.saturating_duration_since(now)),
                                last_error,
                            },
                        });
                    }
                    (until, failures, last_error)
                }
            };
            let (until, failures, last_error) = waited_for;
            let wake = match (until, deadline) {
                (Some(u), Some(d)) => Some(u.min(d)),
                (u, d) => u.or(d),
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        () = settled => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => settled.await,
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(match last {
                    Some(_) => named(attempts, last),
                    None if wait.and_then(|w| w.at).is_some_and(|w| Instant::now() >= w) => {
                        caller_timed_out(None, attempts)
                    }
                    None => GetError::Backoff { failures, retry_in: None, last_error },
                });
            }
        }
    }

    /// Opens one connection for the idle stripes if the pool is below `target` idle
    /// connections and has a free slot. Returns whether it added one. Never waits
    /// for the dial backoff: it reports [`GetError::Backoff`] instead.
    pub(crate) async fn warm_one(&self, target: usize) -> Result<bool, GetError<M::Error>> {
        {
            let mut st = self.lock();
            if st.closed || self.idle.len() >= target || st.open >= st.max_size {
                return Ok(false);
            }
            st.open += 1;
            self.publish(&st);
        }
        // Dropped on every early return: the slot goes back (to a waiter, if any).
        let mut slot = Pending::new(self, Grant::Slot);
        let now = Instant::now();
        let (generation, probe) = match self.backoff.gate(now) {
            Gate::Dial { generation, probe } => (generation, probe),
            Gate::Wait { until, failures, last_error } => {
                return Err(GetError::Backoff {
                    failures,
                    retry_in: until.map(|u| u.saturating_duration_since(now)),
                    last_error,
                });
            }
        };
        let conn = self.dial(generation, probe, self.config.connect_timeout).await?;
        slot.holds_slot = false;
        if self.admit() {
            self.put_back(conn, false);
            Ok(true)
        } else {
            self.close_conn(conn, CloseReason::PoolClosed);
            self.release_slot();
            Ok(false)
        }
    }

    /// Closes connections that held slots and were taken out of the idle stripes:
    /// each slot goes to the oldest waiter, or is freed.
    fn close_taken(&self, doomed: Vec<(Conn<M::Connection>, CloseReason)>) {
        for (conn, reason) in doomed {
            self.close_conn(conn, reason);
            self.release_slot();
        }
    }

    /// Shows the idle connections to `keep`, one stripe at a time (only that stripe's
    /// connections are out of reach meanwhile, and `keep` runs without any pool lock,
    /// so it may use the pool); closes those it rejects. A panic in `keep` rejects
    /// that connection (closed as broken). Returns how many it closed.
    fn filter_idle(&self, mut keep: impl FnMut(&Conn<M::Connection>) -> bool) -> usize {
        let mut closed = 0;
        for stripe in 0..self.idle.stripe_count() {
            let stack = self.idle.take_stripe(stripe);
            if stack.is_empty() {
                continue;
            }
            let mut kept = Vec::with_capacity(stack.len());
            let mut doomed = Vec::new();
            for conn in stack {
                match unwind::guard("a retain predicate", || keep(&conn)) {
                    Ok(true) => kept.push(conn),
                    Ok(false) => doomed.push((conn, CloseReason::Retain)),
                    Err(_) => doomed.push((conn, CloseReason::Broken)),
                }
            }
            self.idle.restore(stripe, kept);
            // Callers may have queued while the stripe was out.
            self.after_push();
            closed += doomed.len();
            self.close_taken(doomed);
        }
        closed
    }

    /// Closes idle connections past their lifetime or idle limit, in place: every
    /// connection the sweep keeps stays reachable by concurrent `get`s throughout.
    /// `min_idle` does not protect a connection from the idle limit; the janitor
    /// replaces the closed ones with fresh connections afterwards.
    pub(crate) fn sweep(&self, now: Instant) {
        let doomed = self.idle.extract(|conn| self.expired(conn, now));
        if !doomed.is_empty() {
            self.close_taken(doomed);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A slot held inside `get` (with the connection being judged, if any): given back
/// if the future is dropped.
struct Pending<'a, M: Manager> {
    shared: &'a Shared<M>,
    conn: Option<Conn<M::Connection>>,
    holds_slot: bool,
}

impl<'a, M: Manager> Pending<'a, M> {
    fn new(shared: &'a Shared<M>, grant: Grant<M::Connection>) -> Self {
        let conn = match grant {
            Grant::Conn(conn) => Some(conn),
            Grant::Slot => None,
        };
        Pending { shared, conn, holds_slot: true }
    }
}

impl<M: Manager> Drop for Pending<'_, M> {
    fn drop(&mut self) {
        if !self.holds_slot {
            return;
        }
        match self.conn.take() {
            // Dropped mid health check: the connection's state is unknown, close it.
            Some(conn) => {
                self.shared.close_conn(conn, CloseReason::Cancelled);
                self.shared.release_slot();
            }
            None => self.shared.release_slot(),
        }
    }
}

/// A connection just opened, while `after_connect` prepares it: closed (as
/// cancelled) if the dial's future is dropped meanwhile. Its slot is held, and given
/// back, by the caller.
struct Preparing<'a, M: Manager> {
    shared: &'a Shared<M>,
    conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> Drop for Preparing<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.close_conn(conn, CloseReason::Cancelled);
        }
    }
}

/// A caller's own wait limit (`WaitPolicy::Timeout`, `get_timeout`): when it ends,
/// and how long it was.
#[derive(Debug, Clone, Copy)]
struct WaitLimit {
    at: Option<Instant>,
    limit: Duration,
}

/// What `checkout` does next with the slot it holds.
enum Verdict {
    Dial,
    Close(CloseReason),
    Fresh,
    Check,
}

/// The error a `get` reports after `attempts` dials: the last one's, naming the
/// attempts when there were several.
fn named<E>(attempts: u32, last: Option<GetError<E>>) -> GetError<E> {
    match last {
        Some(GetError::Connect(last)) if attempts > 1 => GetError::ConnectFailed { attempts, last },
        Some(last) => last,
        None => GetError::Pool(PoolError::Closed),
    }
}

/// A probe dial in progress: if dropped before it finished (its future was dropped),
/// the backoff lets another caller probe.
struct AbandonedProbe<'a> {
    backoff: &'a Backoff,
    armed: bool,
}

impl Drop for AbandonedProbe<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.backoff.abandon_probe();
        }
    }
}

/// A place in the waiter queue; leaving it (dropped future) passes on anything that
/// was already sent to it.
struct Queued<'a, M: Manager> {
    shared: &'a Shared<M>,
    id: u64,
    rx: oneshot::Receiver<Grant<M::Connection>>,
    /// Set once the channel resolved: the sender already left the queue.
    resolved: bool,
}

impl<M: Manager> Drop for Queued<'_, M> {
    fn drop(&mut self) {
        if self.resolved {
            return;
        }
        {
            let mut st = self.shared.lock();
            if let Some(at) = st.waiters.iter().position(|w| w.id == self.id) {
                st.waiters.remove(at);
                self.shared.publish(&st);
            }
        }
        self.rx.close();
        match self.rx.try_recv() {
            Ok(Grant::Conn(conn)) => self.shared.put_back(conn, false),
            Ok(Grant::Slot) => self.shared.release_slot(),
            Err(_) => {}
        }
    }
}

/// An async connection pool. Cloning is cheap (one `Arc`); all clones share the pool.
///
/// ```
/// use poolside_connpool::{Builder, Manager, Pool};
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = u32;
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<u32, Self::Error> { Ok(7) }
/// #     async fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Builder::new().max_size(4).build(Noop).unwrap();
/// let conn = pool.get().await.unwrap();
/// assert_eq!(*conn, 7);
/// drop(conn); // back to the pool, synchronously
/// assert_eq!(pool.status().idle, 1);
/// # }
/// ```
pub struct Pool<M: Manager> {
    pub(crate) shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool { shared: self.shared.clone() }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("status", &self.status()).finish()
    }
}

/// A point-in-time view of a pool's levels.
///
/// ```
/// let s = poolside_connpool::Status::default();
/// assert_eq!(s.open, s.idle + s.in_use);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Slots taken: idle + in use.
    pub open: usize,
    /// Connections waiting in the pool.
    pub idle: usize,
    /// Slots not idle: connections checked out, and connections being opened or
    /// health-checked (for a caller or the janitor). Always `open - idle`.
    pub in_use: usize,
    /// Callers waiting in line.
    pub waiting: usize,
    /// The current maximum size.
    pub max_size: usize,
}

impl Pool<crate::TcpManager> {
    /// The builder, as the entry point: `Pool::builder()` is [`Builder::new()`],
    /// like `WorkerPool::builder()` and `BufPool::builder()`. The manager given to
    /// [`Builder::build`] decides the pool's type, whatever it is (this function
    /// lives on one concrete `Pool` type only so that `Pool::builder()` needs no type
    /// annotation).
    ///
    /// ```
    /// # use poolside_connpool::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool: Pool<Noop> = Pool::builder().max_size(3).build(Noop).unwrap();
    /// assert_eq!(pool.max_size(), 3);
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<M: Manager> Pool<M> {
    /// A pool with default settings (see [`Builder::new`]).
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// assert_eq!(pool.max_size(), 10);
    /// ```
    pub fn new(manager: M) -> Self {
        Builder::new().build(manager).expect("the default settings are valid and need no runtime")
    }

    pub(crate) fn from_parts(
        manager: M,
        config: Config,
        events: Events,
        hooks: Hooks<M::Connection>,
    ) -> Result<Self, BuildError> {
        let runtime = if config.needs_janitor() {
            Some(tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?)
        } else {
            None
        };
        let state = State {
            waiters: VecDeque::new(),
            open: 0,
            max_size: config.max_size,
            closed: false,
            next_waiter: 0,
        };
        let shared = Arc::new(Shared {
            manager,
            idle: Stripes::new(),
            state: Mutex::new(state),
            closed: CachePadded::new(AtomicBool::new(false)),
            gauges: Gauges::default(),
            counters: Counters::default(),
            events,
            signal: Arc::new(Signal::default()),
            drained: Notify::new(),
            backoff: Backoff::new(config.backoff_min, config.backoff_max),
            hooks,
            next_id: AtomicU64::new(1),
            config,
        });
        shared.gauges.publish(0, shared.config.max_size, 0);
        if let Some(runtime) = runtime {
            janitor::spawn(&runtime, &shared);
        }
        Ok(Pool { shared })
    }

    /// Gets a connection, following the pool's [`WaitPolicy`].
    ///
    /// Cancel-safe: dropping the future at any point (waiting in line, connecting,
    /// health-checking) gives back whatever it held, to the next waiter if any.
    pub async fn get(&self) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        match self.shared.config.wait {
            WaitPolicy::Queue => self.get_inner(true, None).await,
            WaitPolicy::FailFast => self.get_inner(false, None).await,
            WaitPolicy::Timeout(limit) => self.get_timeout(limit).await,
        }
    }

    /// Like [`get`](Self::get), returning a guard that owns a handle to the pool
    /// ([`OwnedConn`](crate::OwnedConn), `'static`), for spawned tasks and structs.
    ///
    /// ```
    /// # use poolside_connpool::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u8;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u8, Self::Error> { Ok(1) }
    /// #     async fn check(&self, _: &mut u8) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Pool::new(Noop);
    /// let conn = pool.get_owned().await.unwrap();
    /// drop(pool); // the guard keeps the pool alive
    /// assert_eq!(*conn, 1);
    /// # }
    /// ```
    pub async fn get_owned(&self) -> Result<crate::OwnedConn<M>, GetError<M::Error>> {
        self.get().await.map(PooledConn::into_owned)
    }

    /// Gets a connection without ever waiting in line: fails with `Exhausted` when
    /// every slot is taken. (It may still open or health-check a connection.)
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Builder::new().max_size(1).build(Noop).unwrap();
    /// let held = pool.try_get().await.unwrap();
    /// assert!(pool.try_get().await.is_err());
    /// # drop(held);
    /// # }
    /// ```
    pub async fn try_get(&self) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        self.get_inner(false, None).await
    }

    /// Gets a connection, waiting in line at most `limit` (including the time to open
    /// and check it).
    pub async fn get_timeout(
        &self,
        limit: Duration,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        self.get_inner(true, Some(limit)).await
    }

    /// `limit`: the caller's own wait limit, counted from `now` (one clock read per get).
    async fn get_inner(
        &self,
        may_queue: bool,
        limit: Option<Duration>,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let now = Instant::now();
        let wait = limit.map(|limit| WaitLimit { at: now.checked_add(limit), limit });
        let timed_out = || {
            shared.counters.bump(&shared.counters.timeouts);
            GetError::Pool(PoolError::TimedOut { waited: wait.map_or(Duration::ZERO, |w| w.limit) })
        };
        let grant = match shared.acquire(may_queue, now) {
            Acquire::Fresh(conn) => {
                if shared.events.is_enabled() {
                    shared.events.record(Timing::AcquireWait, Duration::ZERO);
                    let id = conn.id;
                    shared.events.connection(ConnEvent::Checkout { id, waited: Duration::ZERO });
                }
                return Ok(PooledConn::new(self, conn));
            }
            Acquire::Ready(grant) => grant,
            Acquire::Closed => return Err(PoolError::Closed.into()),
            Acquire::Exhausted => return Err(PoolError::Exhausted.into()),
            Acquire::Queued(id, rx) => {
                let mut queued = Queued { shared, id, rx, resolved: false };
                let outcome = match wait.and_then(|w| w.at) {
                    Some(at) => match tokio::time::timeout_at(at, &mut queued.rx).await {
                        Ok(outcome) => outcome,
                        // Leaving the line passes on anything sent meanwhile.
                        Err(_) => {
                            drop(queued);
                            return Err(timed_out());
                        }
                    },
                    None => (&mut queued.rx).await,
                };
                queued.resolved = true;
                drop(queued);
                outcome.map_err(|_| GetError::Pool(PoolError::Closed))?
            }
        };
        let conn = self.checkout(grant, may_queue, wait).await;
        if let Err(GetError::Pool(PoolError::TimedOut { .. })) = &conn {
            shared.counters.bump(&shared.counters.timeouts);
        }
        if let (Ok(guard), true) = (&conn, shared.events.is_enabled()) {
            // Waiting in line plus opening or checking the connection; successful gets
            // only, so the histogram's count equals the connections handed out.
            let waited = now.elapsed();
            shared.events.record(Timing::AcquireWait, waited);
            shared.events.connection(ConnEvent::Checkout { id: guard.meta().id, waited });
        }
        conn
    }

    /// Turns a grant into a guard. An idle connection is closed when it expired or
    /// `is_broken` says so (cheap, before any health check); one unused for longer
    /// than the health-check window is checked. A connection that fails either way
    /// is the pool's problem, not the caller's: the caller moves on to another idle
    /// connection (at most `max_health_retries + 1` failed checks), then dials a fresh
    /// one on the slot it holds, with the retries and backoff of `dial_for_caller`.
    async fn checkout(
        &self,
        grant: Grant<M::Connection>,
        may_wait: bool,
        wait: Option<WaitLimit>,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let mut pending = Pending::new(shared, grant);
        let mut failed_checks = 0u32;
        loop {
            let now = Instant::now();
            let verdict = match pending.conn.as_mut() {
                None => Verdict::Dial,
                Some(conn) => match shared.expired(conn, now) {
                    Some(reason) => Verdict::Close(reason),
                    None if shared.judged_broken(conn) => Verdict::Close(CloseReason::Broken),
                    None if now.duration_since(conn.last_used)
                        < shared.config.health_check_after =>
                    {
                        Verdict::Fresh
                    }
                    None => Verdict::Check,
                },
            };
            match verdict {
                Verdict::Dial => {
                    let conn = shared.dial_for_caller(may_wait, wait).await?;
                    pending.holds_slot = false;
                    if !shared.admit() {
                        shared.close_conn(conn, CloseReason::PoolClosed);
                        shared.release_slot();
                        return Err(PoolError::Closed.into());
                    }
                    return Ok(self.hand_out(conn));
                }
                Verdict::Close(reason) => {
                    if let Some(conn) = pending.conn.take() {
                        shared.close_conn(conn, reason);
                    }
                }
                Verdict::Fresh => {
                    if let Some(guard) = self.approve_and_hand_out(&mut pending).await {
                        return Ok(guard);
                    }
                    failed_checks = failed_checks.saturating_add(1);
                }
                Verdict::Check => {
                    shared.counters.bump(&shared.counters.health_checks);
                    // Bounded like a dial, so a black-holed peer cannot hang `get`, and
                    // by the caller's own deadline.
                    let limit = shared.config.connect_timeout;
                    let caller_at = wait.and_then(|w| w.at);
                    let bound =
                        caller_at.map_or(limit, |at| at.saturating_duration_since(now).min(limit));
                    let checked = match pending.conn.as_mut() {
                        Some(conn) => {
                            let check = unwind::guard_future("check", move || {
                                shared.manager.check(&mut conn.raw)
                            });
                            tokio::time::timeout(bound, check).await
                        }
                        None => continue,
                    };
                    if checked.is_err() && caller_at.is_some_and(|at| Instant::now() >= at) {
                        // The caller's time ran out mid-check: the connection's state
                        // is unknown, so `pending` closes it and gives the slot back.
                        return Err(GetError::Pool(PoolError::TimedOut {
                            waited: wait.map_or(limit, |w| w.limit),
                        }));
                    }
                    let Some(conn) = pending.conn.take() else { continue };
                    match checked {
                        Ok(Ok(Ok(()))) => {
                            pending.conn = Some(conn);
                            if let Some(guard) = self.approve_and_hand_out(&mut pending).await {
                                return Ok(guard);
                            }
                            failed_checks = failed_checks.saturating_add(1);
                            if failed_checks <= shared.config.max_health_retries {
                                if let Grant::Conn(idle) = shared.swap_slot_for_idle() {
                                    pending.conn = Some(idle);
                                }
                            }
                            continue;
                        }
                        Ok(Ok(Err(e))) => {
                            tracing::debug!(error = %e, "poolside-connpool: health check failed; discarding the connection");
                        }
                        // A panicking check was logged where it was caught.
                        Ok(Err(_)) => {}
                        Err(_) => {
                            tracing::debug!(
                                ?limit,
                                "poolside-connpool: health check timed out; discarding the connection"
                            );
                        }
                    }
                    failed_checks = failed_checks.saturating_add(1);
                    shared.counters.bump(&shared.counters.health_fails);
                    shared.close_conn(conn, CloseReason::Broken);
                }
            }
            // The connection is gone and its slot is ours: take the next idle one
            // (when nobody waits), else dial on the slot.
            if failed_checks <= shared.config.max_health_retries {
                if let Grant::Conn(idle) = shared.swap_slot_for_idle() {
                    pending.conn = Some(idle);
                }
            }
        }
    }

    /// Hands out the idle connection `pending` holds once `before_acquire` (if set)
    /// approves it; otherwise closes it (`None`: the caller keeps the empty slot).
    async fn approve_and_hand_out(
        &self,
        pending: &mut Pending<'_, M>,
    ) -> Option<PooledConn<'_, M>> {
        let shared = &*self.shared;
        let approved = shared.approve_checkout(pending).await;
        let mut conn = pending.conn.take()?;
        if approved {
            pending.holds_slot = false;
            conn.last_used = Instant::now();
            Some(self.hand_out(conn))
        } else {
            shared.close_conn(conn, CloseReason::Hook);
            None
        }
    }

    fn hand_out(&self, conn: Conn<M::Connection>) -> PooledConn<'_, M> {
        self.shared.counters.acquires.bump();
        PooledConn::new(self, conn)
    }

    /// Current levels: one consistent moment, read without the pool lock (unless the
    /// pool changes so fast that two lock-free reads never agree, then under it).
    /// Always `in_use == open - idle` and `idle <= open`; `open <= max_size` except
    /// right after a shrink, while connections still out come back.
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Builder::new().max_size(4).build(Noop).unwrap();
    /// let held = pool.get().await.unwrap();
    /// pool.warm(2).await.unwrap();
    /// let s = pool.status();
    /// assert_eq!((s.open, s.idle, s.in_use, s.max_size), (3, 2, 1, 4));
    /// # drop(held);
    /// # }
    /// ```
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// The current maximum size.
    pub fn max_size(&self) -> usize {
        self.shared.gauges.max_size()
    }

    /// Changes the maximum size at runtime. Growing hands the new slots to waiters;
    /// shrinking closes idle connections now and in-use ones as they come back. On a
    /// closed pool it changes nothing and fails with [`BuildError::Closed`].
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// pool.resize(3).unwrap();
    /// assert_eq!(pool.max_size(), 3);
    /// assert!(pool.resize(0).is_err());
    /// pool.close();
    /// assert_eq!(pool.resize(4), Err(poolside_connpool::BuildError::Closed));
    /// ```
    pub fn resize(&self, max_size: usize) -> Result<(), BuildError> {
        let shared = &*self.shared;
        if shared.is_closed() {
            return Err(BuildError::Closed);
        }
        if max_size == 0 {
            return Err(BuildError::ZeroMaxSize);
        }
        if max_size > crate::config::MAX_SIZE_LIMIT {
            return Err(BuildError::OutOfRange { setting: "max_size" });
        }
        if shared.config.min_idle > max_size {
            return Err(BuildError::MinIdleAboveMaxSize {
                min_idle: shared.config.min_idle,
                max_size,
            });
        }
        let mut doomed = Vec::new();
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(BuildError::Closed);
            }
            st.max_size = max_size;
            while st.open > max_size {
                let Some(conn) = shared.idle.pop() else { break };
                st.open -= 1;
                doomed.push(conn);
            }
            while st.open < max_size && send_to_oldest(&mut st.waiters, Grant::Slot).is_none() {
                st.open += 1;
            }
            shared.publish(&st);
        }
        for conn in doomed {
            shared.close_conn(conn, CloseReason::Resize);
        }
        Ok(())
    }

    /// Keeps only the idle connections for which `keep` returns `true`; closes the
    /// others, and returns how many. The janitor re-warms to `min_idle` afterwards.
    ///
    /// `keep` sees one connection and its [`ConnMeta`] (id, age, uses) at a time, with
    /// no pool lock held. If it
    /// panics, the panic is caught and logged and that connection is closed (counted
    /// as broken). On a closed pool `retain` fails with [`PoolError::Closed`].
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u32;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u32, Self::Error> { Ok(1) }
    /// #     async fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Pool::new(Noop);
    /// drop(pool.get().await.unwrap());
    /// let closed = pool.retain(|conn, meta| *conn != 1 || meta.checkouts > 5).unwrap();
    /// assert_eq!(closed, 1);
    /// assert_eq!(pool.status().open, 0);
    /// pool.close();
    /// assert!(pool.retain(|_, _| true).is_err());
    /// # }
    /// ```
    pub fn retain(
        &self,
        mut keep: impl FnMut(&M::Connection, &ConnMeta) -> bool,
    ) -> Result<usize, PoolError> {
        let shared = &*self.shared;
        if shared.is_closed() {
            return Err(PoolError::Closed);
        }
        let closed = shared.filter_idle(|conn| keep(&conn.raw, &conn.meta()));
        if closed > 0 {
            shared.signal.refill();
        }
        Ok(closed)
    }

    /// Adopts a connection opened elsewhere (bb8's `Pool::add`): when the pool has a
    /// free slot it takes one, and the connection goes to the oldest waiting caller,
    /// else joins the idle connections. `after_connect` is not run on it (its maker
    /// prepared it); every other hook and limit applies from now on, its lifetime
    /// counted from this call. Returns the metadata it was given.
    ///
    /// When every slot is taken ([`AddError::Full`]) or the pool is closed
    /// ([`AddError::Closed`]), the connection is handed back inside the error, never
    /// dropped.
    ///
    /// ```
    /// # use poolside_connpool::{AddError, Builder, Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u32;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u32, Self::Error> { Ok(1) }
    /// #     async fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Builder::new().max_size(1).build(Numbers).unwrap();
    /// let meta = pool.add(99).unwrap();
    /// assert_eq!(meta.id, 1);
    /// let conn = pool.get().await.unwrap();
    /// assert_eq!(*conn, 99);
    /// assert_eq!(pool.add(7).unwrap_err(), AddError::Full(7)); // no room: handed back
    /// # drop(conn);
    /// pool.close();
    /// assert_eq!(pool.add(8).unwrap_err().into_inner(), 8);
    /// # }
    /// ```
    pub fn add(&self, conn: M::Connection) -> Result<ConnMeta, AddError<M::Connection>> {
        let shared = &*self.shared;
        let conn = {
            let mut st = shared.lock();
            if st.closed {
                return Err(AddError::Closed(conn));
            }
            if st.open >= st.max_size {
                return Err(AddError::Full(conn));
            }
            st.open += 1;
            shared.publish(&st);
            shared.new_conn(conn)
        };
        let meta = conn.meta();
        // To the oldest live waiter, else idle (or closed, should the pool close now).
        shared.put_back(conn, false);
        Ok(meta)
    }

    /// Opens connections until `target` are idle (bounded by `max_size`), e.g. to
    /// pre-warm before traffic. Returns how many it opened. On a closed pool it fails
    /// with `Closed`; while the pool backs off after failed dials, with
    /// [`GetError::Backoff`].
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Builder::new().max_size(4).build(Noop).unwrap();
    /// assert_eq!(pool.warm(3).await.unwrap(), 3);
    /// assert_eq!(pool.status().idle, 3);
    /// pool.close();
    /// assert!(pool.warm(3).await.unwrap_err().is_closed());
    /// # }
    /// ```
    pub async fn warm(&self, target: usize) -> Result<usize, GetError<M::Error>> {
        if self.shared.is_closed() {
            return Err(PoolError::Closed.into());
        }
        let mut opened = 0;
        while self.shared.warm_one(target).await? {
            opened += 1;
        }
        Ok(opened)
    }

    /// Closes the pool: idempotent. Waiters and later gets fail with `Closed`; idle
    /// connections are closed now, checked-out ones when they come back.
    pub fn close(&self) {
        let shared = &*self.shared;
        let (idle, waiters) = {
            let mut st = shared.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            shared.closed.store(true, Ordering::SeqCst);
            // Pairs with `after_push`: a connection pushed concurrently is either
            // drained here or seen there.
            fence(Ordering::SeqCst);
            let idle = shared.idle.drain();
            st.open -= idle.len();
            let waiters = std::mem::take(&mut st.waiters);
            shared.publish(&st);
            (idle, waiters)
        };
        // Dropping the senders wakes every waiter with `Closed`.
        drop(waiters);
        for conn in idle {
            shared.close_conn(conn, CloseReason::PoolClosed);
        }
        shared.signal.closed();
        // Callers waiting out the dial backoff look again, and find the pool closed.
        shared.backoff.wake_all();
        shared.drained.notify_waiters();
        tracing::debug!("poolside-connpool: pool closed");
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the pool, then waits until every checked-out connection came back (and
    /// was closed) or `deadline` passed.
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager, Pool};
    /// # use std::time::Duration;
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let pool = Pool::new(Noop);
    /// let held = pool.get().await.unwrap();
    /// let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    /// let err = pool.close_graceful(deadline).await.unwrap_err();
    /// assert_eq!(err.still_in_use, 1);
    /// drop(held);
    /// assert_eq!(pool.status().open, 0);
    /// # }
    /// ```
    pub async fn close_graceful(&self, deadline: Instant) -> Result<(), CloseTimeout> {
        self.close();
        let shared = &*self.shared;
        loop {
            let drained = shared.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            let open = shared.lock().open;
            if open == 0 {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return Err(CloseTimeout { still_in_use: shared.lock().open });
            }
        }
    }
}

impl<M: Manager> Shared<M> {
    /// A snapshot of one moment by double collect: the levels (under their sequence
    /// lock), every stripe's versioned length, the sequence again, the stripes again,
    /// and the sequence a last time. If nothing changed, the levels held throughout
    /// and each stripe held from its first read to its second, so all of them held
    /// together at the middle read. Every change keeps `idle <= open` at every moment
    /// (a connection enters the stripes only on a slot already counted, and leaves
    /// them before its slot is given up), so a consistent read never shows more.
    pub(crate) fn status(&self) -> Status {
        const LOCK_FREE_TRIES: usize = 64;
        let mut first = [0u64; crate::idle::MAX_STRIPES];
        let mut second = [0u64; crate::idle::MAX_STRIPES];
        for _ in 0..LOCK_FREE_TRIES {
            let Some(levels) = self.gauges.levels() else {
                std::hint::spin_loop();
                continue;
            };
            let idle = self.idle.collect(&mut first);
            if self.gauges.seq() != levels.seq {
                continue;
            }
            self.idle.collect(&mut second);
            if self.gauges.seq() == levels.seq && first == second {
                return self.status_of(levels.open, idle, levels.max_size);
            }
        }
        // Constant churn: read under the locks every change takes.
        let st = self.lock();
        let idle = self.idle.len_locked();
        self.status_of(st.open, idle, st.max_size)
    }

    /// No clamping: a torn read would show (as an absurd `in_use`), not be hidden.
    fn status_of(&self, open: usize, idle: usize, max_size: usize) -> Status {
        Status {
            open,
            idle,
            in_use: open.wrapping_sub(idle),
            waiting: self.gauges.waiting_now(),
            max_size,
        }
    }

    /// After a failed health check the caller holds an empty slot: if an idle
    /// connection exists (so nobody waits), check that one instead of dialling.
    fn swap_slot_for_idle(&self) -> Grant<M::Connection> {
        if self.gauges.waiting() != 0 {
            return Grant::Slot;
        }
        match self.idle.pop() {
            Some(conn) => {
                // Our empty slot is given up (to a waiter, should one have come).
                self.release_slot();
                Grant::Conn(conn)
            }
            None => Grant::Slot,
        }
    }
}
