//! The integration tests of poolside-workerpool, one module per area, in one binary
//! (one link instead of one per file). `tests/threads.rs` stays apart: it counts the
//! process's threads, which other tests running alongside would disturb; so does
//! `tests/loom.rs`, which builds only under `--cfg loom`.

#[path = "../common/mod.rs"]
mod common;

mod adversarial;
mod allocations;
mod async_submit;
mod group;
mod model;
mod parking;
mod peers;
mod pool;
mod scope;

/// Counts the allocations of each thread, for `allocations`.
#[global_allocator]
static ALLOCATOR: allocations::Counting = allocations::Counting;
