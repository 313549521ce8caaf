//! Typed errors: what `get`, `add`, `resize`, `close_graceful` and the builder can
//! fail with.

use std::fmt;
use std::time::Duration;

/// Why a pool could not hand out a connection, whatever the manager: it is closed,
/// exhausted under [`WaitPolicy::FailFast`](crate::WaitPolicy::FailFast), or the
/// caller's wait ran out. [`GetError::Pool`] carries it; the blocking pool returns
/// it as is.
///
/// ```
/// use poolside_connpool::PoolError;
/// use std::time::Duration;
///
/// let err = PoolError::TimedOut { waited: Duration::from_millis(250) };
/// assert_eq!(err.to_string(), "timed out after 250ms waiting for the pool");
/// assert!(PoolError::Closed.is_closed());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolError {
    /// The pool was closed or shut down; it will never hand anything out again.
    Closed,
    /// The pool is at capacity and its policy is to fail rather than wait.
    Exhausted,
    /// The caller waited as long as it allowed and nothing became available.
    TimedOut {
        /// How long the caller waited.
        waited: Duration,
    },
}

impl PoolError {
    /// Whether this is [`PoolError::Closed`]: retrying will never succeed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PoolError::Closed)
    }

    /// Whether retrying later could succeed (exhausted or timed out).
    ///
    /// ```
    /// assert!(poolside_connpool::PoolError::Exhausted.is_transient());
    /// assert!(!poolside_connpool::PoolError::Closed.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        !self.is_closed()
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Closed => f.write_str("the pool is closed"),
            PoolError::Exhausted => f.write_str("the pool is exhausted"),
            PoolError::TimedOut { waited } => {
                write!(f, "timed out after {waited:?} waiting for the pool")
            }
        }
    }
}

impl std::error::Error for PoolError {}

/// Why [`Pool::get`](crate::Pool::get) and friends did not return a connection.
///
/// ```
/// use poolside_connpool::{GetError, PoolError};
/// use std::io;
///
/// let err: GetError<io::Error> = GetError::Pool(PoolError::Exhausted);
/// assert_eq!(err.to_string(), "the pool is exhausted");
/// assert_eq!(err.pool_error(), Some(PoolError::Exhausted));
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub enum GetError<E> {
    /// Closed, exhausted (fail-fast) or timed out waiting.
    Pool(PoolError),
    /// Opening a new connection failed, on the only attempt this `get` made.
    Connect(E),
    /// Every attempt this `get` made to open a connection failed (retried with the
    /// shared backoff until the connect timeout or `connect_retries` ran out). `last`
    /// is the last failure the server or the manager reported: a final attempt cut
    /// short by what was left of the connect timeout does not replace it.
    ConnectFailed {
        /// Dials this `get` made.
        attempts: u32,
        /// The last error a dial reported.
        last: E,
    },
    /// The pool is backing off after failed dials and this caller could not wait for
    /// the next attempt (fail-fast policy, `try_get`, or its deadline comes first).
    Backoff {
        /// Consecutive failed dial rounds so far.
        failures: u32,
        /// When the next attempt is allowed, from now (`None` when not known).
        retry_in: Option<Duration>,
        /// The last dial's error, as text.
        last_error: String,
    },
    /// User code (a [`Manager`](crate::Manager) method, a predicate, a selector)
    /// panicked while serving this call. The panic was caught and logged; the
    /// connection involved was closed and its slot given back.
    Panicked {
        /// What the pool was doing (`"connect"`, `"check"`, `"is_broken"`, ...).
        during: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The `after_connect` hook refused every connection this `get` opened (it
    /// returned an error or timed out), so no connection could be handed out.
    Hook {
        /// Which hook (`"after_connect"`).
        during: &'static str,
        /// What it failed with.
        error: crate::hooks::HookError,
    },
    /// Opening a new connection took longer than the connect timeout.
    ConnectTimeout {
        /// The configured connect timeout that elapsed.
        after: Duration,
    },
    /// Every health check attempt failed; the pool gave up after `attempts`.
    HealthCheck {
        /// How many connections failed their check during this `get`.
        attempts: u32,
        /// The last check's error.
        last: E,
    },
    /// Every health check attempt failed, the last one by taking longer than the
    /// connect timeout (a black-holed peer).
    HealthCheckTimeout {
        /// How many connections failed their check during this `get`.
        attempts: u32,
        /// The connect timeout that bounded the last check.
        after: Duration,
    },
}

impl<E> GetError<E> {
    /// The shared pool error (closed / exhausted / timed out), if this is one.
    pub fn pool_error(&self) -> Option<PoolError> {
        match self {
            GetError::Pool(e) => Some(*e),
            _ => None,
        }
    }

    /// Whether the pool is closed, so retrying can never succeed.
    ///
    /// ```
    /// use poolside_connpool::GetError;
    /// let err: GetError<std::io::Error> = GetError::Pool(poolside_connpool::PoolError::Closed);
    /// assert!(err.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Pool(PoolError::Closed))
    }
}

impl<E> From<PoolError> for GetError<E> {
    fn from(e: PoolError) -> Self {
        GetError::Pool(e)
    }
}

impl<E: fmt::Display> fmt::Display for GetError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Pool(e) => e.fmt(f),
            GetError::Connect(e) => write!(f, "opening a connection failed: {e}"),
            GetError::ConnectTimeout { after } => {
                write!(f, "opening a connection timed out after {after:?}")
            }
            GetError::ConnectFailed { attempts, last } => {
                write!(
                    f,
                    "opening a connection failed after {attempts} attempts; last error: {last}"
                )
            }
            GetError::Backoff { failures, retry_in, last_error } => {
                write!(f, "backing off after {failures} failed dial round(s)")?;
                match retry_in {
                    Some(d) => write!(f, ", next attempt in {d:?}")?,
                    None => f.write_str(", an attempt is in flight")?,
                }
                write!(f, "; last error: {last_error}")
            }
            GetError::Panicked { during, message } => {
                write!(f, "user code panicked during {during}: {message}")
            }
            GetError::Hook { during, error } => write!(f, "the {during} hook failed: {error}"),
            GetError::HealthCheck { attempts, last } => {
                write!(f, "health check failed on {attempts} connection(s); last error: {last}")
            }
            GetError::HealthCheckTimeout { attempts, after } => write!(
                f,
                "health check failed on {attempts} connection(s); the last timed out after {after:?}"
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for GetError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Pool(e) => Some(e),
            GetError::Connect(e)
            | GetError::ConnectFailed { last: e, .. }
            | GetError::HealthCheck { last: e, .. } => Some(e),
            GetError::ConnectTimeout { .. }
            | GetError::HealthCheckTimeout { .. }
            | GetError::Backoff { .. }
            | GetError::Panicked { .. } => None,
            GetError::Hook { error, .. } => Some(&**error),
        }
    }
}

/// Why a [`Builder`](crate::Builder) refused its settings; [`setting`](Self::setting)
/// names the option at fault.
///
/// ```
/// use poolside_connpool::{BuildError, Builder};
/// # use poolside_connpool::Manager;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let err = Builder::new().max_size(2).min_idle(3).build(Noop).unwrap_err();
/// assert_eq!(err, BuildError::MinIdleAboveMaxSize { min_idle: 3, max_size: 2 });
/// assert_eq!(err.setting(), "min_idle");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// `max_size` must be at least 1.
    ZeroMaxSize,
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
    /// `max_idle_time` is longer than `max_lifetime`, so it could never apply.
    IdleTimeAboveLifetime,
    /// Background maintenance is needed (min_idle, lifetimes) but the builder was not
    /// called inside a tokio runtime.
    NoRuntime,
    /// The dial backoff's minimum is above its maximum.
    BackoffRange {
        /// The requested first delay.
        min: Duration,
        /// The requested cap.
        max: Duration,
    },
    /// A setting is out of the range the pool can honour.
    OutOfRange {
        /// The setting's name.
        setting: &'static str,
    },
}

impl BuildError {
    /// The builder option at fault (for [`NoRuntime`](Self::NoRuntime), the option
    /// that needs the runtime: `min_idle` or a lifetime).
    ///
    /// ```
    /// use poolside_connpool::BuildError;
    /// assert_eq!(BuildError::ZeroMaxSize.setting(), "max_size");
    /// assert_eq!(BuildError::ZeroDuration { setting: "connect_timeout" }.setting(), "connect_timeout");
    /// ```
    pub fn setting(&self) -> &'static str {
        match self {
            BuildError::ZeroMaxSize => "max_size",
            BuildError::MinIdleAboveMaxSize { .. } => "min_idle",
            BuildError::ZeroDuration { setting } | BuildError::OutOfRange { setting } => setting,
            BuildError::IdleTimeAboveLifetime => "max_idle_time",
            BuildError::NoRuntime => "min_idle",
            BuildError::BackoffRange { .. } => "dial_backoff",
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroMaxSize => f.write_str("max_size must be at least 1"),
            BuildError::MinIdleAboveMaxSize { min_idle, max_size } => {
                write!(f, "min_idle ({min_idle}) may not exceed max_size ({max_size})")
            }
            BuildError::ZeroDuration { setting } => write!(f, "{setting} must be longer than zero"),
            BuildError::IdleTimeAboveLifetime => {
                f.write_str("max_idle_time may not exceed max_lifetime")
            }
            BuildError::NoRuntime => f.write_str(
                "min_idle, max_lifetime and max_idle_time need a tokio runtime: build the pool inside one",
            ),
            BuildError::BackoffRange { min, max } => {
                write!(f, "the dial backoff's minimum ({min:?}) exceeds its maximum ({max:?})")
            }
            BuildError::OutOfRange { setting } => write!(f, "{setting} is out of range"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Why [`Pool::resize`](crate::Pool::resize) changed nothing.
///
/// ```
/// use poolside_connpool::ResizeError;
/// let err = ResizeError::BelowMinIdle { max_size: 1, min_idle: 2 };
/// assert_eq!(err.to_string(), "max_size (1) may not be below min_idle (2)");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeError {
    /// The pool is closed.
    Closed,
    /// `max_size` must be at least 1.
    Zero,
    /// `max_size` is above the largest size a pool supports (2^32 − 1).
    TooLarge {
        /// The requested size.
        max_size: usize,
    },
    /// `max_size` may not be below the pool's `min_idle`.
    BelowMinIdle {
        /// The requested size.
        max_size: usize,
        /// The pool's minimum idle count.
        min_idle: usize,
    },
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResizeError::Closed => f.write_str("the pool is closed"),
            ResizeError::Zero => f.write_str("max_size must be at least 1"),
            ResizeError::TooLarge { max_size } => {
                write!(f, "max_size ({max_size}) is above the largest pool size (2^32 - 1)")
            }
            ResizeError::BelowMinIdle { max_size, min_idle } => {
                write!(f, "max_size ({max_size}) may not be below min_idle ({min_idle})")
            }
        }
    }
}

impl std::error::Error for ResizeError {}

/// `close_graceful` reached its deadline with connections still checked out.
///
/// ```
/// let err = poolside_connpool::CloseTimeout { still_in_use: 2 };
/// assert_eq!(err.to_string(), "2 connection(s) were still in use at the close deadline");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseTimeout {
    /// Connections that had not come back when the deadline passed.
    pub still_in_use: usize,
}

impl fmt::Display for CloseTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} connection(s) were still in use at the close deadline", self.still_in_use)
    }
}

impl std::error::Error for CloseTimeout {}

/// Why [`Pool::add`](crate::Pool::add) did not adopt a connection; the connection is
/// handed back inside.
///
/// ```
/// use poolside_connpool::AddError;
/// let err = AddError::Full(5u8);
/// assert_eq!(err.to_string(), "the pool has no free slot for another connection");
/// assert_eq!(err.into_inner(), 5);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddError<C> {
    /// Every slot is taken (`open == max_size`).
    Full(C),
    /// The pool is closed.
    Closed(C),
}

impl<C> AddError<C> {
    /// The connection that was not adopted.
    ///
    /// ```
    /// # use poolside_connpool::AddError;
    /// assert_eq!(AddError::Closed("conn").into_inner(), "conn");
    /// ```
    pub fn into_inner(self) -> C {
        match self {
            AddError::Full(conn) | AddError::Closed(conn) => conn,
        }
    }
}

impl<C> fmt::Display for AddError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddError::Full(_) => f.write_str("the pool has no free slot for another connection"),
            AddError::Closed(_) => f.write_str("the pool is closed"),
        }
    }
}

impl<C: fmt::Debug> std::error::Error for AddError<C> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_clear() {
        assert_eq!(PoolError::Closed.to_string(), "the pool is closed");
        assert_eq!(PoolError::Exhausted.to_string(), "the pool is exhausted");
        let boxed: Box<dyn std::error::Error> = Box::new(PoolError::Exhausted);
        assert!(boxed.source().is_none());
    }
}
