//! Maintenance: the sweep of expired idle connections and the re-warm to
//! `min_idle` (also run on demand by `Pool::maintain`), and the one janitor thread
//! per pool that runs them. It holds only a weak reference between rounds, so it never keeps a
//! dropped pool alive; it ends when the pool is closed or dropped, and dropping the
//! pool joins it.

use super::dial::DialError;
use super::manager::Manager;
use super::shared::{Grant, Shared};
use parking_lot::{Condvar, Mutex};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::Instant;

#[derive(Debug, Default)]
struct Flags {
    stopped: bool,
    kicked: bool,
}

/// The janitor's stop and wake-up signal, and its thread.
#[derive(Debug, Default)]
pub(crate) struct Janitor {
    signal: Arc<(Mutex<Flags>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Janitor {
    /// Asks the janitor to end after its current round.
    pub(crate) fn stop(&self) {
        let (flags, cv) = &*self.signal;
        flags.lock().stopped = true;
        cv.notify_all();
    }

    /// Asks for a round now (e.g. to re-warm after `retain`).
    pub(crate) fn wake(&self) {
        let (flags, cv) = &*self.signal;
        let mut flags = flags.lock();
        if !flags.kicked {
            flags.kicked = true;
            drop(flags);
            cv.notify_all();
        }
    }

    /// Stops the janitor and waits for its thread, unless this is that thread
    /// (the pool's last handle can be dropped by the janitor's own round).
    pub(crate) fn stop_and_join(&self) {
        self.stop();
        // Take the handle in its own statement: the lock must not be held while
        // joining, since the janitor's last act can be dropping the pool, which
        // comes back here.
        let handle = self.handle.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

pub(crate) fn spawn<M: Manager>(shared: &Arc<Shared<M>>) -> std::io::Result<()> {
    let weak: Weak<Shared<M>> = Arc::downgrade(shared);
    let signal = shared.janitor.signal.clone();
    let period = shared.config.options.janitor_period();
    let handle = thread::Builder::new().name("poolside-janitor".into()).spawn(move || {
        loop {
            {
                let Some(shared) = weak.upgrade() else { return };
                if shared.is_closed() {
                    return;
                }
                let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    shared.sweep();
                    while shared.warm_one() {}
                }));
                if let Err(panic) = round {
                    tracing::error!(
                        panic = super::bounded::panic_message(&*panic),
                        "poolside-connpool: the janitor's round panicked"
                    );
                }
            }
            let (flags, cv) = &*signal;
            let mut flags = flags.lock();
            if !flags.stopped && !flags.kicked {
                cv.wait_for(&mut flags, period);
            }
            flags.kicked = false;
            if flags.stopped {
                return;
            }
        }
    })?;
    *shared.janitor.handle.lock() = Some(handle);
    Ok(())
}

impl<M: Manager> Shared<M> {
    /// Closes idle connections past their lifetime or idle limit. As in the async
    /// pool, `min_idle` does not protect a connection from the idle limit: the
    /// janitor replaces the closed ones with fresh connections afterwards.
    pub(crate) fn sweep(&self) {
        if !self.config.options.has_time_limits() {
            return;
        }
        let now = Instant::now();
        let mut doomed = Vec::new();
        {
            let mut st = self.lock();
            // In place, keeping the kept connections' order (most recent on top).
            let mut at = 0;
            while at < st.idle.len() {
                match self.expired(&st.idle[at], now) {
                    Some(reason) => doomed.push((st.idle.remove(at), reason)),
                    None => at += 1,
                }
            }
            for _ in &doomed {
                if st.closed
                    || st.open > st.max_size
                    || Self::deliver(&mut st, Grant::Slot).is_some()
                {
                    st.open -= 1;
                }
            }
        }
        for (conn, reason) in doomed {
            self.close_conn(conn, reason);
        }
    }

    /// Opens one connection for the janitor if fewer than `min_idle` are idle.
    /// Returns whether it should be called again.
    pub(crate) fn warm_one(self: &Arc<Self>) -> bool {
        {
            let mut st = self.lock();
            if st.closed
                || st.idle.len() + st.warming >= self.config.options.min_idle
                || st.open >= st.max_size
                || !st.waiters.is_empty()
                || st.backoff.until.is_some_and(|u| u > Instant::now())
            {
                return false;
            }
            st.open += 1;
            st.warming += 1;
        }
        let dialled = self.dial(self.config.options.connect_timeout);
        if let Ok(conn) = dialled {
            self.put_back_inner(conn, true);
            return true;
        }
        if !matches!(dialled, Err(DialError::TimedOut)) {
            // The slot is ours to give back (a timed-out dial's belongs to its thread).
            // Given back before the dial stops counting as warming: `maintain`, which
            // waits for warming dials, then never returns with this slot still open.
            self.release_slot();
        }
        self.lock().warming -= 1;
        // `maintain` may be waiting for this dial.
        self.drained.notify_all();
        false
    }
}
