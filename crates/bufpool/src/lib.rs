//! Object pools and tiered byte-buffer pools with a per-thread fast path.
//!
//! `poolside-bufpool` is `sync.Pool` done the Rust way: a borrower always receives a
//! clean object (the pool resets it, never the caller), a guard returns the object on
//! `Drop` so a forgotten return or a panic cannot leak it, oversized objects are
//! dropped and counted instead of pinned, and idle objects go back to the allocator.
//!
//! The pools themselves arrive with the bufpool issue; this crate currently provides
//! the shared vocabulary from [`poolside_core`].
#![forbid(unsafe_code)]

pub use poolside_core::{Instrumented, Reset};
