//! Object pools and tiered byte-buffer pools with a per-thread fast path.
//!
//! `poolside-bufpool` is Go's `sync.Pool` done the Rust way, with the object-pool
//! playbook enforced by the API:
//!
//! | rule | how the API enforces it |
//! |---|---|
//! | reset before reuse | the pool resets every returned object ([`Reset`] or a hook); a borrower always gets a clean one |
//! | never leak an object | [`Pooled`] / [`OwnedPooled`] / [`PooledBuf`] return it on `Drop`, panics included |
//! | cap what comes back | a retain policy (e.g. a capacity cap); rejected objects are dropped and counted |
//! | clear in place, never replace | [`Reset`] clears collections keeping their allocation |
//! | bound retained memory | `max_retained` per store, `local_capacity` per thread, idle release, [`Pool::trim`] |
//! | right-size buffers | [`BufPool`] size classes; a buffer is filed by its capacity |
//!
//! ```
//! use poolside_bufpool::{BufPool, Pool};
//! use std::collections::HashMap;
//!
//! // Any type with `Reset` (or a reset hook).
//! let maps: Pool<HashMap<String, u32>> = Pool::new(HashMap::new);
//! let mut m = maps.get();
//! m.insert("a".into(), 1);
//! drop(m);
//! assert!(maps.get().is_empty());
//!
//! // Byte buffers in size classes.
//! let bufs = BufPool::new();
//! let mut b = bufs.get(10_000); // from the 64 KiB class
//! b.extend_from_slice(&[0u8; 10_000]);
//! assert!(b.capacity() >= 64 * 1024);
//! ```
//!
//! # Fast path
//!
//! Each thread keeps a few objects per pool in a static `thread_local!` cache with
//! slots keyed by pool id: no lock and no contended atomic on `get` / drop. Objects
//! beyond that go to a bounded lock-free store shared by all threads. When a thread
//! exits, its cached objects move to the shared store (or are dropped if the pool is
//! gone); nothing leaks and the thread-local destructor never panics. When a pool's
//! last handle is dropped, the objects the dropping thread cached for it go at once,
//! and every other thread frees its own at its next operation on any pool.
//!
//! # User code that panics
//!
//! A panicking reset hook (or `Reset` impl), retain policy, `size_of` function or
//! object `Drop` is caught and logged, never propagated out of a guard's drop (which
//! may run while the thread unwinds): the object is dropped and counted in
//! `dropped_panicked`, and every count stays exact. A panicking `make` function
//! reaches the caller of `get`.
//!
//! # Features
//!
//! * `bytes`: `BytesPool` of `bytes::BytesMut` (guards deref to
//!   `BytesMut`, so `BufMut` works on them) and zero-copy `freeze` into `Bytes`, also
//!   for [`PooledBuf`] (whose `Vec<u8>` implements `BufMut` as well).
//! * `json`: `BufPool::to_json` / `BufPool::to_json_vec` serialize with serde_json
//!   into a pooled buffer.
//!
//! # Tracing
//!
//! `debug` events when a returned object is dropped by the retain policy or a buffer
//! is above the cap, and when idle objects are released; `error` events for panics in
//! user code. Nothing on the hot path.
// One `unsafe` block, in `local::with_cache`, allowed where it stands.
#![deny(unsafe_code, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod buf;
#[cfg(feature = "bytes")]
mod bytes_pool;
mod error;
mod local;
mod pool;
mod stats;
mod store;

#[allow(deprecated)]
pub use buf::BufGuard;
pub use buf::{BufPool, BufPoolBuilder, DEFAULT_CLASSES, MAX_CLASS_SIZE, PooledBuf};
#[cfg(feature = "bytes")]
pub use bytes_pool::BytesPool;
pub use error::BuildError;
pub use pool::{
    MAX_LOCAL_CAPACITY, MAX_RETAINED, OwnedPooled, Pool, PoolBuilder, PoolStats, Pooled,
};
pub use poolside_core::{Instrumented, Reset};

/// The snippets of the user guide, `docs/bufpool.md`, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/bufpool.md")]
struct UserGuide;
