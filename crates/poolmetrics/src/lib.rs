//! Every poolside pool observable in production: a thin pull collector.
//!
//! [`PoolMetrics`] holds the pools you [`register`](PoolMetrics::register) (any type
//! implementing [`Instrumented`]) and, when scraped, reads each one's statistics and
//! writes the Prometheus text exposition directly
//! ([`render_prometheus`](PoolMetrics::render_prometheus)). Nothing is recorded
//! between scrapes, so a registered pool runs the same hot path as an unregistered
//! one; timings (acquire wait, dial, queue wait, job run) come from the pool's
//! [`Events`] hook ([`timing_hook`](PoolMetrics::timing_hook)) into atomic histograms.
//!
//! Three ways to use it:
//!
//! * **Your own router**: serve [`PoolMetrics::render_prometheus`] at `/metrics` with
//!   [`CONTENT_TYPE`]. No feature needed: the core depends on no exporter and no HTTP
//!   code.
//! * **The built-in endpoint** (feature `server`): [`PoolMetrics::serve`] answers
//!   `/metrics` and `/debug/vars` (JSON), each client on its own thread with one
//!   deadline per request and a bound on connections ([`ServerBuilder`]).
//! * **The `metrics` facade** (feature `facade`): forward every value and timing to the
//!   global recorder your application installed
//!   ([`PoolMetricsBuilder::forward_to_global`], `PoolMetrics::spawn_collector`).
//!
//! # Conventions
//!
//! Families are `poolside_<kind>_<metric>` where `kind` is the pool's own
//! [`Instrumented::kind`] (`bufpool`, `workerpool`, `connpool`, `connpool_failover`):
//! counters end in `_total`, timing histograms in `_seconds`, sizes in `_bytes`. Every
//! series has labels `pool` (the registered name) and `kind`; pools add `class` (a
//! buffer size class), `shard` (a `ShardedPool`'s shard) or `backend` (a
//! `FailoverPool`'s `primary` / `spare`). Families are sorted by name, each with one
//! `# HELP` and `# TYPE`, pools in registration order: two scrapes of idle pools are
//! identical. [`catalogue`] lists every family a pool exports; docs/metrics-catalogue.md is
//! generated from it.
//!
//! ```
//! use poolside_core::{Instrumented, Metric, MetricDesc, MetricVisitor};
//! use poolside_metrics::PoolMetrics;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! static SERVED: MetricDesc = MetricDesc::counter("served", "Objects handed out.");
//! static CATALOGUE: [&MetricDesc; 1] = [&SERVED];
//!
//! struct Pool { served: AtomicU64 }
//! impl Instrumented for Pool {
//!     fn kind(&self) -> &'static str { "example" }
//!     fn catalogue(&self) -> &'static [&'static MetricDesc] { &CATALOGUE }
//!     fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
//!         v.visit(Metric { desc: &SERVED, labels: &[], value: self.served.load(Ordering::Relaxed) });
//!     }
//! }
//!
//! let metrics = PoolMetrics::new();
//! let pool = Arc::new(Pool { served: AtomicU64::new(0) });
//! let _registration = metrics.register("main", &pool)?;
//! pool.served.fetch_add(5, Ordering::Relaxed);
//!
//! assert_eq!(
//!     metrics.render_prometheus(),
//!     concat!(
//!         "# HELP poolside_example_served_total Objects handed out.\n",
//!         "# TYPE poolside_example_served_total counter\n",
//!         "poolside_example_served_total{pool=\"main\",kind=\"example\"} 5\n",
//!     )
//! );
//! # Ok::<(), poolside_metrics::MetricsError>(())
//! ```
//!
//! # Tracing
//!
//! This crate emits `tracing` events at `debug` level when pools are registered,
//! deregistered or dropped and when a request to the endpoint ends without an answer,
//! at `info` when the endpoint starts, and at `warn` when accepting a connection or
//! starting its thread fails.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod catalogue;
mod error;
#[cfg(feature = "facade")]
mod facade;
mod hook;
mod json;
mod naming;
mod registry;
mod render;
#[cfg(feature = "server")]
mod server;

pub use error::MetricsError;
#[cfg(feature = "facade")]
pub use facade::{Collector, MAX_COLLECT_INTERVAL};
pub use hook::DEFAULT_BUCKETS;
pub use poolside_core::{Events, Instrumented, Snapshot, Timing};
pub use registry::{
    MAX_BUCKET_BOUND, MAX_BUCKETS, MAX_POOLS_LIMIT, PoolMetrics, PoolMetricsBuilder, Registration,
};
pub use render::CONTENT_TYPE;
#[cfg(feature = "server")]
pub use server::{
    DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT, MAX_CONNECTIONS_LIMIT, MAX_REQUEST_TIMEOUT,
    MetricsServer, ServerBuilder,
};

/// The README's snippet, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

/// docs/metrics.md's snippets, compiled and run as doctests (they use every feature).
#[cfg(all(doctest, feature = "server", feature = "facade"))]
#[doc = include_str!("../../../docs/metrics.md")]
mod metrics_guide {}
