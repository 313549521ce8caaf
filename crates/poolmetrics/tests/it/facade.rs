//! Feature `facade` with a recorder that is the application's code and panics: the
//! registration, the pool's hot path, the scrape and the collector all survive. The
//! recorder is installed for this thread only (`metrics::with_local_recorder`), so
//! this binary never installs a global one.

use crate::support::{ScriptedPool, sample, scripted_workload};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use poolside_core::Timing;
use poolside_metrics::PoolMetrics;
use std::sync::Arc;
use std::time::Duration;

/// A recorder every method of which panics.
struct Panicking;

impl Recorder for Panicking {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {
        panic!("describe_counter");
    }
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {
        panic!("describe_gauge");
    }
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {
        panic!("describe_histogram");
    }
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        panic!("register_counter");
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        panic!("register_gauge");
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        panic!("register_histogram");
    }
}

#[test]
fn a_recorder_that_panics_leaves_registration_scrape_and_timings_working() {
    let metrics = PoolMetrics::builder().forward_to_global(true).build().unwrap();
    let events = metrics.timing_hook("forwarded").unwrap();
    let pool = Arc::new(ScriptedPool::default());
    metrics::with_local_recorder(&Panicking, || {
        let registration =
            metrics.register("forwarded", &pool).expect("registered despite the recorder");
        scripted_workload(&pool);
        events.record(Timing::AcquireWait, Duration::from_millis(2)); // the hot path returns
        metrics.collect();
        let text = metrics.render_prometheus();
        let labels = [("pool", "forwarded"), ("kind", "scripted")];
        assert_eq!(sample(&text, "poolside_scripted_acquires_total", &labels), Some(10.0));
        assert_eq!(
            sample(&text, "poolside_scripted_acquire_wait_seconds_count", &labels),
            Some(1.0)
        );
        drop(registration);
        assert!(metrics.is_empty(), "the registration removed the pool");
        // The name is free again.
        let again = metrics.register("forwarded", &pool).expect("the name was released");
        assert_eq!(metrics.len(), 1);
        drop(again);
    });
    assert!(metrics.is_empty());
}
