//! Why registering a pool or serving metrics failed.

use std::fmt;
use std::io;

/// An error from [`PoolMetrics`](crate::PoolMetrics) or its server.
#[non_exhaustive]
#[derive(Debug)]
pub enum MetricsError {
    /// The pool name cannot be used as a label value.
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A live pool of the same kind is already registered under this name.
    DuplicatePool {
        /// The pool kind (`"connpool"`).
        kind: &'static str,
        /// The name in use.
        name: String,
    },
    /// Registering one more pool would exceed the configured bound on label
    /// cardinality.
    TooManyPools {
        /// The configured maximum.
        limit: usize,
    },
    /// A configuration value is out of range.
    InvalidConfig(&'static str),
    /// The listen address could not be parsed or resolved.
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The listener could not be bound (address in use, permission denied, ...).
    Bind {
        /// The address as given.
        addr: String,
        /// The operating system's error.
        source: io::Error,
    },
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsError::InvalidName { name, reason } => {
                write!(f, "invalid pool name {name:?}: {reason}")
            }
            MetricsError::DuplicatePool { kind, name } => {
                write!(f, "a {kind} named {name:?} is already registered")
            }
            MetricsError::TooManyPools { limit } => {
                write!(f, "cannot register more than {limit} pools (label cardinality bound)")
            }
            MetricsError::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            MetricsError::InvalidAddress { addr, source } => {
                write!(f, "invalid listen address {addr:?}: {source}")
            }
            MetricsError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for MetricsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetricsError::InvalidAddress { source, .. } | MetricsError::Bind { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}
