//! The small shared vocabulary of the [poolside] pools.
//!
//! Every poolside pool speaks the same three concepts, and this crate holds exactly
//! those, with no required dependencies:
//!
//! * [`Reset`]: clear a value in place and keep its capacity, so a pooled object is
//!   handed out clean without paying for a new allocation ("clear, don't replace").
//! * [`Instrumented`] and [`MetricVisitor`]: a pool describes its gauges and counters
//!   to a visitor without allocating, the way `tracing::field::Visit` walks fields.
//!   `poolside-metrics` turns that into Prometheus series; tests read it directly.
//!   [`MetricDef`] declares each metric once, with its description and where its
//!   value comes from, so a pool's catalogue and its visit come from one table.
//! * [`EventHook`] and [`Events`]: optional timing events (acquire wait, dial time, job
//!   queue wait, job run time). When no hook is installed the pools do not even read
//!   the clock.
//!
//! [`ShardedCounter`] is the one per-thread sharded counter of the pools (`counter.bump()`,
//! summed when read), and [`Shard`] the thread's shard for structures that lay out
//! their own per-shard cells.
//!
//! ```
//! use poolside_core::Reset;
//!
//! let mut scratch: Vec<u8> = Vec::with_capacity(4096);
//! scratch.extend_from_slice(b"previous borrower's bytes");
//! scratch.reset();
//! assert!(scratch.is_empty());
//! assert!(scratch.capacity() >= 4096); // the allocation survived
//! ```
//!
//! [poolside]: https://crates.io/crates/poolside
#![forbid(unsafe_code)]

mod counter;
mod events;
mod instrument;
mod reset;
mod table;

pub use counter::{Shard, ShardedCounter};
pub use events::{ConnEvent, EventHook, Events, Timing};
pub use instrument::{
    Instrumented, Label, Metric, MetricDesc, MetricKind, MetricVisitor, Snapshot, SnapshotEntry,
};
pub use reset::Reset;
pub use table::MetricDef;
