//! The job queue: `queue_depth` slots split over bounded crossbeam channels (shards),
//! so that many workers do not all take jobs from one channel head.
//!
//! With one channel, every worker's `try_recv` is a compare-and-swap on the same head
//! index and a read of the slot the submitter just wrote: on the 16-core device a pool
//! of 16 workers served fewer no-op jobs per second than a pool of 2, likely because
//! that cache line moved between sixteen cores (not measured apart). With shards, worker `w` owns shard
//! `w % shards`, and each submitting thread deals its jobs round-robin over the shards,
//! so a head is shared by the few workers that own it and by whoever steals.
//!
//! * A worker takes from its own shard first, then from the others in turn; every
//!   32nd look it starts at the others, so a shard whose owner is stuck in a long job
//!   is not starved by a steady stream into the other shards.
//! * A worker just back from a job polls only its own shard (no worker watches every
//!   shard all the time); the searching workers and a worker about to sleep look at
//!   every shard, so no job waits while a worker idles: the parking protocol's
//!   re-check before sleeping covers the whole queue.
//! * A submission that finds its shard full tries the others before it reports
//!   `Full` or waits, so the bound stays exact: `Full` only when `queue_depth` jobs
//!   wait.
//! * Jobs of one submitter can start out of submission order once there is more than
//!   one shard; with one shard the queue is first in, first out.
//!
//! The default is one shard (`queue_shards(1)`): on the 2-core machine, with idle
//! workers that yield between looks, 16 workers ran 30 M no-op jobs/s over one channel
//! and 10 M/s over four (likely because a job dealt to the shard of a sleeping worker
//! waits for another worker's scan). Shards are an opt-in until a many-core machine
//! shows them winning (`docs/workerpool.md`).

use crate::error::SubmitError;
use crate::job::Task;
use crate::parking::JobQueue;
use crate::sync::IdlePoll;
use crossbeam_channel::{Receiver, Select, SendTimeoutError, Sender, TrySendError};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

/// The submitters' side of the queue, and the pool's own receivers for draining it.
#[derive(Debug)]
pub(crate) struct Queue {
    senders: Box<[Sender<Task>]>,
    receivers: Arc<[Receiver<Task>]>,
}

impl Queue {
    /// `depth` slots over `shards` channels; `1 <= shards <= depth` (checked by the
    /// builder). The first `depth % shards` shards get one slot more.
    pub(crate) fn new(depth: usize, shards: usize) -> Queue {
        debug_assert!(shards >= 1 && shards <= depth);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards)
            .map(|shard| {
                let extra = usize::from(shard < depth % shards);
                crossbeam_channel::bounded(depth / shards + extra)
            })
            .unzip();
        Queue { senders: senders.into(), receivers: receivers.into() }
    }

    /// How many shards the queue has.
    pub(crate) fn shards(&self) -> usize {
        self.senders.len()
    }

    /// Puts `task` into shard `first` or, if that one is full, the next shard with
    /// room. Fails with `Full` only when every shard was full when looked at.
    #[inline]
    pub(crate) fn try_push(&self, task: Task, first: usize) -> Result<(), SubmitError<Task>> {
        let mut task = match self.senders[first].try_send(task) {
            Ok(()) => return Ok(()),
            Err(err) => Self::retryable(err)?,
        };
        for shard in (first + 1..self.shards()).chain(0..first) {
            task = match self.senders[shard].try_send(task) {
                Ok(()) => return Ok(()),
                Err(err) => Self::retryable(err)?,
            };
        }
        Err(SubmitError::Full(task))
    }

    /// A full shard means "try the next one"; a disconnected one cannot happen while
    /// the queue holds its own receivers, and would mean the pool is gone.
    fn retryable(err: TrySendError<Task>) -> Result<Task, SubmitError<Task>> {
        match err {
            TrySendError::Full(task) => Ok(task),
            TrySendError::Disconnected(task) => Err(SubmitError::Closed(task)),
        }
    }

    /// Waits up to `timeout` until some shard has room and puts `task` there; fails
    /// with `TimedOut` if none had room in time.
    pub(crate) fn push_timeout(
        &self,
        task: Task,
        timeout: Duration,
    ) -> Result<(), SubmitError<Task>> {
        if let [sender] = &*self.senders {
            // One channel: its own blocking send, which wakes this submitter when a
            // slot frees; a `Select` of one would register and poll the same way.
            return sender.send_timeout(task, timeout).map_err(|err| match err {
                SendTimeoutError::Timeout(task) => SubmitError::TimedOut(task),
                SendTimeoutError::Disconnected(task) => SubmitError::Closed(task),
            });
        }
        // A full queue usually has room again within microseconds; a `Select` over all
        // shards registers with every one of them, so look a few times before.
        let poll = IdlePoll::new();
        let mut task = task;
        while !poll.is_completed() {
            poll.snooze();
            task = match self.try_push(task, 0) {
                Err(SubmitError::Full(task)) => task,
                done => return done,
            };
        }
        let mut select = Select::new();
        for sender in self.senders.iter() {
            select.send(sender);
        }
        match select.select_timeout(timeout) {
            Ok(operation) => {
                let shard = operation.index();
                // A selected send operation must be completed; it cannot block now.
                operation.send(&self.senders[shard], task).map_err(|err| SubmitError::Closed(err.0))
            }
            Err(_) => Err(SubmitError::TimedOut(task)),
        }
    }

    /// Jobs waiting, over all shards.
    pub(crate) fn len(&self) -> usize {
        self.receivers.iter().map(Receiver::len).sum()
    }

    /// Drops every waiting job; returns how many there were.
    pub(crate) fn drain(&self) -> u64 {
        let mut dropped = 0;
        for receiver in self.receivers.iter() {
            while let Ok(task) = receiver.try_recv() {
                drop(task);
                dropped += 1;
            }
        }
        dropped
    }

    /// The queue as worker `worker` sees it: its own shard first.
    pub(crate) fn for_worker(&self, worker: usize) -> WorkerQueue {
        let home = worker % self.shards();
        WorkerQueue {
            own: self.receivers[home].clone(),
            home,
            shards: self.receivers.clone(),
            looks: Cell::new(0),
        }
    }
}

/// One worker's view of the queue.
#[derive(Debug)]
pub(crate) struct WorkerQueue {
    /// The worker's own shard, held directly: it is polled after every job.
    own: Receiver<Task>,
    home: usize,
    shards: Arc<[Receiver<Task>]>,
    /// Looks at the queue so far; every [`OTHERS_FIRST_EVERY`]th look starts at the
    /// other shards.
    looks: Cell<u32>,
}

/// How often a worker looks at the other shards before its own. Owners take from
/// their own shard first, so under a steady stream the jobs in the shard of a worker
/// stuck in a long job would otherwise wait until the stream ends (the other workers'
/// own shards never run dry); this bounds that wait to about this many jobs per worker,
/// as tokio's workers look at the global queue every 61 ticks.
const OTHERS_FIRST_EVERY: u32 = 32;

impl WorkerQueue {
    /// The oldest job of the first non-empty shard after the worker's own.
    fn try_pop_others(&self) -> Option<Task> {
        let others = (self.home + 1..self.shards.len()).chain(0..self.home);
        others.filter_map(|shard| self.shards[shard].try_recv().ok()).next()
    }
}

impl JobQueue for WorkerQueue {
    type Job = Task;

    /// The oldest job of the worker's own shard, else of the next non-empty shard;
    /// every [`OTHERS_FIRST_EVERY`]th look the other way round.
    #[inline]
    fn try_pop(&self) -> Option<Task> {
        if self.shards.len() == 1 {
            // Disconnected only once the pool is gone, after shutdown set closing.
            return self.own.try_recv().ok();
        }
        let looks = self.looks.get().wrapping_add(1);
        self.looks.set(looks);
        if looks % OTHERS_FIRST_EVERY == 0 {
            return self.try_pop_others().or_else(|| self.own.try_recv().ok());
        }
        self.own.try_recv().ok().or_else(|| self.try_pop_others())
    }

    #[inline]
    fn try_pop_own(&self) -> Option<Task> {
        self.own.try_recv().ok()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.shards.iter().all(Receiver::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::{OTHERS_FIRST_EVERY, Queue};
    use crate::error::SubmitError;
    use crate::job::{Submitted, Task};
    use crate::parking::JobQueue;
    use std::time::Duration;

    fn task() -> Task {
        Task::new(Submitted(|_: &crate::JobContext<'_>| {}), None)
    }

    #[test]
    fn shards_split_the_depth_exactly() {
        let queue = Queue::new(10, 4);
        assert_eq!(queue.shards(), 4);
        for n in 0..10 {
            assert!(queue.try_push(task(), n % 4).is_ok(), "job {n} fits");
        }
        assert_eq!(queue.len(), 10);
        // Every shard is full now, whichever one a submitter starts at.
        for first in 0..4 {
            assert!(matches!(queue.try_push(task(), first), Err(SubmitError::Full(_))));
        }
        assert!(matches!(
            queue.push_timeout(task(), Duration::from_millis(1)),
            Err(SubmitError::TimedOut(_))
        ));
        assert_eq!(queue.drain(), 10);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_full_shard_overflows_into_the_others() {
        let queue = Queue::new(4, 4);
        // Always starting at shard 0 still fills all four.
        for _ in 0..4 {
            assert!(queue.try_push(task(), 0).is_ok());
        }
        assert!(matches!(queue.try_push(task(), 0), Err(SubmitError::Full(_))));
    }

    #[test]
    fn a_worker_takes_its_own_shard_first_then_steals() {
        let queue = Queue::new(4, 2);
        let (w0, w1) = (queue.for_worker(0), queue.for_worker(1));
        queue.try_push(task(), 1).unwrap();
        queue.try_push(task(), 1).unwrap();
        assert!(!w0.is_empty() && !w1.is_empty());
        // Worker 0's shard is empty: it steals from shard 1.
        assert!(w0.try_pop().is_some());
        assert!(w1.try_pop().is_some());
        assert!(w0.try_pop().is_none() && w1.try_pop().is_none());
        assert!(w0.is_empty());
    }

    #[test]
    fn a_worker_busy_with_its_own_shard_still_serves_the_others() {
        let queue = Queue::new(128, 2);
        let worker = queue.for_worker(0);
        // Shard 1's owner is stuck; shard 0 is refilled after every job.
        queue.try_push(task(), 1).unwrap();
        let mut took = 0;
        while !queue.receivers[1].is_empty() {
            queue.try_push(task(), 0).unwrap();
            assert!(worker.try_pop().is_some());
            took += 1;
            assert!(took <= OTHERS_FIRST_EVERY, "shard 1's job waited {took} looks");
        }
        assert_eq!(queue.receivers[0].len(), 1, "shard 0's last job waits instead");
    }

    #[test]
    fn a_waiting_push_lands_in_whichever_shard_frees_up() {
        let queue = Queue::new(2, 2);
        queue.try_push(task(), 0).unwrap();
        queue.try_push(task(), 0).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                // Frees a slot in shard 1 only.
                assert!(queue.for_worker(1).try_pop().is_some());
            });
            assert!(queue.push_timeout(task(), Duration::from_secs(5)).is_ok());
        });
        assert_eq!(queue.len(), 2);
    }
}
