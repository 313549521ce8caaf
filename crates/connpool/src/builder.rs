//! Pool settings, the builder that validates them, and the wait policy.

use crate::error::BuildError;
use crate::hooks::{ErasedHooks, HookFuture};
use crate::manager::Manager;
use crate::meta::{CloseReason, ConnMeta};
use crate::pool::Pool;
use poolside_core::Events;
use std::time::Duration;

/// What `get` does when every connection is in use and the pool is at `max_size`.
///
/// ```
/// use poolside_connpool::WaitPolicy;
/// use std::time::Duration;
///
/// let policy = WaitPolicy::Timeout(Duration::from_millis(200));
/// assert_ne!(policy, WaitPolicy::default());
/// assert_eq!(WaitPolicy::default(), WaitPolicy::Timeout(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitPolicy {
    /// Wait in line, first come first served, for as long as it takes. Never the
    /// default: choose it explicitly.
    Queue,
    /// Fail at once with `Exhausted`.
    FailFast,
    /// Wait in line at most this long, then fail with `TimedOut`. The default is
    /// `Timeout(30 s)`, like sqlx and bb8.
    Timeout(Duration),
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy::Timeout(DEFAULT_WAIT)
    }
}

/// The largest `max_size` the pool accepts (2^32 − 1): far past any real pool, and
/// the bound its per-stripe counts are sized for.
pub(crate) const MAX_SIZE_LIMIT: usize = u32::MAX as usize;

/// The shortest janitor period accepted: a shorter one only burns a core.
const MIN_JANITOR_INTERVAL: Duration = Duration::from_millis(1);

/// The default wait: a caller gives up after 30 s rather than hang forever.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The builder's settings: the options both connection pools share (see
/// `crate::options` for their janitor period and expiry decisions).
pub(crate) use crate::options::Options as Config;

/// Configures and builds a [`Pool`]. Every setting is checked by [`Builder::build`].
///
/// ```
/// use poolside_connpool::{Builder, Manager, Pool, WaitPolicy};
/// use std::time::Duration;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Builder::new()
///     .max_size(16)
///     .min_idle(2)
///     .max_lifetime(Duration::from_secs(30 * 60))
///     .max_idle_time(Duration::from_secs(10 * 60))
///     .wait(WaitPolicy::Timeout(Duration::from_secs(1)))
///     .build(Noop)
///     .expect("valid settings");
/// assert_eq!(pool.max_size(), 16);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Builder<M = NoManager> {
    config: Config,
    events: Events,
    hooks: ErasedHooks,
    manager: M,
}

/// The manager slot of a [`Builder`] that has not been given one yet: such a builder
/// takes every setting and [`on_close`](Builder::on_close), and is finished by
/// [`build(manager)`](Builder::build) or typed by [`manager`](Builder::manager).
///
/// ```
/// use poolside_connpool::{Builder, NoManager};
/// let untyped: Builder<NoManager> = Builder::new().max_size(4);
/// # drop(untyped);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoManager;

impl Default for Builder {
    fn default() -> Self {
        Builder {
            // The shared defaults (`crate::options`), the same for the blocking pool.
            config: Config::default(),
            events: Events::none(),
            hooks: ErasedHooks::default(),
            manager: NoManager,
        }
    }
}

impl Builder {
    /// Default settings: max 10, no min idle, no lifetimes, checks after 500 ms
    /// unused, 3 health retries, 30 s connect timeout retried with a 10 ms → 500 ms
    /// backoff, wait at most 30 s ([`WaitPolicy::Timeout`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the builder its manager: the result is typed by it, so the connection
    /// hooks ([`after_connect`](Builder::after_connect),
    /// [`before_acquire`](Builder::before_acquire),
    /// [`after_release`](Builder::after_release)) know the connection type and take
    /// closures without annotations; finish with [`build()`](Builder::build).
    ///
    /// ```
    /// use poolside_connpool::{Builder, Manager};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = Vec<u8>;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<Vec<u8>, Self::Error> { Ok(Vec::new()) }
    /// #     async fn check(&self, _: &mut Vec<u8>) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Builder::new()
    ///     .max_size(4)
    ///     .manager(Noop)
    ///     .after_release(|conn, _meta| Box::pin(async move {
    ///         conn.clear();
    ///         Ok(true)
    ///     }))
    ///     .build()
    ///     .unwrap();
    /// # drop(pool);
    /// # }
    /// ```
    ///
    /// A hook written for another connection type does not compile:
    ///
    /// ```compile_fail
    /// use poolside_connpool::{Builder, Manager};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = Vec<u8>;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<Vec<u8>, Self::Error> { Ok(Vec::new()) }
    /// #     async fn check(&self, _: &mut Vec<u8>) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let builder = Builder::new()
    ///     .manager(Noop)
    ///     .after_connect(|conn: &mut String, _meta| Box::pin(async { Ok(()) }));
    /// ```
    pub fn manager<M: Manager>(self, manager: M) -> Builder<M> {
        Builder { config: self.config, events: self.events, hooks: self.hooks, manager }
    }

    /// Checks the settings and builds the pool for `manager`: the same as
    /// `self.manager(manager).build()`. When a janitor is needed (min_idle,
    /// max_lifetime or max_idle_time set) it is spawned on the current tokio runtime,
    /// and starts warming the pool to `min_idle` at once.
    pub fn build<M: Manager>(self, manager: M) -> Result<Pool<M>, BuildError> {
        self.manager(manager).build()
    }
}

impl<M> Builder<M> {
    /// Most connections open at once (idle + in use + being opened). At least 1, at
    /// most 2^32 − 1 ([`BuildError::OutOfRange`] otherwise).
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.config.max_size = max_size;
        self
    }

    /// Idle connections the janitor keeps ready (never above `max_size`). Only idle
    /// ones count: with all of them checked out, the janitor opens more (sqlx's
    /// `min_connections` counts the connections in use too).
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// Close connections older than this, on checkout, on return and in the janitor.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.max_lifetime = Some(lifetime);
        self
    }

    /// Close connections idle for longer than this, on checkout and in the janitor.
    /// `min_idle` does not protect them: the janitor replaces the ones it closes with
    /// fresh connections.
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager};
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
    /// let pool = Builder::new()
    ///     .min_idle(1)
    ///     .max_idle_time(Duration::from_secs(60))
    ///     .build(Noop)
    ///     .unwrap();
    /// assert_eq!(pool.get().await.unwrap().meta().id, 1);
    /// tokio::time::sleep(Duration::from_secs(90)).await;
    /// // Connection 1 idled out at 60 s; the janitor opened connection 2 in its place.
    /// assert_eq!(pool.status().idle, 1);
    /// assert_eq!(pool.get().await.unwrap().meta().id, 2);
    /// # }
    /// ```
    pub fn max_idle_time(mut self, idle: Duration) -> Self {
        self.config.max_idle_time = Some(idle);
        self
    }

    /// Skip the checkout health check for connections used within this window.
    /// `Duration::ZERO` checks on every checkout.
    pub fn health_check_after(mut self, window: Duration) -> Self {
        self.config.health_check_after = window;
        self
    }

    /// How many stale idle connections one `get` health-checks (and discards when they
    /// fail) before it stops looking at idle connections and dials a fresh one. A
    /// failed check is never the caller's error: the `get` fails only if that fresh
    /// dial does.
    pub fn max_health_retries(mut self, retries: u32) -> Self {
        self.config.max_health_retries = retries;
        self
    }

    /// Longest time one checkout health check may take, and the time one `get` may
    /// spend dialling: a failed dial is retried (see
    /// [`connect_retries`](Self::connect_retries)) until this much time has passed
    /// since the first attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The shared dial backoff: after a failed dial the pool waits a jittered delay
    /// growing from `min` to `max` (doubling per failed round, drawn from the upper
    /// half) before dialling again, one attempt per delay; a successful dial ends it
    /// at once. Callers that need a new connection meanwhile wait for the
    /// next attempt within their limits, or fail fast with
    /// [`GetError::Backoff`](crate::GetError::Backoff) (under
    /// [`WaitPolicy::FailFast`], in `try_get`, or when the next attempt lies beyond
    /// their deadline). Default: 10 ms → 500 ms, so a server that accepts again is
    /// dialled within half a second.
    ///
    /// ```
    /// # use poolside_connpool::{BuildError, Builder, Manager};
    /// # use std::time::Duration;
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let ms = Duration::from_millis;
    /// assert!(Builder::new().dial_backoff(ms(5), ms(500)).build(Noop).is_ok());
    /// let err = Builder::new().dial_backoff(ms(500), ms(5)).build(Noop).unwrap_err();
    /// assert_eq!(err, BuildError::BackoffRange { min: ms(500), max: ms(5) });
    /// ```
    pub fn dial_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max;
        self
    }

    /// How many times one `get` retries a failed dial (waiting out the backoff in
    /// between) before it reports the failure, always within
    /// [`connect_timeout`](Self::connect_timeout) of its first attempt. `0` makes a
    /// single attempt. Default: no count limit, only the connect timeout (like bb8's
    /// `retry_connection`). The error names the attempts and the last cause.
    ///
    /// ```
    /// # use poolside_connpool::{Builder, Manager};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Builder::new().connect_retries(2).build(Noop).unwrap();
    /// # drop(pool);
    /// ```
    pub fn connect_retries(mut self, retries: u32) -> Self {
        self.config.connect_retries = retries;
        self
    }

    /// What `get` does when the pool is exhausted.
    pub fn wait(mut self, policy: WaitPolicy) -> Self {
        self.config.wait = policy;
        self
    }

    /// Overrides the janitor's period (derived from the lifetimes by default). At
    /// least 1 ms ([`BuildError::OutOfRange`] below that, `ZeroDuration` for zero).
    pub fn janitor_interval(mut self, every: Duration) -> Self {
        self.config.janitor_interval = Some(every);
        self
    }

    /// Receives acquire-wait and dial timings (measured on tokio's clock).
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Calls `hook` (synchronously, so keep it short) every time the pool closes a
    /// connection, with its metadata and the [`CloseReason`]. Connections taken out
    /// with [`PooledConn::detach`](crate::PooledConn::detach) are not closed by the
    /// pool and are not reported. A panic in it is caught and logged.
    ///
    /// ```
    /// use poolside_connpool::{Builder, CloseReason, Manager};
    /// use std::sync::{Arc, Mutex};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let pool = Builder::new()
    ///     .on_close(move |meta, reason| log.lock().unwrap().push((meta.id, reason)))
    ///     .build(Noop)
    ///     .unwrap();
    /// drop(pool.get().await.unwrap());
    /// pool.close();
    /// assert_eq!(*seen.lock().unwrap(), [(1, CloseReason::PoolClosed)]);
    /// # }
    /// ```
    pub fn on_close<F>(mut self, hook: F) -> Self
    where
        F: Fn(ConnMeta, CloseReason) + Send + Sync + 'static,
    {
        self.hooks.set_on_close(std::sync::Arc::new(hook));
        self
    }

    fn validate(&self) -> Result<(), BuildError> {
        let c = &self.config;
        if c.max_size == 0 {
            return Err(BuildError::ZeroMaxSize);
        }
        if c.max_size > MAX_SIZE_LIMIT {
            return Err(BuildError::OutOfRange { setting: "max_size" });
        }
        if c.min_idle > c.max_size {
            return Err(BuildError::MinIdleAboveMaxSize {
                min_idle: c.min_idle,
                max_size: c.max_size,
            });
        }
        let durations = [
            ("max_lifetime", c.max_lifetime),
            ("max_idle_time", c.max_idle_time),
            ("connect_timeout", Some(c.connect_timeout)),
            ("janitor_interval", c.janitor_interval),
            ("dial backoff min", Some(c.backoff_min)),
            (
                "wait timeout",
                match c.wait {
                    WaitPolicy::Timeout(d) => Some(d),
                    _ => None,
                },
            ),
        ];
        if let Some((setting, _)) = durations.iter().find(|(_, d)| *d == Some(Duration::ZERO)) {
            return Err(BuildError::ZeroDuration { setting });
        }
        if c.janitor_interval.is_some_and(|every| !every.is_zero() && every < MIN_JANITOR_INTERVAL)
        {
            return Err(BuildError::OutOfRange { setting: "janitor_interval" });
        }
        if c.backoff_min > c.backoff_max {
            return Err(BuildError::BackoffRange { min: c.backoff_min, max: c.backoff_max });
        }
        if let (Some(idle), Some(life)) = (c.max_idle_time, c.max_lifetime) {
            if idle > life {
                return Err(BuildError::IdleTimeAboveLifetime);
            }
        }
        Ok(())
    }
}

/// The connection hooks and `build`, once the manager (and so the connection type)
/// is known.
impl<M: Manager> Builder<M> {
    /// Runs `hook` once on every new connection the pool opens, before anyone uses
    /// it (e.g. `SET search_path`, registering types). An error, a panic or running
    /// past `connect_timeout` discards the connection, and the dial counts as failed:
    /// it enters the dial backoff and is retried like a failed connect; the caller
    /// sees [`GetError::Hook`](crate::GetError::Hook) (or `Panicked`) if no retry
    /// succeeds. Connections handed to [`Pool::add`] are not passed to it.
    ///
    /// The builder knows the manager, so the closure needs no annotations: `conn` is
    /// `&mut M::Connection` and `meta` the connection's [`ConnMeta`].
    ///
    /// ```
    /// use poolside_connpool::{Builder, ConnMeta, Manager};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = Vec<String>;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<Vec<String>, Self::Error> { Ok(Vec::new()) }
    /// #     async fn check(&self, _: &mut Vec<String>) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Builder::new()
    ///     .manager(Numbers)
    ///     .after_connect(|conn, meta| {
    ///         Box::pin(async move {
    ///             conn.push(format!("SET application_name = 'conn-{}'", meta.id));
    ///             Ok(())
    ///         })
    ///     })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.get().await.unwrap()[0], "SET application_name = 'conn-1'");
    /// # }
    /// ```
    pub fn after_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a mut M::Connection, ConnMeta) -> HookFuture<'a, ()>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.update::<M::Connection>(|h| h.after_connect = Some(std::sync::Arc::new(hook)));
        self
    }

    /// Runs `hook` on an idle connection about to be handed out, after the cheap
    /// `is_broken` test and the health check (when one is due). `Ok(true)` hands it
    /// out; `Ok(false)`, an error, a panic or running past `connect_timeout` closes
    /// it ([`CloseReason::Hook`]) and the `get` moves on to the next idle connection
    /// (at most `max_health_retries + 1` refusals count, as for health checks), then
    /// dials. Freshly opened connections skip it (they just ran `after_connect`).
    ///
    /// The caller's wait limit ([`WaitPolicy::Timeout`], `get_timeout`) covers the
    /// hook like the rest of the `get`, as sqlx's `acquire_timeout` does: a hook still
    /// running when it ends fails the `get` with `TimedOut` and the connection, in an
    /// unknown state, is closed ([`CloseReason::Cancelled`]). A pool closed while the
    /// hook runs closes the connection instead of handing it out, and the `get` fails
    /// with `Closed`.
    ///
    /// ```
    /// use poolside_connpool::{Builder, ConnMeta, Manager};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u32;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u32, Self::Error> { Ok(0) }
    /// #     async fn check(&self, _: &mut u32) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Retire every connection after three uses.
    /// let pool = Builder::new()
    ///     .manager(Numbers)
    ///     .before_acquire(|_conn, meta| Box::pin(async move { Ok(meta.checkouts < 3) }))
    ///     .build()
    ///     .unwrap();
    /// for _ in 0..4 {
    ///     drop(pool.get().await.unwrap());
    /// }
    /// assert_eq!(pool.status().open, 1); // the first was replaced by a second
    /// # }
    /// ```
    pub fn before_acquire<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a mut M::Connection, ConnMeta) -> HookFuture<'a, bool>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.update::<M::Connection>(|h| h.before_acquire = Some(std::sync::Arc::new(hook)));
        self
    }

    /// Runs `hook` on a connection that came back (e.g. `DISCARD ALL`, rolling back
    /// an open transaction). Dropping the guard stays synchronous and cheap for the
    /// caller: the hook runs in a task on the tokio runtime, and the connection
    /// becomes available (to a waiter or the idle set) only after it returns
    /// `Ok(true)`; meanwhile it counts as in use. `Ok(false)`, an error, a panic or
    /// running past `connect_timeout` closes it ([`CloseReason::Hook`]). A guard
    /// dropped outside any tokio runtime cannot run the hook: its connection is
    /// closed (never reused unreset).
    ///
    /// ```
    /// use poolside_connpool::{Builder, ConnMeta, Manager};
    /// # struct Sessions;
    /// # impl Manager for Sessions {
    /// #     type Connection = Vec<u8>;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<Vec<u8>, Self::Error> { Ok(Vec::new()) }
    /// #     async fn check(&self, _: &mut Vec<u8>) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = Builder::new()
    ///     .max_size(1)
    ///     .manager(Sessions)
    ///     .after_release(|conn, _meta| {
    ///         Box::pin(async move {
    ///             conn.clear(); // reset session state
    ///             Ok(true)
    ///         })
    ///     })
    ///     .build()
    ///     .unwrap();
    /// pool.get().await.unwrap().push(1);
    /// assert!(pool.get().await.unwrap().is_empty()); // waited for the reset
    /// # }
    /// ```
    pub fn after_release<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a mut M::Connection, ConnMeta) -> HookFuture<'a, bool>
            + Send
            + Sync
            + 'static,
    {
        self.hooks.update::<M::Connection>(|h| h.after_release = Some(std::sync::Arc::new(hook)));
        self
    }

    /// Checks the settings and builds the pool. When a janitor is needed (min_idle,
    /// max_lifetime or max_idle_time set) it is spawned on the current tokio runtime,
    /// and starts warming the pool to `min_idle` at once.
    pub fn build(self) -> Result<Pool<M>, BuildError> {
        self.validate()?;
        let hooks = self.hooks.typed::<M::Connection>();
        Pool::from_parts(self.manager, self.config, self.events, hooks)
    }
}
