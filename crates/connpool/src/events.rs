//! Per-connection events and timings, for metrics and tracing: give
//! [`Builder::events`](crate::Builder::events) an [`Events`] made from an
//! [`EventHook`]; the pool reports every connect, checkout, checkin and close
//! ([`ConnEvent`]) with the connection's id and durations, and the [`Timing`]s of
//! acquire waits and dials. Unset (the default), it costs one branch per report.
//!
//! ```
//! use poolside_connpool::events::{ConnEvent, EventHook, Events, Timing};
//! use poolside_connpool::{Builder, tcp::TcpManager};
//! use std::time::Duration;
//!
//! struct Log;
//! impl EventHook for Log {
//!     fn on_timing(&self, timing: Timing, took: Duration) {
//!         let _ = (timing, took);
//!     }
//!     fn on_connection(&self, event: ConnEvent) {
//!         let _ = event;
//!     }
//! }
//! let builder = Builder::new().events(Events::new(Log));
//! # let _ = builder.build(TcpManager::new("127.0.0.1:1"));
//! ```

pub use poolside_core::{ConnEvent, EventHook, Events, Timing};
