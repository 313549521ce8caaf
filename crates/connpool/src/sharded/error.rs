//! [`BuildError`]: why a [`ShardedPool`](super::ShardedPool) was not built.

use std::fmt;

/// Why [`ShardedPool::new`](super::ShardedPool::new) or
/// [`with_selector`](super::ShardedPool::with_selector) refused its shards.
///
/// ```
/// use poolside_connpool::sharded::BuildError;
/// assert_eq!(BuildError::NoShards.to_string(), "a sharded pool needs at least one shard");
/// assert_eq!(BuildError::NoShards.setting(), "shards");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// `shards` was empty.
    NoShards,
}

impl BuildError {
    /// The argument at fault.
    pub fn setting(&self) -> &'static str {
        match self {
            BuildError::NoShards => "shards",
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoShards => f.write_str("a sharded pool needs at least one shard"),
        }
    }
}

impl std::error::Error for BuildError {}
