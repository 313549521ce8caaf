//! Pooling for Rust: reusable objects and byte buffers, a bounded worker thread pool,
//! an async connection pool, and metrics for all of them.
//!
//! This umbrella crate re-exports the poolside crates behind features, so one
//! dependency line brings what you need:
//!
//! | feature | module | crate |
//! |---|---|---|
//! | always | [`core`] | `poolside-core` |
//! | `buf` | `buf` | `poolside-bufpool` |
//! | `worker` | `worker` | `poolside-workerpool` |
//! | `conn` | `conn` | `poolside-connpool` |
//! | `metrics` | `metrics` | `poolside-metrics` |
//! | `postgres` | `conn::PgManager` | `poolside-connpool/postgres` |
//! | `full` | all of the above | |
//!
//! ```
//! use poolside::core::Reset;
//!
//! let mut v = vec![1, 2, 3];
//! v.reset();
//! assert!(v.is_empty());
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use poolside_core as core;

/// Object and byte-buffer pools: `poolside-bufpool`.
#[cfg(feature = "buf")]
pub use poolside_bufpool as buf;

/// The bounded worker thread pool: `poolside-workerpool`.
#[cfg(feature = "worker")]
pub use poolside_workerpool as worker;

/// The async connection pool: `poolside-connpool`.
#[cfg(feature = "conn")]
pub use poolside_connpool as conn;

/// Metrics export: `poolside-metrics`.
#[cfg(feature = "metrics")]
pub use poolside_metrics as metrics;
