//! The blocking pool's public API: building, `get`, status, runtime changes
//! (`resize`, `retain`, `add`), maintenance on demand and closing.

use super::bounded;
use super::config::{BuildError, Config, check_size};
use super::guard::PooledConn;
use super::janitor::{self, Janitor};
use super::manager::Manager;
use super::shared::{Backoff, Grant, Shared, State};
use super::stats::Counters;
use crate::PoolError;
use crate::{AddError, CloseReason, CloseTimeout, GetError, Status, WaitPolicy};
use parking_lot::{Condvar, Mutex};
use poolside_core::Events;
use std::collections::VecDeque;
use std::fmt;
use std::hash::RandomState;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

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
            max_size: config.options.max_size,
            closed: false,
            next_id: 0,
            nudged: None,
            backoff: Backoff::default(),
            warming: 0,
        };
        let needs_janitor = config.options.needs_janitor();
        let shared = Arc::new(Shared {
            manager,
            config,
            state: Mutex::new(state),
            drained: Condvar::new(),
            counters: Counters::default(),
            events,
            janitor: Arc::new(Janitor::default()),
            random: RandomState::new(),
            next_conn_id: AtomicU64::new(1),
        });
        if needs_janitor {
            janitor::spawn(&shared).map_err(|e| BuildError::Spawn(e.kind()))?;
        }
        let owner = Arc::new(Owner(shared.janitor.clone()));
        Ok(Pool { shared, _owner: owner })
    }

    /// Gets a connection, following the pool's [`WaitPolicy`] (by default: wait in
    /// line at most 30 s; a wait limit covers the whole `get`, as
    /// [`get_timeout`](Self::get_timeout) describes).
    ///
    /// Blocks the calling thread while it waits in line, dials, or health-checks.
    pub fn get(&self) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        match self.shared.config.options.wait {
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

    /// Gets a connection, taking at most `limit` in all: the wait in line, the wait
    /// for the shared dial backoff, dials (`connect` and the after-connect hook) and
    /// health checks ([`Manager::check`](super::Manager::check)) all count against it.
    ///
    /// A synchronous call cannot be interrupted, so a dial or check runs on a helper
    /// thread and the caller waits for it at most what is left of `limit` (and at
    /// most the connect timeout). When the limit runs out first the `get` fails with
    /// [`PoolError::TimedOut`] and the call finishes on its own: a connection it
    /// opened or found healthy joins the pool, a failed one is closed and its slot
    /// given back.
    ///
    /// The guarantee, precisely: the deadline is compared with the clock after each
    /// step that ran user code, and once it has passed the `get` hands nothing out:
    /// it fails with `TimedOut` (or with the failed dial or the backoff the time
    /// went to, as [`GetError`] describes). No connection whose dial or check ended
    /// after the deadline is handed out (it goes to the pool instead), and no health
    /// check starts after it. The one call not bounded is [`Manager::is_broken`]: it runs
    /// on the calling thread, so keep it cheap (no I/O); a connection used within
    /// `health_check_after` that it does not call broken is handed out without
    /// another clock reading. (r2d2's `connection_timeout` bounds only the wait:
    /// its `is_valid` runs unbounded on the calling thread, and a connection that
    /// passes it is handed out however late.)
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
    ///
    /// A health check counts against the limit too:
    ///
    /// ```
    /// use poolside_connpool::PoolError;
    /// use poolside_connpool::blocking::{Builder, Manager};
    /// use std::time::Duration;
    ///
    /// struct SlowPing;
    /// impl Manager for SlowPing {
    ///     type Connection = ();
    ///     type Error = std::io::Error;
    ///     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    ///     fn check(&self, _: &mut ()) -> Result<(), Self::Error> {
    ///         std::thread::sleep(Duration::from_millis(50));
    ///         Ok(())
    ///     }
    /// }
    /// let pool = Builder::new().health_check_after(Duration::ZERO).build(SlowPing).unwrap();
    /// drop(pool.get().unwrap()); // a fresh connection is not checked
    /// let err = pool.get_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(err.pool_error(), Some(PoolError::TimedOut { .. })));
    /// ```
    pub fn get_timeout(&self, limit: Duration) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        self.get_inner(Some(limit), true)
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
        let st = self.shared.lock();
        Status {
            open: st.open,
            idle: st.idle.len(),
            // As in the async pool: a slot being dialled or checked counts as in use.
            in_use: st.open - st.idle.len(),
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
    /// pool.close();
    /// assert_eq!(pool.resize(4), Err(poolside_connpool::blocking::BuildError::Closed));
    /// ```
    pub fn resize(&self, max_size: usize) -> Result<(), BuildError> {
        let shared = &*self.shared;
        check_size(max_size, shared.config.options.min_idle)?;
        let mut doomed = Vec::new();
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(BuildError::Closed);
            }
            st.max_size = max_size;
            while st.open > max_size {
                let Some(conn) = st.idle.pop() else { break };
                st.open -= 1;
                doomed.push(conn);
            }
            while st.open < max_size && !st.waiters.is_empty() {
                st.open += 1;
                let _ = Shared::<M>::deliver(&mut st, Grant::Slot);
            }
        }
        for conn in doomed {
            shared.close_conn(conn, CloseReason::Resize);
        }
        Ok(())
    }

    /// Keeps only the idle connections for which `keep(conn, age)` returns `true`;
    /// closes the others and returns how many. The janitor re-warms to `min_idle`.
    /// `keep` runs without the pool lock; a panic in it is caught and logged, and
    /// rejects that connection (closed as broken), as in the async pool. On a closed
    /// pool it fails with `Closed`.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Manager, Pool};
    /// # use poolside_connpool::PoolError;
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u32;
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<u32, Self::Error> { Ok(1) }
    /// #     fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::new(Noop);
    /// drop(pool.get().unwrap());
    /// let closed = pool.retain(|conn, _age| *conn != 1).unwrap();
    /// assert_eq!(closed, 1);
    /// assert_eq!(pool.status().open, 0);
    /// pool.close();
    /// assert_eq!(pool.retain(|_, _| true), Err(PoolError::Closed));
    /// ```
    pub fn retain(
        &self,
        mut keep: impl FnMut(&M::Connection, Duration) -> bool,
    ) -> Result<usize, PoolError> {
        let shared = &*self.shared;
        let taken = {
            let mut st = shared.lock();
            if st.closed {
                return Err(PoolError::Closed);
            }
            std::mem::take(&mut st.idle)
        };
        let now = Instant::now();
        let mut kept = Vec::with_capacity(taken.len());
        let mut doomed = Vec::new();
        for conn in taken {
            let age = now.saturating_duration_since(conn.created);
            match catch_unwind(AssertUnwindSafe(|| keep(&conn.raw, age))) {
                Ok(true) => kept.push(conn),
                Ok(false) => doomed.push((conn, CloseReason::Retain)),
                Err(panic) => {
                    tracing::error!(
                        panic = bounded::panic_message(&*panic),
                        "poolside-connpool: the retain predicate panicked; closing the connection"
                    );
                    doomed.push((conn, CloseReason::Broken));
                }
            }
        }
        let closed = doomed.len();
        // Oldest first, so the most recently used end up on top again.
        for conn in kept {
            shared.put_back(conn);
        }
        for (conn, reason) in doomed {
            shared.close_conn(conn, reason);
            shared.release_slot();
        }
        if closed > 0 {
            shared.janitor.wake();
        }
        Ok(closed)
    }

    /// Adopts a connection opened elsewhere: when the pool has a free slot it takes
    /// one, and the connection goes to the oldest waiting thread, else joins the
    /// idle connections (its lifetime counted from this call; `after_connect` is not
    /// run on it). When every slot is taken ([`AddError::Full`]) or the pool is
    /// closed ([`AddError::Closed`]) the connection is handed back inside the error,
    /// never dropped — the async pool's [`AddError`].
    ///
    /// ```
    /// # use poolside_connpool::AddError;
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = u32;
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<u32, Self::Error> { Ok(1) }
    /// #     fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Builder::new().max_size(1).build(Noop).unwrap();
    /// pool.add(9).unwrap();
    /// assert_eq!(pool.add(10).unwrap_err(), AddError::Full(10));
    /// assert_eq!(*pool.get().unwrap(), 9);
    /// pool.close();
    /// assert_eq!(pool.add(11).unwrap_err().into_inner(), 11);
    /// ```
    pub fn add(&self, conn: M::Connection) -> Result<(), AddError<M::Connection>> {
        let shared = &*self.shared;
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(AddError::Closed(conn));
            }
            if st.open >= st.max_size {
                return Err(AddError::Full(conn));
            }
            st.open += 1;
        }
        shared.put_back(shared.new_conn(conn));
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
            if st.warming == 0 || st.closed || st.idle.len() >= shared.config.options.min_idle {
                return;
            }
            shared.drained.wait(&mut st);
        }
    }

    /// Closes the pool: idempotent, and it returns at once. Waiters and later gets
    /// fail with `Closed`, and so does a `get` still health-checking or dialling its
    /// connection (that connection is closed, never handed out); idle connections
    /// are closed now, checked-out ones when they come back (also those whose return
    /// was under way). The janitor thread ends.
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
            shared.close_conn(conn, CloseReason::PoolClosed);
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
