//! Why registering a pool or serving metrics failed.

use std::fmt;
use std::io;

/// An error from [`PoolMetrics`](crate::PoolMetrics), its builder or its server.
///
/// ```
/// let err = poolside_metrics::PoolMetrics::builder().max_pools(0).build().unwrap_err();
/// assert!(matches!(err, poolside_metrics::MetricsError::InvalidConfig(_)));
/// assert!(err.to_string().starts_with("invalid configuration: max_pools"));
/// ```
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
    /// A pool's kind or one of its declared metrics cannot be exported under the
    /// naming conventions (not lower snake case, a gauge ending in `_total`, a
    /// histogram suffix).
    InvalidMetric {
        /// The pool kind.
        kind: &'static str,
        /// The offending metric name (empty when the kind itself is invalid).
        metric: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A metric family of this pool is already exported by another pool with a
    /// different type (a counter in one, a gauge in the other).
    FamilyConflict {
        /// The family name.
        family: String,
    },
    /// A configuration value is out of range; the text names the option and its
    /// accepted range.
    InvalidConfig(&'static str),
    /// A background thread (collector, endpoint) could not be started.
    Spawn {
        /// The operating system's error.
        source: io::Error,
    },
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
            MetricsError::InvalidMetric { kind, metric, reason } => {
                write!(f, "cannot export metric {metric:?} of pool kind {kind:?}: {reason}")
            }
            MetricsError::FamilyConflict { family } => write!(
                f,
                "metric family {family} is already exported with another type by a registered pool"
            ),
            MetricsError::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            MetricsError::Spawn { source } => write!(f, "cannot start a thread: {source}"),
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
            MetricsError::InvalidAddress { source, .. }
            | MetricsError::Bind { source, .. }
            | MetricsError::Spawn { source } => Some(source),
            _ => None,
        }
    }
}
