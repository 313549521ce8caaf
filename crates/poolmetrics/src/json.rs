//! The JSON snapshot served at `/debug/vars`.

use crate::registry::{DynPool, Entry};
use poolside_core::Snapshot;
use serde_json::{Map, Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// `{"pools": [{"name", "kind", "metrics": [{"name", "kind", "help", "labels", "value"}]}]}`,
/// pools in registration order.
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
            Some(json!({ "name": name, "kind": snapshot.kind, "metrics": metrics }))
        })
        .collect();
    json!({ "pools": pools }).to_string()
}
