//! Export any poolside pool through the `metrics` facade.
//!
//! The exporter arrives with the metrics issue; this crate currently provides the
//! shared vocabulary from [`poolside_core`].
#![forbid(unsafe_code)]

pub use poolside_core::{Instrumented, Snapshot};
