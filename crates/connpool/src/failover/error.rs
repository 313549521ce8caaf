//! [`RunError`]: why [`FailoverPool::run`] gave up.

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
