//! Pool settings, the builder that validates them, and the build error.

use super::manager::Manager;
use super::pool::Pool;
use crate::WaitPolicy;
use crate::options::{self, OptionError, Options};
use poolside_core::Events;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The largest `max_size` a builder or [`Pool::resize`] accepts (2^32 − 1, as for the
/// async pool).
pub const MAX_POOL_SIZE: usize = options::MAX_SIZE_LIMIT;
/// The longest duration any setting accepts (one year). For "wait forever" use
/// [`WaitPolicy::Queue`].
pub const MAX_DURATION: Duration = options::MAX_DURATION;
/// The most health-check retries one `get` may make.
pub const MAX_HEALTH_RETRIES: u32 = options::MAX_HEALTH_RETRIES;

/// Runs on every new connection before the pool first hands it out; an error closes
/// it and fails the dial.
pub(crate) type AfterConnect<M> =
    Arc<dyn Fn(&mut <M as Manager>::Connection) -> Result<(), <M as Manager>::Error> + Send + Sync>;

/// The shared [`Options`] (meaning, defaults and validation are the async pool's),
/// plus what only the blocking pool has.
pub(crate) struct Config<M: Manager> {
    pub(crate) options: Options,
    pub(crate) fair_after: Duration,
    pub(crate) after_connect: Option<AfterConnect<M>>,
}

impl<M: Manager> Clone for Config<M> {
    fn clone(&self) -> Self {
        Config {
            options: self.options,
            fair_after: self.fair_after,
            after_connect: self.after_connect.clone(),
        }
    }
}

/// Configures and builds a blocking [`Pool`]. The options and their meaning are the
/// async pool's ([`crate::Builder`]); every setting is checked by [`Builder::build`],
/// which returns a typed [`BuildError`] for values that make no sense (zero sizes and
/// durations, `usize::MAX`, `Duration::MAX`).
///
/// ```
/// use poolside_connpool::WaitPolicy;
/// use poolside_connpool::blocking::{Builder, Manager};
/// use std::time::Duration;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let pool = Builder::new()
///     .max_size(16)
///     .min_idle(2)
///     .max_lifetime(Duration::from_secs(30 * 60))
///     .max_idle_time(Duration::from_secs(10 * 60))
///     .wait(WaitPolicy::Timeout(Duration::from_secs(1)))
///     .build(Noop)
///     .expect("valid settings");
/// assert_eq!(pool.max_size(), 16);
/// ```
pub struct Builder<M: Manager> {
    config: Config<M>,
    events: Events,
}

impl<M: Manager> Clone for Builder<M> {
    fn clone(&self) -> Self {
        Builder { config: self.config.clone(), events: self.events.clone() }
    }
}

impl<M: Manager> fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("Builder")
            .field("options", &c.options)
            .field("fair_after", &c.fair_after)
            .field("after_connect", &c.after_connect.is_some())
            .field("events", &self.events)
            .finish()
    }
}

impl<M: Manager> Default for Builder<M> {
    fn default() -> Self {
        Builder {
            config: Config {
                options: Options::default(),
                fair_after: Duration::from_millis(1),
                after_connect: None,
            },
            events: Events::none(),
        }
    }
}

impl<M: Manager> Builder<M> {
    /// Default settings, the async pool's: max 10, no min idle, no lifetimes, checks
    /// after 500 ms unused, 3 health retries, 30 s connect timeout, wait in line at
    /// most 30 s, dial backoff 10 ms doubling to 500 ms; plus a strict hand-off to a
    /// waiter that waited 1 ms.
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
    /// let pool = Builder::new().build(Noop).unwrap();
    /// assert_eq!(pool.max_size(), 10);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Most connections open at once (idle + in use + being opened): 1 to
    /// [`MAX_POOL_SIZE`].
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Builder, BuildError, Manager};
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// assert_eq!(Builder::new().max_size(0).build(Noop).unwrap_err(), BuildError::ZeroMaxSize);
    /// assert!(Builder::new().max_size(usize::MAX).build(Noop).is_err());
    /// ```
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.config.options.max_size = max_size;
        self
    }

    /// Idle connections the janitor thread keeps ready (never above `max_size`).
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.options.min_idle = min_idle;
        self
    }

    /// Close connections older than this, on checkout, on return and in the janitor.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.options.max_lifetime = Some(lifetime);
        self
    }

    /// Close connections idle for longer than this (the janitor keeps `min_idle`).
    pub fn max_idle_time(mut self, idle: Duration) -> Self {
        self.config.options.max_idle_time = Some(idle);
        self
    }

    /// Skip the checkout health check for connections used within this window.
    /// `Duration::ZERO` checks on every checkout.
    pub fn health_check_after(mut self, window: Duration) -> Self {
        self.config.options.health_check_after = window;
        self
    }

    /// How many stale idle connections one `get` health-checks (and discards when
    /// they fail) before it stops looking at idle connections and dials a fresh one,
    /// as in the async pool (at most [`MAX_HEALTH_RETRIES`]). A failed, timed-out or
    /// panicking check is never the caller's error: the `get` fails only if that
    /// fresh dial does.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # use std::sync::atomic::{AtomicU32, AtomicBool, Ordering::SeqCst};
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// struct Flaky { next: AtomicU32, stale: Arc<AtomicBool> }
    /// impl Manager for Flaky {
    ///     type Connection = u32;
    ///     type Error = std::io::Error;
    ///     fn connect(&self) -> Result<u32, Self::Error> { Ok(self.next.fetch_add(1, SeqCst)) }
    ///     fn check(&self, _: &mut u32) -> Result<(), Self::Error> {
    ///         if self.stale.load(SeqCst) { Err(std::io::Error::other("gone")) } else { Ok(()) }
    ///     }
    /// }
    /// let stale = Arc::new(AtomicBool::new(false));
    /// let pool = Builder::new()
    ///     .health_check_after(Duration::ZERO)
    ///     .max_health_retries(0)
    ///     .build(Flaky { next: AtomicU32::new(0), stale: stale.clone() })
    ///     .unwrap();
    /// drop(pool.get().unwrap()); // connection 0, now idle
    /// stale.store(true, SeqCst);
    /// // Connection 0 fails its check and is closed; the get dials connection 1.
    /// assert_eq!(*pool.get().unwrap(), 1);
    /// ```
    pub fn max_health_retries(mut self, retries: u32) -> Self {
        self.config.options.max_health_retries = retries;
        self
    }

    /// The time one `get` may spend dialling, as in the async pool: a failed dial is
    /// retried (see [`connect_retries`](Self::connect_retries)) until this much time
    /// has passed since the first attempt, and a dial still running then is left to
    /// finish on its helper thread while the caller gets
    /// [`GetError::ConnectTimeout`](crate::GetError::ConnectTimeout). Also the
    /// longest one checkout health check may take (both are bounded by the
    /// caller's own deadline too) before it counts as failed.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.options.connect_timeout = timeout;
        self
    }

    /// How many times one `get` retries a failed dial (waiting out the shared
    /// backoff in between) before it reports the failure, always within
    /// [`connect_timeout`](Self::connect_timeout) of its first attempt — as in the
    /// async pool. `0` makes a single attempt. Default: no count limit, only the
    /// connect timeout. Several attempts are reported as
    /// [`GetError::ConnectFailed`](crate::GetError::ConnectFailed).
    ///
    /// ```
    /// # use poolside_connpool::GetError;
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # use std::time::Duration;
    /// struct Down;
    /// impl Manager for Down {
    ///     type Connection = ();
    ///     type Error = std::io::Error;
    ///     fn connect(&self) -> Result<(), Self::Error> { Err(std::io::Error::other("refused")) }
    ///     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// }
    /// let pool = Builder::new()
    ///     .connect_retries(2)
    ///     .dial_backoff(Duration::from_millis(1), Duration::from_millis(2))
    ///     .build(Down)
    ///     .unwrap();
    /// match pool.get().unwrap_err() {
    ///     GetError::ConnectFailed { attempts, .. } => assert_eq!(attempts, 3),
    ///     e => panic!("unexpected {e}"),
    /// }
    /// ```
    pub fn connect_retries(mut self, retries: u32) -> Self {
        self.config.options.connect_retries = retries;
        self
    }

    /// What `get` does when the pool is exhausted. The default waits in line at most
    /// 30 s; [`WaitPolicy::Queue`] waits as long as it takes. A limit covers the whole
    /// `get`, health checks and dials included: see [`Pool::get_timeout`].
    pub fn wait(mut self, policy: WaitPolicy) -> Self {
        self.config.options.wait = policy;
        self
    }

    /// A returned connection goes straight to the oldest waiting thread once that
    /// thread has waited this long; before that, the oldest waiter is woken and a
    /// running thread may take the connection first (no context switch per
    /// release). `Duration::ZERO` hands every returned connection to the oldest
    /// waiter. Either way waiters are served in arrival order and nobody waits much
    /// longer than this behind a newcomer.
    pub fn fair_after(mut self, bound: Duration) -> Self {
        self.config.fair_after = bound;
        self
    }

    /// The shared dial backoff, as in the async pool: after a failed dial, callers
    /// and the janitor wait a delay growing from `base` (doubling per further
    /// failure) up to `cap`, drawn from its upper half, before the pool dials again:
    /// one backoff shared by every caller, so a server that is down is not
    /// hammered. A caller that may not wait that long gets
    /// [`GetError::Backoff`](crate::GetError::Backoff). A successful dial resets it.
    /// Default: 10 ms → 500 ms.
    pub fn dial_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.options.backoff_min = base;
        self.config.options.backoff_max = cap;
        self
    }

    /// Overrides the janitor's period (by default a quarter of the shortest time
    /// limit, clamped to [100 ms, 30 s]). At least 1 ms.
    pub fn janitor_interval(mut self, every: Duration) -> Self {
        self.config.options.janitor_interval = Some(every);
        self
    }

    /// Runs on every new connection before it is first handed out (session
    /// settings, `PRAGMA`s, prepared statements), within the connect timeout. As in
    /// the async pool, an error or a panic closes the connection and the dial counts
    /// as failed: it enters the dial backoff and is retried like a failed connect;
    /// the caller sees [`GetError::Hook`](crate::GetError::Hook) if no retry
    /// succeeds, or [`GetError::Panicked`](crate::GetError::Panicked) at once for a
    /// panic. Connections handed to [`Pool::add`] are not passed to it.
    ///
    /// ```
    /// # use poolside_connpool::blocking::{Builder, Manager};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = Vec<u8>;
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<Vec<u8>, Self::Error> { Ok(Vec::new()) }
    /// #     fn check(&self, _: &mut Vec<u8>) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Builder::new()
    ///     .after_connect(|conn: &mut Vec<u8>| {
    ///         conn.push(1);
    ///         Ok(())
    ///     })
    ///     .build(Numbers)
    ///     .unwrap();
    /// assert_eq!(*pool.get().unwrap(), vec![1]);
    /// ```
    pub fn after_connect(
        mut self,
        hook: impl Fn(&mut M::Connection) -> Result<(), M::Error> + Send + Sync + 'static,
    ) -> Self {
        self.config.after_connect = Some(Arc::new(hook));
        self
    }

    /// Receives acquire-wait and dial timings and, as in the async pool, each
    /// connection's lifecycle events ([`ConnEvent`](crate::events::ConnEvent):
    /// connect, checkout, checkin, close, with the connection's id, counted from 1
    /// per pool) — r2d2's `HandleEvent`. Unset, it costs one branch per report.
    ///
    /// ```
    /// use poolside_connpool::blocking::{Builder, Manager};
    /// use poolside_connpool::events::{ConnEvent, EventHook, Events, Timing};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// # struct Noop;
    /// # impl Manager for Noop {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// #[derive(Default)]
    /// struct Log(Mutex<Vec<ConnEvent>>);
    /// impl EventHook for Log {
    ///     fn on_timing(&self, _: Timing, _: Duration) {}
    ///     fn on_connection(&self, event: ConnEvent) {
    ///         self.0.lock().unwrap().push(event);
    ///     }
    /// }
    /// let log = Arc::new(Log::default());
    /// let pool = Builder::new().events(Events::from_arc(log.clone())).build(Noop).unwrap();
    /// drop(pool.get().unwrap());
    /// let events = log.0.lock().unwrap();
    /// assert!(matches!(events[..], [
    ///     ConnEvent::Connect { id: 1, .. },
    ///     ConnEvent::Checkout { id: 1, .. },
    ///     ConnEvent::Checkin { id: 1, .. },
    /// ]));
    /// ```
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Checks the settings and builds the pool. When maintenance is needed
    /// (min_idle, max_lifetime or max_idle_time set) it starts the pool's janitor
    /// thread, which warms the pool to `min_idle` at once.
    pub fn build(self, manager: M) -> Result<Pool<M>, BuildError> {
        self.validate()?;
        Pool::from_parts(manager, self.config, self.events)
    }

    fn validate(&self) -> Result<(), BuildError> {
        self.config.options.validate()?;
        if self.config.fair_after > MAX_DURATION {
            return Err(BuildError::DurationTooLong { setting: "fair_after", limit: MAX_DURATION });
        }
        Ok(())
    }
}

/// The size rules shared by the builder and `resize`.
pub(crate) fn check_size(max_size: usize, min_idle: usize) -> Result<(), BuildError> {
    Ok(options::check_size(max_size, min_idle)?)
}

/// Why a blocking [`Builder`] refused its settings, or a resize was refused.
///
/// ```
/// use poolside_connpool::blocking::{BuildError, Builder, Manager};
/// use std::time::Duration;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let err = Builder::new().max_size(2).min_idle(3).build(Noop).unwrap_err();
/// assert_eq!(err, BuildError::MinIdleAboveMaxSize { min_idle: 3, max_size: 2 });
/// let err = Builder::new().connect_timeout(Duration::MAX).build(Noop).unwrap_err();
/// assert!(matches!(err, BuildError::DurationTooLong { setting: "connect_timeout", .. }));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// `max_size` must be at least 1.
    ZeroMaxSize,
    /// `max_size` above [`MAX_POOL_SIZE`].
    MaxSizeTooLarge {
        /// The requested maximum size.
        max_size: usize,
        /// The largest accepted.
        limit: usize,
    },
    /// `min_idle` may not exceed `max_size`.
    MinIdleAboveMaxSize {
        /// The requested minimum idle count.
        min_idle: usize,
        /// The requested maximum size.
        max_size: usize,
    },
    /// A duration setting was zero, which would make it meaningless.
    ZeroDuration {
        /// The setting's name.
        setting: &'static str,
    },
    /// A duration setting was longer than [`MAX_DURATION`].
    DurationTooLong {
        /// The setting's name.
        setting: &'static str,
        /// The longest accepted.
        limit: Duration,
    },
    /// `max_health_retries` above [`MAX_HEALTH_RETRIES`].
    TooManyHealthRetries {
        /// The requested number.
        retries: u32,
        /// The most accepted.
        limit: u32,
    },
    /// The dial backoff's cap is shorter than its base.
    BackoffCapBelowBase,
    /// A setting below its smallest accepted value (`janitor_interval` under 1 ms).
    OutOfRange {
        /// The setting's name.
        setting: &'static str,
    },
    /// `max_idle_time` is longer than `max_lifetime`, so it could never apply.
    IdleTimeAboveLifetime,
    /// The janitor thread could not be started.
    Spawn(std::io::ErrorKind),
    /// [`Pool::resize`] on a closed pool.
    Closed,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroMaxSize => f.write_str("max_size must be at least 1"),
            BuildError::MaxSizeTooLarge { max_size, limit } => {
                write!(f, "max_size ({max_size}) may not exceed {limit}")
            }
            BuildError::MinIdleAboveMaxSize { min_idle, max_size } => {
                write!(f, "min_idle ({min_idle}) may not exceed max_size ({max_size})")
            }
            BuildError::ZeroDuration { setting } => write!(f, "{setting} must be longer than zero"),
            BuildError::DurationTooLong { setting, limit } => {
                write!(f, "{setting} may not exceed {limit:?}")
            }
            BuildError::TooManyHealthRetries { retries, limit } => {
                write!(f, "max_health_retries ({retries}) may not exceed {limit}")
            }
            BuildError::BackoffCapBelowBase => {
                f.write_str("the dial backoff cap must not be shorter than its base")
            }
            BuildError::OutOfRange { setting } => write!(f, "{setting} is out of range"),
            BuildError::IdleTimeAboveLifetime => {
                f.write_str("max_idle_time may not exceed max_lifetime")
            }
            BuildError::Spawn(kind) => write!(f, "could not start the janitor thread: {kind}"),
            BuildError::Closed => f.write_str("the pool is closed"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<OptionError> for BuildError {
    fn from(e: OptionError) -> Self {
        match e {
            OptionError::ZeroMaxSize => BuildError::ZeroMaxSize,
            OptionError::MaxSizeTooLarge { max_size, limit } => {
                BuildError::MaxSizeTooLarge { max_size, limit }
            }
            OptionError::MinIdleAboveMaxSize { min_idle, max_size } => {
                BuildError::MinIdleAboveMaxSize { min_idle, max_size }
            }
            OptionError::ZeroDuration { setting } => BuildError::ZeroDuration { setting },
            OptionError::DurationTooLong { setting, limit } => {
                BuildError::DurationTooLong { setting, limit }
            }
            OptionError::OutOfRange { setting } => BuildError::OutOfRange { setting },
            OptionError::TooManyHealthRetries { retries, limit } => {
                BuildError::TooManyHealthRetries { retries, limit }
            }
            OptionError::BackoffRange { .. } => BuildError::BackoffCapBelowBase,
            OptionError::IdleTimeAboveLifetime => BuildError::IdleTimeAboveLifetime,
        }
    }
}
