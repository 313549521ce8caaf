//! Metrics: the async pool's catalogue and per-thread counter, shared (same names and
//! kinds, so `poolside-metrics` exports a blocking pool exactly like an async one), and
//! the `Instrumented` impl.

use super::manager::Manager;
use super::pool::Pool;
use crate::readings::{self, Counts};
use crate::stats::CATALOGUE;
use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
use std::ops::Deref;

/// The pool's counters (levels live in the locked state): the async pool's, plus
/// `exhaustions`, which the async pool keeps with its lock-free gauges.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    common: crate::stats::Counters,
    pub(crate) exhaustions: crate::stats::Count,
}

impl Deref for Counters {
    type Target = crate::stats::Counters;
    fn deref(&self) -> &crate::stats::Counters {
        &self.common
    }
}

/// Reports the pool's gauges and counters under the async pool's names and kind
/// (`connpool`).
///
/// ```
/// use poolside_connpool::blocking::{Manager, Pool};
/// use poolside_core::Snapshot;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let pool = Pool::new(Noop);
/// drop(pool.get().unwrap());
/// let snap = Snapshot::of(&pool);
/// assert_eq!(snap.kind, "connpool");
/// assert_eq!(snap.value("dials"), Some(1));
/// assert_eq!(snap.value("releases"), Some(1));
/// assert_eq!(snap.value("idle"), Some(1));
/// ```
impl<M: Manager> Instrumented for Pool<M> {
    fn kind(&self) -> &'static str {
        "connpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &CATALOGUE
    }

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        let c = &self.shared.counters;
        let counts = Counts {
            dials: c.dials.get(),
            dial_errors: c.dial_errors.get(),
            acquires: c.acquires.sum(),
            releases: c.releases.sum(),
            exhaustions: c.exhaustions.get(),
            timeouts: c.timeouts.get(),
            health_checks: c.health_checks.get(),
            health_fails: c.health_fails.get(),
            closed_lifetime: c.closed_lifetime.get(),
            closed_idle: c.closed_idle.get(),
            closed_broken: c.closed_broken.get(),
        };
        readings::visit(&self.status(), &counts, visitor);
    }
}
