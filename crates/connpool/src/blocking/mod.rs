//! A blocking connection pool for threads (feature `blocking`): no async runtime.
//!
//! The same pool as the async [`crate::Pool`] — the same builder options and
//! meanings, [`Status`](crate::Status), [`GetError`](crate::GetError) and metric
//! names — for synchronous code: diesel, rusqlite, the `postgres` crate, a
//! thread-per-request server. It replaces r2d2.
//!
//! * [`Manager`]: `connect`, `check`, `is_broken`, all synchronous.
//! * [`Builder`] / [`Pool`]: max_size, min_idle, max_lifetime, max_idle_time,
//!   health_check_after, max_health_retries, connect_timeout, a wait policy bounded
//!   at 30 s by default, a dial backoff shared by every caller, an after-connect
//!   hook, timings and per-connection events (`Builder::events`). Bad settings are
//!   a typed [`BuildError`].
//! * [`PooledConn`]: derefs to the connection, returns on `Drop` (closed instead
//!   when the thread panics), `mark_broken`, `detach`.
//! * First come, first served: waiting threads park in an explicit line; a returned
//!   connection goes to the oldest (see [`Builder::fair_after`]); a thread that
//!   times out leaves the line without a trace and without swallowing a hand-off.
//! * One janitor thread per pool (only when min_idle or a lifetime is set) keeps
//!   `min_idle` and closes expired connections; it ends when the pool is closed or
//!   dropped. Lifetimes are also enforced on checkout and return.
//! * Adapters: [`sqlite`] (feature `sqlite`, rusqlite with bundled SQLite),
//!   [`postgres_sync`] (feature `postgres-sync`), [`diesel`] (feature `diesel`).
//!
//! ```
//! use poolside_connpool::blocking::{Builder, Manager};
//! use poolside_connpool::WaitPolicy;
//! use std::time::Duration;
//!
//! struct Numbers;
//!
//! impl Manager for Numbers {
//!     type Connection = u64;
//!     type Error = std::io::Error;
//!     fn connect(&self) -> Result<u64, Self::Error> { Ok(42) }
//!     fn check(&self, _conn: &mut u64) -> Result<(), Self::Error> { Ok(()) }
//! }
//!
//! let pool = Builder::new()
//!     .max_size(8)
//!     .min_idle(1)
//!     .max_lifetime(Duration::from_secs(1800))
//!     .wait(WaitPolicy::Timeout(Duration::from_secs(2)))
//!     .build(Numbers)
//!     .unwrap();
//! let conn = pool.get().unwrap();
//! assert_eq!(*conn, 42);
//! ```

mod bounded;
mod checkout;
mod config;
mod dial;
mod guard;
mod janitor;
mod manager;
mod pool;
mod shared;
mod stats;

#[cfg(feature = "diesel")]
pub mod diesel;
#[cfg(feature = "postgres-sync")]
pub mod postgres_sync;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use config::{BuildError, Builder, MAX_DURATION, MAX_HEALTH_RETRIES, MAX_POOL_SIZE};
pub use guard::PooledConn;
pub use manager::Manager;
pub use pool::Pool;
