//! The public [`Pool`] API: construction, `get`, status, resize, retain, add, warm
//! and close.
//!
//! - `shared`: the state every clone shares and the hand-off protocol (waiter queue,
//!   idle stripes, slot accounting).
//! - `checkout`: the `get` path, dialling and the guards that keep a dropped future
//!   from leaking.

mod checkout;
mod line;
mod shared;

pub(crate) use shared::{Conn, Grant, Shared};
use shared::{State, send_to_oldest};

use crate::PoolError;
use crate::backoff::Backoff;
use crate::builder::{Builder, Config, WaitPolicy};
use crate::clock::Clock;
use crate::error::{AddError, BuildError, CloseTimeout, GetError, ResizeError};
use crate::guard::PooledConn;
use crate::hooks::Hooks;
use crate::idle::Stripes;
use crate::janitor::{self, Signal};
use crate::manager::Manager;
pub(crate) use crate::meta::CloseReason;
use crate::meta::ConnMeta;
use crate::stats::{Counters, Gauges};
use crossbeam_utils::CachePadded;
use poolside_core::Events;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

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

impl Pool<crate::tcp::TcpManager> {
    /// The builder, as the entry point: `Pool::builder()` is [`Builder::new()`],
    /// like `WorkerPool::builder()` and `BufPool::builder()`. The manager given to
    /// [`Builder::build`] decides the pool's type, whatever it is (this function
    /// lives on one concrete `Pool` type only so that `Pool::builder()` needs no type
    /// annotation). For the connection hooks, give the manager first:
    /// `Pool::builder().manager(m).after_connect(|conn, meta| ..).build()`.
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
            waiters: line::Line::default(),
            dialers: VecDeque::new(),
            open: 0,
            max_size: config.max_size,
            closed: false,
            next_waiter: 0,
        };
        let shared = Arc::new_cyclic(|me| Shared {
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
            spin_misses: CachePadded::new(AtomicU32::new(0)),
            clock: Clock::new(config.health_check_after),
            me: me.clone(),
            timekeeper: Arc::default(),
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
    /// closed pool, or with a size the pool cannot take, it changes nothing and says
    /// why in a [`ResizeError`].
    ///
    /// ```
    /// # use poolside_connpool::{Manager, Pool, ResizeError};
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
    /// assert_eq!(pool.resize(0), Err(ResizeError::Zero));
    /// pool.close();
    /// assert_eq!(pool.resize(4), Err(ResizeError::Closed));
    /// ```
    pub fn resize(&self, max_size: usize) -> Result<(), ResizeError> {
        let shared = &*self.shared;
        if shared.is_closed() {
            return Err(ResizeError::Closed);
        }
        if max_size == 0 {
            return Err(ResizeError::Zero);
        }
        if max_size > crate::builder::MAX_SIZE_LIMIT {
            return Err(ResizeError::TooLarge { max_size });
        }
        if shared.config.min_idle > max_size {
            return Err(ResizeError::BelowMinIdle { max_size, min_idle: shared.config.min_idle });
        }
        let mut doomed = Vec::new();
        {
            let mut st = shared.lock();
            if st.closed {
                return Err(ResizeError::Closed);
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
    /// `add` does not judge the connection (bb8's `add` refuses a broken one): like an
    /// idle connection it is judged before it is handed out, whichever caller it
    /// goes to, so one that [`Manager::is_broken`] rejects (or `before_acquire`
    /// refuses) is closed then, never handed out.
    ///
    /// A caller waiting while the pool opens a connection for it (or waits out the
    /// dial backoff after failed dials) holds a slot: the added connection goes to
    /// the oldest such caller and fills its slot, even when every slot is taken, and
    /// that caller's dial is abandoned.
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
            let conn = shared.new_conn(conn);
            // A caller dialling (or backing off) on a slot it holds, with nobody
            // queued behind a free slot: the connection takes that caller's slot, so
            // `open` does not change, and the caller stops dialling.
            let conn = if st.waiters.is_empty() || st.open >= st.max_size {
                match shared.adopt_for_dialer(&mut st, conn) {
                    Ok(meta) => return Ok(meta),
                    Err(back) => back,
                }
            } else {
                conn
            };
            if st.open >= st.max_size {
                return Err(AddError::Full(conn.raw));
            }
            st.open += 1;
            shared.publish(&st);
            conn
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

    /// Closes the pool: idempotent, and it returns at once (sqlx's `close().await`,
    /// which waits for the connections out, is [`close_graceful`](Self::close_graceful)).
    /// Waiters and later gets fail with `Closed`, and so does a get still checking,
    /// preparing or dialling its connection (that connection is closed, never handed
    /// out); idle connections are closed now, checked-out ones when they come back.
    pub fn close(&self) {
        let shared = &*self.shared;
        let (idle, waiters) = {
            let mut st = shared.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            shared.closed.store(true, Ordering::SeqCst);
            shared.clock.stop();
            // Pairs with `after_push`: a connection pushed concurrently is either
            // drained here or seen there.
            fence(Ordering::SeqCst);
            let idle = shared.idle.drain();
            st.open -= idle.len();
            let waiters = (st.waiters.take_all(), std::mem::take(&mut st.dialers));
            shared.publish(&st);
            (idle, waiters)
        };
        // Dropping the senders wakes every waiter with `Closed` (and every caller
        // dialling on a slot, which then finds the pool closed).
        drop(waiters);
        for conn in idle {
            shared.close_conn(conn, CloseReason::PoolClosed);
        }
        shared.signal.closed();
        // The timekeeper finds the pool closed and ends.
        shared.timekeeper.nudge();
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
