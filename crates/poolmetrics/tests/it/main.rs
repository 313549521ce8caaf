//! The integration tests of `poolside-metrics`, one module per subject, linked into
//! one test binary. `tests/global.rs` stays a binary of its own: it installs the
//! process-wide `metrics` recorder, which can happen only once per process.

#[path = "../../examples/service/mod.rs"]
mod service;
#[path = "../support/mod.rs"]
mod support;

mod catalogue;
mod conventions;
mod dashboard;
mod export;
mod exposition;
#[cfg(feature = "facade")]
mod facade;
mod model;
mod real_pools;
#[cfg(feature = "server")]
mod server;
mod stress;
