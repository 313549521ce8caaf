//! The blocking pool: shared state behind one `parking_lot` mutex, an explicit FIFO
//! line of parked threads, checkout and return.
//!
//! Invariants (all under the lock):
//! * `open` counts every slot taken: idle + checked out + being dialled or checked
//!   (including dials and checks a timed-out caller left to a helper thread), and
//!   `open <= max_size` except right after a shrink, when returns close connections
//!   until it holds again.
//! * A waiter is in `waiters` until it leaves with a grant, with `Closed`, or after
//!   its timeout; it always removes itself (or is removed by the hand-off) under
//!   the lock, so a timed-out waiter leaves no trace, and a grant is only ever put
//!   into the cell of a waiter still in the line, which takes it before it looks
//!   at its deadline — a hand-off is never swallowed.
//! * Waiters are served in arrival order. A returned connection goes straight to
//!   the oldest waiter once it has waited `fair_after`; before that it is put back
//!   idle and the oldest waiter is woken (`nudged`, one at a time) to take it, so a
//!   running thread may use it first instead of paying a context switch per
//!   return. New callers never overtake a waiter that has waited `fair_after`.
//! * Every value in flight between two owners (a slot being dialled, a connection
//!   being checked) sits in a `Pending` whose `Drop` gives it back, so a panic in
//!   user code anywhere leaks no slot and hangs no waiter.

use super::bounded::{self, Outcome};
use super::config::{BuildError, Config, check_size};
use super::guard::PooledConn;
use super::janitor::{self, Janitor};
use super::manager::Manager;
use super::stats::Counters;
use crate::PoolError;
use crate::{CloseTimeout, GetError, Status, WaitPolicy};
use parking_lot::{Condvar, Mutex, MutexGuard};
use poolside_core::{Events, Timing};
use std::collections::VecDeque;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A connection with the times the pool needs to judge it.
pub(crate) struct Conn<C> {
    pub(crate) raw: C,
    pub(crate) created: Instant,
    /// When it was last checked out, opened or checked, and also when it was last
    /// returned if the pool has idle or lifetime limits (only those need the clock
    /// read on return).
    pub(crate) last_used: Instant,
}

impl<C> Conn<C> {
    fn new(raw: C) -> Self {
        let now = Instant::now();
        Conn { raw, created: now, last_used: now }
    }
}

/// What a waiter receives: a live connection, or the right to open one.
pub(crate) enum Grant<C> {
    Conn(Conn<C>),
    Slot,
}

/// Where the hand-off puts a waiter's grant.
struct Cell<C> {
    grant: Mutex<Option<Grant<C>>>,
}

struct Waiter<C> {
    id: u64,
    since: Instant,
    thread: Thread,
    cell: Arc<Cell<C>>,
}

/// Why a connection is being closed; decides the counter and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    Lifetime,
    Idle,
    Broken,
    /// Pool closed, shrunk, or `retain` rejected it.
    Removed,
}

/// The shared dial backoff.
#[derive(Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

struct State<C> {
    /// Idle connections, a stack: the most recently returned on top, so a quieter
    /// pool's surplus idles out under `max_idle_time`.
    idle: Vec<Conn<C>>,
    waiters: VecDeque<Waiter<C>>,
    open: usize,
    max_size: usize,
    closed: bool,
    next_id: u64,
    /// The waiter woken to take an idle connection, if any (one at a time).
    nudged: Option<u64>,
    backoff: Backoff,
    /// Dials the janitor (or `maintain`) has in progress toward `min_idle`.
    warming: usize,
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config<M>,
    state: Mutex<State<M::Connection>>,
    /// Signalled when a slot is given up after close (for `close_graceful`) and when
    /// a warming dial ends (for `maintain`).
    drained: Condvar,
    /// Dials in progress (callers', the janitor's, and orphaned ones).
    dialing: AtomicUsize,
    pub(crate) counters: Counters,
    pub(crate) events: Events,
    pub(crate) janitor: Arc<Janitor>,
    random: RandomState,
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        self.janitor.stop_and_join();
    }
}

/// What a caller found when it asked for a connection.
enum Acquire<C> {
    Ready(Grant<C>),
    Queued(u64, Arc<Cell<C>>),
    Exhausted,
    Closed,
}

/// How long one `get` may take in all.
#[derive(Clone, Copy)]
struct Wait {
    started: Instant,
    deadline: Option<Instant>,
    may_queue: bool,
}

impl Wait {
    fn timed_out(&self) -> PoolError {
        PoolError::TimedOut { waited: self.started.elapsed() }
    }
}

impl<M: Manager> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, State<M::Connection>> {
        self.state.lock()
    }

    /// Whether a connection is past its lifetime or idle limit at `now`.
    pub(crate) fn expired(&self, conn: &Conn<M::Connection>, now: Instant) -> Option<CloseReason> {
        if self
            .config
            .max_lifetime
            .is_some_and(|l| now.saturating_duration_since(conn.created) >= l)
        {
            Some(CloseReason::Lifetime)
        } else if self
            .config
            .max_idle_time
            .is_some_and(|l| now.saturating_duration_since(conn.last_used) >= l)
        {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }

    /// Whether a new caller may take an idle connection ahead of the line: nobody
    /// waits, or the oldest waiter has not yet waited `fair_after`.
    fn may_barge(&self, st: &State<M::Connection>, now: Instant) -> bool {
        match st.waiters.front() {
            None => true,
            Some(w) => now.saturating_duration_since(w.since) < self.config.fair_after,
        }
    }

    /// Puts `grant` into the oldest waiter's cell and wakes it; gives it back when
    /// nobody waits.
    fn deliver(
        st: &mut State<M::Connection>,
        grant: Grant<M::Connection>,
    ) -> Option<Grant<M::Connection>> {
        let Some(waiter) = st.waiters.pop_front() else { return Some(grant) };
        if st.nudged == Some(waiter.id) {
            st.nudged = None;
        }
        *waiter.cell.grant.lock() = Some(grant);
        waiter.thread.unpark();
        None
    }

    /// Wakes the oldest waiter to take an idle connection, unless one is already
    /// on its way.
    fn nudge(st: &mut State<M::Connection>) {
        if st.nudged.is_none() && !st.idle.is_empty() {
            if let Some(front) = st.waiters.front() {
                st.nudged = Some(front.id);
                front.thread.unpark();
            }
        }
    }

    /// Hands idle connections to waiters while both exist (the line has priority).
    fn feed(st: &mut State<M::Connection>) {
        while !st.waiters.is_empty() {
            let Some(conn) = st.idle.pop() else { break };
            let _ = Self::deliver(st, Grant::Conn(conn));
        }
    }

    fn acquire(&self, now: Instant, may_queue: bool) -> Acquire<M::Connection> {
        let mut st = self.lock();
        if st.closed {
            return Acquire::Closed;
        }
        if self.may_barge(&st, now) {
            if let Some(conn) = st.idle.pop() {
                return Acquire::Ready(Grant::Conn(conn));
            }
            if st.waiters.is_empty() && st.open < st.max_size {
                st.open += 1;
                return Acquire::Ready(Grant::Slot);
            }
        } else {
            Self::feed(&mut st);
        }
        Counters::bump(&self.counters.exhaustions);
        if !may_queue {
            return Acquire::Exhausted;
        }
        let id = st.next_id;
        st.next_id += 1;
        let cell = Arc::new(Cell { grant: Mutex::new(None) });
        st.waiters.push_back(Waiter {
            id,
            since: now,
            thread: thread::current(),
            cell: cell.clone(),
        });
        Acquire::Queued(id, cell)
    }

    /// Parks until the hand-off, close, or the deadline.
    fn wait_in_line(
        &self,
        id: u64,
        cell: &Cell<M::Connection>,
        wait: &Wait,
    ) -> Result<Grant<M::Connection>, PoolError> {
        loop {
            {
                let mut st = self.lock();
                // A grant first: once delivered it is ours even if the deadline passed.
                if let Some(grant) = cell.grant.lock().take() {
                    return Ok(grant);
                }
                if st.closed {
                    Self::leave_line(&mut st, id);
                    return Err(PoolError::Closed);
                }
                if st.nudged == Some(id) {
                    st.nudged = None;
                    if let Some(conn) = st.idle.pop() {
                        Self::leave_line(&mut st, id);
                        Self::nudge(&mut st);
                        return Ok(Grant::Conn(conn));
                    }
                }
                let now = Instant::now();
                if wait.deadline.is_some_and(|d| now >= d) {
                    Self::leave_line(&mut st, id);
                    Self::nudge(&mut st);
                    drop(st);
                    Counters::bump(&self.counters.timeouts);
                    return Err(wait.timed_out());
                }
            }
            match wait.deadline {
                Some(deadline) => {
                    thread::park_timeout(deadline.saturating_duration_since(Instant::now()))
                }
                None => thread::park(),
            }
        }
    }

    fn leave_line(st: &mut State<M::Connection>, id: u64) {
        if let Some(at) = st.waiters.iter().position(|w| w.id == id) {
            st.waiters.remove(at);
        }
        if st.nudged == Some(id) {
            st.nudged = None;
        }
    }

    /// Gets a grant: an idle connection, a slot to dial, or a place in line. Also
    /// returns the time it was granted: `now` unless the caller waited.
    fn grant(
        &self,
        wait: &Wait,
        now: Instant,
    ) -> Result<(Grant<M::Connection>, Instant), PoolError> {
        match self.acquire(now, wait.may_queue) {
            Acquire::Ready(grant) => Ok((grant, now)),
            Acquire::Closed => Err(PoolError::Closed),
            Acquire::Exhausted => Err(PoolError::Exhausted),
            Acquire::Queued(id, cell) => Ok((self.wait_in_line(id, &cell, wait)?, Instant::now())),
        }
    }

    /// A healthy connection comes back (or arrives): to the oldest waiter, or idle.
    /// Its slot is already counted.
    pub(crate) fn put_back(&self, conn: Conn<M::Connection>) {
        self.put_back_inner(conn, false);
    }

    /// `put_back`; `warmed` also ends a warming dial in the same critical section, so
    /// `warm_one` never sees the connection neither warming nor idle (and overshoots).
    fn put_back_inner(&self, conn: Conn<M::Connection>, warmed: bool) {
        let mut st = self.lock();
        if warmed {
            st.warming -= 1;
        }
        if st.closed || st.open > st.max_size {
            st.open -= 1;
            let closed = st.closed;
            drop(st);
            if closed || warmed {
                self.drained.notify_all();
            }
            self.close_conn(conn, CloseReason::Removed);
            return;
        }
        if st.waiters.is_empty() {
            st.idle.push(conn);
        } else if self.may_barge(&st, Instant::now()) {
            st.idle.push(conn);
            Self::nudge(&mut st);
        } else if let Some(Grant::Conn(conn)) = Self::deliver(&mut st, Grant::Conn(conn)) {
            st.idle.push(conn);
        }
        drop(st);
        if warmed {
            // `maintain` may be waiting for this dial.
            self.drained.notify_all();
        }
    }

    /// A slot is given up (its connection closed, detached, or never opened): to the
    /// oldest waiter as the right to dial, or freed.
    pub(crate) fn release_slot(&self) {
        let mut st = self.lock();
        if !st.closed && st.open <= st.max_size && Self::deliver(&mut st, Grant::Slot).is_none() {
            return;
        }
        st.open -= 1;
        let closed = st.closed;
        drop(st);
        if closed {
            self.drained.notify_all();
        }
    }

    /// Closes (drops) a connection outside the lock and counts why.
    pub(crate) fn close_conn(&self, conn: Conn<M::Connection>, reason: CloseReason) {
        self.counters.count_close(reason);
        if reason != CloseReason::Removed {
            tracing::debug!(?reason, "poolside-connpool: blocking pool closes a connection");
        }
        drop(conn);
    }

    /// After a connection failed or expired, the caller holds an empty slot: if an
    /// idle connection may be taken, take it and give the empty slot up.
    fn swap_slot_for_idle(&self) -> Option<Conn<M::Connection>> {
        let mut st = self.lock();
        if st.closed || !self.may_barge(&st, Instant::now()) {
            return None;
        }
        let conn = st.idle.pop()?;
        // Our empty slot goes to the line, or is freed.
        if st.open <= st.max_size && Self::deliver(&mut st, Grant::Slot).is_none() {
            return Some(conn);
        }
        st.open -= 1;
        Some(conn)
    }

    /// When the shared backoff allows the next dial, if it is in force.
    fn backoff_until(&self) -> Option<Instant> {
        self.lock().backoff.until.filter(|u| *u > Instant::now())
    }

    fn dial_failed(&self) {
        let mut st = self.lock();
        st.backoff.failures = st.backoff.failures.saturating_add(1);
        let doublings = st.backoff.failures.saturating_sub(1).min(30);
        let base = self.config.backoff_base;
        let delay = base.checked_mul(1 << doublings).unwrap_or(self.config.backoff_cap);
        let delay = delay.min(self.config.backoff_cap);
        // ±50 % jitter, so callers of many pools do not retry in step.
        let jitter = self.random.hash_one((st.backoff.failures, Instant::now())) % 1001;
        let delay = delay.mul_f64(0.5 + jitter as f64 / 1000.0);
        st.backoff.until = Instant::now().checked_add(delay);
    }

    fn dial_succeeded(&self) {
        let mut st = self.lock();
        st.backoff = Backoff::default();
    }

    /// `connect` plus the after-connect hook (run on the dial thread).
    fn connect_new(&self) -> Result<M::Connection, M::Error> {
        let mut raw = self.manager.connect()?;
        if let Some(hook) = &self.config.after_connect {
            hook(&mut raw)?;
        }
        Ok(raw)
    }

    /// Dials into a held slot, bounded by the connect timeout. On timeout the slot
    /// passes to the dial thread, which returns a late connection to the pool.
    fn dial(self: &Arc<Self>) -> Result<Conn<M::Connection>, DialError<M::Error>> {
        Counters::bump(&self.counters.dials);
        self.dialing.fetch_add(1, Relaxed);
        let started = self.events.start();
        let worker = self.clone();
        let orphan = self.clone();
        let outcome = bounded::call(
            self.config.connect_timeout,
            move || worker.connect_new(),
            move |late| {
                orphan.dialing.fetch_sub(1, Relaxed);
                match late {
                    Ok(Ok(raw)) => {
                        orphan.dial_succeeded();
                        orphan.put_back(Conn::new(raw));
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "poolside-connpool: a timed-out dial failed");
                        orphan.release_slot();
                    }
                    Err(panic) => {
                        tracing::error!(
                            panic = bounded::panic_message(&*panic),
                            "poolside-connpool: Manager::connect panicked"
                        );
                        orphan.release_slot();
                    }
                }
            },
        );
        self.events.finish(Timing::Dial, started);
        match outcome {
            Outcome::Done(Ok(raw)) => {
                self.dialing.fetch_sub(1, Relaxed);
                self.dial_succeeded();
                Ok(Conn::new(raw))
            }
            Outcome::Done(Err(e)) => {
                self.dialing.fetch_sub(1, Relaxed);
                Counters::bump(&self.counters.dial_errors);
                self.dial_failed();
                tracing::debug!(error = %e, "poolside-connpool: dial failed");
                Err(DialError::Failed(e))
            }
            Outcome::Panicked(panic) => {
                self.dialing.fetch_sub(1, Relaxed);
                Counters::bump(&self.counters.dial_errors);
                self.dial_failed();
                tracing::error!(
                    panic = bounded::panic_message(&*panic),
                    "poolside-connpool: Manager::connect panicked"
                );
                Err(DialError::Panicked(panic))
            }
            Outcome::TimedOut => {
                Counters::bump(&self.counters.dial_errors);
                self.dial_failed();
                tracing::debug!(
                    after = ?self.config.connect_timeout,
                    "poolside-connpool: dial timed out"
                );
                Err(DialError::TimedOut)
            }
        }
    }

    /// Closes expired idle connections (keeping `min_idle` against the idle limit;
    /// lifetimes always apply).
    pub(crate) fn sweep(&self) {
        if self.config.max_lifetime.is_none() && self.config.max_idle_time.is_none() {
            return;
        }
        let now = Instant::now();
        let mut doomed = Vec::new();
        {
            let mut st = self.lock();
            let mut kept = Vec::with_capacity(st.idle.len());
            // Oldest-returned first, so the surplus idles out and min_idle survives.
            let idle = std::mem::take(&mut st.idle);
            let mut left = idle.len();
            for conn in idle {
                match self.expired(&conn, now) {
                    Some(CloseReason::Idle) if left <= self.config.min_idle => kept.push(conn),
                    Some(reason) => {
                        left -= 1;
                        doomed.push((conn, reason));
                    }
                    None => kept.push(conn),
                }
            }
            st.idle = kept;
            for _ in &doomed {
                if st.closed
                    || st.open > st.max_size
                    || Self::deliver(&mut st, Grant::Slot).is_some()
                {
                    st.open -= 1;
                }
            }
        }
        for (conn, reason) in doomed {
            self.close_conn(conn, reason);
        }
    }

    /// Opens one connection for the janitor if fewer than `min_idle` are idle.
    /// Returns whether it should be called again.
    pub(crate) fn warm_one(self: &Arc<Self>) -> bool {
        {
            let mut st = self.lock();
            if st.closed
                || st.idle.len() + st.warming >= self.config.min_idle
                || st.open >= st.max_size
                || !st.waiters.is_empty()
                || st.backoff.until.is_some_and(|u| u > Instant::now())
            {
                return false;
            }
            st.open += 1;
            st.warming += 1;
        }
        let dialled = self.dial();
        if let Ok(conn) = dialled {
            self.put_back_inner(conn, true);
            return true;
        }
        self.lock().warming -= 1;
        // `maintain` may be waiting for this dial.
        self.drained.notify_all();
        if !matches!(dialled, Err(DialError::TimedOut)) {
            // The slot is ours to give back (a timed-out dial's belongs to its thread).
            self.release_slot();
        }
        false
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

pub(crate) enum DialError<E> {
    Failed(E),
    Panicked(Box<dyn std::any::Any + Send>),
    /// The slot now belongs to the dial thread.
    TimedOut,
}

/// A slot (and maybe its connection) in flight during checkout; `Drop` gives back
/// whatever it still holds.
struct Pending<'a, M: Manager> {
    shared: &'a Shared<M>,
    conn: Option<Conn<M::Connection>>,
    slot: bool,
}

impl<'a, M: Manager> Pending<'a, M> {
    fn new(shared: &'a Shared<M>, grant: Grant<M::Connection>) -> Self {
        let conn = match grant {
            Grant::Conn(conn) => Some(conn),
            Grant::Slot => None,
        };
        Pending { shared, conn, slot: true }
    }
}

impl<M: Manager> Drop for Pending<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.close_conn(conn, CloseReason::Removed);
        }
        if self.slot {
            self.shared.release_slot();
        }
    }
}

/// A blocking connection pool for threads: no async runtime needed.
///
/// Cheap to clone (a handle to shared state). `get` returns a [`PooledConn`] that
/// goes back to the pool when dropped — also when the thread panics, in which case
/// the connection is closed rather than reused.
///
/// ```
/// use poolside_connpool::blocking::{Builder, Manager};
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = u32;
/// #     type Error = std::io::Error;
/// #     fn connect(&self) -> Result<u32, Self::Error> { Ok(7) }
/// #     fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let pool = Builder::new().max_size(4).build(Noop).unwrap();
/// std::thread::scope(|s| {
///     for _ in 0..8 {
///         s.spawn(|| {
///             let conn = pool.get().unwrap();
///             assert_eq!(*conn, 7);
///         });
///     }
/// });
/// let status = pool.status();
/// assert!(status.open <= 4);
/// assert_eq!(status.idle, status.open);
/// ```
pub struct Pool<M: Manager> {
    pub(crate) shared: Arc<Shared<M>>,
    /// Counts the user's handles only (the janitor and helper threads hold `shared`
    /// alone): when the last handle drops, the janitor is stopped and joined there,
    /// even if a janitor round holds the shared state at that moment.
    _owner: Arc<Owner>,
}

/// Stops and joins the janitor when the last [`Pool`] handle drops.
struct Owner(Arc<Janitor>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.stop_and_join();
    }
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool { shared: self.shared.clone(), _owner: self._owner.clone() }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Pool").field("status", &self.status()).finish()
    }
}

impl<M: Manager> Pool<M> {
    /// A pool with default settings (see [`Builder::new`](super::Builder::new)).
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// assert_eq!(pool.max_size(), 10);
    /// ```
    pub fn new(manager: M) -> Self {
        super::Builder::new().build(manager).expect("the default settings are valid")
    }

    /// A [`Builder`](super::Builder) for this manager type.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::builder().max_size(2).build(Noop).unwrap();
    /// assert_eq!(pool.max_size(), 2);
    /// ```
    pub fn builder() -> super::Builder<M> {
        super::Builder::new()
    }

    pub(crate) fn from_parts(
        manager: M,
        config: Config<M>,
        events: Events,
    ) -> Result<Self, BuildError> {
        let state = State {
            idle: Vec::new(),
            waiters: VecDeque::new(),
            open: 0,
            max_size: config.max_size,
            closed: false,
            next_id: 0,
            nudged: None,
            backoff: Backoff::default(),
            warming: 0,
        };
        let needs_janitor = config.needs_janitor();
        let shared = Arc::new(Shared {
            manager,
            config,
            state: Mutex::new(state),
            drained: Condvar::new(),
            dialing: AtomicUsize::new(0),
            counters: Counters::default(),
            events,
            janitor: Arc::new(Janitor::default()),
            random: RandomState::new(),
        });
        if needs_janitor {
            janitor::spawn(&shared).map_err(|e| BuildError::Spawn(e.kind()))?;
        }
        let owner = Arc::new(Owner(shared.janitor.clone()));
        Ok(Pool { shared, _owner: owner })
    }

    /// Gets a connection, following the pool's [`WaitPolicy`] (by default: wait in
    /// line at most 30 s).
    ///
    /// Blocks the calling thread while it waits in line, dials, or health-checks.
    pub fn get(&self) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        match self.shared.config.wait {
            WaitPolicy::Queue => self.get_inner(None, true),
            WaitPolicy::FailFast => self.get_inner(None, false),
            WaitPolicy::Timeout(limit) => self.get_timeout(limit),
        }
    }

    /// Gets a connection without ever waiting in line: fails with `Exhausted` when
    /// every slot is taken. (It may still open or health-check a connection.)
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Builder::new().max_size(1).build(Noop).unwrap();
    /// let held = pool.try_get().unwrap();
    /// assert!(pool.try_get().is_err());
    /// # drop(held);
    /// ```
    pub fn try_get(&self) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        self.get_inner(None, false)
    }

    /// Gets a connection, waiting at most `limit` in all (in line, for the shared
    /// dial backoff; a dial or check already started is bounded by the connect
    /// timeout).
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # use std::time::Duration;
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Builder::new().max_size(1).build(Noop).unwrap();
    /// let held = pool.get().unwrap();
    /// let err = pool.get_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.pool_error().is_some());
    /// # drop(held);
    /// ```
    pub fn get_timeout(&self, limit: Duration) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        self.get_inner(Some(limit), true)
    }

    fn get_inner(
        &self,
        limit: Option<Duration>,
        may_queue: bool,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let started = Instant::now();
        // A limit past the clock's range means no limit.
        let deadline = limit.and_then(|l| started.checked_add(l));
        let wait = Wait { started, deadline, may_queue };
        // One clock read serves the line, the freshness test and the stamp.
        let (mut grant, mut now) = shared.grant(&wait, wait.started)?;
        let mut failed_checks = 0u32;
        loop {
            match self.checkout(grant, now, &wait, &mut failed_checks)? {
                Checkout::Done(conn) => {
                    if shared.events.is_enabled() {
                        shared.events.record(Timing::AcquireWait, wait.started.elapsed());
                    }
                    shared.counters.acquires.bump();
                    return Ok(PooledConn::new(self, conn));
                }
                // A check timed out and its slot went to the check thread: start over.
                Checkout::Again => (grant, now) = shared.grant(&wait, Instant::now())?,
            }
        }
    }

    /// Turns a grant into a connection: lifetime check, health check with bounded
    /// retries, or a dial.
    fn checkout(
        &self,
        grant: Grant<M::Connection>,
        mut now: Instant,
        wait: &Wait,
        failed_checks: &mut u32,
    ) -> Result<Checkout<M::Connection>, GetError<M::Error>> {
        let shared = &*self.shared;
        let mut pending = Pending::new(shared, grant);
        loop {
            let Some(conn) = pending.conn.take() else {
                return self.dial_into(pending, wait).map(Checkout::Done);
            };
            if let Some(reason) = shared.expired(&conn, now) {
                shared.close_conn(conn, reason);
                pending.conn = shared.swap_slot_for_idle();
                now = Instant::now();
                continue;
            }
            if now.saturating_duration_since(conn.last_used) < shared.config.health_check_after {
                pending.slot = false;
                let mut conn = conn;
                conn.last_used = now;
                return Ok(Checkout::Done(conn));
            }
            Counters::bump(&shared.counters.health_checks);
            let limit = shared.config.connect_timeout;
            let worker = self.shared.clone();
            let orphan = self.shared.clone();
            let outcome = bounded::call(
                limit,
                move || {
                    let mut conn = conn;
                    let checked = worker.manager.check(&mut conn.raw);
                    (conn, checked)
                },
                move |late| match late {
                    Ok((mut conn, Ok(()))) => {
                        conn.last_used = Instant::now();
                        orphan.put_back(conn);
                    }
                    Ok((conn, Err(_))) => {
                        orphan.close_conn(conn, CloseReason::Broken);
                        orphan.release_slot();
                    }
                    Err(panic) => {
                        tracing::error!(
                            panic = bounded::panic_message(&*panic),
                            "poolside-connpool: Manager::check panicked"
                        );
                        orphan.counters.count_close(CloseReason::Broken);
                        orphan.release_slot();
                    }
                },
            );
            match outcome {
                Outcome::Done((mut conn, Ok(()))) => {
                    pending.slot = false;
                    conn.last_used = Instant::now();
                    return Ok(Checkout::Done(conn));
                }
                Outcome::Done((conn, Err(last))) => {
                    *failed_checks += 1;
                    Counters::bump(&shared.counters.health_fails);
                    tracing::debug!(error = %last, "poolside-connpool: health check failed");
                    shared.close_conn(conn, CloseReason::Broken);
                    if *failed_checks > shared.config.max_health_retries {
                        return Err(GetError::HealthCheck { attempts: *failed_checks, last });
                    }
                    pending.conn = shared.swap_slot_for_idle();
                    now = Instant::now();
                }
                Outcome::Panicked(panic) => {
                    Counters::bump(&shared.counters.health_fails);
                    shared.counters.count_close(CloseReason::Broken);
                    tracing::error!(
                        panic = bounded::panic_message(&*panic),
                        "poolside-connpool: Manager::check panicked"
                    );
                    drop(pending);
                    resume_unwind(panic);
                }
                Outcome::TimedOut => {
                    pending.slot = false;
                    *failed_checks += 1;
                    Counters::bump(&shared.counters.health_fails);
                    tracing::debug!(?limit, "poolside-connpool: health check timed out");
                    if *failed_checks > shared.config.max_health_retries {
                        return Err(GetError::HealthCheckTimeout {
                            attempts: *failed_checks,
                            after: limit,
                        });
                    }
                    return Ok(Checkout::Again);
                }
            }
        }
    }

    /// Dials into the slot `pending` holds, after the shared backoff.
    fn dial_into(
        &self,
        mut pending: Pending<'_, M>,
        wait: &Wait,
    ) -> Result<Conn<M::Connection>, GetError<M::Error>> {
        let shared = &self.shared;
        while let Some(until) = shared.backoff_until() {
            if wait.deadline.is_some_and(|d| d <= until) {
                Counters::bump(&shared.counters.timeouts);
                return Err(wait.timed_out().into());
            }
            thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        match shared.dial() {
            Ok(conn) => {
                pending.slot = false;
                if shared.is_closed() {
                    shared.close_conn(conn, CloseReason::Removed);
                    shared.release_slot();
                    return Err(PoolError::Closed.into());
                }
                Ok(conn)
            }
            Err(DialError::Failed(e)) => Err(GetError::Connect(e)),
            Err(DialError::Panicked(panic)) => {
                drop(pending);
                resume_unwind(panic)
            }
            Err(DialError::TimedOut) => {
                pending.slot = false;
                Err(GetError::ConnectTimeout { after: shared.config.connect_timeout })
            }
        }
    }

    /// Current levels.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// let conn = pool.get().unwrap();
    /// let s = pool.status();
    /// assert_eq!((s.open, s.in_use, s.idle), (1, 1, 0));
    /// # drop(conn);
    /// ```
    pub fn status(&self) -> Status {
        let dialing = self.shared.dialing.load(Relaxed);
        let st = self.shared.lock();
        Status {
            open: st.open,
            idle: st.idle.len(),
            in_use: st.open.saturating_sub(st.idle.len() + dialing),
            waiting: st.waiters.len(),
            max_size: st.max_size,
        }
    }

    /// The current maximum size.
    pub fn max_size(&self) -> usize {
        self.shared.lock().max_size
    }

    /// Changes the maximum size at runtime (1 to
    /// [`MAX_POOL_SIZE`](super::MAX_POOL_SIZE), at least `min_idle`). Growing hands
    /// the new slots to waiters; shrinking closes idle connections now and in-use
    /// ones as they come back.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// pool.resize(3).unwrap();
    /// assert_eq!(pool.max_size(), 3);
    /// assert!(pool.resize(0).is_err());
    /// assert!(pool.resize(usize::MAX).is_err());
    /// ```
    pub fn resize(&self, max_size: usize) -> Result<(), BuildError> {
        let shared = &*self.shared;
        check_size(max_size, shared.config.min_idle)?;
        let mut doomed = Vec::new();
        {
            let mut st = shared.lock();
            st.max_size = max_size;
            while st.open > max_size {
                let Some(conn) = st.idle.pop() else { break };
                st.open -= 1;
                doomed.push(conn);
            }
            while !st.closed && st.open < max_size && !st.waiters.is_empty() {
                st.open += 1;
                let _ = Shared::<M>::deliver(&mut st, Grant::Slot);
            }
        }
        for conn in doomed {
            shared.close_conn(conn, CloseReason::Removed);
        }
        Ok(())
    }

    /// Keeps only the idle connections for which `keep(conn, age)` returns `true`;
    /// closes the others and returns how many. The janitor re-warms to `min_idle`.
    /// `keep` runs without the pool lock; if it panics, the connection is kept and
    /// the panic is re-raised once the pool is whole again.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u32;
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<u32, Self::Error> { Ok(1) }
    /// #     fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// drop(pool.get().unwrap());
    /// let closed = pool.retain(|conn, _age| *conn != 1);
    /// assert_eq!(closed, 1);
    /// assert_eq!(pool.status().open, 0);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&M::Connection, Duration) -> bool) -> usize {
        let shared = &*self.shared;
        let taken = std::mem::take(&mut shared.lock().idle);
        let now = Instant::now();
        let mut panicked = None;
        let mut kept = Vec::with_capacity(taken.len());
        let mut doomed = Vec::new();
        for conn in taken {
            let age = now.saturating_duration_since(conn.created);
            let verdict = if panicked.is_none() {
                catch_unwind(AssertUnwindSafe(|| keep(&conn.raw, age)))
            } else {
                Ok(true)
            };
            match verdict {
                Ok(true) => kept.push(conn),
                Ok(false) => doomed.push(conn),
                Err(panic) => {
                    tracing::error!(
                        panic = bounded::panic_message(&*panic),
                        "poolside-connpool: the retain predicate panicked"
                    );
                    panicked = Some(panic);
                    kept.push(conn);
                }
            }
        }
        let closed = doomed.len();
        // Oldest first, so the most recently used end up on top again.
        for conn in kept {
            shared.put_back(conn);
        }
        for conn in doomed {
            shared.close_conn(conn, CloseReason::Removed);
            shared.release_slot();
        }
        if closed > 0 {
            shared.janitor.wake();
        }
        if let Some(panic) = panicked {
            resume_unwind(panic);
        }
        closed
    }

    /// Puts a connection opened elsewhere into the pool (to the oldest waiter, or
    /// idle). Gives it back with `Closed` or `Exhausted` when the pool is closed or
    /// has no free slot.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # use poolside_connpool::PoolError;
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u32;
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<u32, Self::Error> { Ok(1) }
    /// #     fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Builder::new().max_size(1).build(Noop).unwrap();
    /// pool.add(9).unwrap();
    /// assert_eq!(pool.add(10).unwrap_err(), (10, PoolError::Exhausted));
    /// assert_eq!(*pool.get().unwrap(), 9);
    /// ```
    pub fn add(&self, conn: M::Connection) -> Result<(), (M::Connection, PoolError)> {
        let shared = &*self.shared;
        {
            let mut st = shared.lock();
            if st.closed {
                return Err((conn, PoolError::Closed));
            }
            if st.open >= st.max_size {
                return Err((conn, PoolError::Exhausted));
            }
            st.open += 1;
        }
        shared.put_back(Conn::new(conn));
        Ok(())
    }

    /// Runs one round of the janitor's work now, on this thread: closes idle
    /// connections past their lifetime or idle limit, then opens connections up to
    /// `min_idle` (waiting for those the janitor is opening at the same moment). The
    /// janitor thread does this on its own; this is for tests and
    /// for callers that want it done at a point of their choosing.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Builder::new().min_idle(2).build(Noop).unwrap();
    /// pool.maintain();
    /// assert_eq!(pool.status().idle, 2);
    /// ```
    pub fn maintain(&self) {
        let shared = &self.shared;
        shared.sweep();
        loop {
            while shared.warm_one() {}
            // The janitor may be opening connections at this moment: wait for those
            // dials (each bounded by the connect timeout), then look again.
            let mut st = shared.lock();
            if st.warming == 0 || st.closed || st.idle.len() >= shared.config.min_idle {
                return;
            }
            shared.drained.wait(&mut st);
        }
    }

    /// Closes the pool: idempotent. Waiters and later gets fail with `Closed`; idle
    /// connections are closed now, checked-out ones when they come back. The janitor
    /// thread ends.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// drop(pool.get().unwrap());
    /// pool.close();
    /// pool.close();
    /// assert!(pool.get().unwrap_err().is_closed());
    /// assert_eq!(pool.status().open, 0);
    /// ```
    pub fn close(&self) {
        let shared = &*self.shared;
        let (idle, waiters) = {
            let mut st = shared.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            let idle = std::mem::take(&mut st.idle);
            st.open -= idle.len();
            st.nudged = None;
            (idle, std::mem::take(&mut st.waiters))
        };
        // Each woken waiter finds the pool closed.
        for waiter in waiters {
            waiter.thread.unpark();
        }
        for conn in idle {
            shared.close_conn(conn, CloseReason::Removed);
        }
        shared.drained.notify_all();
        shared.janitor.stop();
        tracing::debug!("poolside-connpool: blocking pool closed");
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the pool, then waits until every checked-out connection came back (and
    /// was closed) or `deadline` passed.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # use std::time::{Duration, Instant};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// let held = pool.get().unwrap();
    /// let err = pool.close_graceful(Instant::now() + Duration::from_millis(20)).unwrap_err();
    /// assert_eq!(err.still_in_use, 1);
    /// drop(held);
    /// assert_eq!(pool.status().open, 0);
    /// ```
    pub fn close_graceful(&self, deadline: Instant) -> Result<(), CloseTimeout> {
        self.close();
        let shared = &*self.shared;
        let mut st = shared.lock();
        while st.open > 0 {
            if shared.drained.wait_until(&mut st, deadline).timed_out() && st.open > 0 {
                return Err(CloseTimeout { still_in_use: st.open });
            }
        }
        Ok(())
    }
}

/// What one checkout round produced.
enum Checkout<C> {
    Done(Conn<C>),
    Again,
}
