#![allow(dead_code)] // each test binary uses a different part of it
//! A scripted pool whose statistics the tests control exactly.

use poolside_core::{
    Instrumented, Metric, MetricDesc, MetricKind, MetricVisitor, Snapshot, Timing,
};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) static IN_USE: MetricDesc = MetricDesc::gauge("in_use", "Objects checked out.");
pub(crate) static ACQUIRES: MetricDesc =
    MetricDesc::counter("acquires", "Successful acquisitions.");
pub(crate) static RETAINED: MetricDesc =
    MetricDesc::gauge("retained", "Objects kept, per size class.");
static CATALOGUE: [&MetricDesc; 3] = [&IN_USE, &ACQUIRES, &RETAINED];

/// Counts acquisitions and releases like a real pool would.
#[derive(Debug, Default)]
pub(crate) struct ScriptedPool {
    pub(crate) in_use: AtomicU64,
    pub(crate) acquires: AtomicU64,
    pub(crate) retained_small: AtomicU64,
    pub(crate) retained_large: AtomicU64,
}

impl ScriptedPool {
    pub(crate) fn acquire(&self) {
        self.acquires.fetch_add(1, Ordering::Relaxed);
        self.in_use.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, large: bool) {
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        let class = if large { &self.retained_large } else { &self.retained_small };
        class.fetch_add(1, Ordering::Relaxed);
    }
}

impl Instrumented for ScriptedPool {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &CATALOGUE
    }

    fn timings(&self) -> &'static [Timing] {
        &[Timing::AcquireWait]
    }

    fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        v.visit(Metric { desc: &IN_USE, labels: &[], value: load(&self.in_use) });
        v.visit(Metric { desc: &ACQUIRES, labels: &[], value: load(&self.acquires) });
        v.visit(Metric {
            desc: &RETAINED,
            labels: &[("class", "small")],
            value: load(&self.retained_small),
        });
        v.visit(Metric {
            desc: &RETAINED,
            labels: &[("class", "large")],
            value: load(&self.retained_large),
        });
    }
}

/// Runs a fixed workload: 10 acquisitions, 7 releases (2 of them large).
pub(crate) fn scripted_workload(pool: &ScriptedPool) {
    for _ in 0..10 {
        pool.acquire();
    }
    for i in 0..7 {
        pool.release(i % 3 == 0 && i > 0);
    }
}

/// GETs `url` with a real HTTP client; returns (status, content type, body).
pub(crate) fn http_get(url: &str) -> (u16, String, String) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(url).call().expect("the endpoint answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.body_mut().read_to_string().expect("a UTF-8 body");
    (status, content_type, body)
}

/// One sample line of an exposition: series name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) labels: std::collections::BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// Parses an exposition with `prometheus-parse` (it must be valid) and returns every
/// sample line in order. Label values in these tests hold no escapes.
pub(crate) fn series(text: &str) -> Vec<Series> {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("a valid exposition");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().expect("a number"),
            };
            Series { name: name.to_owned(), labels, value }
        })
        .collect()
}

/// The value of the series `name` with exactly these labels.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    series(text)
        .into_iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// The exported family of a snapshot entry, by the documented rule.
pub(crate) fn expected_family(kind: &str, desc: &MetricDesc) -> String {
    match desc.kind {
        MetricKind::Counter => format!("poolside_{kind}_{}_total", desc.name),
        MetricKind::Gauge => format!("poolside_{kind}_{}", desc.name),
    }
}

/// Asserts that the scrape holds exactly the pool's own snapshot: every value it
/// reports, under the documented family and labels, and no other gauge or counter
/// series for this pool name. `snapshot` must be taken while the pool is quiet.
pub(crate) fn assert_scrape_equals_snapshot(text: &str, pool: &str, snapshot: &Snapshot) {
    let scraped: Vec<Series> = series(text)
        .into_iter()
        .filter(|s| s.labels.get("pool").map(String::as_str) == Some(pool))
        .filter(|s| {
            !s.name.ends_with("_bucket") && !s.name.ends_with("_sum") && !s.name.ends_with("_count")
        })
        .collect();
    assert_eq!(
        scraped.len(),
        snapshot.entries.len(),
        "pool {pool}: {} series scraped, {} values reported",
        scraped.len(),
        snapshot.entries.len()
    );
    for entry in &snapshot.entries {
        let name = expected_family(snapshot.kind, entry.desc);
        let mut labels: std::collections::BTreeMap<String, String> =
            entry.labels.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        labels.insert("pool".into(), pool.into());
        labels.insert("kind".into(), snapshot.kind.into());
        let found = scraped
            .iter()
            .find(|s| s.name == name && s.labels == labels)
            .unwrap_or_else(|| panic!("{name}{labels:?} missing from the scrape"));
        assert_eq!(found.value, entry.value as f64, "{name}{labels:?}");
    }
}
