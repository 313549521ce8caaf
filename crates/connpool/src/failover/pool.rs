//! [`FailoverPool`]: routing, tripping, probing and `run`.

use super::breaker::{Failure, SlidingWindow};
use super::builder::FailoverConfig;
use super::conn::FailoverConn;
use super::error::RunError;
use super::state::{Backend, FailoverState};
use super::stats::{Counters, FailoverStats, bump};
use crate::{GetError, Manager, Pool, PoolError, PooledConn, Status};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use tokio::time::Instant;

pub(super) struct Inner<M: Manager> {
    /// A [`FailoverState`]; read on every checkout, so on its own cache line.
    pub(super) state: CachePadded<AtomicU8>,
    /// Bumped at every trip: a primary connection checked out under an older epoch
    /// belongs to a demoted primary and is closed when it comes back.
    pub(super) epoch: AtomicU64,
    /// When the next probe is due, in nanoseconds since `origin`.
    pub(super) probe_due_nanos: AtomicU64,
    /// Failures while routing to the primary. Its lock also orders state changes.
    pub(super) window: Mutex<SlidingWindow>,
    pub(super) origin: Instant,
    pub(super) counters: Counters,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) primary: Pool<M>,
    pub(super) spare: Pool<M>,
    pub(super) config: FailoverConfig,
}

impl<M: Manager> Inner<M> {
    pub(super) fn state(&self) -> FailoverState {
        FailoverState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(super) fn nanos_since_origin(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos().min(u128::from(u64::MAX)) as u64
    }

    /// When a probe is due if the last one failed (or the breaker tripped) at `now`,
    /// in nanoseconds since the origin (saturating: no `Instant + Duration` overflow).
    pub(super) fn probe_due(&self, now: Instant) -> u64 {
        let after = self.config.probe_after.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.nanos_since_origin(now).saturating_add(after)
    }

    /// Counts a primary failure; opens the breaker when its kind crosses the threshold.
    pub(super) fn record(&self, failure: Failure) {
        let Some(threshold) = self.config.thresholds[failure as usize] else { return };
        let now = Instant::now();
        {
            let mut window = self.window.lock();
            // Failures of connections checked out before a trip say nothing new.
            if self.state() != FailoverState::Primary {
                return;
            }
            let count = window.record(failure, now);
            if count < threshold {
                return;
            }
            window.clear();
            self.probe_due_nanos.store(self.probe_due(now), Ordering::Relaxed);
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.state.store(FailoverState::Spare as u8, Ordering::Release);
            bump(&self.counters.trips);
            tracing::warn!(
                %failure, count, window = ?self.config.window,
                "poolside-connpool: failover breaker tripped, routing to the spare"
            );
        }
        // The idle primary connections belong to a backend we no longer trust.
        // A closed primary has none left to close.
        let _ = self.primary.retain(|_, _| false);
    }

    pub(super) fn finish_probe(&self, success: bool, now: Instant) {
        let mut window = self.window.lock();
        window.clear();
        if success {
            self.state.store(FailoverState::Primary as u8, Ordering::Release);
            tracing::info!("poolside-connpool: failover probe succeeded, back on the primary");
        } else {
            self.probe_due_nanos.store(self.probe_due(now), Ordering::Relaxed);
            self.state.store(FailoverState::Spare as u8, Ordering::Release);
            bump(&self.counters.probe_failures);
            tracing::debug!("poolside-connpool: failover probe failed, staying on the spare");
        }
    }

    /// Opens and checks one fresh primary connection, bounded by the probe timeout.
    pub(super) async fn probe(&self) {
        bump(&self.counters.probes);
        let manager = &self.primary.shared.manager;
        // Manager code may panic: a panicking probe is a failed probe, never a breaker
        // stuck half-open.
        let healthy = tokio::time::timeout(self.config.probe_timeout, async {
            let mut conn = crate::unwind::guard_future("probe connect", || manager.connect())
                .await
                .ok()?
                .ok()?;
            let checked = crate::unwind::guard_future("probe check", || manager.check(&mut conn))
                .await
                .ok()?
                .ok();
            crate::unwind::drop_guarded("dropping a probe connection", conn);
            checked
        })
        .await
        .ok()
        .flatten()
        .is_some();
        self.finish_probe(healthy && !self.primary.is_closed(), Instant::now());
    }
}

/// The half-open probe's task. Should the task be dropped before the probe finished
/// (its runtime shut down), the breaker goes back to [`FailoverState::Spare`] with the
/// probe still due, so the next checkout starts another rather than leaving the pool
/// half-open for good.
struct Probing<M: Manager> {
    inner: Arc<Inner<M>>,
    finished: bool,
}

impl<M: Manager> Probing<M> {
    async fn probe(mut self) {
        self.inner.probe().await;
        self.finished = true;
    }
}

impl<M: Manager> Drop for Probing<M> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.inner.state.compare_exchange(
                FailoverState::Probing as u8,
                FailoverState::Spare as u8,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// A primary pool and a warm spare behind a circuit breaker; cheap to clone.
///
/// [`get`](Self::get) routes to the primary while it is healthy; a checkout failure on
/// the primary is counted and the caller is served from the spare instead.
/// [`run`](Self::run) also retries a failed or timed-out request on the spare, so
/// callers caught in a switch see no failure. Build it with [`FailoverBuilder`](super::FailoverBuilder).
///
/// Register the two pools with a metrics registry on their own (e.g. as
/// `orders-primary` and `orders-spare`); the failover pool's [`Instrumented`](crate::Instrumented)
/// reports only the breaker's state and counters.
///
/// ```
/// use poolside_connpool::{failover::Backend, Builder, failover::FailoverBuilder, Manager};
///
/// struct Named(&'static str);
/// impl Manager for Named {
///     type Connection = &'static str;
///     type Error = std::io::Error;
///     async fn connect(&self) -> Result<&'static str, Self::Error> { Ok(self.0) }
///     async fn check(&self, _: &mut &'static str) -> Result<(), Self::Error> { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let primary = Builder::new().build(Named("primary"))?;
/// let spare = Builder::new().min_idle(1).build(Named("spare"))?;
/// let pool = FailoverBuilder::new().build(primary, spare)?;
///
/// let conn = pool.get().await?;
/// assert_eq!((*conn, conn.backend()), ("primary", Backend::Primary));
/// drop(conn);
///
/// // A request that fails on a connection is retried on the other backend.
/// let answer = pool
///     .run(|conn| {
///         Box::pin(async move {
///             match *conn {
///                 "primary" => Err(std::io::Error::other("primary went away")),
///                 other => Ok(other),
///             }
///         })
///     })
///     .await?;
/// assert_eq!(answer, "spare");
/// # Ok(())
/// # }
/// ```
pub struct FailoverPool<M: Manager> {
    pub(super) inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for FailoverPool<M> {
    fn clone(&self) -> Self {
        FailoverPool { inner: self.inner.clone() }
    }
}

impl<M: Manager> FailoverPool<M> {
    /// Where checkouts go now.
    pub fn state(&self) -> FailoverState {
        self.inner.state()
    }

    /// The breaker's state and counters.
    pub fn stats(&self) -> FailoverStats {
        let c = &self.inner.counters;
        FailoverStats {
            state: self.state(),
            trips: c.trips.load(Ordering::Relaxed),
            probes: c.probes.load(Ordering::Relaxed),
            probe_failures: c.probe_failures.load(Ordering::Relaxed),
            routed_primary: c.routed_primary.sum(),
            routed_spare: c.routed_spare.sum(),
            retries: c.retries.load(Ordering::Relaxed),
            discarded_demoted: c.discarded_demoted.load(Ordering::Relaxed),
        }
    }

    /// The primary pool.
    pub fn primary(&self) -> &Pool<M> {
        &self.inner.primary
    }

    /// The spare pool.
    pub fn spare(&self) -> &Pool<M> {
        &self.inner.spare
    }

    /// Closes both pools. Idempotent.
    pub fn close(&self) {
        self.inner.primary.close();
        self.inner.spare.close();
    }

    /// The backend the next checkout goes to; starts the half-open probe when it is due.
    pub(super) fn route(&self) -> Backend {
        let inner = &*self.inner;
        match inner.state() {
            FailoverState::Primary => Backend::Primary,
            FailoverState::Probing => Backend::Spare,
            FailoverState::Spare => {
                let due = inner.probe_due_nanos.load(Ordering::Relaxed);
                let now = inner.nanos_since_origin(Instant::now());
                if now >= due
                    && inner
                        .state
                        .compare_exchange(
                            FailoverState::Spare as u8,
                            FailoverState::Probing as u8,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    // On the caller's runtime, which is being driven now: the one
                    // the pool was built on may be idle, or shut down.
                    let runtime = tokio::runtime::Handle::try_current()
                        .unwrap_or_else(|_| inner.runtime.clone());
                    let probing = Probing { inner: self.inner.clone(), finished: false };
                    runtime.spawn(probing.probe());
                }
                Backend::Spare
            }
        }
    }

    /// A connection from the backend the breaker picks. A failed checkout on the
    /// primary is counted against it, and the caller is served from the spare.
    ///
    /// Errors are the spare's, or `Closed` when the pools are closed.
    pub async fn get(&self) -> Result<FailoverConn<'_, M>, GetError<M::Error>> {
        self.checkout(self.route()).await
    }

    pub(super) async fn checkout(
        &self,
        backend: Backend,
    ) -> Result<FailoverConn<'_, M>, GetError<M::Error>> {
        let inner = &*self.inner;
        if backend == Backend::Primary {
            let epoch = inner.epoch.load(Ordering::Acquire);
            let budget = inner.config.primary_checkout_timeout;
            let checkout = match tokio::time::timeout(budget, inner.primary.get()).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let failure = timeout_failure(&inner.primary.status());
                    inner.record(failure);
                    bump(&inner.counters.retries);
                    tracing::debug!(%failure, ?budget, "poolside-connpool: primary checkout ran out of time, using the spare");
                    let conn = inner.spare.get().await?;
                    return Ok(self.hand_out(conn, Backend::Spare, 0));
                }
            };
            match checkout {
                Ok(conn) if inner.epoch.load(Ordering::Acquire) == epoch => {
                    return Ok(self.hand_out(conn, Backend::Primary, epoch));
                }
                Ok(mut demoted) => {
                    // The breaker tripped while this caller waited on the primary.
                    demoted.mark_broken();
                    bump(&inner.counters.discarded_demoted);
                    bump(&inner.counters.retries);
                }
                Err(err) if err.is_closed() => return Err(err),
                Err(err) => {
                    let failure = failure_of(&err, &inner.primary.status());
                    inner.record(failure);
                    bump(&inner.counters.retries);
                    tracing::debug!(%failure, error = %err, "poolside-connpool: primary checkout failed, using the spare");
                }
            }
        }
        let conn = inner.spare.get().await?;
        Ok(self.hand_out(conn, Backend::Spare, 0))
    }

    pub(super) fn hand_out<'a>(
        &'a self,
        conn: PooledConn<'a, M>,
        backend: Backend,
        epoch: u64,
    ) -> FailoverConn<'a, M> {
        let counters = &self.inner.counters;
        match backend {
            Backend::Primary => counters.routed_primary.bump(),
            Backend::Spare => counters.routed_spare.bump(),
        }
        FailoverConn { conn: Some(conn), pool: self, backend, epoch, in_request: false }
    }

    /// Runs `request` on a connection, retrying on failure so that callers caught in
    /// a failover see no error.
    ///
    /// Each attempt is bounded by the request timeout. An attempt fails when the
    /// request returns `Err` or times out: the connection is closed, a failure on the
    /// primary is counted against it, and the next attempt goes to the spare. At most
    /// `max_attempts` are made. Keep application-level outcomes (a constraint
    /// violation, a "not found") inside `T`, since an `Err` is taken as a backend
    /// failure and retried; and use `run` for requests that are safe to repeat.
    ///
    /// The request is a closure returning a boxed future (`|conn| Box::pin(async move
    /// { .. })`), the shape of transaction closures in sqlx or diesel-async: a boxed
    /// `Send` future keeps `run` usable inside spawned tasks, which an `async` closure
    /// holding the connection across an `.await` is not on today's compilers ("
    /// implementation of `Send` is not general enough"). One allocation per attempt is
    /// noise next to a network round trip.
    ///
    /// Cancel-safe: dropping the future mid-request closes that connection instead of
    /// returning it in an unknown state.
    pub async fn run<T, E, F>(&self, mut request: F) -> Result<T, RunError<M::Error, E>>
    where
        F: for<'c> FnMut(&'c mut M::Connection) -> RequestFuture<'c, T, E>,
    {
        let config = &self.inner.config;
        let mut next = self.route();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last_try = attempt >= config.max_attempts;
            let mut conn = match self.checkout(next).await {
                Ok(conn) => conn,
                Err(err) if err.is_closed() || last_try => {
                    return Err(RunError::Get { attempts: attempt, last: err });
                }
                Err(_) => {
                    bump(&self.inner.counters.retries);
                    next = self.route();
                    continue;
                }
            };
            conn.in_request = true;
            let outcome = tokio::time::timeout(config.request_timeout, request(&mut conn)).await;
            if let Ok(Ok(value)) = outcome {
                conn.in_request = false;
                return Ok(value);
            }
            let failed_on = conn.backend;
            conn.report_failure();
            if last_try {
                return Err(match outcome {
                    Ok(Err(err)) => RunError::Request { attempts: attempt, last: err },
                    _ => RunError::TimedOut { attempts: attempt, after: config.request_timeout },
                });
            }
            bump(&self.inner.counters.retries);
            next = match failed_on {
                Backend::Primary => Backend::Spare,
                Backend::Spare => self.route(),
            };
        }
    }
}

/// What a [`FailoverPool::run`] request closure returns: a boxed `Send` future borrowing
/// the connection.
///
/// ```
/// use poolside_connpool::failover::RequestFuture;
///
/// fn ping(conn: &mut Vec<u8>) -> RequestFuture<'_, usize, std::io::Error> {
///     Box::pin(async move {
///         conn.extend_from_slice(b"PING");
///         Ok(conn.len())
///     })
/// }
/// # let _ = ping;
/// ```
pub type RequestFuture<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

/// The breaker's name for a checkout error on a pool in `status`.
pub(super) fn failure_of<E>(err: &GetError<E>, status: &Status) -> Failure {
    match err {
        GetError::Pool(PoolError::TimedOut { .. }) => timeout_failure(status),
        GetError::Pool(_) => Failure::Exhaustion,
        GetError::Connect(_)
        | GetError::ConnectFailed { .. }
        | GetError::ConnectTimeout { .. }
        | GetError::Backoff { .. }
        | GetError::Hook { .. }
        | GetError::Panicked { .. } => Failure::ConnectError,
        GetError::HealthCheck { .. } | GetError::HealthCheckTimeout { .. } => Failure::HealthCheck,
    }
}

/// The breaker's name for a checkout that ran out of time on a pool in `status`:
/// exhaustion only when every slot was taken; with slots free the time went to
/// dialling, which is a connect failure.
fn timeout_failure(status: &Status) -> Failure {
    if status.open >= status.max_size { Failure::Exhaustion } else { Failure::ConnectError }
}

impl<M: Manager> fmt::Debug for FailoverPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverPool")
            .field("state", &self.state())
            .field("primary", &self.inner.primary)
            .field("spare", &self.inner.spare)
            .finish()
    }
}
