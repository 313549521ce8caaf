//! `BufPool`: byte buffers in size classes.
//!
//! Long on purpose: a third of it is the rustdoc (with examples) of `BufPool` and
//! `PooledBuf`, whose size-class logic and guard belong together.
//!
//! Buffers travel as `Box<CachePadded<Vec<u8>>>`: every pooled object is boxed once, when it is
//! made, so the per-thread cache can type-erase it without allocating; the box is
//! reused with its buffer for the buffer's whole life.
#![allow(clippy::box_collection)]

use crate::error::BuildError;
use crate::local::Cache;
use crate::pool::{self, Pool, PoolStats};
use crate::store::{Boxed, boxed};
use crossbeam_utils::CachePadded;
use poolside_core::{Instrumented, MetricDef, MetricDesc, MetricVisitor};
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The thread cache of byte buffers.
type Bytes = Cache<Vec<u8>>;

/// The default size classes: small ≤ 4 KiB, medium ≤ 64 KiB, large ≤ 1 MiB.
///
/// ```
/// assert_eq!(poolside_bufpool::BufPool::new().classes(), poolside_bufpool::DEFAULT_CLASSES);
/// ```
pub const DEFAULT_CLASSES: [usize; 3] = [4 * 1024, 64 * 1024, 1024 * 1024];

/// The largest size class, and the largest capacity cap, a buffer pool accepts (1 GiB).
///
/// ```
/// let err = poolside_bufpool::BufPool::builder()
///     .classes(&[4096, poolside_bufpool::MAX_CLASS_SIZE + 1])
///     .build();
/// assert!(matches!(err, Err(poolside_bufpool::BuildError::ClassTooLarge { .. })));
/// ```
pub const MAX_CLASS_SIZE: usize = 1 << 30;

struct Class {
    size: usize,
    /// The class pool's id, which keys its thread cache slot: a hit or a return
    /// touches only this thread's cache, not the pool.
    id: u64,
    label: String,
    pool: Pool<Vec<u8>>,
}

struct BufInner {
    /// The smallest class, the common case, one load away from the pool handle.
    smallest: Smallest,
    classes: Vec<Class>,
    /// For each bit length `b` of `size_hint - 1`, the first class that can fit a hint
    /// of that length (the first larger than `2^(b-1)`): a search for a hint starts
    /// there and is over after a comparison or two, however many classes there are.
    first_class_by_bits: [usize; BIT_LENGTHS],
    /// Returned buffers rejected because their capacity exceeds the cap (the largest
    /// class by default). A buffer below the smallest class, which only `attach` or a
    /// borrower's `shrink_to` can produce, is dropped without a counter: nothing reads
    /// one, and the debug event names it.
    dropped_above_cap: AtomicU64,
    /// Gets larger than the largest class: served unpooled.
    unpooled: AtomicU64,
    cap: usize,
}

/// Byte buffers pooled in size classes.
///
/// [`get(size_hint)`](Self::get) takes a buffer from the smallest class that fits the
/// hint. A returned buffer is filed by its *capacity*, so one that grew while in use
/// serves the larger class it now fits; one that grew past the largest class (or the
/// cap) is dropped and counted, never pinned in the pool. Each class is a [`Pool`] with
/// its own per-thread fast path.
///
/// ```
/// use poolside_bufpool::BufPool;
/// use std::io::Write;
///
/// let pool = BufPool::new();
/// let mut buf = pool.get(300);
/// write!(buf, "hello {}", "world")?;
/// assert_eq!(&buf[..], b"hello world");
/// assert!(buf.capacity() >= 4096); // the small class
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct BufPool {
    inner: Arc<BufInner>,
}

/// Settings for a [`BufPool`].
///
/// ```
/// let pool = poolside_bufpool::BufPool::builder()
///     .classes(&[1024, 16 * 1024, 256 * 1024])
///     .max_capacity(128 * 1024) // buffers that grew past 128 KiB are dropped
///     .max_retained_per_class(64)
///     .build()?;
/// assert_eq!(pool.classes(), vec![1024, 16 * 1024, 256 * 1024]);
/// # Ok::<(), poolside_bufpool::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BufPoolBuilder {
    classes: Vec<usize>,
    cap: Option<usize>,
    max_retained: usize,
    local_capacity: usize,
    idle: Option<std::time::Duration>,
}

impl Default for BufPool {
    fn default() -> Self {
        BufPool::new()
    }
}

impl BufPool {
    /// A pool with the [`DEFAULT_CLASSES`].
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// assert!(pool.get(100).capacity() >= 4096);
    /// ```
    pub fn new() -> Self {
        BufPool::builder().build().expect("the default classes are valid")
    }

    /// Starts a [`BufPoolBuilder`].
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::builder().classes(&[512, 8192]).build()?;
    /// assert!(pool.get(600).capacity() >= 8192);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn builder() -> BufPoolBuilder {
        BufPoolBuilder {
            classes: DEFAULT_CLASSES.to_vec(),
            cap: None,
            max_retained: 256,
            local_capacity: 4,
            idle: None,
        }
    }

    /// An empty buffer with capacity of at least `size_hint`.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// assert!(pool.get(5000).capacity() >= 64 * 1024);
    /// assert!(pool.get(2 << 20).capacity() >= 2 << 20); // above the top class: not pooled
    /// ```
    #[inline(always)]
    pub fn get(&self, size_hint: usize) -> PooledBuf<'_> {
        let inner = &*self.inner;
        // Small requests, the common case: one comparison, and the class id is read
        // from the pool itself rather than through the class list.
        if size_hint <= inner.smallest.size {
            let buf = match Bytes::pop(inner.smallest.id) {
                Some(buf) => buf,
                None => inner.take_slow(0),
            };
            return PooledBuf { buf: Some(buf), pool: inner };
        }
        self.get_larger(size_hint)
    }

    #[inline(never)]
    fn get_larger(&self, size_hint: usize) -> PooledBuf<'_> {
        let inner = &*self.inner;
        let Some(index) = inner.class_index_for(size_hint) else {
            return self.get_unpooled(size_hint);
        };
        let class = &inner.classes[index];
        let buf = match Bytes::pop(class.id) {
            Some(buf) => buf,
            None => inner.take_slow(index),
        };
        PooledBuf { buf: Some(buf), pool: inner }
    }

    #[cold]
    #[inline(never)]
    fn get_unpooled(&self, size_hint: usize) -> PooledBuf<'_> {
        self.inner.unpooled.fetch_add(1, Ordering::Relaxed);
        PooledBuf { buf: Some(boxed(Vec::with_capacity(size_hint))), pool: &self.inner }
    }

    /// Adds a buffer made elsewhere; it is cleared and filed by its capacity.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// pool.attach(Vec::with_capacity(64 * 1024)); // filed in the 64 KiB class
    /// assert_eq!(pool.class_stats()[1].1.returns, 1);
    /// ```
    pub fn attach(&self, buf: Vec<u8>) {
        self.inner.put(boxed(buf));
    }

    /// The class sizes, ascending.
    ///
    /// ```
    /// assert_eq!(poolside_bufpool::BufPool::new().classes(), [4096, 65536, 1048576]);
    /// ```
    pub fn classes(&self) -> Vec<usize> {
        self.inner.classes.iter().map(|c| c.size).collect()
    }

    /// Frees every retained buffer now (shared stores and this thread's caches).
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// drop(pool.get(10));
    /// assert_eq!(pool.trim(), 1);
    /// ```
    pub fn trim(&self) -> usize {
        self.inner.classes.iter().map(|c| c.pool.trim()).sum()
    }

    /// Per-class counters, smallest class first.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// drop(pool.get(10));
    /// let (size, stats) = pool.class_stats()[0];
    /// assert_eq!((size, stats.misses), (4096, 1));
    /// ```
    pub fn class_stats(&self) -> Vec<(usize, PoolStats)> {
        self.inner.classes.iter().map(|c| (c.size, c.pool.stats())).collect()
    }

    /// Returned buffers rejected and dropped: those that grew past the largest class or
    /// the cap, plus any rejection counted by a class pool.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::builder().max_capacity(64 * 1024).build()?;
    /// pool.get(100).reserve(1 << 20);
    /// assert_eq!(pool.rejected(), 1);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn rejected(&self) -> u64 {
        self.inner.dropped_above_cap.load(Ordering::Relaxed)
            + self.inner.classes.iter().map(|c| c.pool.stats().rejected).sum::<u64>()
    }

    /// The former name of [`rejected`](Self::rejected), kept for one release.
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// let pool = poolside_bufpool::BufPool::builder().max_capacity(64 * 1024).build()?;
    /// pool.get(100).reserve(1 << 20);
    /// assert_eq!(pool.dropped_oversized(), pool.rejected());
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    #[deprecated(since = "0.2.0", note = "renamed to `rejected`")]
    pub fn dropped_oversized(&self) -> u64 {
        self.rejected()
    }

    /// JSON helper (feature `json`): serializes `value` into a pooled buffer and
    /// returns the guard, for zero-copy use; the buffer goes back (capped) on drop.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// let json = pool.to_json(&serde_json::json!({"id": 7}))?;
    /// assert_eq!(&json[..], br#"{"id":7}"#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[cfg(feature = "json")]
    pub fn to_json<S: serde::Serialize + ?Sized>(
        &self,
        value: &S,
    ) -> Result<PooledBuf<'_>, serde_json::Error> {
        let mut buf = self.get(DEFAULT_JSON_HINT);
        serde_json::to_writer(&mut *buf, value)?;
        Ok(buf)
    }

    /// JSON helper (feature `json`): serializes `value` through a pooled buffer and
    /// returns an owned copy of the bytes; the pooled buffer goes straight back.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// let bytes: Vec<u8> = pool.to_json_vec(&[1, 2, 3])?;
    /// assert_eq!(bytes, b"[1,2,3]");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[cfg(feature = "json")]
    pub fn to_json_vec<S: serde::Serialize + ?Sized>(
        &self,
        value: &S,
    ) -> Result<Vec<u8>, serde_json::Error> {
        self.to_json(value).map(|buf| buf.to_vec())
    }
}

/// The size hint used for JSON documents of unknown size.
#[cfg(feature = "json")]
const DEFAULT_JSON_HINT: usize = 512;

/// The smallest class's size and pool id, copied from `classes[0]`.
struct Smallest {
    size: usize,
    /// The largest capacity filed in this class: below the next class's size and
    /// within the cap. A returned buffer whose capacity lies in `size..=upper`, as one
    /// handed out by this class usually does, goes back without a search.
    upper: usize,
    id: u64,
}

/// Bit lengths of a `usize`: 0 to 64.
const BIT_LENGTHS: usize = usize::BITS as usize + 1;

/// The bit length of `size_hint - 1`: `2^(b-1) < size_hint <= 2^b`.
fn bit_length_below(size_hint: usize) -> usize {
    (usize::BITS - size_hint.saturating_sub(1).leading_zeros()) as usize
}

impl BufInner {
    /// The index of the smallest class that fits `size_hint`.
    fn class_index_for(&self, size_hint: usize) -> Option<usize> {
        let start = *self.first_class_by_bits.get(bit_length_below(size_hint))?;
        let offset = self.classes.get(start..)?.iter().position(|c| c.size >= size_hint)?;
        Some(start + offset)
    }

    /// A buffer of class `index` when this thread's cache has none.
    #[cold]
    #[inline(never)]
    fn take_slow(&self, index: usize) -> Boxed<Vec<u8>> {
        self.classes[index].pool.take_slow()
    }

    /// Takes a buffer back, filed by its capacity: a buffer of the smallest class
    /// (most of them) with two comparisons against `smallest`, any other through the
    /// bit-length table. The guard stays two words, with no note of its class.
    #[inline(always)]
    fn put(&self, mut buf: Boxed<Vec<u8>>) {
        // The class pools leave resetting to us: a direct `clear` instead of a hook call.
        buf.clear();
        let capacity = buf.capacity();
        if self.smallest.size <= capacity && capacity <= self.smallest.upper {
            if let Err(buf) = Bytes::push(self.smallest.id, buf) {
                self.put_slow(0, buf);
            }
        } else {
            self.file_by_capacity(buf);
        }
    }

    /// Files a buffer that this thread's cache did not take.
    #[cold]
    #[inline(never)]
    fn put_slow(&self, index: usize, buf: Boxed<Vec<u8>>) {
        self.classes[index].pool.put_slow(buf);
    }

    /// Files a cleared buffer above the smallest class, or one that shrank or came
    /// from elsewhere, by its capacity: with the largest class it reaches, or drops it.
    #[inline(never)]
    fn file_by_capacity(&self, buf: Boxed<Vec<u8>>) {
        let capacity = buf.capacity();
        if capacity > self.cap {
            self.dropped_above_cap.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(capacity, cap = self.cap, "returned buffer above the cap; dropped");
            return;
        }
        // The class below the first one larger than `capacity`.
        let filed = match self.class_index_for(capacity.saturating_add(1)) {
            Some(0) => None,
            Some(above) => Some(above - 1),
            None => self.classes.len().checked_sub(1),
        };
        match filed {
            Some(index) => self.classes[index].pool.put(buf),
            None => {
                tracing::debug!(capacity, "returned buffer below the smallest class; dropped");
            }
        }
    }
}

impl BufPoolBuilder {
    /// Class sizes in bytes, strictly increasing, each from 1 to [`MAX_CLASS_SIZE`]
    /// (default [`DEFAULT_CLASSES`]).
    ///
    /// ```
    /// let err = poolside_bufpool::BufPool::builder().classes(&[4096, 1024]).build();
    /// assert!(matches!(err, Err(poolside_bufpool::BuildError::UnorderedClasses { .. })));
    /// ```
    pub fn classes(mut self, classes: &[usize]) -> Self {
        self.classes = classes.to_vec();
        self
    }

    /// Buffers returned with more capacity than this are dropped (default: the
    /// largest class; at least the smallest class, at most [`MAX_CLASS_SIZE`]).
    ///
    /// ```
    /// let err = poolside_bufpool::BufPool::builder().classes(&[1024]).max_capacity(512).build();
    /// assert!(matches!(err, Err(poolside_bufpool::BuildError::CapBelowSmallestClass { .. })));
    /// ```
    pub fn max_capacity(mut self, cap: usize) -> Self {
        self.cap = Some(cap);
        self
    }

    /// Buffers kept in each class's shared store (default 256, at least 1, at most
    /// [`MAX_RETAINED`](crate::MAX_RETAINED)).
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::builder().max_retained_per_class(16).build()?;
    /// # drop(pool);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn max_retained_per_class(mut self, max: usize) -> Self {
        self.max_retained = max;
        self
    }

    /// Buffers each thread keeps per class (default 4, at most
    /// [`MAX_LOCAL_CAPACITY`](crate::MAX_LOCAL_CAPACITY); 0 disables the per-thread
    /// cache).
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::builder().local_capacity(0).build()?;
    /// drop(pool.get(10));
    /// assert_eq!(pool.class_stats()[0].1.retained_shared, 1);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn local_capacity(mut self, capacity: usize) -> Self {
        self.local_capacity = capacity;
        self
    }

    /// Frees buffers that sat unused for a whole `interval`.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::builder()
    ///     .idle_release(std::time::Duration::from_secs(30))
    ///     .build()?;
    /// # drop(pool);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn idle_release(mut self, interval: std::time::Duration) -> Self {
        self.idle = Some(interval);
        self
    }

    /// Validates the classes and the cap.
    ///
    /// ```
    /// assert_eq!(
    ///     poolside_bufpool::BufPool::builder().classes(&[]).build().unwrap_err(),
    ///     poolside_bufpool::BuildError::NoClasses,
    /// );
    /// ```
    pub fn build(self) -> Result<BufPool, BuildError> {
        let Some(&smallest) = self.classes.first() else { return Err(BuildError::NoClasses) };
        if self.classes.contains(&0) {
            return Err(BuildError::ZeroClass);
        }
        if let Some(&size) = self.classes.iter().find(|&&size| size > MAX_CLASS_SIZE) {
            return Err(BuildError::ClassTooLarge { size });
        }
        if let Some(w) = self.classes.windows(2).find(|w| w[0] >= w[1]) {
            return Err(BuildError::UnorderedClasses { larger: w[0], smaller: w[1] });
        }
        let largest = *self.classes.last().unwrap_or(&smallest);
        let cap = self.cap.unwrap_or(largest);
        if cap < smallest {
            return Err(BuildError::CapBelowSmallestClass { cap, smallest });
        }
        if cap > MAX_CLASS_SIZE {
            return Err(BuildError::CapTooLarge { cap });
        }
        let mut classes = Vec::with_capacity(self.classes.len());
        for &size in &self.classes {
            let mut builder = Pool::builder(move || Vec::with_capacity(size))
                .max_retained(self.max_retained)
                .local_capacity(self.local_capacity)
                .size_of(|v: &Vec<u8>| v.capacity() as u64)
                .reset_by_owner();
            if let Some(interval) = self.idle {
                builder = builder.idle_release(interval);
            }
            let pool = builder.build()?;
            classes.push(Class { size, id: pool.id(), label: class_label(size), pool });
        }
        let first_class_by_bits = std::array::from_fn(|bits| {
            let below = if bits == 0 { 0 } else { 1usize << (bits - 1) };
            classes.iter().position(|c| c.size > below).unwrap_or(classes.len())
        });
        // `classes` is not empty: checked above.
        let upper = self.classes.get(1).map_or(cap, |&next| cap.min(next - 1));
        let smallest = Smallest { size: classes[0].size, upper, id: classes[0].id };
        Ok(BufPool {
            inner: Arc::new(BufInner {
                smallest,
                classes,
                first_class_by_bits,
                dropped_above_cap: AtomicU64::new(0),
                unpooled: AtomicU64::new(0),
                cap,
            }),
        })
    }
}

fn class_label(size: usize) -> String {
    if size % (1024 * 1024) == 0 {
        format!("{}MiB", size / (1024 * 1024))
    } else if size % 1024 == 0 {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    }
}

/// A pooled byte buffer; goes back to its [`BufPool`] (filed by capacity) on drop.
/// Implements [`io::Write`].
///
/// ```
/// use std::io::Write;
/// let pool = poolside_bufpool::BufPool::new();
/// let mut buf: poolside_bufpool::PooledBuf<'_> = pool.get(64);
/// buf.write_all(b"bytes")?;
/// assert_eq!(&buf[..], b"bytes");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PooledBuf<'a> {
    buf: Option<Boxed<Vec<u8>>>,
    pool: &'a BufInner,
}

/// The former name of [`PooledBuf`], kept for one release.
///
/// ```
/// # #![allow(deprecated)]
/// let pool = poolside_bufpool::BufPool::new();
/// let buf: poolside_bufpool::BufGuard<'_> = pool.get(64);
/// assert!(buf.capacity() >= 64);
/// ```
#[deprecated(since = "0.2.0", note = "renamed to `PooledBuf`")]
pub type BufGuard<'a> = PooledBuf<'a>;

impl PooledBuf<'_> {
    /// Keeps the buffer: it will not go back to the pool.
    ///
    /// ```
    /// let pool = poolside_bufpool::BufPool::new();
    /// let mut buf = pool.get(16);
    /// buf.extend_from_slice(b"keep");
    /// let owned: Vec<u8> = buf.detach();
    /// assert_eq!(owned, b"keep");
    /// ```
    pub fn detach(mut self) -> Vec<u8> {
        CachePadded::into_inner(*self.buf.take().expect("present until drop or detach"))
    }
}

impl Deref for PooledBuf<'_> {
    type Target = Vec<u8>;
    #[inline]
    fn deref(&self) -> &Vec<u8> {
        self.buf.as_deref().expect("present until drop or detach")
    }
}

impl DerefMut for PooledBuf<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.buf.as_deref_mut().expect("present until drop or detach")
    }
}

impl io::Write for PooledBuf<'_> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.extend_from_slice(data);
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PooledBuf<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.put(buf);
        }
    }
}

impl fmt::Debug for PooledBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("classes", &self.classes())
            .field("cap", &self.inner.cap)
            .finish()
    }
}

/// The metrics a `BufPool` reports besides each class's [`pool::METRICS`], declared
/// once: the catalogue and the visit both come from this table.
static BUF_METRICS: [MetricDef<BufInner>; 2] = [
    MetricDef::counter(
        "dropped_above_cap",
        "Returned buffers dropped because their capacity exceeded the largest class or the cap.",
        |inner| inner.dropped_above_cap.load(Ordering::Relaxed),
    ),
    MetricDef::counter(
        "unpooled_gets",
        "Gets larger than the largest class, served without pooling.",
        |inner| inner.unpooled.load(Ordering::Relaxed),
    ),
];

/// The class metrics, then the pool's own.
static BUF_CATALOGUE: [&MetricDesc; 11] =
    concat(pool::CATALOGUE, MetricDef::catalogue(&BUF_METRICS));

/// `a` followed by `b`, for a catalogue made of two tables; `N` must be `A + B`
/// (checked when the `static` is evaluated, at compile time).
const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [&'static MetricDesc; A],
    b: [&'static MetricDesc; B],
) -> [&'static MetricDesc; N] {
    assert!(A + B == N, "a catalogue's length is the sum of its parts");
    const UNSET: &MetricDesc = &MetricDesc::gauge("", "");
    let mut out = [UNSET; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

impl Instrumented for BufPool {
    fn kind(&self) -> &'static str {
        "bufpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &BUF_CATALOGUE
    }

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        for class in &self.inner.classes {
            class.pool.stats().visit(&[("class", &class.label)], visitor);
        }
        MetricDef::visit_table(&BUF_METRICS, &self.inner, &[], visitor);
    }
}
