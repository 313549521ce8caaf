//! The Prometheus text exposition (format 0.0.4), written straight from the pools'
//! reports at scrape time.
//!
//! Order is part of the contract: families sorted by name, one `# HELP` and one
//! `# TYPE` line each, then the samples of every pool in registration order, each
//! pool's samples in the order the pool reports them. Two scrapes of unchanged pools
//! are byte-for-byte equal.

use crate::catalogue::FamilyType;
use crate::naming::{exported_labels, family_name, histogram_name};
use crate::registry::{DynPool, Entry};
use poolside_core::{Metric, MetricKind, Timing};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// The content type of [`PoolMetrics::render_prometheus`](crate::PoolMetrics::render_prometheus)'s
/// output, for the `Content-Type` header of a `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Family {
    kind: FamilyType,
    help: &'static str,
    samples: String,
}

/// One sample line with the family it belongs to.
struct Line {
    family: String,
    kind: FamilyType,
    help: &'static str,
    text: String,
}

/// Renders every live pool's values and histograms.
///
/// A pool whose report panics is left out of this scrape (and the panic logged), so
/// one faulty `Instrumented` implementation cannot take the whole endpoint down; a
/// pool's lines join the families only once its report completed, so a scrape never
/// holds half of a pool.
pub(crate) fn prometheus(entries: &[(Arc<Entry>, Arc<DynPool>)]) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (entry, pool) in entries {
        let lines = match catch_unwind(AssertUnwindSafe(|| pool_lines(entry, &**pool))) {
            Ok(lines) => lines,
            Err(panic) => {
                tracing::error!(
                    pool = %entry.name,
                    kind = entry.kind,
                    panic = panic_message(&*panic),
                    "a pool's metrics report panicked: left out of this scrape"
                );
                continue;
            }
        };
        for line in lines {
            let family = families.entry(line.family).or_insert_with(|| Family {
                kind: line.kind,
                help: line.help,
                samples: String::new(),
            });
            if family.kind == line.kind {
                family.samples.push_str(&line.text);
            } else {
                // Registration rules this out between pools; one pool could still
                // declare a gauge named like its own timing histogram.
                tracing::debug!(pool = %entry.name, "a sample's type differs from its family's: left out");
            }
        }
    }
    let mut text = String::new();
    for (name, family) in &families {
        let _ = writeln!(text, "# HELP {name} {}", escape_help(family.help));
        let _ = writeln!(text, "# TYPE {name} {}", family.kind.as_str());
        text.push_str(&family.samples);
    }
    text
}

/// Every sample line of one pool, in the order the pool reports them, then its
/// histograms.
fn pool_lines(entry: &Entry, pool: &DynPool) -> Vec<Line> {
    let mut lines = Vec::new();
    let base = format!("pool=\"{}\",kind=\"{}\"", escape_label(&entry.name), entry.kind);
    pool.visit_metrics(&mut |m: Metric<'_>| {
        let family = family_name(entry.kind, m.desc);
        if !entry.declares(&family, m.desc.kind) {
            // Not in the pool's catalogue: its name was never checked, and could be
            // anything (a space, a histogram suffix); writing it would break the scrape.
            tracing::debug!(pool = %entry.name, metric = m.desc.name, "an undeclared metric: left out");
            return;
        }
        let kind = match m.desc.kind {
            MetricKind::Gauge => FamilyType::Gauge,
            MetricKind::Counter => FamilyType::Counter,
        };
        let mut text = format!("{family}{{{base}");
        for &(key, value) in exported_labels(m.labels) {
            let _ = write!(text, ",{key}=\"{}\"", escape_label(value));
        }
        let _ = writeln!(text, "}} {}", m.value);
        lines.push(Line { family, kind, help: m.desc.help, text });
    });
    let Some(hook) = &entry.timings else { return lines };
    let declared = pool.timings();
    for &timing in Timing::ALL.iter() {
        let Some(totals) = hook.totals(timing) else { continue };
        // Declared timings are exported from the start (zeros), so dashboards and
        // alerts find them; an undeclared one as soon as it has samples.
        if totals.count == 0 && !declared.contains(&timing) {
            continue;
        }
        let family = histogram_name(entry.kind, timing);
        let mut text = String::new();
        for &(bound_nanos, cumulative) in &totals.cumulative {
            let le = bound_nanos as f64 / 1e9;
            let _ = writeln!(text, "{family}_bucket{{{base},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(text, "{family}_bucket{{{base},le=\"+Inf\"}} {}", totals.count);
        let _ = writeln!(text, "{family}_sum{{{base}}} {}", totals.sum_seconds);
        let _ = writeln!(text, "{family}_count{{{base}}} {}", totals.count);
        lines.push(Line { family, kind: FamilyType::Histogram, help: timing.help(), text });
    }
    lines
}

/// The message of a caught panic, when it is a string.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

/// Label values: backslash, double quote and line feed are escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// HELP text: backslash and line feed are escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_text_format() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
    }

    #[test]
    fn nothing_registered_renders_nothing() {
        assert_eq!(prometheus(&[]), "");
    }
}
