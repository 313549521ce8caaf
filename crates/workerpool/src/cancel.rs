//! Cooperative cancellation for blocking jobs.

use parking_lot::{Condvar, Mutex};
use std::fmt;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A cancellation flag that jobs check ([`is_cancelled`](Self::is_cancelled)) or wait
/// on ([`wait_timeout`](Self::wait_timeout)). Cheap to clone; every clone observes the
/// same flag. Cancelling a token cancels every [child](Self::child) too.
///
/// ```
/// use poolside_workerpool::CancellationToken;
/// use std::time::Duration;
///
/// let parent = CancellationToken::new();
/// let child = parent.child();
/// assert!(!child.wait_timeout(Duration::from_millis(1))); // not cancelled yet
/// parent.cancel();
/// assert!(child.is_cancelled());
/// assert!(child.wait_timeout(Duration::from_secs(1))); // returns at once
/// ```
#[derive(Clone)]
pub struct CancellationToken {
    inner: Arc<Inner>,
}

struct Inner {
    cancelled: AtomicBool,
    // The mutex guards nothing but the condvar handshake and the child list.
    children: Mutex<Vec<Weak<Inner>>>,
    woken: Condvar,
}

impl Inner {
    fn cancel(&self) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let children = {
            let mut guard = self.children.lock();
            self.woken.notify_all();
            std::mem::take(&mut *guard)
        };
        for child in children.iter().filter_map(Weak::upgrade) {
            child.cancel();
        }
    }
}

impl CancellationToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        CancellationToken {
            inner: Arc::new(Inner {
                cancelled: AtomicBool::new(false),
                children: Mutex::new(Vec::new()),
                woken: Condvar::new(),
            }),
        }
    }

    /// A new token that is cancelled when this one is (or by itself).
    pub fn child(&self) -> Self {
        let child = CancellationToken::new();
        self.adopt(&child);
        child
    }

    /// Makes the existing token `child` follow this one: cancelled now if this one is,
    /// and whenever this one is cancelled later. Used to link a job's own token to its
    /// pool's (or group's) token only when the job first asks for its token.
    pub(crate) fn adopt(&self, child: &CancellationToken) {
        {
            let mut children = self.inner.children.lock();
            if !self.is_cancelled() {
                // Children dropped meanwhile are pruned only when the list is full, and
                // a prune that frees less than half of it doubles it: a registration
                // costs O(1) amortised however many children are alive.
                if children.len() == children.capacity() {
                    children.retain(|c| c.strong_count() > 0);
                    let live = children.len();
                    children.reserve(live);
                }
                children.push(Arc::downgrade(&child.inner));
                return;
            }
        }
        child.cancel();
    }

    /// Whether nobody but this handle knows the token and it was never cancelled: it
    /// can be reused as new.
    pub(crate) fn is_pristine(&self) -> bool {
        Arc::strong_count(&self.inner) == 1
            && Arc::weak_count(&self.inner) == 0
            && !self.is_cancelled()
    }

    /// Cancels this token and its children. Idempotent.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether the token was cancelled.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Blocks until the token is cancelled or `timeout` passes; returns whether it was
    /// cancelled. A job that sleeps between steps should sleep with this instead, so it
    /// reacts to cancellation at once.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self.inner.children.lock();
        while !self.is_cancelled() {
            match deadline {
                Some(deadline) => {
                    if self.inner.woken.wait_until(&mut guard, deadline).timed_out() {
                        return self.is_cancelled();
                    }
                }
                None => self.inner.woken.wait(&mut guard),
            }
        }
        true
    }

    /// Blocks until the token is cancelled.
    pub fn wait(&self) {
        let mut guard = self.inner.children.lock();
        while !self.is_cancelled() {
            self.inner.woken.wait(&mut guard);
        }
    }
}

impl Default for CancellationToken {
    fn default() -> Self {
        CancellationToken::new()
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken").field("cancelled", &self.is_cancelled()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Not under Miri: parking_lot's parking casts integers to pointers, which strict-provenance
    // Miri rejects; this test exercises no unsafe code of the crate.
    #[cfg(not(miri))]
    #[test]
    fn cancel_wakes_a_waiting_thread() {
        let token = CancellationToken::new();
        let waiter = {
            let token = token.clone();
            std::thread::spawn(move || token.wait_timeout(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn children_follow_parents_not_the_other_way() {
        let parent = CancellationToken::new();
        let child = parent.child();
        let grandchild = child.child();
        child.cancel();
        assert!(grandchild.is_cancelled());
        assert!(!parent.is_cancelled());
        parent.cancel();
        let late = parent.child();
        assert!(late.is_cancelled(), "a child of a cancelled token starts cancelled");
    }

    #[test]
    fn children_alive_and_dropped_in_any_mix_are_all_cancelled_and_the_list_stays_bounded() {
        let parent = CancellationToken::new();
        let mut alive = Vec::new();
        for round in 0..200 {
            let child = parent.child();
            if round % 3 == 0 {
                alive.push(child);
            }
        }
        {
            let children = parent.inner.children.lock();
            // Every live child is listed; dropped ones are pruned as the list fills.
            let live = children.iter().filter(|c| c.strong_count() > 0).count();
            assert_eq!(live, alive.len());
            assert!(children.len() <= 2 * alive.len() + 1, "{} listed", children.len());
        }
        parent.cancel();
        assert!(alive.iter().all(CancellationToken::is_cancelled));
    }

    // Not under Miri: parking_lot's parking casts integers to pointers, which strict-provenance
    // Miri rejects; this test exercises no unsafe code of the crate.
    #[cfg(not(miri))]
    #[test]
    fn wait_timeout_reports_not_cancelled() {
        let token = CancellationToken::default();
        let started = Instant::now();
        assert!(!token.wait_timeout(Duration::from_millis(10)));
        assert!(started.elapsed() >= Duration::from_millis(10));
        token.cancel();
        // A huge timeout must not overflow the deadline arithmetic.
        assert!(token.wait_timeout(Duration::MAX));
    }
}
