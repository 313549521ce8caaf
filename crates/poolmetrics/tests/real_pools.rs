//! Real poolside pools, scraped: the exported counters equal each pool's own stats
//! after a scripted workload, and the pool kinds' catalogues are exported with help.

mod support;

use poolside_bufpool::{BufPool, Pool};
use poolside_core::Snapshot;
use poolside_metrics::PoolMetrics;
use poolside_workerpool::WorkerPool;
use std::sync::Arc;
use std::time::Duration;
use support::{http_get, sample};

#[test]
fn workerpool_counters_and_timings_are_exported() {
    let metrics = PoolMetrics::new();
    let events = metrics.timing_hook("workerpool", "jobs").unwrap();
    let pool = Arc::new(WorkerPool::builder().workers(2).events(events).build().unwrap());
    let _registration = metrics.register("jobs", &pool).unwrap();
    for i in 0..50u32 {
        pool.spawn(move |_| if i % 10 == 0 { panic!("scripted failure {i}") } else { i })
            .unwrap()
            .join()
            .ok();
    }
    // A handle completes before its worker has counted the job: shut down (joining
    // the workers) so every counter and timing is final before the scrape.
    pool.shutdown(Duration::from_secs(5)).unwrap();
    let server = metrics.serve("127.0.0.1:0").unwrap();
    let (_, _, text) = http_get(&format!("http://{}/metrics", server.local_addr()));
    let own = Snapshot::of(&*pool);
    let labels = [("pool", "jobs"), ("kind", "workerpool")];
    for name in ["submitted", "completed", "panicked", "rejected"] {
        let exported = sample(&text, &format!("poolside_workerpool_{name}"), &labels);
        assert_eq!(exported, own.value(name).map(|v| v as f64), "{name}");
    }
    assert_eq!(own.value("panicked"), Some(5));
    assert_eq!(own.value("completed"), Some(45));
    assert!(
        text.contains(
            r#"poolside_workerpool_job_run_seconds_count{pool="jobs",kind="workerpool"} 50"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"poolside_workerpool_queue_wait_seconds_count{pool="jobs",kind="workerpool"} 50"#
    ));
    assert!(text.contains("# HELP poolside_workerpool_panicked "));
}

#[test]
fn bufpool_per_class_counters_are_exported_with_their_class_label() {
    let metrics = PoolMetrics::new();
    let bufs = Arc::new(BufPool::new());
    let objects = Arc::new(Pool::new(Vec::<u32>::new));
    let _r1 = metrics.register("buffers", &bufs).unwrap();
    let _r2 = metrics.register("objects", &objects).unwrap();
    for size in [10, 100, 5_000, 70_000, 10] {
        drop(bufs.get(size));
    }
    drop(objects.get());
    drop(objects.get());
    let text = metrics.render_prometheus();
    let own = Snapshot::of(&*bufs);
    for class in ["4KiB", "64KiB", "1MiB"] {
        let labels = [("pool", "buffers"), ("kind", "bufpool"), ("class", class)];
        for name in ["hits", "misses", "returns"] {
            assert_eq!(
                sample(&text, &format!("poolside_bufpool_{name}"), &labels),
                own.labeled(name, &[("class", class)]).map(|v| v as f64),
                "{name} {class}"
            );
        }
    }
    let labels = [("pool", "objects"), ("kind", "bufpool")];
    assert_eq!(sample(&text, "poolside_bufpool_hits", &labels), Some(1.0));
    assert_eq!(sample(&text, "poolside_bufpool_misses", &labels), Some(1.0));
}
