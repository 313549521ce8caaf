//! Feature `facade`: forwarding to the process-wide `metrics` recorder under the same
//! family names and labels as the exposition (its own test binary, because a global
//! recorder can be installed only once per process).

mod support;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use poolside_core::Timing;
use poolside_metrics::PoolMetrics;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use support::{ScriptedPool, scripted_workload};

#[test]
fn values_and_timings_reach_the_global_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("first and only global recorder in this process");

    let metrics = PoolMetrics::builder().forward_to_global(true).build().unwrap();
    let events = metrics.timing_hook("global").unwrap();
    let pool = Arc::new(ScriptedPool::default());
    let _registration = metrics.register("global", &pool).unwrap();
    scripted_workload(&pool);
    events.record(Timing::QueueWait, Duration::from_millis(8));

    let collector = metrics.spawn_collector(Duration::from_millis(10)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(collector);

    let mut values = snapshotter.snapshot().into_vec();

    // The same series as the exposition: every gauge and counter sample of the scrape
    // exists in the global recorder under the same name and labels.
    let forwarded: BTreeSet<(String, BTreeMap<String, String>)> = values
        .iter()
        .map(|(key, ..)| {
            let labels =
                key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            (key.key().name().to_owned(), labels)
        })
        .collect();
    let scraped = support::series(&metrics.render_prometheus());
    let plain: Vec<_> = scraped
        .iter()
        .filter(|s| !["_bucket", "_sum", "_count"].iter().any(|x| s.name.ends_with(x)))
        .collect();
    assert_eq!(plain.len(), 4);
    for s in plain {
        assert!(
            forwarded.contains(&(s.name.clone(), s.labels.clone())),
            "{} not forwarded",
            s.name
        );
    }
    let mut take = |name: &str| {
        let index = values.iter().position(|(key, _, _, _)| {
            key.key().name() == name
                && key.key().labels().any(|l| l.key() == "pool" && l.value() == "global")
        })?;
        let (_, _, description, value) = values.swap_remove(index);
        Some((description, value))
    };
    let (description, acquires) =
        take("poolside_scripted_acquires_total").expect("forwarded counter");
    assert_eq!(acquires, DebugValue::Counter(10));
    assert_eq!(description.map(|d| d.to_string()), Some("Successful acquisitions.".to_owned()));
    let (_, in_use) = take("poolside_scripted_in_use").expect("forwarded gauge");
    assert!(matches!(in_use, DebugValue::Gauge(v) if v.into_inner() == 3.0), "{in_use:?}");
    let (_, waits) = take("poolside_scripted_queue_wait_seconds").expect("forwarded histogram");
    match waits {
        DebugValue::Histogram(samples) => {
            assert_eq!(samples.iter().map(|s| s.into_inner()).collect::<Vec<f64>>(), vec![0.008])
        }
        other => panic!("expected a histogram, got {other:?}"),
    }
    for bad in [Duration::ZERO, Duration::MAX, Duration::from_secs(86_401)] {
        assert!(
            matches!(
                metrics.spawn_collector(bad),
                Err(poolside_metrics::MetricsError::InvalidConfig(_))
            ),
            "{bad:?}"
        );
    }
}
