//! The job queue: one first-in, first-out channel, bounded by the permits of
//! [`Slots`].
//!
//! An entry is a job, or the ticket of a scoped job (`scope.rs`, a job type of its
//! own that [`Task::as_ticket`] recognises): the job itself waits in its scope, where the
//! worker waiting for that scope may run it first, and the ticket stands for it here. Popping a ticket takes its scope's oldest unstarted job;
//! a ticket whose jobs were all taken is skipped. Every scoped job has one ticket and
//! each ticket takes at most one job, so the queue never loses a job, and callers only
//! ever see jobs.
//!
//! A submitter holds a permit for every job it puts in, and a job gives its permit back
//! as it leaves the queue, so the channel never holds more than `depth` jobs and a push
//! never fails or blocks. The waiting for room happens in [`Slots`], where blocked
//! threads and async tasks queue up fairly. The channel is crossbeam's array channel up
//! to [`MAX_PREALLOCATED`] entries (allocated once, so a push allocates nothing), and
//! its list channel above that, which allocates in blocks as it fills: a `queue_depth`
//! of `usize::MAX` is a valid "unbounded" queue, not an allocation of that size.

use crate::job::Task;
use crate::parking::JobQueue;
use crate::slots::Slots;
use crossbeam_channel::{Receiver, Sender};
use poolside_core::ShardedCounter;

/// Depths up to this are preallocated as one array of entries.
pub(crate) const MAX_PREALLOCATED: usize = 1 << 16;

/// The queue: the channel and its permits.
#[derive(Debug)]
pub(crate) struct Queue {
    sender: Sender<Task>,
    receiver: Receiver<Task>,
    pub(crate) slots: Slots,
    /// Tickets in the channel whose jobs were taken from their scope directly: one
    /// added per such take, one subtracted (wrapping) per such ticket skipped, counted
    /// per thread since the workers of a busy scope do both all the time. A skip may
    /// be counted before the take it matches. `len` leaves them out.
    spent_tickets: Box<ShardedCounter>,
}

impl Queue {
    /// A queue of `depth >= 1` jobs.
    pub(crate) fn new(depth: usize) -> Queue {
        let (sender, receiver) = if depth <= MAX_PREALLOCATED {
            crossbeam_channel::bounded(depth)
        } else {
            crossbeam_channel::unbounded()
        };
        Queue { sender, receiver, slots: Slots::new(depth), spent_tickets: Box::default() }
    }

    /// Puts `task` in; the caller holds a permit for it.
    #[inline]
    pub(crate) fn push(&self, task: Task) {
        // Cannot fail: the queue holds its own receiver, and a permit guarantees room.
        let pushed = self.sender.try_send(task);
        debug_assert!(pushed.is_ok(), "a permit guarantees room");
    }

    /// Takes the oldest job (skipping tickets whose jobs were taken) and gives the
    /// permits of the entries it took back.
    #[inline]
    pub(crate) fn try_pop(&self) -> Option<Task> {
        let task = self.receiver.try_recv().ok()?;
        self.slots.release();
        match task.as_ticket() {
            None => Some(task),
            Some(_) => self.redeem(task),
        }
    }

    /// The job the popped `ticket` stands for or, if its scope's jobs were all taken,
    /// the next job: the rarer path, kept out of the workers' loop.
    #[cold]
    #[inline(never)]
    fn redeem(&self, mut ticket: Task) -> Option<Task> {
        loop {
            let scope = ticket.as_ticket().expect("a ticket");
            if let Some(task) = scope.take_unstarted() {
                return Some(task);
            }
            self.spent_tickets.add(u64::MAX);
            ticket = self.receiver.try_recv().ok()?;
            self.slots.release();
            if ticket.as_ticket().is_none() {
                return Some(ticket);
            }
        }
    }

    /// Counts a job taken from its scope directly, not through its ticket: one ticket
    /// in the channel now stands for nothing.
    #[inline]
    pub(crate) fn ticket_spent(&self) {
        self.spent_tickets.bump();
    }

    /// Jobs waiting.
    pub(crate) fn len(&self) -> usize {
        // A wrapped (negative) sum is a skip counted before its take: none spent.
        let spent = usize::try_from(self.spent_tickets.sum() as i64).unwrap_or(0);
        self.receiver.len().saturating_sub(spent)
    }

    /// Drops every waiting job; returns how many there were (tickets with no job left
    /// are not counted).
    pub(crate) fn drain(&self) -> u64 {
        let mut dropped = 0;
        while let Some(task) = self.try_pop() {
            drop(task);
            dropped += 1;
        }
        dropped
    }
}

impl JobQueue for Queue {
    type Job = Task;

    #[inline]
    fn try_pop(&self) -> Option<Task> {
        Queue::try_pop(self)
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_PREALLOCATED, Queue};
    use crate::job::{Submitted, Task};

    fn task() -> Task {
        Task::new(Submitted(|_: &crate::JobContext<'_>| {}), None)
    }

    #[test]
    fn permits_bound_the_queue_and_come_back_as_jobs_leave() {
        let queue = Queue::new(3);
        for _ in 0..3 {
            assert!(queue.slots.try_acquire());
            queue.push(task());
        }
        assert!(!queue.slots.try_acquire());
        assert_eq!(queue.len(), 3);
        assert!(queue.try_pop().is_some());
        assert!(queue.slots.try_acquire(), "the popped job's permit came back");
        queue.push(task());
        assert_eq!(queue.drain(), 3);
        assert_eq!(queue.slots.available(), 3);
    }

    #[test]
    fn tickets_stand_for_their_scopes_jobs_and_spent_ones_are_skipped_and_not_counted() {
        use crate::scope::ScopeCore;
        use std::sync::Arc;
        let queue = Queue::new(8);
        let scope = Arc::new(ScopeCore::new());
        let push = |task: Task| {
            assert!(queue.slots.try_acquire());
            queue.push(task);
        };
        // Two scoped jobs with their tickets, then a plain job.
        for _ in 0..2 {
            scope.put_unstarted(task());
            push(Task::ticket(scope.clone()));
        }
        push(task());
        assert_eq!(queue.len(), 3);
        // The scope's waiting worker runs one of them itself: one ticket is spent.
        assert!(scope.take_unstarted().is_some());
        queue.ticket_spent();
        assert_eq!(queue.len(), 2);
        // The first ticket hands out the scope's other job; the second, spent, is
        // skipped for the plain job behind it.
        let first = queue.try_pop().expect("the scope's job");
        assert!(first.as_ticket().is_none());
        assert!(scope.take_unstarted().is_none(), "the ticket took the last one");
        assert!(queue.try_pop().is_some_and(|t| t.as_ticket().is_none()));
        assert!(queue.try_pop().is_none());
        assert_eq!(queue.len(), 0);
        assert_eq!(queue.slots.available(), 8, "every entry's permit came back");
        drop(first);
        assert_eq!(Arc::strong_count(&scope), 1);
    }

    #[test]
    fn a_huge_depth_allocates_nothing_up_front() {
        let queue = Queue::new(usize::MAX);
        assert!(queue.slots.try_acquire());
        queue.push(task());
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.drain(), 1);
        assert_eq!(queue.slots.available(), usize::MAX);
        let _big = Queue::new(MAX_PREALLOCATED + 1);
    }
}
