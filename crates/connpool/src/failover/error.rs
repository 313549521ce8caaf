//! [`BuildError`]: why a [`FailoverBuilder`](super::FailoverBuilder) refused its
//! settings; [`RunError`]: why [`FailoverPool::run`] gave up.

use super::breaker::Failure;
use crate::GetError;
use std::fmt;
use std::time::Duration;

/// Why [`FailoverPool::run`](crate::failover::FailoverPool::run) gave up: every attempt failed.
/// Each variant says how many attempts were made and what the last one died of.
///
/// ```
/// use poolside_connpool::failover::RunError;
/// use std::time::Duration;
///
/// let err: RunError<std::io::Error, String> =
///     RunError::TimedOut { attempts: 3, after: Duration::from_millis(200) };
/// assert_eq!(err.to_string(), "all 3 attempt(s) failed; the last timed out after 200ms");
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub enum RunError<CE, E> {
    /// The last attempt got no connection (or the pool is closed, which ends the
    /// attempts at once).
    Get {
        /// Attempts made.
        attempts: u32,
        /// Why the last checkout failed.
        last: GetError<CE>,
    },
    /// The last attempt's request returned an error.
    Request {
        /// Attempts made.
        attempts: u32,
        /// The request's error.
        last: E,
    },
    /// The last attempt's request ran past the request timeout.
    TimedOut {
        /// Attempts made.
        attempts: u32,
        /// The request timeout.
        after: Duration,
    },
}

impl<CE, E> RunError<CE, E> {
    /// How many attempts were made.
    ///
    /// ```
    /// use poolside_connpool::failover::RunError;
    /// let err: RunError<std::io::Error, &str> = RunError::Request { attempts: 2, last: "no" };
    /// assert_eq!(err.attempts(), 2);
    /// ```
    pub fn attempts(&self) -> u32 {
        match self {
            RunError::Get { attempts, .. }
            | RunError::Request { attempts, .. }
            | RunError::TimedOut { attempts, .. } => *attempts,
        }
    }
}

impl<CE: fmt::Display, E: fmt::Display> fmt::Display for RunError<CE, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Get { attempts, last } => {
                write!(f, "all {attempts} attempt(s) failed; the last got no connection: {last}")
            }
            RunError::Request { attempts, last } => {
                write!(f, "all {attempts} attempt(s) failed; the last request failed: {last}")
            }
            RunError::TimedOut { attempts, after } => {
                write!(f, "all {attempts} attempt(s) failed; the last timed out after {after:?}")
            }
        }
    }
}

impl<CE, E> std::error::Error for RunError<CE, E>
where
    CE: std::error::Error + 'static,
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Get { last, .. } => Some(last),
            RunError::Request { last, .. } => Some(last),
            RunError::TimedOut { .. } => None,
        }
    }
}

/// Why [`FailoverBuilder::build`](super::FailoverBuilder::build) refused its settings
/// or its pools; [`setting`](Self::setting) names the option at fault.
///
/// ```
/// use poolside_connpool::failover::{BuildError, Failure};
/// let err = BuildError::ZeroThreshold { failure: Failure::Request };
/// assert_eq!(err.setting(), "trip_after");
/// assert_eq!(err.to_string(), "the request failure trip threshold must be at least 1");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// A duration setting was zero.
    ZeroDuration {
        /// The setting's name.
        setting: &'static str,
    },
    /// A trip threshold of zero would trip without any failure.
    ZeroThreshold {
        /// The failure kind whose threshold was zero.
        failure: Failure,
    },
    /// `max_attempts` must be at least 1.
    ZeroAttempts,
    /// The spare must be warm: built with `min_idle` of at least 1, so the switch
    /// finds connections ready.
    ColdSpare,
    /// The same pool was given as primary and spare.
    SpareIsPrimary,
    /// The builder was not called inside a tokio runtime (probes run as tasks on it).
    NoRuntime,
}

impl BuildError {
    /// The option (or argument) at fault.
    pub fn setting(&self) -> &'static str {
        match self {
            BuildError::ZeroDuration { setting } => setting,
            BuildError::ZeroThreshold { .. } => "trip_after",
            BuildError::ZeroAttempts => "max_attempts",
            BuildError::ColdSpare | BuildError::SpareIsPrimary => "spare",
            BuildError::NoRuntime => "runtime",
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroDuration { setting } => write!(f, "{setting} must be longer than zero"),
            BuildError::ZeroThreshold { failure } => {
                write!(f, "the {failure} trip threshold must be at least 1")
            }
            BuildError::ZeroAttempts => f.write_str("max_attempts must be at least 1"),
            BuildError::ColdSpare => {
                f.write_str("the failover spare must be warm: build it with min_idle >= 1")
            }
            BuildError::SpareIsPrimary => {
                f.write_str("the failover spare must be a different pool from the primary")
            }
            BuildError::NoRuntime => {
                f.write_str("a failover pool needs a tokio runtime: build it inside one")
            }
        }
    }
}

impl std::error::Error for BuildError {}
