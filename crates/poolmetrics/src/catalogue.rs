//! Every family a pool exports, derived from its declarations: the pool's
//! [`catalogue`](Instrumented::catalogue) and [`timings`](Instrumented::timings), named
//! by the same rules as the exposition. docs/metrics-catalogue.md is
//! [`markdown_table`]'s output, and a test fails when the two differ.

use crate::naming::{family_name, histogram_name, is_exported_label};
use poolside_core::{Instrumented, Metric, MetricKind};

/// The type of an exported family, as in the exposition's `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FamilyType {
    /// A level that goes up and down.
    Gauge,
    /// A count that only grows; the family name ends in `_total`.
    Counter,
    /// A timing histogram in seconds (`_bucket`, `_sum`, `_count` series).
    Histogram,
}

impl FamilyType {
    /// `"gauge"`, `"counter"` or `"histogram"`.
    ///
    /// ```
    /// assert_eq!(poolside_metrics::catalogue::FamilyType::Histogram.as_str(), "histogram");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            FamilyType::Gauge => "gauge",
            FamilyType::Counter => "counter",
            FamilyType::Histogram => "histogram",
        }
    }
}

/// One family a pool exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// The full family name (`poolside_connpool_dials_total`).
    pub name: String,
    /// Its type.
    pub family_type: FamilyType,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The pool kind that exports it.
    pub kind: &'static str,
    /// Labels beyond `pool` and `kind` that the pool reports on it (`class`, `shard`,
    /// `backend`), in first-seen order.
    pub labels: Vec<&'static str>,
}

/// The families `pool` exports when registered with a timing hook, in declaration
/// order: its gauges and counters, then its timing histograms. Extra labels are
/// those the pool reports right now.
///
/// ```
/// let pool = poolside_bufpool::BufPool::new();
/// let families = poolside_metrics::catalogue::families(&pool);
/// let hits = families.iter().find(|f| f.name == "poolside_bufpool_hits_total").unwrap();
/// assert_eq!(hits.labels, ["class"]);
/// ```
pub fn families(pool: &dyn Instrumented) -> Vec<Family> {
    let kind = pool.kind();
    let mut families: Vec<Family> = pool
        .catalogue()
        .iter()
        .map(|desc| Family {
            name: family_name(kind, desc),
            family_type: match desc.kind {
                MetricKind::Gauge => FamilyType::Gauge,
                MetricKind::Counter => FamilyType::Counter,
            },
            help: desc.help,
            kind,
            labels: Vec::new(),
        })
        .collect();
    pool.visit_metrics(&mut |m: Metric<'_>| {
        let name = family_name(kind, m.desc);
        if let Some(family) = families.iter_mut().find(|f| f.name == name) {
            for &(key, _) in m.labels {
                if is_exported_label(key) && !family.labels.contains(&key) {
                    family.labels.push(key);
                }
            }
        }
    });
    families.extend(pool.timings().iter().map(|&t| Family {
        name: histogram_name(kind, t),
        family_type: FamilyType::Histogram,
        help: t.help(),
        kind,
        labels: Vec::new(),
    }));
    families
}

/// A Markdown table of every family the given pools export (each family once, in
/// first-seen order; labels merged): columns family, type, labels, help.
///
/// ```
/// let table = poolside_metrics::catalogue::markdown_table(&[&poolside_bufpool::BufPool::new()]);
/// assert!(table.starts_with("| family | type | labels | help |\n|---|---|---|---|\n"));
/// assert!(table.contains("| `poolside_bufpool_retained_bytes` | gauge | `pool` `kind` `class` |"));
/// ```
pub fn markdown_table(pools: &[&dyn Instrumented]) -> String {
    let mut merged: Vec<Family> = Vec::new();
    for pool in pools {
        for family in families(*pool) {
            match merged.iter_mut().find(|f| f.name == family.name) {
                Some(seen) => {
                    for label in family.labels {
                        if !seen.labels.contains(&label) {
                            seen.labels.push(label);
                        }
                    }
                }
                None => merged.push(family),
            }
        }
    }
    let mut table = String::from("| family | type | labels | help |\n|---|---|---|---|\n");
    for family in &merged {
        let labels: Vec<String> =
            ["pool", "kind"].iter().chain(&family.labels).map(|l| format!("`{l}`")).collect();
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            family.name,
            family.family_type.as_str(),
            labels.join(" "),
            family.help.replace('|', "\\|")
        ));
    }
    table
}
