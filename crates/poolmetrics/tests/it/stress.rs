//! Registration, deregistration, hooks and scrapes from several threads at once:
//! every scrape sampled meanwhile is a valid exposition in which each pool appears
//! whole or not at all, and nothing is left behind at the end.

use crate::support::{ScriptedPool, assert_scrape_equals_snapshot, scripted_workload, series};
use poolside_core::{Snapshot, Timing};
use poolside_metrics::PoolMetrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Series per scripted pool with a hook: 4 values + one acquire-wait histogram
/// (20 bounds + `+Inf` buckets, `_sum`, `_count`).
const SERIES_PER_POOL: usize = 4 + 21 + 2;

#[test]
fn concurrent_registrations_and_scrapes_stay_exact() {
    let metrics = PoolMetrics::builder().max_pools(64).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (metrics, stop, scrapes) = (metrics.clone(), stop.clone(), scrapes.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let text = metrics.render_prometheus();
                let mut per_pool: BTreeMap<String, usize> = BTreeMap::new();
                for s in series(&text) {
                    *per_pool.entry(s.labels["pool"].clone()).or_default() += 1;
                }
                for (pool, n) in per_pool {
                    assert_eq!(n, SERIES_PER_POOL, "pool {pool} half present:\n{text}");
                }
                let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
                let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
                assert_eq!(types, helps);
                assert!(types <= 4, "one TYPE per family, however many pools: {types}");
                scrapes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                for n in 0..60 {
                    let name = format!("t{t}-{n}");
                    let events = metrics.timing_hook(&name).unwrap();
                    let pool = Arc::new(ScriptedPool::default());
                    let registration = metrics.register(&name, &pool).unwrap();
                    scripted_workload(&pool);
                    events.record(Timing::AcquireWait, Duration::from_micros(n));
                    let text = metrics.render_prometheus();
                    assert_scrape_equals_snapshot(&text, &name, &Snapshot::of(&*pool));
                    if n % 2 == 0 {
                        registration.deregister();
                    } else {
                        drop(pool); // the registry notices at the next scrape
                        drop(registration);
                    }
                    drop(events);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler saw a broken scrape");
    assert!(scrapes.load(Ordering::Relaxed) > 0);
    assert_eq!(metrics.render_prometheus(), "");
    assert!(metrics.is_empty());
    assert_eq!(metrics.pending_hooks(), 0);
}

static LEN: poolside_core::MetricDesc =
    poolside_core::MetricDesc::gauge("registered", "Pools registered, read during the report.");
static REENTRANT_CATALOGUE: [&poolside_core::MetricDesc; 1] = [&LEN];

/// A pool whose report and whose `Drop` call back into the registry that exports it.
struct Reentrant {
    metrics: PoolMetrics,
}

impl poolside_core::Instrumented for Reentrant {
    fn kind(&self) -> &'static str {
        "reentrant"
    }
    fn catalogue(&self) -> &'static [&'static poolside_core::MetricDesc] {
        &REENTRANT_CATALOGUE
    }
    fn visit_metrics(&self, v: &mut dyn poolside_core::MetricVisitor) {
        let value = self.metrics.len() as u64 + self.metrics.pending_hooks() as u64;
        let _ = format!("{:?}", self.metrics);
        v.visit(poolside_core::Metric { desc: &LEN, labels: &[], value });
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        // Often the last reference is a scrape's: this runs on the scraping thread.
        let _ = self.metrics.render_prometheus();
        let _ = self.metrics.timing_hook("from-drop");
    }
}

#[test]
fn reports_and_drops_that_call_back_into_the_registry_never_deadlock() {
    let metrics = PoolMetrics::builder().max_pools(256).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let mut threads = Vec::new();
    for _ in 0..3 {
        let (metrics, stop, done) = (metrics.clone(), stop.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                series(&metrics.render_prometheus()); // valid, whatever is registered
                serde_json::from_str::<serde_json::Value>(&metrics.snapshot_json()).unwrap();
            }
            drop(done);
        }));
    }
    for t in 0..2 {
        let (metrics, stop, done) = (metrics.clone(), stop.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let pool = Arc::new(Reentrant { metrics: metrics.clone() });
                let registration = metrics.register(&format!("r{t}-{n}"), &pool).unwrap();
                if n % 2 == 0 {
                    drop(pool); // while registered: a scrape may hold the last reference
                    std::thread::yield_now();
                    drop(registration);
                } else {
                    drop(registration);
                    drop(pool);
                }
                n += 1;
            }
            drop(done);
        }));
    }
    drop(done);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    // Every thread ends (and drops its sender) in time: nothing is stuck on a lock.
    let outcome = finished.recv_timeout(Duration::from_secs(20));
    assert!(
        matches!(outcome, Err(std::sync::mpsc::RecvTimeoutError::Disconnected)),
        "a thread is stuck: {outcome:?}"
    );
    for thread in threads {
        thread.join().expect("no thread panicked");
    }
    assert!(metrics.is_empty(), "no dropped pool is kept alive or listed");
}
