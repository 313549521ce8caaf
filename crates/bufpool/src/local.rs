//! The per-thread fast path: static thread-local caches with a few slots, each keyed
//! by a pool id.
//!
//! Static `thread_local!` caches, not a per-instance `thread_local::ThreadLocal`: its
//! lookup on every get and put costs about as much as the allocation a pool saves, and
//! small buffers only beat the allocator with a per-thread path free of atomics.
//! Objects are kept boxed and type-erased (`Box<dyn Any + Send>`) in [`ANY`], so one
//! static cache serves pools of every type: moving a box in and out and checking its
//! type never allocates. Byte buffers, the hottest case, have their own typed cache,
//! [`BYTES`], so that their fast path has no type check (an indirect call).
//!
//! Byte buffers stay boxed in [`BYTES`] too: a pool's objects are boxed once, when
//! made, and the same box travels between the caches and the shared store.
//!
//! The caches have no drop glue (their slots are `ManuallyDrop`): a thread-local
//! without a destructor is a plain thread-local access, while one with a destructor
//! checks on every access whether it is still alive, a check the hot path must not
//! carry. A separate thread-local, [`EXIT`], whose destructor is
//! registered when a thread opens its first slot, empties the caches at thread exit
//! and closes them, so nothing cached leaks and nothing is cached after.
//!
//! Long on purpose: the two caches, their exit hook and the one `unsafe` block they
//! need stay in one file so the block's safety argument can be read beside all of
//! its callers.
#![allow(clippy::box_collection)]

use crate::stats::{CounterBlock, Event};
use crate::store::{Boxed, drop_object};
use crossbeam_utils::CachePadded;
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::LocalKey;

/// How many pools have been dropped, ever. A thread cache remembers the count it last
/// saw; at its next operation a cache that sees a larger one first frees the slots of
/// pools that are gone, so a dropped pool's objects do not outlive its last handle in
/// a long-lived thread that never opens another slot.
static DROPPED_POOLS: AtomicU64 = AtomicU64::new(0);

/// Called when a pool's last handle is gone (after its strong count reached zero), so
/// every thread frees that pool's cached objects at its next pool operation.
pub(crate) fn pool_dropped() {
    DROPPED_POOLS.fetch_add(1, Ordering::Release);
}

/// Pools cached per thread at once; a thread using more pools at the same time sends
/// the extra ones through their shared stores.
const SLOTS: usize = 8;

/// What a pool offers its thread caches: somewhere to put objects when a thread exits
/// or a slot is reclaimed, and somewhere to fold the thread's counters.
pub(crate) trait Sink: Send + Sync {
    /// Takes the objects of a departing thread (keeping or dropping them), type-erased
    /// whichever cache held them.
    fn adopt(&self, objects: Vec<Erased>);
    /// Folds a departing thread's counters into the pool's totals.
    fn retire(&self, counters: &Arc<CounterBlock>);
}

/// One pool's cache on this thread.
pub(crate) struct Slot<O: 'static> {
    pool_id: u64,
    /// The top of this thread's LIFO stack of objects (the most recently returned,
    /// warmest in cache), held in the slot itself: a thread that borrows and returns
    /// one object at a time never touches `below`.
    top: Option<O>,
    /// The rest of the stack, at most `capacity - 1` objects.
    below: Vec<O>,
    capacity: usize,
    owner: Weak<dyn Sink>,
    counters: Arc<CounterBlock>,
}

impl<O: Cached> Slot<O> {
    /// Pops the top of the stack.
    #[inline(always)]
    fn pop(&mut self) -> Option<O> {
        match self.top.take() {
            Some(object) => Some(object),
            None => self.below.pop(),
        }
    }

    /// Pushes `object` on the stack, or hands it back when the stack is full.
    #[inline(always)]
    fn push(&mut self, object: O) -> Result<(), O> {
        if self.top.is_none() {
            // Then `below` holds at most `capacity - 1`: there is room on top.
            self.top = Some(object);
            Ok(())
        } else {
            self.push_below_top(object)
        }
    }

    /// Pushes `object` when the top is taken: the old top moves below it. Out of line:
    /// a thread holding one object at a time never gets here, and the guards' drop
    /// code stays small enough to inline.
    #[inline(never)]
    fn push_below_top(&mut self, object: O) -> Result<(), O> {
        match self.top.take() {
            None => self.top = Some(object),
            Some(top) if self.below.len() + 1 < self.capacity => {
                self.below.push(top);
                self.top = Some(object);
            }
            Some(top) => {
                self.top = Some(top);
                return Err(object);
            }
        }
        Ok(())
    }

    /// Empties the stack.
    fn take_all(&mut self) -> Vec<O> {
        let mut objects: Vec<O> = self.below.drain(..).collect();
        objects.extend(self.top.take());
        objects
    }

    /// Hands everything back to the owning pool, if it still exists, else drops it.
    /// Never panics: the pool guards its user code, and drops here are guarded too.
    fn release(&mut self) {
        let objects = self.take_all();
        match self.owner.upgrade() {
            Some(owner) => {
                owner.adopt(objects.into_iter().map(Cached::erase).collect());
                owner.retire(&self.counters);
            }
            None => objects.into_iter().for_each(drop_object),
        }
    }
}

/// What a pool needs to open a slot on this thread.
pub(crate) struct SlotInit {
    pub(crate) capacity: usize,
    pub(crate) owner: Weak<dyn Sink>,
    pub(crate) counters: Arc<CounterBlock>,
}

/// One thread's slots for one kind of object.
pub(crate) struct LocalCache<O: 'static> {
    /// Set once [`EXIT`] has emptied this cache at thread exit: no slot opens after.
    closed: bool,
    /// The value of [`DROPPED_POOLS`] when this cache last freed the slots of dropped
    /// pools.
    seen: u64,
    /// The slot used last comes first, checked before any search: a thread usually
    /// works with one pool (one size class) for many operations in a row, and a fixed
    /// place is one load, where an index of the last slot would be two in a row.
    /// Emptied by [`EXIT`], never dropped (see the module documentation).
    slots: ManuallyDrop<[Option<Slot<O>>; SLOTS]>,
}

/// A static cache.
type CacheKey<O> = LocalKey<RefCell<LocalCache<O>>>;

/// A byte buffer as the typed cache holds it.
pub(crate) type Bytes = Boxed<Vec<u8>>;
/// Any other object, as the type-erased cache holds it.
pub(crate) type Erased = Box<dyn Any + Send>;

/// The kinds of object with a static thread cache of their own.
///
/// The functions below find the cache through the type rather than a `&LocalKey`
/// argument: with the static known where `LocalKey::with` is compiled, the access
/// inlines to a few instructions instead of an indirect call to the key's accessor.
pub(crate) trait Cached: Sized + 'static {
    /// This kind's cache.
    fn key() -> &'static CacheKey<Self>;
    /// The object type-erased (a conversion of the box, no allocation).
    fn erase(self) -> Erased;
}

impl Cached for Bytes {
    #[inline(always)]
    fn key() -> &'static CacheKey<Self> {
        &BYTES
    }

    fn erase(self) -> Erased {
        self
    }
}

impl Cached for Erased {
    #[inline(always)]
    fn key() -> &'static CacheKey<Self> {
        &ANY
    }

    fn erase(self) -> Erased {
        self
    }
}

/// A pool's thread cache for objects of type `T`: the typed byte-buffer cache for
/// `Vec<u8>`, the type-erased one for any other type. The one place that chooses; the
/// choice is a constant for each `T`, so each pool's code keeps only its own branch.
pub(crate) struct Cache<T>(PhantomData<fn() -> T>);

/// Whether `T` is a byte buffer, which has its own typed thread cache ([`BYTES`]).
#[inline(always)]
pub(crate) fn is_bytes<T: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<Vec<u8>>()
}

/// Moves a box from one static type to another that is the same type. Both types are
/// known where this is inlined, so the type check folds away: no call, no allocation.
#[inline(always)]
fn same_type<A: Send + 'static, B: 'static>(object: Box<A>) -> Box<B> {
    let erased: Box<dyn Any + Send> = object;
    erased.downcast::<B>().unwrap_or_else(|_| unreachable!("only called when A is B"))
}

/// Recovers a `T` from a thread cache slot, which only ever holds its pool's `T`s.
#[inline]
fn unerase<T: 'static>(object: Erased) -> Boxed<T> {
    object
        .downcast::<CachePadded<T>>()
        .unwrap_or_else(|_| unreachable!("a slot holds its own pool's type"))
}

impl<T: Send + 'static> Cache<T> {
    /// Takes the most recently returned object from this thread's slot for `pool_id`,
    /// counting a hit. `None` when there is no slot or it is empty.
    #[inline(always)]
    pub(crate) fn pop(pool_id: u64) -> Option<Boxed<T>> {
        if is_bytes::<T>() {
            pop::<Bytes>(pool_id).map(same_type::<CachePadded<Vec<u8>>, CachePadded<T>>)
        } else {
            pop::<Erased>(pool_id).map(unerase::<T>)
        }
    }

    /// Keeps `object` in this thread's slot for `pool_id`, counting a return. Hands it
    /// back when there is no slot or the slot is full.
    #[inline(always)]
    pub(crate) fn push(pool_id: u64, object: Boxed<T>) -> Result<(), Boxed<T>> {
        if is_bytes::<T>() {
            push::<Bytes>(pool_id, same_type::<CachePadded<T>, _>(object))
                .map_err(same_type::<CachePadded<Vec<u8>>, CachePadded<T>>)
        } else {
            let erased: Erased = object;
            push::<Erased>(pool_id, erased).map_err(unerase::<T>)
        }
    }

    /// Opens this thread's slot for `pool_id` and keeps `object` there; hands it back
    /// when no slot opens (one exists and is full, none is free, the thread is exiting).
    pub(crate) fn open_and_push(
        pool_id: u64,
        object: Boxed<T>,
        init: impl FnOnce() -> SlotInit,
    ) -> Result<(), Boxed<T>> {
        fn open_push<O: Cached>(
            id: u64,
            object: O,
            init: impl FnOnce() -> SlotInit,
        ) -> Result<(), O> {
            if open::<O>(id, init) { push::<O>(id, object) } else { Err(object) }
        }
        if is_bytes::<T>() {
            open_push::<Bytes>(pool_id, same_type::<CachePadded<T>, _>(object), init)
                .map_err(same_type::<CachePadded<Vec<u8>>, CachePadded<T>>)
        } else {
            let erased: Erased = object;
            open_push::<Erased>(pool_id, erased, init).map_err(unerase::<T>)
        }
    }

    /// Counts `event` in this thread's block for `pool_id`; `false` when there is none.
    pub(crate) fn count(pool_id: u64, event: Event) -> bool {
        if is_bytes::<T>() {
            count::<Bytes>(pool_id, event)
        } else {
            count::<Erased>(pool_id, event)
        }
    }

    /// Empties this thread's slot for `pool_id`, returning what it held.
    pub(crate) fn take_all(pool_id: u64) -> Vec<Boxed<T>> {
        if is_bytes::<T>() {
            take_all::<Bytes>(pool_id)
                .into_iter()
                .map(same_type::<CachePadded<Vec<u8>>, CachePadded<T>>)
                .collect()
        } else {
            take_all::<Erased>(pool_id).into_iter().map(unerase::<T>).collect()
        }
    }
}

impl<O> LocalCache<O> {
    const fn new() -> Self {
        LocalCache { closed: false, seen: 0, slots: ManuallyDrop::new([const { None }; SLOTS]) }
    }

    /// The slot for `pool_id`: one comparison when it is the slot used last.
    #[inline(always)]
    fn slot(&mut self, pool_id: u64) -> Option<&mut Slot<O>> {
        if self.slots[0].as_ref().is_none_or(|s| s.pool_id != pool_id) {
            self.promote(pool_id)?;
        }
        self.slots[0].as_mut()
    }

    /// Moves the slot for `pool_id`, if there is one, to the front.
    #[inline(never)]
    fn promote(&mut self, pool_id: u64) -> Option<()> {
        let index =
            self.slots.iter().position(|s| s.as_ref().is_some_and(|s| s.pool_id == pool_id))?;
        self.slots.swap(0, index);
        Some(())
    }
}

/// Runs `f` with this thread's cache of kind `O`.
///
/// `LocalKey::with` is not inlined into the pool's fast path when `f` does real work:
/// the cache would be reached through an out-of-line call to the key's accessor on
/// every get and return. With `f` reduced to taking the address, it inlines to one
/// thread-pointer-relative address computation. That takes the crate's one `unsafe`
/// block. `LocalKey::with_borrow_mut` would need none, but it is `with` around a
/// closure that does the work (the form that stays out of line), and it panics where
/// the cache is already borrowed, where the pool must fall back to its shared store.
#[inline(always)]
#[allow(unsafe_code)]
fn with_cache<O: Cached, R>(f: impl FnOnce(&RefCell<LocalCache<O>>) -> R) -> R {
    let cache: *const RefCell<LocalCache<O>> = O::key().with(std::ptr::from_ref);
    // SAFETY: the pointer is to this thread's cache, a `const`-initialised thread-local
    // without drop glue (its slots are `ManuallyDrop`), so its storage is never torn
    // down while this thread runs: it is valid for the whole call of `f`, on this
    // thread. `f` cannot keep the reference (its lifetime is local to the call), and
    // `RefCell` still checks every borrow.
    f(unsafe { &*cache })
}

/// Empties a cache for good at thread exit.
fn close<O: Cached>() {
    // Taken out first and released after the borrow ends: releasing drops objects,
    // whose own destructors may use the caches again.
    let slots: Vec<Slot<O>> = with_cache(|cache| {
        // Nothing borrows the cache while a thread-local destructor runs.
        let Ok(mut cache) = cache.try_borrow_mut() else { return Vec::new() };
        cache.closed = true;
        cache.slots.iter_mut().filter_map(Option::take).collect()
    });
    for mut slot in slots {
        slot.release();
    }
}

/// Empties this thread's caches when the thread exits.
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Thread exit: nothing cached here may leak, and nothing here may panic.
        close::<Bytes>();
        close::<Erased>();
    }
}

thread_local! {
    /// Registered when this thread opens its first slot.
    static EXIT: ExitGuard = const { ExitGuard };

    /// Objects of every type, boxed and type-erased.
    static ANY: RefCell<LocalCache<Erased>> =
        const { RefCell::new(LocalCache::new()) };
    /// Byte buffers, typed.
    static BYTES: RefCell<LocalCache<Bytes>> =
        const { RefCell::new(LocalCache::new()) };
}

/// Takes the most recently returned object from this thread's slot for `pool_id`,
/// counting a hit. `None` when there is no slot or it is empty.
#[inline(always)]
fn pop<O: Cached>(pool_id: u64) -> Option<O> {
    // The work is in a named `inline(always)` function rather than in the closure:
    // the fast path must inline whole into the caller, whatever the inliner decides
    // for closures.
    with_cache(
        #[inline(always)]
        |cache| pop_from(cache, pool_id),
    )
}

#[inline(always)]
fn pop_from<O: Cached>(cell: &RefCell<LocalCache<O>>, pool_id: u64) -> Option<O> {
    let mut cache = cell.try_borrow_mut().ok()?;
    if cache.seen != DROPPED_POOLS.load(Ordering::Acquire) {
        // Once after a pool anywhere was dropped: this operation takes the slow path,
        // which looks in this thread's cache again before it counts a miss.
        drop(cache);
        free_dropped_pools();
        return None;
    }
    let slot = cache.slot(pool_id)?;
    let object = slot.pop()?;
    slot.counters.bump_owned(Event::Hit);
    Some(object)
}

/// Keeps `object` in this thread's slot for `pool_id`, counting a return. Hands it
/// back when there is no slot (see [`open`]) or the slot is full.
#[inline(always)]
fn push<O: Cached>(pool_id: u64, object: O) -> Result<(), O> {
    with_cache(
        #[inline(always)]
        |cache| push_into(cache, pool_id, object),
    )
}

#[inline(always)]
fn push_into<O: Cached>(cell: &RefCell<LocalCache<O>>, pool_id: u64, object: O) -> Result<(), O> {
    let Ok(mut cache) = cell.try_borrow_mut() else { return Err(object) };
    let Some(slot) = cache.slot(pool_id) else { return Err(object) };
    slot.push(object)?;
    slot.counters.bump_owned(Event::Return);
    // Checked once the object is in place: checked first, the object and the slot
    // would stay live across the check on the return path, the guards' drop code.
    if cache.seen != DROPPED_POOLS.load(Ordering::Acquire) {
        drop(cache);
        free_dropped_pools();
    }
    Ok(())
}

/// Frees the slots of dropped pools in both of this thread's caches, and records the
/// count of dropped pools they have now seen.
#[cold]
#[inline(never)]
fn free_dropped_pools() {
    free_dropped::<Bytes>();
    free_dropped::<Erased>();
}

fn free_dropped<O: Cached>() {
    // Read before looking at the slots: a pool dropped after this is seen next time.
    let dropped = DROPPED_POOLS.load(Ordering::Acquire);
    // Taken out first and released after the borrow ends: releasing drops objects,
    // whose own destructors may use the caches again.
    let stale: Vec<Slot<O>> = with_cache(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return Vec::new() };
        cache.seen = dropped;
        cache
            .slots
            .iter_mut()
            .filter(|s| s.as_ref().is_some_and(|s| s.owner.strong_count() == 0))
            .filter_map(Option::take)
            .collect()
    });
    for mut slot in stale {
        slot.release();
    }
}

/// Opens a slot for `pool_id` on this thread, in a free slot or one whose pool is
/// gone. Returns `false` when the pool already has a slot here, none is free, or the
/// thread is exiting.
#[cold]
fn open<O: Cached>(pool_id: u64, init: impl FnOnce() -> SlotInit) -> bool {
    // Registers the destructor that empties the caches; fails once it has run.
    if EXIT.try_with(|_| ()).is_err() {
        return false;
    }
    let stale = with_cache::<O, _>(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return Err(()) };
        if cache.closed || cache.promote(pool_id).is_some() {
            return Err(());
        }
        let free = cache
            .slots
            .iter()
            .position(|s| s.as_ref().is_none_or(|s| s.owner.strong_count() == 0))
            .ok_or(())?;
        let init = init();
        let stale = cache.slots[free].replace(Slot {
            pool_id,
            top: None,
            below: Vec::with_capacity(init.capacity.saturating_sub(1)),
            capacity: init.capacity,
            owner: init.owner,
            counters: init.counters,
        });
        cache.slots.swap(0, free);
        Ok(stale)
    });
    match stale {
        Ok(stale) => {
            // Released outside the borrow: its pool is gone, so this drops objects.
            if let Some(mut stale) = stale {
                stale.release();
            }
            true
        }
        Err(()) => false,
    }
}

/// Counts `event` in this thread's block for `pool_id`; `false` when there is none.
fn count<O: Cached>(pool_id: u64, event: Event) -> bool {
    with_cache::<O, _>(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return false };
        cache.slot(pool_id).map(|s| s.counters.bump_owned(event)).is_some()
    })
}

/// Empties this thread's slot for `pool_id`, returning what it held.
fn take_all<O: Cached>(pool_id: u64) -> Vec<O> {
    with_cache::<O, _>(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return Vec::new() };
        cache.slot(pool_id).map(Slot::take_all).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    //! The thread caches through the pools that use them; small enough for Miri, which
    //! checks the one `unsafe` block above.

    use super::SLOTS;
    use crate::{OwnedPooled, Pool};
    use std::cell::RefCell;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its drops, to prove nothing is leaked or dropped twice.
    struct Tracked(Arc<AtomicUsize>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn tracked_pool(made: &Arc<AtomicUsize>, dropped: &Arc<AtomicUsize>) -> Pool<Tracked> {
        let (made, dropped) = (made.clone(), dropped.clone());
        crate::PoolBuilder::with_reset(
            move || {
                made.fetch_add(1, Ordering::SeqCst);
                Tracked(dropped.clone())
            },
            |_| {},
        )
        .build()
        .unwrap()
    }

    #[test]
    fn a_thread_that_exits_hands_both_caches_to_their_pools() {
        let bytes: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(16));
        let strings: Pool<String> = Pool::new(String::new);
        let (b, s) = (bytes.clone(), strings.clone());
        // Joined, not scoped: a scope may end before the thread's destructors run.
        std::thread::spawn(move || {
            let held: Vec<_> = (0..3).map(|_| (b.get(), s.get())).collect();
            drop(held); // cached by this thread
            assert_eq!((b.shared_len(), s.shared_len()), (0, 0));
        })
        .join()
        .unwrap();
        assert_eq!((bytes.shared_len(), strings.shared_len()), (3, 3));
    }

    #[test]
    fn the_most_recently_returned_object_is_handed_out_first() {
        let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(16));
        let (a, b) = (pool.get(), pool.get());
        let (a_ptr, b_ptr) = (a.as_ptr(), b.as_ptr());
        drop(a);
        drop(b);
        let (first, second) = (pool.get(), pool.get());
        assert_eq!((first.as_ptr(), second.as_ptr()), (b_ptr, a_ptr));
        assert_eq!(pool.stats().misses, 2);
    }

    #[test]
    fn pools_beyond_the_slots_use_their_shared_stores_and_reclaim_stale_slots() {
        let mut pools: Vec<Pool<Vec<u8>>> = (0..SLOTS + 2).map(|_| Pool::new(Vec::new)).collect();
        for pool in &pools {
            drop(pool.get());
        }
        let shared: Vec<usize> = pools.iter().map(Pool::shared_len).collect();
        assert_eq!(shared[..SLOTS], [0; SLOTS], "the first pools got a slot each");
        assert_eq!(shared[SLOTS..], [1, 1], "no slot left: straight to the shared store");
        pools.remove(0); // its slot is stale now
        let late = pools.last().unwrap();
        drop(late.get());
        assert_eq!(late.shared_len(), 0, "took the stale slot; its object was cached");
    }

    #[test]
    fn a_pool_dropped_on_another_thread_is_swept_at_this_threads_next_operation() {
        let (made, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let pool = tracked_pool(&made, &dropped);
        drop((pool.get(), pool.get())); // both cached by this thread
        let other: Pool<Vec<u8>> = Pool::new(Vec::new);
        std::thread::spawn(move || drop(pool)).join().unwrap(); // the last handle
        assert_eq!(dropped.load(Ordering::SeqCst), 0, "still in this thread's cache");
        drop(other.get()); // any operation, on any pool, of either cache kind
        assert_eq!(dropped.load(Ordering::SeqCst), 2, "freed by this thread's next operation");
    }

    thread_local! {
        static HELD: RefCell<Option<OwnedPooled<Tracked>>> = const { RefCell::new(None) };
    }

    /// A guard that a thread-local destructor drops at thread exit, before or after
    /// the caches are emptied: the object reaches the shared store either way.
    fn exit_with_a_guard_in_a_thread_local(hold_before_first_slot: bool) {
        let (made, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let pool = tracked_pool(&made, &dropped);
        let in_thread = pool.clone();
        std::thread::spawn(move || {
            let hold = || HELD.with(|h| *h.borrow_mut() = Some(in_thread.get_owned()));
            if hold_before_first_slot {
                hold();
            }
            drop(in_thread.get()); // opens this thread's slot, registering the exit guard
            if !hold_before_first_slot {
                hold();
            }
        })
        .join()
        .unwrap();
        // Held first, the guard forces a second object; held last, it reuses the first.
        let made = made.load(Ordering::SeqCst);
        assert_eq!(made, if hold_before_first_slot { 2 } else { 1 });
        assert_eq!(pool.shared_len(), made, "every object outlived the thread, in the pool");
        assert_eq!(pool.stats().returns, 2);
        drop(pool);
        assert_eq!(dropped.load(Ordering::SeqCst), made, "each object dropped exactly once");
    }

    #[test]
    fn a_guard_held_in_a_thread_local_registered_first_is_not_lost() {
        exit_with_a_guard_in_a_thread_local(true);
    }

    #[test]
    fn a_guard_held_in_a_thread_local_registered_last_is_not_lost() {
        exit_with_a_guard_in_a_thread_local(false);
    }
}
