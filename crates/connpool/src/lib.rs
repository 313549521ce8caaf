//! An async connection pool for tokio: FIFO-fair, cancel-safe, with health checks,
//! lifetimes, min idle and explicit exhaustion policies.
//!
//! Implement [`Manager`] for your connection type (or use [`tcp::TcpManager`], or the
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
//! The pool bounds its dials, checks and hooks with tokio's timers, so it needs a
//! runtime with time enabled (`#[tokio::main]` and `enable_all` do that). On one
//! without, a `get` that must dial or wait panics with tokio's message naming
//! `enable_time`, like any tokio timer, and gives back the slot it held.
//!
//! Lifecycle hooks on the builder (`after_connect`, `before_acquire`,
//! `after_release`, `on_close`) see each connection's [`ConnMeta`]; they cost nothing
//! when unset, never slow the caller dropping a guard, and follow the same panic rule.
//! Give the builder its manager first ([`Builder::manager`]) and the hooks take
//! plain closures, the connection type coming from the manager:
//!
//! ```
//! # use poolside_connpool::{Manager, Pool};
//! # struct Sessions;
//! # impl Manager for Sessions {
//! #     type Connection = Vec<String>;
//! #     type Error = std::io::Error;
//! #     async fn connect(&self) -> Result<Vec<String>, Self::Error> { Ok(Vec::new()) }
//! #     async fn check(&self, _: &mut Vec<String>) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pool = Pool::builder()
//!     .max_size(4)
//!     .manager(Sessions)
//!     .after_connect(|conn, meta| {
//!         conn.push(format!("SET application_name = 'app-{}'", meta.id));
//!         Box::pin(async { Ok(()) })
//!     })
//!     .before_acquire(|conn, _meta| {
//!         let fresh = conn.len() < 100;
//!         Box::pin(async move { Ok(fresh) })
//!     })
//!     .after_release(|conn, _meta| {
//!         conn.truncate(1); // DISCARD ALL
//!         Box::pin(async { Ok(true) })
//!     })
//!     .on_close(|meta, reason| println!("closed {} ({reason:?})", meta.id))
//!     .build()
//!     .unwrap();
//! assert_eq!(pool.get().await.unwrap()[0], "SET application_name = 'app-1'");
//! # }
//! ```
//!
//! # Contents
//!
//! The crate root holds the core, in reading order: the [`Manager`] trait;
//! [`Builder`] (typed by its manager once given one, [`NoManager`] before) and
//! [`WaitPolicy`]; [`Pool`] with its guards [`PooledConn`] and
//! [`OwnedConn`], its levels [`Status`], and each connection's [`ConnMeta`] and
//! [`CloseReason`]; the errors [`GetError`], [`PoolError`], [`BuildError`],
//! [`AddError`], [`ResizeError`] and [`CloseTimeout`]; and [`Instrumented`], through which every pool
//! reports its metrics.
//!
//! Modules:
//!
//! - [`hooks`]: what a lifecycle hook returns ([`hooks::HookFuture`],
//!   [`hooks::HookError`]).
//! - [`events`]: the per-connection event and timing hook (`Builder::events`).
//! - `config` (feature `serde`): pool settings as data, from any serde format or the
//!   environment.
//! - [`sharded`]: [`sharded::ShardedPool`], one pool per shard, with its selectors.
//! - [`failover`]: [`failover::FailoverPool`], a primary and a warm spare behind a
//!   circuit breaker.
//! - [`tcp`]: [`tcp::TcpManager`], plain TCP connections with a pluggable health check.
//! - `postgres` (feature `postgres`): `PgManager` over `tokio-postgres` with any TLS
//!   connector, `RecyclingMethod` (`Fast`, `Verified`, `Clean`, `Custom`) and
//!   `PgClient`, the pooled connection with a bounded LRU statement cache;
//!   `postgres-rustls` adds `PgManager::with_rustls` and `PgTlsConfig`.
//! - `redis` (feature `redis`): `RedisManager`, whose pooled connections own their
//!   socket (or use the `redis` crate's multiplexed connection for TLS and RESP3);
//!   `redis-rustls` adds `rediss://` URLs.
//! - `blocking` (feature `blocking`): the same pool for threads without a runtime,
//!   with a synchronous manager, plus rusqlite, `postgres` and diesel adapters.
#![forbid(unsafe_code)]

mod backoff;
mod builder;
mod clock;
mod error;
mod guard;
mod idle;
mod janitor;
mod manager;
mod meta;
mod options;
mod pool;
mod readings;
mod stats;
mod unwind;

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "serde")]
pub mod config;
pub mod events;
pub mod failover;
pub mod hooks;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod sharded;
pub mod tcp;

pub use builder::{Builder, NoManager, WaitPolicy};
pub use error::{AddError, BuildError, CloseTimeout, GetError, PoolError, ResizeError};
pub use guard::{OwnedConn, PooledConn};
pub use manager::Manager;
pub use meta::{CloseReason, ConnMeta};
pub use pool::{Pool, Status};
pub use poolside_core::Instrumented;

/// The user guide's snippets, compiled and run as doc tests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/connpool.md")]
mod guide {}

/// The topologies guide's snippets, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/topologies.md")]
mod topologies_guide {}

/// The adapters guide's snippets, as doc tests (they need the adapters' features).
#[cfg(all(doctest, feature = "postgres-rustls", feature = "redis"))]
#[doc = include_str!("../../../docs/adapters.md")]
mod adapters_guide {}
