//! `ShardedPool`: one pool per shard, each key routed to its shard by a pluggable
//! selector, so a slow or dead shard never holds up callers of the others.
//!
//! Modules: [`ShardedPool`] and the selectors ([`ShardSelector`], [`StableHash`],
//! [`JumpHash`]).

mod pool;
mod selector;

pub use pool::ShardedPool;
pub use selector::{JumpHash, ShardSelector, StableHash};
