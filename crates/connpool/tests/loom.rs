//! Loom model of the hand-off between a returned connection and a caller about to
//! wait: the hand-shake of `Shared::acquire`, `feed_waiters`, `put_back` and
//! `after_push` in `src/pool/shared.rs`, reduced to what it touches (the `waiting`
//! gauge, one idle stripe with its lock and its lock-free length, the locked waiter
//! queue). Loom explores every interleaving; the property is that a caller never ends
//! up waiting while the only connection sits idle (a lost wake-up).
//!
//! The returner pushes under the stripe's lock and then reads `waiting`, with no
//! fence; a caller about to wait stores `waiting` and then takes the stripe's lock
//! (`Stripes::pop`), whatever the stripe's length reads. The lock orders the two.
//!
//! It is a model of the protocol, written next to the code it mirrors rather than
//! running it: under `--cfg loom` tokio (a dependency) switches to its own loom
//! internals and does not build, so `cargo xtask test` runs this file under
//! `--cfg poolside_loom` (named by the `#![cfg]` line below). Checked by mutation:
//! letting the caller's `pop` skip a stripe whose length reads zero without locking
//! it (what the lock-free checkout's `pop_fast` does) makes both hand-off models fail.
//! The third model races a return with `close` (which marks the pool closed, then
//! drains every stripe under its lock): no connection may stay idle in a closed
//! pool; letting the drain skip an empty-looking stripe makes it fail.
#![cfg(poolside_loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst, fence};
use loom::sync::{Arc, Mutex};

/// Where a waiter receives its connection (the pool's oneshot channel).
type Mailbox = Arc<Mutex<Option<u32>>>;

#[derive(Default)]
struct Core {
    /// `Gauges::waiting`: callers in line, published with `SeqCst`.
    waiting: AtomicUsize,
    /// One idle stripe: its stack under its lock, and its length for lock-free reads.
    stripe: Mutex<Vec<u32>>,
    stripe_len: AtomicUsize,
    /// The locked side: the FIFO waiter queue.
    waiters: Mutex<Vec<Mailbox>>,
    /// `Shared::closed`, and the connections closed because the pool was.
    closed: AtomicBool,
    closed_conns: Mutex<Vec<u32>>,
}

impl Core {
    /// `Stripes::push`: the length is stored under the stripe lock.
    fn push(&self, conn: u32) {
        let mut stack = self.stripe.lock().unwrap();
        stack.push(conn);
        self.stripe_len.store(stack.len(), Relaxed);
    }

    /// `Stripes::pop`, for callers about to wait: the stripe is always locked.
    fn pop(&self) -> Option<u32> {
        let mut stack = self.stripe.lock().unwrap();
        let conn = stack.pop();
        self.stripe_len.store(stack.len(), Relaxed);
        conn
    }

    /// `Stripes::pop_fast`, for the lock-free checkout: an empty-looking stripe is
    /// skipped without locking.
    fn pop_fast(&self) -> Option<u32> {
        if self.stripe_len.load(Relaxed) == 0 {
            return None;
        }
        self.pop()
    }

    /// `feed_waiters`, under the waiter lock: idle connections to the oldest waiters.
    fn feed(&self, waiters: &mut Vec<Mailbox>) {
        self.waiting.store(waiters.len(), SeqCst);
        fence(SeqCst);
        while !waiters.is_empty() {
            let Some(conn) = self.pop() else { break };
            *waiters.remove(0).lock().unwrap() = Some(conn);
        }
        self.waiting.store(waiters.len(), SeqCst);
    }

    /// `put_back` + `after_push`: straight to a waiter when one is announced,
    /// otherwise push and look again (no fence: see the module docs).
    fn release(&self, conn: u32) {
        if self.waiting.load(SeqCst) != 0 {
            let mut waiters = self.waiters.lock().unwrap();
            if !waiters.is_empty() {
                *waiters.remove(0).lock().unwrap() = Some(conn);
                self.waiting.store(waiters.len(), SeqCst);
                return;
            }
        }
        self.push(conn);
        if self.closed.load(SeqCst) {
            // `after_push` on a closed pool: take back what went in.
            let _waiters = self.waiters.lock().unwrap();
            self.drain_closed();
        } else if self.waiting.load(SeqCst) != 0 {
            let mut waiters = self.waiters.lock().unwrap();
            self.feed(&mut waiters);
        }
    }

    /// Closes every idle connection (the stripe is locked, whatever its length).
    fn drain_closed(&self) {
        let mut stack = self.stripe.lock().unwrap();
        self.closed_conns.lock().unwrap().append(&mut stack);
        self.stripe_len.store(0, Relaxed);
    }

    /// `Pool::close`: under the pool lock, mark closed, then drain the stripes.
    fn close(&self) {
        let _waiters = self.waiters.lock().unwrap();
        self.closed.store(true, SeqCst);
        self.drain_closed();
    }

    /// `Shared::acquire` with every slot taken: a connection, or the mailbox this
    /// caller now waits on.
    fn acquire(&self) -> Result<u32, Mailbox> {
        if self.waiting.load(SeqCst) == 0 {
            if let Some(conn) = self.pop_fast() {
                return Ok(conn);
            }
        }
        let mut waiters = self.waiters.lock().unwrap();
        if waiters.is_empty() {
            // Announce, then look again.
            self.waiting.store(1, SeqCst);
            if let Some(conn) = self.pop() {
                self.waiting.store(0, SeqCst);
                return Ok(conn);
            }
        }
        let mailbox = Mailbox::default();
        waiters.push(mailbox.clone());
        self.feed(&mut waiters);
        Err(mailbox)
    }
}

fn received(outcome: Result<u32, Mailbox>) -> Option<u32> {
    match outcome {
        Ok(conn) => Some(conn),
        Err(mailbox) => mailbox.lock().unwrap().take(),
    }
}

#[test]
fn a_return_racing_a_caller_about_to_wait_reaches_the_caller() {
    loom::model(|| {
        let core = Arc::new(Core::default());
        let returner = {
            let core = core.clone();
            loom::thread::spawn(move || core.release(7))
        };
        let outcome = core.acquire();
        returner.join().unwrap();
        assert_eq!(received(outcome), Some(7), "the caller waits while the connection sits idle");
        assert_eq!(core.waiting.load(SeqCst), 0);
    });
}

#[test]
fn two_returns_racing_two_callers_reach_both() {
    loom::model(|| {
        let core = Arc::new(Core::default());
        let returners: Vec<_> = [1, 2]
            .into_iter()
            .map(|conn| {
                let core = core.clone();
                loom::thread::spawn(move || core.release(conn))
            })
            .collect();
        let first = core.acquire();
        let second = core.acquire();
        for returner in returners {
            returner.join().unwrap();
        }
        let mut got = [received(first), received(second)];
        got.sort_unstable();
        assert_eq!(got, [Some(1), Some(2)], "a connection was stranded");
    });
}

#[test]
fn a_return_racing_close_leaves_no_connection_idle() {
    loom::model(|| {
        let core = Arc::new(Core::default());
        let returner = {
            let core = core.clone();
            loom::thread::spawn(move || core.release(7))
        };
        core.close();
        returner.join().unwrap();
        assert!(core.stripe.lock().unwrap().is_empty(), "a closed pool kept an idle connection");
        assert_eq!(*core.closed_conns.lock().unwrap(), [7], "closed exactly once");
    });
}
