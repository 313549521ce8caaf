//! The blocking pool's shared state behind one `parking_lot` mutex, the explicit
//! FIFO line of parked threads, and the hand-off between them.
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

use super::bounded;
use super::config::Config;
use super::janitor::Janitor;
use super::manager::Manager;
use super::stats::Counters;
use crate::CloseReason;
use crate::PoolError;
use crate::options::Expiry;
use parking_lot::{Condvar, Mutex, MutexGuard};
use poolside_core::{ConnEvent, Events};
use std::collections::VecDeque;
use std::hash::RandomState;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, Thread};
use std::time::Instant;

/// A connection with its id and the times the pool needs to judge it.
pub(crate) struct Conn<C> {
    pub(crate) raw: C,
    /// Unique within its pool, counted from 1 (as in the async pool): the id its
    /// connection events carry.
    pub(crate) id: u64,
    pub(crate) created: Instant,
    /// When it was last checked out, opened or checked, and also when it was last
    /// returned if the pool has idle or lifetime limits (only those need the clock
    /// read on return).
    pub(crate) last_used: Instant,
}

/// What a waiter receives: a live connection, or the right to open one.
pub(crate) enum Grant<C> {
    Conn(Conn<C>),
    Slot,
}

/// Where the hand-off puts a waiter's grant.
pub(super) struct Cell<C> {
    pub(super) grant: Mutex<Option<Grant<C>>>,
}

pub(super) struct Waiter<C> {
    pub(super) id: u64,
    pub(super) since: Instant,
    pub(super) thread: Thread,
    pub(super) cell: Arc<Cell<C>>,
}

/// The shared dial backoff.
#[derive(Default)]
pub(super) struct Backoff {
    pub(super) failures: u32,
    pub(super) until: Option<Instant>,
    /// The last failed dial's error, as text (for [`crate::GetError::Backoff`]).
    pub(super) last_error: String,
}

pub(super) struct State<C> {
    /// Idle connections, a stack: the most recently returned on top, so a quieter
    /// pool's surplus idles out under `max_idle_time`.
    pub(super) idle: Vec<Conn<C>>,
    pub(super) waiters: VecDeque<Waiter<C>>,
    pub(super) open: usize,
    pub(super) max_size: usize,
    pub(super) closed: bool,
    pub(super) next_id: u64,
    /// The waiter woken to take an idle connection, if any (one at a time).
    pub(super) nudged: Option<u64>,
    pub(super) backoff: Backoff,
    /// Dials the janitor (or `maintain`) has in progress toward `min_idle`.
    pub(super) warming: usize,
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config<M>,
    pub(super) state: Mutex<State<M::Connection>>,
    /// Signalled when a slot is given up after close (for `close_graceful`), when
    /// a warming dial ends (for `maintain`), and on close (for callers waiting out
    /// the dial backoff).
    pub(super) drained: Condvar,
    pub(crate) counters: Counters,
    pub(crate) events: Events,
    pub(crate) janitor: Arc<Janitor>,
    pub(super) random: RandomState,
    /// The next connection's id.
    pub(super) next_conn_id: AtomicU64,
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        self.janitor.stop_and_join();
    }
}

/// What a caller found when it asked for a connection.
pub(super) enum Acquire<C> {
    Ready(Grant<C>),
    Queued(u64, Arc<Cell<C>>),
    Exhausted,
    Closed,
}

/// How long one `get` may take in all.
#[derive(Clone, Copy)]
pub(super) struct Wait {
    pub(super) started: Instant,
    pub(super) deadline: Option<Instant>,
    pub(super) may_queue: bool,
}

impl Wait {
    /// Whether the caller's deadline has passed at `now`.
    pub(super) fn is_past(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|at| now >= at)
    }

    pub(super) fn timed_out(&self) -> PoolError {
        PoolError::TimedOut { waited: self.started.elapsed() }
    }
}

impl<M: Manager> Shared<M> {
    pub(super) fn lock(&self) -> MutexGuard<'_, State<M::Connection>> {
        self.state.lock()
    }

    /// Whether a connection is past its lifetime or idle limit at `now`.
    pub(crate) fn expired(&self, conn: &Conn<M::Connection>, now: Instant) -> Option<CloseReason> {
        self.config.options.expired(conn.created, conn.last_used, now).map(|e| match e {
            Expiry::Lifetime => CloseReason::Lifetime,
            Expiry::Idle => CloseReason::Idle,
        })
    }

    /// `Manager::is_broken`, where a panic counts as broken (and is logged).
    pub(crate) fn judged_broken(&self, conn: &mut Conn<M::Connection>) -> bool {
        match catch_unwind(AssertUnwindSafe(|| self.manager.is_broken(&mut conn.raw))) {
            Ok(broken) => broken,
            Err(panic) => {
                tracing::error!(
                    panic = bounded::panic_message(&*panic),
                    "poolside-connpool: Manager::is_broken panicked; closing the connection"
                );
                true
            }
        }
    }

    /// Whether a new caller may take an idle connection ahead of the line: nobody
    /// waits, or the oldest waiter has not yet waited `fair_after`.
    pub(super) fn may_barge(&self, st: &State<M::Connection>, now: Instant) -> bool {
        match st.waiters.front() {
            None => true,
            Some(w) => now.saturating_duration_since(w.since) < self.config.fair_after,
        }
    }

    /// Puts `grant` into the oldest waiter's cell and wakes it; gives it back when
    /// nobody waits.
    pub(super) fn deliver(
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
    pub(super) fn nudge(st: &mut State<M::Connection>) {
        if st.nudged.is_none() && !st.idle.is_empty() {
            if let Some(front) = st.waiters.front() {
                st.nudged = Some(front.id);
                front.thread.unpark();
            }
        }
    }

    /// Hands idle connections to waiters while both exist (the line has priority).
    pub(super) fn feed(st: &mut State<M::Connection>) {
        while !st.waiters.is_empty() {
            let Some(conn) = st.idle.pop() else { break };
            let _ = Self::deliver(st, Grant::Conn(conn));
        }
    }

    /// `prefer_slot`: take a free slot ahead of an idle connection (a caller that has
    /// used up its health-check retries dials rather than check another stale one).
    pub(super) fn acquire(
        &self,
        now: Instant,
        may_queue: bool,
        prefer_slot: bool,
    ) -> Acquire<M::Connection> {
        let mut st = self.lock();
        if st.closed {
            return Acquire::Closed;
        }
        if self.may_barge(&st, now) {
            let free = st.waiters.is_empty() && st.open < st.max_size;
            let mut grant = None;
            if !(prefer_slot && free) {
                grant = st.idle.pop().map(Grant::Conn);
            }
            if grant.is_none() && free {
                st.open += 1;
                grant = Some(Grant::Slot);
            }
            if let Some(grant) = grant {
                // As in the async pool: taking the pool below `min_idle` (or finding no
                // idle connection) has the janitor refill it now, not at its next tick
                // — when it can: at `max_size` it could open nothing.
                let refill = st.idle.len() < self.config.options.min_idle && st.open < st.max_size;
                drop(st);
                if refill {
                    self.janitor.wake();
                }
                return Acquire::Ready(grant);
            }
        } else {
            Self::feed(&mut st);
        }
        self.counters.exhaustions.bump();
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
    pub(super) fn wait_in_line(
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
                    self.counters.timeouts.bump();
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

    pub(super) fn leave_line(st: &mut State<M::Connection>, id: u64) {
        if let Some(at) = st.waiters.iter().position(|w| w.id == id) {
            st.waiters.remove(at);
        }
        if st.nudged == Some(id) {
            st.nudged = None;
        }
    }

    /// Gets a grant: an idle connection, a slot to dial, or a place in line. Also
    /// returns the time it was granted: `now` unless the caller waited.
    pub(super) fn grant(
        &self,
        wait: &Wait,
        now: Instant,
        prefer_slot: bool,
    ) -> Result<(Grant<M::Connection>, Instant), PoolError> {
        match self.acquire(now, wait.may_queue, prefer_slot) {
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
    pub(super) fn put_back_inner(&self, conn: Conn<M::Connection>, warmed: bool) {
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
            let reason = if closed { CloseReason::PoolClosed } else { CloseReason::Resize };
            self.close_conn(conn, reason);
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

    /// Wraps a connection new to the pool (opened, or adopted by `add`) with a fresh
    /// id.
    pub(super) fn new_conn(&self, raw: M::Connection) -> Conn<M::Connection> {
        let now = Instant::now();
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        Conn { raw, id, created: now, last_used: now }
    }

    /// Closes (drops) a connection outside the lock, counts why and reports it.
    ///
    /// The connection's `Drop` is user code: a panic in it is caught and logged, so
    /// every caller goes on to give the slot back (or to close the next connection).
    /// That holds on a thread already unwinding too (a guard dropped by a panicking
    /// request handler), where a panic escaping this destructor would abort the
    /// process: a panic caught inside a destructor during unwinding does not.
    pub(crate) fn close_conn(&self, conn: Conn<M::Connection>, reason: CloseReason) {
        self.report_close(conn.id, conn.created, reason);
        crate::unwind::drop_guarded("dropping a connection", conn);
    }

    /// Counts and reports the close of connection `id`, opened at `created`: for
    /// `close_conn`, and where the connection was already dropped with a panicking
    /// check.
    pub(crate) fn report_close(&self, id: u64, created: Instant, reason: CloseReason) {
        self.counters.count_close(reason);
        if !matches!(reason, CloseReason::PoolClosed | CloseReason::Resize | CloseReason::Retain) {
            tracing::debug!(?reason, id, "poolside-connpool: blocking pool closes a connection");
        }
        if self.events.connections_enabled() {
            let age = created.elapsed();
            self.events.connection(ConnEvent::Close { id, age, reason: reason.name() });
        }
    }

    /// After a connection failed or expired, the caller holds an empty slot: if an
    /// idle connection may be taken, take it and give the empty slot up.
    pub(super) fn swap_slot_for_idle(&self) -> Option<Conn<M::Connection>> {
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

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}
