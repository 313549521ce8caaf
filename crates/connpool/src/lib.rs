//! An async connection pool for tokio: FIFO-fair, cancel-safe, with health checks,
//! lifetimes, min idle and explicit exhaustion policies.
//!
//! The pool itself arrives with the connpool issue; this crate currently provides the
//! shared vocabulary from [`poolside_core`].
#![forbid(unsafe_code)]

pub use poolside_core::{Instrumented, PoolError};
