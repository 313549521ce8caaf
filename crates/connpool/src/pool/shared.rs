//! The pool's shared state and its hand-off protocol.
//!
//! Idle connections live in a striped store (`idle.rs`): per-thread home stripes, each
//! behind its own small spin lock on its own cache line. While nobody waits, `get` takes
//! from the caller's home stripe (else from another) and a return puts back into the
//! home stripe, without touching the pool lock. A mutex guards only the waiter queue
//! and the slot counts; its critical sections are a few stores, and what a waiter
//! needs (its channel, a clock reading, the runtime handle) is made before taking it.
//! It is the standard library's mutex, which spins briefly and then sleeps in the
//! kernel (`parking_lot`'s yields to the scheduler between spins): with every worker
//! of a multi-thread runtime taking it in turn, a line of waiters moves faster on it
//! (docs/benchmarks/connpool.md, fairness). The two meet through the stripe locks: a
//! caller about to wait first announces itself in `waiting`, then locks every stripe
//! once more; a returner pushes under its stripe's lock, then reads `waiting` again
//! and, if someone announced, feeds the idle connections to the waiters under the pool
//! lock.
//! One of the two always sees the other, so no wake-up is lost, and the returner
//! needs no fence (the argument is spelled out at `Shared::acquire`). With waiters
//! present, a return hands its connection straight to the oldest one, so nobody
//! overtakes the line. Anything in flight between two owners (a grant sent to a
//! waiter, a connection being checked, a slot being dialled) sits in a value whose
//! `Drop` gives it back, so a dropped future at any await point leaks nothing and
//! swallows no wake-up.

use super::Status;
use super::line::{Line, Outcome, Ticket, Timekeeper};
use crate::backoff::Backoff;
use crate::builder::Config;
use crate::clock::{Clock, Reading};
use crate::hooks::{self, Hooks};
use crate::idle::Stripes;
use crate::janitor::{self, Signal};
use crate::manager::Manager;
pub(crate) use crate::meta::CloseReason;
use crate::meta::ConnMeta;
use crate::stats::{Counters, Gauges};
use crate::unwind::{self};
use crossbeam_utils::CachePadded;
use poolside_core::{ConnEvent, Events};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Arc, Weak};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// A connection with the times the pool needs to judge it.
pub(crate) struct Conn<C> {
    pub(crate) raw: C,
    pub(crate) created: Instant,
    /// When it was last checked out, or returned when the pool has lifetimes to
    /// enforce or a `before_acquire` / `after_release` hook (hooks read
    /// `ConnMeta::idle_for`, which is then the time spent idle, zero in
    /// `after_release`). Reading the clock on every return would double the clock
    /// reads of a get + drop (a third of its cost where `clock_gettime` is slow), so
    /// the other pools stamp only the checkout; the health-check window is then
    /// measured from the checkout, which can only add checks.
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

/// A caller dialling (or waiting out the dial backoff) on a slot it holds, ready
/// to take a connection given to the pool with [`Pool::add`](super::Pool::add)
/// instead: that connection then fills the caller's slot.
pub(super) struct Dialer<C> {
    pub(super) id: u64,
    pub(super) tx: oneshot::Sender<Conn<C>>,
}

/// The pool lock, held.
pub(super) type Locked<'a, C> = MutexGuard<'a, State<C>>;

/// A grant no live waiter took, with the lock re-taken; `None` once delivered.
pub(super) type Undelivered<'a, C> = Option<(Locked<'a, C>, Grant<C>)>;

pub(crate) struct State<C> {
    /// Callers waiting in line, oldest first, with their deadlines (see `line.rs`).
    pub(super) waiters: Line<C>,
    /// Callers dialling on a slot they hold, oldest first (see [`Dialer`]).
    pub(super) dialers: VecDeque<Dialer<C>>,
    /// Slots taken: idle + in use + being opened or checked.
    pub(super) open: usize,
    pub(super) max_size: usize,
    pub(super) closed: bool,
    pub(super) next_waiter: u64,
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config,
    /// Idle connections, striped by thread, each stripe used last-in first-out.
    pub(crate) idle: Stripes<Conn<M::Connection>>,
    pub(super) state: Mutex<State<M::Connection>>,
    /// Set (under the lock) when the pool closes, read by every get and return: on a
    /// line of its own, away from the pool lock that waiters write.
    pub(super) closed: CachePadded<AtomicBool>,
    /// Mirrors of the locked state for lock-free readers, plus the counters.
    pub(crate) gauges: Gauges,
    pub(crate) counters: Counters,
    pub(crate) events: Events,
    pub(crate) signal: Arc<Signal>,
    /// Notified whenever a slot is given up after close, for `close_graceful`.
    pub(super) drained: Notify,
    /// The dial backoff shared by every caller and the janitor.
    pub(crate) backoff: Backoff,
    /// The lifecycle hooks; each unset one is a `None` checked where it would run.
    pub(crate) hooks: Hooks<M::Connection>,
    /// The id of the next connection opened or adopted.
    pub(super) next_id: AtomicU64,
    /// Spins for a returned connection that found none, in a row (see
    /// `spin_for_idle`); written only by callers that found every slot taken.
    pub(super) spin_misses: CachePadded<AtomicU32>,
    /// The lock-free checkout's clock (a reading reused for a short period).
    pub(crate) clock: Clock,
    /// The pool's own handle, weak: for the timekeeper and janitor tasks.
    pub(crate) me: Weak<Shared<M>>,
    /// How the pool reaches its timekeeper, which times queued gets.
    pub(crate) timekeeper: Arc<Timekeeper>,
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        self.signal.pool_gone();
        self.clock.stop();
        self.timekeeper.pool_gone();
    }
}

/// Sends `grant` to the oldest waiter whose future is still alive, under the lock;
/// gives it back when there is none. Waiters whose futures were dropped are skipped
/// (their `Queued` guard removes them, but may lose the race with this pop).
pub(super) fn send_to_oldest<C>(waiters: &mut Line<C>, mut grant: Grant<C>) -> Option<Grant<C>> {
    while let Some(waiter) = waiters.pop_front() {
        match waiter.grant(grant) {
            Ok(()) => return None,
            Err(back) => grant = back,
        }
    }
    Some(grant)
}

/// Whether this thread runs a multi-thread tokio runtime (another worker may return a
/// connection while this one spins).
pub(super) fn multi_threaded() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// A dialling caller's end of its [`Dialer`] registration.
pub(super) struct Adoption<C> {
    pub(super) id: u64,
    pub(super) rx: oneshot::Receiver<Conn<C>>,
}

/// What a caller found when it asked for a connection.
pub(super) enum Acquire<C> {
    /// An idle connection that needs neither replacing nor a health check: done.
    Fresh(Conn<C>),
    Ready(Grant<C>),
    /// In line; `bool`: the pool's timekeeper times this waiter (else, with a
    /// deadline, it times itself); `Instant`: when it queued (its wait limit
    /// counts from then), read only when there is a limit or wait times are
    /// recorded.
    Queued(Ticket, oneshot::Receiver<Outcome<C>>, bool, Option<Instant>),
    Exhausted,
    Closed,
}

impl<M: Manager> Shared<M> {
    /// Mirrors the locked state for lock-free readers (`waiting` with `SeqCst`: it is
    /// one half of the idle hand-shake).
    pub(super) fn publish(&self, st: &State<M::Connection>) {
        self.gauges.publish(st.open, st.max_size, st.waiters.len());
    }

    /// No user code runs under the pool lock, so it is not poisoned in practice; if
    /// it ever were, the state is used as it is (as a `parking_lot` mutex would).
    pub(super) fn lock(&self) -> Locked<'_, M::Connection> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Within its limits and used within the health-check window at `at`.
    #[inline]
    pub(super) fn is_fresh(&self, conn: &Conn<M::Connection>, at: Reading) -> bool {
        at.is_fresh(conn.last_used) && self.expired(conn, at.now).is_none()
    }

    /// The lock-free common case: nobody waits and an idle connection is there.
    /// `Some(Fresh)` needs no more work; `Some(Ready)` must be checked or replaced.
    pub(super) fn take_idle(&self, at: Reading) -> Option<Acquire<M::Connection>> {
        if self.gauges.waiting() != 0 || self.closed.load(Ordering::Relaxed) {
            return None;
        }
        let conn = self.idle.pop_fast()?;
        self.note_idle_taken();
        Some(match self.ready_at_once(conn, at) {
            Ok(conn) => Acquire::Fresh(conn),
            Err(conn) => Acquire::Ready(Grant::Conn(conn)),
        })
    }

    /// A connection that needs no more work before it is handed out (fresh at `at`,
    /// not broken, no `before_acquire` hook), stamped and counted as handed out;
    /// anything else comes back for the checkout. The rule of every get that does
    /// not dial: one that finds an idle connection, and a queued one handed a
    /// connection by a return.
    #[inline]
    pub(super) fn ready_at_once(
        &self,
        mut conn: Conn<M::Connection>,
        at: Reading,
    ) -> Result<Conn<M::Connection>, Conn<M::Connection>> {
        if !self.is_fresh(&conn, at)
            || self.judged_broken(&mut conn)
            || self.hooks.before_acquire.is_some()
        {
            return Err(conn);
        }
        // `now` may be a reused reading older than the last stamp: never go back.
        conn.last_used = conn.last_used.max(at.now);
        self.counters.acquires.bump();
        Ok(conn)
    }

    /// `Manager::is_broken`, where a panic counts as broken.
    pub(super) fn judged_broken(&self, conn: &mut Conn<M::Connection>) -> bool {
        unwind::guard("is_broken", || self.manager.is_broken(&mut conn.raw)).unwrap_or(true)
    }

    /// A connection left the idle stripes (or a caller found none): if that took the
    /// pool below `min_idle`, the janitor refills it now rather than at its next tick.
    pub(super) fn note_idle_taken(&self) {
        let min_idle = self.config.min_idle;
        if min_idle != 0 && self.idle.len() < min_idle {
            self.signal.refill();
            janitor::revive(self);
        }
    }

    /// With every slot taken and nobody waiting, on a runtime with several worker
    /// threads, looks for a returned connection for about a microsecond before taking
    /// the lock and queueing.
    ///
    /// Why: when connections are held briefly and there are more callers than
    /// connections across many cores, queueing turns every later return into a locked
    /// hand-off and a wake-up of a parked task on another core, and the line, once
    /// formed, sustains itself, capping the pool at the speed of a queue-only pool. A
    /// connection returned within the spin goes to whoever finds it, as it would a
    /// moment later anyway. Nobody is overtaken: the
    /// spin stops as soon as anyone waits (`take_idle` then returns nothing), so the
    /// first-come-first-served line is untouched. A current-thread runtime cannot see
    /// a return while it spins, so it never spins.
    ///
    /// Adaptive: when the last spins found nothing in a row (returners are slow, or
    /// descheduled on an oversubscribed machine, where spinning only takes the CPU
    /// from the thread that would return a connection), callers queue at once and
    /// only every `PROBE_EVERY`-th one spins again to find out whether spinning pays
    /// once more. The runtime probe (which clones the runtime handle) runs only for
    /// callers that would spin.
    #[cold]
    pub(super) fn spin_for_idle(&self, at: Reading) -> Option<Acquire<M::Connection>> {
        const ROUNDS: u32 = 6;
        /// Misses in a row after which callers stop spinning.
        const SKIP_AFTER: u32 = 4;
        /// While skipping, one caller in this many spins anyway (a probe).
        const PROBE_EVERY: u32 = 32;
        // Someone waits: the line is formed and returns go to it; nothing to find.
        if self.gauges.waiting() != 0 || !self.gauges.at_capacity() || self.idle.stripe_count() == 1
        {
            return None;
        }
        // A heuristic only: racing updates may lose a count, never a connection.
        let misses = self.spin_misses.load(Ordering::Relaxed);
        if misses >= SKIP_AFTER {
            self.spin_misses.store(misses.wrapping_add(1).max(SKIP_AFTER), Ordering::Relaxed);
            if misses % PROBE_EVERY != 0 {
                return None;
            }
        }
        let missed = || {
            let now_misses = self.spin_misses.load(Ordering::Relaxed);
            self.spin_misses.store(now_misses.saturating_add(1), Ordering::Relaxed);
            None
        };
        if !multi_threaded() {
            return missed();
        }
        for round in 0..ROUNDS {
            for _ in 0..(1u32 << round) {
                std::hint::spin_loop();
            }
            if self.gauges.waiting() != 0 {
                return None;
            }
            if let Some(found) = self.take_idle(at) {
                if self.spin_misses.load(Ordering::Relaxed) != 0 {
                    self.spin_misses.store(0, Ordering::Relaxed);
                }
                return Some(found);
            }
        }
        missed()
    }

    /// Under the lock: gives `conn` (not yet counted in `open`) to the oldest caller
    /// dialling on a slot it holds, whose slot it fills. Returns it when no such
    /// caller is left.
    pub(super) fn adopt_for_dialer(
        &self,
        st: &mut State<M::Connection>,
        mut conn: Conn<M::Connection>,
    ) -> Result<ConnMeta, Conn<M::Connection>> {
        let meta = conn.meta();
        while let Some(dialer) = st.dialers.pop_front() {
            match dialer.tx.send(conn) {
                Ok(()) => return Ok(meta),
                // Its future is gone (its `Pending` removes it, but may lose the race
                // with this pop): the next one.
                Err(back) => conn = back,
            }
        }
        Err(conn)
    }

    /// A connection dialled for a caller that received an added one instead: kept
    /// on a slot of its own when one is free, else closed.
    pub(super) fn keep_surplus(&self, conn: Conn<M::Connection>) {
        let mut st = self.lock();
        if !st.closed && st.open < st.max_size {
            st.open += 1;
            self.publish(&st);
            drop(st);
            self.put_back(conn, false);
        } else {
            drop(st);
            self.close_conn(conn, CloseReason::Resize);
        }
    }

    /// Registers a caller about to dial on a slot it holds (see [`Dialer`]).
    pub(super) fn register_dialer(&self) -> Adoption<M::Connection> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        let id = st.next_waiter;
        st.next_waiter += 1;
        st.dialers.push_back(Dialer { id, tx });
        Adoption { id, rx }
    }

    /// Takes an idle connection or a free slot, or queues (when allowed) with the
    /// caller's wait `limit`, if any, counted from when it queues (the clock is read
    /// only on that path).
    pub(super) fn acquire(
        &self,
        may_queue: bool,
        at: Reading,
        limit: Option<Duration>,
    ) -> Acquire<M::Connection> {
        if let Some(found) = self.take_idle(at).or_else(|| self.spin_for_idle(at)) {
            return found;
        }
        // What a place in line needs is made before taking the lock, which every
        // return and every queued caller contends for: the lock then covers only the
        // line's links and counts. (Unused when a connection or slot turns up under
        // the lock.) The wait limit counts from here, before the caller's turn on
        // the lock: the caller was already waiting.
        let joining = may_queue.then(|| {
            // Read only for a wait limit or a wait-time sample.
            let queued_at = (limit.is_some() || self.events.is_enabled()).then(Instant::now);
            let deadline = queued_at.zip(limit).and_then(|(at, limit)| at.checked_add(limit));
            let runtime = deadline.and_then(|_| tokio::runtime::Handle::try_current().ok());
            (oneshot::channel(), queued_at, deadline, runtime)
        });
        let mut st = self.lock();
        if st.closed {
            return Acquire::Closed;
        }
        if st.waiters.is_empty() {
            // Announce, then look again: a returner that pushed before seeing us
            // is caught here, one that pushes after sees `waiting` and feeds us.
            //
            // Why the stripes keep this true: a returner pushes under its stripe's
            // lock and reads `waiting` after taking that lock; we store `waiting`,
            // then take every stripe's lock in turn (`Stripes::pop` returns `None`
            // only after finding each one empty under its lock). The stripe's lock
            // orders the two: if our turn on it came first, our store happens before
            // the returner's read (store, our unlock, its lock, its read), so it sees
            // us; if its turn came first, we find its connection. (A stripe another
            // caller emptied meanwhile means that caller took the connection, and will
            // return it through this same hand-shake.) The lock-free checkout's
            // `pop_fast` skips stripes that look empty without locking them: it is
            // never used on this side.
            self.gauges.announce_waiter();
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
        let Some(((tx, rx), queued_at, deadline, runtime)) = joining else {
            self.publish(&st);
            return Acquire::Exhausted;
        };
        let id = st.next_waiter;
        st.next_waiter += 1;
        let st_ref = &mut *st;
        let timed = deadline
            .zip(runtime.as_ref())
            .is_some_and(|(at, runtime)| self.timed_by_pool(&mut st_ref.waiters, at, runtime));
        let first = st.waiters.is_empty();
        let ticket = st.waiters.push_back(id, tx, deadline.filter(|_| timed));
        if first {
            self.feed_waiters(&mut st);
        } else {
            // Joining a line that already exists: the first waiter of this line made
            // the announce-then-look hand-shake, and every returner since either
            // handed its connection to the line under this lock or pushed, then saw
            // `waiting` and will feed the line under this lock after we release it.
            // So no connection sits in the stripes unseen: publishing is enough.
            self.publish(&st);
        }
        // Released before the runtime handle (and its reference count) goes.
        drop(st);
        drop(runtime);
        Acquire::Queued(ticket, rx, timed, queued_at)
    }

    /// Under the lock: moves idle connections to waiters, oldest first (a returner
    /// may have pushed one just as they queued).
    pub(super) fn feed_waiters(&self, st: &mut State<M::Connection>) {
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
    /// closed, settle the idle stripes under the lock. No fence: the push took its
    /// stripe's lock, which a caller about to wait (or `close`) takes after storing
    /// `waiting` (or `closed`); see `acquire`.
    #[inline]
    pub(super) fn after_push(&self) {
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
    pub(super) fn hand_to_oldest<'a>(
        &'a self,
        mut st: Locked<'a, M::Connection>,
        mut grant: Grant<M::Connection>,
    ) -> Undelivered<'a, M::Connection> {
        loop {
            let Some(waiter) = st.waiters.pop_front() else { return Some((st, grant)) };
            self.publish(&st);
            drop(st);
            match waiter.grant(grant) {
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
            janitor::revive(self);
        }
        if drained {
            self.drained.notify_waiters();
        }
    }

    /// Whether a connection opened on a slot may be handed out (the pool is open).
    pub(super) fn admit(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// Closes a connection (its `Drop` is user code: a panic there is caught and
    /// logged, so the caller still gives the slot back). Also on a thread that is
    /// already unwinding (a guard dropped by a panicking holder): a panic caught
    /// inside a destructor during unwinding does not abort, only one that escapes it,
    /// so the connection is closed there and then, with or without a runtime.
    pub(crate) fn close_conn(&self, conn: Conn<M::Connection>, reason: CloseReason) {
        self.counters.count_close(reason);
        tracing::debug!(?reason, id = conn.id, age = ?conn.created.elapsed(), "poolside-connpool: closing a connection");
        let meta = conn.meta();
        if self.events.connections_enabled() {
            let age = meta.created_at.elapsed();
            self.events.connection(ConnEvent::Close { id: meta.id, age, reason: reason.name() });
        }
        unwind::drop_guarded("dropping a connection", conn);
        hooks::closed(&self.hooks.on_close, meta, reason);
    }
}

impl<M: Manager> Shared<M> {
    /// Closes connections that held slots and were taken out of the idle stripes:
    /// each slot goes to the oldest waiter, or is freed.
    pub(super) fn close_taken(&self, doomed: Vec<(Conn<M::Connection>, CloseReason)>) {
        for (conn, reason) in doomed {
            self.close_conn(conn, reason);
            self.release_slot();
        }
    }

    /// Shows the idle connections to `keep`, one stripe at a time (only that stripe's
    /// connections are out of reach meanwhile, and `keep` runs without any pool lock,
    /// so it may use the pool); closes those it rejects. A panic in `keep` rejects
    /// that connection (closed as broken). Returns how many it closed.
    pub(super) fn filter_idle(&self, mut keep: impl FnMut(&Conn<M::Connection>) -> bool) -> usize {
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
    pub(super) fn status_of(&self, open: usize, idle: usize, max_size: usize) -> Status {
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
    pub(super) fn swap_slot_for_idle(&self) -> Grant<M::Connection> {
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
