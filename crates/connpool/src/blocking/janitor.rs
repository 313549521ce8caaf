//! One janitor thread per pool: sweeps expired idle connections and re-warms to
//! `min_idle`. It holds only a weak reference between rounds, so it never keeps a
//! dropped pool alive; it ends when the pool is closed or dropped, and dropping the
//! pool joins it.

use super::manager::Manager;
use super::pool::Shared;
use parking_lot::{Condvar, Mutex};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};

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
        flags.lock().kicked = true;
        cv.notify_all();
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
