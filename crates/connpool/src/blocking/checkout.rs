//! Checkout: turning a grant (an idle connection or a free slot) into a connection
//! the caller may use — expiry, `is_broken` and the health check with bounded
//! retries, or a dial — with the async pool's rules.
//!
//! Every value in flight between two owners (a slot being dialled, a connection
//! being checked) sits in a `Pending` whose `Drop` gives it back, so a panic in user
//! code anywhere leaks no slot and hangs no waiter.

use super::bounded::{self, Outcome};
use super::dial::{DialError, DialFailure};
use super::guard::PooledConn;
use super::manager::Manager;
use super::pool::Pool;
use super::shared::{Conn, Grant, Shared, Wait};
use crate::PoolError;
use crate::{CloseReason, GetError};
use poolside_core::{ConnEvent, Timing};
use std::time::{Duration, Instant};

/// A slot (and maybe its connection) in flight during checkout; `Drop` gives back
/// whatever it still holds.
pub(super) struct Pending<'a, M: Manager> {
    pub(super) shared: &'a Shared<M>,
    pub(super) conn: Option<Conn<M::Connection>>,
    pub(super) slot: bool,
}

impl<'a, M: Manager> Pending<'a, M> {
    pub(super) fn new(shared: &'a Shared<M>, grant: Grant<M::Connection>) -> Self {
        let conn = match grant {
            Grant::Conn(conn) => Some(conn),
            Grant::Slot => None,
        };
        Pending { shared, conn, slot: true }
    }
}

impl<M: Manager> Drop for Pending<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Left mid-checkout: the connection's state is unknown, close it.
            self.shared.close_conn(conn, CloseReason::Cancelled);
        }
        if self.slot {
            self.shared.release_slot();
        }
    }
}

impl<M: Manager> Pool<M> {
    pub(super) fn get_inner(
        &self,
        limit: Option<Duration>,
        may_queue: bool,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let started = Instant::now();
        // A limit past the clock's range means no limit.
        let deadline = limit.and_then(|l| started.checked_add(l));
        let wait = Wait { started, deadline, may_queue };
        // One clock read serves the line, the freshness test and the stamp.
        let (mut grant, mut now) = shared.grant(&wait, wait.started, false)?;
        let mut failed_checks = 0u32;
        loop {
            match self.checkout(grant, now, &wait, &mut failed_checks)? {
                Checkout::Done(conn) => {
                    if shared.events.is_enabled() {
                        let waited = wait.started.elapsed();
                        shared.events.record(Timing::AcquireWait, waited);
                        shared.events.connection(ConnEvent::Checkout { id: conn.id, waited });
                    }
                    shared.counters.acquires.bump();
                    return Ok(PooledConn::new(self, conn));
                }
                // A check timed out and its slot went to the check thread: start over,
                // dialling (on a free slot if there is one) once the retries are spent.
                Checkout::Again => {
                    let retries_spent = failed_checks > shared.config.options.max_health_retries;
                    (grant, now) = shared.grant(&wait, Instant::now(), retries_spent)?;
                }
            }
        }
    }

    /// Turns a grant into a connection, with the async pool's rules: an idle
    /// connection past its lifetime or idle limit, or one `is_broken` calls broken,
    /// is closed; one unused for longer than `health_check_after` is checked. A
    /// connection that fails either way is the pool's problem, never the caller's:
    /// the caller moves on to the next idle connection (at most
    /// `max_health_retries + 1` failed checks), then dials a fresh one on the slot it
    /// holds. A check is bounded by the connect timeout and the caller's deadline; a
    /// panicking check counts as a failed one.
    ///
    /// The caller's deadline is compared with every clock reading taken after user
    /// code ran (`is_broken` on a connection then closed or checked, a check, a
    /// dial): once it has passed, no check or further connection is tried, nothing
    /// is handed out, and the get fails with `TimedOut`; the connection in hand, not
    /// found broken, goes back to the pool. A connection that passed its check when
    /// the pool had closed meanwhile is closed and the get fails with `Closed`. The
    /// fast path (a connection used within the health-check window, not broken) reads
    /// no clock after `is_broken`: that call is not bounded.
    fn checkout(
        &self,
        grant: Grant<M::Connection>,
        mut now: Instant,
        wait: &Wait,
        failed_checks: &mut u32,
    ) -> Result<Checkout<M::Connection>, GetError<M::Error>> {
        let shared = &*self.shared;
        let retries = shared.config.options.max_health_retries;
        let mut pending = Pending::new(shared, grant);
        loop {
            let Some(mut conn) = pending.conn.take() else {
                return self.dial_into(pending, wait).map(Checkout::Done);
            };
            let verdict = match shared.expired(&conn, now) {
                Some(reason) => Some(reason),
                None if shared.judged_broken(&mut conn) => Some(CloseReason::Broken),
                None => None,
            };
            if let Some(reason) = verdict {
                shared.close_conn(conn, reason);
                if *failed_checks <= retries {
                    pending.conn = shared.swap_slot_for_idle();
                }
                now = Instant::now();
                if wait.is_past(now) {
                    return Err(out_of_time(pending, wait));
                }
                continue;
            }
            if shared.config.options.recently_used(conn.last_used, now) {
                pending.slot = false;
                conn.last_used = now;
                return Ok(Checkout::Done(conn));
            }
            if *failed_checks > retries {
                // The retries are spent (a timed-out check sent this caller back for
                // a new grant and no slot was free): replace this stale connection
                // rather than check one more (retired unused, like an idle one).
                shared.close_conn(conn, CloseReason::Idle);
                continue;
            }
            // The slow path: a fresh reading, so the time `is_broken` took counts
            // against the caller's wait, and no check starts after its deadline.
            now = Instant::now();
            if wait.is_past(now) {
                pending.conn = Some(conn);
                return Err(out_of_time(pending, wait));
            }
            shared.counters.health_checks.bump();
            let limit = shared.config.options.connect_timeout;
            let bound =
                wait.deadline.map_or(limit, |at| at.saturating_duration_since(now).min(limit));
            // A panicking check drops the connection with it: its close is reported
            // by id.
            let (id, created) = (conn.id, conn.created);
            let worker = self.shared.clone();
            let orphan = self.shared.clone();
            let outcome = bounded::call(
                bound,
                move || {
                    let mut conn = conn;
                    let checked = worker.manager.check(&mut conn.raw);
                    (conn, checked)
                },
                move |late| match late {
                    Ok((mut conn, Ok(()))) => {
                        conn.last_used = Instant::now();
                        orphan.put_back(conn);
                    }
                    Ok((conn, Err(_))) => {
                        orphan.close_conn(conn, CloseReason::Broken);
                        orphan.release_slot();
                    }
                    Err(panic) => {
                        tracing::error!(
                            panic = bounded::panic_message(&*panic),
                            "poolside-connpool: Manager::check panicked"
                        );
                        orphan.report_close(id, created, CloseReason::Broken);
                        orphan.release_slot();
                    }
                },
            );
            match outcome {
                Outcome::Done((mut conn, Ok(()))) => {
                    conn.last_used = Instant::now();
                    // A closed pool hands nothing out (its slot goes back with
                    // `pending`); a check that ended past the deadline (it may finish
                    // just as its bound runs out) hands nothing out either.
                    if shared.is_closed() {
                        shared.close_conn(conn, CloseReason::PoolClosed);
                        return Err(PoolError::Closed.into());
                    }
                    if wait.is_past(conn.last_used) {
                        pending.conn = Some(conn);
                        return Err(out_of_time(pending, wait));
                    }
                    pending.slot = false;
                    return Ok(Checkout::Done(conn));
                }
                Outcome::Done((conn, Err(e))) => {
                    tracing::debug!(
                        error = %e,
                        "poolside-connpool: health check failed; discarding the connection"
                    );
                    shared.close_conn(conn, CloseReason::Broken);
                }
                Outcome::Panicked(panic) => {
                    // The connection was dropped with the panicking closure.
                    tracing::error!(
                        panic = bounded::panic_message(&*panic),
                        "poolside-connpool: Manager::check panicked; discarding the connection"
                    );
                    shared.report_close(id, created, CloseReason::Broken);
                }
                Outcome::TimedOut => {
                    // The connection and its slot now belong to the check thread.
                    pending.slot = false;
                    if wait.is_past(Instant::now()) {
                        shared.counters.timeouts.bump();
                        return Err(wait.timed_out().into());
                    }
                    *failed_checks = failed_checks.saturating_add(1);
                    shared.counters.health_fails.bump();
                    tracing::debug!(
                        ?limit,
                        "poolside-connpool: health check timed out; discarding the connection"
                    );
                    return Ok(Checkout::Again);
                }
            }
            *failed_checks = failed_checks.saturating_add(1);
            shared.counters.health_fails.bump();
            // The connection is gone and its slot is ours: take the next idle one
            // (when nobody waits), else dial on the slot.
            if *failed_checks <= retries {
                pending.conn = shared.swap_slot_for_idle();
            }
            now = Instant::now();
            if wait.is_past(now) {
                return Err(out_of_time(pending, wait));
            }
        }
    }

    /// Opens a connection on the slot `pending` holds, as the async pool does: dials,
    /// and after a failure retries as the shared backoff allows, until
    /// `connect_retries` or the connect timeout (counted from the first attempt) runs
    /// out, or the caller's own deadline does. A caller that may not wait
    /// (fail-fast, `try_get`) makes at most one attempt, and one that cannot wait out
    /// the backoff, or whose deadline passes while it does, gets [`GetError::Backoff`]
    /// without a dial. Several failed attempts are reported as
    /// [`GetError::ConnectFailed`].
    fn dial_into(
        &self,
        mut pending: Pending<'_, M>,
        wait: &Wait,
    ) -> Result<Conn<M::Connection>, GetError<M::Error>> {
        let shared = &self.shared;
        let options = &shared.config.options;
        let limit = options.connect_timeout;
        let connect_deadline = Instant::now().checked_add(limit);
        let deadline = match (connect_deadline, wait.deadline) {
            (Some(c), Some(w)) => Some(c.min(w)),
            (c, w) => c.or(w),
        };
        let max_attempts =
            if wait.may_queue { options.connect_retries.saturating_add(1) } else { 1 };
        let mut attempts = 0u32;
        let mut last: Option<DialFailure<M::Error>> = None;
        loop {
            if shared.is_closed() {
                return Err(PoolError::Closed.into());
            }
            let now = Instant::now();
            if let Some((until, failures, last_error)) = shared.backoff_until() {
                let cannot_wait = !wait.may_queue || deadline.is_some_and(|d| d <= until);
                if !cannot_wait {
                    shared.sleep_out_backoff(until);
                    // The sleep may wake past the deadline: then the time went to the
                    // backoff, and that is the cause to report (as in the async pool).
                    if deadline.is_none_or(|d| Instant::now() < d) {
                        continue;
                    }
                }
                return Err(match last {
                    Some(e) => named(attempts, e),
                    None => GetError::Backoff {
                        failures,
                        retry_in: cannot_wait.then(|| until.saturating_duration_since(now)),
                        last_error,
                    },
                });
            }
            attempts += 1;
            let left = deadline.map_or(limit, |d| d.saturating_duration_since(now).min(limit));
            match shared.dial(left) {
                Ok(conn) => {
                    if shared.is_closed() {
                        pending.slot = false;
                        shared.close_conn(conn, CloseReason::PoolClosed);
                        shared.release_slot();
                        return Err(PoolError::Closed.into());
                    }
                    // The dial may finish just as its bound, the caller's deadline,
                    // runs out: then the new connection joins the pool instead.
                    if wait.is_past(Instant::now()) {
                        pending.conn = Some(conn);
                        return Err(out_of_time(pending, wait));
                    }
                    pending.slot = false;
                    return Ok(conn);
                }
                // As in the async pool, a panicking hook ends the get at once.
                Err(DialError::Failed(DialFailure::HookPanicked(message))) => {
                    return Err(GetError::Panicked { during: "after_connect", message });
                }
                Err(DialError::Failed(failure)) => last = Some(failure),
                // `pending` gives the slot back; the panic was logged where it was caught.
                Err(DialError::Panicked(panic)) => {
                    return Err(GetError::Panicked {
                        during: "connect",
                        message: bounded::panic_message(&*panic).to_owned(),
                    });
                }
                Err(DialError::TimedOut) => {
                    // The slot went to the dial thread.
                    pending.slot = false;
                    let now = Instant::now();
                    let caller_out = wait.deadline.is_some_and(|w| now >= w);
                    if caller_out && connect_deadline.is_none_or(|c| now < c) {
                        shared.counters.timeouts.bump();
                        return Err(wait.timed_out().into());
                    }
                    // Cut short by what was left of the connect timeout after earlier
                    // failures: the earlier failure is the cause to report.
                    return Err(match last.take() {
                        Some(e) if left < limit => named(attempts, e),
                        _ => GetError::ConnectTimeout { after: limit },
                    });
                }
            }
            let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
            if attempts >= max_attempts || out_of_time {
                let e = last.take().expect("the last attempt failed");
                return Err(named(attempts, e));
            }
        }
    }
}

/// The error after `attempts` failed dials, by the async pool's rule: a failed
/// `connect` as itself for one attempt and naming the attempts when there were
/// several; a failed or panicking after-connect hook as `Hook` / `Panicked`.
fn named<E: std::error::Error + Send + Sync + 'static>(
    attempts: u32,
    last: DialFailure<E>,
) -> GetError<E> {
    match last {
        DialFailure::Connect(last) if attempts > 1 => GetError::ConnectFailed { attempts, last },
        DialFailure::Connect(last) => GetError::Connect(last),
        DialFailure::Hook(e) => GetError::Hook { during: "after_connect", error: Box::new(e) },
        DialFailure::HookPanicked(message) => {
            GetError::Panicked { during: "after_connect", message }
        }
    }
}

/// Ends a get whose deadline has passed: the connection `pending` holds (not found
/// broken, and not handed out) goes back to the pool on its slot, to the oldest
/// waiter first; an empty slot is given back when `pending` drops.
fn out_of_time<M: Manager>(mut pending: Pending<'_, M>, wait: &Wait) -> GetError<M::Error> {
    if let Some(conn) = pending.conn.take() {
        pending.slot = false;
        pending.shared.put_back(conn);
    }
    pending.shared.counters.timeouts.bump();
    drop(pending);
    wait.timed_out().into()
}

/// What one checkout round produced.
pub(super) enum Checkout<C> {
    Done(Conn<C>),
    Again,
}
