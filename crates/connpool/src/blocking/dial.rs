//! Opening connections: `connect` plus the after-connect hook on a helper thread
//! bounded by the connect timeout, and the dial backoff shared by every caller and
//! the janitor.

use super::bounded::{self, Outcome};
use super::manager::Manager;
use super::shared::{Backoff, Conn, Shared};
use poolside_core::{ConnEvent, Timing};
use std::fmt;
use std::hash::BuildHasher;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl<M: Manager> Shared<M> {
    /// When the shared backoff allows the next dial, with the failures so far and
    /// the last error, if it is in force.
    pub(super) fn backoff_until(&self) -> Option<(Instant, u32, String)> {
        let st = self.lock();
        let until = st.backoff.until.filter(|u| *u > Instant::now())?;
        Some((until, st.backoff.failures, st.backoff.last_error.clone()))
    }

    /// Waits until `until` for the backoff to pass; `close` ends the wait early (as
    /// in the async pool, a caller waiting out the backoff then finds the pool
    /// closed).
    pub(super) fn sleep_out_backoff(&self, until: Instant) {
        let mut st = self.lock();
        while !st.closed && Instant::now() < until {
            self.drained.wait_until(&mut st, until);
        }
    }

    pub(super) fn dial_failed(&self, error: String) {
        let mut st = self.lock();
        st.backoff.last_error = error;
        st.backoff.failures = st.backoff.failures.saturating_add(1);
        let random = self.random.hash_one((st.backoff.failures, Instant::now()));
        let delay = self.config.options.backoff_delay(st.backoff.failures, random);
        st.backoff.until = Instant::now().checked_add(delay);
    }

    pub(super) fn dial_succeeded(&self) {
        let mut st = self.lock();
        st.backoff = Backoff::default();
    }

    /// `connect` plus the after-connect hook (run on the dial thread). A hook that
    /// fails or panics closes the new connection; its panic is caught and logged
    /// here, so it is told apart from a panicking `connect`.
    pub(super) fn connect_new(&self) -> Result<M::Connection, DialFailure<M::Error>> {
        let mut raw = self.manager.connect().map_err(DialFailure::Connect)?;
        if let Some(hook) = &self.config.after_connect {
            match catch_unwind(AssertUnwindSafe(|| hook(&mut raw))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(DialFailure::Hook(e)),
                Err(panic) => {
                    let message = bounded::panic_message(&*panic).to_owned();
                    tracing::error!(
                        panic = %message,
                        "poolside-connpool: the after_connect hook panicked"
                    );
                    return Err(DialFailure::HookPanicked(message));
                }
            }
        }
        Ok(raw)
    }

    /// A connection just opened (and prepared), with its id; reported as
    /// `ConnEvent::Connect`, `took` counted from `started` (the dial's start, known
    /// only when a hook is installed).
    fn connected(&self, raw: M::Connection, started: Option<Instant>) -> Conn<M::Connection> {
        let conn = self.new_conn(raw);
        if let (Some(started), true) = (started, self.events.connections_enabled()) {
            let took = started.elapsed();
            self.events.connection(ConnEvent::Connect { id: conn.id, took });
        }
        conn
    }

    /// Dials into a held slot, bounded by `limit` (at most the connect timeout). On
    /// timeout the slot passes to the dial thread, which returns a late connection
    /// to the pool.
    pub(super) fn dial(
        self: &Arc<Self>,
        limit: Duration,
    ) -> Result<Conn<M::Connection>, DialError<M::Error>> {
        self.counters.dials.bump();
        let started = self.events.start();
        let worker = self.clone();
        let orphan = self.clone();
        let outcome = bounded::call(
            limit,
            move || worker.connect_new(),
            move |late| match late {
                Ok(Ok(raw)) => {
                    orphan.dial_succeeded();
                    let conn = orphan.connected(raw, started);
                    orphan.put_back(conn);
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "poolside-connpool: a timed-out dial failed");
                    orphan.release_slot();
                }
                Err(panic) => {
                    tracing::error!(
                        panic = bounded::panic_message(&*panic),
                        "poolside-connpool: Manager::connect panicked"
                    );
                    orphan.release_slot();
                }
            },
        );
        self.events.finish(Timing::Dial, started);
        match outcome {
            Outcome::Done(Ok(raw)) => {
                self.dial_succeeded();
                Ok(self.connected(raw, started))
            }
            Outcome::Done(Err(failure)) => {
                self.counters.dial_errors.bump();
                let text = failure.to_string();
                tracing::debug!(error = %text, "poolside-connpool: dial failed");
                self.dial_failed(text);
                Err(DialError::Failed(failure))
            }
            Outcome::Panicked(panic) => {
                self.counters.dial_errors.bump();
                let message = bounded::panic_message(&*panic);
                self.dial_failed(format!("connect panicked: {message}"));
                tracing::error!(panic = message, "poolside-connpool: Manager::connect panicked");
                Err(DialError::Panicked(panic))
            }
            Outcome::TimedOut => {
                self.counters.dial_errors.bump();
                if limit >= self.config.options.connect_timeout {
                    self.dial_failed(format!("connect timed out after {limit:?}"));
                }
                // Otherwise cut short by the caller's own deadline: no verdict on the
                // server, so no backoff (as in the async pool).
                tracing::debug!(after = ?limit, "poolside-connpool: dial timed out");
                Err(DialError::TimedOut)
            }
        }
    }
}

/// Why a dial produced no connection (besides a panicking `connect` or a timeout).
pub(crate) enum DialFailure<E> {
    /// `Manager::connect` failed.
    Connect(E),
    /// The after-connect hook failed (the new connection was closed).
    Hook(E),
    /// The after-connect hook panicked (caught and logged).
    HookPanicked(String),
}

impl<E: fmt::Display> fmt::Display for DialFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialFailure::Connect(e) => e.fmt(f),
            DialFailure::Hook(e) => write!(f, "after_connect failed: {e}"),
            DialFailure::HookPanicked(message) => write!(f, "after_connect panicked: {message}"),
        }
    }
}

pub(crate) enum DialError<E> {
    Failed(DialFailure<E>),
    Panicked(Box<dyn std::any::Any + Send>),
    /// The slot now belongs to the dial thread.
    TimedOut,
}
