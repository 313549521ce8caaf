//! `bytes` integration (feature `bytes`): pooled `BytesMut` buffers that freeze into
//! `Bytes` without copying, and `Bytes` from a [`PooledBuf`].
//!
//! `BytesMut` keeps its allocation after `split().freeze()` hands the written bytes
//! out: once every `Bytes` taken from it is dropped, `reserve` reclaims the whole
//! allocation in place. The pool relies on that: a returned buffer is cleared, and
//! reserved back to its class size when it is next handed out, which costs no
//! allocation when the frozen bytes are gone by then, and one allocation when they are
//! still alive elsewhere (they are never overwritten).

use crate::buf::PooledBuf;
use crate::error::BuildError;
use crate::pool::{Pool, PoolStats, Pooled};
use bytes::{Bytes, BytesMut};
use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
use std::fmt;

/// `BytesMut` buffers of one size class.
///
/// Guards deref to [`BytesMut`], so [`bytes::BufMut`] methods (`put_slice`,
/// `put_u32`, …) work on them directly. [`freeze`](Self::freeze) turns what was written
/// into [`Bytes`] without a copy and sends the rest of the buffer back to the pool.
///
/// ```
/// use bytes::BufMut;
/// use poolside_bufpool::BytesPool;
///
/// let pool = BytesPool::new(4096)?;
/// let mut buf = pool.get();
/// buf.put_slice(b"frame");
/// buf.put_u16(7);
/// let frame = BytesPool::freeze(buf);
/// assert_eq!(&frame[..], b"frame\x00\x07");
/// drop(frame);
/// assert!(pool.get().capacity() >= 4096, "the allocation is reclaimed once the bytes are gone");
/// # Ok::<(), poolside_bufpool::BuildError>(())
/// ```
#[derive(Clone)]
pub struct BytesPool {
    pool: Pool<BytesMut>,
    capacity: usize,
}

impl BytesPool {
    /// A pool of `BytesMut` with `capacity` bytes each (1 to
    /// [`MAX_CLASS_SIZE`](crate::MAX_CLASS_SIZE)); buffers that grew past four times
    /// that are dropped on return rather than kept.
    ///
    /// ```
    /// assert!(poolside_bufpool::BytesPool::new(0).is_err());
    /// ```
    pub fn new(capacity: usize) -> Result<Self, BuildError> {
        if capacity == 0 {
            return Err(BuildError::ZeroClass);
        }
        if capacity > crate::MAX_CLASS_SIZE {
            return Err(BuildError::ClassTooLarge { size: capacity });
        }
        let cap = capacity.saturating_mul(4);
        let pool = crate::PoolBuilder::with_reset(
            move || BytesMut::with_capacity(capacity),
            BytesMut::clear,
        )
        .retain(move |buf| buf.capacity() <= cap)
        .size_of(|buf| buf.capacity() as u64)
        .build()?;
        Ok(BytesPool { pool, capacity })
    }

    /// An empty buffer with at least the class capacity.
    ///
    /// ```
    /// let pool = poolside_bufpool::BytesPool::new(512)?;
    /// assert!(pool.get().is_empty());
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn get(&self) -> Pooled<'_, BytesMut> {
        let mut buf = self.pool.get();
        // Reclaims the whole allocation in place once no frozen `Bytes` uses it; done
        // here rather than on return, when the frozen bytes are usually still alive.
        buf.reserve(self.capacity);
        buf
    }

    /// Freezes what was written into [`Bytes`] without copying; the rest of the
    /// buffer goes back to the pool.
    ///
    /// ```
    /// let pool = poolside_bufpool::BytesPool::new(64)?;
    /// let mut buf = pool.get();
    /// buf.extend_from_slice(b"abc");
    /// assert_eq!(poolside_bufpool::BytesPool::freeze(buf), "abc");
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn freeze(mut buf: Pooled<'_, BytesMut>) -> Bytes {
        buf.split().freeze()
    }

    /// The capacity of every new buffer.
    ///
    /// ```
    /// assert_eq!(poolside_bufpool::BytesPool::new(512)?.capacity(), 512);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The pool's counters.
    ///
    /// ```
    /// let pool = poolside_bufpool::BytesPool::new(64)?;
    /// drop(pool.get());
    /// assert_eq!(pool.stats().misses, 1);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

impl fmt::Debug for BytesPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BytesPool")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Instrumented for BytesPool {
    fn kind(&self) -> &'static str {
        "bufpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        self.pool.catalogue()
    }

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        self.pool.visit_metrics(visitor);
    }
}

impl PooledBuf<'_> {
    /// Turns the written bytes into [`Bytes`] without copying (feature `bytes`). The
    /// buffer leaves the pool: `Bytes` owns its allocation from now on.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// let mut buf = pool.get(100);
    /// buf.extend_from_slice(b"payload");
    /// let bytes = buf.freeze();
    /// assert_eq!(bytes, "payload");
    /// ```
    pub fn freeze(self) -> Bytes {
        Bytes::from(self.detach())
    }
}
