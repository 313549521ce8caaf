//! The waiter line and the pool's one timer for it.
//!
//! The line is first come, first served: a doubly linked list threaded through a slab,
//! so joining, leaving from anywhere (a dropped `get` future) and serving the oldest
//! are O(1), and the slab's entries are reused (no allocation per waiter beyond its
//! channel once the slab has grown to the longest line seen).
//!
//! Wait limits: a queued `get` with a limit does not arm a tokio timer of its own. The
//! timed waiters are threaded through a second list, ordered by deadline, and one task
//! per pool, the timekeeper, sleeps until the earliest deadline, then removes every
//! waiter whose deadline has passed and tells each it timed out through its own
//! channel. With one pool-wide limit, callers queue in deadline order, so joining the
//! deadline list is O(1) (a caller with a shorter limit than those queued walks back
//! past the later deadlines: O(those), under the lock), and the timekeeper re-arms only
//! when it fires or when such a shorter deadline becomes the earliest; a line served
//! faster than the limit costs no timer operation at all.
//!
//! The timekeeper runs on the runtime of the caller that first needed it and is only
//! used by callers on that same runtime: a caller on another runtime (whose clock or
//! driver that runtime does not share) falls back to a timer of its own. When its
//! runtime shuts down the timekeeper unregisters itself and the next caller with a
//! limit starts a new one. It holds the pool weakly and ends when the pool is closed
//! or dropped.

use super::shared::{Grant, Shared};
use crate::manager::Manager;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// No entry (the end of a list).
const NIL: usize = usize::MAX;

/// What a waiter receives: its grant, or word that its wait limit ran out.
pub(crate) enum Outcome<C> {
    Granted(Grant<C>),
    TimedOut,
}

/// A place in the line, as its owner knows it: the slab index and the waiter's unique
/// id (which tells a reused entry from the one it was).
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    pub(super) index: usize,
    pub(super) id: u64,
}

/// One waiter in the line.
pub(super) struct Waiter<C> {
    pub(super) id: u64,
    pub(super) tx: oneshot::Sender<Outcome<C>>,
    prev: usize,
    next: usize,
    /// When the timekeeper times it out (`None`: untimed, or it times itself), and
    /// its neighbours in the deadline list.
    deadline: Option<Instant>,
    dprev: usize,
    dnext: usize,
}

impl<C> Waiter<C> {
    /// Sends `grant`; gives it back when the waiter's future is gone.
    pub(super) fn grant(self, grant: Grant<C>) -> Result<(), Grant<C>> {
        match self.tx.send(Outcome::Granted(grant)) {
            Ok(()) => Ok(()),
            Err(Outcome::Granted(back)) => Err(back),
            Err(Outcome::TimedOut) => unreachable!("a grant comes back as it was sent"),
        }
    }
}

/// A slab entry, one cache line each: joining and serving touch the entries of the
/// waiters involved and of their neighbours, under the pool lock.
#[repr(align(64))]
struct Slot<C>(Option<Waiter<C>>);

/// The waiter line: FIFO order, O(1) removal, and the deadlines of the waiters the
/// timekeeper times.
pub(crate) struct Line<C> {
    slab: Vec<Slot<C>>,
    /// Vacant slab entries.
    free: Vec<usize>,
    head: usize,
    tail: usize,
    len: usize,
    /// The timed waiters, earliest deadline first (ties: oldest first).
    dhead: usize,
    dtail: usize,
    /// The timekeeper, once started (see [`Timer`]).
    pub(super) timer: Option<Timer>,
    /// Timekeepers started so far (their generations).
    timers_started: u64,
    /// A timekeeper panicked (a runtime without its time driver): callers time
    /// themselves from then on, as they did before the timekeeper existed.
    timer_failed: bool,
}

/// The registered timekeeper: its runtime, a generation telling it from the ones
/// before it, and the deadline it sleeps until (`None`: until notified).
pub(super) struct Timer {
    pub(super) runtime: tokio::runtime::Id,
    pub(super) generation: u64,
    pub(super) armed_for: Option<Instant>,
}

impl<C> Default for Line<C> {
    fn default() -> Self {
        Line {
            slab: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            dhead: NIL,
            dtail: NIL,
            timer: None,
            timers_started: 0,
            timer_failed: false,
        }
    }
}

impl<C> Line<C> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn waiter(&self, index: usize) -> Option<&Waiter<C>> {
        self.slab.get(index).and_then(|slot| slot.0.as_ref())
    }

    fn waiter_mut(&mut self, index: usize) -> Option<&mut Waiter<C>> {
        self.slab.get_mut(index).and_then(|slot| slot.0.as_mut())
    }

    /// Joins the line at the back; `deadline`: timed by the timekeeper.
    pub(super) fn push_back(
        &mut self,
        id: u64,
        tx: oneshot::Sender<Outcome<C>>,
        deadline: Option<Instant>,
    ) -> Ticket {
        let waiter =
            Waiter { id, tx, prev: self.tail, next: NIL, deadline, dprev: NIL, dnext: NIL };
        let index = match self.free.pop() {
            Some(index) => {
                self.slab[index].0 = Some(waiter);
                index
            }
            None => {
                self.slab.push(Slot(Some(waiter)));
                self.slab.len() - 1
            }
        };
        match self.waiter_mut(self.tail) {
            Some(last) => last.next = index,
            None => self.head = index,
        }
        self.tail = index;
        self.len += 1;
        if let Some(at) = deadline {
            // After the last waiter due no later than `at`: from the back, where a
            // caller with the pool-wide limit belongs.
            let mut after = self.dtail;
            while let Some(w) = self.waiter(after) {
                if w.deadline.is_some_and(|d| d <= at) {
                    break;
                }
                after = w.dprev;
            }
            let before = match self.waiter_mut(after) {
                Some(w) => std::mem::replace(&mut w.dnext, index),
                None => std::mem::replace(&mut self.dhead, index),
            };
            match self.waiter_mut(before) {
                Some(w) => w.dprev = index,
                None => self.dtail = index,
            }
            let me = self.waiter_mut(index).expect("just inserted");
            me.dprev = after;
            me.dnext = before;
        }
        Ticket { index, id }
    }

    /// Unlinks the waiter at `index` (which must be live) and frees its entry.
    fn unlink(&mut self, index: usize) -> Waiter<C> {
        let waiter = self.slab[index].0.take().expect("unlink a live entry");
        match self.waiter_mut(waiter.prev) {
            Some(prev) => prev.next = waiter.next,
            None => self.head = waiter.next,
        }
        match self.waiter_mut(waiter.next) {
            Some(next) => next.prev = waiter.prev,
            None => self.tail = waiter.prev,
        }
        if waiter.deadline.is_some() {
            match self.waiter_mut(waiter.dprev) {
                Some(prev) => prev.dnext = waiter.dnext,
                None => self.dhead = waiter.dnext,
            }
            match self.waiter_mut(waiter.dnext) {
                Some(next) => next.dprev = waiter.dprev,
                None => self.dtail = waiter.dprev,
            }
        }
        self.free.push(index);
        self.len -= 1;
        waiter
    }

    /// The oldest waiter, out of the line.
    pub(super) fn pop_front(&mut self) -> Option<Waiter<C>> {
        (self.head != NIL).then(|| self.unlink(self.head))
    }

    /// Leaves the line (a dropped future): `false` when the waiter was already
    /// served or timed out.
    pub(super) fn remove(&mut self, ticket: Ticket) -> bool {
        let live = self.waiter(ticket.index).is_some_and(|w| w.id == ticket.id);
        if live {
            self.unlink(ticket.index);
        }
        live
    }

    /// Everyone, oldest first (the pool closes).
    pub(super) fn take_all(&mut self) -> Vec<Waiter<C>> {
        let mut all = Vec::with_capacity(self.len);
        while let Some(w) = self.pop_front() {
            all.push(w);
        }
        all
    }

    /// The timed waiter with the earliest deadline, out of the line.
    fn pop_first_timed(&mut self) -> Option<Waiter<C>> {
        (self.dhead != NIL).then(|| self.unlink(self.dhead))
    }

    /// Removes every timed waiter whose deadline is at or before `now`, earliest
    /// first, into `expired`; returns the earliest deadline still pending.
    pub(super) fn expire(&mut self, now: Instant, expired: &mut Vec<Waiter<C>>) -> Option<Instant> {
        while let Some(first) = self.waiter(self.dhead) {
            match first.deadline {
                Some(at) if at > now => return Some(at),
                _ => expired.push(self.unlink(self.dhead)),
            }
        }
        None
    }
}

/// How the pool reaches its timekeeper without keeping it alive.
#[derive(Debug, Default)]
pub(crate) struct Timekeeper {
    /// An earlier deadline, a close, or the pool is gone: look again.
    wake: Notify,
    gone: AtomicBool,
}

impl Timekeeper {
    /// The pool's shared state is being dropped.
    pub(crate) fn pool_gone(&self) {
        self.gone.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Something changed (an earlier deadline, a close): look again.
    pub(crate) fn nudge(&self) {
        self.wake.notify_one();
    }
}

impl<M: Manager> Shared<M> {
    /// Under the lock, for a caller on `runtime` about to queue with a deadline:
    /// whether the timekeeper will time it (started here if there is none), re-armed
    /// when this deadline is earlier than the one it sleeps until. `false`: the
    /// caller times itself (the timekeeper lives on another runtime, or failed).
    pub(super) fn timed_by_pool(
        &self,
        line: &mut Line<M::Connection>,
        at: Instant,
        runtime: &tokio::runtime::Handle,
    ) -> bool {
        if line.timer_failed {
            return false;
        }
        let timer = match &mut line.timer {
            Some(timer) if timer.runtime == runtime.id() => timer,
            Some(_) => return false,
            None => {
                line.timers_started += 1;
                let generation = line.timers_started;
                line.timer = Some(Timer { runtime: runtime.id(), generation, armed_for: None });
                let weak = self.me.clone();
                let keeper = self.timekeeper.clone();
                drop(runtime.spawn(keep_time(weak, keeper, generation)));
                line.timer.as_mut().expect("just set")
            }
        };
        if timer.armed_for.is_none_or(|armed| at < armed) {
            timer.armed_for = Some(at);
            self.timekeeper.nudge();
        }
        true
    }

    /// The timekeeper's round: times out every waiter past its deadline; returns the
    /// deadline to sleep until, or `None` when it should stop (closed, or replaced).
    fn expire_waiters(&self, generation: u64) -> Option<Option<Instant>> {
        let mut expired = Vec::new();
        let next = {
            let mut st = self.lock();
            if st.closed || st.waiters.timer.as_ref().is_none_or(|t| t.generation != generation) {
                return None;
            }
            let next = st.waiters.expire(Instant::now(), &mut expired);
            if let Some(timer) = st.waiters.timer.as_mut() {
                timer.armed_for = next;
            }
            if !expired.is_empty() {
                self.publish(&st);
            }
            next
        };
        // Outside the lock, oldest deadline first. A waiter whose future is gone
        // had nothing in flight: its `TimedOut` is simply dropped.
        for waiter in expired {
            let _ = waiter.tx.send(Outcome::TimedOut);
        }
        Some(next)
    }
}

/// Unregisters a timekeeper that ends (its runtime shut down, or the pool closed), so
/// the next caller with a limit starts another. Waiters it still timed would wait
/// past their limits with nobody to time them: they time out now (only futures that
/// outlive their runtime's tasks, or callers whose timekeeper panicked, can be
/// left; a late `TimedOut` is a hang otherwise).
struct Unregister<M: Manager> {
    pool: Weak<Shared<M>>,
    generation: u64,
}

impl<M: Manager> Drop for Unregister<M> {
    fn drop(&mut self) {
        let Some(shared) = self.pool.upgrade() else { return };
        let mut stranded = Vec::new();
        {
            let mut st = shared.lock();
            if st.waiters.timer.as_ref().is_none_or(|t| t.generation != self.generation) {
                return;
            }
            st.waiters.timer = None;
            if std::thread::panicking() {
                tracing::error!(
                    "poolside-connpool: the wait-limit timekeeper panicked (does the runtime have its time driver enabled?); queued callers now time themselves"
                );
                st.waiters.timer_failed = true;
            }
            while let Some(w) = st.waiters.pop_first_timed() {
                stranded.push(w);
            }
            if !stranded.is_empty() {
                shared.publish(&st);
            }
        }
        for waiter in stranded {
            let _ = waiter.tx.send(Outcome::TimedOut);
        }
    }
}

/// The timekeeper task: sleeps until the earliest deadline in the line (or until
/// nudged), times out whoever is due, and repeats; ends when the pool is closed or
/// dropped. It never holds the pool across an await.
async fn keep_time<M: Manager>(
    pool: Weak<Shared<M>>,
    keeper: std::sync::Arc<Timekeeper>,
    generation: u64,
) {
    let _unregister = Unregister { pool: pool.clone(), generation };
    loop {
        if keeper.gone.load(Ordering::Acquire) {
            return;
        }
        let next = {
            let Some(shared) = pool.upgrade() else { return };
            match shared.expire_waiters(generation) {
                Some(next) => next,
                None => return,
            }
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = keeper.wake.notified() => {}
                }
            }
            None => keeper.wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The line against a model: a `Vec` of `(id, deadline)` in arrival order.
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Op {
        Join(Option<u8>),
        Serve,
        Leave(usize),
        Expire(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => proptest::option::of(any::<u8>()).prop_map(Op::Join),
            1 => Just(Op::Serve),
            1 => any::<usize>().prop_map(Op::Leave),
            1 => any::<u8>().prop_map(Op::Expire),
        ]
    }

    proptest! {
        #[test]
        fn the_line_keeps_arrival_order_and_expires_by_deadline(ops in proptest::collection::vec(op(), 1..200)) {
            let base = Instant::now();
            let at = |ms: u8| base + Duration::from_millis(u64::from(ms));
            let mut line: Line<()> = Line::default();
            let mut model: Vec<(u64, Option<Instant>, Ticket)> = Vec::new();
            // Receivers kept alive so sends succeed.
            let mut rxs = Vec::new();
            let mut next_id = 0;
            for op in ops {
                match op {
                    Op::Join(deadline) => {
                        let (tx, rx) = oneshot::channel();
                        rxs.push(rx);
                        let deadline = deadline.map(at);
                        let ticket = line.push_back(next_id, tx, deadline);
                        model.push((next_id, deadline, ticket));
                        next_id += 1;
                    }
                    Op::Serve => {
                        let got = line.pop_front().map(|w| w.id);
                        let want = (!model.is_empty()).then(|| model.remove(0).0);
                        prop_assert_eq!(got, want);
                    }
                    Op::Leave(pick) => {
                        if model.is_empty() {
                            continue;
                        }
                        let (_, _, ticket) = model.remove(pick % model.len());
                        prop_assert!(line.remove(ticket));
                        prop_assert!(!line.remove(ticket), "left twice");
                    }
                    Op::Expire(now) => {
                        let now = at(now);
                        let mut expired = Vec::new();
                        let next = line.expire(now, &mut expired);
                        let got: Vec<u64> = expired.iter().map(|w| w.id).collect();
                        // Due ones, earliest deadline first, ties in arrival order.
                        let mut due: Vec<(Instant, u64)> = model
                            .iter()
                            .filter_map(|&(id, d, _)| d.filter(|&d| d <= now).map(|d| (d, id)))
                            .collect();
                        due.sort();
                        let want: Vec<u64> = due.iter().map(|&(_, id)| id).collect();
                        prop_assert_eq!(got, want);
                        model.retain(|&(_, d, _)| d.is_none_or(|d| d > now));
                        let earliest = model.iter().filter_map(|&(_, d, _)| d).min();
                        prop_assert_eq!(next, earliest);
                    }
                }
                prop_assert_eq!(line.len(), model.len());
                prop_assert_eq!(line.is_empty(), model.is_empty());
            }
            let rest: Vec<u64> = line.take_all().iter().map(|w| w.id).collect();
            let want: Vec<u64> = model.iter().map(|&(id, _, _)| id).collect();
            prop_assert_eq!(rest, want);
        }
    }
}
