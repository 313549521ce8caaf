//! Describing a pool's gauges and counters to a visitor, without allocating.

use crate::Timing;
use std::fmt;

/// Whether a metric is a point-in-time level or a monotonically growing count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A level that goes up and down (idle connections, queued jobs).
    Gauge,
    /// A count that only grows for the life of the pool (hits, dials, panics).
    Counter,
}

impl MetricKind {
    /// The lowercase name used by exposition formats: `"gauge"` or `"counter"`.
    ///
    /// ```
    /// assert_eq!(poolside_core::MetricKind::Counter.as_str(), "counter");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The static description of one metric: stable snake_case name, help text, kind.
///
/// Pools declare these as `static`s so a visitor receives `&'static MetricDesc` and
/// never copies strings.
///
/// ```
/// use poolside_core::{MetricDesc, MetricKind};
///
/// static HITS: MetricDesc = MetricDesc::counter("hits", "Gets served from the pool.");
/// assert_eq!(HITS.kind, MetricKind::Counter);
/// assert_eq!(HITS.name, "hits");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricDesc {
    /// Stable snake_case name, unique within one pool kind (`"in_use"`).
    pub name: &'static str,
    /// One sentence for humans; exported as the Prometheus `# HELP` text.
    pub help: &'static str,
    /// Gauge or counter.
    pub kind: MetricKind,
}

impl MetricDesc {
    /// Describes a gauge.
    ///
    /// ```
    /// static IDLE: poolside_core::MetricDesc =
    ///     poolside_core::MetricDesc::gauge("idle", "Connections waiting in the pool.");
    /// # assert_eq!(IDLE.name, "idle");
    /// ```
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        MetricDesc { name, help, kind: MetricKind::Gauge }
    }

    /// Describes a counter.
    ///
    /// ```
    /// static DIALS: poolside_core::MetricDesc =
    ///     poolside_core::MetricDesc::counter("dials", "Connections opened.");
    /// # assert_eq!(DIALS.name, "dials");
    /// ```
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        MetricDesc { name, help, kind: MetricKind::Counter }
    }
}

/// A label on one reported value: a static key and a borrowed value, e.g.
/// `("class", "small")`.
pub type Label<'a> = (&'static str, &'a str);

/// One value reported by a pool during a visit.
#[derive(Debug, Clone, Copy)]
pub struct Metric<'a> {
    /// What is being reported.
    pub desc: &'static MetricDesc,
    /// Extra labels distinguishing several values of the same metric (a size class,
    /// a shard); empty for most metrics.
    pub labels: &'a [Label<'a>],
    /// The current value.
    pub value: u64,
}

/// Receives the metrics a pool reports in [`Instrumented::visit_metrics`].
///
/// Any `FnMut(Metric<'_>)` closure is a visitor.
///
/// ```
/// use poolside_core::{Metric, MetricVisitor};
///
/// let mut total = 0;
/// let mut visitor = |m: Metric<'_>| total += m.value;
/// # let _ = &mut visitor as &mut dyn MetricVisitor;
/// ```
pub trait MetricVisitor {
    /// Called once per reported value.
    fn visit(&mut self, metric: Metric<'_>);

    /// Reports several values that share `labels`, in order: what most pools'
    /// [`Instrumented::visit_metrics`] amounts to.
    ///
    /// ```
    /// use poolside_core::{Metric, MetricDesc, MetricVisitor};
    ///
    /// static OPEN: MetricDesc = MetricDesc::gauge("open", "Connections open.");
    /// static DIALS: MetricDesc = MetricDesc::counter("dials", "Connections opened.");
    ///
    /// let mut seen = Vec::new();
    /// let mut visitor = |m: Metric<'_>| seen.push((m.desc.name, m.value));
    /// visitor.visit_all(&[], &[(&OPEN, 3), (&DIALS, 7)]);
    /// assert_eq!(seen, [("open", 3), ("dials", 7)]);
    /// ```
    fn visit_all(&mut self, labels: &[Label<'_>], values: &[(&'static MetricDesc, u64)]) {
        for &(desc, value) in values {
            self.visit(Metric { desc, labels, value });
        }
    }
}

impl<F: FnMut(Metric<'_>)> MetricVisitor for F {
    #[inline]
    fn visit(&mut self, metric: Metric<'_>) {
        self(metric)
    }
}

/// A pool that can report its gauges and counters.
///
/// Reporting must not allocate and must not take a lock that the pool's hot path
/// takes: it reads atomics (or per-thread counters summed on demand), so a collector
/// can visit a busy pool as often as it likes.
///
/// ```
/// use poolside_core::{Instrumented, MetricDesc, MetricVisitor, Metric, Snapshot};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// static HITS: MetricDesc = MetricDesc::counter("hits", "Gets served from the pool.");
/// static CATALOGUE: [&MetricDesc; 1] = [&HITS];
///
/// struct Tiny { hits: AtomicU64 }
///
/// impl Instrumented for Tiny {
///     fn kind(&self) -> &'static str { "tiny" }
///     fn catalogue(&self) -> &'static [&'static MetricDesc] { &CATALOGUE }
///     fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
///         v.visit(Metric { desc: &HITS, labels: &[], value: self.hits.load(Ordering::Relaxed) });
///     }
/// }
///
/// let pool = Tiny { hits: AtomicU64::new(3) };
/// assert_eq!(Snapshot::of(&pool).value("hits"), Some(3));
/// ```
pub trait Instrumented {
    /// The pool kind, used as a metric name prefix and a label: `"bufpool"`,
    /// `"workerpool"`, `"connpool"`.
    fn kind(&self) -> &'static str;

    /// Every metric this pool may report, so exporters can describe them up front.
    fn catalogue(&self) -> &'static [&'static MetricDesc];

    /// Reports every current value to `visitor`.
    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor);

    /// The timings this pool reports through its [`Events`](crate::Events) hook, so
    /// exporters can declare their histograms (and documentation can list them) before
    /// the first event. Empty by default: a pool that records no timings need not
    /// override it.
    ///
    /// ```
    /// use poolside_core::{Instrumented, MetricDesc, MetricVisitor, Timing};
    ///
    /// struct Queue;
    /// impl Instrumented for Queue {
    ///     fn kind(&self) -> &'static str { "queue" }
    ///     fn catalogue(&self) -> &'static [&'static MetricDesc] { &[] }
    ///     fn visit_metrics(&self, _: &mut dyn MetricVisitor) {}
    ///     fn timings(&self) -> &'static [Timing] { &[Timing::QueueWait] }
    /// }
    ///
    /// assert_eq!(Queue.timings(), [Timing::QueueWait]);
    /// ```
    fn timings(&self) -> &'static [Timing] {
        &[]
    }
}

impl<T: Instrumented + ?Sized> Instrumented for &T {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        (**self).catalogue()
    }
    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        (**self).visit_metrics(visitor)
    }
    fn timings(&self) -> &'static [Timing] {
        (**self).timings()
    }
}

impl<T: Instrumented + ?Sized> Instrumented for std::sync::Arc<T> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        (**self).catalogue()
    }
    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        (**self).visit_metrics(visitor)
    }
    fn timings(&self) -> &'static [Timing] {
        (**self).timings()
    }
}

/// An owned copy of everything a pool reported in one visit.
///
/// Allocates, so it is meant for tests, debugging and JSON snapshots, not for a
/// collector that runs every second.
///
/// ```
/// # use poolside_core::{Instrumented, MetricDesc, MetricVisitor, Metric, Snapshot};
/// # static RETAINED: MetricDesc = MetricDesc::gauge("retained", "Objects kept.");
/// # static CATALOGUE: [&MetricDesc; 1] = [&RETAINED];
/// # struct Tiered;
/// # impl Instrumented for Tiered {
/// #     fn kind(&self) -> &'static str { "tiered" }
/// #     fn catalogue(&self) -> &'static [&'static MetricDesc] { &CATALOGUE }
/// #     fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
/// #         v.visit(Metric { desc: &RETAINED, labels: &[("class", "small")], value: 4 });
/// #         v.visit(Metric { desc: &RETAINED, labels: &[("class", "large")], value: 1 });
/// #     }
/// # }
/// let snap = Snapshot::of(&Tiered);
/// assert_eq!(snap.labeled("retained", &[("class", "small")]), Some(4));
/// assert_eq!(snap.sum("retained"), 5);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The pool kind that produced the snapshot.
    pub kind: &'static str,
    /// Every reported value, in the order the pool reported them.
    pub entries: Vec<SnapshotEntry>,
}

/// One value of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The metric's description.
    pub desc: &'static MetricDesc,
    /// Its labels, owned.
    pub labels: Vec<(&'static str, String)>,
    /// The value at visit time.
    pub value: u64,
}

impl Snapshot {
    /// Visits `pool` once and keeps what it reported.
    pub fn of<P: Instrumented + ?Sized>(pool: &P) -> Self {
        let mut entries = Vec::new();
        pool.visit_metrics(&mut |m: Metric<'_>| {
            entries.push(SnapshotEntry {
                desc: m.desc,
                labels: m.labels.iter().map(|&(k, v)| (k, v.to_owned())).collect(),
                value: m.value,
            })
        });
        Snapshot { kind: pool.kind(), entries }
    }

    /// The value of the unlabeled metric `name`, if the pool reported one.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.labeled(name, &[])
    }

    /// The value of metric `name` with exactly these labels (in any order).
    pub fn labeled(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| {
                e.desc.name == name
                    && e.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| e.labels.iter().any(|(ek, ev)| ek == k && ev == v))
            })
            .map(|e| e.value)
    }

    /// The sum of every value reported under `name`, whatever its labels.
    pub fn sum(&self, name: &str) -> u64 {
        self.entries.iter().filter(|e| e.desc.name == name).map(|e| e.value).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    static A: MetricDesc = MetricDesc::gauge("a", "Level a.");
    static B: MetricDesc = MetricDesc::counter("b", "Count b.");
    static CATALOGUE: [&MetricDesc; 2] = [&A, &B];

    struct Fixture;

    impl Instrumented for Fixture {
        fn kind(&self) -> &'static str {
            "fixture"
        }
        fn catalogue(&self) -> &'static [&'static MetricDesc] {
            &CATALOGUE
        }
        fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
            v.visit(Metric { desc: &A, labels: &[], value: 1 });
            v.visit(Metric { desc: &B, labels: &[("shard", "0"), ("x", "y")], value: 2 });
            v.visit(Metric { desc: &B, labels: &[("shard", "1"), ("x", "y")], value: 5 });
        }
    }

    #[test]
    fn snapshot_finds_values_by_name_and_labels() {
        let snap = Snapshot::of(&Fixture);
        assert_eq!(snap.kind, "fixture");
        assert_eq!(snap.value("a"), Some(1));
        assert_eq!(snap.value("b"), None, "b is only reported with labels");
        assert_eq!(snap.labeled("b", &[("x", "y"), ("shard", "1")]), Some(5));
        assert_eq!(snap.labeled("b", &[("shard", "1")]), None, "labels must match exactly");
        assert_eq!(snap.sum("b"), 7);
        assert_eq!(snap.sum("missing"), 0);
    }

    #[test]
    fn references_and_arcs_forward() {
        let arc: Arc<dyn Instrumented> = Arc::new(Fixture);
        assert_eq!(Snapshot::of(&arc), Snapshot::of(&Fixture));
        let by_ref: &dyn Instrumented = &&Fixture;
        assert_eq!(by_ref.catalogue().len(), 2);
        assert_eq!(arc.kind(), "fixture");
    }

    #[test]
    fn timings_default_to_none_and_forward() {
        assert!(Fixture.timings().is_empty());
        struct Timed;
        impl Instrumented for Timed {
            fn kind(&self) -> &'static str {
                "timed"
            }
            fn catalogue(&self) -> &'static [&'static MetricDesc] {
                &[]
            }
            fn visit_metrics(&self, _: &mut dyn MetricVisitor) {}
            fn timings(&self) -> &'static [Timing] {
                &[Timing::Dial]
            }
        }
        let arc: Arc<dyn Instrumented> = Arc::new(Timed);
        assert_eq!(arc.timings(), [Timing::Dial]);
        let by_ref: &dyn Instrumented = &&Timed;
        assert_eq!(by_ref.timings(), [Timing::Dial]);
    }

    #[test]
    fn kinds_render_lowercase() {
        assert_eq!(MetricKind::Gauge.to_string(), "gauge");
        assert_eq!(B.kind.as_str(), "counter");
    }
}
