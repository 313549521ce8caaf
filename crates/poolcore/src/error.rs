//! The error vocabulary every pool shares.

use std::fmt;
use std::time::Duration;

/// Why a pool could not hand something out. Pools wrap this in their own error enums
/// when they have more to say (a connect error, a rejected job).
///
/// ```
/// use poolside_core::PoolError;
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
    /// assert!(poolside_core::PoolError::Exhausted.is_transient());
    /// assert!(!poolside_core::PoolError::Closed.is_transient());
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
