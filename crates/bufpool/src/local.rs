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

use crate::stats::CounterBlock;
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
    pub(crate) objects: Vec<O>,
    pub(crate) capacity: usize,
    owner: Weak<dyn Sink<O>>,
    pub(crate) counters: Arc<CounterBlock>,
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
    slots: [Option<Slot<O>>; SLOTS],
}

/// A static cache, as [`with_slot`] takes it.
pub(crate) type CacheKey<O> = LocalKey<RefCell<LocalCache<O>>>;

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
        const { RefCell::new(LocalCache { slots: [const { None }; SLOTS] }) };
    /// Byte buffers, typed.
    pub(crate) static BYTES: RefCell<LocalCache<Boxed<Vec<u8>>>> =
        const { RefCell::new(LocalCache { slots: [const { None }; SLOTS] }) };
}

/// Runs `f` with this thread's slot for `pool_id`. When there is none and `open` is
/// given, opens one in a free slot (or one whose pool is gone). `f` gets `None` when no
/// slot is available, including while the thread is being torn down.
#[inline]
pub(crate) fn with_slot<O, R>(
    cache: &'static CacheKey<O>,
    pool_id: u64,
    open: Option<&dyn Fn() -> SlotInit<O>>,
    f: impl FnOnce(Option<&mut Slot<O>>) -> R,
) -> R {
    let mut f = Some(f);
    let result = cache.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return (f.take().expect("called once"))(None);
        };
        let f = f.take().expect("called once");
        if let Some(index) =
            cache.slots.iter().position(|s| s.as_ref().is_some_and(|s| s.pool_id == pool_id))
        {
            return f(cache.slots[index].as_mut());
        }
        let Some(open) = open else { return f(None) };
        let free =
            cache.slots.iter().position(|s| s.as_ref().is_none_or(|s| s.owner.strong_count() == 0));
        match free {
            Some(index) => {
                if let Some(mut stale) = cache.slots[index].take() {
                    stale.release();
                }
                let init = open();
                cache.slots[index] = Some(Slot {
                    pool_id,
                    objects: Vec::with_capacity(init.capacity),
                    capacity: init.capacity,
                    owner: init.owner,
                    counters: init.counters,
                });
                f(cache.slots[index].as_mut())
            }
            None => f(None),
        }
    });
    match result {
        Ok(r) => r,
        // The thread-local is gone (thread exit in progress): no fast path.
        Err(_) => (f.take().expect("not yet called"))(None),
    }
}

/// Empties this thread's slot for `pool_id`, returning what it held.
pub(crate) fn take_all<O>(cache: &'static CacheKey<O>, pool_id: u64) -> Vec<O> {
    with_slot(cache, pool_id, None, |slot| {
        slot.map(|s| s.objects.drain(..).collect()).unwrap_or_default()
    })
}
