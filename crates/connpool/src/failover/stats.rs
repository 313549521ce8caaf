//! The breaker's counters, their snapshot [`FailoverStats`] and its metrics.

use super::pool::FailoverPool;
use super::state::FailoverState;
use crate::Manager;
use crate::stats::Sharded;
use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) trips: AtomicU64,
    pub(super) probes: AtomicU64,
    pub(super) probe_failures: AtomicU64,
    /// Bumped on every checkout: per-thread cells, like the pools' own acquire count.
    pub(super) routed_primary: Sharded,
    pub(super) routed_spare: Sharded,
    pub(super) retries: AtomicU64,
    pub(super) discarded_demoted: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Point-in-time breaker state and counters of a [`FailoverPool`].
///
/// ```
/// let stats = poolside_connpool::failover::FailoverStats::default();
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

pub(super) static STATE: MetricDesc =
    MetricDesc::gauge("state", "Where checkouts go: 0 primary, 1 spare, 2 probing the primary.");
pub(super) static TRIPS: MetricDesc = MetricDesc::counter("trips", "Times the breaker opened.");
pub(super) static PROBES: MetricDesc =
    MetricDesc::counter("probes", "Probes of the primary started.");
pub(super) static PROBE_FAILURES: MetricDesc =
    MetricDesc::counter("probe_failures", "Probes that failed.");
pub(super) static ROUTED_PRIMARY: MetricDesc =
    MetricDesc::counter("routed_primary", "Connections handed out from the primary.");
pub(super) static ROUTED_SPARE: MetricDesc =
    MetricDesc::counter("routed_spare", "Connections handed out from the spare.");
pub(super) static RETRIES: MetricDesc =
    MetricDesc::counter("retries", "Checkouts and requests tried again after a failure.");
pub(super) static DISCARDED_DEMOTED: MetricDesc = MetricDesc::counter(
    "discarded_demoted",
    "Primary connections closed on return because a trip demoted the primary.",
);

pub(super) static CATALOGUE: [&MetricDesc; 8] = [
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
    pub(super) fn visit_breaker(&self, visitor: &mut dyn MetricVisitor) {
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
