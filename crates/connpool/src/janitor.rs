//! The janitor: a background task that sweeps idle and expired connections and
//! re-warms the pool to `min_idle`. It holds only a `Weak` reference, so it ends when
//! the last pool handle is dropped, and it also ends when the pool is closed.
//!
//! It runs on the runtime the pool was built on. Should that runtime shut down while
//! the pool lives on (a pool kept in a `static` and used by the next runtime), the
//! task ends with it, and the next return or refill request made on a runtime starts
//! a new one there ([`revive`]).

use crate::error::GetError;
use crate::manager::Manager;
use crate::pool::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How the pool reaches its janitor without the janitor keeping the pool alive.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// More work: idle fell below `min_idle`, or connections were removed.
    work: Notify,
    /// Set when `work` was notified and the janitor has not started on it yet, so a
    /// busy pool below `min_idle` notifies once, not on every checkout.
    requested: AtomicBool,
    /// Stop: the pool was closed or dropped.
    stop: Notify,
    gone: AtomicBool,
    /// Whether a janitor task exists: set when one is spawned, cleared when its task
    /// ends, by returning or by being dropped with its runtime, polled or not.
    running: AtomicBool,
}

/// Clears [`Signal::running`] when the janitor's task ends, however it ends.
struct Running(Arc<Signal>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

impl Signal {
    /// Asks for a refill to `min_idle` now.
    pub(crate) fn refill(&self) {
        if !self.requested.load(Ordering::Relaxed) && !self.requested.swap(true, Ordering::AcqRel) {
            self.work.notify_one();
        }
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
    shared.signal.running.store(true, Ordering::Release);
    start(runtime, shared);
}

/// Starts a janitor on the current runtime when the pool needs one and the last one
/// has ended while the pool is open (its runtime shut down). Cheap when one runs: a
/// load. Outside a runtime it does nothing; a later call on one starts it.
pub(crate) fn revive<M: Manager>(shared: &Shared<M>) {
    let signal = &shared.signal;
    if signal.running.load(Ordering::Acquire)
        || !shared.config.needs_janitor()
        || shared.is_closed()
    {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let Some(shared) = shared.me.upgrade() else { return };
    if signal.running.swap(true, Ordering::AcqRel) {
        return;
    }
    tracing::debug!("poolside-connpool: the janitor's runtime is gone; starting one on this one");
    start(&runtime, &shared);
}

/// Spawns the janitor's task; `running` is already set, and the task clears it.
fn start<M: Manager>(runtime: &tokio::runtime::Handle, shared: &Arc<Shared<M>>) {
    let weak = Arc::downgrade(shared);
    let signal = shared.signal.clone();
    let period = shared.config.janitor_period();
    // Captured by the task's future, so dropped with it even if it never ran.
    let running = Running(signal.clone());
    runtime.spawn(async move {
        let _running = running;
        run(weak, signal, period).await;
    });
}

/// `now + delay`, or a moment decades away when that does not fit in an `Instant`.
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .or_else(|| now.checked_add(Duration::from_secs(60 * 60 * 24 * 365 * 30)))
        .unwrap_or(now)
}

/// Sweeps every `period`; refills to `min_idle` whenever asked (and after each sweep),
/// one dial at a time. While the pool backs off after failed dials it dials again
/// when the backoff allows, which is what brings the pool back after an outage even
/// when no caller asks. Every user call (connect, drops) is panic-guarded by the pool.
async fn run<M: Manager>(pool: Weak<Shared<M>>, signal: Arc<Signal>, period: Duration) {
    let mut next_sweep = Instant::now();
    loop {
        if signal.gone.load(Ordering::Acquire) {
            return;
        }
        let retry_at = {
            let Some(shared) = pool.upgrade() else { return };
            if shared.is_closed() {
                return;
            }
            signal.requested.store(false, Ordering::Release);
            let now = Instant::now();
            if now >= next_sweep {
                shared.sweep(now);
                next_sweep = later(now, period);
            }
            let mut retry_at = None;
            loop {
                match shared.warm_one(shared.config.min_idle).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(GetError::Backoff { retry_in, .. }) => {
                        let wait = retry_in.unwrap_or(shared.config.backoff_min);
                        retry_at = Some(later(Instant::now(), wait));
                        break;
                    }
                    Err(_) => {
                        // The failure entered the backoff: ask it when to try again.
                        retry_at = Some(later(Instant::now(), shared.config.backoff_min));
                        break;
                    }
                }
            }
            retry_at
        };
        let wake = retry_at.map_or(next_sweep, |at| at.min(next_sweep));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = signal.work.notified(), if retry_at.is_none() => {}
            () = signal.stop.notified() => return,
        }
    }
}
