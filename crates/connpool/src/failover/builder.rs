//! [`FailoverBuilder`]: the breaker's window, thresholds and probe schedule.

use super::breaker::{Failure, SlidingWindow};
use super::error::BuildError;
use super::pool::{FailoverPool, Inner};
use super::state::FailoverState;
use super::stats::Counters;
use crate::{Manager, Pool};
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub(super) struct FailoverConfig {
    pub(super) window: Duration,
    pub(super) thresholds: [Option<u32>; Failure::ALL.len()],
    pub(super) probe_after: Duration,
    pub(super) probe_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) max_attempts: u32,
    pub(super) primary_checkout_timeout: Duration,
}

/// Configures a [`FailoverPool`]; [`build`](Self::build) checks every setting.
///
/// Defaults: a 1 s window; trip after 10 exhaustions, 3 connect errors, 3 failed
/// health checks or 5 failed requests within it; probe the primary 500 ms after a
/// trip, bounded by 1 s; a primary checkout may take 250 ms before the spare serves
/// the caller; [`run`](FailoverPool::run) gives each attempt 5 s and makes at most 3.
///
/// ```
/// use poolside_connpool::{Builder, failover::Failure, failover::FailoverBuilder, Manager, WaitPolicy};
/// use std::time::Duration;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    pub(super) config: FailoverConfig,
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
    /// use poolside_connpool::failover::FailoverBuilder;
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

    /// Builds the pool inside a tokio runtime. Probes run as tasks on the runtime of
    /// the checkout that starts them, so the pool may be used from other runtimes and
    /// may outlive this one.
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
