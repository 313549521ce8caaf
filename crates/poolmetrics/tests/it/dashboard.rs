//! docs/grafana-dashboard.json uses only exported series: every metric and label its
//! queries and legends reference exists in a scrape of the example service
//! (`examples/service`, one pool of every kind).

use crate::service;
use crate::support;

use poolside_metrics::PoolMetrics;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every string under a key named `key`, anywhere in `value`.
fn strings_under(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k == key => out.push(s.clone()),
                    _ => strings_under(v, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, out)),
        _ => {}
    }
}

/// Identifiers starting with `poolside_` in a query.
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = query;
    while let Some(at) = rest.find("poolside_") {
        let tail = &rest[at..];
        let end =
            tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Label names a query groups by or matches on.
fn label_names(query: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    let mut rest = query;
    while let Some(at) = rest.find("by (") {
        let tail = &rest[at + 4..];
        let end = tail.find(')').expect("closed by clause");
        labels
            .extend(tail[..end].split(',').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()));
        rest = &tail[end..];
    }
    let mut rest = query;
    while let Some(at) = rest.find('{') {
        let tail = &rest[at + 1..];
        let end = tail.find('}').expect("closed matcher");
        for matcher in tail[..end].split(',') {
            let name: String = matcher
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != "__name__" {
                labels.insert(name);
            }
        }
        rest = &tail[end..];
    }
    labels
}

#[test]
fn the_dashboard_references_only_exported_series_and_labels() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let metrics = PoolMetrics::new();
    let service = runtime.block_on(async {
        let service = service::Service::start(&metrics).await.unwrap();
        service.exercise().await.unwrap();
        service
    });
    let scrape = support::series(&metrics.render_prometheus());
    let mut labels_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &scrape {
        labels_of.entry(s.name.clone()).or_default().extend(s.labels.keys().cloned());
    }

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana-dashboard.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard exists"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut checked = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().expect("every panel has a title");
        let targets = panel["targets"].as_array().expect("every panel has targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: {expr} uses no poolside series");
            for name in &names {
                assert!(labels_of.contains_key(name), "{title}: {name} is not in the scrape");
            }
            let legend = target["legendFormat"].as_str().unwrap_or_default();
            let legend_labels = legend.split("{{").skip(1).filter_map(|l| l.split("}}").next());
            for label in label_names(expr).into_iter().chain(legend_labels.map(str::to_owned)) {
                if label == "le" {
                    continue; // the bucket label, on every _bucket series
                }
                assert!(
                    names.iter().any(|n| labels_of[n].contains(&label)),
                    "{title}: label {label} is on none of {names:?}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} queries");

    // Every pool kind has a panel, and the pool variable finds every pool.
    let mut queries = Vec::new();
    strings_under(&dashboard, "expr", &mut queries);
    let all = queries.join("\n");
    for kind in ["bufpool", "workerpool", "connpool", "connpool_failover"] {
        assert!(all.contains(&format!("poolside_{kind}_")), "no panel for {kind}");
    }
    let mut definitions = Vec::new();
    strings_under(&dashboard["templating"], "definition", &mut definitions);
    assert!(definitions.iter().any(|d| d.contains("label_values") && d.contains("pool")));
    drop(service);
}
