//! `ShardedPool`: one pool per shard, each key routed to its shard by a pluggable
//! selector, so a slow or dead shard never holds up callers of the others.
//!
//! Contents: [`ShardedPool`]; its [`BuildError`]; the selectors ([`ShardSelector`],
//! the default [`JumpHash`] and [`ModuloHash`]) over the stable key hash
//! ([`ShardKey`], [`KeyHasher`]), whose results are part of the crate's contract.

mod error;
mod pool;
mod selector;

pub use error::BuildError;
pub use pool::ShardedPool;
pub use selector::{JumpHash, KeyHasher, ModuloHash, ShardKey, ShardSelector};
