//! A bounded worker thread pool with backpressure, cancellation and a deadline
//! shutdown that joins every worker.
//!
//! The pool itself arrives with the workerpool issue; this crate currently provides
//! the shared vocabulary from [`poolside_core`].
#![forbid(unsafe_code)]

pub use poolside_core::{Instrumented, PoolError};
