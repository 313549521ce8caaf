//! Settings that cannot work.

use std::fmt;
use std::time::Duration;

/// A setting rejected by [`PoolBuilder::build`](crate::PoolBuilder::build) or
/// [`BufPoolBuilder::build`](crate::BufPoolBuilder::build).
///
/// ```
/// let err = poolside_bufpool::BufPool::builder().classes(&[0, 1024]).build().unwrap_err();
/// assert_eq!(err.to_string(), "a size class of 0 bytes is not allowed");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// `max_retained(0)`: a pool that keeps nothing is not a pool.
    ZeroRetained,
    /// `max_retained(n)` above [`MAX_RETAINED`](crate::MAX_RETAINED): the shared store
    /// allocates room for all of them when the pool is built.
    RetainedTooLarge {
        /// The requested number of retained objects.
        requested: usize,
    },
    /// A size class (or a `BytesPool` capacity) above
    /// [`MAX_CLASS_SIZE`](crate::MAX_CLASS_SIZE): every buffer of it would be an
    /// allocation of that size.
    ClassTooLarge {
        /// The requested class size in bytes.
        size: usize,
    },
    /// A capacity cap on returned buffers above
    /// [`MAX_CLASS_SIZE`](crate::MAX_CLASS_SIZE).
    CapTooLarge {
        /// The requested cap in bytes.
        cap: usize,
    },
    /// `local_capacity(n)` above [`MAX_LOCAL_CAPACITY`](crate::MAX_LOCAL_CAPACITY).
    LocalCapacityTooLarge {
        /// The requested per-thread capacity.
        requested: usize,
    },
    /// An idle-release interval of zero would free objects as soon as they are returned.
    ZeroIdleInterval(Duration),
    /// No size classes were given.
    NoClasses,
    /// A size class of zero bytes.
    ZeroClass,
    /// Size classes must be strictly increasing: `smaller` came after `larger`.
    UnorderedClasses {
        /// The earlier, larger (or equal) class.
        larger: usize,
        /// The later, smaller (or equal) class.
        smaller: usize,
    },
    /// The capacity cap on returned buffers is below the smallest class, so no buffer
    /// could ever be kept.
    CapBelowSmallestClass {
        /// The cap.
        cap: usize,
        /// The smallest class.
        smallest: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroRetained => f.write_str("max_retained must be at least 1"),
            BuildError::RetainedTooLarge { requested } => write!(
                f,
                "max_retained of {requested} objects exceeds the maximum of {}",
                crate::MAX_RETAINED
            ),
            BuildError::ClassTooLarge { size } => write!(
                f,
                "a size class of {size} bytes exceeds the maximum of {} bytes",
                crate::MAX_CLASS_SIZE
            ),
            BuildError::CapTooLarge { cap } => write!(
                f,
                "a capacity cap of {cap} bytes exceeds the maximum of {} bytes",
                crate::MAX_CLASS_SIZE
            ),
            BuildError::LocalCapacityTooLarge { requested } => write!(
                f,
                "a per-thread cache of {requested} objects exceeds the maximum of {}",
                crate::MAX_LOCAL_CAPACITY
            ),
            BuildError::ZeroIdleInterval(_) => {
                f.write_str("the idle release interval must be positive")
            }
            BuildError::NoClasses => f.write_str("a buffer pool needs at least one size class"),
            BuildError::ZeroClass => f.write_str("a size class of 0 bytes is not allowed"),
            BuildError::UnorderedClasses { larger, smaller } => write!(
                f,
                "size classes must be strictly increasing, but {smaller} follows {larger}"
            ),
            BuildError::CapBelowSmallestClass { cap, smallest } => write!(
                f,
                "the capacity cap of {cap} bytes is below the smallest class ({smallest} bytes)"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
