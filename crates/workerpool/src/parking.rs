//! Parking idle workers: which idle worker searches, which sleep, and who wakes whom.
//!
//! An idle worker is in one of three states:
//!
//! * **busy**: running a job, or about to look at the queue again;
//! * **searching**: polling the queue, with a short bounded spin between looks (at most
//!   `max_searching` workers, plus a worker just woken or one that saw a job as it
//!   went to sleep, which counts as searching until it settles);
//! * **asleep**: registered in the sleeper stack and parked on its own [`Parker`].
//!
//! Two counters, each on its own cache line, count the sleeping and the searching
//! workers. After enqueueing, a submitter issues a fence and loads `sleeping`, and, only
//! if somebody sleeps, `searching`: only when nobody searches and somebody sleeps does
//! it take the sleeper lock and unpark one worker, which starts out searching. So while
//! no worker sleeps a submission costs a fence and the load of a line nobody writes;
//! while one searches, a second load. A searcher that finds a job stops searching; if it
//! was the last searcher and jobs remain queued, it wakes the next sleeper itself. So
//! wake-ups chain and a burst ramps up to every worker, while a trickle is served by the
//! searchers alone.
//!
//! No wake-up is lost: a worker about to park first registers (counting itself asleep),
//! issues a fence and looks at the queue again; a submitter enqueues, issues a fence and
//! loads the counters. Of the two fences one comes first in their single total order, so
//! either the worker sees the job (and does not park) or the submitter sees the worker
//! asleep (and wakes one, unless a searcher is counted; that searcher in turn looks at
//! the queue after its own fence when it stops searching). `tests/loom.rs` explores
//! this, and fails when either fence is removed.
// Public only for the loom model (`--cfg loom`), which reaches it through
// `poolside_workerpool::loom_model`; everywhere else the crate is its only user.
#![cfg_attr(not(loom), allow(unreachable_pub))]

use crate::sync::{AtomicBool, AtomicUsize, IdlePoll, Mutex, Ordering, Parker, Unparker, fence};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::Arc;

/// Where workers take jobs from.
pub trait JobQueue {
    /// What the queue holds.
    type Job;

    /// Takes the oldest job, if any.
    fn try_pop(&self) -> Option<Self::Job>;

    /// Takes a job from the part of the queue this worker serves first (a sharded
    /// queue's own shard), if any: what a worker just back from a job polls, so busy
    /// workers do not all watch every part of the queue. Searchers use
    /// [`try_pop`](Self::try_pop), which looks everywhere.
    fn try_pop_own(&self) -> Option<Self::Job> {
        self.try_pop()
    }

    /// Whether no job is queued (a hint: it may change right after).
    fn is_empty(&self) -> bool;
}

/// A worker's own half of the protocol: its parker and whether it searches.
pub struct ParkingSpot {
    bed: Arc<CachePadded<Bed>>,
    parker: Parker,
    searching: bool,
}

impl fmt::Debug for ParkingSpot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParkingSpot").field("searching", &self.searching).finish()
    }
}

/// The shared half of one worker: how to wake it, and whether it is registered asleep.
struct Bed {
    /// Set and cleared under the sleeper lock; read by the worker to tell a real
    /// wake-up from a leftover token.
    asleep: AtomicBool,
    unparker: Unparker,
}

/// The parking protocol of one pool; see the module docs.
pub struct Parking {
    /// Workers registered asleep: loaded by every submission, written only when a
    /// worker falls asleep or is woken (under the sleeper lock).
    sleeping: CachePadded<AtomicUsize>,
    /// Workers searching, woken ones included: loaded by a submission while somebody
    /// sleeps; written whenever a worker starts or stops searching.
    searching: CachePadded<AtomicUsize>,
    /// Read on every look at the queue, written once: kept off the counters' lines.
    closing: CachePadded<AtomicBool>,
    /// Workers that must still exit because the pool shrank; read on every look.
    retiring: CachePadded<AtomicUsize>,
    max_searching: usize,
    /// Sleeping workers, most recent last: the most recently parked is woken first,
    /// its caches are the warmest.
    sleepers: Mutex<Vec<Arc<CachePadded<Bed>>>>,
}

impl fmt::Debug for Parking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parking")
            .field("max_searching", &self.max_searching)
            .field("searching", &self.searching.load(Ordering::Relaxed))
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .field("closing", &self.closing.load(Ordering::Relaxed))
            .finish()
    }
}

impl Parking {
    /// The protocol for `workers` workers of which at most `max_searching` search at a
    /// time, with each worker's own half.
    pub fn new(workers: usize, max_searching: usize) -> (Parking, Vec<ParkingSpot>) {
        let parking = Parking {
            sleeping: CachePadded::new(AtomicUsize::new(0)),
            searching: CachePadded::new(AtomicUsize::new(0)),
            closing: CachePadded::new(AtomicBool::new(false)),
            retiring: CachePadded::new(AtomicUsize::new(0)),
            max_searching,
            sleepers: Mutex::new(Vec::with_capacity(workers)),
        };
        let spots = (0..workers).map(|_| parking.spot()).collect();
        (parking, spots)
    }

    /// The half of a new worker (one added at runtime).
    pub fn spot(&self) -> ParkingSpot {
        let parker = Parker::default();
        let bed = Arc::new(CachePadded::new(Bed {
            asleep: AtomicBool::new(false),
            unparker: parker.unparker().clone(),
        }));
        ParkingSpot { bed, parker, searching: false }
    }

    /// The pool shrinks by `workers`: that many workers exit at their next look at the
    /// queue (after their current job); sleeping ones are woken to do so.
    pub fn retire(&self, workers: usize) {
        self.retiring.fetch_add(workers, Ordering::SeqCst);
        self.wake_all();
    }

    /// Takes back up to `workers` retirements that no worker has carried out yet;
    /// returns how many it took back.
    pub fn unretire(&self, workers: usize) -> usize {
        let mut retiring = self.retiring.load(Ordering::SeqCst);
        loop {
            let take = retiring.min(workers);
            if take == 0 {
                return 0;
            }
            match self.retiring.compare_exchange(
                retiring,
                retiring - take,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return take,
                Err(actual) => retiring = actual,
            }
        }
    }

    /// Claims one pending retirement for the calling worker.
    fn try_retire(&self) -> bool {
        let mut retiring = self.retiring.load(Ordering::Relaxed);
        while retiring > 0 {
            match self.retiring.compare_exchange_weak(
                retiring,
                retiring - 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => retiring = actual,
            }
        }
        false
    }

    /// Wakes every sleeping worker (as a searcher).
    fn wake_all(&self) {
        let mut sleepers = self.sleepers.lock();
        for bed in sleepers.drain(..) {
            self.wake_as_searcher();
            bed.asleep.store(false, Ordering::Release);
            bed.unparker.unpark();
        }
    }

    /// Submitter side: call after each job that entered the queue. Wakes a sleeping
    /// worker when nobody searches.
    #[inline]
    pub fn job_queued(&self) {
        // Pairs with the fence in `park`: the enqueue, then the look at who is idle.
        fence(Ordering::SeqCst);
        self.wake_if_nobody_searches();
    }

    #[inline]
    fn wake_if_nobody_searches(&self) {
        // `sleeping` first: it stays put while every worker is busy or searching.
        if self.sleeping.load(Ordering::Relaxed) > 0 && self.searching.load(Ordering::Relaxed) == 0
        {
            self.wake_one();
        }
    }

    /// Unparks the most recently parked worker as a searcher, unless a searcher has
    /// appeared meanwhile (it will find the job).
    #[cold]
    fn wake_one(&self) {
        let mut sleepers = self.sleepers.lock();
        // Under the lock the sleeping count is exact; the searching count may only
        // have grown, and a new searcher looks at the queue before it can park.
        if self.searching.load(Ordering::Relaxed) > 0 {
            return;
        }
        let Some(bed) = sleepers.pop() else { return };
        self.wake_as_searcher();
        bed.asleep.store(false, Ordering::Release);
        drop(sleepers);
        bed.unparker.unpark();
    }

    /// Moves one worker from the sleeping count to the searching one (searching first,
    /// so no submitter sees neither). Called under the sleeper lock.
    fn wake_as_searcher(&self) {
        self.searching.fetch_add(1, Ordering::SeqCst);
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
    }

    /// Shutdown side: from now on a worker finding the queue empty exits, and every
    /// sleeping worker is woken to do so. Call only once nothing can enter the queue.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Worker side: the next job, or `None` once the pool is closing and the queue is
    /// empty, or when this worker is to retire because the pool shrank. Polls while
    /// this worker may search, parks otherwise.
    pub fn next_job<Q: JobQueue>(&self, spot: &mut ParkingSpot, queue: &Q) -> Option<Q::Job> {
        loop {
            if self.retiring.load(Ordering::Relaxed) > 0 && self.try_retire() {
                // Leaving: a searcher hands the search on, as after finding a job.
                self.found_job(spot, queue);
                return None;
            }
            // Closing is read before the queue: once it is seen, every job that will
            // ever be queued already is.
            let closing = self.closing.load(Ordering::Acquire);
            if let Some(job) = queue.try_pop() {
                self.found_job(spot, queue);
                return Some(job);
            }
            if closing {
                self.stop_searching(spot);
                return None;
            }
            if !spot.searching {
                // Just back from a job: a streaming submitter is likely to queue the next
                // one soon. A few polls without a permit keep the shared `searching`
                // count (which every submit reads) still while jobs stream, instead of
                // bouncing its cache line between the submitter and the workers with a
                // permit per job.
                if let Some(job) = Self::poll_briefly(queue) {
                    return Some(job);
                }
                spot.searching = self.try_start_searching();
            }
            if spot.searching {
                let poll = IdlePoll::new();
                while !poll.is_completed() {
                    poll.snooze();
                    if let Some(job) = queue.try_pop() {
                        self.found_job(spot, queue);
                        return Some(job);
                    }
                }
            }
            self.park(spot, queue);
        }
    }

    /// Polls the worker's own part of the queue a few times, spinning briefly between
    /// looks (`IdlePoll`), with no shared write. Under loom one poll stands for it: it
    /// touches no protocol state, and the model's size stays where the protocol needs
    /// it.
    fn poll_briefly<Q: JobQueue>(queue: &Q) -> Option<Q::Job> {
        if cfg!(loom) {
            return queue.try_pop_own();
        }
        let poll = IdlePoll::new();
        while !poll.is_completed() {
            poll.snooze();
            if let Some(job) = queue.try_pop_own() {
                return Some(job);
            }
        }
        None
    }

    /// Takes a searching permit if fewer than `max_searching` workers search.
    fn try_start_searching(&self) -> bool {
        let mut searching = self.searching.load(Ordering::Relaxed);
        while searching < self.max_searching {
            match self.searching.compare_exchange_weak(
                searching,
                searching + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => searching = actual,
            }
        }
        false
    }

    /// Returns the permit; whether this worker was the last searcher.
    fn stop_searching(&self, spot: &mut ParkingSpot) -> bool {
        if !std::mem::take(&mut spot.searching) {
            return false;
        }
        self.searching.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// A job was found: a searcher stops searching, and the last one hands the search
    /// on to a sleeper when more jobs wait, so wake-ups chain under load.
    #[inline]
    fn found_job<Q: JobQueue>(&self, spot: &mut ParkingSpot, queue: &Q) {
        if self.stop_searching(spot) {
            // Pairs with `job_queued`'s fence: a submitter that saw this worker still
            // searching (and woke nobody) queued its job before this look.
            fence(Ordering::SeqCst);
            if !queue.is_empty() {
                self.wake_if_nobody_searches();
            }
        }
    }

    /// Registers as asleep, looks at the queue once more, and parks unless there is
    /// work or the pool is closing. Leaves `spot` searching when woken.
    fn park<Q: JobQueue>(&self, spot: &mut ParkingSpot, queue: &Q) {
        let bed = &spot.bed;
        {
            let mut sleepers = self.sleepers.lock();
            sleepers.push(bed.clone());
            bed.asleep.store(true, Ordering::Relaxed);
            self.sleeping.fetch_add(1, Ordering::SeqCst);
            if std::mem::take(&mut spot.searching) {
                self.searching.fetch_sub(1, Ordering::SeqCst);
            }
        }
        // Pairs with `job_queued`'s fence: the registration, then the look at the queue.
        fence(Ordering::SeqCst);
        if !queue.is_empty()
            || self.closing.load(Ordering::Relaxed)
            || self.retiring.load(Ordering::Relaxed) > 0
        {
            let mut sleepers = self.sleepers.lock();
            if bed.asleep.load(Ordering::Relaxed) {
                if let Some(at) = sleepers.iter().rposition(|b| Arc::ptr_eq(b, bed)) {
                    sleepers.remove(at);
                }
                bed.asleep.store(false, Ordering::Relaxed);
                // Back as a searcher, as if woken: the jobs seen here may be ones whose
                // submitters woke nobody because this worker was still counted
                // searching, so the job it finds must hand the search on to a sleeper
                // (`found_job`) when more wait. As a plain busy worker it would take one
                // job and leave the others queued beside sleeping workers.
                self.wake_as_searcher();
                spot.searching = true;
            } else {
                // A waker took this worker out already and counted it searching; its
                // token stays behind and makes one later `park` return early, which
                // the loop below absorbs.
                spot.searching = true;
            }
            return;
        }
        while bed.asleep.load(Ordering::Acquire) {
            spot.parker.park();
        }
        // Woken by `wake_one` or `close`, which counted this worker searching.
        spot.searching = true;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{JobQueue, Parking};
    use crossbeam_channel::{Receiver, Sender};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    struct Channel(Receiver<u32>);

    impl JobQueue for Channel {
        type Job = u32;
        fn try_pop(&self) -> Option<u32> {
            self.0.try_recv().ok()
        }
        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn counts(parking: &Parking) -> (usize, usize) {
        (parking.searching.load(Ordering::SeqCst), parking.sleeping.load(Ordering::SeqCst))
    }

    fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn send(parking: &Parking, tx: &Sender<u32>, job: u32) {
        tx.send(job).unwrap();
        parking.job_queued();
    }

    // Not under Miri: parking_lot's parking casts integers to pointers, which strict-provenance
    // Miri rejects; this test exercises no unsafe code of the crate.
    #[cfg(not(miri))]
    #[test]
    fn idle_workers_sleep_one_wakes_per_job_and_close_wakes_all() {
        let (parking, spots) = Parking::new(3, 1);
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::scope(|s| {
            let workers: Vec<_> = spots
                .into_iter()
                .map(|mut spot| {
                    let (parking, queue) = (&parking, Channel(rx.clone()));
                    s.spawn(move || {
                        let mut ran = Vec::new();
                        while let Some(job) = parking.next_job(&mut spot, &queue) {
                            ran.push(job);
                        }
                        ran
                    })
                })
                .collect();
            assert!(wait_until(|| counts(&parking) == (0, 3)), "every idle worker sleeps");
            send(&parking, &tx, 7);
            // One worker woke, ran the job, and went back to sleep.
            assert!(wait_until(|| counts(&parking) == (0, 3)));
            assert!(rx.is_empty());
            parking.close();
            let mut ran: Vec<u32> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
            ran.sort_unstable();
            assert_eq!(ran, [7]);
        });
        assert_eq!(counts(&parking), (0, 0), "every worker left");
    }
}
