//! The exposition read from pools at scrape time: values equal the pools' own
//! snapshots, order is stable, deregistration is exact, timing hooks take the pool's
//! kind and are reaped when their pool never registers, and every builder option out
//! of range is a typed error.

use crate::support::{
    ScriptedPool, assert_scrape_equals_snapshot, sample, scripted_workload, series,
};
use poolside_core::{Instrumented, Metric, MetricDesc, MetricVisitor, Snapshot, Timing};
use poolside_metrics::{MetricsError, PoolMetrics};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn scrape_equals_the_pools_own_stats_after_a_scripted_workload() {
    let metrics = PoolMetrics::new();
    let events = metrics.timing_hook("orders").unwrap();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("orders", &pool).unwrap();
    scripted_workload(&pool);
    events.record(Timing::AcquireWait, Duration::from_millis(3));

    let text = metrics.render_prometheus();
    assert_scrape_equals_snapshot(&text, "orders", &Snapshot::of(&*pool));
    let labels = [("pool", "orders"), ("kind", "scripted")];
    assert_eq!(sample(&text, "poolside_scripted_acquires_total", &labels), Some(10.0));
    assert_eq!(sample(&text, "poolside_scripted_in_use", &labels), Some(3.0));
    assert!(text.contains("# HELP poolside_scripted_acquires_total Successful acquisitions.\n"));
    assert!(text.contains("# TYPE poolside_scripted_acquires_total counter\n"));
    assert!(text.contains("# TYPE poolside_scripted_in_use gauge\n"));

    // Nothing is cached: the next scrape reads the pool again.
    pool.acquire();
    let text = metrics.render_prometheus();
    assert_scrape_equals_snapshot(&text, "orders", &Snapshot::of(&*pool));
    assert_eq!(sample(&text, "poolside_scripted_acquires_total", &labels), Some(11.0));
}

#[test]
fn families_are_sorted_with_one_header_each_and_pools_in_registration_order() {
    let metrics = PoolMetrics::new();
    let pools: Vec<Arc<ScriptedPool>> = (0..3).map(|_| Arc::new(ScriptedPool::default())).collect();
    // Registered in an order that is not alphabetical.
    let _registrations: Vec<_> = ["zeta", "alpha", "mid"]
        .iter()
        .zip(&pools)
        .map(|(name, pool)| metrics.register(name, pool).unwrap())
        .collect();
    scripted_workload(&pools[1]);
    let text = metrics.render_prometheus();
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let mut sorted = families.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(families, sorted, "families sorted, each once");
    assert_eq!(text.matches("# HELP ").count(), families.len());
    let pools_in_family: Vec<String> = series(&text)
        .into_iter()
        .filter(|s| s.name == "poolside_scripted_acquires_total")
        .map(|s| s.labels["pool"].clone())
        .collect();
    assert_eq!(pools_in_family, ["zeta", "alpha", "mid"]);
    // Every sample sits under its own family's header.
    let mut current = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            current = rest.split(' ').next().unwrap();
        } else if !line.starts_with('#') {
            assert!(line.starts_with(current), "{line} outside its family {current}");
        }
    }
}

#[test]
fn order_is_stable_over_a_hundred_scrapes_of_busy_pools() {
    let metrics = PoolMetrics::new();
    let pools: Vec<Arc<ScriptedPool>> = (0..4).map(|_| Arc::new(ScriptedPool::default())).collect();
    let hooks: Vec<_> =
        ["d", "c", "b", "a"].iter().map(|name| metrics.timing_hook(name).unwrap()).collect();
    let _registrations: Vec<_> = ["d", "c", "b", "a"]
        .iter()
        .zip(&pools)
        .map(|(name, pool)| metrics.register(name, pool).unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (pools, stop) = (pools.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for pool in &pools {
                    pool.acquire();
                    pool.release(true);
                }
            }
        })
    };
    let shape = |text: &str| -> Vec<(String, Vec<(String, String)>)> {
        series(text).into_iter().map(|s| (s.name, s.labels.into_iter().collect())).collect()
    };
    let first = shape(&metrics.render_prometheus());
    for i in 0..100 {
        hooks[i % 4].record(Timing::AcquireWait, Duration::from_micros(i as u64));
        assert_eq!(shape(&metrics.render_prometheus()), first, "scrape {i} changed shape");
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    // Idle pools: byte-for-byte equal scrapes.
    assert_eq!(metrics.render_prometheus(), metrics.render_prometheus());
}

#[test]
fn deregistration_removes_exactly_the_pools_series() {
    let metrics = PoolMetrics::new();
    let kept = Arc::new(ScriptedPool::default());
    let gone = Arc::new(ScriptedPool::default());
    let kept_events = metrics.timing_hook("kept").unwrap();
    let gone_events = metrics.timing_hook("gone").unwrap();
    let _kept = metrics.register("kept", &kept).unwrap();
    let registration = metrics.register("gone", &gone).unwrap();
    scripted_workload(&kept);
    scripted_workload(&gone);
    kept_events.record(Timing::Dial, Duration::from_millis(5));
    gone_events.record(Timing::Dial, Duration::from_millis(5));

    let before = series(&metrics.render_prometheus());
    assert!(before.iter().any(|s| s.labels["pool"] == "gone"));
    registration.deregister();
    let after = series(&metrics.render_prometheus());
    let expected: Vec<_> = before.iter().filter(|s| s.labels["pool"] != "gone").cloned().collect();
    assert_eq!(after, expected, "exactly the deregistered pool's series disappear");

    // Dropping the pool works the same, and the name can be used again.
    let dropped = Arc::new(ScriptedPool::default());
    let registration = metrics.register("dropped", &dropped).unwrap();
    assert_eq!(metrics.len(), 2);
    drop(dropped);
    assert_eq!(series(&metrics.render_prometheus()), expected);
    assert_eq!(metrics.len(), 1);
    drop(registration); // after its pool: harmless
    let again = Arc::new(ScriptedPool::default());
    let _again = metrics.register("gone", &again).unwrap();
    assert_eq!(metrics.len(), 2);
}

#[test]
fn timing_histograms_take_the_pools_kind_with_exact_buckets() {
    let metrics = PoolMetrics::new();
    let events = metrics.timing_hook("timed").unwrap();
    // Recorded before the pool registers: kept, exported once it does.
    for ms in [1, 2, 3, 4] {
        events.record(Timing::AcquireWait, Duration::from_millis(ms));
    }
    assert!(!metrics.render_prometheus().contains("timed"));
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("timed", &pool).unwrap();
    assert_eq!(metrics.pending_hooks(), 0, "the hook now belongs to the registration");
    events.record(Timing::JobRun, Duration::from_secs(2)); // not declared by the pool
    let text = metrics.render_prometheus();
    let labels = [("pool", "timed"), ("kind", "scripted")];
    assert_eq!(sample(&text, "poolside_scripted_acquire_wait_seconds_count", &labels), Some(4.0));
    assert_eq!(sample(&text, "poolside_scripted_acquire_wait_seconds_sum", &labels), Some(0.01));
    assert_eq!(sample(&text, "poolside_scripted_job_run_seconds_count", &labels), Some(1.0));
    let le = |bound: &str| {
        sample(
            &text,
            "poolside_scripted_acquire_wait_seconds_bucket",
            &[("pool", "timed"), ("kind", "scripted"), ("le", bound)],
        )
    };
    // 1 ms and 2 ms fall at or below 2.5 ms; 3 and 4 ms do not; all below 5 ms.
    assert_eq!(le("0.001"), Some(1.0));
    assert_eq!(le("0.0025"), Some(2.0));
    assert_eq!(le("0.005"), Some(4.0));
    assert_eq!(le("+Inf"), Some(4.0));
    assert!(text.contains("# TYPE poolside_scripted_acquire_wait_seconds histogram\n"));
    // Declared timings without samples are exported with zeros; others are not.
    let idle_metrics = PoolMetrics::new();
    let _idle_events = idle_metrics.timing_hook("idle").unwrap();
    let idle = Arc::new(ScriptedPool::default());
    let _r = idle_metrics.register("idle", &idle).unwrap();
    let text = idle_metrics.render_prometheus();
    let labels = [("pool", "idle"), ("kind", "scripted")];
    assert_eq!(sample(&text, "poolside_scripted_acquire_wait_seconds_count", &labels), Some(0.0));
    assert!(!text.contains("job_run"));
}

#[test]
fn a_pool_registered_again_keeps_its_histograms() {
    let metrics = PoolMetrics::new();
    let events = metrics.timing_hook("again").unwrap();
    let pool = Arc::new(ScriptedPool::default());
    let registration = metrics.register("again", &pool).unwrap();
    events.record(Timing::AcquireWait, Duration::from_millis(1));
    registration.deregister();
    assert_eq!(metrics.render_prometheus(), "");
    assert_eq!(metrics.pending_hooks(), 1, "the live pool's hook waits again");
    events.record(Timing::AcquireWait, Duration::from_millis(1));
    let _registration = metrics.register("again", &pool).unwrap();
    let labels = [("pool", "again"), ("kind", "scripted")];
    let text = metrics.render_prometheus();
    assert_eq!(sample(&text, "poolside_scripted_acquire_wait_seconds_count", &labels), Some(2.0));
    drop(events);
    drop(pool);
    assert_eq!(metrics.render_prometheus(), "");
    assert_eq!(metrics.pending_hooks(), 0);
}

#[test]
fn a_hook_whose_pool_never_registers_holds_no_slot_and_is_reaped() {
    let metrics = PoolMetrics::builder().max_pools(1).build().unwrap();
    let orphan = metrics.timing_hook("orphan").unwrap();
    orphan.record(Timing::Dial, Duration::from_millis(1));
    assert_eq!(metrics.pending_hooks(), 1);
    assert_eq!(metrics.render_prometheus(), "", "a pending hook exports nothing");
    // It holds no cardinality slot: a pool still registers under max_pools(1).
    let pool = Arc::new(ScriptedPool::default());
    let registration = metrics.register("real", &pool).unwrap();
    assert!(!metrics.render_prometheus().contains("orphan"));
    // Asking again for a waiting name shares its histograms; hooks are bounded too.
    let again = metrics.timing_hook("orphan").unwrap();
    assert!(matches!(metrics.timing_hook("another"), Err(MetricsError::TooManyPools { limit: 1 })));
    drop(orphan);
    assert_eq!(metrics.pending_hooks(), 1, "still held by the second handle");
    drop(again); // the pool it was made for is gone without registering
    assert_eq!(metrics.pending_hooks(), 0);
    let _fresh = metrics.timing_hook("another").unwrap();
    drop(registration);
}

#[test]
fn names_are_unique_per_kind_and_cardinality_is_bounded() {
    let metrics = PoolMetrics::builder().max_pools(2).build().unwrap();
    let a = Arc::new(ScriptedPool::default());
    let first = metrics.register("same", &a).unwrap();
    let b = Arc::new(ScriptedPool::default());
    let err = metrics.register("same", &b).unwrap_err();
    assert!(matches!(err, MetricsError::DuplicatePool { kind: "scripted", .. }), "{err}");
    assert_eq!(err.to_string(), r#"a scripted named "same" is already registered"#);

    let _second = metrics.register("other", &b).unwrap();
    let c = Arc::new(ScriptedPool::default());
    let err = metrics.register("third", &c).unwrap_err();
    assert!(matches!(err, MetricsError::TooManyPools { limit: 2 }), "{err}");

    // A freed slot and a freed name can be used again.
    drop(first);
    let _again = metrics.register("same", &c).unwrap();

    for bad in ["", "with space", "{}", "quote\"", &"x".repeat(65)] {
        assert!(
            matches!(metrics.register(bad, &a), Err(MetricsError::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(metrics.timing_hook(bad), Err(MetricsError::InvalidName { .. })),
            "{bad:?}"
        );
    }
}

static WAIT_GAUGE: MetricDesc = MetricDesc::gauge("acquire_wait_seconds", "Clashes.");
static GAUGE_TOTAL: MetricDesc = MetricDesc::gauge("hits_total", "Not a counter.");
static CLASH: [&MetricDesc; 1] = [&WAIT_GAUGE];
static BAD: [&MetricDesc; 1] = [&GAUGE_TOTAL];

/// A pool of kind `scripted` whose catalogue is chosen by the test.
struct Declares(&'static [&'static MetricDesc]);

impl Instrumented for Declares {
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        self.0
    }
    fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
        for desc in self.0 {
            v.visit(Metric { desc, labels: &[], value: 1 });
        }
    }
}

#[test]
fn conflicting_or_unconventional_declarations_are_refused() {
    let metrics = PoolMetrics::new();
    let scripted = Arc::new(ScriptedPool::default());
    let _r = metrics.register("timed", &scripted).unwrap();
    // A gauge named like the other pool's histogram family.
    let err = metrics.register("clash", &Arc::new(Declares(&CLASH))).unwrap_err();
    assert!(
        matches!(&err, MetricsError::FamilyConflict { family } if family == "poolside_scripted_acquire_wait_seconds"),
        "{err}"
    );
    let err = metrics.register("bad", &Arc::new(Declares(&BAD))).unwrap_err();
    assert!(matches!(err, MetricsError::InvalidMetric { metric: "hits_total", .. }), "{err}");
}

/// A pool whose report panics half-way.
struct Faulty;

impl Instrumented for Faulty {
    fn kind(&self) -> &'static str {
        "faulty"
    }
    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &CLASH
    }
    fn visit_metrics(&self, v: &mut dyn MetricVisitor) {
        v.visit(Metric { desc: &WAIT_GAUGE, labels: &[], value: 1 });
        panic!("a report that panics");
    }
}

#[test]
fn a_pool_whose_report_panics_is_left_out_and_the_rest_is_served() {
    let metrics = PoolMetrics::new();
    let good = Arc::new(ScriptedPool::default());
    let faulty = Arc::new(Faulty);
    let _g = metrics.register("good", &good).unwrap();
    let _f = metrics.register("faulty", &faulty).unwrap();
    scripted_workload(&good);
    let text = metrics.render_prometheus();
    assert!(!text.contains("faulty"), "no half of the faulty pool: {text}");
    assert_scrape_equals_snapshot(&text, "good", &Snapshot::of(&*good));
    let json: serde_json::Value = serde_json::from_str(&metrics.snapshot_json()).unwrap();
    assert_eq!(json["pools"].as_array().unwrap().len(), 1);
}

#[test]
fn json_snapshot_lists_every_pool_with_its_values() {
    let metrics = PoolMetrics::new();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("jsonpool", &pool).unwrap();
    scripted_workload(&pool);
    let json: serde_json::Value = serde_json::from_str(&metrics.snapshot_json()).unwrap();
    let pools = json["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["name"], "jsonpool");
    assert_eq!(pools[0]["kind"], "scripted");
    let values = pools[0]["metrics"].as_array().unwrap();
    let find = |name: &str, class: Option<&str>| {
        values
            .iter()
            .find(|m| m["name"] == name && class.is_none_or(|c| m["labels"]["class"] == c))
            .map(|m| m["value"].as_u64().unwrap())
    };
    assert_eq!(find("acquires", None), Some(10));
    assert_eq!(find("in_use", None), Some(3));
    assert_eq!(find("retained", Some("large")), Some(2));
    assert_eq!(values[0]["kind"], "gauge");
    assert_eq!(pools[0]["timings"], serde_json::json!([]), "no hook, no timings");
}

#[test]
fn json_snapshot_has_the_timings_with_samples() {
    let metrics = PoolMetrics::new();
    let events = metrics.timing_hook("timed").unwrap();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("timed", &pool).unwrap();
    events.record(Timing::AcquireWait, Duration::from_millis(2));
    events.record(Timing::AcquireWait, Duration::from_millis(4));
    let json: serde_json::Value = serde_json::from_str(&metrics.snapshot_json()).unwrap();
    let timings = json["pools"][0]["timings"].as_array().unwrap();
    assert_eq!(timings.len(), 1, "only timings with samples");
    assert_eq!(timings[0]["name"], "acquire_wait");
    assert_eq!(timings[0]["count"], 2);
    assert!((timings[0]["sum_seconds"].as_f64().unwrap() - 0.006).abs() < 1e-12);
    let buckets = timings[0]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), poolside_metrics::DEFAULT_BUCKETS.len());
    let at = |le: f64| buckets.iter().find(|b| b["le_seconds"] == le).unwrap()["count"].clone();
    assert_eq!(at(0.0025), 1);
    assert_eq!(at(0.005), 2);
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PoolMetrics>();
    send_sync::<poolside_metrics::Registration>();
    send_sync::<poolside_metrics::PoolMetricsBuilder>();
    send_sync::<MetricsError>();
}

#[test]
fn every_builder_option_out_of_range_is_a_typed_error() {
    let ms = Duration::from_millis;
    let cases: Vec<(&str, poolside_metrics::PoolMetricsBuilder)> = vec![
        ("max_pools 0", PoolMetrics::builder().max_pools(0)),
        ("max_pools usize::MAX", PoolMetrics::builder().max_pools(usize::MAX)),
        ("max_pools 4097", PoolMetrics::builder().max_pools(4097)),
        ("no buckets", PoolMetrics::builder().histogram_buckets([])),
        ("zero bucket", PoolMetrics::builder().histogram_buckets([Duration::ZERO, ms(1)])),
        ("Duration::MAX bucket", PoolMetrics::builder().histogram_buckets([ms(1), Duration::MAX])),
        (
            "bucket above 24 h",
            PoolMetrics::builder().histogram_buckets([Duration::from_secs(86_401)]),
        ),
        ("decreasing buckets", PoolMetrics::builder().histogram_buckets([ms(2), ms(1)])),
        ("repeated bucket", PoolMetrics::builder().histogram_buckets([ms(1), ms(1)])),
        ("65 buckets", PoolMetrics::builder().histogram_buckets((1..=65).map(ms))),
        (
            "usize::MAX buckets",
            PoolMetrics::builder().histogram_buckets((1..).map(Duration::from_nanos)),
        ),
    ];
    for (what, builder) in cases {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, MetricsError::InvalidConfig(_)), "{what}: {err}");
        assert!(err.to_string().starts_with("invalid configuration: "), "{what}: {err}");
    }
    let edges: Vec<(&str, poolside_metrics::PoolMetricsBuilder)> = vec![
        ("max_pools 1", PoolMetrics::builder().max_pools(1)),
        ("max_pools 4096", PoolMetrics::builder().max_pools(4096)),
        ("one 1 ns bucket", PoolMetrics::builder().histogram_buckets([Duration::from_nanos(1)])),
        ("24 h bucket", PoolMetrics::builder().histogram_buckets([Duration::from_secs(86_400)])),
        ("64 buckets", PoolMetrics::builder().histogram_buckets((1..=64).map(ms))),
    ];
    for (what, builder) in edges {
        let metrics = builder.build().unwrap_or_else(|e| panic!("{what}: {e}"));
        // Usable at the edge: a sample beyond the last bound lands in +Inf.
        let events = metrics.timing_hook("edge").unwrap();
        events.record(Timing::AcquireWait, Duration::MAX);
        let pool = Arc::new(ScriptedPool::default());
        let _r = metrics.register("edge", &pool).unwrap();
        let text = metrics.render_prometheus();
        let labels = [("pool", "edge"), ("kind", "scripted"), ("le", "+Inf")];
        assert_eq!(
            sample(&text, "poolside_scripted_acquire_wait_seconds_bucket", &labels),
            Some(1.0)
        );
    }
}
