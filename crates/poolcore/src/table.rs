//! Each metric declared once: a description together with where its value comes from.

use crate::{Label, Metric, MetricDesc, MetricVisitor};
use std::fmt;

/// One metric of a pool, declared once: its [`MetricDesc`] and how to read its value
/// from the pool's stats snapshot `S`.
///
/// A pool keeps its metrics in one `static` table of these. Both halves of
/// [`Instrumented`](crate::Instrumented) come from that table — the catalogue through
/// [`MetricDef::catalogue`] and the visit through [`MetricDef::visit_table`] — so they
/// cannot disagree in order or content, and adding a metric is one line.
///
/// ```
/// use poolside_core::{Instrumented, MetricDef, MetricDesc, MetricVisitor, Snapshot};
///
/// #[derive(Default)]
/// struct Stats { idle: u64, dials: u64 }
///
/// static METRICS: [MetricDef<Stats>; 2] = [
///     MetricDef::gauge("idle", "Connections waiting in the pool.", |s| s.idle),
///     MetricDef::counter("dials", "Connections opened.", |s| s.dials),
/// ];
/// static CATALOGUE: [&MetricDesc; 2] = MetricDef::catalogue(&METRICS);
///
/// struct Pool { stats: Stats }
///
/// impl Instrumented for Pool {
///     fn kind(&self) -> &'static str { "demo" }
///     fn catalogue(&self) -> &'static [&'static MetricDesc] { &CATALOGUE }
///     fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
///         MetricDef::visit_table(&METRICS, &self.stats, &[], v);
///     }
/// }
///
/// let pool = Pool { stats: Stats { idle: 2, dials: 5 } };
/// let snap = Snapshot::of(&pool);
/// assert_eq!((snap.value("idle"), snap.value("dials")), (Some(2), Some(5)));
/// assert_eq!(pool.catalogue()[1].name, "dials");
/// ```
pub struct MetricDef<S> {
    /// The metric's name, help text and kind.
    pub desc: MetricDesc,
    /// Reads the metric's current value from a stats snapshot.
    pub value: fn(&S) -> u64,
}

impl<S> MetricDef<S> {
    /// Declares a gauge read from `S` by `value`.
    ///
    /// ```
    /// static OPEN: poolside_core::MetricDef<(u64, u64)> =
    ///     poolside_core::MetricDef::gauge("open", "Connections open.", |s| s.0);
    /// assert_eq!((OPEN.value)(&(3, 4)), 3);
    /// ```
    pub const fn gauge(name: &'static str, help: &'static str, value: fn(&S) -> u64) -> Self {
        MetricDef { desc: MetricDesc::gauge(name, help), value }
    }

    /// Declares a counter read from `S` by `value`.
    ///
    /// ```
    /// static DIALS: poolside_core::MetricDef<(u64, u64)> =
    ///     poolside_core::MetricDef::counter("dials", "Connections opened.", |s| s.1);
    /// assert_eq!(DIALS.desc.kind, poolside_core::MetricKind::Counter);
    /// ```
    pub const fn counter(name: &'static str, help: &'static str, value: fn(&S) -> u64) -> Self {
        MetricDef { desc: MetricDesc::counter(name, help), value }
    }

    /// The descriptions of `table`, in table order: what
    /// [`Instrumented::catalogue`](crate::Instrumented::catalogue) returns. Meant for a
    /// `static` initializer.
    ///
    /// ```
    /// use poolside_core::{MetricDef, MetricDesc};
    ///
    /// static METRICS: [MetricDef<u64>; 1] = [MetricDef::counter("hits", "Hits.", |s| *s)];
    /// static CATALOGUE: [&MetricDesc; 1] = MetricDef::catalogue(&METRICS);
    /// assert!(std::ptr::eq(CATALOGUE[0], &METRICS[0].desc));
    ///
    /// static NONE: [MetricDef<u64>; 0] = [];
    /// static EMPTY: [&MetricDesc; 0] = MetricDef::catalogue(&NONE);
    /// assert!(EMPTY.is_empty());
    /// ```
    pub const fn catalogue<const N: usize>(
        table: &'static [MetricDef<S>; N],
    ) -> [&'static MetricDesc; N] {
        const UNSET: &MetricDesc = &MetricDesc::gauge("", "");
        let mut out = [UNSET; N];
        let mut i = 0;
        while i < N {
            out[i] = &table[i].desc;
            i += 1;
        }
        out
    }

    /// Reports every metric of `table`, read from `stats`, with `labels`, in table
    /// order.
    ///
    /// ```
    /// use poolside_core::{Metric, MetricDef};
    ///
    /// static METRICS: [MetricDef<[u64; 2]>; 2] = [
    ///     MetricDef::gauge("retained", "Objects kept.", |s| s[0]),
    ///     MetricDef::counter("hits", "Hits.", |s| s[1]),
    /// ];
    /// let mut seen = Vec::new();
    /// let mut visitor = |m: Metric<'_>| seen.push((m.desc.name, m.labels[0].1.to_owned(), m.value));
    /// MetricDef::visit_table(&METRICS, &[4, 9], &[("class", "small")], &mut visitor);
    /// assert_eq!(seen, [("retained", "small".into(), 4), ("hits", "small".into(), 9)]);
    /// ```
    pub fn visit_table(
        table: &'static [MetricDef<S>],
        stats: &S,
        labels: &[Label<'_>],
        visitor: &mut dyn MetricVisitor,
    ) {
        for def in table {
            visitor.visit(Metric { desc: &def.desc, labels, value: (def.value)(stats) });
        }
    }
}

impl<S> fmt::Debug for MetricDef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricDef").field("desc", &self.desc).finish_non_exhaustive()
    }
}
