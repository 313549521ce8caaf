// With `full` (as on docs.rs) the README, the project's front door with its tour, is the
// crate documentation, so each of its snippets is compiled and run as a doc test; with
// fewer features a short text stands in, since the tour needs every module.
#![cfg_attr(feature = "full", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "full"),
    doc = r#"Pooling for Rust: reusable objects and byte buffers, a bounded worker thread pool,
an async connection pool, and metrics for all of them, re-exported behind the features
`buf`, `worker`, `conn`, `metrics`, the adapters `postgres`, `postgres-rustls`, `redis`,
`redis-rustls`, the blocking pool `blocking`, `sqlite`, `postgres-sync`, `diesel`, the
buffer features `json` and `bytes`, `serde`, `metrics-server`, `metrics-facade`, and `full`
(see the README).

```
use poolside::core::Reset;

let mut v = vec![1, 2, 3];
v.reset();
assert!(v.is_empty());
```
"#
)]
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
