//! Checkout: dialling on a held slot, the `get` future and the values that own
//! whatever is in flight inside it, so that dropping the future at any await point
//! gives back its slot, connection or grant.

use super::Pool;
use super::line::{Outcome, Ticket};
use super::shared::{Acquire, Adoption, Conn, Grant, Shared};
use crate::PoolError;
use crate::backoff::{Backoff, Gate};
use crate::error::GetError;
use crate::guard::PooledConn;
use crate::hooks::{self};
use crate::manager::Manager;
pub(crate) use crate::meta::CloseReason;
use crate::unwind::{self, Panicked};
use poolside_core::{ConnEvent, Timing};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

impl<M: Manager> Shared<M> {
    /// One dial on a slot the caller holds, bounded by `limit`, reported to the backoff
    /// (`generation` and `probe` come from its gate).
    pub(super) async fn dial(
        &self,
        generation: u64,
        probe: bool,
        limit: Duration,
    ) -> Result<Conn<M::Connection>, GetError<M::Error>> {
        self.counters.dials.bump();
        // A probe whose future is dropped mid-dial must let another caller probe.
        let mut abandoned = AbandonedProbe { backoff: &self.backoff, armed: probe };
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(limit, unwind::guard_future("connect", || self.manager.connect()))
                .await;
        self.events.record(Timing::Dial, started.elapsed());
        abandoned.armed = false;
        match outcome {
            Ok(Ok(Ok(raw))) => {
                let conn = self.new_conn(raw);
                let Some(hook) = &self.hooks.after_connect else {
                    self.backoff.succeeded(probe);
                    self.events
                        .connection(ConnEvent::Connect { id: conn.id, took: started.elapsed() });
                    return Ok(conn);
                };
                // The hook is part of the dial: its own time comes out of the same
                // limit, and the probe stays armed until it has answered. Should this
                // future be dropped meanwhile, `Preparing` closes the connection.
                abandoned.armed = probe;
                let left = || limit.saturating_sub(started.elapsed());
                let mut preparing = Preparing { shared: self, conn: Some(conn) };
                let conn_ref = preparing.conn.as_mut().expect("just set");
                let meta = conn_ref.meta();
                let verdict =
                    hooks::run("after_connect", hook, &mut conn_ref.raw, meta, left).await;
                abandoned.armed = false;
                let conn = preparing.conn.take().expect("taken only here");
                match verdict {
                    Ok(_) => {
                        self.backoff.succeeded(probe);
                        self.events.connection(ConnEvent::Connect {
                            id: conn.id,
                            took: started.elapsed(),
                        });
                        Ok(conn)
                    }
                    Err(refusal) => {
                        self.close_conn(conn, CloseReason::Hook);
                        self.counters.dial_errors.bump();
                        let (error, text) = match refusal {
                            hooks::Refusal::Panicked(Panicked { during, message }) => {
                                let text = format!("after_connect panicked: {message}");
                                (GetError::Panicked { during, message }, text)
                            }
                            hooks::Refusal::Failed(error) => {
                                let text = format!("after_connect failed: {error}");
                                (GetError::Hook { during: "after_connect", error }, text)
                            }
                            // `after_connect` returns `()`, so it never declines; a
                            // refusal without an error is reported like a timeout.
                            refusal => {
                                let text = match refusal {
                                    hooks::Refusal::TimedOut(after) => {
                                        format!("after_connect timed out after {after:?}")
                                    }
                                    _ => "after_connect refused the connection".to_owned(),
                                };
                                let error = GetError::Hook {
                                    during: "after_connect",
                                    error: text.clone().into(),
                                };
                                (error, text)
                            }
                        };
                        self.backoff.failed(generation, probe, text);
                        Err(error)
                    }
                }
            }
            Ok(Ok(Err(e))) => {
                self.counters.dial_errors.bump();
                tracing::warn!(error = %e, "poolside-connpool: opening a connection failed");
                self.backoff.failed(generation, probe, e.to_string());
                Err(GetError::Connect(e))
            }
            Ok(Err(Panicked { during, message })) => {
                // A connect that panics fails like one that errs: it backs off too, so a
                // manager that always panics is not called in a tight loop.
                self.counters.dial_errors.bump();
                self.backoff.failed(generation, probe, format!("connect panicked: {message}"));
                Err(GetError::Panicked { during, message })
            }
            Err(_) => {
                self.counters.dial_errors.bump();
                let after = self.config.connect_timeout;
                if limit < after {
                    // Cut short by the caller's own deadline: no verdict on the server,
                    // so no backoff; a probe lets the next caller try.
                    if probe {
                        self.backoff.abandon_probe();
                    }
                } else {
                    tracing::warn!(?after, "poolside-connpool: opening a connection timed out");
                    self.backoff.failed(
                        generation,
                        probe,
                        format!("connect timed out after {after:?}"),
                    );
                }
                Err(GetError::ConnectTimeout { after })
            }
        }
    }

    /// Wraps a connection just opened (or adopted) with a fresh id.
    pub(super) fn new_conn(&self, raw: M::Connection) -> Conn<M::Connection> {
        let now = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Conn { raw, created: now, last_used: now, id, checkouts: 0 }
    }

    /// Runs `before_acquire` (when set) on the connection `pending` holds. On
    /// anything but `Approved` the connection stays in `pending`, for the caller to
    /// close. Dropped meanwhile, `pending` closes it.
    ///
    /// The hook is bounded like a health check: by `connect_timeout`, and by the
    /// caller's own wait limit `wait` (which covers the whole `get`, hooks included).
    pub(super) async fn approve_checkout(
        &self,
        pending: &mut Pending<'_, M>,
        wait: Option<WaitLimit>,
    ) -> Approval {
        let Some(hook) = &self.hooks.before_acquire else { return Approval::Approved };
        let Some(conn) = pending.conn.as_mut() else { return Approval::Refused };
        let meta = conn.meta();
        let bound = || WaitLimit::cut(wait, self.config.connect_timeout, Instant::now());
        match hooks::run("before_acquire", hook, &mut conn.raw, meta, bound).await {
            Ok(hooks::Answered::AtOnce) => Approval::Approved,
            Ok(hooks::Answered::AfterWaiting) => Approval::ApprovedAfterWaiting,
            Err(hooks::Refusal::TimedOut(_)) if WaitLimit::ran_out(wait) => {
                Approval::CallerOutOfTime
            }
            Err(_) => Approval::Refused,
        }
    }

    /// Opens a connection for a caller holding a slot: dials, and after a failure
    /// retries as the shared backoff allows, until `connect_retries` or the connect
    /// timeout (from the first attempt) runs out. A caller that may not wait
    /// (`may_wait` false) makes at most one attempt and never waits for the backoff.
    ///
    /// `wait` is the caller's own deadline (its wait policy), which cuts the dialling
    /// short: then the last dial's error is reported; `Backoff` if the caller made no
    /// dial of its own because its time went to waiting out the pool's backoff; or
    /// `TimedOut` if its only dial was cut short without failing.
    ///
    /// `adopt` is the caller's registration as a dialler (see `Pool::add`): a
    /// connection added meanwhile ends the dialling (or the wait for the backoff)
    /// and is returned instead ([`Dialled::Added`]); it fills the caller's slot.
    pub(super) async fn dial_for_caller(
        &self,
        may_wait: bool,
        wait: Option<WaitLimit>,
        adopt: &mut Option<Adoption<M::Connection>>,
    ) -> Result<Dialled<M::Connection>, GetError<M::Error>> {
        let limit = self.config.connect_timeout;
        let connect_deadline = Instant::now().checked_add(limit);
        let deadline = match (connect_deadline, wait.and_then(|w| w.at)) {
            (Some(c), Some(w)) => Some(c.min(w)),
            (c, w) => c.or(w),
        };
        let caller_timed_out = |last: Option<GetError<M::Error>>, attempts: u32| match last {
            Some(_) => named(attempts, last),
            None => WaitLimit::timed_out(wait, limit),
        };
        let max_attempts = if may_wait { self.config.connect_retries.saturating_add(1) } else { 1 };
        let mut attempts = 0u32;
        let mut last: Option<GetError<M::Error>> = None;
        loop {
            if self.is_closed() {
                return Err(PoolError::Closed.into());
            }
            let settled = self.backoff.settled();
            let mut settled = std::pin::pin!(settled);
            settled.as_mut().enable();
            let now = Instant::now();
            let waited_for = match self.backoff.gate(now) {
                Gate::Dial { generation, probe } => {
                    attempts += 1;
                    let left = deadline.map_or(limit, |d| d.saturating_duration_since(now));
                    let dialed = match race(self.dial(generation, probe, left), adopt).await {
                        Ok(dialed) => dialed,
                        Err(Some(adopted)) => return Ok(Dialled::Added(adopted)),
                        // The pool closed: the loop's first check reports it.
                        Err(None) => continue,
                    };
                    match dialed {
                        Ok(conn) => return Ok(Dialled::Opened(conn)),
                        Err(e @ GetError::Panicked { .. }) => return Err(e),
                        // Cut short by the caller's deadline, not the connect timeout.
                        Err(GetError::ConnectTimeout { .. })
                            if wait.and_then(|w| w.at).is_some_and(|w| Instant::now() >= w)
                                && connect_deadline.is_none_or(|c| Instant::now() < c) =>
                        {
                            return Err(caller_timed_out(last, attempts));
                        }
                        // Cut short by what was left of the connect timeout after
                        // earlier failures: the earlier failure is the cause to report.
                        Err(GetError::ConnectTimeout { .. }) if left < limit && last.is_some() => {}
                        Err(e) => last = Some(e),
                    }
                    let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
                    if attempts >= max_attempts || out_of_time {
                        return Err(named(attempts, last));
                    }
                    continue;
                }
                Gate::Wait { until, failures, last_error } => {
                    let beyond_deadline = match (until, deadline) {
                        (Some(until), Some(deadline)) => until > deadline,
                        _ => false,
                    };
                    if !may_wait || beyond_deadline {
                        return Err(match last {
                            Some(_) => named(attempts, last),
                            None => GetError::Backoff {
                                failures,
                                retry_in: until.map(|u| u.saturating_duration_since(now)),
                                last_error,
                            },
                        });
                    }
                    (until, failures, last_error)
                }
            };
            let (until, failures, last_error) = waited_for;
            let wake = match (until, deadline) {
                (Some(u), Some(d)) => Some(u.min(d)),
                (u, d) => u.or(d),
            };
            let waited = async {
                match wake {
                    Some(at) => {
                        tokio::select! {
                            () = settled => {}
                            () = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => settled.await,
                }
            };
            match race(waited, adopt).await {
                Ok(()) | Err(None) => {}
                Err(Some(adopted)) => return Ok(Dialled::Added(adopted)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // The time went to waiting out the pool's backoff (a timer may wake
                // just past a backoff that ends just before the deadline): that is
                // the cause to report, whichever deadline it was.
                return Err(match last {
                    Some(_) => named(attempts, last),
                    None => GetError::Backoff { failures, retry_in: None, last_error },
                });
            }
        }
    }

    /// Opens one connection for the idle stripes if the pool is below `target` idle
    /// connections and has a free slot. Returns whether it added one. Never waits
    /// for the dial backoff: it reports [`GetError::Backoff`] instead.
    pub(crate) async fn warm_one(&self, target: usize) -> Result<bool, GetError<M::Error>> {
        {
            let mut st = self.lock();
            if st.closed || self.idle.len() >= target || st.open >= st.max_size {
                return Ok(false);
            }
            st.open += 1;
            self.publish(&st);
        }
        // Dropped on every early return: the slot goes back (to a waiter, if any).
        let mut slot = Pending::new(self, Grant::Slot);
        let now = Instant::now();
        let (generation, probe) = match self.backoff.gate(now) {
            Gate::Dial { generation, probe } => (generation, probe),
            Gate::Wait { until, failures, last_error } => {
                return Err(GetError::Backoff {
                    failures,
                    retry_in: until.map(|u| u.saturating_duration_since(now)),
                    last_error,
                });
            }
        };
        let conn = self.dial(generation, probe, self.config.connect_timeout).await?;
        slot.holds_slot = false;
        if self.admit() {
            self.put_back(conn, false);
            Ok(true)
        } else {
            self.close_conn(conn, CloseReason::PoolClosed);
            self.release_slot();
            Ok(false)
        }
    }
}

/// A slot held inside `get` (with the connection being judged, if any): given back
/// if the future is dropped.
pub(super) struct Pending<'a, M: Manager> {
    pub(super) shared: &'a Shared<M>,
    pub(super) conn: Option<Conn<M::Connection>>,
    pub(super) holds_slot: bool,
    /// Registered as a dialler: a connection `Pool::add` sends here fills the slot.
    pub(super) adoption: Option<Adoption<M::Connection>>,
}

impl<'a, M: Manager> Pending<'a, M> {
    pub(super) fn new(shared: &'a Shared<M>, grant: Grant<M::Connection>) -> Self {
        let conn = match grant {
            Grant::Conn(conn) => Some(conn),
            Grant::Slot => None,
        };
        Pending { shared, conn, holds_slot: true, adoption: None }
    }

    /// Ends the dialler registration (if any): leaves the list and returns the
    /// connection `Pool::add` sent meanwhile, which fills this slot.
    pub(super) fn settle_adoption(&mut self) -> Option<Conn<M::Connection>> {
        let mut adoption = self.adoption.take()?;
        {
            let mut st = self.shared.lock();
            if let Some(at) = st.dialers.iter().position(|d| d.id == adoption.id) {
                st.dialers.remove(at);
            }
        }
        adoption.rx.close();
        adoption.rx.try_recv().ok()
    }
}

impl<M: Manager> Drop for Pending<'_, M> {
    fn drop(&mut self) {
        if !self.holds_slot {
            return;
        }
        // A connection added for this caller just as it left: it fills the slot,
        // and goes to the next waiter or the idle stripes.
        if let Some(adopted) = self.settle_adoption() {
            if let Some(conn) = self.conn.take() {
                self.shared.close_conn(conn, CloseReason::Cancelled);
            }
            self.shared.put_back(adopted, false);
            return;
        }
        match self.conn.take() {
            // Dropped mid health check: the connection's state is unknown, close it.
            Some(conn) => {
                self.shared.close_conn(conn, CloseReason::Cancelled);
                self.shared.release_slot();
            }
            None => self.shared.release_slot(),
        }
    }
}

/// A connection just opened, while `after_connect` prepares it: closed (as
/// cancelled) if the dial's future is dropped meanwhile. Its slot is held, and given
/// back, by the caller.
pub(super) struct Preparing<'a, M: Manager> {
    pub(super) shared: &'a Shared<M>,
    pub(super) conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> Drop for Preparing<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.close_conn(conn, CloseReason::Cancelled);
        }
    }
}

/// Runs `work` unless a connection is added for this dialling caller first:
/// `Err(Some(conn))` then, `Err(None)` when the registration ended without one (the
/// pool closed); either way `adopt` is cleared. The work is preferred when both are
/// ready.
async fn race<F: std::future::Future, C>(
    work: F,
    adopt: &mut Option<Adoption<C>>,
) -> Result<F::Output, Option<Conn<C>>> {
    let Some(adoption) = adopt.as_mut() else { return Ok(work.await) };
    let got = tokio::select! {
        biased;
        out = work => return Ok(out),
        got = &mut adoption.rx => got,
    };
    *adopt = None;
    Err(got.ok())
}

/// The connection a dialling caller ends up with, and where it came from.
pub(super) enum Dialled<C> {
    /// Opened by this caller's dial (and prepared by `after_connect`): handed out as
    /// it is.
    Opened(Conn<C>),
    /// Handed over by `Pool::add` meanwhile: the pool never judged it, so the caller
    /// does, as it would an idle connection.
    Added(Conn<C>),
}

impl<C> Dialled<C> {
    fn into_conn(self) -> Conn<C> {
        match self {
            Dialled::Opened(conn) | Dialled::Added(conn) => conn,
        }
    }
}

/// A caller's own wait limit (`WaitPolicy::Timeout`, `get_timeout`): when it ends,
/// and how long it was.
#[derive(Debug, Clone, Copy)]
pub(super) struct WaitLimit {
    at: Option<Instant>,
    limit: Duration,
}

impl WaitLimit {
    /// `bound`, cut to what is left at `now` of the caller's wait `wait`, if it has
    /// a deadline: how long a step of the `get` (a check, a hook) may take.
    fn cut(wait: Option<WaitLimit>, bound: Duration, now: Instant) -> Duration {
        match wait.and_then(|w| w.at) {
            Some(at) => at.saturating_duration_since(now).min(bound),
            None => bound,
        }
    }

    /// Whether the caller's wait has run out (the clock is read only when it has a
    /// deadline).
    fn ran_out(wait: Option<WaitLimit>) -> bool {
        wait.and_then(|w| w.at).is_some_and(|at| Instant::now() >= at)
    }

    /// The caller's `TimedOut`, naming its wait limit (`otherwise` without one).
    fn timed_out<E>(wait: Option<WaitLimit>, otherwise: Duration) -> GetError<E> {
        GetError::Pool(PoolError::TimedOut { waited: wait.map_or(otherwise, |w| w.limit) })
    }
}

/// What `before_acquire` said about a connection about to be handed out.
pub(super) enum Approval {
    /// Approved at once (or no hook is set): hand it out.
    Approved,
    /// Approved after the hook waited: hand it out, stamped with a fresh reading.
    ApprovedAfterWaiting,
    /// Refused: `false`, an error, a panic or running past `connect_timeout`.
    Refused,
    /// The caller's own wait ran out while the hook ran: no verdict.
    CallerOutOfTime,
}

/// What `checkout` does next with the slot it holds.
pub(super) enum Verdict {
    Dial,
    Close(CloseReason),
    Fresh,
    Check,
}

/// The error a `get` reports after `attempts` dials: the last one's, naming the
/// attempts when there were several.
pub(super) fn named<E>(attempts: u32, last: Option<GetError<E>>) -> GetError<E> {
    match last {
        Some(GetError::Connect(last)) if attempts > 1 => GetError::ConnectFailed { attempts, last },
        Some(last) => last,
        None => GetError::Pool(PoolError::Closed),
    }
}

/// A probe dial in progress: if dropped before it finished (its future was dropped),
/// the backoff lets another caller probe.
pub(super) struct AbandonedProbe<'a> {
    pub(super) backoff: &'a Backoff,
    armed: bool,
}

impl Drop for AbandonedProbe<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.backoff.abandon_probe();
        }
    }
}

/// A place in the waiter queue; leaving it (dropped future) passes on anything that
/// was already sent to it.
pub(super) struct Queued<'a, M: Manager> {
    pub(super) shared: &'a Shared<M>,
    pub(super) ticket: Ticket,
    pub(super) rx: oneshot::Receiver<Outcome<M::Connection>>,
    /// Set once the channel resolved: the sender already left the queue.
    resolved: bool,
}

impl<M: Manager> Drop for Queued<'_, M> {
    fn drop(&mut self) {
        if self.resolved {
            return;
        }
        {
            let mut st = self.shared.lock();
            if st.waiters.remove(self.ticket) {
                self.shared.publish(&st);
            }
        }
        self.rx.close();
        match self.rx.try_recv() {
            Ok(Outcome::Granted(Grant::Conn(conn))) => self.shared.put_back(conn, false),
            Ok(Outcome::Granted(Grant::Slot)) => self.shared.release_slot(),
            Ok(Outcome::TimedOut) | Err(_) => {}
        }
    }
}

impl<M: Manager> Pool<M> {
    /// `limit`: the caller's own wait limit, counted from when the lock-free checkout
    /// found nothing ready (the clock is read only then: a get served at once judges
    /// its connection by the pool's [`Clock`](crate::clock::Clock)).
    pub(super) async fn get_inner(
        &self,
        may_queue: bool,
        limit: Option<Duration>,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let found = shared.acquire(may_queue, shared.clock.now(), limit);
        let now = match found {
            Acquire::Fresh(_) => None,
            Acquire::Queued(.., queued_at) => queued_at,
            _ => Some(Instant::now()),
        };
        // A reading taken just now, which the checkout may judge its grant by; a
        // queued caller's reading dates from when it joined the line.
        let read_now = if matches!(found, Acquire::Ready(_)) { now } else { None };
        let wait =
            now.zip(limit).map(|(now, limit)| WaitLimit { at: now.checked_add(limit), limit });
        let timed_out = || {
            shared.counters.timeouts.bump();
            WaitLimit::timed_out(wait, Duration::ZERO)
        };
        let grant = match found {
            Acquire::Fresh(conn) => {
                // Found without queueing or dialling: a zero-wait sample, no clock read.
                if shared.events.is_enabled() {
                    shared.events.record(Timing::AcquireWait, Duration::ZERO);
                    if shared.events.connections_enabled() {
                        let id = conn.id;
                        shared
                            .events
                            .connection(ConnEvent::Checkout { id, waited: Duration::ZERO });
                    }
                }
                return Ok(PooledConn::new(self, conn));
            }
            Acquire::Ready(grant) => Err(grant),
            Acquire::Closed => return Err(PoolError::Closed.into()),
            Acquire::Exhausted => return Err(PoolError::Exhausted.into()),
            Acquire::Queued(ticket, rx, timed_by_pool, _) => {
                let mut queued = Queued { shared, ticket, rx, resolved: false };
                let outcome = match wait.and_then(|w| w.at) {
                    // Timed by a timer of its own (no timekeeper on this runtime).
                    Some(at) if !timed_by_pool => {
                        match tokio::time::timeout_at(at, &mut queued.rx).await {
                            Ok(outcome) => outcome,
                            // Leaving the line passes on anything sent meanwhile.
                            Err(_) => {
                                drop(queued);
                                return Err(timed_out());
                            }
                        }
                    }
                    // Untimed, or the timekeeper sends `TimedOut` at the deadline.
                    _ => (&mut queued.rx).await,
                };
                queued.resolved = true;
                drop(queued);
                match outcome {
                    Ok(Outcome::Granted(grant)) => self.hand_out_if_fresh(grant),
                    Ok(Outcome::TimedOut) => return Err(timed_out()),
                    // The sender was dropped: the pool closed.
                    Err(_) => return Err(PoolError::Closed.into()),
                }
            }
        };
        let conn = match grant {
            Ok(guard) => Ok(guard),
            // Boxed: opening or checking a connection is a network round trip at
            // least, and its future, inline, would make every `get` future (and
            // every task holding one) several times larger.
            Err(grant) => Box::pin(self.checkout(grant, may_queue, wait, read_now)).await,
        };
        if let Err(GetError::Pool(PoolError::TimedOut { .. })) = &conn {
            shared.counters.timeouts.bump();
        }
        if let (Ok(guard), true) = (&conn, shared.events.is_enabled()) {
            // Waiting in line plus opening or checking the connection; successful gets
            // only, so the histogram's count equals the connections handed out.
            let waited = now.map_or(Duration::ZERO, |now| now.elapsed());
            shared.events.record(Timing::AcquireWait, waited);
            shared.events.connection(ConnEvent::Checkout { id: guard.meta().id, waited });
        }
        conn
    }

    /// Hands out a connection passed on by a return when it needs no more work (see
    /// `Shared::ready_at_once`, judged by the pool's clock); anything else comes back
    /// for [`checkout`](Self::checkout).
    fn hand_out_if_fresh(
        &self,
        grant: Grant<M::Connection>,
    ) -> Result<PooledConn<'_, M>, Grant<M::Connection>> {
        let shared = &*self.shared;
        let Grant::Conn(conn) = grant else { return Err(grant) };
        match shared.ready_at_once(conn, shared.clock.now()) {
            Ok(conn) => Ok(PooledConn::new(self, conn)),
            Err(conn) => Err(Grant::Conn(conn)),
        }
    }

    /// Turns a grant into a guard. An idle connection is closed when it expired or
    /// `is_broken` says so (cheap, before any health check); one unused for longer
    /// than the health-check window is checked. A connection that fails either way
    /// is the pool's problem, not the caller's: the caller moves on to another idle
    /// connection (at most `max_health_retries + 1` failed checks), then dials a fresh
    /// one on the slot it holds, with the retries and backoff of `dial_for_caller`.
    ///
    /// `read_now`: a clock reading the caller took just before, for judging the
    /// grant it passes (later rounds read the clock themselves).
    pub(super) async fn checkout(
        &self,
        grant: Grant<M::Connection>,
        may_wait: bool,
        wait: Option<WaitLimit>,
        mut read_now: Option<Instant>,
    ) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shared = &*self.shared;
        let mut pending = Pending::new(shared, grant);
        let mut failed_checks = 0u32;
        loop {
            let now = read_now.take().unwrap_or_else(Instant::now);
            let verdict = match pending.conn.as_mut() {
                None => Verdict::Dial,
                Some(conn) => match shared.expired(conn, now) {
                    Some(reason) => Verdict::Close(reason),
                    None if shared.judged_broken(conn) => Verdict::Close(CloseReason::Broken),
                    None if now.duration_since(conn.last_used)
                        < shared.config.health_check_after =>
                    {
                        Verdict::Fresh
                    }
                    None => Verdict::Check,
                },
            };
            match verdict {
                Verdict::Dial => {
                    if may_wait && pending.adoption.is_none() {
                        pending.adoption = Some(shared.register_dialer());
                    }
                    let dialed =
                        shared.dial_for_caller(may_wait, wait, &mut pending.adoption).await;
                    // A connection added meanwhile (or just as the dial ended) fills
                    // the slot. The pool never opened it, so it is judged like an
                    // idle connection (limits, `is_broken`, health window,
                    // `before_acquire`) on this slot before it is handed out.
                    let conn = match (dialed, pending.settle_adoption()) {
                        (Ok(Dialled::Opened(conn)), None) => conn,
                        (Err(e), None) => return Err(e),
                        (Ok(Dialled::Added(added)), None) | (Err(_), Some(added)) => {
                            pending.conn = Some(added);
                            continue;
                        }
                        (Ok(dialled), Some(added)) => {
                            shared.keep_surplus(dialled.into_conn());
                            pending.conn = Some(added);
                            continue;
                        }
                    };
                    pending.holds_slot = false;
                    if !shared.admit() {
                        shared.close_conn(conn, CloseReason::PoolClosed);
                        shared.release_slot();
                        return Err(PoolError::Closed.into());
                    }
                    return Ok(self.hand_out(conn));
                }
                Verdict::Close(reason) => {
                    if let Some(conn) = pending.conn.take() {
                        shared.close_conn(conn, reason);
                    }
                }
                Verdict::Fresh => {
                    if let Some(guard) =
                        self.approve_and_hand_out(&mut pending, Some(now), wait).await?
                    {
                        return Ok(guard);
                    }
                    failed_checks = failed_checks.saturating_add(1);
                }
                Verdict::Check => {
                    shared.counters.health_checks.bump();
                    // Bounded like a dial, so a black-holed peer cannot hang `get`, and
                    // by the caller's own deadline.
                    let limit = shared.config.connect_timeout;
                    let bound = WaitLimit::cut(wait, limit, now);
                    let checked = match pending.conn.as_mut() {
                        Some(conn) => {
                            let check = unwind::guard_future("check", move || {
                                shared.manager.check(&mut conn.raw)
                            });
                            tokio::time::timeout(bound, check).await
                        }
                        None => continue,
                    };
                    if checked.is_err() && WaitLimit::ran_out(wait) {
                        // The caller's time ran out mid-check: the connection's state
                        // is unknown, so `pending` closes it and gives the slot back.
                        return Err(WaitLimit::timed_out(wait, limit));
                    }
                    let Some(conn) = pending.conn.take() else { continue };
                    match checked {
                        Ok(Ok(Ok(()))) => {
                            pending.conn = Some(conn);
                            if let Some(guard) =
                                self.approve_and_hand_out(&mut pending, None, wait).await?
                            {
                                return Ok(guard);
                            }
                            failed_checks = failed_checks.saturating_add(1);
                            if failed_checks <= shared.config.max_health_retries {
                                if let Grant::Conn(idle) = shared.swap_slot_for_idle() {
                                    pending.conn = Some(idle);
                                }
                            }
                            continue;
                        }
                        Ok(Ok(Err(e))) => {
                            tracing::debug!(error = %e, "poolside-connpool: health check failed; discarding the connection");
                        }
                        // A panicking check was logged where it was caught.
                        Ok(Err(_)) => {}
                        Err(_) => {
                            tracing::debug!(
                                ?limit,
                                "poolside-connpool: health check timed out; discarding the connection"
                            );
                        }
                    }
                    failed_checks = failed_checks.saturating_add(1);
                    shared.counters.health_fails.bump();
                    shared.close_conn(conn, CloseReason::Broken);
                }
            }
            // The connection is gone and its slot is ours: take the next idle one
            // (when nobody waits), else dial on the slot.
            if failed_checks <= shared.config.max_health_retries {
                if let Grant::Conn(idle) = shared.swap_slot_for_idle() {
                    pending.conn = Some(idle);
                }
            }
        }
    }

    /// Hands out the idle connection `pending` holds once `before_acquire` (if set)
    /// approves it; otherwise closes it (`Ok(None)`: the caller keeps the empty
    /// slot). `judged_at`: when the caller judged it fresh, its checkout stamp unless
    /// the hook waited since (then the clock is read again).
    ///
    /// Fails, leaving the connection in `pending` to be closed with the slot given
    /// back, when the caller's wait ran out during the hook (`TimedOut`, as for a
    /// health check cut short). Fails with `Closed`, closing the connection, when
    /// the pool closed while the connection was being checked or approved: like a
    /// connection dialled meanwhile, it is never handed out by a closed pool.
    pub(super) async fn approve_and_hand_out(
        &self,
        pending: &mut Pending<'_, M>,
        judged_at: Option<Instant>,
        wait: Option<WaitLimit>,
    ) -> Result<Option<PooledConn<'_, M>>, GetError<M::Error>> {
        let shared = &*self.shared;
        let approved_at_once = match shared.approve_checkout(pending, wait).await {
            Approval::Approved => true,
            Approval::ApprovedAfterWaiting => false,
            Approval::Refused => {
                if let Some(conn) = pending.conn.take() {
                    shared.close_conn(conn, CloseReason::Hook);
                }
                return Ok(None);
            }
            Approval::CallerOutOfTime => {
                return Err(WaitLimit::timed_out(wait, shared.config.connect_timeout));
            }
        };
        let Some(mut conn) = pending.conn.take() else { return Ok(None) };
        pending.holds_slot = false;
        if !shared.admit() {
            shared.close_conn(conn, CloseReason::PoolClosed);
            shared.release_slot();
            return Err(PoolError::Closed.into());
        }
        conn.last_used = match judged_at {
            Some(at) if approved_at_once => at,
            _ => Instant::now(),
        };
        Ok(Some(self.hand_out(conn)))
    }

    pub(super) fn hand_out(&self, conn: Conn<M::Connection>) -> PooledConn<'_, M> {
        self.shared.counters.acquires.bump();
        PooledConn::new(self, conn)
    }
}
