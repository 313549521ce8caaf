//! An async connection pool for tokio: FIFO-fair, cancel-safe, with health checks,
//! lifetimes, min idle and explicit exhaustion policies.
//!
//! Implement [`Manager`] for your connection type (or use [`TcpManager`], or the
//! `tokio-postgres` manager behind the `postgres` feature), build a [`Pool`], and
//! `get()` connections:
//!
//! ```
//! use poolside_connpool::{Builder, Manager, Pool, WaitPolicy};
//! use std::time::Duration;
//!
//! struct Numbers;
//!
//! impl Manager for Numbers {
//!     type Connection = u64;
//!     type Error = std::io::Error;
//!     async fn connect(&self) -> Result<u64, Self::Error> { Ok(42) }
//!     async fn check(&self, _conn: &mut u64) -> Result<(), Self::Error> { Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pool = Builder::new()
//!     .max_size(8)
//!     .min_idle(1)
//!     .max_lifetime(Duration::from_secs(1800))
//!     .wait(WaitPolicy::Timeout(Duration::from_secs(2)))
//!     .build(Numbers)
//!     .unwrap();
//! let conn = pool.get().await.unwrap();
//! assert_eq!(*conn, 42);
//! # }
//! ```
//!
//! Guarantees: a released connection goes to the oldest waiting caller; dropping a
//! `get()` future at any await point leaks nothing and never swallows a hand-off meant
//! for someone else; counts stay exact after connect errors, broken connections and
//! panics; the janitor keeps `min_idle` and enforces lifetimes (also checked on
//! checkout and return); `close()` wakes every waiter.
//!
//! For threads without a runtime, the [`blocking`] module (feature `blocking`) has the
//! same pool with a synchronous manager, plus rusqlite, `postgres` and diesel adapters.
#![forbid(unsafe_code)]

#[cfg(feature = "blocking")]
pub mod blocking;
mod breaker;
mod config;
mod error;
mod failover;
mod guard;
mod idle;
mod janitor;
mod manager;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
mod sharded;
mod stats;
mod tcp;

pub use breaker::Failure;
pub use config::{Builder, WaitPolicy};
pub use error::{BuildError, CloseTimeout, GetError, RunError};
pub use failover::{
    Backend, FailoverBuilder, FailoverConn, FailoverPool, FailoverState, FailoverStats,
    RequestFuture,
};
pub use guard::{OwnedConn, PooledConn};
pub use manager::Manager;
pub use pool::{Pool, Status};
pub use poolside_core::{Events, Instrumented, PoolError, Timing};
#[cfg(feature = "postgres")]
pub use postgres::PgManager;
pub use sharded::{JumpHash, ShardSelector, ShardedPool, StableHash};
pub use tcp::{HealthCheck, PeekCheck, TcpManager};
