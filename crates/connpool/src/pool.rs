//! The pool: shared state, FIFO handoff to waiters, checkout and return.
//!
//! One `parking_lot` mutex guards the idle stack, the waiter queue and the slot
//! counts; it is held only for O(1) pushes and pops (removing a cancelled waiter is
//! the one linear step). Invariant: idle connections and waiters never coexist, and
//! waiters exist only while every slot is taken, because a released connection or
//! slot always goes to the oldest waiter first. Anything in flight between two
//! owners (a grant sent to a waiter, a connection being checked, a slot being
//! dialled) sits in a value whose `Drop` gives it back, so a dropped future at any
//! await point leaks nothing and swallows no wake-up.

use crate::config::{Builder, Config, WaitPolicy};
use crate::error::{BuildError, CloseTimeout, GetError};
use crate::guard::PooledConn;
use crate::janitor::{self, Signal};
use crate::manager::Manager;
use crate::stats::{Counters, Gauges};
use parking_lot::{Mutex, MutexGuard};
use poolside_core::{Events, PoolError, Timing};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
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
    idle: VecDeque<Conn<C>>,
    waiters: VecDeque<Waiter<C>>,
    /// Slots taken: idle + in use + being opened or checked.
    open: usize,
    /// Connections checked out (including those being health-checked).
    in_use: usize,
    max_size: usize,
    closed: bool,
    next_waiter: u64,
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

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: Config,
    state: Mutex<State<M::Connection>>,
    /// Gauges and the hot counters, written only under `state`'s lock.
    pub(crate) gauges: Gauges,
    pub(crate) counters: Counters,
    pub(crate) events: Events,
    pub(crate) signal: Arc<Signal>,
    /// Notified whenever a slot is given up after close, for `close_graceful`.
    drained: Notify,
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        self.signal.pool_gone();
    }
}

/// Sends `grant` to the oldest waiter whose future is still alive, under the lock
/// (used by the rare `resize`); gives it back when there is none. Waiters whose
/// futures were dropped are skipped (their `Queued` guard removes them, but may lose
/// the race with this pop).
fn send_to_oldest<C>(waiters: &mut VecDeque<Waiter<C>>, mut grant: Grant<C>) -> Option<Grant<C>> {
    while let Some(waiter) = waiters.pop_front() {
        match waiter.tx.send(grant) {
            Ok(()) => return None,
            Err(back) => grant = back,
        }
    }
    Some(grant)
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
    fn publish(&self, st: &State<M::Connection>) {
        self.gauges.publish(st.open, st.idle.len(), st.in_use, st.waiters.len());
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

    /// Counts a connection handed out by a slow path (dial, check, hand-off).
    fn count_acquire(&self) {
        let _st = self.lock();
        self.gauges.bump_acquires();
    }

    /// Takes an idle connection or a free slot, or queues (when allowed).
    /// The common case (an idle connection used within the health-check window and
    /// within its limits) is decided here, under one lock, at `now`.
    fn acquire(&self, may_queue: bool, now: Instant) -> Acquire<M::Connection> {
        let mut st = self.lock();
        if st.closed {
            return Acquire::Closed;
        }
        if let Some(mut conn) = st.idle.pop_back() {
            st.in_use += 1;
            self.publish(&st);
            if self.is_fresh(&conn, now) {
                self.gauges.bump_acquires();
                conn.last_used = now;
                return Acquire::Fresh(conn);
            }
            return Acquire::Ready(Grant::Conn(conn));
        }
        if st.open < st.max_size {
            st.open += 1;
            self.publish(&st);
            return Acquire::Ready(Grant::Slot);
        }
        self.gauges.bump_exhaustions();
        if !may_queue {
            return Acquire::Exhausted;
        }
        let id = st.next_waiter;
        st.next_waiter += 1;
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(Waiter { id, tx });
        self.publish(&st);
        Acquire::Queued(id, rx)
    }

    /// Puts a checked-out, healthy connection back: to the oldest live waiter, else
    /// onto the idle stack.
    /// `counted` is false for a fresh connection that never went to a caller.
    pub(crate) fn put_back(&self, conn: Conn<M::Connection>, counted: bool) {
        let st = self.lock();
        if counted {
            self.gauges.bump_releases();
        }
        if st.closed || st.open > st.max_size {
            drop(st);
            self.close_conn(conn, CloseReason::Removed);
            self.release_slot(true);
            return;
        }
        let Some((mut st, grant)) = self.hand_to_oldest(st, Grant::Conn(conn)) else { return };
        // No live waiter: keep the connection, unless the pool closed or shrank while
        // the lock was released for a hand-off attempt.
        st.in_use -= 1;
        match grant {
            Grant::Conn(conn) if !st.closed && st.open <= st.max_size => {
                st.idle.push_back(conn);
                self.publish(&st);
            }
            grant => {
                st.open -= 1;
                let drained = st.closed && st.open == 0;
                self.publish(&st);
                drop(st);
                if let Grant::Conn(conn) = grant {
                    self.close_conn(conn, CloseReason::Removed);
                }
                if drained {
                    self.drained.notify_waiters();
                }
            }
        }
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
    pub(crate) fn release_slot(&self, had_conn: bool) {
        let mut st = self.lock();
        if had_conn {
            st.in_use -= 1;
        }
        if !st.closed && st.open <= st.max_size {
            match self.hand_to_oldest(st, Grant::Slot) {
                None => return,
                Some((again, _slot)) => st = again,
            }
        }
        st.open -= 1;
        let below_min = !st.closed && st.idle.len() < self.config.min_idle;
        let drained = st.closed && st.open == 0;
        self.publish(&st);
        drop(st);
        if below_min {
            self.signal.wake();
        }
        if drained {
            self.drained.notify_waiters();
        }
    }

    /// Converts a checked-out connection's slot into an empty one (the connection was
    /// closed but the caller keeps the slot to open a replacement).
    fn keep_slot_only(&self) {
        let mut st = self.lock();
        st.in_use -= 1;
        self.publish(&st);
    }

    /// Admits a connection the caller just opened on a slot it held: marks it in use,
    /// unless the pool closed meanwhile.
    fn admit_in_use(&self) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.in_use += 1;
        self.publish(&st);
        true
    }

    pub(crate) fn close_conn(&self, conn: Conn<M::Connection>, reason: CloseReason) {
        self.counters.count_close(reason);
        tracing::debug!(?reason, age = ?conn.created.elapsed(), "poolside-connpool: closing a connection");
        drop(conn);
    }

    /// Opens a connection on a slot the caller holds, bounded by the connect timeout.
    async fn dial(&self) -> Result<Conn<M::Connection>, GetError<M::Error>> {
        self.counters.bump(&self.counters.dials);
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.config.connect_timeout, self.manager.connect()).await;
        self.events.record(Timing::Dial, started.elapsed());
        match outcome {
            Ok(Ok(raw)) => {
                let now = Instant::now();
                Ok(Conn { raw, created: now, last_used: now })
            }
            Ok(Err(e)) => {
                self.counters.bump(&self.counters.dial_errors);
                tracing::warn!(error = %e, "poolside-connpool: opening a connection failed");
                Err(GetError::Connect(e))
            }
            Err(_) => {
                self.counters.bump(&self.counters.dial_errors);
                let after = self.config.connect_timeout;
                tracing::warn!(?after, "poolside-connpool: opening a connection timed out");
                Err(GetError::ConnectTimeout { after })
            }
        }
    }

    /// Opens one connection for the idle stack if the pool is below `target` idle
    /// connections and has a free slot. Returns whether it added one.
    pub(crate) async fn warm_one(&self, target: usize) -> Result<bool, GetError<M::Error>> {
        {
            let mut st = self.lock();
            if st.closed || st.idle.len() >= target || st.open >= st.max_size {
                return Ok(false);
            }
            st.open += 1;
            self.publish(&st);
        }
        let mut slot = Pending::new(self, Grant::Slot);
        let conn = self.dial().await?;
        slot.holds_slot = false;
        if self.admit_in_use() {
            self.put_back(conn, false);
            Ok(true)
        } else {
            self.close_conn(conn, CloseReason::Removed);
            self.release_slot(false);
            Ok(false)
        }
    }

    /// Closes idle connections past their limits, keeping `min_idle` against the idle
    /// limit (lifetime always wins: those are replaced by the re-warm).
    pub(crate) fn sweep(&self, now: Instant) {
        let mut doomed = Vec::new();
        {
            let mut st = self.lock();
            let mut idle_left = st.idle.len();
            let min_idle = self.config.min_idle;
            let mut kept = VecDeque::with_capacity(st.idle.len());
            // Oldest-used first, so the idle limit closes the coldest connections.
            while let Some(conn) = st.idle.pop_front() {
                match self.expired(&conn, now) {
                    Some(CloseReason::Idle) if idle_left <= min_idle => kept.push_back(conn),
                    Some(reason) => {
                        idle_left -= 1;
                        doomed.push((conn, reason));
                    }
                    None => kept.push_back(conn),
                }
            }
            st.idle = kept;
            st.open -= doomed.len();
            self.publish(&st);
        }
        for (conn, reason) in doomed {
            self.close_conn(conn, reason);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
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
                self.shared.close_conn(conn, CloseReason::Removed);
                self.shared.release_slot(true);
            }
            None => self.shared.release_slot(false),
        }
    }
}

/// What `checkout` does next with the slot it holds.
enum Verdict {
    Dial,
    Expired(CloseReason),
    Fresh,
    Check,
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
            Ok(Grant::Slot) => self.shared.release_slot(false),
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
    /// Slots taken: idle + in use + being opened.
    pub open: usize,
    /// Connections waiting in the pool.
    pub idle: usize,
    /// Connections checked out.
    pub in_use: usize,
    /// Callers waiting in line.
    pub waiting: usize,
    /// The current maximum size.
    pub max_size: usize,
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
    ) -> Result<Self, BuildError> {
        let runtime = if config.needs_janitor() {
            Some(tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?)
        } else {
            None
        };
        let state = State {
            idle: VecDeque::with_capacity(config.max_size),
            waiters: VecDeque::new(),
            open: 0,
            in_use: 0,
            max_size: config.max_size,
            closed: false,
            next_waiter: 0,
        };
        let shared = Arc::new(Shared {
            manager,
            state: Mutex::new(state),
            gauges: Gauges::default(),
            counters: Counters::default(),
            events,
            signal: Arc::new(Signal::default()),
            drained: Notify::new(),
            config,
        });
        shared.gauges.publish(0, 0, 0, 0);
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
            WaitPolicy::Queue => self.get_inner(true).await,
            WaitPolicy::FailFast => self.get_inner(false).await,
            WaitPolicy::Timeout(limit) => self.get_timeout(limit).await,
        }
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
        self.get_inner(false).await
    }

    /// Gets a connection, waiting in line at most `limit` (including the time to open
    /// and check it).
    pub async fn get_timeout(
        &self,
        limit: Duration,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        match tokio::time::timeout(limit, self.get_inner(true)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.shared.counters.bump(&self.shared.counters.timeouts);
                Err(GetError::Pool(PoolError::TimedOut { waited: limit }))
            }
        }
    }

    async fn get_inner(&self, may_queue: bool) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let now = Instant::now();
        let grant = match shared.acquire(may_queue, now) {
            Acquire::Fresh(conn) => {
                shared.events.record(Timing::AcquireWait, Duration::ZERO);
                return Ok(PooledConn::new(self, conn));
            }
            Acquire::Ready(grant) => grant,
            Acquire::Closed => return Err(PoolError::Closed.into()),
            Acquire::Exhausted => return Err(PoolError::Exhausted.into()),
            Acquire::Queued(id, rx) => {
                let mut queued = Queued { shared, id, rx, resolved: false };
                let outcome = (&mut queued.rx).await;
                queued.resolved = true;
                drop(queued);
                outcome.map_err(|_| GetError::Pool(PoolError::Closed))?
            }
        };
        let conn = self.checkout(grant).await;
        if shared.events.is_enabled() {
            // Waiting in line plus opening or checking the connection.
            shared.events.record(Timing::AcquireWait, now.elapsed());
        }
        conn
    }

    /// Turns a grant into a guard: lifetime check, health check with bounded retries,
    /// or a dial.
    async fn checkout(
        &self,
        grant: Grant<M::Connection>,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let mut pending = Pending::new(shared, grant);
        let mut failed_checks = 0u32;
        loop {
            let now = Instant::now();
            let verdict = match &pending.conn {
                None => Verdict::Dial,
                Some(conn) => match shared.expired(conn, now) {
                    Some(reason) => Verdict::Expired(reason),
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
                    let conn = shared.dial().await?;
                    pending.holds_slot = false;
                    if !shared.admit_in_use() {
                        shared.close_conn(conn, CloseReason::Removed);
                        shared.release_slot(false);
                        return Err(PoolError::Closed.into());
                    }
                    return Ok(self.hand_out(conn));
                }
                Verdict::Expired(reason) => {
                    if let Some(conn) = pending.conn.take() {
                        shared.close_conn(conn, reason);
                        shared.keep_slot_only();
                    }
                }
                Verdict::Fresh => {
                    if let Some(mut conn) = pending.conn.take() {
                        pending.holds_slot = false;
                        conn.last_used = now;
                        return Ok(self.hand_out(conn));
                    }
                }
                Verdict::Check => {
                    shared.counters.bump(&shared.counters.health_checks);
                    // Bounded like a dial, so a black-holed peer cannot hang `get`.
                    let limit = shared.config.connect_timeout;
                    let checked = match pending.conn.as_mut() {
                        Some(conn) => {
                            tokio::time::timeout(limit, shared.manager.check(&mut conn.raw)).await
                        }
                        None => continue,
                    };
                    let Some(conn) = pending.conn.take() else { continue };
                    match checked {
                        Ok(Ok(())) => {
                            pending.holds_slot = false;
                            let mut conn = conn;
                            conn.last_used = Instant::now();
                            return Ok(self.hand_out(conn));
                        }
                        Ok(Err(_)) | Err(_) => {
                            failed_checks += 1;
                            shared.counters.bump(&shared.counters.health_fails);
                            shared.close_conn(conn, CloseReason::Broken);
                            shared.keep_slot_only();
                            let failure = match checked {
                                Ok(Err(last)) => {
                                    tracing::debug!(error = %last, "poolside-connpool: health check failed");
                                    GetError::HealthCheck { attempts: failed_checks, last }
                                }
                                _ => {
                                    tracing::debug!(
                                        ?limit,
                                        "poolside-connpool: health check timed out"
                                    );
                                    GetError::HealthCheckTimeout {
                                        attempts: failed_checks,
                                        after: limit,
                                    }
                                }
                            };
                            if failed_checks > shared.config.max_health_retries {
                                return Err(failure);
                            }
                            if let Grant::Conn(idle) = shared.swap_slot_for_idle() {
                                // The slot we held was given up for the idle connection's.
                                pending.conn = Some(idle);
                            }
                        }
                    }
                }
            }
        }
    }

    fn hand_out(&self, conn: Conn<M::Connection>) -> PooledConn<'_, M> {
        self.shared.count_acquire();
        PooledConn::new(self, conn)
    }

    /// Current levels.
    pub fn status(&self) -> Status {
        self.shared.gauges.status(self.max_size())
    }

    /// The current maximum size.
    pub fn max_size(&self) -> usize {
        self.shared.lock().max_size
    }

    /// Changes the maximum size at runtime. Growing hands the new slots to waiters;
    /// shrinking closes idle connections now and in-use ones as they come back.
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
    /// ```
    pub fn resize(&self, max_size: usize) -> Result<(), BuildError> {
        let shared = &*self.shared;
        if max_size == 0 {
            return Err(BuildError::ZeroMaxSize);
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
            st.max_size = max_size;
            while st.open > max_size {
                let Some(conn) = st.idle.pop_front() else { break };
                st.open -= 1;
                doomed.push(conn);
            }
            while st.open < max_size && send_to_oldest(&mut st.waiters, Grant::Slot).is_none() {
                st.open += 1;
            }
            shared.publish(&st);
        }
        for conn in doomed {
            shared.close_conn(conn, CloseReason::Removed);
        }
        Ok(())
    }

    /// Keeps only the idle connections for which `keep` returns `true`; closes the
    /// others. The janitor re-warms to `min_idle` afterwards.
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
    /// let closed = pool.retain(|conn, _age| *conn != 1);
    /// assert_eq!(closed, 1);
    /// assert_eq!(pool.status().open, 0);
    /// # }
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&M::Connection, Duration) -> bool) -> usize {
        let shared = &*self.shared;
        let now = Instant::now();
        let doomed: VecDeque<_> = {
            let mut st = shared.lock();
            let all = std::mem::take(&mut st.idle);
            let (kept, doomed): (VecDeque<_>, VecDeque<_>) =
                all.into_iter().partition(|c| keep(&c.raw, now.duration_since(c.created)));
            st.idle = kept;
            st.open -= doomed.len();
            shared.publish(&st);
            doomed
        };
        let closed = doomed.len();
        for conn in doomed {
            shared.close_conn(conn, CloseReason::Removed);
        }
        if closed > 0 {
            shared.signal.wake();
        }
        closed
    }

    /// Opens connections until `target` are idle (bounded by `max_size`), e.g. to
    /// pre-warm before traffic. Returns how many it opened.
    pub async fn warm(&self, target: usize) -> Result<usize, GetError<M::Error>> {
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
            let idle = std::mem::take(&mut st.idle);
            st.open -= idle.len();
            let waiters = std::mem::take(&mut st.waiters);
            shared.publish(&st);
            (idle, waiters)
        };
        // Dropping the senders wakes every waiter with `Closed`.
        drop(waiters);
        for conn in idle {
            shared.close_conn(conn, CloseReason::Removed);
        }
        shared.signal.closed();
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
    /// After a failed health check the caller holds an empty slot: if an idle
    /// connection exists (so nobody waits), check that one instead of dialling.
    fn swap_slot_for_idle(&self) -> Grant<M::Connection> {
        let mut st = self.lock();
        match st.idle.pop_back() {
            Some(conn) => {
                st.open -= 1;
                st.in_use += 1;
                self.publish(&st);
                Grant::Conn(conn)
            }
            None => Grant::Slot,
        }
    }
}
