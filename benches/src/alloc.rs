//! A counting global allocator, the Rust counterpart of Go's `-benchmem`.
//!
//! A bench binary installs it and measures allocations and bytes per operation with
//! [`measure`]:
//!
//! ```
//! use poolside_benches::alloc::{CountingAllocator, measure};
//!
//! #[global_allocator]
//! static ALLOC: CountingAllocator = CountingAllocator;
//!
//! fn main() {
//!     let stats = measure(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(64))));
//!     assert_eq!((stats.allocations, stats.bytes), (1, 64));
//! }
//! ```
//! Counting
//! uses thread-local counters, so measurements on one thread are not disturbed by
//! other threads and cost no contended atomics.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting this thread's allocations and allocated bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

fn count(bytes: usize) {
    // `try_with` because the allocator may run while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    let _ = BYTES.try_with(|c| c.set(c.get() + bytes as u64));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counting touches only const-initialised thread-local
// `Cell`s, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations and bytes counted on the current thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Number of allocations (including reallocations).
    pub allocations: u64,
    /// Bytes requested by those allocations.
    pub bytes: u64,
}

impl AllocStats {
    /// Per-operation figures over `ops` operations.
    pub fn per_op(self, ops: u64) -> (f64, f64) {
        let ops = ops.max(1) as f64;
        (self.allocations as f64 / ops, self.bytes as f64 / ops)
    }
}

/// This thread's counters so far.
pub fn current() -> AllocStats {
    AllocStats {
        allocations: ALLOCATIONS.try_with(Cell::get).unwrap_or(0),
        bytes: BYTES.try_with(Cell::get).unwrap_or(0),
    }
}

/// What `f` allocated on this thread (zero unless [`CountingAllocator`] is the global
/// allocator).
pub fn measure(f: impl FnOnce()) -> AllocStats {
    let before = current();
    f();
    let after = current();
    AllocStats {
        allocations: after.allocations - before.allocations,
        bytes: after.bytes - before.bytes,
    }
}
