//! `Pool<T>`: a typed object pool with a per-thread fast path.
//!
//! Longer than the crate's other files on purpose: a third of it is the rustdoc (with
//! examples) of the public API, and the shared store, the per-thread path and the
//! guard's return path work on the same private fields.

use crate::error::BuildError;
use crate::local::{self, Cache, Erased, Sink, SlotInit, is_bytes};
use crate::stats::{CounterBlock, Counters, Event, Totals};
use crate::store::{Boxed, Store, boxed, drop_object, guarded};
use crossbeam_utils::CachePadded;
use poolside_core::{Instrumented, MetricDef, MetricDesc, MetricVisitor, Reset};
use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The most objects one thread may cache per pool.
///
/// ```
/// let err = poolside_bufpool::Pool::builder(Vec::<u8>::new)
///     .local_capacity(poolside_bufpool::MAX_LOCAL_CAPACITY + 1)
///     .build();
/// assert!(err.is_err());
/// ```
pub const MAX_LOCAL_CAPACITY: usize = 64;

/// The most objects a pool's shared store may retain: the store allocates room for
/// all of them when the pool is built.
///
/// ```
/// let err = poolside_bufpool::Pool::builder(Vec::<u8>::new)
///     .max_retained(poolside_bufpool::MAX_RETAINED + 1)
///     .build();
/// assert!(matches!(err, Err(poolside_bufpool::BuildError::RetainedTooLarge { .. })));
/// ```
pub const MAX_RETAINED: usize = 1 << 20;

/// The most bytes one object counts for in `retained_bytes` (2^43): with at most
/// [`MAX_RETAINED`] objects in a store, the gauge stays below 2^63.
const MAX_COUNTED_SIZE: u64 = 1 << 43;

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

type MakeFn<T> = dyn Fn() -> T + Send + Sync;
type ResetFn<T> = dyn Fn(&mut T) + Send + Sync;
type RetainFn<T> = dyn Fn(&T) -> bool + Send + Sync;
type SizeFn<T> = dyn Fn(&T) -> u64 + Send + Sync;

pub(crate) struct Inner<T: Send + 'static> {
    id: u64,
    make: Box<MakeFn<T>>,
    reset: ResetHook<T>,
    /// `None` keeps everything, without an indirect call per return.
    retain: Option<Box<RetainFn<T>>>,
    size_of: Box<SizeFn<T>>,
    local_capacity: usize,
    store: Store<T>,
    pub(crate) counters: Counters,
    /// How this pool's own `Weak<dyn Sink>` is made, for thread slots.
    this: Weak<Inner<T>>,
}

/// How a returned object is reset.
enum ResetHook<T> {
    /// The owner resets objects before returning them ([`BufPool`](crate::BufPool)
    /// clears buffers itself).
    ByOwner,
    /// `Vec<u8>`'s [`Reset`]: cleared inline, without an indirect call per return.
    ClearBytes,
    /// Any other hook.
    Hook(Box<ResetFn<T>>),
}

/// A pool of reusable `T`s. Cheap to clone; clones share the objects.
///
/// * [`get`](Self::get) hands out a clean object — a pooled one when there is one,
///   else a new one from the `make` function — inside a guard that returns it on
///   `Drop`, so a forgotten return or a panic cannot leak it.
/// * A returned object is reset by the pool (never by the caller), then kept only if
///   the retain policy accepts it (a capacity cap, say); rejected objects are dropped
///   and counted.
/// * Each thread keeps a few objects of its own (LIFO, no lock, no contended atomic);
///   the rest live in a bounded lock-free store shared by all threads.
///
/// ```
/// use poolside_bufpool::Pool;
///
/// let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(1024));
/// {
///     let mut buf = pool.get();
///     buf.extend_from_slice(b"secret");
/// } // back in the pool, cleared
/// let buf = pool.get();
/// assert!(buf.is_empty(), "a borrower never sees the previous borrower's bytes");
/// assert!(buf.capacity() >= 1024, "but the allocation is reused");
/// ```
pub struct Pool<T: Send + 'static> {
    inner: Arc<Inner<T>>,
}

impl<T: Send + 'static> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Pool { inner: self.inner.clone() }
    }
}

/// Settings for a [`Pool`].
///
/// ```
/// use poolside_bufpool::Pool;
/// use std::time::Duration;
///
/// let pool = Pool::builder(|| Vec::<u8>::with_capacity(4096))
///     .retain(|v| v.capacity() <= 64 * 1024) // cap what comes back
///     .max_retained(256)
///     .local_capacity(8)
///     .idle_release(Duration::from_secs(30))
///     .build()?;
/// # drop(pool);
/// # Ok::<(), poolside_bufpool::BuildError>(())
/// ```
pub struct PoolBuilder<T: Send + 'static> {
    make: Box<MakeFn<T>>,
    reset: ResetHook<T>,
    retain: Option<Box<RetainFn<T>>>,
    size_of: Box<SizeFn<T>>,
    max_retained: usize,
    local_capacity: usize,
    idle: Option<Duration>,
}

impl<T: Send + 'static> fmt::Debug for PoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("max_retained", &self.max_retained)
            .field("local_capacity", &self.local_capacity)
            .field("idle_release", &self.idle)
            .finish()
    }
}

impl<T: Reset + Send + 'static> Pool<T> {
    /// A pool that makes objects with `make` and clears them with [`Reset`].
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::new(|| String::with_capacity(64));
    /// assert!(pool.get().capacity() >= 64);
    /// ```
    pub fn new(make: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Pool::builder(make).build().expect("the default settings are valid")
    }

    /// Starts a [`PoolBuilder`] whose reset hook is [`Reset::reset`].
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::builder(Vec::<u32>::new).max_retained(8).build()?;
    /// assert!(pool.get().is_empty());
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn builder(make: impl Fn() -> T + Send + Sync + 'static) -> PoolBuilder<T> {
        let mut builder = PoolBuilder::with_reset(make, T::reset);
        if is_bytes::<T>() {
            // The same `clear`, without the indirect call.
            builder.reset = ResetHook::ClearBytes;
        }
        builder
    }
}

impl<T: Send + 'static> PoolBuilder<T> {
    /// A builder for types without a [`Reset`] impl: `reset` must clear the object in
    /// place so the next borrower sees a fresh one.
    ///
    /// ```
    /// struct Conn { scratch: Vec<u8>, requests: u32 }
    /// let pool = poolside_bufpool::PoolBuilder::with_reset(
    ///     || Conn { scratch: Vec::new(), requests: 0 },
    ///     |c| { c.scratch.clear(); c.requests = 0; },
    /// ).build()?;
    /// assert_eq!(pool.get().requests, 0);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn with_reset(
        make: impl Fn() -> T + Send + Sync + 'static,
        reset: impl Fn(&mut T) + Send + Sync + 'static,
    ) -> Self {
        PoolBuilder {
            make: Box::new(make),
            reset: ResetHook::Hook(Box::new(reset)),
            retain: None,
            size_of: Box::new(|_| 0),
            max_retained: 1024,
            local_capacity: 8,
            idle: None,
        }
    }

    /// Replaces the reset hook.
    ///
    /// ```
    /// // Zero a secret's bytes rather than only truncating.
    /// let pool = poolside_bufpool::Pool::builder(Vec::<u8>::new)
    ///     .reset(|v| { v.fill(0); v.clear(); })
    ///     .build()?;
    /// pool.get().extend_from_slice(b"key");
    /// assert!(pool.get().is_empty());
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn reset(mut self, reset: impl Fn(&mut T) + Send + Sync + 'static) -> Self {
        self.reset = ResetHook::Hook(Box::new(reset));
        self
    }

    /// Keeps a returned (already reset) object only if `retain` accepts it; others are
    /// dropped and counted as `rejected`. Use it to cap capacity.
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::builder(Vec::<u8>::new)
    ///     .retain(|v| v.capacity() <= 1024)
    ///     .build()?;
    /// pool.get().reserve(1 << 20); // grows past the cap: dropped on return
    /// assert_eq!(pool.stats().rejected, 1);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn retain(mut self, retain: impl Fn(&T) -> bool + Send + Sync + 'static) -> Self {
        self.retain = Some(Box::new(retain));
        self
    }

    /// The most objects kept in the shared store (default 1024, at least 1, at most
    /// [`MAX_RETAINED`]). Each thread may also cache up to `local_capacity` more.
    ///
    /// ```
    /// assert!(poolside_bufpool::Pool::builder(Vec::<u8>::new).max_retained(0).build().is_err());
    /// ```
    pub fn max_retained(mut self, max: usize) -> Self {
        self.max_retained = max;
        self
    }

    /// Objects each thread keeps for itself, at most [`MAX_LOCAL_CAPACITY`] (default 8;
    /// 0 disables the per-thread cache).
    ///
    /// ```
    /// // No per-thread cache: every return goes to the shared store.
    /// let pool = poolside_bufpool::Pool::builder(Vec::<u8>::new).local_capacity(0).build()?;
    /// drop(pool.get());
    /// assert_eq!(pool.shared_len(), 1);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn local_capacity(mut self, capacity: usize) -> Self {
        self.local_capacity = capacity;
        self
    }

    /// Frees objects that sat unused in the shared store for a whole `interval`
    /// (checked on the pool's slow path; [`Pool::trim`] frees on demand).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = poolside_bufpool::Pool::builder(Vec::<u8>::new)
    ///     .idle_release(Duration::from_secs(60))
    ///     .build()?;
    /// # drop(pool);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn idle_release(mut self, interval: Duration) -> Self {
        self.idle = Some(interval);
        self
    }

    /// For owners that reset every object themselves before it comes back.
    pub(crate) fn reset_by_owner(mut self) -> Self {
        self.reset = ResetHook::ByOwner;
        self
    }

    /// How many bytes an object holds, for the `retained_bytes` gauge (a size above
    /// 2^43 counts as 2^43; a panic counts as 0, logged).
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::builder(|| Vec::<u8>::with_capacity(100))
    ///     .size_of(|v| v.capacity() as u64)
    ///     .local_capacity(0)
    ///     .build()?;
    /// drop(pool.get());
    /// assert!(pool.stats().retained_shared_bytes >= 100);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn size_of(mut self, size_of: impl Fn(&T) -> u64 + Send + Sync + 'static) -> Self {
        self.size_of = Box::new(size_of);
        self
    }

    /// Validates the settings.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = poolside_bufpool::Pool::builder(Vec::<u8>::new).idle_release(Duration::ZERO).build();
    /// assert!(matches!(err, Err(poolside_bufpool::BuildError::ZeroIdleInterval(_))));
    /// ```
    pub fn build(self) -> Result<Pool<T>, BuildError> {
        if self.max_retained == 0 {
            return Err(BuildError::ZeroRetained);
        }
        if self.max_retained > MAX_RETAINED {
            return Err(BuildError::RetainedTooLarge { requested: self.max_retained });
        }
        if self.local_capacity > MAX_LOCAL_CAPACITY {
            return Err(BuildError::LocalCapacityTooLarge { requested: self.local_capacity });
        }
        if let Some(interval) = self.idle.filter(Duration::is_zero) {
            return Err(BuildError::ZeroIdleInterval(interval));
        }
        let PoolBuilder { make, reset, retain, size_of, max_retained, local_capacity, idle } = self;
        let inner = Arc::new_cyclic(|this| Inner {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            make,
            reset,
            retain,
            size_of,
            local_capacity,
            store: Store::new(max_retained, idle),
            counters: Counters::default(),
            this: this.clone(),
        });
        Ok(Pool { inner })
    }
}

/// `Vec<u8>`'s reset, inline: `T` is `Vec<u8>` wherever this is called, and the type
/// check folds away once `T` is known.
#[inline(always)]
fn clear_bytes<T: 'static>(object: &mut T) {
    if let Some(bytes) = (object as &mut dyn Any).downcast_mut::<Vec<u8>>() {
        bytes.clear();
    }
}

impl<T: Send + 'static> Inner<T> {
    fn slot_init(&self) -> SlotInit {
        let owner: Weak<dyn Sink> = self.this.clone();
        SlotInit { capacity: self.local_capacity, owner, counters: self.counters.register() }
    }

    /// A clean object: from this thread's cache, the shared store, or `make`.
    #[inline]
    pub(crate) fn take(&self) -> Boxed<T> {
        if self.local_capacity > 0 {
            if let Some(object) = Cache::<T>::pop(self.id) {
                return object;
            }
        }
        self.take_slow()
    }

    /// A clean object when this thread's cache had none: from the shared store, or
    /// `make`.
    #[cold]
    #[inline(never)]
    pub(crate) fn take_slow(&self) -> Boxed<T> {
        // A fast-path pop that found some pool dropped frees the stale slots and
        // reports nothing, to keep the fast path small; this pool's cached objects are
        // still there, and a second look here keeps them a hit rather than a miss.
        if self.local_capacity > 0 {
            if let Some(object) = Cache::<T>::pop(self.id) {
                return object;
            }
        }
        self.store.sweep_if_due();
        let (object, event) = match self.store.pop() {
            Some(object) => (object, Event::Hit),
            None => (boxed(self.make()), Event::Miss),
        };
        self.count(event);
        object
    }

    /// A new object from the `make` function. A panic there goes on to the caller of
    /// `get` (there is no object to hand out), logged, with nothing counted or held.
    fn make(&self) -> T {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.make)())) {
            Ok(object) => object,
            Err(payload) => {
                tracing::error!(pool = self.id, "the pool's make function panicked");
                std::panic::resume_unwind(payload)
            }
        }
    }

    /// How many bytes `object` holds, for the `retained_bytes` gauge; 0 when the
    /// `size_of` function panics, at most [`MAX_COUNTED_SIZE`], so that the gauge of
    /// a full store cannot overflow.
    fn size(&self, object: &T) -> u64 {
        guarded("a pool's size_of function", || (self.size_of)(object))
            .unwrap_or(0)
            .min(MAX_COUNTED_SIZE)
    }

    fn count(&self, event: Event) {
        if !Cache::<T>::count(self.id, event) {
            self.counters.shared.bump_shared(event);
        }
    }

    /// Takes an object back: reset, check the retain policy, keep it locally or in the
    /// shared store, or drop it.
    ///
    /// The reset hook and the retain policy are user code and may panic, possibly in a
    /// guard dropped while its thread unwinds: a panic is caught and logged, and the
    /// object, in an unknown state, is dropped and counted as `dropped_panicked`.
    #[inline]
    pub(crate) fn put(&self, mut object: Boxed<T>) {
        match &self.reset {
            ResetHook::ByOwner => {}
            ResetHook::ClearBytes => clear_bytes(&mut **object),
            ResetHook::Hook(reset) => {
                if run_reset(reset, &mut object).is_none() {
                    return self.discard(object, Event::DroppedPanicked);
                }
            }
        }
        if let Some(retain) = &self.retain {
            match run_retain(retain, &object) {
                Some(true) => {}
                Some(false) => return self.discard(object, Event::Rejected),
                None => return self.discard(object, Event::DroppedPanicked),
            }
        }
        if self.local_capacity > 0 {
            if let Err(object) = Cache::<T>::push(self.id, object) {
                self.put_slow(object);
            }
        } else {
            self.put_slow(object);
        }
    }

    /// Drops a returned object that is not kept, counting why.
    #[cold]
    #[inline(never)]
    fn discard(&self, object: Boxed<T>, why: Event) {
        self.count(why);
        if why == Event::Rejected {
            tracing::debug!(
                pool = self.id,
                "returned object rejected by the retain policy; dropped"
            );
        }
        drop_object(object);
    }

    /// Files a reset, accepted object that this thread's cache did not take: opens the
    /// thread's slot for this pool if it has none yet, else sends the object to the
    /// shared store.
    #[cold]
    #[inline(never)]
    pub(crate) fn put_slow(&self, object: Boxed<T>) {
        let object = if self.local_capacity == 0 {
            object
        } else {
            match Cache::<T>::open_and_push(self.id, object, || self.slot_init()) {
                Ok(()) => return,
                Err(object) => object,
            }
        };
        self.put_shared(object);
    }

    fn put_shared(&self, object: Boxed<T>) {
        self.count(Event::Return);
        let size = self.size(&object);
        if let Err(object) = self.store.push(object, size) {
            self.count(Event::DroppedFull);
            drop_object(object);
        }
        self.store.sweep_if_due();
    }

    /// Moves a departing thread's objects to the shared store.
    fn adopt_all(&self, objects: impl IntoIterator<Item = Boxed<T>>) {
        for object in objects {
            let size = self.size(&object);
            if let Err(object) = self.store.push(object, size) {
                self.counters.shared.bump_shared(Event::DroppedFull);
                drop_object(object);
            }
        }
    }

    /// Empties this thread's cache for this pool, dropping what it held; returns how
    /// many objects that was.
    fn drop_local(&self) -> usize {
        fn drop_all<O>(objects: Vec<O>) -> usize {
            let count = objects.len();
            objects.into_iter().for_each(drop_object);
            count
        }
        drop_all(Cache::<T>::take_all(self.id))
    }

    fn totals(&self) -> Totals {
        self.counters.totals()
    }
}

/// Runs a reset hook; `None` when it panicked. Out of line, like [`run_retain`]: the
/// unwinding frame they need stays off the path of pools without hooks.
#[inline(never)]
fn run_reset<T>(reset: &ResetFn<T>, object: &mut T) -> Option<()> {
    guarded("a pool's reset hook", || reset(object))
}

/// Runs a retain policy; `None` when it panicked.
#[inline(never)]
fn run_retain<T>(retain: &RetainFn<T>, object: &T) -> Option<bool> {
    guarded("a pool's retain policy", || retain(object))
}

impl<T: Send + 'static> Drop for Inner<T> {
    /// The last handle is gone: this thread's cached objects are dropped now, other
    /// threads' at their next pool operation or when they exit (see
    /// [`local::pool_dropped`]); the shared store drops its own.
    fn drop(&mut self) {
        if self.local_capacity > 0 {
            self.drop_local();
        }
        local::pool_dropped();
    }
}

impl<T: Send + 'static> Sink for Inner<T> {
    fn adopt(&self, objects: Vec<Erased>) {
        self.adopt_all(objects.into_iter().filter_map(|o| o.downcast::<CachePadded<T>>().ok()));
    }

    fn retire(&self, counters: &Arc<CounterBlock>) {
        self.counters.retire(counters);
    }
}

impl<T: Send + 'static> Pool<T> {
    /// A clean object in a guard that returns it on drop.
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::new(Vec::<u8>::new);
    /// let mut buf = pool.get();
    /// buf.push(1);
    /// assert_eq!(*buf, [1]);
    /// ```
    #[inline]
    pub fn get(&self) -> Pooled<'_, T> {
        Pooled { object: Some(self.inner.take()), pool: &self.inner }
    }

    /// Like [`get`](Self::get), but the guard owns a handle to the pool, so it is
    /// `'static` and can move to another thread or task.
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::new(String::new);
    /// let mut s = pool.get_owned();
    /// std::thread::spawn(move || s.push_str("moved")).join().unwrap();
    /// ```
    pub fn get_owned(&self) -> OwnedPooled<T> {
        OwnedPooled { object: Some(self.inner.take()), pool: self.inner.clone() }
    }

    /// Adds an object made elsewhere. It is reset and checked against the retain
    /// policy like any returned object.
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::new(Vec::<u8>::new);
    /// pool.attach(Vec::with_capacity(4096));
    /// assert!(pool.get().capacity() >= 4096);
    /// ```
    pub fn attach(&self, object: T) {
        self.inner.put(boxed(object));
    }

    /// Frees every object in the shared store and in this thread's cache now.
    /// Returns how many were freed.
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::new(Vec::<u8>::new);
    /// drop(pool.get());
    /// assert_eq!(pool.trim(), 1);
    /// ```
    pub fn trim(&self) -> usize {
        let local_count = self.inner.drop_local();
        self.inner.store.released_idle.fetch_add(local_count as u64, Ordering::Relaxed);
        local_count + self.inner.store.release(usize::MAX)
    }

    /// Objects in the shared store (thread caches not included).
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::builder(Vec::<u8>::new).local_capacity(0).build()?;
    /// drop(pool.get());
    /// assert_eq!(pool.shared_len(), 1);
    /// # Ok::<(), poolside_bufpool::BuildError>(())
    /// ```
    pub fn shared_len(&self) -> usize {
        self.inner.store.len()
    }

    /// The pool-wide counters at this moment.
    ///
    /// ```
    /// let pool = poolside_bufpool::Pool::new(Vec::<u8>::new);
    /// drop(pool.get());
    /// drop(pool.get());
    /// let stats = pool.stats();
    /// assert_eq!((stats.misses, stats.hits, stats.returns), (1, 1, 2));
    /// ```
    pub fn stats(&self) -> PoolStats {
        let t = self.inner.totals();
        PoolStats {
            hits: t.hits,
            misses: t.misses,
            returns: t.returns,
            rejected: t.rejected,
            dropped_full: t.dropped_full,
            dropped_panicked: t.dropped_panicked,
            released_idle: self.inner.store.released_idle.load(Ordering::Relaxed),
            retained_shared: self.inner.store.len() as u64,
            retained_shared_bytes: self.inner.store.bytes.load(Ordering::Relaxed),
        }
    }

    // The crate-internal fast-path API, for owners that reach the thread cache
    // themselves (`BufPool` files buffers by capacity, then calls these).

    /// The id that keys this pool's thread-cache slots.
    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// A clean object when this thread's cache had none.
    pub(crate) fn take_slow(&self) -> Boxed<T> {
        self.inner.take_slow()
    }

    /// Files an object that this thread's cache did not take.
    pub(crate) fn put_slow(&self, object: Boxed<T>) {
        self.inner.put_slow(object);
    }

    /// Takes an object back, as a guard's drop does.
    pub(crate) fn put(&self, object: Boxed<T>) {
        self.inner.put(object);
    }
}

/// Counters of a [`Pool`] (also reported through [`Instrumented`]).
///
/// ```
/// let pool = poolside_bufpool::Pool::new(String::new);
/// assert_eq!(pool.stats(), poolside_bufpool::PoolStats::default());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Gets served from a thread cache or the shared store.
    pub hits: u64,
    /// Gets that had to make a new object.
    pub misses: u64,
    /// Objects taken back (kept or dropped for a full store).
    pub returns: u64,
    /// Returned objects rejected by the retain policy.
    pub rejected: u64,
    /// Returned objects dropped because the shared store was full.
    pub dropped_full: u64,
    /// Returned objects dropped because the reset hook or the retain policy panicked
    /// on them (the panic is caught and logged).
    pub dropped_panicked: u64,
    /// Objects freed by idle release or `trim`.
    pub released_idle: u64,
    /// Objects in the shared store now.
    pub retained_shared: u64,
    /// Bytes those objects hold (with a `size_of` function).
    pub retained_shared_bytes: u64,
}

/// Every metric of a [`Pool`] (and of each class of a `BufPool`), declared once: the
/// catalogue and the visit both come from this table, in this order.
static METRICS: [MetricDef<PoolStats>; 9] = [
    MetricDef::counter(
        "hits",
        "Gets served from a pooled object, from a per-thread cache or the shared store.",
        |s| s.hits,
    ),
    MetricDef::counter("misses", "Gets that made a new object.", |s| s.misses),
    MetricDef::counter("returns", "Objects returned to the pool.", |s| s.returns),
    MetricDef::counter(
        "rejected",
        "Returned objects dropped because the retain policy rejected them.",
        |s| s.rejected,
    ),
    MetricDef::counter(
        "dropped_full",
        "Returned objects dropped because the pool was full.",
        |s| s.dropped_full,
    ),
    MetricDef::counter(
        "dropped_panicked",
        "Returned objects dropped because the reset hook or retain policy panicked.",
        |s| s.dropped_panicked,
    ),
    MetricDef::counter("released_idle", "Objects freed after sitting idle, or by trim.", |s| {
        s.released_idle
    }),
    MetricDef::gauge(
        "retained",
        "Objects kept in the pool's shared store; objects in per-thread caches are not counted.",
        |s| s.retained_shared,
    ),
    MetricDef::gauge(
        "retained_bytes",
        "Bytes held by the objects in the pool's shared store; per-thread caches are not counted.",
        |s| s.retained_shared_bytes,
    ),
];

pub(crate) static CATALOGUE: [&MetricDesc; 9] = MetricDef::catalogue(&METRICS);

impl PoolStats {
    /// Reports these values with `labels` (a size class, for buffer pools).
    pub(crate) fn visit(&self, labels: &[poolside_core::Label<'_>], v: &mut dyn MetricVisitor) {
        MetricDef::visit_table(&METRICS, self, labels, v);
    }
}

impl<T: Send + 'static> Instrumented for Pool<T> {
    fn kind(&self) -> &'static str {
        "bufpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &CATALOGUE
    }

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        self.stats().visit(&[], visitor);
    }
}

impl<T: Send + 'static> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("id", &self.inner.id).field("stats", &self.stats()).finish()
    }
}

/// A pooled object borrowed from a [`Pool`]; returns to it on drop.
///
/// ```
/// let pool = poolside_bufpool::Pool::new(Vec::<u8>::new);
/// let guard: poolside_bufpool::Pooled<'_, Vec<u8>> = pool.get();
/// drop(guard); // back in the pool
/// assert_eq!(pool.stats().returns, 1);
/// ```
pub struct Pooled<'a, T: Send + 'static> {
    object: Option<Boxed<T>>,
    pool: &'a Inner<T>,
}

/// A pooled object that owns a handle to its pool (`Send + 'static` when `T: Send`).
///
/// ```
/// let pool = poolside_bufpool::Pool::new(Vec::<u8>::new);
/// let guard: poolside_bufpool::OwnedPooled<Vec<u8>> = pool.get_owned();
/// std::thread::spawn(move || drop(guard)).join().unwrap();
/// ```
pub struct OwnedPooled<T: Send + 'static> {
    object: Option<Boxed<T>>,
    pool: Arc<Inner<T>>,
}

macro_rules! guard_impls {
    ($guard:ident $(<$lt:lifetime>)?) => {
        impl<$($lt,)? T: Send + 'static> $guard<$($lt,)? T> {
            /// Takes the object out of the pool for good: it will not be returned.
            ///
            /// ```
            /// let pool = poolside_bufpool::Pool::new(Vec::<u8>::new);
            /// let mut guard = pool.get();
            /// guard.push(7);
            /// let owned: Vec<u8> = guard.detach();
            /// assert_eq!(owned, [7]);
            /// assert_eq!(pool.stats().returns, 0);
            /// ```
            pub fn detach(mut self) -> T {
                CachePadded::into_inner(*self.object.take().expect("the object is present until drop or detach"))
            }
        }

        impl<$($lt,)? T: Send + 'static> Deref for $guard<$($lt,)? T> {
            type Target = T;
            #[inline]
            fn deref(&self) -> &T {
                self.object.as_deref().expect("the object is present until drop or detach")
            }
        }

        impl<$($lt,)? T: Send + 'static> DerefMut for $guard<$($lt,)? T> {
            #[inline]
            fn deref_mut(&mut self) -> &mut T {
                self.object.as_deref_mut().expect("the object is present until drop or detach")
            }
        }

        impl<$($lt,)? T: Send + 'static> Drop for $guard<$($lt,)? T> {
            #[inline(always)]
            fn drop(&mut self) {
                if let Some(object) = self.object.take() {
                    self.pool.put(object);
                }
            }
        }

        impl<$($lt,)? T: Send + fmt::Debug + 'static> fmt::Debug for $guard<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($guard)).field(&**self).finish()
            }
        }
    };
}

guard_impls!(Pooled<'a>);
guard_impls!(OwnedPooled);
