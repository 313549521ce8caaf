//! The per-thread fast path: static thread-local caches with a few slots, each keyed
//! by a pool id.
//!
//! A per-instance `thread_local::ThreadLocal` costs more per access than `malloc`; a
//! static `thread_local!` is a few nanoseconds. Objects are kept boxed and type-erased
//! (`Box<dyn Any + Send>`) in [`ANY`], so one static cache serves pools of every type:
//! moving a box in and out and checking its type never allocates. Byte buffers, the
//! hottest case, have their own typed cache, [`BYTES`]: checking the type of an erased
//! object is an indirect call that measured as a fifth of a pooled 256-byte fill.
//!
//! Byte buffers stay boxed in [`BYTES`] too: a pool's objects are boxed once, when
//! made, and the same box travels between the caches and the shared store.
#![allow(clippy::box_collection)]

use crate::stats::{CounterBlock, Event};
use crate::store::Boxed;
use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::thread::LocalKey;

/// Pools cached per thread at once; a thread using more pools at the same time sends
/// the extra ones through their shared stores.
const SLOTS: usize = 8;

/// What a pool offers its thread caches: somewhere to put objects when a thread exits
/// or a slot is reclaimed, and somewhere to fold the thread's counters.
pub(crate) trait Sink<O>: Send + Sync {
    /// Takes the objects of a departing thread (keeping or dropping them).
    fn adopt(&self, objects: Vec<O>);
    /// Folds a departing thread's counters into the pool's totals.
    fn retire(&self, counters: &Arc<CounterBlock>);
}

/// One pool's cache on this thread.
pub(crate) struct Slot<O: 'static> {
    pool_id: u64,
    /// LIFO: the most recently returned object is the warmest in cache.
    objects: Vec<O>,
    capacity: usize,
    owner: Weak<dyn Sink<O>>,
    counters: Arc<CounterBlock>,
}

impl<O> Slot<O> {
    /// Hands everything back to the owning pool, if it still exists.
    fn release(&mut self) {
        let objects = std::mem::take(&mut self.objects);
        match self.owner.upgrade() {
            Some(owner) => {
                owner.adopt(objects);
                owner.retire(&self.counters);
            }
            None => drop(objects),
        }
    }
}

/// What a pool needs to open a slot on this thread.
pub(crate) struct SlotInit<O: 'static> {
    pub(crate) capacity: usize,
    pub(crate) owner: Weak<dyn Sink<O>>,
    pub(crate) counters: Arc<CounterBlock>,
}

/// One thread's slots for one kind of object.
pub(crate) struct LocalCache<O: 'static> {
    /// The slot used last, checked before any search: a thread usually works with one
    /// pool (one size class) for many operations in a row.
    recent: usize,
    slots: [Option<Slot<O>>; SLOTS],
}

/// A static cache, as the functions below take it.
pub(crate) type CacheKey<O> = LocalKey<RefCell<LocalCache<O>>>;

impl<O> LocalCache<O> {
    const fn new() -> Self {
        LocalCache { recent: 0, slots: [const { None }; SLOTS] }
    }

    /// The slot for `pool_id`: one comparison when it is the slot used last.
    #[inline]
    fn slot(&mut self, pool_id: u64) -> Option<&mut Slot<O>> {
        // `SLOTS` is a power of two: the mask proves the index in bounds, no check.
        let recent = self.recent % SLOTS;
        let index = if self.slots[recent].as_ref().is_some_and(|s| s.pool_id == pool_id) {
            recent
        } else {
            self.search(pool_id)?
        };
        self.slots[index].as_mut()
    }

    #[inline(never)]
    fn search(&mut self, pool_id: u64) -> Option<usize> {
        let index =
            self.slots.iter().position(|s| s.as_ref().is_some_and(|s| s.pool_id == pool_id))?;
        self.recent = index;
        Some(index)
    }
}

impl<O> Drop for LocalCache<O> {
    fn drop(&mut self) {
        // Thread exit: nothing cached here may leak, and nothing here may panic.
        for slot in self.slots.iter_mut().filter_map(Option::take) {
            let mut slot = slot;
            slot.release();
        }
    }
}

thread_local! {
    /// Objects of every type, boxed and type-erased.
    pub(crate) static ANY: RefCell<LocalCache<Box<dyn Any + Send>>> =
        const { RefCell::new(LocalCache::new()) };
    /// Byte buffers, typed.
    pub(crate) static BYTES: RefCell<LocalCache<Boxed<Vec<u8>>>> =
        const { RefCell::new(LocalCache::new()) };
}

/// Takes the most recently returned object from this thread's slot for `pool_id`,
/// counting a hit. `None` when there is no slot, it is empty, or the thread is being
/// torn down.
#[inline]
pub(crate) fn pop<O>(cache: &'static CacheKey<O>, pool_id: u64) -> Option<O> {
    cache
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let slot = cache.slot(pool_id)?;
            let object = slot.objects.pop()?;
            slot.counters.bump_owned(Event::Hit);
            Some(object)
        })
        .ok()
        .flatten()
}

/// Keeps `object` in this thread's slot for `pool_id`, counting a return. Hands it
/// back when there is no slot (see [`open`]), the slot is full, or the thread is being
/// torn down.
#[inline]
pub(crate) fn push<O>(cache: &'static CacheKey<O>, pool_id: u64, object: O) -> Result<(), O> {
    // Held outside the closure: if the thread-local is gone, the closure never runs
    // and the object must come back to the caller rather than be dropped with it.
    let mut held = Some(object);
    let _ = cache.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return };
        let Some(slot) = cache.slot(pool_id) else { return };
        if slot.objects.len() < slot.capacity {
            if let Some(object) = held.take() {
                slot.objects.push(object);
                slot.counters.bump_owned(Event::Return);
            }
        }
    });
    match held {
        None => Ok(()),
        Some(object) => Err(object),
    }
}

/// Opens a slot for `pool_id` on this thread, in a free slot or one whose pool is
/// gone. Returns `false` when the pool already has a slot here, none is free, or the
/// thread is being torn down.
#[cold]
pub(crate) fn open<O>(
    cache: &'static CacheKey<O>,
    pool_id: u64,
    init: impl FnOnce() -> SlotInit<O>,
) -> bool {
    cache
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else { return false };
            if cache.search(pool_id).is_some() {
                return false;
            }
            let free = cache
                .slots
                .iter()
                .position(|s| s.as_ref().is_none_or(|s| s.owner.strong_count() == 0));
            let Some(index) = free else { return false };
            if let Some(mut stale) = cache.slots[index].take() {
                stale.release();
            }
            let init = init();
            cache.slots[index] = Some(Slot {
                pool_id,
                objects: Vec::with_capacity(init.capacity),
                capacity: init.capacity,
                owner: init.owner,
                counters: init.counters,
            });
            cache.recent = index;
            true
        })
        .unwrap_or(false)
}

/// Counts `event` in this thread's block for `pool_id`; `false` when there is none.
pub(crate) fn count<O>(cache: &'static CacheKey<O>, pool_id: u64, event: Event) -> bool {
    cache
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else { return false };
            cache.slot(pool_id).map(|s| s.counters.bump_owned(event)).is_some()
        })
        .unwrap_or(false)
}

/// Empties this thread's slot for `pool_id`, returning what it held.
pub(crate) fn take_all<O>(cache: &'static CacheKey<O>, pool_id: u64) -> Vec<O> {
    cache
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else { return Vec::new() };
            cache.slot(pool_id).map(|s| s.objects.drain(..).collect()).unwrap_or_default()
        })
        .unwrap_or_default()
}
