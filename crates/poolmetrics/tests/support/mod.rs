#![allow(dead_code)] // each test binary uses a different part of it
//! A scripted pool whose statistics the tests control exactly.

use poolside_core::{Instrumented, Metric, MetricDesc, MetricVisitor};
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

/// Parses a Prometheus exposition and returns the value of `name` with these labels.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid exposition");
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                && s.labels.len() == labels.len()
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}
