//! The JSON snapshot served at `/debug/vars`.

use poolside_core::Snapshot;
use serde_json::{Map, Value, json};

/// `{"pools": [{"name", "kind", "metrics": [{"name", "kind", "help", "labels", "value"}]}]}`
pub(crate) fn render(pools: &[(String, Snapshot)]) -> String {
    let pools: Vec<Value> = pools
        .iter()
        .map(|(name, snapshot)| {
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
            json!({ "name": name, "kind": snapshot.kind, "metrics": metrics })
        })
        .collect();
    json!({ "pools": pools }).to_string()
}
