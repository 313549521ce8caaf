//! `FailoverPool`: a primary pool and a warm spare behind a circuit breaker.
//!
//! While the breaker is closed every checkout goes to the primary. Failures on the
//! primary (exhaustion, connect errors, failed health checks, failed requests) are
//! counted per kind over a sliding window; when one kind reaches its threshold the
//! breaker opens: traffic goes to the spare, idle primary connections are closed, and
//! primary connections still checked out are closed when they come back. After
//! `probe_after` one background probe opens and checks a fresh primary connection
//! (half-open); success closes the breaker, failure keeps it open for another
//! `probe_after`.

use crate::breaker::{Failure, SlidingWindow};
use crate::stats::Sharded;
use crate::{BuildError, GetError, Manager, Pool, PooledConn, RunError};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Which pool a connection came from.
///
/// ```
/// assert_eq!(poolside_connpool::Backend::Spare.to_string(), "spare");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The preferred pool.
    Primary,
    /// The warm standby.
    Spare,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Primary => "primary",
            Backend::Spare => "spare",
        })
    }
}

/// Where a [`FailoverPool`] sends checkouts now: the circuit breaker's state.
///
/// ```
/// use poolside_connpool::FailoverState;
/// assert_eq!(FailoverState::Probing.to_string(), "probing");
/// assert_eq!(FailoverState::Primary as u64, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailoverState {
    /// Breaker closed: checkouts go to the primary.
    #[default]
    Primary = 0,
    /// Breaker open: checkouts go to the spare until the next probe is due.
    Spare = 1,
    /// Half-open: a probe is testing the primary; checkouts still go to the spare.
    Probing = 2,
}

impl FailoverState {
    fn from_u8(raw: u8) -> Self {
        match raw {
            0 => FailoverState::Primary,
            1 => FailoverState::Spare,
            _ => FailoverState::Probing,
        }
    }
}

impl fmt::Display for FailoverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverState::Primary => "primary",
            FailoverState::Spare => "spare",
            FailoverState::Probing => "probing",
        })
    }
}

#[derive(Debug, Clone)]
struct FailoverConfig {
    window: Duration,
    thresholds: [Option<u32>; Failure::ALL.len()],
    probe_after: Duration,
    probe_timeout: Duration,
    request_timeout: Duration,
    max_attempts: u32,
    primary_checkout_timeout: Duration,
}

/// Configures a [`FailoverPool`]; [`build`](Self::build) checks every setting.
///
/// Defaults: a 1 s window; trip after 10 exhaustions, 3 connect errors, 3 failed
/// health checks or 5 failed requests within it; probe the primary 500 ms after a
/// trip, bounded by 1 s; a primary checkout may take 250 ms before the spare serves
/// the caller; [`run`](FailoverPool::run) gives each attempt 5 s and makes at most 3.
///
/// ```
/// use poolside_connpool::{Builder, Failure, FailoverBuilder, Manager, WaitPolicy};
/// use std::time::Duration;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), poolside_connpool::BuildError> {
/// let primary = Builder::new().wait(WaitPolicy::Timeout(Duration::from_millis(100))).build(Noop)?;
/// let spare = Builder::new().min_idle(2).build(Noop)?;
/// let pool = FailoverBuilder::new()
///     .window(Duration::from_secs(2))
///     .trip_after(Failure::Request, 3)
///     .never_trip_on(Failure::Exhaustion)
///     .probe_after(Duration::from_millis(250))
///     .request_timeout(Duration::from_millis(500))
///     .build(primary, spare)?;
/// # drop(pool);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FailoverBuilder {
    config: FailoverConfig,
}

impl Default for FailoverBuilder {
    fn default() -> Self {
        FailoverBuilder {
            config: FailoverConfig {
                window: Duration::from_secs(1),
                thresholds: [Some(10), Some(3), Some(3), Some(5)],
                probe_after: Duration::from_millis(500),
                probe_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(5),
                max_attempts: 3,
                primary_checkout_timeout: Duration::from_millis(250),
            },
        }
    }
}

impl FailoverBuilder {
    /// The default settings (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// How far back the breaker counts failures.
    pub fn window(mut self, window: Duration) -> Self {
        self.config.window = window;
        self
    }

    /// Trip when `count` failures of this kind fall within the window (`count` ≥ 1).
    pub fn trip_after(mut self, failure: Failure, count: u32) -> Self {
        self.config.thresholds[failure as usize] = Some(count);
        self
    }

    /// Never trip on this kind of failure (it is still retried on the spare).
    pub fn never_trip_on(mut self, failure: Failure) -> Self {
        self.config.thresholds[failure as usize] = None;
        self
    }

    /// How long after a trip (or a failed probe) the primary is probed again.
    pub fn probe_after(mut self, delay: Duration) -> Self {
        self.config.probe_after = delay;
        self
    }

    /// The bound on one probe: opening a primary connection and checking it.
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.config.probe_timeout = timeout;
        self
    }

    /// The bound on one attempt of a [`run`](FailoverPool::run) request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// The most time one checkout may spend on the primary (waiting in its line,
    /// dialling, health-checking) before it counts as a primary failure and the caller
    /// is served by the spare. This is what bounds a failover when the primary
    /// black-holes new connections or is exhausted, whatever the primary pool's own
    /// wait policy and connect timeout say. A timeout counts as an exhaustion when
    /// every primary slot was taken, else as a connect error. Default: 250 ms, so
    /// with the default thresholds the breaker trips within 1 s of sequential
    /// callers.
    ///
    /// ```
    /// use poolside_connpool::FailoverBuilder;
    /// use std::time::Duration;
    /// let builder = FailoverBuilder::new().primary_checkout_timeout(Duration::from_millis(100));
    /// # drop(builder);
    /// ```
    pub fn primary_checkout_timeout(mut self, timeout: Duration) -> Self {
        self.config.primary_checkout_timeout = timeout;
        self
    }

    /// Most attempts [`run`](FailoverPool::run) makes per request (≥ 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }

    /// Builds the pool inside a tokio runtime (probes run as tasks on it).
    ///
    /// Fails when a duration is zero, a threshold or `max_attempts` is zero, the spare
    /// has `min_idle` 0 ([`BuildError::ColdSpare`]), both are the same pool, or no
    /// runtime is current.
    pub fn build<M: Manager>(
        self,
        primary: Pool<M>,
        spare: Pool<M>,
    ) -> Result<FailoverPool<M>, BuildError> {
        let config = self.config;
        for (setting, value) in [
            ("window", config.window),
            ("probe_after", config.probe_after),
            ("probe_timeout", config.probe_timeout),
            ("request_timeout", config.request_timeout),
            ("primary_checkout_timeout", config.primary_checkout_timeout),
        ] {
            if value.is_zero() {
                return Err(BuildError::ZeroDuration { setting });
            }
        }
        if let Some(failure) =
            Failure::ALL.into_iter().find(|f| config.thresholds[*f as usize] == Some(0))
        {
            return Err(BuildError::ZeroThreshold { failure });
        }
        if config.max_attempts == 0 {
            return Err(BuildError::ZeroAttempts);
        }
        if Arc::ptr_eq(&primary.shared, &spare.shared) {
            return Err(BuildError::SpareIsPrimary);
        }
        if spare.shared.config.min_idle == 0 {
            return Err(BuildError::ColdSpare);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let origin = Instant::now();
        Ok(FailoverPool {
            inner: Arc::new(Inner {
                state: CachePadded::new(AtomicU8::new(FailoverState::Primary as u8)),
                epoch: AtomicU64::new(0),
                probe_due_nanos: AtomicU64::new(0),
                window: Mutex::new(SlidingWindow::new(config.window, origin)),
                origin,
                counters: Counters::default(),
                runtime,
                primary,
                spare,
                config,
            }),
        })
    }
}

#[derive(Debug, Default)]
struct Counters {
    trips: AtomicU64,
    probes: AtomicU64,
    probe_failures: AtomicU64,
    /// Bumped on every checkout: per-thread cells, like the pools' own acquire count.
    routed_primary: Sharded,
    routed_spare: Sharded,
    retries: AtomicU64,
    discarded_demoted: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct Inner<M: Manager> {
    /// A [`FailoverState`]; read on every checkout, so on its own cache line.
    state: CachePadded<AtomicU8>,
    /// Bumped at every trip: a primary connection checked out under an older epoch
    /// belongs to a demoted primary and is closed when it comes back.
    epoch: AtomicU64,
    /// When the next probe is due, in nanoseconds since `origin`.
    probe_due_nanos: AtomicU64,
    /// Failures while routing to the primary. Its lock also orders state changes.
    window: Mutex<SlidingWindow>,
    origin: Instant,
    counters: Counters,
    runtime: tokio::runtime::Handle,
    primary: Pool<M>,
    spare: Pool<M>,
    config: FailoverConfig,
}

impl<M: Manager> Inner<M> {
    fn state(&self) -> FailoverState {
        FailoverState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn nanos_since_origin(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos().min(u128::from(u64::MAX)) as u64
    }

    /// When a probe is due if the last one failed (or the breaker tripped) at `now`,
    /// in nanoseconds since the origin (saturating: no `Instant + Duration` overflow).
    fn probe_due(&self, now: Instant) -> u64 {
        let after = self.config.probe_after.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.nanos_since_origin(now).saturating_add(after)
    }

    /// Counts a primary failure; opens the breaker when its kind crosses the threshold.
    fn record(&self, failure: Failure) {
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

    fn finish_probe(&self, success: bool, now: Instant) {
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
    async fn probe(&self) {
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

/// A primary pool and a warm spare behind a circuit breaker; cheap to clone.
///
/// [`get`](Self::get) routes to the primary while it is healthy; a checkout failure on
/// the primary is counted and the caller is served from the spare instead.
/// [`run`](Self::run) also retries a failed or timed-out request on the spare, so
/// callers caught in a switch see no failure. Build it with [`FailoverBuilder`].
///
/// Register the two pools with a metrics registry on their own (e.g. as
/// `orders-primary` and `orders-spare`); the failover pool's [`Instrumented`]
/// reports only the breaker's state and counters.
///
/// ```
/// use poolside_connpool::{Backend, Builder, FailoverBuilder, Manager};
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
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for FailoverPool<M> {
    fn clone(&self) -> Self {
        FailoverPool { inner: self.inner.clone() }
    }
}

/// Point-in-time breaker state and counters of a [`FailoverPool`].
///
/// ```
/// let stats = poolside_connpool::FailoverStats::default();
/// assert_eq!(stats.trips, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailoverStats {
    /// Where checkouts go now.
    pub state: FailoverState,
    /// Times the breaker opened.
    pub trips: u64,
    /// Probes of the primary started.
    pub probes: u64,
    /// Probes that failed.
    pub probe_failures: u64,
    /// Connections handed out from the primary.
    pub routed_primary: u64,
    /// Connections handed out from the spare.
    pub routed_spare: u64,
    /// Checkouts and requests tried again after a failure.
    pub retries: u64,
    /// Primary connections closed on return because a trip demoted the primary.
    pub discarded_demoted: u64,
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
    fn route(&self) -> Backend {
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
                    let probing = self.inner.clone();
                    inner.runtime.spawn(async move { probing.probe().await });
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

    async fn checkout(&self, backend: Backend) -> Result<FailoverConn<'_, M>, GetError<M::Error>> {
        let inner = &*self.inner;
        if backend == Backend::Primary {
            let epoch = inner.epoch.load(Ordering::Acquire);
            let budget = inner.config.primary_checkout_timeout;
            let checkout = match tokio::time::timeout(budget, inner.primary.get()).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let status = inner.primary.status();
                    let failure = if status.open >= status.max_size {
                        Failure::Exhaustion
                    } else {
                        Failure::ConnectError
                    };
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
                    let failure = failure_of(&err);
                    inner.record(failure);
                    bump(&inner.counters.retries);
                    tracing::debug!(%failure, error = %err, "poolside-connpool: primary checkout failed, using the spare");
                }
            }
        }
        let conn = inner.spare.get().await?;
        Ok(self.hand_out(conn, Backend::Spare, 0))
    }

    fn hand_out<'a>(
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
/// use poolside_connpool::RequestFuture;
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

/// The breaker's name for a checkout error.
fn failure_of<E>(err: &GetError<E>) -> Failure {
    match err {
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

/// A connection checked out of a [`FailoverPool`]: derefs to the connection and goes
/// back to its pool on drop, unless its primary was demoted meanwhile (then it is
/// closed).
///
/// ```
/// # use poolside_connpool::{Backend, Builder, FailoverBuilder, Manager};
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = u8;
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<u8, Self::Error> { Ok(1) }
/// #     async fn check(&self, _: &mut u8) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let primary = Builder::new().build(Noop)?;
/// # let spare = Builder::new().min_idle(1).build(Noop)?;
/// let pool = FailoverBuilder::new().build(primary, spare)?;
/// let conn = pool.get().await?;
/// assert_eq!(conn.backend(), Backend::Primary);
/// conn.report_failure(); // closed, and counted against the primary
/// assert_eq!(pool.primary().status().open, 0);
/// # Ok(())
/// # }
/// ```
pub struct FailoverConn<'a, M: Manager> {
    conn: Option<PooledConn<'a, M>>,
    pool: &'a FailoverPool<M>,
    backend: Backend,
    epoch: u64,
    /// Set while `run` awaits a request on it: dropped then, the connection is closed.
    in_request: bool,
}

impl<'a, M: Manager> FailoverConn<'a, M> {
    /// Which pool this connection came from.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Tells the pool a request on this connection failed: the connection is closed,
    /// and a failure on the primary counts towards tripping the breaker.
    pub fn report_failure(mut self) {
        if self.backend == Backend::Primary {
            self.pool.inner.record(Failure::Request);
            // Closed below as a failure, not counted again as demoted if it tripped.
            self.epoch = self.pool.inner.epoch.load(Ordering::Acquire);
        }
        self.conn_mut().mark_broken();
    }

    /// Closes the connection on return instead of reusing it, without counting a
    /// failure.
    pub fn mark_broken(&mut self) {
        self.conn_mut().mark_broken();
    }

    /// Takes the connection out of its pool for good.
    pub fn detach(mut self) -> M::Connection {
        self.conn.take().expect("present until drop or detach").detach()
    }

    fn conn_mut(&mut self) -> &mut PooledConn<'a, M> {
        self.conn.as_mut().expect("present until drop or detach")
    }
}

impl<M: Manager> Deref for FailoverConn<'_, M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        self.conn.as_deref().expect("present until drop or detach")
    }
}

impl<M: Manager> DerefMut for FailoverConn<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        self.conn.as_deref_mut().expect("present until drop or detach")
    }
}

impl<M: Manager> Drop for FailoverConn<'_, M> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.as_mut() else { return };
        if self.in_request {
            conn.mark_broken();
        }
        let inner = &self.pool.inner;
        if self.backend == Backend::Primary && inner.epoch.load(Ordering::Acquire) != self.epoch {
            conn.mark_broken();
            bump(&inner.counters.discarded_demoted);
        }
    }
}

impl<M: Manager> fmt::Debug for FailoverConn<'_, M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverConn")
            .field("backend", &self.backend)
            .field("conn", &self.conn.as_deref())
            .finish()
    }
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

static STATE: MetricDesc =
    MetricDesc::gauge("state", "Where checkouts go: 0 primary, 1 spare, 2 probing the primary.");
static TRIPS: MetricDesc = MetricDesc::counter("trips", "Times the breaker opened.");
static PROBES: MetricDesc = MetricDesc::counter("probes", "Probes of the primary started.");
static PROBE_FAILURES: MetricDesc = MetricDesc::counter("probe_failures", "Probes that failed.");
static ROUTED_PRIMARY: MetricDesc =
    MetricDesc::counter("routed_primary", "Connections handed out from the primary.");
static ROUTED_SPARE: MetricDesc =
    MetricDesc::counter("routed_spare", "Connections handed out from the spare.");
static RETRIES: MetricDesc =
    MetricDesc::counter("retries", "Checkouts and requests tried again after a failure.");
static DISCARDED_DEMOTED: MetricDesc = MetricDesc::counter(
    "discarded_demoted",
    "Primary connections closed on return because a trip demoted the primary.",
);

static CATALOGUE: [&MetricDesc; 8] = [
    &STATE,
    &TRIPS,
    &PROBES,
    &PROBE_FAILURES,
    &ROUTED_PRIMARY,
    &ROUTED_SPARE,
    &RETRIES,
    &DISCARDED_DEMOTED,
];

impl<M: Manager> Instrumented for FailoverPool<M> {
    fn kind(&self) -> &'static str {
        "connpool_failover"
    }

    /// The breaker's metrics, then every connection pool metric (reported once per
    /// backend with a `backend` label).
    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        static WITH_BACKENDS: std::sync::OnceLock<Vec<&'static MetricDesc>> =
            std::sync::OnceLock::new();
        WITH_BACKENDS.get_or_init(|| {
            CATALOGUE.iter().chain(self.inner.primary.catalogue()).copied().collect()
        })
    }

    /// The breaker's state and counters, then the primary's and the spare's pool
    /// metrics labelled `backend="primary"` / `backend="spare"`.
    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        self.visit_breaker(visitor);
        for (backend, pool) in [("primary", &self.inner.primary), ("spare", &self.inner.spare)] {
            pool.visit_metrics(&mut |m: poolside_core::Metric<'_>| {
                visitor.visit(poolside_core::Metric { labels: &[("backend", backend)], ..m })
            });
        }
    }
}

impl<M: Manager> FailoverPool<M> {
    fn visit_breaker(&self, visitor: &mut dyn MetricVisitor) {
        let s = self.stats();
        let values: [(&'static MetricDesc, u64); 8] = [
            (&STATE, s.state as u64),
            (&TRIPS, s.trips),
            (&PROBES, s.probes),
            (&PROBE_FAILURES, s.probe_failures),
            (&ROUTED_PRIMARY, s.routed_primary),
            (&ROUTED_SPARE, s.routed_spare),
            (&RETRIES, s.retries),
            (&DISCARDED_DEMOTED, s.discarded_demoted),
        ];
        visitor.visit_all(&[], &values);
    }
}
