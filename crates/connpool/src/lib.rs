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
//! panics in any user code (caught, logged, the connection closed); every
//! [`Pool::status`] is one consistent moment; the janitor keeps `min_idle` (refilled
//! at once) and enforces lifetimes (also checked on checkout and return) without ever
//! hiding idle connections; a stale connection failing its checkout is replaced by a
//! fresh dial, not reported; failed dials share a jittered backoff and are retried
//! within `connect_timeout`; the default wait is 30 s; `close()` wakes every waiter,
//! and a closed pool refuses `resize`, `retain` and `warm`.
//!
//! Lifecycle hooks on the builder (`after_connect`, `before_acquire`,
//! `after_release`, `on_close`) see each connection's [`ConnMeta`]; they cost nothing
//! when unset, never slow the caller dropping a guard, and follow the same panic rule.
//!
//! Modules, in reading order: the [`Manager`] trait; [`Builder`] and [`WaitPolicy`];
//! the hooks' [`HookFuture`] and [`HookError`], [`ConnMeta`] and [`CloseReason`];
//! [`Pool`] with its guard [`PooledConn`] and [`Status`], [`Pool::add`]; the errors
//! [`GetError`], [`AddError`] and [`BuildError`]; the topologies [`ShardedPool`] and [`FailoverPool`]; the adapters
//! [`TcpManager`] and (feature `postgres`) `PgManager`.
//!
//! Adapters, each a leaf module behind its feature:
//!
//! - `postgres`: `PgManager` over `tokio-postgres` with any TLS connector,
//!   `RecyclingMethod` (`Fast`, `Verified`, `Clean`, `Custom`) and `PgClient`, the
//!   pooled connection with a bounded LRU statement cache (`prepare_cached`, and an
//!   automatic mode for SQL text).
//! - `postgres-rustls`: `PgManager::with_rustls` and `PgTlsConfig` (webpki roots,
//!   system roots, a custom CA).
//! - `redis`: `RedisManager` over the `redis` crate's multiplexed async connection;
//!   `redis-rustls` adds `rediss://` URLs.
//!
//! For threads without a runtime, the [`blocking`] module (feature `blocking`) has the
//! same pool with a synchronous manager, plus rusqlite, `postgres` and diesel adapters.
#![forbid(unsafe_code)]

mod backoff;
#[cfg(feature = "blocking")]
pub mod blocking;
mod breaker;
mod config;
mod error;
mod failover;
mod guard;
mod hooks;
mod idle;
mod janitor;
mod manager;
mod meta;
mod options;
mod pool;
#[cfg(feature = "postgres")]
mod postgres;
mod readings;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "serde")]
mod serde_config;
mod sharded;
mod stats;
mod tcp;
mod unwind;

pub use breaker::Failure;
pub use config::{Builder, WaitPolicy};
pub use error::{AddError, BuildError, CloseTimeout, GetError, RunError};
pub use failover::{
    Backend, FailoverBuilder, FailoverConn, FailoverPool, FailoverState, FailoverStats,
    RequestFuture,
};
pub use guard::{OwnedConn, PooledConn};
pub use hooks::{HookError, HookFuture};
pub use manager::Manager;
pub use meta::{CloseReason, ConnMeta};
pub use pool::{Pool, Status};
pub use poolside_core::{ConnEvent, EventHook, Events, Instrumented, PoolError, Timing};
#[cfg(feature = "postgres")]
pub use postgres::{
    DEFAULT_STATEMENT_CACHE_CAPACITY, PgClient, PgManager, PgQuery, RecyclingMethod,
    StatementCacheStats,
};
#[cfg(feature = "postgres-rustls")]
pub use postgres::{PgTlsConfig, TlsConfigError};
#[cfg(feature = "redis")]
pub use redis::{RedisConfigError, RedisConnection, RedisManager};
#[cfg(feature = "serde")]
pub use serde_config::{BackoffConfig, Config, ConfigError};
pub use sharded::{JumpHash, ShardSelector, ShardedPool, StableHash};
pub use tcp::{HealthCheck, PeekCheck, TcpManager};
