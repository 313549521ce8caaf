//! Pool settings, the builder that validates them, and the build error.

use super::manager::Manager;
use super::pool::Pool;
use crate::WaitPolicy;
use poolside_core::Events;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The largest `max_size` a builder or [`Pool::resize`] accepts.
pub const MAX_POOL_SIZE: usize = 1 << 20;
/// The longest duration any setting accepts (one year). For "wait forever" use
/// [`WaitPolicy::Queue`].
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// The most health-check retries one `get` may make.
pub const MAX_HEALTH_RETRIES: u32 = 1_000;

/// Runs on every new connection before the pool first hands it out; an error closes
/// it and fails the dial.
pub(crate) type AfterConnect<M> =
    Arc<dyn Fn(&mut <M as Manager>::Connection) -> Result<(), <M as Manager>::Error> + Send + Sync>;

pub(crate) struct Config<M: Manager> {
    pub(crate) max_size: usize,
    pub(crate) min_idle: usize,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) max_idle_time: Option<Duration>,
    pub(crate) health_check_after: Duration,
    pub(crate) max_health_retries: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) wait: WaitPolicy,
    pub(crate) fair_after: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_cap: Duration,
    pub(crate) janitor_interval: Option<Duration>,
    pub(crate) after_connect: Option<AfterConnect<M>>,
}

impl<M: Manager> Clone for Config<M> {
    fn clone(&self) -> Self {
        Config {
            max_size: self.max_size,
            min_idle: self.min_idle,
            max_lifetime: self.max_lifetime,
            max_idle_time: self.max_idle_time,
            health_check_after: self.health_check_after,
            max_health_retries: self.max_health_retries,
            connect_timeout: self.connect_timeout,
            wait: self.wait,
            fair_after: self.fair_after,
            backoff_base: self.backoff_base,
            backoff_cap: self.backoff_cap,
            janitor_interval: self.janitor_interval,
            after_connect: self.after_connect.clone(),
        }
    }
}

impl<M: Manager> Config<M> {
    /// How often the janitor wakes: a quarter of the shortest connection time limit,
    /// clamped to [10 ms, 30 s], so an expired connection lives at most ~25 % past
    /// its limit (it is also checked on checkout and return).
    pub(crate) fn janitor_period(&self) -> Duration {
        if let Some(every) = self.janitor_interval {
            return every;
        }
        let shortest = [self.max_lifetime, self.max_idle_time].into_iter().flatten().min();
        match shortest {
            Some(limit) => (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(30)),
            None => Duration::from_secs(30),
        }
    }

    pub(crate) fn needs_janitor(&self) -> bool {
        self.min_idle > 0 || self.max_lifetime.is_some() || self.max_idle_time.is_some()
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
            .field("max_size", &c.max_size)
            .field("min_idle", &c.min_idle)
            .field("max_lifetime", &c.max_lifetime)
            .field("max_idle_time", &c.max_idle_time)
            .field("health_check_after", &c.health_check_after)
            .field("max_health_retries", &c.max_health_retries)
            .field("connect_timeout", &c.connect_timeout)
            .field("wait", &c.wait)
            .field("fair_after", &c.fair_after)
            .field("dial_backoff", &(c.backoff_base, c.backoff_cap))
            .field("janitor_interval", &c.janitor_interval)
            .field("after_connect", &c.after_connect.is_some())
            .field("events", &self.events)
            .finish()
    }
}

impl<M: Manager> Default for Builder<M> {
    fn default() -> Self {
        Builder {
            config: Config {
                max_size: 10,
                min_idle: 0,
                max_lifetime: None,
                max_idle_time: None,
                health_check_after: Duration::from_millis(500),
                max_health_retries: 3,
                connect_timeout: Duration::from_secs(30),
                wait: WaitPolicy::Timeout(Duration::from_secs(30)),
                fair_after: Duration::from_millis(1),
                backoff_base: Duration::from_millis(25),
                backoff_cap: Duration::from_secs(5),
                janitor_interval: None,
                after_connect: None,
            },
            events: Events::none(),
        }
    }
}

impl<M: Manager> Builder<M> {
    /// Default settings: max 10, no min idle, no lifetimes, checks after 500 ms
    /// unused, 3 health retries, 30 s connect timeout, wait in line at most 30 s,
    /// strict hand-off to a waiter that waited 1 ms, dial backoff 25 ms doubling to 5 s.
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
        self.config.max_size = max_size;
        self
    }

    /// Idle connections the janitor thread keeps ready (never above `max_size`).
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// Close connections older than this, on checkout, on return and in the janitor.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.max_lifetime = Some(lifetime);
        self
    }

    /// Close connections idle for longer than this (the janitor keeps `min_idle`).
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
        self.config.max_health_retries = retries;
        self
    }

    /// Longest time one `connect` (with the after-connect hook) may take before the
    /// caller gets [`GetError::ConnectTimeout`](crate::GetError::ConnectTimeout),
    /// and the longest one checkout health check may take (also bounded by the
    /// caller's own deadline) before it counts as failed.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// What `get` does when the pool is exhausted. The default waits in line at most
    /// 30 s; [`WaitPolicy::Queue`] waits as long as it takes.
    pub fn wait(mut self, policy: WaitPolicy) -> Self {
        self.config.wait = policy;
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

    /// After a failed dial, callers and the janitor wait `base`, doubling per
    /// further failure up to `cap` (with ±50 % jitter), before the pool dials again:
    /// one backoff shared by every caller, so a server that is down is not
    /// hammered. A successful dial resets it.
    pub fn dial_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_cap = cap;
        self
    }

    /// Overrides the janitor's period (derived from the lifetimes by default).
    pub fn janitor_interval(mut self, every: Duration) -> Self {
        self.config.janitor_interval = Some(every);
        self
    }

    /// Runs on every new connection before it is first handed out (session
    /// settings, `PRAGMA`s, prepared statements). It runs within the connect
    /// timeout; an error closes the connection and fails the dial.
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

    /// Receives acquire-wait and dial timings.
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
        let c = &self.config;
        check_size(c.max_size, c.min_idle)?;
        if c.max_health_retries > MAX_HEALTH_RETRIES {
            return Err(BuildError::TooManyHealthRetries {
                retries: c.max_health_retries,
                limit: MAX_HEALTH_RETRIES,
            });
        }
        let wait = match c.wait {
            WaitPolicy::Timeout(d) => Some(d),
            _ => None,
        };
        // Settings where zero would be meaningless.
        let positive = [
            ("max_lifetime", c.max_lifetime),
            ("max_idle_time", c.max_idle_time),
            ("connect_timeout", Some(c.connect_timeout)),
            ("janitor_interval", c.janitor_interval),
            ("wait timeout", wait),
            ("dial_backoff base", Some(c.backoff_base)),
        ];
        if let Some((setting, _)) = positive.iter().find(|(_, d)| *d == Some(Duration::ZERO)) {
            return Err(BuildError::ZeroDuration { setting });
        }
        let bounded = positive.into_iter().chain([
            ("health_check_after", Some(c.health_check_after)),
            ("fair_after", Some(c.fair_after)),
            ("dial_backoff cap", Some(c.backoff_cap)),
        ]);
        for (setting, d) in bounded {
            if d.is_some_and(|d| d > MAX_DURATION) {
                return Err(BuildError::DurationTooLong { setting, limit: MAX_DURATION });
            }
        }
        if c.backoff_cap < c.backoff_base {
            return Err(BuildError::BackoffCapBelowBase);
        }
        if let (Some(idle), Some(life)) = (c.max_idle_time, c.max_lifetime) {
            if idle > life {
                return Err(BuildError::IdleTimeAboveLifetime);
            }
        }
        Ok(())
    }
}

/// The size rules shared by the builder and `resize`.
pub(crate) fn check_size(max_size: usize, min_idle: usize) -> Result<(), BuildError> {
    if max_size == 0 {
        return Err(BuildError::ZeroMaxSize);
    }
    if max_size > MAX_POOL_SIZE {
        return Err(BuildError::MaxSizeTooLarge { max_size, limit: MAX_POOL_SIZE });
    }
    if min_idle > max_size {
        return Err(BuildError::MinIdleAboveMaxSize { min_idle, max_size });
    }
    Ok(())
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
            BuildError::IdleTimeAboveLifetime => {
                f.write_str("max_idle_time may not exceed max_lifetime")
            }
            BuildError::Spawn(kind) => write!(f, "could not start the janitor thread: {kind}"),
            BuildError::Closed => f.write_str("the pool is closed"),
        }
    }
}

impl std::error::Error for BuildError {}
