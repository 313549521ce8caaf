//! Every poolside pool observable in production with one line.
//!
//! [`PoolMetrics`] exports any pool implementing [`Instrumented`] through the
//! [`metrics`] facade:
//!
//! * gauges and counters named `poolside_<kind>_<metric>` with labels `pool=<name>` and
//!   `kind=<kind>` (plus the pool's own labels, such as a buffer size class), described
//!   once with their help text, and read from the pool's own statistics when collected
//!   — on every scrape — so the pools' hot paths pay nothing for them;
//! * timing histograms `poolside_<kind>_<timing>_seconds` (acquire wait, dial time,
//!   job queue wait, job run time) fed by the pool's [`Events`] hook from
//!   [`PoolMetrics::timing_hook`];
//! * [`PoolMetrics::serve`]: one call serves `/metrics` (Prometheus text exposition,
//!   rendered by `metrics-exporter-prometheus`) and `/debug/vars` (a JSON snapshot of
//!   every pool, Go's expvar idea) on one address.
//!
//! Series disappear when a pool is deregistered or dropped. Label cardinality is
//! bounded: pool names are validated and the number of pools is capped.
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
//! let server = metrics.serve("127.0.0.1:0")?;
//! // Prometheus scrapes http://{server.local_addr()}/metrics and sees:
//! assert!(metrics.render_prometheus().contains(r#"poolside_example_served{pool="main",kind="example"} 5"#));
//! # drop(server);
//! # Ok::<(), poolside_metrics::MetricsError>(())
//! ```
//!
//! # Tracing
//!
//! This crate emits `tracing` events at `debug` level when pools are registered,
//! deregistered or dropped, at `info` when the endpoint starts, and at `warn` when
//! accepting a connection fails.
#![forbid(unsafe_code)]

mod error;
mod exposition;
mod hook;
mod json;
mod naming;
mod registry;
mod server;

pub use error::MetricsError;
pub use poolside_core::{Events, Instrumented, Snapshot, Timing};
pub use registry::{Collector, PoolMetrics, PoolMetricsBuilder, Registration};
pub use server::MetricsServer;
