//! `FailoverPool`: a primary pool and a warm spare behind a circuit breaker.
//!
//! While the breaker is closed every checkout goes to the primary. Failures on the
//! primary (exhaustion, connect errors, failed health checks, failed requests) are
//! counted per kind over a sliding window; when one kind reaches its threshold the
//! breaker opens: traffic goes to the spare, idle primary connections are closed, and
//! primary connections still checked out are closed when they come back. After
//! `probe_after` one background probe opens and checks a fresh primary connection
//! (half-open); success closes the breaker, failure keeps it open for another
//! `probe_after`.
//!
//! Modules: [`FailoverBuilder`] (window, thresholds, probe schedule), [`FailoverPool`]
//! with its guard [`FailoverConn`], [`FailoverState`] and [`Backend`], the snapshot
//! [`FailoverStats`], the breaker's failure kinds [`Failure`], the builder's
//! [`BuildError`], and [`RunError`] for
//! [`FailoverPool::run`] with its [`RequestFuture`].

mod breaker;
mod builder;
mod conn;
mod error;
mod pool;
mod state;
mod stats;

pub use breaker::Failure;
pub use builder::FailoverBuilder;
pub use conn::FailoverConn;
pub use error::{BuildError, RunError};
pub use pool::{FailoverPool, RequestFuture};
pub use state::{Backend, FailoverState};
pub use stats::FailoverStats;
