//! The JSON snapshot served at `/debug/vars`.

use crate::registry::{DynPool, Entry};
use poolside_core::{Snapshot, Timing};
use serde_json::{Map, Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// `{"pools": [{"name", "kind", "metrics": [{"name", "kind", "help", "labels", "value"}],
/// "timings": [{"name", "help", "count", "sum_seconds", "buckets": [{"le_seconds", "count"}]}]}]}`,
/// pools in registration order; timings without samples are left out.
pub(crate) fn render(pools: &[(Arc<Entry>, Arc<DynPool>)]) -> String {
    let pools: Vec<Value> = pools
        .iter()
        .filter_map(|(entry, pool)| {
            let name = &entry.name;
            // A pool whose report panics is left out (and logged), as in the exposition.
            let snapshot = match catch_unwind(AssertUnwindSafe(|| Snapshot::of(&**pool))) {
                Ok(snapshot) => snapshot,
                Err(panic) => {
                    tracing::error!(
                        pool = %name,
                        panic = crate::render::panic_message(&*panic),
                        "a pool's metrics report panicked: left out of this snapshot"
                    );
                    return None;
                }
            };
            let metrics: Vec<Value> = snapshot
                .entries
                .iter()
                .map(|e| {
                    let labels: Map<String, Value> = e
                        .labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
                        .collect();
                    json!({
                        "name": e.desc.name,
                        "kind": e.desc.kind.as_str(),
                        "help": e.desc.help,
                        "labels": labels,
                        "value": e.value,
                    })
                })
                .collect();
            let timings: Vec<Value> = entry
                .timings
                .iter()
                .flat_map(|hook| Timing::ALL.iter().filter_map(|&t| Some((t, hook.totals(t)?))))
                .filter(|(_, totals)| totals.count > 0)
                .map(|(timing, totals)| {
                    let buckets: Vec<Value> = totals
                        .cumulative
                        .iter()
                        .map(|&(le, n)| json!({ "le_seconds": le as f64 / 1e9, "count": n }))
                        .collect();
                    json!({
                        "name": timing.name(),
                        "help": timing.help(),
                        "count": totals.count,
                        "sum_seconds": totals.sum_seconds,
                        "buckets": buckets,
                    })
                })
                .collect();
            Some(json!({
                "name": name,
                "kind": snapshot.kind,
                "metrics": metrics,
                "timings": timings,
            }))
        })
        .collect();
    json!({ "pools": pools }).to_string()
}
