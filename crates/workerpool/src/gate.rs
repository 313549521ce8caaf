//! The admission gate: decides, race-free against a concurrent shutdown, whether a
//! submission may still enter the queue — without a shared lock on the submit path.
//!
//! Each submitting thread owns a slot with an `in_flight` flag. A submitter raises its
//! flag, issues a full fence and then reads `closed`; shutdown sets `closed`, issues a
//! full fence and then waits until every flag is down. This is Dekker's handshake: either
//! the submitter sees `closed` and backs off, or shutdown sees the flag and waits for the
//! enqueue to finish. So once [`Gate::close`] returns, no job can enter the queue any
//! more, and every job that entered before is in it. The submit path costs a
//! store to the thread's own cache line, one fence and a plain store to lower the
//! flag; the shared read-write lock it replaces cost two contended read-modify-writes.
//!
//! The fast path drops the fence: a submitter raises its flag and then takes its queue
//! permit with a release compare-and-swap on the permit word, which also holds a closed
//! bit (`Slots::close_permits`). Shutdown sets that bit with an acquire
//! read-modify-write before it looks at the flags. The two operations are ordered in
//! the word's modification order: if the take came first, the flag raised before it is
//! visible to shutdown (release/acquire), so shutdown waits for the enqueue; if the close
//! came first, the take sees the bit and fails. One compare-and-swap admits or refuses.
//! A permit obtained any other way (granted to a waiting submitter by another thread)
//! enters through the fenced [`Gate::enter`].
//! `tests/loom.rs` models this handshake.

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use thread_local::ThreadLocal;

/// One submitting thread's state, on its own cache line.
#[derive(Debug, Default)]
struct Slot {
    /// Raised while this thread may be putting a job into the queue.
    in_flight: AtomicBool,
    /// Jobs this thread got accepted (written by this thread only).
    accepted: AtomicU64,
}

type SharedSlot = Arc<CachePadded<Slot>>;

/// Admission control for the queue; see the module docs for the protocol.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: AtomicBool,
    /// The calling thread's slot, found without a lock.
    own_slot: ThreadLocal<SharedSlot>,
    /// Every slot ever handed out. Registration happens under this lock, so a slot
    /// registered after `close` walked the list belongs to a thread that will see
    /// `closed` (the lock orders the two).
    registry: Mutex<Vec<SharedSlot>>,
}

/// Permission to enqueue one job, held while the enqueue runs; dropping it lowers the
/// thread's flag.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    slot: &'a Slot,
}

impl Gate {
    /// The calling thread's slot, registered on first use.
    #[inline]
    fn own_slot(&self) -> &Slot {
        self.own_slot.get_or(|| {
            let slot = SharedSlot::default();
            self.registry.lock().push(slot.clone());
            slot
        })
    }

    /// Enters the gate, or `None` once the gate is closed.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        let slot = self.own_slot();
        // Store, full fence, load: the submitter's half of the handshake. (Fences rather
        // than SeqCst accesses: that is the form the C++ model and loom both guarantee.)
        slot.in_flight.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            slot.in_flight.store(false, Ordering::Release);
            return None;
        }
        Some(Pass { slot })
    }

    /// The fast path's first half (module docs): raises the calling thread's flag, with
    /// no fence and no look at `closed`. The pass admits a job only if the caller then
    /// takes a queue permit itself, by a successful `Slots::try_acquire`; when the take
    /// fails, the caller drops the pass unused.
    #[inline]
    pub(crate) fn raise(&self) -> Pass<'_> {
        let slot = self.own_slot();
        slot.in_flight.store(true, Ordering::Relaxed);
        Pass { slot }
    }

    /// Closes the gate and waits until no submitter is still inside. `close_permits`
    /// sets the closed bit of the queue's permit word (the fast path's half), between
    /// the fenced store of `closed` and the look at the flags. A submitter holds its pass
    /// for one non-blocking send, so this is short.
    pub(crate) fn close(&self, close_permits: impl FnOnce()) {
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        close_permits();
        for slot in self.registry.lock().iter() {
            // Acquire: seeing the flag lowered means seeing the enqueue it guarded.
            while slot.in_flight.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }
    }

    /// Whether [`close`](Self::close) has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Jobs accepted through the gate so far, summed over the submitting threads.
    pub(crate) fn accepted(&self) -> u64 {
        self.registry.lock().iter().map(|slot| slot.accepted.load(Ordering::Relaxed)).sum()
    }
}

impl Pass<'_> {
    /// Counts the job this pass lets in as accepted; call before the job enters the
    /// queue, so that no job can finish before it is counted.
    #[inline]
    pub(crate) fn count_accepted(&self) {
        // Single writer: a load and a store, no read-modify-write.
        let accepted = &self.slot.accepted;
        accepted.store(accepted.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

impl Drop for Pass<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: the enqueue happens-before shutdown sees the flag down.
        self.slot.in_flight.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;

    // Not under Miri: parking_lot's parking casts integers to pointers, which strict-provenance
    // Miri rejects; this test exercises no unsafe code of the crate.
    #[cfg(not(miri))]
    #[test]
    fn a_closed_gate_admits_nobody_and_counts_per_thread() {
        let gate = Gate::default();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..10 {
                        gate.enter().expect("open").count_accepted();
                    }
                });
            }
        });
        assert_eq!(gate.accepted(), 30);
        gate.close(|| {});
        assert!(gate.enter().is_none());
        assert_eq!(gate.accepted(), 30);
    }
}
