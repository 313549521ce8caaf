//! The janitor: a background task that sweeps idle and expired connections and
//! re-warms the pool to `min_idle`. It holds only a `Weak` reference, so it ends when
//! the last pool handle is dropped, and it also ends when the pool is closed.

use crate::manager::Manager;
use crate::pool::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How the pool reaches its janitor without the janitor keeping the pool alive.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// More work: a slot was freed below `min_idle`, or connections were removed.
    work: Notify,
    /// Stop: the pool was closed or dropped.
    stop: Notify,
    gone: AtomicBool,
}

impl Signal {
    /// Asks for a sweep / re-warm now (a slot was freed below `min_idle`, or closed).
    pub(crate) fn wake(&self) {
        self.work.notify_one();
    }

    /// The pool was closed.
    pub(crate) fn closed(&self) {
        self.stop.notify_one();
    }

    /// The pool's shared state is being dropped.
    pub(crate) fn pool_gone(&self) {
        self.gone.store(true, Ordering::Release);
        self.stop.notify_one();
    }
}

pub(crate) fn spawn<M: Manager>(runtime: &tokio::runtime::Handle, shared: &Arc<Shared<M>>) {
    let weak = Arc::downgrade(shared);
    let signal = shared.signal.clone();
    let period = shared.config.janitor_period();
    runtime.spawn(run(weak, signal, period));
}

async fn run<M: Manager>(pool: Weak<Shared<M>>, signal: Arc<Signal>, period: std::time::Duration) {
    let mut dial_failed = false;
    loop {
        if signal.gone.load(Ordering::Acquire) {
            return;
        }
        {
            let Some(shared) = pool.upgrade() else { return };
            if shared.is_closed() {
                return;
            }
            shared.sweep(Instant::now());
            // Re-warm one connection at a time; after a failed dial wait a full
            // period (ignoring work wake-ups) so a dead server is not hammered.
            loop {
                match shared.warm_one(shared.config.min_idle).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => {
                        dial_failed = true;
                        break;
                    }
                }
            }
        }
        if std::mem::take(&mut dial_failed) {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = signal.stop.notified() => return,
            }
        } else {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = signal.work.notified() => {}
                () = signal.stop.notified() => return,
            }
        }
    }
}
