//! Result slots kept for reuse, so that `spawn` allocates nothing per job once warm.
//!
//! A slot is freed by whichever side lets go of it last: the thread that joins or drops
//! the [`JobHandle`](crate::JobHandle), or — when the handle was dropped before the job
//! finished, as a detached `spawn_async` does — the worker that completed it. Either way
//! it comes here instead of going back to the allocator.
//!
//! Each thread keeps its own list of spares per result type, used without any
//! synchronisation. Slots freed on workers must reach the submitting thread, so a list
//! that fills up is handed over whole, as one batch, to the exchange of its result type
//! (one per type, process-wide), and a thread whose list is empty takes a full batch
//! from there, leaving its empty list behind for the next hand-over. Lists always have
//! [`BATCH`] capacity and are swapped, never reallocated: in the steady state neither
//! side allocates, and the exchange's lock is taken once per [`BATCH`] slots.
//!
//! Memory is bounded: a thread keeps at most [`BATCH`] spares per type, an exchange at
//! most [`MAX_BATCHES`] batches; beyond that a slot is freed.

use parking_lot::Mutex;
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::sync::Arc;

/// A spare slot, its type erased (a `ResultSlot<R>` for the list's `R`).
pub(crate) type Spare = Arc<dyn Any + Send + Sync>;

/// Spares per thread and type, and the size of a batch handed between threads.
pub(crate) const BATCH: usize = 32;

/// Full batches an exchange keeps at most.
pub(crate) const MAX_BATCHES: usize = 64;

/// Where threads hand each other batches of one result type's spares.
struct Exchange {
    batches: Mutex<Batches>,
}

impl Default for Exchange {
    fn default() -> Self {
        // Both lists at their bound from the start: a trade never grows them.
        let batches = Batches {
            full: Vec::with_capacity(MAX_BATCHES),
            empty: Vec::with_capacity(MAX_BATCHES),
        };
        Exchange { batches: Mutex::new(batches) }
    }
}

struct Batches {
    /// Lists of [`BATCH`] spares.
    full: Vec<Vec<Spare>>,
    /// Empty lists of [`BATCH`] capacity, left by threads that took a full one.
    empty: Vec<Vec<Spare>>,
}

impl Exchange {
    /// The exchange of result type `id`, created on first use. Looked up once per
    /// thread and type: each thread's list keeps it.
    fn of(id: TypeId) -> Arc<Exchange> {
        static ALL: std::sync::Mutex<Vec<(TypeId, Arc<Exchange>)>> =
            std::sync::Mutex::new(Vec::new());
        // Nothing panics under this lock, so it is never poisoned; tolerate it anyway.
        let mut all = ALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, exchange)) = all.iter().find(|(t, _)| *t == id) {
            return exchange.clone();
        }
        let exchange = Arc::new(Exchange::default());
        all.push((id, exchange.clone()));
        exchange
    }

    /// Trades an empty list for a full batch, if there is one.
    fn swap_for_full(&self, list: &mut Vec<Spare>) -> bool {
        let mut batches = self.batches.lock();
        let Some(full) = batches.full.pop() else { return false };
        let empty = std::mem::replace(list, full);
        // As many empty lists as full ones at most: an extra one is freed.
        if batches.empty.len() < MAX_BATCHES {
            batches.empty.push(empty);
        }
        true
    }

    /// Trades a full list for an empty one; `false` (and nothing traded) when the
    /// exchange holds its maximum.
    fn swap_for_empty(&self, list: &mut Vec<Spare>) -> bool {
        let mut batches = self.batches.lock();
        if batches.full.len() >= MAX_BATCHES {
            return false;
        }
        let empty = batches.empty.pop().unwrap_or_else(|| Vec::with_capacity(BATCH));
        batches.full.push(std::mem::replace(list, empty));
        true
    }
}

/// One thread's spares of one result type.
struct Local {
    id: TypeId,
    spares: Vec<Spare>,
    exchange: Arc<Exchange>,
}

thread_local! {
    static LOCAL: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's list for type `id`; `None` while the thread's storage is
/// being torn down.
fn with_local<T>(id: TypeId, f: impl FnOnce(&mut Local) -> T) -> Option<T> {
    LOCAL
        .try_with(|lists| {
            let mut lists = lists.borrow_mut();
            let index = match lists.iter().position(|l| l.id == id) {
                Some(index) => index,
                None => {
                    lists.push(Local {
                        id,
                        spares: Vec::with_capacity(BATCH),
                        exchange: Exchange::of(id),
                    });
                    lists.len() - 1
                }
            };
            f(&mut lists[index])
        })
        .ok()
}

/// A spare of type `id`: this thread's own, else one of a batch from the exchange.
pub(crate) fn take(id: TypeId) -> Option<Spare> {
    with_local(id, |local| {
        if local.spares.is_empty() && !local.exchange.swap_for_full(&mut local.spares) {
            return None;
        }
        local.spares.pop()
    })
    .flatten()
}

/// Puts back a spare that [`take`] returned but that cannot be used yet, below the
/// others, so it is taken last; frees it if the list is full.
pub(crate) fn defer(id: TypeId, spare: Spare) {
    with_local(id, move |local| {
        if local.spares.len() < BATCH {
            local.spares.insert(0, spare);
        }
    });
}

/// Keeps `spare` (a reset slot of type `id`) for reuse; a full list goes to the
/// exchange first. Frees it when there is no room anywhere.
pub(crate) fn put(id: TypeId, spare: Spare) {
    with_local(id, move |local| {
        if local.spares.len() == BATCH && !local.exchange.swap_for_empty(&mut local.spares) {
            return;
        }
        local.spares.push(spare);
    });
}

#[cfg(test)]
mod tests {
    use super::{BATCH, Exchange, MAX_BATCHES, Spare, put, take};
    use std::any::TypeId;
    use std::sync::Arc;

    /// A result type of this test only, so other tests' slots do not mix in.
    struct Mine<const N: usize>;

    fn spare() -> Spare {
        Arc::new(0u64)
    }

    #[test]
    fn spares_freed_on_one_thread_are_taken_on_another_in_batches() {
        let id = TypeId::of::<Mine<1>>();
        let freed: Vec<usize> = std::thread::spawn(move || {
            let spares: Vec<Spare> = (0..3 * BATCH).map(|_| spare()).collect();
            let addresses = spares.iter().map(|s| Arc::as_ptr(s).cast::<()>() as usize).collect();
            spares.into_iter().for_each(|s| put(id, s));
            addresses
        })
        .join()
        .unwrap();
        // The thread's last partial list died with it; the two full batches before it
        // went to the exchange and are reused here.
        let mut taken = Vec::new();
        while let Some(s) = take(id) {
            taken.push(Arc::as_ptr(&s).cast::<()>() as usize);
        }
        assert_eq!(taken.len(), 2 * BATCH);
        assert!(taken.iter().all(|a| freed.contains(a)));
        // Other types' spares are kept apart.
        assert!(take(TypeId::of::<Mine<2>>()).is_none());
    }

    #[test]
    fn the_exchange_is_bounded_and_trades_lists_without_allocating_new_ones() {
        let exchange = Exchange::default();
        let mut list: Vec<Spare> = Vec::with_capacity(BATCH);
        for _ in 0..MAX_BATCHES {
            list.extend((0..BATCH).map(|_| spare()));
            assert!(exchange.swap_for_empty(&mut list));
            assert!(list.is_empty() && list.capacity() >= BATCH);
        }
        list.extend((0..BATCH).map(|_| spare()));
        assert!(!exchange.swap_for_empty(&mut list), "an exchange keeps at most MAX_BATCHES");
        assert_eq!(list.len(), BATCH);
        list.clear();
        assert!(exchange.swap_for_full(&mut list));
        assert_eq!(list.len(), BATCH);
        // The empty list left behind is the one handed out next.
        let left = exchange.batches.lock().empty.last().map(Vec::as_ptr);
        let mut full: Vec<Spare> = (0..BATCH).map(|_| spare()).collect();
        let _ = exchange.batches.lock().full.pop();
        assert!(exchange.swap_for_empty(&mut full));
        assert_eq!(Some(full.as_ptr()), left);
    }
}
